"""Push: start the engine's push of one tag and hand back its progress stream; drop a name."""

from __future__ import annotations

from typing import Any

from app.domain.registry_auth import encode_registry_auth
from app.engine import docker_api
from app.engine.base import EngineConnection, translate
from app.engine.streams import EngineStream


class PushMixin:
    connection: EngineConnection

    def push_stream(
        self, repository: str, tag: str, auth: dict[str, Any] | None = None
    ) -> EngineStream:
        """Start pushing ``repository:tag``; the engine's events, abortable from any thread.

        ``auth`` (engine AuthConfig fields) goes only into the ``X-Registry-Auth`` header of
        this one call. The engine reports registry failures inside the stream: read it with
        ``app.domain.progress.Progress``.
        """
        api = self.connection.stream_api
        headers = {"X-Registry-Auth": encode_registry_auth(auth or {})}
        with translate("image", f"{repository}:{tag}"):
            response = docker_api.post_json(
                api,
                "/images/{0}/push",
                repository,
                headers=headers,
                stream=True,
                params={"tag": tag},
            )
            docker_api.raise_for_status(api, response)
        return EngineStream(api, response)

    def remove_name(self, reference: str) -> None:
        """Remove the name ``reference`` only (``noprune``). Call it only while the image has
        another name: the engine deletes an image whose last name is removed."""
        with translate("image", reference):
            self.connection.api.remove_image(reference, force=False, noprune=True)
