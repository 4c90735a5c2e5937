"""Image lifecycle: commit a container, pull an image and confirm what the pull stored.

Delete and prune live in ``app.engine.removal``, layers and usage in ``app.engine.usage``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker.errors
import requests.exceptions

from app.domain.familiar import familiar_name
from app.domain.platforms import describe, platform_matches
from app.domain.progress import classify_registry_error
from app.domain.registry_auth import encode_registry_auth
from app.engine import docker_api
from app.engine.base import EngineConnection, explanation, translate
from app.engine.image_facts import repo_digests
from app.errors import (
    BerthError,
    EngineRejected,
    EngineUnavailable,
    PlatformNotAvailable,
    RegistryError,
)


class LifecycleMixin:
    """Commit and pull on one engine connection."""

    connection: EngineConnection

    # --- commit -------------------------------------------------------------------------------

    def commit_container(
        self,
        container: str,
        *,
        repository: str | None,
        tag: str | None,
        author: str | None,
        message: str | None,
        changes: list[str],
        pause: bool,
    ) -> str:
        """Commit ``container`` (name or id) as a new image; returns the image id."""
        with translate("container", container):
            result = self.connection.stream_api.commit(
                container,
                repository=repository,
                tag=tag if repository else None,
                message=message or None,
                author=author or None,
                pause=pause,
                changes=changes or None,
            )
        return result["Id"]

    # --- pull ---------------------------------------------------------------------------------

    def pull_image(
        self,
        repository: str,
        tag: str,
        *,
        platform: str | None = None,
        credentials: dict[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Start pulling ``repository`` at ``tag`` (a tag or a digest); yields engine events.

        The request is sent before this returns, so a failure the engine reports with a status
        (manifest unknown, registry unreachable, bad platform) raises here, as the BerthError it
        means. Failures reported inside the stream are left to ``app.domain.progress``.
        Credentials go to the engine in ``X-Registry-Auth`` and nowhere else; the host's Docker
        credentials are never consulted.
        """
        api = self.connection.stream_api
        params: dict[str, Any] = {"fromImage": repository, "tag": tag}
        if platform:
            params["platform"] = platform
        headers = {"X-Registry-Auth": encode_registry_auth(credentials)} if credentials else {}
        with translate("image", repository):
            response = docker_api.post(
                api, "/images/create", params=params, headers=headers, stream=True, timeout=None
            )
        try:
            docker_api.raise_for_status(api, response)
        except docker.errors.APIError as e:
            response.close()
            message = explanation(e)
            if e.status_code == 400:
                raise EngineRejected(message) from e
            raise classify_registry_error(message) from e
        return self._guarded_events(docker_api.json_events(api, response))

    @staticmethod
    def _guarded_events(events: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        try:
            yield from events
        except (requests.exceptions.RequestException, ConnectionError) as e:
            raise EngineUnavailable("The Docker engine broke off the stream.") from e
        except ValueError as e:
            raise RegistryError("The engine's progress stream could not be read.") from e

    def pulled_image(
        self, reference: str, repository: str, platform: str | None = None
    ) -> dict[str, Any]:
        """Confirm a pull: the image must really be there, for the platform asked for.

        Returns ``{"id", "reference", "digest"}``.
        """
        try:
            raw = self.inspect_image_raw(reference)  # type: ignore[attr-defined]
        except BerthError as e:
            if e.status == 404:
                raise RegistryError(
                    f"The engine reported a successful pull but has no image '{reference}'."
                ) from e
            raise
        if platform and not platform_matches(
            platform, raw.get("Os") or "", raw.get("Architecture") or "", raw.get("Variant")
        ):
            found = describe(raw.get("Os") or "", raw.get("Architecture") or "", raw.get("Variant"))
            raise PlatformNotAvailable(
                f"The registry has no image for platform '{platform}': '{reference}' is for "
                f"{found} (the engine stored it locally anyway).",
                platform=platform,
                found=found,
            )
        name = familiar_name(repository)
        digest = None
        for item in repo_digests(raw.get("RepoDigests")):
            item_name, _, item_digest = item.partition("@")
            if item_name == name:
                digest = item_digest
                break
        return {"id": raw["Id"], "reference": reference, "digest": digest}
