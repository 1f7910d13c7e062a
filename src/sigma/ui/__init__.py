"""The web dashboard the master serves at /ui: static page, live feed from the registry's watches."""

from sigma.ui.app import routes

__all__ = ["routes"]
