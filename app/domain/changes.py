"""Dockerfile instructions applied to an image's config on commit or import (``--change``).

The engine accepts only instructions that change the config, never the filesystem:
CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME and WORKDIR. ``validate_changes``
checks each line before the engine sees it, and names the bad line when one is wrong.
Plain logic: no flask, no docker.
"""

from __future__ import annotations

import re
import shlex

from app.domain import jsonsafe
from app.errors import ValidationFailed

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME", "WORKDIR")
DOCKERFILE_INSTRUCTIONS = frozenset(
    ALLOWED
    + ("ADD", "ARG", "COPY", "FROM", "HEALTHCHECK", "MAINTAINER", "RUN", "SHELL", "STOPSIGNAL")
)
# What a Dockerfile refuses after ONBUILD.
NOT_AFTER_ONBUILD = frozenset({"ONBUILD", "FROM", "MAINTAINER"})
MAX_CHANGES = 100
MAX_LINE = 4096
_PORT = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?(?:/(tcp|udp|sctp))?$", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[^\s=]+$")


class _Bad(ValueError):
    """One change line is wrong; the message says why."""


def _shown(line: str) -> str:
    return line if len(line) <= 80 else line[:77] + "..."


def _words(args: str) -> list[str]:
    try:
        return shlex.split(args, posix=True)
    except ValueError as e:
        raise _Bad(f"cannot be split into words ({e})") from None


def _check_json_form(keyword: str, args: str) -> None:
    if not args.startswith("["):
        return
    try:
        value = jsonsafe.loads(args)
    except ValueError:
        raise _Bad(
            f"{keyword} looks like the exec (JSON) form but is not valid JSON; use double "
            'quotes, e.g. ["sh", "-c", "echo hi"]'
        ) from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Bad(f"{keyword} in exec (JSON) form must be an array of strings")


def _check_name_values(keyword: str, args: str) -> None:
    words = _words(args)
    if not words:
        raise _Bad(f"{keyword} needs at least one name=value pair")
    if "=" not in words[0]:
        # The legacy form "ENV name value" sets one variable to the rest of the line.
        if len(words) < 2:
            raise _Bad(f"{keyword} needs name=value (or the legacy form: name value)")
        return
    for word in words:
        name, sep, _ = word.partition("=")
        if not sep:
            raise _Bad(f"{keyword}: '{_shown(word)}' is not of the form name=value")
        if not name or not _ENV_NAME.match(name):
            raise _Bad(f"{keyword}: '{_shown(word)}' has an empty or invalid name")


def _check_expose(args: str) -> None:
    for word in _words(args):
        if "$" in word:  # resolved by the engine from the config's environment
            continue
        match = _PORT.match(word)
        if not match:
            raise _Bad(f"EXPOSE: '{_shown(word)}' is not a port (e.g. 80, 80/tcp, 8000-8010/udp)")
        start = int(match.group(1))
        end = int(match.group(2) or start)
        if start > 65535 or end > 65535 or end < start:
            raise _Bad(f"EXPOSE: '{_shown(word)}' is not a valid port or port range")


def _check_instruction(line: str, *, nested: bool = False) -> None:
    keyword, _, args = line.partition(" ")
    if "\t" in keyword:
        keyword, _, rest = keyword.partition("\t")
        args = rest + " " + args
    keyword, args = keyword.upper(), args.strip()
    if nested:
        if keyword not in DOCKERFILE_INSTRUCTIONS:
            raise _Bad(f"ONBUILD: '{_shown(keyword)}' is not a Dockerfile instruction")
        if keyword in NOT_AFTER_ONBUILD:
            raise _Bad(f"ONBUILD cannot be followed by {keyword}")
    elif keyword not in ALLOWED:
        if keyword in DOCKERFILE_INSTRUCTIONS:
            raise _Bad(
                f"{keyword} cannot be applied to an image's config; allowed: {', '.join(ALLOWED)}"
            )
        raise _Bad(f"'{_shown(keyword)}' is not an instruction; allowed: {', '.join(ALLOWED)}")
    if not args:
        raise _Bad(f"{keyword} needs an argument")
    if nested:
        return
    if keyword in ("CMD", "ENTRYPOINT", "VOLUME"):
        _check_json_form(keyword, args)
    elif keyword in ("ENV", "LABEL"):
        _check_name_values(keyword, args)
    elif keyword == "EXPOSE":
        _check_expose(args)
    elif keyword == "ONBUILD":
        _check_instruction(args, nested=True)


def check_change(line: str) -> str:
    """One change, stripped; raises ValueError saying what is wrong with it."""
    if not isinstance(line, str):
        raise _Bad("must be a string")
    if "\n" in line or "\r" in line:
        raise _Bad("must be a single line (give one instruction per list item)")
    text = line.strip()
    if not text:
        raise _Bad("is empty")
    if len(text) > MAX_LINE:
        raise _Bad(f"is longer than {MAX_LINE} characters")
    if text.startswith("#"):
        raise _Bad("is a comment, not an instruction")
    if text.endswith("\\"):
        raise _Bad("ends with a line continuation ('\\'); give the whole instruction on one line")
    _check_instruction(text)
    return text


def validate_changes(changes: list[str], field: str = "changes") -> list[str]:
    """Check Dockerfile change lines; return them stripped.

    Raises ValidationFailed naming the first bad line (``errors`` lists every bad one, by index).
    """
    if len(changes) > MAX_CHANGES:
        raise ValidationFailed(
            f"At most {MAX_CHANGES} changes are accepted.",
            errors={field: [f"At most {MAX_CHANGES} items."]},
        )
    cleaned: list[str] = []
    problems: dict[str, list[str]] = {}
    first: str | None = None
    for index, line in enumerate(changes):
        try:
            cleaned.append(check_change(line))
        except ValueError as e:
            problems[str(index)] = [str(e)]
            if first is None:
                shown = _shown(line) if isinstance(line, str) else repr(line)
                first = f"{field}[{index}] '{shown}': {e}."
    if first is not None:
        raise ValidationFailed(f"Invalid change {first}", errors={field: problems})
    return cleaned
