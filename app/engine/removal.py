"""Delete and prune: the engine does them; ``dry_run`` and refusals are explained by replay.

Their ``dry_run`` forms replay the engine's rules (``app.domain.deletion``) on a snapshot of the
image store, and a real 409 is explained with the same replay (which containers, and whether
``force`` would help).
"""

from __future__ import annotations

from typing import Any

import docker.errors

from app.domain.deletion import (
    DeleteConflict,
    ImageStore,
    StoredContainer,
    StoredImage,
    force_outcome,
    simulate_delete,
)
from app.engine.base import explanation, translate
from app.engine.image_facts import ImageFactsMixin, short_id
from app.errors import (
    BerthError,
    Conflict,
    ImageHasChildren,
    ImageHasReferences,
    ImageInUse,
    ImageNotFound,
)


class RemovalMixin(ImageFactsMixin):
    """``docker rmi`` and ``docker image prune``, with their dry runs."""

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
        label = f"{short_id(target)}" + (f" ({ref})" if ref != image_id else "")
        if conflict.kind == "children":
            children = store.children(target)
            return ImageHasChildren(
                f"Image {label} has {len(children)} dependent child image(s) (built or "
                "committed on top of it). The engine never deletes an image with children, "
                "even with force: delete the children first.",
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
            return ImageHasReferences(
                f"Image {label} is referenced by {len(references)} names in several "
                "repositories; deleting it by id needs force=true, which removes every one of "
                "them. Or delete each name instead.",
                image=target,
                references=references,
                force_would_help=helps,
                force_outcome=outcome,
            )
        users = store.using(target)
        running = [c for c in users if c.running]
        stopped = [c for c in users if not c.running]
        described = ", ".join(f"{c.name or short_id(c.id)} ({c.state})" for c in users)
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
                reason = "used by container(s) " + ", ".join(
                    c.name or short_id(c.id) for c in users
                )
            elif store.children(image_id):
                reason = "has dependent child images"
            else:
                reason = "the engine keeps it (see the deletion rules)"
            skipped.append({"id": image_id, "reason": reason})
        outcome_dict: dict[str, Any] = dict(outcome)
        outcome_dict["space_reclaimed"] = sum(sizes.get(c, 0) for c in outcome["deleted_layers"])
        outcome_dict["skipped"] = skipped
        return outcome_dict


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
