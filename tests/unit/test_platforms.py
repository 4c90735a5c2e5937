"""``app.domain.platforms``: does a pulled image match the platform asked for (no engine needed)."""

import pytest

from app.domain.platforms import parse_platform, platform_matches


def test_parse_platform():
    assert parse_platform("linux/arm/v7") == {"os": "linux", "architecture": "arm", "variant": "v7"}
    assert parse_platform("linux") == {"os": "linux", "architecture": None, "variant": None}
    assert parse_platform("x86_64")["architecture"] == "amd64"


@pytest.mark.parametrize(
    ("requested", "image", "matches"),
    [
        ("linux/amd64", ("linux", "amd64", None), True),
        ("linux/x86_64", ("linux", "amd64", None), True),
        ("linux", ("linux", "arm64", None), True),
        ("amd64", ("linux", "amd64", None), True),
        ("linux/arm64", ("linux", "amd64", None), False),
        ("windows/amd64", ("linux", "amd64", None), False),
        ("linux/arm64/v8", ("linux", "arm64", None), True),
        ("linux/arm/v7", ("linux", "arm", "v6"), False),
        ("linux/arm/v7", ("linux", "arm", "v7"), True),
    ],
)
def test_platform_matches(requested, image, matches):
    assert platform_matches(requested, *image) is matches
