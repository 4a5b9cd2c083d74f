"""Readers for public e-commerce data formats; each returns a `Dataset`."""
