"""One JSON value per line: the encoding of NDJSON streams, JSON bodies and the audit log."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def json_line(obj: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """``obj`` as compact UTF-8 JSON (no spaces after ``,`` and ``:``) ending in a newline.

    ``default`` is ``json.dumps``'s: what to write for values JSON has no form for.
    """
    return (json.dumps(obj, separators=(",", ":"), default=default) + "\n").encode()
