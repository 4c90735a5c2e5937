"""What a test needs from the machine: missing here, the test is skipped; under CI=true (where
.ci/run installs everything and the harness starts its fleet engines) it is a failure, so the
suite never skips to green."""

from __future__ import annotations

import importlib
import os
import shutil
from types import ModuleType

import pytest

from tests.support.browser import CHROMIUM


def need(ok: bool, reason: str) -> None:
    """Skip (locally) or fail (under CI=true) unless ``ok``."""
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} -- CI must run this test", pytrace=False)
    pytest.skip(reason)


def need_engines(harness: dict, *names: str) -> None:
    """The harness's fleet engines ``names`` (``scripts/harness.py start --engines N``)."""
    have = set(harness.get("engines") or {})
    need(set(names) <= have, f"the harness has no {', '.join(names)} engine(s): use --engines N")


def need_browser() -> ModuleType:
    """Debian's chromium and playwright's sync API (returned)."""
    need(shutil.which(CHROMIUM) is not None, "chromium is not installed (the harness installs it)")
    try:
        return importlib.import_module("playwright.sync_api")
    except ImportError:
        need(False, "playwright is not installed (requirements-dev.txt)")
        raise
