"""Tests of data/synth/."""
