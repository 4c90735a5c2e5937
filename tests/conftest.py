"""Fixtures: the harness's engine and registries, an app wired to them, clients and tokens.

Engine-backed tests need ``scripts/harness.py start`` first (``make test`` does it). Without a
harness they are skipped locally, but under CI=true a missing harness fails the whole run.
"""

from __future__ import annotations

import os

import docker
import pytest

from app import create_app
from app.http.accessors import services
from tests.support.harness import load_state
from tests.support.images import image_factory
from tests.support.tokens import auth, harness_registries, token_entries, token_realm

# Safety net: whatever a test or the fuzzer asks for, this process reaches loopback directly and
# anything else only through a proxy that does not exist (so nothing leaves the machine).
for _name, _value in (
    ("HTTP_PROXY", "http://127.0.0.1:9"),
    ("HTTPS_PROXY", "http://127.0.0.1:9"),
    ("NO_PROXY", "127.0.0.1,localhost,::1,127.0.0.0/8"),
):
    os.environ.setdefault(_name, _value)


@pytest.fixture(scope="session")
def harness():
    state = load_state()
    if state is None:
        message = "no test harness: run 'make test' (or scripts/harness.py start)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " -- CI must run the engine suite", pytrace=False)
        pytest.skip(message)
    return state


@pytest.fixture(scope="session")
def docker_client(harness):
    client = docker.DockerClient(base_url=harness["docker_host"], version="auto", timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(harness):
    return harness["base_image"]


@pytest.fixture
def images(docker_client, base_image):
    """An ImageFactory whose images and containers are removed after the test."""
    with image_factory(docker_client, base_image) as factory:
        yield factory


@pytest.fixture
def config(harness, tmp_path):
    """App config pointing at the harness engine; tests may change it before using ``app``.

    The outbound policy allows exactly the harness's registries and the token registry's realm
    (plain HTTP, so also listed insecure); any other loopback port is refused.
    """
    return {
        "DOCKER_HOST": harness["docker_host"],
        "BERTH_TOKENS": token_entries(),
        "BERTH_DATA_DIR": str(tmp_path / "data"),
        "BERTH_LOG_LEVEL": "INFO",
        "BERTH_ALLOWED_REGISTRIES": harness_registries(harness),
        "BERTH_ALLOW_PUBLIC_REGISTRIES": False,
        "BERTH_INSECURE_REGISTRIES": [token_realm(harness)],
    }


@pytest.fixture
def app_allowing(config):
    """``app_allowing(*addresses, **settings)``: an app whose outbound policy also allows
    ``addresses`` (``settings`` override more of the config)."""
    made = []

    def make(*addresses: str, **settings):
        allowed = config["BERTH_ALLOWED_REGISTRIES"] + list(addresses)
        made.append(create_app({**config, "BERTH_ALLOWED_REGISTRIES": allowed, **settings}))
        return made[-1]

    yield make
    for app in made:
        services(app).engines.close()


@pytest.fixture
def app(config):
    app = create_app(config)
    yield app
    services(app).engines.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def offline_app(tmp_path):
    """An app whose engine does not exist, for tests that need no engine."""
    app = create_app(
        {
            "DOCKER_HOST": f"unix://{tmp_path}/missing.sock",
            "BERTH_TOKENS": token_entries(),
            "BERTH_DATA_DIR": str(tmp_path / "data"),
        }
    )
    return app


@pytest.fixture
def offline_client(offline_app):
    return offline_app.test_client()


@pytest.fixture
def headers():
    return auth
