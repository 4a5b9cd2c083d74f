"""Next-item models: the behaviour Transformer and the baselines it is measured against."""
