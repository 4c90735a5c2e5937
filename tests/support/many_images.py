"""Many distinct images at once: one ``docker load`` of an archive built here.

Every image shares one tiny layer and differs by its config (a label and its creation time), so
the engine stores thousands of images in seconds. They are untagged and carry the label
``berth-test.batch=<batch>``, so a list filtered by it shows exactly them and one prune by that
label removes them all.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager

import docker

LABEL = "berth-test.batch"


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    archive.addfile(info, io.BytesIO(data))


def _layer() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as layer:
        _add(layer, "hello.txt", b"hello\n")
    return buffer.getvalue()


def archive_of(batch: str, count: int) -> bytes:
    """A ``docker save`` archive of ``count`` untagged images labelled with ``batch``; two
    images share each creation second (ties for a sort by time)."""
    layer = _layer()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    buffer = io.BytesIO()
    manifest = []
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        _add(archive, "layer/layer.tar", layer)
        for index in range(count):
            created = f"2020-01-01T{index // 2 // 3600:02d}:{index // 2 // 60 % 60:02d}:" + (
                f"{index // 2 % 60:02d}Z"
            )
            config = {
                "architecture": "amd64",
                "os": "linux",
                "created": created,
                "config": {"Labels": {LABEL: batch, "berth-test.index": str(index)}},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [{"created": created, "created_by": "many_images"}],
            }
            data = json.dumps(config, sort_keys=True).encode()
            name = hashlib.sha256(data).hexdigest() + ".json"
            _add(archive, name, data)
            manifest.append({"Config": name, "RepoTags": None, "Layers": ["layer/layer.tar"]})
        _add(archive, "manifest.json", json.dumps(manifest).encode())
    return buffer.getvalue()


@contextmanager
def many_images(client: docker.DockerClient, batch: str, count: int) -> Iterator[str]:
    """``count`` distinct images in the engine, labelled ``batch`` (the label filter given)."""
    selector = f"{LABEL}={batch}"
    try:
        for line in client.api.load_image(archive_of(batch, count)):
            if isinstance(line, dict) and line.get("error"):
                raise RuntimeError(line["error"])
        yield selector
    finally:
        client.api.prune_images(filters={"dangling": True, "label": [selector]})
