"""Engine-level calls: ping and version."""

from __future__ import annotations

from typing import Any

from app.engine.base import EngineConnection, translate


class SystemMixin:
    connection: EngineConnection

    def version(self) -> dict[str, Any]:
        """The engine's version and API version (raises EngineUnavailable if it is down)."""
        with translate():
            raw = self.connection.api.version()
        return {
            "version": raw.get("Version", ""),
            "api_version": raw.get("ApiVersion", ""),
            "min_api_version": raw.get("MinAPIVersion", ""),
            "os": raw.get("Os", ""),
            "arch": raw.get("Arch", ""),
        }

    def image_count(self) -> int:
        with translate():
            return len(self.connection.api.images(quiet=True))
