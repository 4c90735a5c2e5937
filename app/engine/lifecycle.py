"""Image lifecycle: commit, pull, delete, prune, and the layer accounting behind them.

Deletion and pruning go to the engine; their ``dry_run`` forms replay the engine's rules
(``app.domain.deletion``) on a snapshot of the image store, and a real 409 is explained with
the same replay (which containers, and whether ``force`` would help). Layer sizes and sharing come
from ``app.domain.layers`` over the engine's inspect, history and ``/system/df`` data.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import docker.errors
import requests.exceptions

from app.domain.deletion import (
    DeleteConflict,
    ImageStore,
    StoredContainer,
    StoredImage,
    familiar_name,
    force_outcome,
    rfc3339_ns,
    simulate_delete,
)
from app.domain.layers import (
    chain_ids,
    describe_layers,
    holders,
    layer_sizes,
    layer_totals,
    usage_from_df,
    usage_from_layers,
)
from app.domain.platforms import describe, platform_matches
from app.domain.progress import classify_registry_error
from app.domain.registry_auth import encode_registry_auth
from app.engine.base import EngineConnection, explanation, rfc3339, translate
from app.errors import (
    BerthError,
    Conflict,
    EngineUnavailable,
    ImageInUse,
    ImageNotFound,
    RegistryError,
    ValidationFailed,
)

_CACHE_LIMIT = 20000


def _tags(raw: list[str] | None) -> list[str]:
    return [t for t in raw or [] if t != "<none>:<none>"]


def _digests(raw: list[str] | None) -> list[str]:
    return [d for d in raw or [] if d != "<none>@<none>"]


def _short(image_id: str) -> str:
    return image_id.partition(":")[2][:12] or image_id[:12]


class _ImmutableCache:
    """Facts about an image id that cannot change (an id is the digest of the image's config)."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, image_id: str) -> Any:
        return self._data.get((kind, image_id))

    def put(self, kind: str, image_id: str, value: Any) -> Any:
        with self._lock:
            if len(self._data) >= _CACHE_LIMIT:
                self._data.clear()
            self._data[(kind, image_id)] = value
        return value


class LifecycleMixin:
    """Commit, pull, delete, prune, layers and usage on one engine connection."""

    connection: EngineConnection

    @property
    def _facts_cache(self) -> _ImmutableCache:
        cache = self.__dict__.get("_lifecycle_cache")
        if cache is None:
            cache = self.__dict__.setdefault("_lifecycle_cache", _ImmutableCache())
        return cache

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
            url = api._url("/images/create")
            response = api._post(url, params=params, headers=headers, stream=True, timeout=None)
        try:
            api._raise_for_status(response)
        except docker.errors.APIError as e:
            response.close()
            message = explanation(e)
            if e.status_code == 400:
                raise ValidationFailed(message, code="ENGINE_REJECTED") from e
            raise classify_registry_error(message) from e
        return self._guarded_events(api._stream_helper(response, decode=True))

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
            raise BerthError(
                f"The registry has no image for platform '{platform}': '{reference}' is for "
                f"{found} (the engine stored it locally anyway).",
                status=404,
                code="PLATFORM_NOT_AVAILABLE",
                title="No image for that platform",
                platform=platform,
                found=found,
            )
        name = familiar_name(repository)
        digest = None
        for item in _digests(raw.get("RepoDigests")):
            item_name, _, item_digest = item.partition("@")
            if item_name == name:
                digest = item_digest
                break
        return {"id": raw["Id"], "reference": reference, "digest": digest}

    # --- facts about images (cached by id) ----------------------------------------------------

    def _image_facts(self, image_id: str) -> dict[str, Any] | None:
        """Diff ids, creation time, author, labels and size of an image; None if it is gone."""
        cached = self._facts_cache.get("facts", image_id)
        if cached is not None:
            return cached
        try:
            with translate("image", image_id):
                raw = self.connection.api.inspect_image(image_id)
        except BerthError as e:
            if e.status == 404:
                return None
            raise
        config = raw.get("Config") or {}
        facts = {
            "diff_ids": list((raw.get("RootFS") or {}).get("Layers") or []),
            "created_ns": rfc3339_ns(raw.get("Created")),
            "author": raw.get("Author") or "",
            "labels": config.get("Labels") or {},
            "size": int(raw.get("Size") or 0),
        }
        return self._facts_cache.put("facts", raw["Id"], facts)

    def _image_steps(self, image_id: str) -> list[dict[str, Any]]:
        """The image's history, oldest step first, without the (changeable) step image ids."""
        cached = self._facts_cache.get("steps", image_id)
        if cached is not None:
            return cached
        with translate("image", image_id):
            raw = self.connection.api.history(image_id)
        steps = [
            {
                "created": rfc3339(item.get("Created")),
                "created_by": item.get("CreatedBy") or "",
                "comment": item.get("Comment") or "",
                "size": int(item.get("Size") or 0),
            }
            for item in reversed(raw)
        ]
        return self._facts_cache.put("steps", image_id, steps)

    def _all_images(self) -> list[dict[str, Any]]:
        with translate():
            return self.connection.api.images(all=True)

    def _all_containers(self) -> list[StoredContainer]:
        with translate("container"):
            raw = self.connection.api.containers(all=True)
        return [
            StoredContainer(
                id=c["Id"],
                name=(c.get("Names") or ["/"])[0].lstrip("/"),
                image_id=c.get("ImageID") or "",
                state=c.get("State") or "",
            )
            for c in raw
        ]

    def _snapshot(self, with_layers: bool) -> tuple[list[StoredImage], list[StoredContainer]]:
        """The image store and containers as the deletion rules see them."""
        images: list[StoredImage] = []
        for item in self._all_images():
            facts = self._image_facts(item["Id"]) if with_layers else None
            if with_layers and facts is None:
                continue  # deleted meanwhile
            images.append(
                StoredImage(
                    id=item["Id"],
                    parent=item.get("ParentId") or None,
                    references=_tags(item.get("RepoTags")) + _digests(item.get("RepoDigests")),
                    chain=chain_ids(facts["diff_ids"]) if facts else [],
                    created_ns=facts["created_ns"]
                    if facts
                    else int(item.get("Created") or 0) * 1_000_000_000,
                    labels=(facts["labels"] if facts else item.get("Labels")) or {},
                )
            )
        return images, self._all_containers()

    def _sizes_of(self, image_ids: list[str]) -> dict[str, int]:
        """Chain id → bytes for the layers of ``image_ids`` (from their history)."""
        sizes: dict[str, int] = {}
        for image_id in image_ids:
            facts = self._image_facts(image_id)
            if facts is None:
                continue
            sizes.update(layer_sizes(facts["diff_ids"], self._image_steps(image_id)))
        return sizes

    # --- delete -------------------------------------------------------------------------------

    def delete_image(
        self, ref: str, *, force: bool, noprune: bool, dry_run: bool
    ) -> dict[str, list[str]]:
        """``docker rmi``: ``{"untagged", "deleted", "deleted_layers"}``; dry_run changes nothing.

        Raises ImageInUse (409) with the containers and what ``force`` would do, or Conflict
        (IMAGE_HAS_CHILDREN, IMAGE_HAS_REFERENCES) when the engine would refuse.
        """
        image_id = self.inspect_image_raw(ref)["Id"]  # type: ignore[attr-defined]
        if dry_run:
            images, containers = self._snapshot(with_layers=True)
            if not any(image.id == image_id for image in images):
                raise ImageNotFound(f"No such image: {ref}", image=ref)
            try:
                return simulate_delete(
                    ImageStore(images, containers), ref, image_id, force, not noprune
                )
            except DeleteConflict as conflict:
                raise self._conflict_error(
                    conflict, ref, image_id, noprune, images, containers
                ) from None
        known = {item["Id"] for item in self._all_images()}
        with translate("image", ref):
            try:
                records = self.connection.stream_api.remove_image(ref, force=force, noprune=noprune)
            except docker.errors.APIError as e:
                if e.status_code != 409:
                    raise
                raise self._explain_engine_conflict(
                    explanation(e), ref, image_id, force, noprune
                ) from e
        return _split_records(records or [], known)

    def _explain_engine_conflict(
        self, message: str, ref: str, image_id: str, force: bool, noprune: bool
    ) -> BerthError:
        images, containers = self._snapshot(with_layers=False)
        try:
            ImageStore(images, containers).delete(ref, image_id, force=force, prune=not noprune)
        except DeleteConflict as conflict:
            return self._conflict_error(conflict, ref, image_id, noprune, images, containers)
        return Conflict(message)

    def _conflict_error(
        self,
        conflict: DeleteConflict,
        ref: str,
        image_id: str,
        noprune: bool,
        images: list[StoredImage],
        containers: list[StoredContainer],
    ) -> BerthError:
        store = ImageStore(images, containers)
        outcome = force_outcome(ImageStore(images, containers), ref, image_id, not noprune)
        helps = outcome == "deleted"
        target = conflict.image_id
        label = f"{_short(target)}" + (f" ({ref})" if ref != image_id else "")
        if conflict.kind == "children":
            children = store.children(target)
            return Conflict(
                f"Image {label} has {len(children)} dependent child image(s) (built or "
                "committed on top of it). The engine never deletes an image with children, "
                "even with force: delete the children first.",
                code="IMAGE_HAS_CHILDREN",
                title="Image has dependent child images",
                image=target,
                children=[
                    {"id": c, "repo_tags": [r for r in store.images[c].references if "@" not in r]}
                    for c in children
                ],
                force_would_help=False,
                force_outcome=outcome,
            )
        if conflict.kind == "reference":
            references = store.references(target)
            return Conflict(
                f"Image {label} is referenced by {len(references)} names in several "
                "repositories; deleting it by id needs force=true, which removes every one of "
                "them. Or delete each name instead.",
                code="IMAGE_HAS_REFERENCES",
                title="Image has several references",
                image=target,
                references=references,
                force_would_help=helps,
                force_outcome=outcome,
            )
        users = store.using(target)
        running = [c for c in users if c.running]
        stopped = [c for c in users if not c.running]
        described = ", ".join(f"{c.name or _short(c.id)} ({c.state})" for c in users)
        if running:
            effect = (
                f"only remove the name '{ref}' and keep the image, untagged, while the "
                "container runs"
                if outcome == "untagged_only"
                else "not help: the engine never deletes an image that a running container uses"
            )
            advice = "Stop and remove the running container(s) first."
        else:
            effect = (
                "delete it: the stopped container(s) keep their filesystem but lose their image"
                if helps
                else "not delete it"
            )
            advice = "Or remove the container(s) first."
        return ImageInUse(
            f"Image {label} is used by {len(users)} container(s): {described}. "
            f"force=true would {effect}. {advice}",
            image=target,
            containers=[{"id": c.id, "name": c.name, "state": c.state} for c in users],
            running=len(running),
            stopped=len(stopped),
            force_would_help=helps,
            force_outcome=outcome,
        )

    # --- prune --------------------------------------------------------------------------------

    def prune_images(
        self,
        *,
        dangling: bool = True,
        until_ns: int | None = None,
        labels: list[str] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """``docker image prune``: what was (or, with dry_run, would be) removed and freed."""
        if dry_run:
            return self._simulate_prune(dangling, until_ns, labels)
        filters: dict[str, Any] = {"dangling": ["true" if dangling else "false"]}
        if until_ns is not None:
            filters["until"] = [str(until_ns // 1_000_000_000)]
        if labels:
            filters["label"] = list(labels)
        known = {item["Id"] for item in self._all_images()}
        with translate():
            raw = self.connection.stream_api.prune_images(filters=filters)
        result: dict[str, Any] = _split_records(raw.get("ImagesDeleted") or [], known)
        result["space_reclaimed"] = int(raw.get("SpaceReclaimed") or 0)
        return result

    def _simulate_prune(
        self, dangling: bool, until_ns: int | None, labels: list[str] | None
    ) -> dict[str, Any]:
        images, containers = self._snapshot(with_layers=True)
        store = ImageStore(images, containers)
        candidates = store.prune(dangling, until_ns, labels)
        outcome = store.outcome.as_dict()
        sizes = self._sizes_of(outcome["deleted"])
        skipped = []
        for image_id in candidates:
            if image_id not in store.images:
                continue
            users = store.using(image_id)
            if users:
                reason = "used by container(s) " + ", ".join(c.name or _short(c.id) for c in users)
            elif store.children(image_id):
                reason = "has dependent child images"
            else:
                reason = "the engine keeps it (see the deletion rules)"
            skipped.append({"id": image_id, "reason": reason})
        outcome_dict: dict[str, Any] = dict(outcome)
        outcome_dict["space_reclaimed"] = sum(sizes.get(c, 0) for c in outcome["deleted_layers"])
        outcome_dict["skipped"] = skipped
        return outcome_dict

    # --- layers and usage ---------------------------------------------------------------------

    def image_layers(self, ref: str) -> dict[str, Any]:
        """The image's layers, base first: size, the step that made it, the images sharing it."""
        raw = self.inspect_image_raw(ref)  # type: ignore[attr-defined]
        image_id = raw["Id"]
        listing = self._all_images()
        tags = {item["Id"]: _tags(item.get("RepoTags")) for item in listing}
        parents = {item["Id"]: item.get("ParentId") or None for item in listing}
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
            "repo_tags": _tags(raw.get("RepoTags")),
            "size": int(raw.get("Size") or 0),
            **layer_totals(layers),
            "layers": layers,
        }

    def usage(self, references: list[str] | None = None) -> dict[str, Any]:
        """Apparent, actual and shared bytes of the local images (or of those matching)."""
        if not references:
            with translate():
                df = self.connection.api.df()
            top = df.get("Images") or []
            totals = usage_from_df(top, int(df.get("LayersSize") or 0))
            # As GET /v1/images?dangling=true: untagged and used by no container (df counts them).
            dangling = [
                i
                for i in top
                if not _tags(i.get("RepoTags")) and int(i.get("Containers") or 0) <= 0
            ]
            images, containers = self._snapshot(with_layers=True)
            store = ImageStore(images, containers)
            store.prune(True, None, None)
            freed = self._sizes_of(store.outcome.deleted)
            reclaimable = sum(freed.get(c, 0) for c in store.outcome.deleted_layers)
        else:
            with translate():
                top = self.connection.api.images(filters={"reference": list(references)})
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
            dangling = [i for i in top if not _tags(i.get("RepoTags"))]
            reclaimable = None
        return {
            **totals,
            "dangling": {
                "count": len(dangling),
                "size": sum(int(i.get("Size") or 0) for i in dangling),
                "reclaimable": reclaimable,
            },
        }


def _split_records(records: list[dict[str, Any]], image_ids: set[str]) -> dict[str, list[str]]:
    """Engine delete records → untagged references, deleted images, deleted layers."""
    result: dict[str, list[str]] = {"untagged": [], "deleted": [], "deleted_layers": []}
    for record in records:
        if record.get("Untagged"):
            result["untagged"].append(record["Untagged"])
        elif record.get("Deleted"):
            key = "deleted" if record["Deleted"] in image_ids else "deleted_layers"
            result[key].append(record["Deleted"])
    return result
