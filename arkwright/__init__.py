"""Arkwright: one scheduler core for a nation's AI factories, driven by two clocks."""

from arkwright.compiled import activate

__version__ = "0.1.0"

# The core runs compiled when `make install` built it for these sources (compiled.py).
activate()
