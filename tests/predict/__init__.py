"""Tests of predict/."""
