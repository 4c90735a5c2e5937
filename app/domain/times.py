"""Times as Berth writes them: RFC 3339 in UTC with a ``Z`` (``2026-01-31T12:00:00.123Z``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


@overload
def rfc3339(value: float | datetime, timespec: str = ...) -> str: ...
@overload
def rfc3339(value: None, timespec: str = ...) -> None: ...
def rfc3339(value: float | datetime | None, timespec: str = "milliseconds") -> str | None:
    """Unix seconds or a datetime as RFC 3339 UTC (None stays None, for times not yet reached).

    ``timespec`` as ``datetime.isoformat`` takes it: milliseconds (truncated) by default;
    ``"auto"`` shows microseconds only when there is a fraction; ``"seconds"`` none. A naive
    datetime is taken as local time, as ``datetime.astimezone`` does.
    """
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
