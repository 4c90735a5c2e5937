"""Fuzzing every operation of Berth's own OpenAPI document with schemathesis (admin token), and
again with a `read` token, checking that nothing it does changes the engine.

Bounded: a fixed number of examples per operation, no deadline per example. Expected: every
response conforms to the document (status codes, content types, schemas, Allow headers), and no
server error. "Server error" means a 500 (INTERNAL), or a 502/503 the operation does not
document or whose code does not say it is the engine or a registry answering: a push to a
registry that does not exist *should* be 502 REGISTRY_UNREACHABLE, and is checked as such.
Network traffic cannot leave the machine: the harness engine and this process use a sink proxy
for anything but loopback (see scripts/harness.py and tests/conftest.py).
"""

import json
import os
import tempfile

import docker
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from app import create_app
from tests.support.harness import load_state
from tests.support.tokens import TOKENS, harness_registries, token_entries

MAX_EXAMPLES = int(os.environ.get("BERTH_FUZZ_EXAMPLES", "25"))

# schemathesis collects its tests at import time, so the app is built here rather than in a
# fixture; without a harness the module is skipped (and conftest fails the run under CI).
# The fuzzer deletes and prunes at will, so it gets an engine of its own (the harness's last
# fleet engine), seeded with a copy of the base image, and never touches the suite's engine.
FUZZ_ENGINE = "fleet-3"
_state = load_state()
if _state is None or FUZZ_ENGINE not in _state.get("engines", {}):
    if os.environ.get("CI") == "true":
        pytest.fail(f"no test harness with a {FUZZ_ENGINE} engine -- CI must fuzz", pytrace=False)
    pytest.skip(f"no test harness with a {FUZZ_ENGINE} engine", allow_module_level=True)


def _seed_fuzz_engine(state: dict) -> str:
    source = docker.APIClient(base_url=state["docker_host"], version="auto")
    target_host = state["engines"][FUZZ_ENGINE]["docker_host"]
    target = docker.APIClient(base_url=target_host, version="auto")
    target.load_image(source.get_image(state["base_image"]))
    source.close()
    target.close()
    return target_host


app = create_app(
    {
        "DOCKER_HOST": _seed_fuzz_engine(_state),
        "BERTH_TOKENS": token_entries(),
        "BERTH_DATA_DIR": tempfile.mkdtemp(prefix="berth-fuzz-"),
        "BERTH_LOG_LEVEL": "WARNING",
        # A strict allow-list: whatever registry the fuzzer names, Berth refuses it without a
        # DNS look-up, so nothing leaves the machine.
        "BERTH_ALLOWED_REGISTRIES": harness_registries(_state),
        "BERTH_ALLOW_PUBLIC_REGISTRIES": False,
    }
)

# The admin token goes through schemathesis's own auth support, so that it knows which header
# is the credential. Some rules cannot be written in OpenAPI 3.0, so for these operations alone
# a 400 to a schema-valid request is expected (each is tested by hand elsewhere):
# - an archive body is bytes: only the engine can tell a tar from garbage (INVALID_ARCHIVE);
# - X-Registry-Auth is base64url of a JSON object: a schema can say base64url, not JSON;
# - a push of a {ref} given by digest or id needs a `target` in the body;
# - a distribution's source engine cannot also be one of its targets;
# - an audit cursor (`before`) and an image list cursor are opaque: only one that Berth gave out
#   can be used.
# And a bare repository name that the URL also reads as another resource (`/v1/images/pull`)
# is answered 405 (documented): a pattern cannot exclude those names.
_OPAQUE_INPUTS = (
    r"^/v1/(archives|images/import|images/pull|images/\{ref\}/push|search|registries/.*"
    r"|distributions|audit|images)$"
)
CONFIG = SchemathesisConfig.from_dict(
    {
        "auth": {"openapi": {"bearerAuth": {"bearer": TOKENS["admin"]}}},
        "operations": [
            {
                "include-path-regex": _OPAQUE_INPUTS,
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": [
                            "2xx",
                            "400",
                            "401",
                            "403",
                            "404",
                            "405",
                            "409",
                            "5xx",
                        ]
                    }
                },
            },
            {
                "include-path-regex": r"\{ref\}",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "401", "403", "404", "405"]
                    }
                },
            },
        ],
    }
)
# GET /v1/events never ends by itself (a WSGI call would read it forever): tested by hand.
ENDLESS = "/v1/events"
schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=CONFIG).exclude(path=ENDLESS)


@schemathesis.serializer("application/octet-stream")
def _archive_bytes(ctx, value):
    """Archive bodies: whatever bytes the generator made (the server must refuse garbage)."""
    if isinstance(value, bytes):
        return value
    return json.dumps(value).encode() if value is not None else b""


_UPSTREAM_CODES = {"ENGINE_UNAVAILABLE", "ENGINE_ERROR", "REGISTRY_UNREACHABLE", "REGISTRY_ERROR"}


@schemathesis.check
def no_unexpected_server_error(ctx, response, case):
    """500 is always a bug; 502/503 only when documented and caused by the engine or registry."""
    status = response.status_code
    if status < 500:
        return None
    documented = str(status) in case.operation.definition.raw.get("responses", {})
    try:
        code = json.loads(response.content).get("code")
    except (ValueError, AttributeError):  # not a JSON object: no code
        code = None
    if status == 500 or not documented or code not in _UPSTREAM_CODES:
        raise AssertionError(f"Server error {status} {code}: {response.text[:300]}")
    return None


# The same operations with a `read` token: whatever it sends, the engine must not change (and the
# registries' catalogs neither). Run first, so that no job of the admin run is still at work.
READ_EXAMPLES = int(os.environ.get("BERTH_FUZZ_READ_EXAMPLES", "5"))
read_schema = schemathesis.openapi.from_wsgi(
    "/openapi.json",
    app,
    config=SchemathesisConfig.from_dict(
        {"auth": {"openapi": {"bearerAuth": {"bearer": TOKENS["read"]}}}}
    ),
).exclude(path=ENDLESS)
_initial: list[tuple] = []  # the engine's state before the first call; it must never change
_engine = docker.APIClient(base_url=_state["engines"][FUZZ_ENGINE]["docker_host"], version="auto")


def _engine_state() -> tuple:
    """Image ids with every name and digest, container ids, and the open registry's catalog."""
    images = sorted(
        (i["Id"], tuple(sorted(i.get("RepoTags") or [])), tuple(sorted(i.get("RepoDigests") or [])))
        for i in _engine.images(all=True)
    )
    containers = sorted(c["Id"] for c in _engine.containers(all=True))
    registry = _state["registries"]["open"]["address"]
    catalog = requests.get(f"http://{registry}/v2/_catalog?n=1000", timeout=10).json()
    return images, containers, catalog


@read_schema.parametrize()
@settings(
    max_examples=READ_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_a_read_token_changes_nothing_in_the_engine(case):
    if not _initial:
        _initial.append(_engine_state())
    response = case.call()
    assert response.status_code != 500, response.text[:300]
    assert _engine_state() == _initial[0], (case.method, case.formatted_path, response.status_code)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_operation_conforms_to_its_document(case):
    case.call_and_validate(
        excluded_checks=[schemathesis.checks.not_a_server_error],
        additional_checks=[no_unexpected_server_error],
    )
