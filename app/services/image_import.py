"""Importing a root filesystem tar as a one-layer image (``docker import``).

Everything that can be refused (the reference, the change lines) is checked by ``plan_import``
before the body is read; ``import_image`` then streams the body to the engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.domain.changes import validate_changes
from app.domain.references import Reference, parse_reference


@dataclass(frozen=True)
class ImportPlan:
    """The new image's name (None: untagged), its config changes and history message."""

    reference: Reference | None
    changes: list[str]
    message: str | None = None


def plan_import(reference: str | None, changes: list[str], message: str | None) -> ImportPlan:
    """Check what the import is asked to do; 400 for a bad reference or change line."""
    checked = validate_changes(changes, field="change")
    ref = parse_reference(reference).with_default_tag() if reference is not None else None
    return ImportPlan(ref, checked, message)


def import_archive(
    engine: Any, plan: ImportPlan, body: Iterable[bytes], length: int | None
) -> dict[str, Any]:
    """Stream ``body`` to the engine's import; ``{"id", "reference"}`` of the new image."""
    ref = plan.reference
    image_id = engine.import_image(
        body,
        length=length,
        repository=ref.repository if ref else None,
        tag=ref.tag if ref else None,
        message=plan.message,
        changes=plan.changes,
    )
    return {"id": image_id, "reference": str(ref) if ref else None}
