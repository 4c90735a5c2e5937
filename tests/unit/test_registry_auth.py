"""``app.domain.registry_auth``: the X-Registry-Auth header format (no engine needed)."""

import base64
import json

import pytest

from app.domain.registry_auth import encode_registry_auth, parse_registry_auth_header, redacted
from app.errors import ValidationFailed

SECRET = "s3cr3t-Pa55"


def _b64(data: bytes, urlsafe: bool = True, pad: bool = True) -> str:
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()
    return text if pad else text.rstrip("=")


def test_round_trip():
    creds = {"username": "ann", "password": SECRET, "serveraddress": "127.0.0.1:5000"}
    assert parse_registry_auth_header(encode_registry_auth(creds)) == creds


def test_encoding_is_base64url_json_the_engine_reads():
    value = encode_registry_auth({"username": "a", "password": "b?>>"})
    assert "+" not in value and "/" not in value
    assert json.loads(base64.urlsafe_b64decode(value)) == {"username": "a", "password": "b?>>"}


@pytest.mark.parametrize("urlsafe", [True, False])
@pytest.mark.parametrize("pad", [True, False])
def test_standard_and_url_alphabets_with_or_without_padding(urlsafe, pad):
    payload = json.dumps({"username": "ü?>~", "password": "??>>"}).encode()
    parsed = parse_registry_auth_header(_b64(payload, urlsafe, pad))
    assert parsed == {"username": "ü?>~", "password": "??>>"}


@pytest.mark.parametrize("value", [None, "", "   ", "e30=", _b64(b'{"username": ""}')])
def test_absent_or_empty_credentials_are_none(value):
    assert parse_registry_auth_header(value) is None


def test_auth_field_expands_to_username_and_password():
    auth = base64.b64encode(f"ann:{SECRET}".encode()).decode()
    parsed = parse_registry_auth_header(_b64(json.dumps({"auth": auth}).encode()))
    assert parsed == {"username": "ann", "password": SECRET}


def test_field_names_are_case_insensitive():
    parsed = parse_registry_auth_header(_b64(b'{"Username": "a", "Password": "b"}'))
    assert parsed == {"username": "a", "password": "b"}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("!!!not base64!!!", "not base64url"),
        (_b64(SECRET.encode()), "does not decode to JSON"),
        (_b64(json.dumps([SECRET]).encode()), "JSON object"),
        (_b64(json.dumps({"username": "a", "token": SECRET}).encode()), "unknown field 'token'"),
        (_b64(json.dumps({"username": "a", "password": 12345}).encode()), "must be a string"),
        (_b64(json.dumps({"auth": _b64(b"no-colon")}).encode()), "'auth'"),
        ("A" * 20000, "longer than"),
    ],
)
def test_invalid_header_is_400_and_never_echoes_the_value(value, reason):
    with pytest.raises(ValidationFailed) as caught:
        parse_registry_auth_header(value)
    error = caught.value
    assert error.code == "INVALID_REGISTRY_AUTH"
    assert reason in error.detail
    problem = json.dumps(error.to_problem())
    assert SECRET not in problem
    assert value[:30] not in problem


def test_redacted_hides_secrets():
    shown = redacted({"username": "a", "password": SECRET, "identitytoken": SECRET})
    assert shown == {"username": "a", "password": "***", "identitytoken": "***"}
    assert redacted(None) is None
