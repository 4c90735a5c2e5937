"""The filters of ``docker image prune``: ``until`` (a time or a duration) and ``label``.

Plain logic: no flask, no docker.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$"
)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def rfc3339_ns(value: Any) -> int:
    """An engine timestamp (RFC 3339 with up to nanoseconds, or unix seconds) in nanoseconds."""
    if value in (None, ""):
        return 0
    if isinstance(value, int | float):
        return int(value * 1_000_000_000)
    match = _RFC3339.match(str(value).strip())
    if not match:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    day, clock, fraction, zone = match.groups()
    moment = datetime.fromisoformat(f"{day}T{clock}{_zone(zone)}")
    nanos = int((fraction or "0").ljust(9, "0"))
    return int(moment.timestamp()) * 1_000_000_000 + nanos


def _zone(zone: str | None) -> str:
    if not zone or zone == "Z":
        return "+00:00"
    return zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"


def parse_until(text: str, now: float) -> int:
    """``until`` as the engine reads it: a duration back from now (``24h``, ``1h30m``), an RFC
    3339 time or unix seconds. Returns unix seconds; raises ValueError saying what is wrong."""
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return int(float(text))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        text += "T00:00:00Z"
    if _DURATION_PART.match(text):
        consumed = "".join(m.group(0) for m in _DURATION_PART.finditer(text))
        if consumed != text:
            raise ValueError(f"'{text}' is not a duration (e.g. 30m, 24h, 1h30m)")
        total_ns = sum(
            float(m.group(1)) * _UNIT_NS[m.group(2)] for m in _DURATION_PART.finditer(text)
        )
        since = int(now - total_ns / 1_000_000_000)
        if since < 0:  # the engine cannot read a time before 1970 (it answers 500)
            raise ValueError(f"'{text}' reaches back before 1970")
        return since
    try:
        return rfc3339_ns(text) // 1_000_000_000
    except ValueError:
        raise ValueError(
            f"'{text}' is not a duration (24h), an RFC 3339 time or unix seconds"
        ) from None


def match_labels(filters: list[str], labels: dict[str, str] | None) -> bool:
    """Every ``key`` / ``key=value`` filter matches (the engine's ``label`` filter)."""
    if not filters:
        return True
    labels = labels or {}
    if not labels:
        return False
    for item in filters:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True
