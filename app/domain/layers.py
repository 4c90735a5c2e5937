"""Layers: which history step made each one, which images share it, what disk it really costs.

An image's ``RootFS.Layers`` are *diff ids* (digests of uncompressed layer tars), base first. The
engine stores a layer under its *chain id*, which also covers every layer below it, so two images
share a layer on disk exactly when they have the same chain id at that position.

The engine's history endpoint lists every build step (newest first) with the size of the layer it
made, and 0 for steps that made none (ENV, CMD, ...). It does not say which 0-size steps made an
(empty-bodied) layer, so :func:`align_history` matches steps to layers: every step with a size
made a layer; among 0-size steps it prefers ones that are not config-only instructions. The sizes
are exact either way (a layer matched to a 0-size step has size 0); only ``created_by`` of such an
empty-bodied layer could be attributed to a neighbouring 0-size step in an ambiguous history.

Plain logic: no flask, no docker.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

# Digest of an empty tar: a layer with no content (old builders and some registries keep them).
EMPTY_LAYER_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

_CONFIG_ONLY = re.compile(
    r"(?:#\(nop\)\s*|^)(?:ENV|CMD|LABEL|EXPOSE|ENTRYPOINT|USER|VOLUME|ARG|STOPSIGNAL|HEALTHCHECK"
    r"|SHELL|ONBUILD|MAINTAINER)\b",
)
_INF = float("inf")


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """The chain id of each layer: ``chain(n) = sha256(chain(n-1) + " " + diff(n))``."""
    chain: list[str] = []
    previous: str | None = None
    for diff_id in diff_ids:
        if previous is None:
            previous = diff_id
        else:
            previous = "sha256:" + hashlib.sha256(f"{previous} {diff_id}".encode()).hexdigest()
        chain.append(previous)
    return chain


def looks_config_only(created_by: str) -> bool:
    """Whether a history step reads like an instruction that changes only the config."""
    return bool(_CONFIG_ONLY.search(created_by or ""))


def align_history(diff_ids: list[str], steps: list[dict[str, Any]]) -> list[int | None]:
    """For each layer, the index of the history step (oldest first) that made it, or None.

    ``steps`` are history entries oldest first, each with ``size`` and ``created_by``. Returns all
    None when no alignment respects the sizes (a history that does not describe these layers).
    """
    n_layers, n_steps = len(diff_ids), len(steps)
    if n_layers == 0:
        return []

    def cost(layer: int, step: int) -> float:
        size = steps[step].get("size") or 0
        empty_layer = diff_ids[layer] == EMPTY_LAYER_DIFF_ID
        if size > 0:
            return _INF if empty_layer else 0.0
        if empty_layer:
            return 0.0
        return 3.0 if looks_config_only(steps[step].get("created_by") or "") else 1.0

    # best[i][j]: least cost of giving layers[:i] to steps[:j]; skipping a sized step is forbidden.
    best = [[_INF] * (n_steps + 1) for _ in range(n_layers + 1)]
    best[0][0] = 0.0
    for j in range(1, n_steps + 1):
        sized = (steps[j - 1].get("size") or 0) > 0
        best[0][j] = _INF if sized else best[0][j - 1]
    for i in range(1, n_layers + 1):
        for j in range(1, n_steps + 1):
            skip = _INF if (steps[j - 1].get("size") or 0) > 0 else best[i][j - 1]
            take = best[i - 1][j - 1] + cost(i - 1, j - 1)
            best[i][j] = min(skip, take)
    if best[n_layers][n_steps] == _INF:
        return [None] * n_layers
    mapping: list[int | None] = [None] * n_layers
    i, j = n_layers, n_steps
    while i > 0:
        take = best[i - 1][j - 1] + cost(i - 1, j - 1)
        if best[i][j] == take:
            mapping[i - 1] = j - 1
            i -= 1
        j -= 1
    return mapping


def layer_sizes(diff_ids: list[str], steps: list[dict[str, Any]]) -> dict[str, int]:
    """Chain id → size in bytes for every layer the history accounts for."""
    chains = chain_ids(diff_ids)
    sizes: dict[str, int] = {}
    for chain_id, step in zip(chains, align_history(diff_ids, steps), strict=True):
        if step is not None:
            sizes[chain_id] = int(steps[step].get("size") or 0)
    return sizes


def holders(images: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Chain id → ids of the images (``{"id", "diff_ids"}``) that hold that layer."""
    held: dict[str, list[str]] = {}
    for image in images:
        for chain_id in chain_ids(image["diff_ids"]):
            held.setdefault(chain_id, []).append(image["id"])
    return held


