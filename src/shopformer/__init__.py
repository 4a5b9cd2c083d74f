"""Shopformer: predictions of what each shop user will do next, from the shop's behaviour log."""

from shopformer._version import __version__
from shopformer.data.schema import Catalog, Dataset, EventLog
from shopformer.predict.estimator import Shopformer

__all__ = ["Catalog", "Dataset", "EventLog", "Shopformer", "__version__"]
