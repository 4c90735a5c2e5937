#!/usr/bin/env python3
"""Write the OpenAPI document generated from the code to openapi/openapi.yaml (``make openapi``)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402

SPEC_PATH = ROOT / "openapi" / "openapi.yaml"


def render() -> str:
    """The spec as committed: YAML, keys in the generator's order."""
    app = create_app({"BERTH_AUTH": "disabled", "BERTH_LOG_LEVEL": "ERROR"})
    spec = app.extensions["berth.openapi"]
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    SPEC_PATH.write_text(render())
    print(f"wrote {SPEC_PATH.relative_to(ROOT)}")
