"""Image reads: list, inspect, history, tag, search."""

from __future__ import annotations

import json
from typing import Any

from app.engine import docker_api
from app.engine.base import EngineConnection, rfc3339, translate
from app.engine.cache import MetadataCache
from app.engine.events import EventWatcher


def _strip_none_tags(tags: list[str] | None) -> list[str]:
    return [t for t in tags or [] if t != "<none>:<none>"]


def _strip_none_digests(digests: list[str] | None) -> list[str]:
    return [d for d in digests or [] if d != "<none>@<none>"]


def image_summary(raw: dict[str, Any], containers: int) -> dict[str, Any]:
    """An engine ``/images/json`` entry as Berth shows it."""
    return {
        "id": raw["Id"],
        "repo_tags": _strip_none_tags(raw.get("RepoTags")),
        "repo_digests": _strip_none_digests(raw.get("RepoDigests")),
        "created": rfc3339(raw.get("Created")),
        "size": raw.get("Size", 0),
        "labels": raw.get("Labels") or {},
        "containers": containers,
    }


def image_details(raw: dict[str, Any]) -> dict[str, Any]:
    """An engine ``/images/{name}/json`` document as Berth shows it."""
    config = raw.get("Config") or {}
    return {
        "id": raw["Id"],
        "repo_tags": _strip_none_tags(raw.get("RepoTags")),
        "repo_digests": _strip_none_digests(raw.get("RepoDigests")),
        "parent": raw.get("Parent") or None,
        "created": rfc3339(raw.get("Created")),
        "author": raw.get("Author") or "",
        "comment": raw.get("Comment") or "",
        "size": raw.get("Size", 0),
        "architecture": raw.get("Architecture") or "",
        "os": raw.get("Os") or "",
        "config": {
            "cmd": config.get("Cmd"),
            "entrypoint": config.get("Entrypoint"),
            "env": config.get("Env") or [],
            "labels": config.get("Labels") or {},
            "exposed_ports": sorted((config.get("ExposedPorts") or {}).keys()),
            "working_dir": config.get("WorkingDir") or "",
            "user": config.get("User") or "",
            "volumes": sorted((config.get("Volumes") or {}).keys()),
        },
        "layers": list((raw.get("RootFS") or {}).get("Layers") or []),
    }


def history_entry(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": raw.get("Id") if raw.get("Id") not in (None, "<missing>") else None,
        "created": rfc3339(raw.get("Created")),
        "created_by": raw.get("CreatedBy") or "",
        "size": raw.get("Size", 0),
        "comment": raw.get("Comment") or "",
        "tags": _strip_none_tags(raw.get("Tags")),
    }


class ImagesMixin:
    """Image reads on one engine connection."""

    connection: EngineConnection
    cache: MetadataCache
    events: EventWatcher

    def read_cache(self) -> MetadataCache:
        """This engine's metadata cache, its event watcher started (on first use, per process).

        The cache answers only while the watcher follows the engine's events; see
        ``app.engine.cache`` for the rules that keep it exact.
        """
        self.events.ensure_started()
        return self.cache

    def list_images(
        self,
        *,
        dangling: bool | None = None,
        reference: str | None = None,
        labels: list[str] | None = None,
        all: bool = False,
    ) -> list[dict[str, Any]]:
        filters: dict[str, list[str]] = {}
        if dangling is not None:
            filters["dangling"] = ["true" if dangling else "false"]
        if reference:
            filters["reference"] = [reference]
        if labels:
            filters["label"] = list(labels)
        with translate():
            raw = self.connection.api.images(all=all, filters=filters or None)
            usage = self.container_counts()
        images = [image_summary(item, usage.get(item["Id"], 0)) for item in raw]
        if dangling:
            # What a default prune removes: a dangling image a container still uses is kept by
            # prune, so it is not listed here either (docker images -f dangling=true lists it).
            images = [i for i in images if i["containers"] == 0]
        images.sort(key=lambda i: (i["created"] or "", i["id"]), reverse=True)
        return images

    def container_counts(self) -> dict[str, int]:
        """How many containers (running or not) use each image id."""
        counts: dict[str, int] = {}
        with translate("container"):
            for c in self.connection.api.containers(all=True):
                counts[c["ImageID"]] = counts.get(c["ImageID"], 0) + 1
        return counts

    def inspect_image_raw(self, ref: str) -> dict[str, Any]:
        with translate("image", ref):
            return self.connection.api.inspect_image(ref)

    def inspect_image(self, ref: str) -> dict[str, Any]:
        return image_details(self.inspect_image_raw(ref))

    def image_history(self, ref: str) -> list[dict[str, Any]]:
        with translate("image", ref):
            raw = self.connection.api.history(ref)
        return [history_entry(item) for item in raw]

    def tag_image(self, ref: str, repository: str, tag: str) -> str:
        """Tag ``ref`` as ``repository:tag`` (moving the tag if it exists); the new reference."""
        with translate("image", ref):
            self.connection.api.tag(ref, repository, tag, force=True)
        return f"{repository}:{tag}"

    def search(
        self, term: str, limit: int, official: bool | None = None, min_stars: int | None = None
    ) -> list[dict[str, Any]]:
        filters: dict[str, list[str]] = {}
        if official is not None:
            filters["is-official"] = ["true" if official else "false"]
        if min_stars:
            filters["stars"] = [str(min_stars)]
        params: dict[str, Any] = {"term": term, "limit": limit}
        if filters:
            params["filters"] = json.dumps(filters)
        with translate():
            api = self.connection.api
            response = docker_api.get(api, "/images/search", params=params)
            raw = docker_api.json_result(api, response)
        return [
            {
                "name": r.get("name", ""),
                "description": r.get("description") or "",
                "stars": r.get("star_count", 0),
                "official": bool(r.get("is_official")),
                "automated": bool(r.get("is_automated")),
            }
            for r in raw
        ]
