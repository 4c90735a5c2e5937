"""Debian's chromium, driven by playwright: no browser is downloaded, nothing leaves the machine.

The flags keep chromium from its own background connections (updates, sync, safe browsing),
which this network would refuse.
"""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch(playwright):
    """A headless chromium browser (close it when done)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
