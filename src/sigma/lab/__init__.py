"""Test and benchmark harnesses that build real things: hosts in network namespaces."""
