"""Answers to metadata reads, kept exact by the engine's event stream.

A ``MetadataCache`` belongs to one engine. It holds values derived from that engine's reads (the
API keeps the serialised JSON of image list, inspect and history answers in it) and knows nothing
of docker or HTTP. Correctness rests on three rules:

* **Live only while followed.** The cache answers only while ``app.engine.events`` follows the
  engine's event stream (``open()``); when the stream drops it is ``close()``d and every read goes
  to the engine until the watcher is back, and then it starts empty.
* **One generation, dropped whole.** Each event that may change what a read returns calls
  ``invalidate()``: the generation goes up and every entry goes. Tags move between images and a
  reference resolves through them, so dropping everything is the only simple rule that is exact.
* **Store only what was fetched within one generation.** Take ``token()`` *before* asking the
  engine and ``put(key, token, value)`` after: the value is kept only if no event (and no
  reconnect) happened in between, so an answer that raced a change is never stored.
* **Nothing older than ``MAX_AGE``.** A generation also ends after ``MAX_AGE`` seconds, so a
  change the engine does not announce (20.10 logs no event when BuildKit exports an image) or a
  stream that died without a word shows within that time; changes it announces show at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Any

DEFAULT_MAX_ENTRIES = 4096
# Short enough to bound what an unannounced change can cost; long enough that refetching costs
# nothing measurable (one engine call per key, worker and MAX_AGE under load).
MAX_AGE = 5.0


class MetadataCache:
    """Values valid for the engine's current generation; thread-safe, lock-free to read."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_age: float = MAX_AGE) -> None:
        self.max_entries = max_entries
        self.max_age = max_age
        self._lock = threading.Lock()
        self._entries: dict[Hashable, Any] = {}
        self._generation = 0
        self._expires = 0.0
        self._live = False
        # Plain counters for observability; increments may race, so they are approximate.
        self.hits = 0
        self.misses = 0

    @property
    def live(self) -> bool:
        """True while the engine's events are followed, i.e. while entries may be served."""
        return self._live

    @property
    def generation(self) -> int:
        return self._generation

    def get(self, key: Hashable, *, count_miss: bool = True) -> Any | None:
        """The value stored for ``key`` in this generation, or None (miss, or not live).

        ``count_miss=False`` for a caller that looks up keys which may never be stored (a
        first look before the route is known), so that ``misses`` counts only cacheable reads.
        """
        if not self._live:
            return None
        if time.monotonic() >= self._expires:
            self._next_generation_if(self._generation)
            self.misses += count_miss
            return None
        value = self._entries.get(key)  # one dict read: atomic, no lock needed
        if value is None:
            self.misses += count_miss
        else:
            self.hits += 1
        return value

    def token(self) -> int | None:
        """The generation to hand to ``put`` later; None while the cache is not live."""
        return self._generation if self._live else None

    def put(self, key: Hashable, token: int | None, value: Any) -> bool:
        """Keep ``value`` if nothing changed since ``token`` was taken; whether it was kept."""
        if token is None or value is None:
            return False
        with self._lock:
            if not self._live or token != self._generation:
                return False
            if len(self._entries) >= self.max_entries:
                self._entries = {}  # bounded memory: start over rather than track recency
            self._entries[key] = value
            return True

    def invalidate(self) -> None:
        """Something changed in the engine: drop every entry, refuse values fetched before."""
        with self._lock:
            self._next_generation()

    def open(self) -> None:
        """The watcher follows the engine now: serve entries again, starting from none."""
        with self._lock:
            self._next_generation()
            self._live = True

    def close(self) -> None:
        """The watcher lost the engine: serve nothing until ``open()``."""
        with self._lock:
            self._live = False
            self._next_generation()

    def reset_after_fork(self) -> None:
        """In a forked child: another thread may have held the lock; start dark and empty."""
        self._lock = threading.Lock()
        self._live = False
        self._next_generation()

    def _next_generation(self) -> None:  # with the lock held
        self._generation += 1
        self._entries = {}
        self._expires = time.monotonic() + self.max_age

    def _next_generation_if(self, generation: int) -> None:
        """End ``generation`` (grown too old), unless another thread just did."""
        with self._lock:
            if self._generation == generation:
                self._next_generation()

    def stats(self) -> dict[str, Any]:
        """Counters for metrics and debugging."""
        return {
            "live": self._live,
            "generation": self._generation,
            "entries": len(self._entries),
            "hits": self.hits,
            "misses": self.misses,
        }
