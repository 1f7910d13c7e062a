"""The web dashboard the master serves at /ui: static page, live feed from the registry's watches,
and a browser login (a bearer token or a one-time link) in front of it."""

from sigma.ui.app import routes
from sigma.ui.login import once_login_url

__all__ = ["once_login_url", "routes"]
