"""The reference grammar, checked before the engine is called (no engine needed)."""

import pytest

from app.domain.references import archive_filename, parse_reference, validate_image_ref
from app.errors import InvalidReference


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest"),
    [
        ("busybox", None, "busybox", None, None),
        ("busybox:1.36", None, "busybox", "1.36", None),
        ("library/ubuntu:14.04", None, "library/ubuntu", "14.04", None),
        ("127.0.0.1:5000/team/app:1.0", "127.0.0.1:5000", "team/app", "1.0", None),
        ("localhost/app", "localhost", "app", None, None),
        ("registry.example.com/a/b/c", "registry.example.com", "a/b/c", None, None),
        ("app@sha256:" + "a" * 64, None, "app", None, "sha256:" + "a" * 64),
        ("my_app-2.x__y", None, "my_app-2.x__y", None, None),
        ("[::1]:5000/app:v", "[::1]:5000", "app", "v", None),
    ],
)
def test_valid_references_parse_into_their_parts(text, domain, path, tag, digest):
    ref = parse_reference(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert str(ref) == text


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("Busybox", "lowercase"),
        ("team//app", "empty path component"),
        ("app:-bad", "not a valid tag"),
        ("app:" + "t" * 129, "not a valid tag"),
        ("app@sha256:xyz", "not a valid digest"),
        ("a" * 300, "longer than"),
        ("../etc/passwd", "is not a valid"),
        ("app name", "spaces"),
        ("app\x00", "control"),
        ("bad_host_/app", "is not valid"),
        ("-app", "is not valid"),
        ("x" * 300, "longer than 255"),
    ],
)
def test_invalid_references_say_what_is_wrong(text, says):
    with pytest.raises(InvalidReference) as caught:
        parse_reference(text)
    assert says in caught.value.detail


def test_bare_name_means_latest_never_all_tags():
    assert str(parse_reference("team/app").with_default_tag()) == "team/app:latest"
    digest = "team/app@sha256:" + "b" * 64
    assert str(parse_reference(digest).with_default_tag()) == digest


def test_image_ids_are_accepted_as_references():
    full = "sha256:" + "c" * 64
    assert validate_image_ref(full) == full
    assert validate_image_ref("c" * 64) == "c" * 64
    assert validate_image_ref("c0ffee12") == "c0ffee12"


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("ubuntu:14.04", "ubuntu_14.04.tar"),
        ("127.0.0.1:5000/team/app:1.0", "127.0.0.1_5000_team_app_1.0.tar"),
        ("app", "app.tar"),
    ],
)
def test_archive_filename_is_derived_from_the_reference(ref, name):
    assert archive_filename(ref) == name
