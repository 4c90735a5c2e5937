"""Planning a distribution: which engines, what to save or push, checked before the job starts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.domain.familiar import familiar
from app.domain.references import Reference, is_image_id, parse_reference
from app.errors import EngineForbidden, EngineNotFound, ValidationFailed

VIA_REGISTRY = "registry"
VIA_STREAM = "stream"


def resolve_engines(
    configured: list[str],
    default: str,
    source: str | None,
    targets: list[str] | str,
    allowed: Callable[[str], bool],
) -> tuple[str, list[str]]:
    """The source engine and the target engines of a request, checked before anything starts.

    ``targets`` is a list of names or ``"all"`` (every configured engine but the source). Raises
    404 ENGINE_NOT_FOUND for a name not configured, 403 ENGINE_FORBIDDEN (naming the engine)
    for one the token may not use, 400 when no target remains or the source is a target.
    """
    source = source or default
    if targets == "all":
        names = [name for name in configured if name != source]
    else:
        names = list(dict.fromkeys(targets))
        if source in names:
            raise ValidationFailed(
                f"The source engine '{source}' cannot also be a target.",
                errors={"target_engines": [f"'{source}' is the source engine."]},
            )
    for name in [source, *names]:
        if name not in configured:
            raise EngineNotFound(f"No engine named '{name}' is configured.", engine=name)
    for name in [source, *names]:
        if not allowed(name):
            raise EngineForbidden(f"This token may not use the engine '{name}'.", engine=name)
    if not names:
        raise ValidationFailed(
            "There is no target engine: the only engine configured is the source.",
            errors={"target_engines": ["No engine besides the source."]},
        )
    return source, names


def source_names(image: str, details: dict[str, Any]) -> tuple[str, list[str]]:
    """What to save from the source for ``image``, and the names the targets should carry.

    A tagged name (a bare name means ``:latest``) is saved by that name and carried over; an
    id, a digest reference, or a short id saves the image by id, without names.
    """
    image_id = details["Id"]
    if is_image_id(image):
        return image_id, []
    ref = parse_reference(image)
    if ref.digest:
        return image_id, []
    tagged = familiar(str(ref.with_default_tag()))
    if tagged in (details.get("RepoTags") or []):
        return tagged, [tagged]
    return image_id, []  # a bare hex word the engine resolved as a short id


@dataclass(frozen=True)
class Plan:
    """What one distribution does; everything the job needs except credentials."""

    image: str
    image_id: str
    size: int
    save_name: str
    names: list[str]
    source: str
    targets: list[str]
    via: str
    registry: Reference | None = None

    def document(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "image_id": self.image_id,
            "source_engine": self.source,
            "via": self.via,
            "registry": str(self.registry) if self.registry else None,
            "targets": list(self.targets),
        }


def plan_distribution(
    image: str,
    details: dict[str, Any],
    source: str,
    targets: list[str],
    via: str,
    registry: str | None = None,
) -> Plan:
    """The plan for ``image`` (inspected on the source as ``details``)."""
    save_name, names = source_names(image, details)
    reference = None
    if via == VIA_REGISTRY:
        assert registry is not None
        reference = parse_reference(registry).with_default_tag()
    return Plan(
        image=image,
        image_id=details["Id"],
        size=int(details.get("Size") or 0),
        save_name=save_name,
        names=names,
        source=source,
        targets=list(targets),
        via=via,
        registry=reference,
    )
