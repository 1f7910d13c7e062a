"""Sigma: a co-location cluster manager (prod services and batch jobs on the same machines)."""

__version__ = "0.1.0"
