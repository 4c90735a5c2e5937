"""References in the engine's "familiar" form, and the engine's rules for comparing them.

``busybox:latest`` and ``127.0.0.1:5000/team/app@sha256:...`` are how the engine prints
references; the deletion rules (``app.domain.deletion``) compare and sort them in this form.
Plain logic: no flask, no docker.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.domain.references import hub_api_path, hub_familiar_path, parse_reference

HUB_DOMAINS = ("docker.io", "index.docker.io", "registry-1.docker.io")


def familiar_name(repository: str) -> str:
    """``docker.io/library/busybox`` → ``busybox``; other names unchanged."""
    ref = parse_reference(repository)
    if ref.domain is None or ref.domain in HUB_DOMAINS:
        return ref.path if ref.domain is None else hub_familiar_path(ref.path)
    return ref.repository


def familiar(reference: str, default_tag: bool = True) -> str:
    """A reference as the engine prints it; a bare name gets ``:latest`` unless told not to."""
    ref = parse_reference(reference)
    text = familiar_name(ref.repository)
    if ref.tag:
        text += ":" + ref.tag
    elif default_tag and not ref.digest:
        text += ":latest"
    if ref.digest:
        text += "@" + ref.digest
    return text


def ref_name(reference: str) -> str:
    """The repository part of a familiar reference (tag and digest removed)."""
    name = reference.split("@", 1)[0]
    colon = name.rfind(":")
    return name[:colon] if colon > name.rfind("/") else name


def is_canonical(reference: str) -> bool:
    return "@" in reference


def normalized(reference: str) -> str:
    """The fully qualified form the engine sorts references by (``docker.io/library/x:tag``)."""
    name = ref_name(reference)
    rest = reference[len(name) :]
    ref = parse_reference(name)
    if ref.domain is None:
        name = "docker.io/" + hub_api_path(ref.path)
    return name + rest


def sorted_references(references: Iterable[str]) -> list[str]:
    return sorted(references, key=normalized)


def is_single_reference(references: list[str]) -> bool:
    """At most one tag, and every reference in one repository (the engine's rule)."""
    if len(references) <= 1:
        return len(references) == 1
    single: str | None = None
    canonical_names: set[str] = set()
    for reference in references:
        if is_canonical(reference):
            canonical_names.add(ref_name(reference))
        elif single is None:
            single = reference
        else:
            return False
    if single is None:
        single = references[0]
    return len(canonical_names) == 1 and ref_name(single) in canonical_names


def is_id_prefix(image_id: str, text: str) -> bool:
    if image_id.startswith(text):
        return True
    return image_id.partition(":")[2].startswith(text)
