"""Clients of the Sigma API: the ApiClient protocol and its HTTP implementation."""

from sigma.client.base import ApiClient, WatchEvent
from sigma.client.http import HttpClient

__all__ = ["ApiClient", "HttpClient", "WatchEvent"]
