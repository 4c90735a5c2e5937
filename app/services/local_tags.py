"""Local names lent to an operation and given back: a push never leaves a local tag changed.

The engine pushes (and ``docker load`` names) by local name, so pushing image X as ``T`` needs
``T`` to name X for a while. ``lent_names`` gives that and undoes it afterwards, whatever
happens:

* ``T`` named nothing: it names X while the push runs and is removed afterwards (kept only when
  it is X's last reference, because the engine deletes an image whose last name is removed);
* ``T`` named X already: nothing changes;
* ``T`` named another image Y: Y is first held by a name of its own (``berth-hold/<random>``), so
  that no prune can delete it while it has no name; ``T`` is moved to X, and afterwards moved
  back to Y *by id*, then the hold name is removed.

If someone else moves ``T`` meanwhile, their choice stands and Y keeps its hold name (logged) so
it is never lost. Across Berth processes two pushes to the same name may still interleave.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from app.domain.familiar import familiar, familiar_name
from app.domain.references import parse_reference
from app.errors import NotFound

log = logging.getLogger("berth.tags")

HOLD_REPOSITORY = "berth-hold"


def points_at(engine: Any, name: str) -> str | None:
    """The id of the image the local name ``name`` (``repository:tag``) names, or None."""
    try:
        return engine.inspect_image_raw(name)["Id"]
    except NotFound:
        return None


def has_other_references(engine: Any, image_id: str, name: str) -> bool:
    """Whether ``image_id`` keeps a reference once the tag ``name`` is removed.

    The engine drops the digests of ``name``'s repository with its last tag there, so those do
    not count.
    """
    try:
        details = engine.inspect_image_raw(image_id)
    except NotFound:
        return False
    name = familiar(name)
    repository = familiar_name(parse_reference(name).repository)
    tags = [t for t in details.get("RepoTags") or [] if familiar(t) != name]
    if tags:
        return True
    for digest in details.get("RepoDigests") or []:
        if familiar_name(parse_reference(digest).repository) != repository:
            return True
    return False


def _split(name: str) -> tuple[str, str]:
    ref = parse_reference(name).with_default_tag()
    return ref.repository, str(ref.tag)


@contextmanager
def lent_names(
    engine: Any, image_id: str, names: Sequence[str], *, keep_new: bool
) -> Iterator[None]:
    """Let ``names`` name ``image_id`` inside the block; afterwards every name that named another
    image names it again. Names that named nothing are removed, or kept with ``keep_new``
    (a distribution's target keeps the names it was given).

    The block may name the image itself (``docker load``); without that, the names are tagged
    here before the block runs.
    """
    before = {name: points_at(engine, name) for name in names}
    holds: dict[str, str] = {}
    try:
        for previous in before.values():
            if previous is not None and previous != image_id and previous not in holds:
                hold = f"{HOLD_REPOSITORY}/{secrets.token_hex(8)}:hold"
                engine.tag_image(previous, *_split(hold))
                holds[previous] = hold
        yield
    finally:
        for name, previous in before.items():
            if previous == image_id:
                continue
            try:
                _give_back(engine, image_id, name, previous, keep_new)
            except Exception:  # the others are still given back; the log says which was not
                log.exception("could not give the local name %s back", name)
        for previous, hold in holds.items():
            try:
                if has_other_references(engine, previous, hold):
                    engine.remove_name(hold)
                else:
                    log.warning("image %s keeps the name %s: it has no other", previous, hold)
            except Exception:
                log.exception("could not remove the hold name %s", hold)


def tag_for(engine: Any, image_id: str, names: Sequence[str]) -> None:
    """Tag ``image_id`` with ``names`` (the start of a push, inside ``lent_names``)."""
    for name in names:
        engine.tag_image(image_id, *_split(name))


def _give_back(engine: Any, image_id: str, name: str, previous: str | None, keep: bool) -> None:
    now = points_at(engine, name)
    if now != image_id:
        if now != previous:
            log.warning("local name %s was moved by someone else meanwhile; left as it is", name)
        return
    if previous is not None:
        engine.tag_image(previous, *_split(name))  # by id: the held image gets its name back
    elif keep:
        return
    elif has_other_references(engine, image_id, name):
        engine.remove_name(name)
    else:
        log.info("local name %s kept: it is the only reference of image %s", name, image_id)


def free_names(engine: Any, image_id: str, names: Sequence[str]) -> tuple[list[str], list[str]]:
    """``names`` split into those ``image_id`` may take (naming nothing, or it already) and
    those naming another image, which are left alone."""
    free, taken = [], []
    for name in names:
        (free if points_at(engine, name) in (None, image_id) else taken).append(name)
    return free, taken