SHARED_LIMIT = 50  # images named per layer; ``shared_count`` counts them all


def describe_layers(
    image_id: str,
    diff_ids: list[str],
    steps: list[dict[str, Any]],
    held_by: Mapping[str, list[str]],
    tags: Mapping[str, list[str]],
) -> list[dict[str, Any]]:
    """The image's layers, base first, with their step, size and the other images holding them.

    ``steps``: history oldest first (``created``, ``created_by``, ``comment``, ``size``, ``id``);
    ``held_by``: from :func:`holders`; ``tags``: image id → its tags. A layer names at most
    ``SHARED_LIMIT`` other images (tagged ones first), so that a base held by thousands of images
    keeps the answer small; ``shared_count`` says how many there are.
    """
    chains = chain_ids(diff_ids)
    mapping = align_history(diff_ids, steps)
    layers = []
    for index, (diff_id, chain_id, step_index) in enumerate(
        zip(diff_ids, chains, mapping, strict=True)
    ):
        step = steps[step_index] if step_index is not None else None
        others = sorted(
            {i for i in held_by.get(chain_id, []) if i != image_id},
            key=lambda o: (tags.get(o) == [], o),
        )
        layers.append(
            {
                "index": index,
                "diff_id": diff_id,
                "chain_id": chain_id,
                "size": int(step.get("size") or 0) if step else None,
                "created": step.get("created") if step else None,
                "created_by": step.get("created_by") if step else None,
                "comment": step.get("comment") if step else None,
                "author": step.get("author") if step else None,
                "step_image": step.get("id") if step else None,
                "shared_with": [
                    {"id": other, "repo_tags": list(tags.get(other, []))}
                    for other in others[:SHARED_LIMIT]
                ],
                "shared_count": len(others),
            }
        )
    return layers


def layer_totals(layers: list[dict[str, Any]]) -> dict[str, int | None]:
    """``unique_size`` (layers no other image holds) and ``shared_size`` of described layers."""
    if any(layer["size"] is None for layer in layers):
        return {"unique_size": None, "shared_size": None}
    unique = sum(layer["size"] for layer in layers if not layer["shared_with"])
    shared = sum(layer["size"] for layer in layers if layer["shared_with"])
    return {"unique_size": unique, "shared_size": shared}


def usage_from_df(images: list[dict[str, Any]], layers_size: int) -> dict[str, int]:
    """Totals from the engine's ``/system/df`` (top-level images, as ``docker images`` lists).

    apparent: sum of the image sizes; actual: every layer once (``LayersSize``); shared: bytes of
    layers held by two or more images, counted once.
    """
    apparent = sum(int(i.get("Size") or 0) for i in images)
    unique = 0
    for image in images:
        size = int(image.get("Size") or 0)
        shared = image.get("SharedSize")
        unique += size - (int(shared) if isinstance(shared, int) and shared >= 0 else 0)
    return {
        "images": len(images),
        "apparent_size": apparent,
        "actual_size": int(layers_size),
        "shared_size": max(int(layers_size) - unique, 0),
    }


def usage_from_layers(images: list[dict[str, Any]]) -> dict[str, int]:
    """The same totals for a chosen set of images (``{"id", "size", "diff_ids", "sizes"}``).

    ``sizes`` maps chain id → bytes (from :func:`layer_sizes`); every distinct layer counts once.
    """
    count: dict[str, int] = {}
    size_of: dict[str, int] = {}
    for image in images:
        for chain_id in set(chain_ids(image["diff_ids"])):
            count[chain_id] = count.get(chain_id, 0) + 1
            if chain_id in image["sizes"]:
                size_of[chain_id] = image["sizes"][chain_id]
    return {
        "images": len(images),
        "apparent_size": sum(int(i["size"]) for i in images),
        "actual_size": sum(size_of.get(c, 0) for c in count),
        "shared_size": sum(size_of.get(c, 0) for c, n in count.items() if n > 1),
    }
