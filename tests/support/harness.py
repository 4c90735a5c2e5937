"""Reach the engine and registries started by ``scripts/harness.py`` (tests start nothing)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def load_state() -> dict[str, Any] | None:
    """The harness state named by BERTH_TEST_HARNESS, or None when no harness runs."""
    path = os.environ.get("BERTH_TEST_HARNESS")
    if not path or not Path(path).exists():
        return None
    return json.loads(Path(path).read_text())


def harness_module() -> ModuleType:
    """``scripts/harness.py`` as a module, for tests that stop and restart its parts."""
    spec = importlib.util.spec_from_file_location("berth_harness", ROOT / "scripts" / "harness.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
