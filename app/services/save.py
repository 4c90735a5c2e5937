"""Saving images as an archive (``docker save``): what to ask the engine for, checked first.

Every name is checked before the first byte of the archive, so a missing image is a 404 and
never a cut download.
"""

from __future__ import annotations

from typing import Any

from app.domain.references import is_image_id, parse_reference, validate_image_ref
from app.domain.tar_framing import unique_in_order
from app.errors import ImageNotFound


def saved_name(engine: Any, ref: str) -> str:
    """What to ask the engine to save for ``ref`` (one image): ``name`` means ``name:latest``."""
    validate_image_ref(ref)
    details = engine.inspect_image_raw(ref)  # 404 before the first byte
    if is_image_id(ref):
        return ref
    parsed = parse_reference(ref)
    if parsed.tag or parsed.digest:
        return ref
    tagged = str(parsed.with_default_tag())
    # A bare hex word the engine resolved as a short id, not as a name: save that image.
    return tagged if tagged in (details.get("RepoTags") or []) else details["Id"]


def saved_names(engine: Any, refs: list[str]) -> list[str]:
    """The names to save for ``refs`` as ``docker save a b ...`` reads them (a bare name: every
    tagged image of the repository); 404 names the first that does not exist."""
    names = unique_in_order(refs)
    for name in names:
        parsed = None if is_image_id(name) else parse_reference(name)
        if parsed is not None and not parsed.tag and not parsed.digest:
            try:
                engine.require_repository(name)
                continue
            except ImageNotFound:
                pass  # perhaps a short image id
        engine.inspect_image_raw(name)
    return names
