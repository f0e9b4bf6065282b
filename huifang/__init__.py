"""Huifang (回访): automated callback satisfaction surveys for public services."""

__version__ = "0.1.0"
