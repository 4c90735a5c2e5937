"""``app.domain.changes``: Dockerfile change lines accepted on commit and import (no engine
needed)."""

import pytest

from app.domain.changes import ALLOWED, validate_changes
from app.errors import ValidationFailed


@pytest.mark.parametrize(
    "line",
    [
        "CMD /bin/sh",
        'CMD ["sh", "-c", "echo hi"]',
        "CMD []",
        'ENTRYPOINT ["/entry"]',
        "ENV A=1",
        'ENV A=1 B="two words"',
        "ENV LEGACY some value",
        "EXPOSE 80",
        "EXPOSE 80/tcp 53/udp 8000-8010 132/sctp",
        "EXPOSE $PORT",
        "LABEL team=berth tier=web",
        'LABEL "com.example.key"="v"',
        "ONBUILD RUN make",
        "ONBUILD ADD . /src",
        "USER 1000:1000",
        "VOLUME /data",
        'VOLUME ["/data", "/logs"]',
        "WORKDIR /srv",
        "  workdir /lowercase/keyword  ",
    ],
)
def test_valid_changes_pass(line):
    assert validate_changes([line]) == [line.strip()]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("RUN echo hi", "RUN cannot be applied"),
        ("FROM busybox", "FROM cannot be applied"),
        ("COPY a b", "COPY cannot be applied"),
        ("HEALTHCHECK CMD true", "HEALTHCHECK cannot be applied"),
        ("FOO bar", "'FOO' is not an instruction"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("# a comment", "is a comment"),
        ("ENV A=1 \\", "line continuation"),
        ("ENV A=1\nRUN rm -rf /", "single line"),
        ("CMD", "CMD needs an argument"),
        ("ENV", "ENV needs an argument"),
        ("ENV A", "name=value"),
        ("ENV A=1 B", "'B' is not of the form name=value"),
        ("ENV =1", "empty or invalid name"),
        ("LABEL x", "name=value"),
        ("EXPOSE http", "'http' is not a port"),
        ("EXPOSE 70000", "not a valid port"),
        ("EXPOSE 90-80", "not a valid port"),
        ("CMD ['sh', '-c', 'x']", "not valid JSON"),
        ('CMD ["sh", 1]', "array of strings"),
        ("ONBUILD ONBUILD RUN x", "ONBUILD cannot be followed by ONBUILD"),
        ("ONBUILD FROM x", "ONBUILD cannot be followed by FROM"),
        ("ONBUILD NOPE x", "is not a Dockerfile instruction"),
        ("ONBUILD RUN", "RUN needs an argument"),
        ('ENV A="unterminated', "cannot be split"),
    ],
)
def test_invalid_change_is_refused_naming_the_line(line, reason):
    with pytest.raises(ValidationFailed) as caught:
        validate_changes(["ENV OK=1", line])
    error = caught.value
    assert error.status == 400
    assert "changes[1]" in error.detail
    assert reason in error.detail
    if line.strip() and "\n" not in line:
        assert line.strip()[:40] in error.detail
    assert list(error.errors["changes"]) == ["1"]


def test_every_bad_line_is_listed_and_the_first_is_named():
    with pytest.raises(ValidationFailed) as caught:
        validate_changes(["RUN a", "ENV OK=1", "COPY x y"])
    assert caught.value.detail.startswith("Invalid change changes[0] 'RUN a'")
    assert set(caught.value.errors["changes"]) == {"0", "2"}


def test_non_string_item_is_refused():
    with pytest.raises(ValidationFailed):
        validate_changes([42])  # type: ignore[list-item]


def test_too_many_changes_are_refused():
    with pytest.raises(ValidationFailed, match="At most"):
        validate_changes(["ENV A=1"] * 101)


def test_allowed_instructions_are_the_engine_commit_set():
    assert set(ALLOWED) == {
        "CMD",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "LABEL",
        "ONBUILD",
        "USER",
        "VOLUME",
        "WORKDIR",
    }


def test_custom_field_name_is_used_in_messages():
    with pytest.raises(ValidationFailed) as caught:
        validate_changes(["RUN x"], field="change")
    assert "change[0]" in caught.value.detail
    assert "change" in caught.value.errors
