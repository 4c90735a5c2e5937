"""Reading a registry's answers: v2 error bodies, JSON lists, and the errors they mean."""

from __future__ import annotations

from app.errors import ManifestUnknown, NotFound, RegistryError, RepositoryNotFound
from app.registry.transport import Answer


def registry_message(response: Answer) -> tuple[str | None, str]:
    """(first error code, message) of a registry error body, as the v2 API spells them."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0] if isinstance(body["errors"][0], dict) else {}
        code = first.get("code")
        message = first.get("message") or code or ""
        return (str(code) if code else None), str(message)
    text = (response.text or "").strip().splitlines()
    return None, (text[0][:300] if text else f"HTTP {response.status_code}")


def raise_for(response: Answer, registry: str, what: str) -> None:
    """Raise the BerthError for a registry's error answer about ``what`` (nothing below 400)."""
    if response.status_code < 400:
        return
    code, message = registry_message(response)
    if response.status_code == 404:
        if code == "MANIFEST_UNKNOWN":
            raise ManifestUnknown(f"{what}: {message}")
        if code == "NAME_UNKNOWN" or code is None:
            raise RepositoryNotFound(f"{what}: {message}")
        raise NotFound(f"{what}: {message}")
    raise RegistryError(
        f"Registry {registry} answered {response.status_code} for {what}: {message}"
    )


def json_list(response: Answer, key: str) -> list[str]:
    """The list of strings under ``key`` in a JSON answer (empty when absent)."""
    try:
        body = response.json()
    except ValueError:
        raise RegistryError(f"The registry sent an unreadable {key} list.") from None
    values = body.get(key) if isinstance(body, dict) else None
    if values is None:
        return []
    if not isinstance(values, list):
        raise RegistryError(f"The registry sent an unreadable {key} list.")
    return [str(v) for v in values]
