"""Configuration from the environment: typed, with defaults, failing with the variable's name."""

import pytest

from app.config import ConfigError, load_config


def test_defaults_without_environment():
    config = load_config({})
    assert config["BERTH_AUTH"] == "enabled"
    assert config["BERTH_DATA_DIR"] == "var"
    assert config["BERTH_MAX_UPLOAD_BYTES"] is None
    assert config["DOCKER_HOST"] is None


def test_values_are_parsed():
    config = load_config(
        {
            "BERTH_TOKENS": '[{"name": "a", "token": "0123456789abcdef", "scopes": ["read"]}]',
            "BERTH_MAX_UPLOAD_BYTES": "1048576",
            "BERTH_INSECURE_REGISTRIES": "reg.local:5000, other:80",
            "BERTH_ENGINE_TIMEOUT": "2.5",
            "DOCKER_HOST": "tcp://127.0.0.1:2376",
        }
    )
    assert config["BERTH_TOKENS"][0]["name"] == "a"
    assert config["BERTH_MAX_UPLOAD_BYTES"] == 1048576
    assert config["BERTH_INSECURE_REGISTRIES"] == ["reg.local:5000", "other:80"]
    assert config["BERTH_ENGINE_TIMEOUT"] == 2.5
    assert config["DOCKER_HOST"] == "tcp://127.0.0.1:2376"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BERTH_TOKENS", "[not json"),
        ("BERTH_MAX_UPLOAD_BYTES", "lots"),
        ("BERTH_MAX_UPLOAD_BYTES", "0"),
        ("BERTH_AUTH", "maybe"),
        ("BERTH_LOG_LEVEL", "LOUD"),
        ("BERTH_ENGINE_TIMEOUT", "-1"),
    ],
)
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError) as caught:
        load_config({name: value})
    assert name in str(caught.value)
