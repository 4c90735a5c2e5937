"""Image references, checked against the distribution reference grammar before the engine sees them.

Grammar (github.com/distribution/reference, ``reference.go``)::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ["/" path-component]*
    domain     := host [":" port]          (first part, when it has "." or ":" or is localhost)
    path-component := [a-z0-9]+ ( ( [_.] | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [\\w][\\w.-]{0,127}
    digest     := algorithm ":" hex{32,}

Image ids (``sha256:<64 hex>``, or a hex prefix) are accepted wherever a reference is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.errors import BerthError, InvalidContainer, InvalidReference

NAME_MAX = 255
REFERENCE_MAX = 255  # the whole reference; distribution limits the name to 255

_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*$")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$"
)
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# The grammar allows any algorithm; the engine knows sha256, sha384 and sha512 (lowercase hex).
_DIGEST_RE = r"(?:sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})"
_DIGEST = re.compile(rf"^{_DIGEST_RE}$")
_IMAGE_ID = re.compile(r"^(?:sha256:)?[0-9a-f]{64}$")
DEFAULT_DOMAIN = "docker.io"
HUB_OFFICIAL = "library"  # Docker Hub's namespace of official images

# The same grammar as one regular expression, for the OpenAPI document (IPv6 hosts left out).
# A first component followed by "/" is a registry host when it has "." or ":" (as the parser
# decides), so a path-like first component there may not contain ".".
_PATH_RE = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_FIRST_PATH_RE = r"[a-z0-9]+(?:(?:_|__|-+)[a-z0-9]+)*"
_HOST_RE = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_NAME_RE = rf"(?:(?:{_HOST_RE}|{_FIRST_PATH_RE})(?:/{_PATH_RE})+|{_PATH_RE})"
_TAG_RE = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
NAME_PATTERN = rf"^{_NAME_RE}$"
PATH_PATTERN = rf"^{_PATH_RE}(?:/{_PATH_RE})*$"  # a repository inside one registry
_PORT_RE = (
    r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
)
_LABEL_RE = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
REGISTRY_PATTERN = rf"^{_LABEL_RE}(?:\.{_LABEL_RE})*(?::{_PORT_RE})?$"  # host[:port] (docs)
TAG_PATTERN = rf"^{_TAG_RE}$"
REFERENCE_PATTERN = rf"^{_NAME_RE}(?::{_TAG_RE})?(?:@{_DIGEST_RE})?$"
# A label filter, key or key=value: printable ASCII, no space in the key (same in every regex
# dialect, so the OpenAPI pattern and the server agree).
LABEL_FILTER_PATTERN = r"^[!-<>-~]+(?:=[ -~]*)?$"
# A reference with shell-style wildcards, as the engine's `reference` filter takes it.
REFERENCE_FILTER_PATTERN = r"^[A-Za-z0-9._/:@*?-]+$"
TAGGED_NAME_PATTERN = rf"^{_NAME_RE}(?::{_TAG_RE})?$"  # name or name:tag, no digest


@dataclass(frozen=True)
class Reference:
    """A parsed reference; ``domain`` is None when the name carries none (Docker Hub)."""

    domain: str | None
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """The name as the engine shows it (``host:port/path`` or ``path``)."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def registry(self) -> str:
        return self.domain or DEFAULT_DOMAIN

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text

    def with_default_tag(self) -> Reference:
        """``name`` means ``name:latest`` (a bare name is never "all tags")."""
        if self.tag or self.digest:
            return self
        return Reference(self.domain, self.path, "latest", None)


def hub_api_path(path: str) -> str:
    """A Docker Hub path as its API and the engine's full names spell it: ``busybox`` →
    ``library/busybox`` (official images live in ``library``); other paths unchanged."""
    return path if "/" in path else f"{HUB_OFFICIAL}/{path}"


def hub_familiar_path(path: str) -> str:
    """The reverse, as ``docker images`` shows Hub names: ``library/busybox`` → ``busybox``."""
    prefix = HUB_OFFICIAL + "/"
    return path[len(prefix) :] if path.startswith(prefix) and path.count("/") == 1 else path


