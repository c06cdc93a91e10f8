"""The HTTP API's entry point (kept for its importers): see `arkwright.service.api`."""

from arkwright.service.api import create_app

__all__ = ["create_app"]
