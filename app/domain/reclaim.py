"""What a dangling prune would free, decided from the images it deletes and a few witnesses.

The full replay (``deletion.ImageStore``) needs the layers of every image, one inspect each. The
engine's ``/system/df`` already says, for each image it lists (tagged images and untagged ones
without children), how many bytes of its layers another listed image holds (``SharedSize``).
A layer holds the one below it, so those shared layers are a bottom run of the image's chain, and
the layers above the run are held by no other listed image: by at most an ancestor (a parent
image the prune keeps). The run itself stays on disk as soon as one kept image holds its top
layer: a *witness*. When no kept image sharing at least the run's bytes holds that top layer, no
kept image holds it at all, so it goes and the layer below is asked about. So the freed bytes
follow from the deleted images' own layers and the kept images sharing as much as they do; when
any figure does not add up, the answer is :class:`Undecided` and the caller replays in full.

Plain logic: no flask, no docker.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass


class Undecided(Exception):
    """The witnesses cannot decide: replay the prune over every image's layers."""


@dataclass
class Doomed:
    """A listed image the prune deletes."""

    id: str
    chain: list[str]  # chain ids, base first
    sizes: list[int]  # bytes of each layer of ``chain``
    shared: int  # /system/df's SharedSize
    kept_below: int = 0  # layers held by the nearest ancestor the prune keeps


def doomed_heads(
    deleted: list[str], parents: Mapping[str, str | None]
) -> tuple[list[str], dict[str, str]]:
    """The deleted images /system/df lists (those without children: a deleted intermediate holds
    a bottom run of one of theirs), and for each the nearest ancestor the prune keeps."""
    gone = set(deleted)
    with_children = {p for p in parents.values() if p}
    heads = [i for i in deleted if i not in with_children]
    kept: dict[str, str] = {}
    for image_id in heads:
        ancestor = parents.get(image_id)
        while ancestor is not None and ancestor in gone:
            ancestor = parents.get(ancestor)
        if ancestor is not None:
            kept[image_id] = ancestor
    return heads, kept


def shared_depth(sizes: list[int], shared: int) -> int | None:
    """How many bottom layers make up ``shared`` bytes (the fewest, when empty layers make it
    ambiguous: they free no bytes either way); None when no bottom run adds up to it."""
    if shared == 0:
        return 0
    total = 0
    for depth, size in enumerate(sizes, 1):
        total += size
        if total == shared:
            return depth
        if total > shared:
            return None
    return None


class Reclaim:
    """The layers the deleted images free. For each deleted image it asks whether a kept image
    holds the top of its shared run; a witness settles it, and when no kept image can (none
    sharing that many bytes holds it), that layer is freed and the one below is asked."""

    def __init__(self, doomed: Iterable[Doomed]) -> None:
        self._freed: dict[str, int] = {}
        self._held: set[str] = set()  # layers a kept image holds
        # Layer asked about → the bytes up to it, and the (image, depth) asking.
        self._waiting: dict[str, tuple[int, list[tuple[Doomed, int]]]] = {}
        for image in doomed:
            if len(image.sizes) != len(image.chain) or image.kept_below > len(image.chain):
                raise Undecided(f"{image.id}: layers and sizes do not match")
            depth = shared_depth(image.sizes, image.shared)
            if depth is None:
                raise Undecided(f"{image.id}: no bottom run of its layers is {image.shared} bytes")
            self._ask(image, depth)

    def _ask(self, image: Doomed, depth: int) -> None:
        if depth <= image.kept_below:
            self._settle(image, image.kept_below)
        elif image.chain[depth - 1] in self._held:
            self._settle(image, depth)
        else:
            run = sum(image.sizes[:depth])
            self._waiting.setdefault(image.chain[depth - 1], (run, []))[1].append((image, depth))

    def _settle(self, image: Doomed, held: int) -> None:
        """The bottom ``held`` layers stay; those above are freed."""
        for chain_id, size in zip(image.chain[held:], image.sizes[held:], strict=True):
            self._freed[chain_id] = size

    def offer(self, chain: Iterable[str]) -> None:
        """A kept image holds these layers."""
        for chain_id in chain:
            self._held.add(chain_id)
            for image, depth in self._waiting.pop(chain_id, (0, []))[1]:
                self._settle(image, depth)

    @property
    def runs(self) -> set[int]:
        """The byte counts of the runs still asked about."""
        return {run for run, _ in self._waiting.values()}

    def no_witness(self, run: int) -> None:
        """Every kept image that could hold a run of ``run`` bytes was offered: no kept image
        holds the layers asked about at that run, so they go and the layers below are asked."""
        while True:
            tops = [c for c, (asked, _) in self._waiting.items() if asked == run]
            if not tops:
                return
            for chain_id in tops:
                for image, depth in self._waiting.pop(chain_id)[1]:
                    self._ask(image, depth - 1)

    def freed(self) -> int:
        if self._waiting:
            raise Undecided(f"{len(self._waiting)} layers are still asked about")
        return sum(self._freed.values())


class Candidates:
    """Kept listed images, offered as witnesses for runs of ``n`` bytes: only images sharing at
    least ``n`` bytes can hold such a run, and those sharing about as much come first (images of
    one family share the same layers)."""

    def __init__(self, shared_by_image: Iterable[tuple[str, int]]) -> None:
        ordered = sorted((shared, image_id) for image_id, shared in shared_by_image)
        self._shared = [shared for shared, _ in ordered]
        self._ids = [image_id for _, image_id in ordered]
        self._cursor: dict[int, int] = {}
        self._offered: set[str] = set()

    def exhausted(self, run: int) -> bool:
        """Whether every image that could hold a run of ``run`` bytes was offered."""
        at = self._cursor.get(run, bisect_left(self._shared, run))
        while at < len(self._ids) and self._ids[at] in self._offered:
            at += 1
        self._cursor[run] = at
        return at >= len(self._ids)

    def next(self, runs: Iterable[int], count: int) -> list[str]:
        """Up to ``count`` images not offered before for each run; empty when none is left."""
        picked: list[str] = []
        for run in sorted(runs):
            at = self._cursor.get(run, bisect_left(self._shared, run))
            taken = 0
            while at < len(self._ids) and taken < count:
                image_id = self._ids[at]
                at += 1
                if image_id not in self._offered:
                    self._offered.add(image_id)
                    picked.append(image_id)
                    taken += 1
            self._cursor[run] = at
        return picked


def freed_bytes(
    doomed: Iterable[Doomed],
    kept_chains: Iterable[list[str]],
    candidates: Candidates,
    read_chains: Callable[[list[str]], Iterable[list[str]]],
    first: int = 4,
) -> int:
    """What the deleted images free. ``kept_chains``: layers of kept images already read (the
    deleted images' kept ancestors); ``read_chains``: the layers of the kept images given (those
    gone meanwhile left out), asked for ``first`` witnesses per run, then four times as many each
    round. Raises Undecided when a figure does not add up."""
    reclaim = Reclaim(doomed)
    for chain in kept_chains:
        reclaim.offer(chain)
    count = first
    while True:
        for run in reclaim.runs:
            if candidates.exhausted(run):
                reclaim.no_witness(run)
        if not reclaim.runs:
            return reclaim.freed()
        for chain in read_chains(candidates.next(reclaim.runs, count)):
            reclaim.offer(chain)
        count *= 4
