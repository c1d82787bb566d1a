"""Helpers shared by test modules (importable because pytest's `pythonpath` includes tests/)."""
