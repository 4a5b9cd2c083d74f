"""Shopformer: predictions of what each shop user will do next, from the shop's behaviour log."""

from shopformer.data.schema import Catalog, Dataset, EventLog

__all__ = ["Catalog", "Dataset", "EventLog", "__version__"]
__version__ = "0.1.0"
