"""What the engine does when it deletes or prunes images, computed without changing anything.

The engine's rules (Docker 20.10, ``daemon/images/image_delete.go`` and ``image_prune.go``),
replayed on a snapshot of the image store so that ``dry_run`` can answer exactly what a real
``DELETE /v1/images/{ref}`` or ``POST /v1/images/prune`` would untag and delete:

* Deleting by **name** removes that one reference (``name`` means ``name:latest``). Without
  ``force`` it is refused when it is the image's only tag and a container (any state) uses the
  image. Once the image has no reference left it is deleted *quietly*: a conflict (children, a
  container) leaves it in place, untagged, without error.
* Deleting by **id** untags the image when all its references name one repository, then deletes
  it. Hard conflicts (child images, a running container) can never be forced; soft conflicts (a
  stopped container, tags in several repositories) yield to ``force``.
* Unless ``noprune``, each parent left without references and children is deleted too.
* A layer is removed with the last image that holds it, unless a container still sits on it.

Plain logic: no flask, no docker. References are kept in the engine's "familiar" form
(``app.domain.familiar``); the ``until`` and ``label`` filters are in ``app.domain.prune_filters``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from app.domain.familiar import (
    familiar,
    is_canonical,
    is_id_prefix,
    is_single_reference,
    ref_name,
    sorted_references,
)
from app.domain.prune_filters import match_labels

RUNNING_STATES = frozenset({"running", "paused", "restarting"})

CHILD, RUNNING, REFERENCE, STOPPED = 1, 2, 4, 8
HARD = CHILD | RUNNING
SOFT = REFERENCE | STOPPED


# --- the snapshot -----------------------------------------------------------------------------


@dataclass
class StoredImage:
    """One image of the store: what the deletion rules look at."""

    id: str
    parent: str | None = None
    references: list[str] = field(default_factory=list)
    chain: list[str] = field(default_factory=list)
    created_ns: int = 0
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class StoredContainer:
    id: str
    name: str
    image_id: str
    state: str

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES


class DeleteConflict(Exception):
    """The engine would refuse: ``kind`` is children, running, stopped, reference or in_use."""

    def __init__(self, kind: str, image_id: str, hard: bool, used: bool, reference: str = ""):
        super().__init__(kind)
        self.kind = kind
        self.image_id = image_id
        self.hard = hard
        self.used = used
        self.reference = reference


@dataclass
class Outcome:
    untagged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    deleted_layers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "untagged": list(self.untagged),
            "deleted": list(self.deleted),
            "deleted_layers": list(self.deleted_layers),
        }


class ImageStore:
    """A mutable copy of the engine's image store on which deletions are replayed."""

    def __init__(self, images: Iterable[StoredImage], containers: Iterable[StoredContainer]):
        self.images = {i.id: _copy(i) for i in images}
        self.containers = list(containers)
        self.outcome = Outcome()
        # Layers a container sits on stay while the container exists, whatever happens to images.
        self._container_chains: set[str] = set()
        for container in self.containers:
            image = self.images.get(container.image_id)
            if image is not None:
                self._container_chains.update(image.chain)
        # How many images in the store hold each layer (chain id).
        self._holders: dict[str, int] = {}
        for image in self.images.values():
            for chain_id in set(image.chain):
                self._holders[chain_id] = self._holders.get(chain_id, 0) + 1

    # queries

    def references(self, image_id: str) -> list[str]:
        return sorted_references(self.images[image_id].references)

    def children(self, image_id: str) -> list[str]:
        return [i.id for i in self.images.values() if i.parent == image_id]

    def using(self, image_id: str) -> list[StoredContainer]:
        return [c for c in self.containers if c.image_id == image_id]

    def is_dangling(self, image_id: str) -> bool:
        return not self.images[image_id].references and not self.children(image_id)

    def heads(self) -> list[str]:
        parents = {i.parent for i in self.images.values() if i.parent}
        return [i for i in self.images if i not in parents]

    def conflict(self, image_id: str, mask: int) -> DeleteConflict | None:
        if mask & CHILD and self.children(image_id):
            return DeleteConflict("children", image_id, hard=True, used=False)
        if mask & RUNNING and any(c.running for c in self.using(image_id)):
            return DeleteConflict("running", image_id, hard=True, used=True)
        if mask & REFERENCE and self.images[image_id].references:
            return DeleteConflict("reference", image_id, hard=False, used=False)
        if mask & STOPPED and any(not c.running for c in self.using(image_id)):
            return DeleteConflict("stopped", image_id, hard=False, used=True)
        return None

    # changes

    def _untag(self, image_id: str, reference: str) -> None:
        refs = self.images[image_id].references
        if reference in refs:
            refs.remove(reference)
        self.outcome.untagged.append(reference)

    def _remove(self, image_id: str) -> None:
        image = self.images.pop(image_id)
        self.outcome.deleted.append(image_id)
        for chain_id in set(image.chain):
            self._holders[chain_id] -= 1
        for chain_id in reversed(image.chain):
            if self._holders[chain_id] > 0 or chain_id in self._container_chains:
                break  # the layers below are held too (a layer holds its parent)
            self.outcome.deleted_layers.append(chain_id)

    # the engine's algorithm

    def delete(self, text: str, image_id: str, force: bool, prune: bool) -> None:
        """``docker rmi`` of ``text`` (a reference or id prefix) that resolved to ``image_id``."""
        refs = self.references(image_id)
        removed_reference = False
        if not is_id_prefix(image_id, text):
            if not force and is_single_reference(refs) and self.using(image_id):
                raise DeleteConflict("in_use", image_id, hard=False, used=True, reference=text)
            reference = familiar(text)
            self._untag(image_id, reference)
            refs = self.references(image_id)
            if not is_canonical(reference):
                name = ref_name(reference)
                if not any(not is_canonical(r) and ref_name(r) == name for r in refs):
                    for r in list(refs):
                        if is_canonical(r) and ref_name(r) == name:
                            self._untag(image_id, r)
                    refs = self.references(image_id)
            if refs:
                return
            removed_reference = True
        elif is_single_reference(refs):
            mask = HARD if force else HARD | STOPPED
            found = self.conflict(image_id, mask)
            if found:
                raise found
            for r in refs:
                self._untag(image_id, r)
        self._delete_helper(image_id, force, prune, quiet=removed_reference)

    def _delete_helper(self, image_id: str, force: bool, prune: bool, quiet: bool) -> None:
        found = self.conflict(image_id, HARD if force else HARD | SOFT)
        if found:
            if quiet and (not self.is_dangling(image_id) or found.used):
                return
            raise found
        parent = self.images[image_id].parent
        for r in self.references(image_id):
            self._untag(image_id, r)
        self._remove(image_id)
        if prune and parent and parent in self.images:
            self._delete_helper(parent, False, True, True)

    def prune(
        self,
        dangling_only: bool = True,
        until_ns: int | None = None,
        labels: list[str] | None = None,
    ) -> list[str]:
        """``docker image prune``; returns the candidates it tried (their deletion may fail).

        Candidates are taken before anything is deleted, as the engine does: with
        ``dangling_only``, heads (no children) without a tag; otherwise every image except
        untagged intermediates. ``until_ns`` keeps images created after it, ``labels`` must all
        match. Parents left dangling by a deletion go too.
        """
        pool = self.heads() if dangling_only else list(self.images)
        candidates: list[str] = []
        for image_id in pool:
            image = self.images[image_id]
            if not image.references and self.children(image_id):
                continue
            if until_ns is not None and image.created_ns > until_ns:
                continue
            if labels and not match_labels(labels, image.labels):
                continue
            if dangling_only and any(not is_canonical(r) for r in image.references):
                continue  # tagged: never a dangling candidate
            candidates.append(image_id)
        candidates.sort(key=lambda i: (self.images[i].created_ns, i))
        for image_id in candidates:
            if image_id not in self.images:
                continue
            refs = self.references(image_id)
            if refs:
                for r in refs:
                    if image_id not in self.images:
                        break
                    try:
                        self.delete(r, image_id, force=False, prune=True)
                    except DeleteConflict:
                        continue
            else:
                try:
                    self.delete(image_id.partition(":")[2], image_id, force=False, prune=True)
                except DeleteConflict:
                    continue
        return candidates


def dangling_images(store: ImageStore) -> list[str]:
    """The images ``docker images -f dangling=true`` lists: heads without a tag."""
    return [
        i for i in store.heads() if not any(not is_canonical(r) for r in store.images[i].references)
    ]


def _copy(image: StoredImage) -> StoredImage:
    return StoredImage(
        id=image.id,
        parent=image.parent,
        references=list(image.references),
        chain=list(image.chain),
        created_ns=image.created_ns,
        labels=dict(image.labels),
    )


def simulate_delete(
    store: ImageStore, text: str, image_id: str, force: bool, prune: bool
) -> dict[str, list[str]]:
    """The untagged/deleted/deleted_layers a real delete would report; raises DeleteConflict."""
    store.delete(text, image_id, force=force, prune=prune)
    return store.outcome.as_dict()


def force_outcome(store: ImageStore, text: str, image_id: str, prune: bool) -> str:
    """What ``force=true`` would achieve: ``deleted``, ``untagged_only`` or ``conflict``.

    ``store`` is consumed (the deletion is replayed on it).
    """
    try:
        store.delete(text, image_id, force=True, prune=prune)
    except DeleteConflict:
        return "conflict"
    return "deleted" if image_id in store.outcome.deleted else "untagged_only"
