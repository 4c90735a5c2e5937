"""Layers and disk usage: sizes and sharing from ``app.domain.layers`` over the engine's
inspect, history and ``/system/df`` answers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker.errors

from app.domain.deletion import ImageStore
from app.domain.layers import (
    chain_ids,
    describe_layers,
    holders,
    layer_sizes,
    layer_totals,
    usage_from_df,
    usage_from_layers,
)
from app.domain.reclaim import Candidates, Doomed, Undecided, doomed_heads, freed_bytes
from app.engine.base import translate
from app.engine.image_facts import ImageFactsMixin, repo_tags
from app.errors import BerthError

log = logging.getLogger("berth.engine")

# The engine runs one disk-usage computation at a time and answers 500 "a disk usage operation
# is already running" to any other: calls are queued in this process, and retried a moment later
# when another process (gunicorn worker) holds the engine's.
_DF_BUSY = "already running"
_DF_RETRIES = 50
_DF_RETRY_DELAY = 0.1


class UsageMixin(ImageFactsMixin):
    """An image's layers, and the apparent, actual and shared bytes of the local images."""

    def image_layers(self, ref: str) -> dict[str, Any]:
        """The image's layers, base first: size, the step that made it, the images sharing it."""
        raw = self.inspect_image_raw(ref)  # type: ignore[attr-defined]
        image_id = raw["Id"]
        listing = self._all_images()
        tags = {item["Id"]: repo_tags(item.get("RepoTags")) for item in listing}
        parents = {item["Id"]: item.get("ParentId") or None for item in listing}
        self._prefetch("facts", list(tags))
        others = []
        for item in listing:
            facts = self._image_facts(item["Id"])
            if facts is not None:
                others.append({"id": item["Id"], "diff_ids": facts["diff_ids"]})
        diff_ids = list((raw.get("RootFS") or {}).get("Layers") or [])
        steps = [dict(step) for step in self._image_steps(image_id)]
        # The engine names the image of the newest steps by walking the parent chain.
        step_image: str | None = image_id
        for step in reversed(steps):
            step["id"] = step_image
            facts = self._image_facts(step_image) if step_image else None
            step["author"] = facts["author"] if facts else None
            step_image = parents.get(step_image) if step_image else None
        layers = describe_layers(image_id, diff_ids, steps, holders(others), tags)
        return {
            "id": image_id,
            "repo_tags": repo_tags(raw.get("RepoTags")),
            "size": int(raw.get("Size") or 0),
            **layer_totals(layers),
            "layers": layers,
        }

    def usage(self, references: list[str] | None = None) -> dict[str, Any]:
        """Apparent, actual and shared bytes of the local images (or of those matching)."""
        if not references:
            # The engine's /system/df and the prune replay's reads, side by side.
            with ThreadPoolExecutor(max_workers=1) as pool:
                asked = pool.submit(self._system_df)
                listing = self._all_images()
                prunable = self._has_untagged_head(listing)
                freed = self._prune_reclaimable(listing, asked.result) if prunable else 0
                df = asked.result()
            top = df.get("Images") or []
            totals = usage_from_df(top, int(df.get("LayersSize") or 0))
            # As GET /v1/images?dangling=true: untagged and used by no container (df counts them).
            dangling = [
                i
                for i in top
                if not repo_tags(i.get("RepoTags")) and int(i.get("Containers") or 0) <= 0
            ]
            reclaimable = freed
        else:
            with translate():
                top = self.connection.api.images(filters={"reference": list(references)})
            self._prefetch("facts", [item["Id"] for item in top])
            self._prefetch("steps", [item["Id"] for item in top])
            chosen = []
            for item in top:
                facts = self._image_facts(item["Id"])
                if facts is None:
                    continue
                chosen.append(
                    {
                        "id": item["Id"],
                        "size": int(item.get("Size") or 0),
                        "diff_ids": facts["diff_ids"],
                        "sizes": self._sizes_of([item["Id"]]),
                    }
                )
            totals = usage_from_layers(chosen)
            dangling = [i for i in top if not repo_tags(i.get("RepoTags"))]
            reclaimable = None
        return {
            **totals,
            "dangling": {
                "count": len(dangling),
                "size": sum(int(i.get("Size") or 0) for i in dangling),
                "reclaimable": reclaimable,
            },
        }

    def _system_df(self) -> dict[str, Any]:
        """``/system/df``, one call at a time (see ``_DF_BUSY``)."""
        lock = self.__dict__.setdefault("_system_df_lock", threading.Lock())
        with lock, translate():
            attempt = 0
            while True:
                try:
                    return self.connection.api.df()
                except docker.errors.APIError as e:
                    attempt += 1
                    if _DF_BUSY not in str(e.explanation or "") or attempt >= _DF_RETRIES:
                        raise
                time.sleep(_DF_RETRY_DELAY)

    @staticmethod
    def _has_untagged_head(listing: list[dict[str, Any]]) -> bool:
        """Whether a default prune could delete anything: it starts from a top-level image
        (no child) without tags; its untagged parents can go only after it."""
        parents = {i.get("ParentId") for i in listing if i.get("ParentId")}
        return any(not repo_tags(i.get("RepoTags")) and i["Id"] not in parents for i in listing)

    def _prune_reclaimable(
        self, listing: list[dict[str, Any]], system_df: Callable[[], dict[str, Any]]
    ) -> int:
        """Bytes a default prune (dangling images) would free now, by the deletion rules: which
        images go needs no layers; what they free is decided from their own layers and a few
        witnesses (``app.domain.reclaim``), or else by replaying over every image's layers."""
        images, containers = self._snapshot(with_layers=False, listing=listing)
        store = ImageStore(images, containers)
        store.prune(True, None, None)
        if not store.outcome.deleted:
            return 0
        cache = self._facts_cache
        if any(cache.get("facts", i["Id"]) is None for i in listing):  # else replaying is cheap
            try:
                return self._freed_by_witnesses(listing, store.outcome.deleted, system_df)
            except Undecided as e:
                log.debug("prune estimate replays every image: %s", e)
        images, containers = self._snapshot(with_layers=True, listing=listing)
        store = ImageStore(images, containers)
        store.prune(True, None, None)
        freed = self._sizes_of(store.outcome.deleted)
        return sum(freed.get(c, 0) for c in store.outcome.deleted_layers)

    def _freed_by_witnesses(
        self,
        listing: list[dict[str, Any]],
        deleted: list[str],
        system_df: Callable[[], dict[str, Any]],
    ) -> int:
        parents = {i["Id"]: i.get("ParentId") or None for i in listing}
        gone = set(deleted)
        tops, kept = doomed_heads(deleted, parents)
        self._prefetch("facts", tops + list(kept.values()))
        self._prefetch("steps", tops)
        listed = {i["Id"]: i for i in system_df().get("Images") or []}
        doomed = []
        ancestors: list[list[str]] = []
        for image_id in tops:
            entry = listed.get(image_id)
            facts = self._image_facts(image_id)
            if entry is None or facts is None:
                raise Undecided(f"{image_id} changed meanwhile")
            chain = chain_ids(facts["diff_ids"])
            try:
                by_chain = layer_sizes(facts["diff_ids"], self._image_steps(image_id))
            except BerthError as e:
                raise Undecided(f"{image_id}: {e}") from e
            sizes = [by_chain.get(c, -1) for c in chain]
            if -1 in sizes or sum(sizes) != int(entry.get("Size") or 0):
                raise Undecided(f"{image_id}: its layer sizes do not add up to its size")
            held: list[str] = []  # kept images too: witnesses for other deleted images' runs
            if image_id in kept:
                below = self._image_facts(kept[image_id])
                held = chain_ids(below["diff_ids"]) if below else []
                if not held or chain[: len(held)] != held:
                    raise Undecided(f"{image_id}: its parent's layers are not below its own")
                ancestors.append(held)
            shared = int(entry.get("SharedSize") or 0)
            doomed.append(Doomed(image_id, chain, sizes, shared, len(held)))
        candidates = Candidates(
            (image_id, int(entry.get("SharedSize") or 0))
            for image_id, entry in listed.items()
            if image_id not in gone
        )

        def read_chains(image_ids: list[str]) -> list[list[str]]:
            self._prefetch("facts", image_ids)
            read = (self._image_facts(i) for i in image_ids)
            return [chain_ids(facts["diff_ids"]) for facts in read if facts is not None]

        return freed_bytes(doomed, ancestors, candidates, read_chains)
