"""Behaviour prediction tasks: purchase intent, purchase propensity, churn, next event type."""
