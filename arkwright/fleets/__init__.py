"""Fleet presets shipped with Arkwright, and the loader for fleet TOML files."""

from arkwright.fleets.loader import FleetFileError, load_fleet, preset_names

__all__ = ["FleetFileError", "load_fleet", "preset_names"]
