"""Arkwright: one scheduler core for a nation's AI factories, driven by two clocks."""

__version__ = "0.1.0"
