"""Facts about the local images, as the deletion rules and the layer accounting need them.

``ImageFactsMixin`` reads the image store and containers into ``app.domain.deletion``'s snapshot
and keeps what cannot change about an image id (its layers, history, labels) in a bounded cache:
an id is the digest of the image's config. A cold cache is filled in one go where the engine is
on a unix socket (``app.engine.pipelined``), one inspect at a time otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

from app.domain.deletion import StoredContainer, StoredImage
from app.domain.layers import chain_ids, layer_sizes
from app.domain.prune_filters import rfc3339_ns
from app.engine import docker_api
from app.engine.base import EngineConnection, rfc3339, translate
from app.engine.pipelined import PipelineError, get_json_many
from app.errors import BerthError
from app.observability.metrics import observe_engine_call

log = logging.getLogger("berth.engine")

_CACHE_LIMIT = 20000


def repo_tags(raw: list[str] | None) -> list[str]:
    """The image's tags, without the engine's ``<none>:<none>`` placeholder."""
    return [t for t in raw or [] if t != "<none>:<none>"]


def repo_digests(raw: list[str] | None) -> list[str]:
    """The image's repository digests, without the engine's ``<none>@<none>`` placeholder."""
    return [d for d in raw or [] if d != "<none>@<none>"]


def short_id(image_id: str) -> str:
    """The 12 hex digits the CLI shows for an id."""
    return image_id.partition(":")[2][:12] or image_id[:12]


class ImmutableCache:
    """Facts about an image id that cannot change (an id is the digest of the image's config)."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, image_id: str) -> Any:
        return self._data.get((kind, image_id))

    def put(self, kind: str, image_id: str, value: Any) -> Any:
        with self._lock:
            if len(self._data) >= _CACHE_LIMIT:
                self._data.clear()
            self._data[(kind, image_id)] = value
        return value


class ImageFactsMixin:
    """Snapshots of the image store and cached facts about image ids, on one engine connection."""

    connection: EngineConnection

    @property
    def _facts_cache(self) -> ImmutableCache:
        cache = self.__dict__.get("_image_facts_cache")
        if cache is None:
            cache = self.__dict__.setdefault("_image_facts_cache", ImmutableCache())
        return cache

    def _image_facts(self, image_id: str) -> dict[str, Any] | None:
        """Diff ids, creation time, author, labels and size of an image; None if it is gone."""
        cached = self._facts_cache.get("facts", image_id)
        if cached is not None:
            return cached
        try:
            with translate("image", image_id):
                raw = self.connection.api.inspect_image(image_id)
        except BerthError as e:
            if e.status == 404:
                return None
            raise
        return self._facts_cache.put("facts", raw["Id"], facts_of(raw))

    def _image_steps(self, image_id: str) -> list[dict[str, Any]]:
        """The image's history, oldest step first, without the (changeable) step image ids."""
        cached = self._facts_cache.get("steps", image_id)
        if cached is not None:
            return cached
        with translate("image", image_id):
            raw = self.connection.api.history(image_id)
        return self._facts_cache.put("steps", image_id, steps_of(raw))

    def _prefetch(self, kind: str, image_ids: list[str]) -> None:
        """Fill the cache's ``kind`` ("facts" or "steps") for ``image_ids`` in one go, where the
        engine is on a unix socket; what is left is read one at a time when asked for."""
        missing = [i for i in dict.fromkeys(image_ids) if self._facts_cache.get(kind, i) is None]
        socket_path = self.connection.unix_socket
        if len(missing) < 2 or socket_path is None:
            return
        api = self.connection.api
        template = "/images/{0}/json" if kind == "facts" else "/images/{0}/history"
        prefix, _, suffix = urlsplit(docker_api.url(api, template, "-")).path.rpartition("/-/")
        paths = [f"{prefix}/{quote(i, safe=':')}/{suffix}" for i in missing]
        started = time.perf_counter()
        try:
            answers = get_json_many(socket_path, paths, api.headers["User-Agent"], api.timeout)
        except (OSError, PipelineError) as e:
            log.warning("pipelined %s reads failed, reading one at a time: %s", kind, e)
            return
        finally:
            observe_engine_call("GET", template, time.perf_counter() - started)
        convert = facts_of if kind == "facts" else steps_of
        for image_id, (status, body) in zip(missing, answers, strict=True):
            if status == 200 and body:
                self._facts_cache.put(kind, image_id, convert(body))

    def warm_image_facts(self) -> int:
        """Read every local image's facts into the cache in one go (where the engine is on a
        unix socket), so that the first usage or layers view of a new worker needs none; the
        number of images now known."""
        if self.connection.unix_socket is None:
            return 0
        ids = [item["Id"] for item in self._all_images()]
        self._prefetch("facts", ids)
        # What one go did not read (a single image, a failed pipeline): one at a time.
        return sum(1 for i in ids if self._image_facts(i) is not None)

    def _all_images(self) -> list[dict[str, Any]]:
        with translate():
            return self.connection.api.images(all=True)

    def _all_containers(self) -> list[StoredContainer]:
        with translate("container"):
            raw = self.connection.api.containers(all=True)
        return [
            StoredContainer(
                id=c["Id"],
                name=(c.get("Names") or ["/"])[0].lstrip("/"),
                image_id=c.get("ImageID") or "",
                state=c.get("State") or "",
            )
            for c in raw
        ]

    def _snapshot(
        self, with_layers: bool, listing: list[dict[str, Any]] | None = None
    ) -> tuple[list[StoredImage], list[StoredContainer]]:
        """The image store (``listing``: an ``images(all=True)`` just taken) and containers
        as the deletion rules see them."""
        images: list[StoredImage] = []
        if listing is None:
            listing = self._all_images()
        if with_layers:
            self._prefetch("facts", [item["Id"] for item in listing])
        for item in listing:
            facts = self._image_facts(item["Id"]) if with_layers else None
            if with_layers and facts is None:
                continue  # deleted meanwhile
            images.append(
                StoredImage(
                    id=item["Id"],
                    parent=item.get("ParentId") or None,
                    references=repo_tags(item.get("RepoTags"))
                    + repo_digests(item.get("RepoDigests")),
                    chain=chain_ids(facts["diff_ids"]) if facts else [],
                    created_ns=facts["created_ns"]
                    if facts
                    else int(item.get("Created") or 0) * 1_000_000_000,
                    labels=(facts["labels"] if facts else item.get("Labels")) or {},
                )
            )
        return images, self._all_containers()

    def _sizes_of(self, image_ids: list[str]) -> dict[str, int]:
        """Chain id → bytes for the layers of ``image_ids`` (from their history)."""
        sizes: dict[str, int] = {}
        self._prefetch("facts", image_ids)
        self._prefetch("steps", image_ids)
        for image_id in image_ids:
            facts = self._image_facts(image_id)
            if facts is None:
                continue
            sizes.update(layer_sizes(facts["diff_ids"], self._image_steps(image_id)))
        return sizes


def facts_of(raw: dict[str, Any]) -> dict[str, Any]:
    """What the layer accounting keeps of an image's inspect."""
    config = raw.get("Config") or {}
    return {
        "diff_ids": list((raw.get("RootFS") or {}).get("Layers") or []),
        "created_ns": rfc3339_ns(raw.get("Created")),
        "author": raw.get("Author") or "",
        "labels": config.get("Labels") or {},
        "size": int(raw.get("Size") or 0),
    }


def steps_of(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An image's history, oldest step first, without the (changeable) step image ids."""
    return [
        {
            "created": rfc3339(item.get("Created")),
            "created_by": item.get("CreatedBy") or "",
            "comment": item.get("Comment") or "",
            "size": int(item.get("Size") or 0),
        }
        for item in reversed(raw)
    ]
