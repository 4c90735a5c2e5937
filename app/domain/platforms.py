"""Platforms (``os[/arch[/variant]]``) as the engine and registries name them.

Docker 20.10 pulls a single-platform image whatever platform was asked for; Berth checks what
arrived, so that a pull for ``linux/arm64`` never answers 200 with an ``amd64`` image.
Plain logic: no flask, no docker.
"""

from __future__ import annotations

_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "armhf": "arm",
    "armel": "arm",
    "i386": "386",
    "i686": "386",
}
_KNOWN_OS = {
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "illumos",
    "ios",
    "js",
    "linux",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
}
_DEFAULT_VARIANT = {"arm64": "v8"}


def _arch(value: str) -> str:
    value = value.lower()
    return _ARCH_ALIASES.get(value, value)


def parse_platform(text: str) -> dict[str, str | None]:
    """``linux/arm/v7`` → ``{"os": "linux", "architecture": "arm", "variant": "v7"}``."""
    parts = text.strip().lower().split("/")
    if len(parts) == 1:
        if parts[0] in _KNOWN_OS:
            return {"os": parts[0], "architecture": None, "variant": None}
        return {"os": None, "architecture": _arch(parts[0]), "variant": None}
    variant = parts[2] if len(parts) > 2 else None
    return {"os": parts[0], "architecture": _arch(parts[1]), "variant": variant}


def platform_matches(requested: str, os: str, architecture: str, variant: str | None) -> bool:
    """Whether an image built for ``os/architecture[/variant]`` is what ``requested`` asks."""
    wanted = parse_platform(requested)
    if wanted["os"] and wanted["os"] != (os or "").lower():
        return False
    if wanted["architecture"] and wanted["architecture"] != _arch(architecture or ""):
        return False
    if wanted["variant"]:
        have = (variant or _DEFAULT_VARIANT.get(_arch(architecture or ""), "")).lower()
        if have and wanted["variant"] != have:
            return False
    return True


def describe(os: str, architecture: str, variant: str | None) -> str:
    return "/".join(p for p in (os, architecture, variant) if p)
