"""Images with chosen layer stacks, made by one ``docker load`` of an archive built here.

Layers are named; a layer of a given name always has the same content, so images naming the same
layers in the same order share them on disk, as pulled images of one family do. Loaded images
have no parent image.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence

CREATED = "2026-01-01T00:00:00Z"


def layer_tar(name: str, size: int) -> bytes:
    """A layer: one file of ``size`` bytes whose content depends on ``name``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = (hashlib.sha256(name.encode()).hexdigest() * (size // 64 + 1)).encode()[:size]
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def layered_archive(
    images: Sequence[tuple[Sequence[str], Sequence[str]]],
    sizes: Mapping[str, int],
    labels: Mapping[str, str],
) -> bytes:
    """A ``docker save`` archive: one image per ``(repo_tags, layer names)``, base first, each
    layer ``sizes[name]`` bytes, every image labelled ``labels`` (and its index)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        digests: dict[str, str] = {}
        manifest = []
        for index, (tags, layers) in enumerate(images):
            for layer in layers:
                if layer not in digests:
                    data = layer_tar(layer, sizes[layer])
                    digests[layer] = "sha256:" + hashlib.sha256(data).hexdigest()
                    add(f"{layer}/layer.tar", data)
            config = {
                "architecture": "amd64",
                "os": "linux",
                "created": CREATED,
                "config": {"Labels": {**labels, "berth-test.index": str(index)}},
                "rootfs": {"type": "layers", "diff_ids": [digests[n] for n in layers]},
                "history": [{"created": CREATED, "created_by": f"layer {n}"} for n in layers],
            }
            blob = json.dumps(config).encode()
            name = hashlib.sha256(blob).hexdigest() + ".json"
            add(name, blob)
            manifest.append(
                {
                    "Config": name,
                    "RepoTags": list(tags),
                    "Layers": [f"{n}/layer.tar" for n in layers],
                }
            )
        add("manifest.json", json.dumps(manifest).encode())
    return buffer.getvalue()
