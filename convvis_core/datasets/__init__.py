"""Datasets that ship inside installed packages (no downloads)."""
