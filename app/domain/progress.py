"""Engine progress streams (pull, push, load, import): normalise, aggregate, find the failure.

The engine reports failures *inside* a 200 stream (``{"error": ..., "errorDetail": ...}``).
``Progress`` reads every event, keeps per-layer byte counts and the registry's digest, and turns
an error event into the BerthError it means, so that a failure is always reported as one.
What it keeps is bounded however long the stream runs: the last ``MAX_MESSAGES`` status
messages (plus the ``Loaded image`` lines a load reports, up to ``MAX_LOADED``) and byte counts
for at most ``MAX_LAYERS`` layers; finished layers past that are folded into one aggregate.
Plain logic: no flask, no docker.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from app.errors import (
    BerthError,
    ManifestUnknown,
    RegistryAuthFailed,
    RegistryError,
    RegistryUnreachable,
)

_DIGEST_STATUS = re.compile(r"digest: (sha256:[0-9a-f]{64})(?: size: (\d+))?", re.IGNORECASE)

_UNREACHABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "no route to host",
    "network is unreachable",
    "connection reset",
    "server misbehaving",
    "tls handshake timeout",
    "eof",
)
_AUTH = (
    "no basic auth credentials",
    "unauthorized",
    "authentication required",
    "denied",
    "incorrect username or password",
    "unauthorized: authentication required",
)
_UNKNOWN = ("manifest unknown", "not found", "does not exist", "name unknown")
_LAYER_DONE = (
    "Pull complete",
    "Pushed",
    "Layer already exists",
    "Already exists",
    "Download complete",
)

MAX_MESSAGES = 200
MAX_LOADED = 10_000
MAX_LAYERS = 1_000


def classify_registry_error(message: str) -> BerthError:
    """The BerthError a registry failure message means (the message becomes ``detail``)."""
    lowered = message.lower()
    if any(s in lowered for s in _AUTH):
        return RegistryAuthFailed(message)
    if any(s in lowered for s in _UNKNOWN):
        return ManifestUnknown(message)
    if any(s in lowered for s in _UNREACHABLE):
        return RegistryUnreachable(message)
    return RegistryError(message)


def error_message(event: dict[str, Any]) -> str | None:
    """The failure an event reports, if it reports one."""
    detail = event.get("errorDetail")
    if isinstance(detail, dict) and detail.get("message"):
        return str(detail["message"])
    if event.get("error"):
        return str(event["error"])
    return None


class Progress:
    """Aggregated state of one engine progress stream."""

    def __init__(self, classify=classify_registry_error) -> None:
        self._classify = classify
        self.layers: dict[str, tuple[int, int]] = {}
        self.error: BerthError | None = None
        self.digest: str | None = None
        self.size: int | None = None
        self._recent: deque[str] = deque(maxlen=MAX_MESSAGES)
        self._loaded: list[str] = []
        self._folded = (0, 0)  # bytes of the layers dropped from ``layers`` to bound it

    @property
    def messages(self) -> list[str]:
        """The ``Loaded image`` lines, then the last MAX_MESSAGES messages (the last is last)."""
        return self._loaded + list(self._recent)

    @property
    def current(self) -> int:
        return self._folded[0] + sum(c for c, _ in self.layers.values())

    @property
    def total(self) -> int:
        return self._folded[1] + sum(t for _, t in self.layers.values())

    def _note(self, status: str) -> None:
        self._recent.append(status)
        if status.startswith("Loaded image") and len(self._loaded) < MAX_LOADED:
            self._loaded.append(status)

    def _set_layer(self, layer: str, counts: tuple[int, int]) -> None:
        if layer not in self.layers and len(self.layers) >= MAX_LAYERS:
            # Fold the oldest finished layer (else the oldest) into the aggregate.
            oldest = next((k for k, (c, t) in self.layers.items() if c >= t), None)
            oldest = oldest if oldest is not None else next(iter(self.layers))
            current, total = self.layers.pop(oldest)
            self._folded = (self._folded[0] + current, self._folded[1] + total)
        self.layers[layer] = counts

    def feed(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Record one engine event; return its normalised form (None for noise)."""
        message = error_message(event)
        if message is not None:
            if self.error is None:
                self.error = self._classify(message)
            return None
        aux = event.get("aux")
        if isinstance(aux, dict):
            self.digest = aux.get("Digest") or self.digest
            self.size = aux.get("Size", self.size)
            return None
        status = str(event.get("status") or event.get("stream") or "").strip()
        if not status:
            return None
        match = _DIGEST_STATUS.search(status)
        if match:
            self.digest = match.group(1)
            if match.group(2):
                self.size = int(match.group(2))
        self._note(status)
        layer = event.get("id")
        detail = event.get("progressDetail") or {}
        current, total = detail.get("current"), detail.get("total")
        if layer and isinstance(current, int):
            total = total if isinstance(total, int) and total > 0 else current
            self._set_layer(layer, (current, total))
        elif layer and status in _LAYER_DONE:
            known = self.layers.get(layer)
            if known:
                self.layers[layer] = (known[1], known[1])
        return {
            "status": status,
            "layer": layer,
            "current": current if isinstance(current, int) else None,
            "total": total if isinstance(total, int) else None,
        }

    def raise_for_error(self) -> None:
        if self.error is not None:
            raise self.error


def consume(events: Iterable[dict[str, Any]], progress: Progress) -> Iterator[dict[str, Any]]:
    """Feed every event to ``progress`` and yield the normalised ones; stop at the first error."""
    for event in events:
        line = progress.feed(event)
        if progress.error is not None:
            return
        if line is not None:
            yield line
