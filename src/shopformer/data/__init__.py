"""Data stage: read, validate, prepare and split shop event logs."""
