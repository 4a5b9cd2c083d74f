"""Shopformer: predictions of what each shop user will do next, from the shop's behaviour log."""

__version__ = "0.1.0"

from shopformer.data.schema import Catalog, Dataset, EventLog  # noqa: E402
from shopformer.predict.estimator import Shopformer  # noqa: E402

__all__ = ["Catalog", "Dataset", "EventLog", "Shopformer", "__version__"]
