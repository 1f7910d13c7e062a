"""Headless Chromium for the dashboard tests: Debian's /usr/bin/chromium driven by Playwright.

Playwright never downloads a browser here: it launches the system Chromium by path, with a
fresh profile per test and the flags that keep it off the network (this machine refuses
outside connections, and Chromium would otherwise try them at every start). Screenshots go
to $SIGMA_ARTIFACTS, or tests/artifacts/ (ignored by git).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - setup installs it with the test extra
    sync_playwright = None

needs_browser = pytest.mark.skipif(sync_playwright is None or not os.path.exists(CHROMIUM),
                                   reason="needs Debian's chromium (/usr/bin/chromium) and the playwright package; "
                                          "scripts/setup.sh installs both")


@pytest.fixture
def artifacts() -> Path:
    path = Path(os.environ.get("SIGMA_ARTIFACTS") or Path(__file__).resolve().parents[1] / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A browser context on a fresh user-data-dir; yields it, closes it even on failure."""
    assert sync_playwright is not None
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        try:
            yield context
        finally:
            context.close()
