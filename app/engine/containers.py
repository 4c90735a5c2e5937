"""Container reads (Berth never creates or runs containers)."""

from __future__ import annotations

from typing import Any

from app.engine.base import EngineConnection, rfc3339, translate


def container_summary(raw: dict[str, Any]) -> dict[str, Any]:
    names = raw.get("Names") or []
    return {
        "id": raw["Id"],
        "name": names[0].lstrip("/") if names else "",
        "image": raw.get("Image") or "",
        "image_id": raw.get("ImageID") or "",
        "status": raw.get("Status") or "",
        "state": raw.get("State") or "",
        "created": rfc3339(raw.get("Created")),
    }


class ContainersMixin:
    connection: EngineConnection

    def list_containers(self, all: bool = False) -> list[dict[str, Any]]:
        with translate("container"):
            raw = self.connection.api.containers(all=all)
        return [container_summary(c) for c in raw]

    def inspect_container(self, ref: str) -> dict[str, Any]:
        with translate("container", ref):
            return self.connection.api.inspect_container(ref)