def is_image_id(text: str) -> bool:
    return bool(_IMAGE_ID.match(text))


def _split_domain(name: str) -> tuple[str | None, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        return first, rest
    return None, name


def parse_reference(text: str) -> Reference:
    """Parse ``text`` or raise InvalidReference saying what is wrong with it."""
    if not isinstance(text, str) or not text:
        raise InvalidReference("The reference is empty.")
    if len(text) > REFERENCE_MAX:
        raise InvalidReference(f"The reference is longer than {REFERENCE_MAX} characters.")
    if any(ord(c) < 0x21 or ord(c) == 0x7F or ord(c) > 0x7E for c in text):
        raise InvalidReference("The reference contains spaces, control or non-ASCII characters.")
    remainder, _, digest = text.partition("@")
    if "@" in text and not _DIGEST.match(digest):
        raise InvalidReference(
            f"'{digest}' is not a valid digest (sha256:<64 hex>, sha384:<96> or sha512:<128>)."
        )
    tag = None
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > last_slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG.match(tag):
            raise InvalidReference(
                f"'{tag}' is not a valid tag (letters, digits, '_', '.', '-'; at most 128; "
                "not starting with '.' or '-')."
            )
    if not remainder:
        raise InvalidReference("The reference has no repository name.")
    if len(remainder) > NAME_MAX:
        raise InvalidReference(f"The repository name is longer than {NAME_MAX} characters.")
    domain, path = _split_domain(remainder)
    if domain is not None and not _DOMAIN.match(domain):
        raise InvalidReference(f"'{domain}' is not a valid registry host[:port].")
    if domain is not None and not ("." in domain or ":" in domain or domain == "localhost"):
        # A host only by its capitals ("UPPER/x"): the engine refuses such names as well.
        raise InvalidReference(f"Repository name component '{domain}' must be lowercase.")
    for component in path.split("/"):
        if not component:
            raise InvalidReference("The repository name has an empty path component ('//').")
        if component != component.lower():
            raise InvalidReference(f"Repository name component '{component}' must be lowercase.")
        if not _PATH_COMPONENT.match(component):
            raise InvalidReference(
                f"Repository name component '{component}' is not valid (lowercase letters and "
                "digits, separated by '.', '_', '__' or '-')."
            )
    return Reference(domain, path, tag, digest or None)


def is_bare_name(text: str) -> bool:
    """True for a reference without tag or digest (an id is not bare)."""
    if is_image_id(text):
        return False
    ref = parse_reference(text)
    return ref.tag is None and ref.digest is None


def last_path_component(text: str) -> str:
    return parse_reference(text).path.rsplit("/", 1)[-1]


def validate_image_ref(text: str) -> str:
    """Accept an image id or a reference; return it unchanged (the engine resolves it)."""
    if is_image_id(text):
        return text
    parse_reference(text)
    return text


def without_digest(
    text: str, refusal: str, error: type[BerthError] = InvalidReference
) -> Reference:
    """Parse a reference that names something to write (a tag, a push target): no digest.

    A digest names content already made, so nothing can be written to it: ``error(refusal)``.
    """
    ref = parse_reference(text)
    if ref.digest:
        raise error(refusal)
    return ref


def validate_repository(text: str) -> Reference:
    """A repository name without tag or digest (as commit, tag and import take it)."""
    ref = without_digest(text, "Give a repository name without a digest.")
    if ref.tag:
        raise InvalidReference("Give the tag in the 'tag' field, not in the repository name.")
    return ref


CONTAINER_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$"
_CONTAINER = re.compile(CONTAINER_PATTERN)


def validate_container_ref(text: str) -> str:
    """A container name or (short) id, as the engine names them; returned unchanged."""
    if not _CONTAINER.match(text or ""):
        raise InvalidContainer(
            "A container is named by its id or its name (letters, digits, '_', '.', '-').",
        )
    return text


def archive_filename(text: str) -> str:
    """``ubuntu:14.04`` → ``ubuntu_14.04.tar``; safe as a Content-Disposition filename."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "image"
    return safe[:200] + ".tar"
