"""Build images and containers in the test engine with docker-py (never through Berth)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import docker
import docker.errors


def unique(prefix: str = "berth-test") -> str:
    """A repository name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class ImageFactory:
    """Creates images from the base image and removes everything it made at teardown."""

    def __init__(self, client: docker.DockerClient, base: str) -> None:
        self.client = client
        self.base = base
        self.images: list[str] = []
        self.containers: list[str] = []

    def container(
        self,
        command: str,
        image: str | None = None,
        *,
        run: bool = True,
        keep_running: bool = False,
    ) -> str:
        """A container from ``image`` that ran ``sh -c command`` (or still runs it)."""
        container = self.client.containers.create(
            image or self.base,
            ["sh", "-c", command],
            network_mode="none",
            name=unique("berth-ctr"),
        )
        self.containers.append(container.id)
        if run:
            container.start()
            if not keep_running:
                container.wait(timeout=60)
        return container.id

    def image(
        self,
        command: str = "true",
        repository: str | None = None,
        tag: str = "latest",
        base: str | None = None,
        **commit_kwargs,
    ) -> tuple[str, str]:
        """Commit a container that ran ``command``; returns ``(image_id, reference)``."""
        repository = repository or unique()
        container_id = self.container(command, base)
        image = self.client.containers.get(container_id).commit(
            repository=repository, tag=tag, **commit_kwargs
        )
        self.images.append(image.id)
        return image.id, f"{repository}:{tag}"

    def track(self, image_id: str) -> None:
        self.images.append(image_id)

    def cleanup(self) -> None:
        for container_id in reversed(self.containers):
            try:
                self.client.api.remove_container(container_id, force=True)
            except docker.errors.NotFound:
                pass
        for image_id in reversed(self.images):
            try:
                self.client.api.remove_image(image_id, force=True)
            except (docker.errors.NotFound, docker.errors.APIError):
                pass


@contextmanager
def image_factory(client: docker.DockerClient, base: str) -> Iterator[ImageFactory]:
    factory = ImageFactory(client, base)
    try:
        yield factory
    finally:
        factory.cleanup()


@contextmanager
def blob_image(
    client: docker.DockerClient, base: str, mib: int, source: str, prefix: str
) -> Iterator[str]:
    """A tagged image (``name:1``) whose one layer holds ``mib`` MiB read from ``source``;
    removed afterwards. Random data keeps every byte of it in an archive; zeros are quicker."""
    repo = unique(prefix)
    container = client.containers.create(
        base, ["sh", "-c", f"head -c {mib}m {source} > /blob"], network_mode="none"
    )
    try:
        container.start()
        container.wait(timeout=300)
        image = container.commit(repository=repo, tag="1")
    finally:
        container.remove(force=True)
    try:
        yield f"{repo}:1"
    finally:
        try:
            client.api.remove_image(image.id, force=True)
        except docker.errors.APIError:
            pass
