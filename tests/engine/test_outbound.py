"""The outbound policy and bounded registry answers.

The decision on private, link-local, metadata and public addresses is tested as a pure function
(nothing is sent anywhere). End to end, only loopback is used: ports that are not listed are
refused before any connection (a listener there sees none), and misbehaving registries (a realm
pointing elsewhere, a byte every second, endless bodies) are served on loopback.
"""

from __future__ import annotations

import ipaddress
import time

import pytest

from app import create_app
from app.config import ConfigError, load_config
from app.errors import RegistryNotAllowed
from app.http.accessors import services
from app.registry.policy import OutboundPolicy, allowed, is_public, parse_rules, search_index
from app.registry.tokens import token_answer
from app.registry.transport import Answer
from tests.support.fake_registry import SECRET_PAGE, FakeRegistry, Listener, closed_port
from tests.support.needs import need_engines
from tests.support.tokens import token_realm

PUBLIC = parse_rules([])
STRICT = parse_rules([], public=False)

REFUSED_BY_DEFAULT = [
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "127.0.0.1",
    "127.8.9.10",
    "100.64.0.1",  # shared address space (carrier NAT)
    "0.0.0.0",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.10",
    "::1",
    "::",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "ff02::1",
    "ff0e::1",
    "::ffff:10.0.0.1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "2002:a00:1::1",  # 6to4 around 10.0.0.1
    "fec0::1",  # site-local
]
PUBLIC_ADDRESSES = ["8.8.8.8", "1.1.1.1", "151.101.0.1", "2606:4700::1111", "::ffff:8.8.8.8"]


# --------------------------------------------------------------------------- the pure decision


@pytest.mark.parametrize("address", REFUSED_BY_DEFAULT)
def test_non_public_addresses_are_refused_unless_listed(address):
    assert not is_public(ipaddress.ip_address(address))
    assert not allowed("registry.example.com", 443, [address], PUBLIC)
    assert not allowed(address, None, [address], PUBLIC)


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_addresses_are_allowed_by_default_and_not_in_strict_mode(address):
    assert is_public(ipaddress.ip_address(address))
    assert allowed("registry.example.com", 443, [address], PUBLIC)
    assert not allowed("registry.example.com", 443, [address], STRICT)


def test_every_address_of_a_name_must_pass():
    assert not allowed("mixed.example.com", None, ["8.8.8.8", "10.0.0.1"], PUBLIC)
    assert not allowed("mixed.example.com", None, ["2606:4700::1111", "::1"], PUBLIC)
    assert not allowed("nowhere.example.com", None, [], PUBLIC)  # not resolved: refused


def test_host_entry_allows_every_port_and_host_port_entry_one():
    rules = parse_rules(["reg.internal", "other.internal:5000", "[::1]:5001", "127.0.0.1:7000"])
    private = ["10.1.2.3"]
    assert allowed("reg.internal", None, private, rules)
    assert allowed("reg.internal", 5000, private, rules)
    assert allowed("REG.internal", 443, private, rules)
    assert allowed("other.internal", 5000, private, rules)
    assert not allowed("other.internal", 5001, private, rules)
    assert not allowed("other.internal", None, private, rules)
    assert allowed("::1", 5001, ["::1"], rules)
    assert not allowed("::1", 5002, ["::1"], rules)
    assert allowed("127.0.0.1", 7000, ["127.0.0.1"], rules)
    assert not allowed("127.0.0.1", 7001, ["127.0.0.1"], rules)
    assert not allowed("evil.internal", None, private, rules)


def test_glob_entry_allows_names_under_the_domain_only():
    rules = parse_rules(["*.corp.example", "*.ports.example:5000"])
    private = ["192.168.0.10"]
    assert allowed("registry.corp.example", None, private, rules)
    assert allowed("a.b.corp.example", 443, private, rules)
    assert not allowed("corp.example", None, private, rules)
    assert not allowed("evilcorp.example", None, private, rules)
    assert not allowed("corp.example.evil.com", None, private, rules)
    assert allowed("r.ports.example", 5000, private, rules)
    assert not allowed("r.ports.example", 5001, private, rules)


def test_cidr_entry_allows_addresses_in_the_range_whatever_the_name():
    rules = parse_rules(["10.0.0.0/8", "fd00::/8"], public=False)
    assert allowed("anything.example", None, ["10.20.30.40"], rules)
    assert allowed("10.0.0.1", 5000, ["10.0.0.1"], rules)
    assert allowed("v6.example", None, ["fd00::5"], rules)
    assert allowed("mapped.example", None, ["::ffff:10.0.0.1"], rules)
    assert not allowed("other.example", None, ["11.0.0.1"], rules)
    assert not allowed("half.example", None, ["10.0.0.1", "172.16.0.1"], rules)
    assert not allowed("public.example", None, ["8.8.8.8"], rules)  # strict: public is not enough


@pytest.mark.parametrize("entry", ["http://reg", "reg/path", "*", "*.*.x", "a:b:c", "r:0", "r:x"])
def test_bad_entries_fail_the_configuration(entry):
    with pytest.raises(ConfigError, match="BERTH_ALLOWED_REGISTRIES"):
        parse_rules([entry])


@pytest.mark.parametrize(
    "term, index",
    [
        ("busybox", None),
        ("acme/busybox", None),
        ("127.0.0.1:5000/busybox", "127.0.0.1:5000"),
        ("localhost/x", "localhost"),
        ("registry.example.com/team/app", "registry.example.com"),
        ("docker.io/library/busybox", "docker.io"),
    ],
)
def test_search_terms_name_the_index_the_engine_asks(term, index):
    assert search_index(term) == index


def test_settings_come_from_the_environment_and_bad_entries_stop_the_start(tmp_path):
    config = load_config(
        {
            "BERTH_ALLOWED_REGISTRIES": "reg.internal:5000, *.corp.example ,10.0.0.0/8",
            "BERTH_ALLOW_PUBLIC_REGISTRIES": "false",
        }
    )
    listed = ["reg.internal:5000", "*.corp.example", "10.0.0.0/8"]
    assert config["BERTH_ALLOWED_REGISTRIES"] == listed
    assert config["BERTH_ALLOW_PUBLIC_REGISTRIES"] is False
    assert load_config({})["BERTH_ALLOW_PUBLIC_REGISTRIES"] is True
    policy = OutboundPolicy.from_config(config)
    assert policy.rules.public is False and policy.rules.host_ports == {("reg.internal", 5000)}
    with pytest.raises(ConfigError, match="BERTH_ALLOWED_REGISTRIES"):
        create_app(
            {
                "BERTH_DATA_DIR": str(tmp_path),
                "DOCKER_HOST": "unix:///nonexistent",
                "BERTH_ALLOWED_REGISTRIES": ["https://reg.example.com"],
            }
        )


def _policy(entries=(), public=True, names=None):
    names = names or {}

    def resolve(host, port):
        if host not in names:
            raise OSError("unknown host")
        return names[host]

    return OutboundPolicy(parse_rules(entries, public), resolve=resolve)


def test_policy_resolves_names_and_never_shows_the_addresses():
    policy = _policy(names={"inside.example": ["10.9.8.7"], "outside.example": ["8.8.4.4"]})
    policy.check("outside.example:5000")
    for registry in ("inside.example", "missing.example", "169.254.169.254", "[::1]:5000"):
        with pytest.raises(RegistryNotAllowed) as refused:
            policy.check(registry)
        assert refused.value.status == 403 and refused.value.code == "REGISTRY_NOT_ALLOWED"
        assert "10.9.8.7" not in refused.value.detail
        assert "BERTH_ALLOWED_REGISTRIES" in refused.value.detail


def test_docker_hub_is_public_without_a_lookup_and_listed_in_strict_mode():
    policy = _policy()  # resolves nothing: Hub must not need it
    for name in ("docker.io", "index.docker.io", "registry-1.docker.io", "auth.docker.io"):
        policy.check(name)
    with pytest.raises(RegistryNotAllowed):
        _policy(public=False).check("docker.io")
    _policy(["docker.io"], public=False).check("registry-1.docker.io")


def test_token_answers_are_bounded_and_validated():
    def answer(body: bytes) -> tuple:
        return token_answer(Answer(200, content=body))

    assert answer(b'{"token": "abc.def", "expires_in": 300}') == ("abc.def", 300.0)
    assert answer(b'{"access_token": "t", "expires_in": 1e12}')[1] == 24 * 3600.0
    assert answer(b'{"token": "t", "expires_in": "soon"}')[1] == 60.0
    for bad in (
        b'{"token": "a\\r\\nX-Injected: 1"}',
        b'{"token": 12345}',
        b'{"token": ["t"]}',
        b'{"token": "' + b"a" * 20000 + b'"}',
        b"[" * 100000,
        b"not json",
    ):
        assert answer(bad)[0] is None


# --------------------------------------------------------------------------- end to end


def _refused(response) -> dict:
    assert response.status_code == 403, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == "REGISTRY_NOT_ALLOWED"
    return problem


def _same_shape(problem: dict, port: int) -> dict:
    shown = dict(problem)
    shown.pop("request_id", None)
    shown["detail"] = shown["detail"].replace(str(port), "PORT")
    return shown


def test_registry_browsing_an_unlisted_port_is_refused_before_connecting(client, headers):
    with Listener() as listener:
        answers = []
        for port in (listener.port, closed_port()):
            for path in ("repositories", "repositories/team/app/tags"):
                response = client.get(
                    f"/v1/registries/127.0.0.1:{port}/{path}", headers=headers("read")
                )
                answers.append(_same_shape(_refused(response), port))
        assert not listener.connected(timeout=1.0)
    # Listening or not, the answer is the same.
    assert answers[0] == answers[2] and answers[1] == answers[3]
    assert "127.0.0.1:PORT" in answers[0]["detail"]


def test_search_of_an_unlisted_index_or_registry_is_refused_before_connecting(client, headers):
    with Listener() as listener:
        for query in (
            f"term=127.0.0.1:{listener.port}/busybox",
            f"term=localhost:{listener.port}/busybox",
            f"term=busybox&registry=127.0.0.1:{listener.port}",
        ):
            _refused(client.get(f"/v1/search?{query}", headers=headers("read")))
        assert not listener.connected(timeout=1.0)


def test_pull_from_an_unlisted_port_is_refused_before_the_engine_is_asked(client, headers):
    with Listener() as listener:
        for reference in (f"127.0.0.1:{listener.port}/team/app:1", f"localhost:{listener.port}/x"):
            for extra in ({}, {"Prefer": "respond-async"}):
                response = client.post(
                    "/v1/images/pull",
                    json={"reference": reference},
                    headers={**headers("write"), **extra},
                )
                _refused(response)
        assert not listener.connected(timeout=1.0)


def test_push_to_an_unlisted_port_is_refused_and_tags_nothing(
    client, headers, base_image, docker_client
):
    with Listener() as listener:
        target = f"127.0.0.1:{listener.port}/team/app:1"
        for extra in ({}, {"Prefer": "respond-async"}):
            response = client.post(
                f"/v1/images/{base_image}/push",
                json={"target": target},
                headers={**headers("push"), **extra},
            )
            _refused(response)
        assert not listener.connected(timeout=1.0)
    assert not [t for i in docker_client.images.list() for t in i.tags if t == target]


def test_distribution_via_an_unlisted_registry_is_refused_before_a_job(
    harness, config, headers, base_image
):
    need_engines(harness, "fleet-1")
    app = create_app(
        {
            **config,
            "BERTH_ENGINES": {
                "local": harness["docker_host"],
                "fleet-1": harness["engines"]["fleet-1"]["docker_host"],
            },
        }
    )
    try:
        client = app.test_client()
        with Listener() as listener:
            response = client.post(
                "/v1/distributions",
                json={
                    "image": base_image,
                    "target_engines": ["fleet-1"],
                    "via": {"registry": f"127.0.0.1:{listener.port}/team/app:1"},
                },
                headers=headers("push"),
            )
            _refused(response)
            assert not listener.connected(timeout=1.0)
        jobs = client.get("/v1/jobs", headers=headers("admin")).get_json()
        assert jobs["jobs"] == []  # no job was created
    finally:
        services(app).engines.close()


def test_a_realm_on_an_unlisted_port_is_refused_and_never_contacted(app_allowing, headers):
    with Listener() as realm, Listener() as https_realm:
        for url in (
            f"http://127.0.0.1:{realm.port}/token",
            f"https://127.0.0.1:{https_realm.port}/t",
        ):
            with FakeRegistry(realm=url) as registry:
                client = app_allowing(
                    registry.address, BERTH_INSECURE_REGISTRIES=[f"127.0.0.1:{realm.port}"]
                ).test_client()
                response = client.get(
                    f"/v1/registries/{registry.address}/repositories", headers=headers("read")
                )
                problem = _refused(response)
                assert registry.address in problem["detail"]
                assert registry.requests  # the registry itself was asked
        assert not realm.connected(timeout=1.0)
        assert not https_realm.connected(timeout=0.2)


def test_a_realm_over_plain_http_must_be_listed_insecure(app_allowing, headers):
    with Listener() as realm:
        address = f"127.0.0.1:{realm.port}"
        with FakeRegistry(realm=f"http://{address}/token") as registry:
            client = app_allowing(registry.address, address).test_client()  # allowed, not insecure
            response = client.get(
                f"/v1/registries/{registry.address}/repositories", headers=headers("read")
            )
            assert "BERTH_INSECURE_REGISTRIES" in _refused(response)["detail"]
        assert not realm.connected(timeout=1.0)


def test_a_realm_error_shows_its_status_never_its_body(app_allowing, headers):
    with FakeRegistry("realm-error") as realm:
        with FakeRegistry(realm=f"http://{realm.address}/token") as registry:
            client = app_allowing(
                registry.address, realm.address, BERTH_INSECURE_REGISTRIES=[realm.address]
            ).test_client()
            response = client.get(
                f"/v1/registries/{registry.address}/repositories", headers=headers("read")
            )
        assert realm.requests  # it was asked, once allowed
    assert response.status_code == 502
    problem = response.get_json()
    assert problem["code"] == "REGISTRY_ERROR" and "500" in problem["detail"]
    text = response.get_data(as_text=True)
    assert "hunter2" not in text and "admin console" not in text
    assert SECRET_PAGE.decode() not in text


def test_the_harness_token_realm_is_allowed_because_it_is_listed(config, harness):
    assert token_realm(harness) in config["BERTH_ALLOWED_REGISTRIES"]
    assert config["BERTH_INSECURE_REGISTRIES"] == [token_realm(harness)]


def test_a_registry_dripping_bytes_fails_within_the_total_timeout(app_allowing, headers):
    with FakeRegistry("drip", interval=1.0) as registry:
        client = app_allowing(registry.address, BERTH_REGISTRY_TIMEOUT=3.0).test_client()
        started = time.monotonic()
        response = client.get(
            f"/v1/registries/{registry.address}/repositories", headers=headers("read")
        )
        elapsed = time.monotonic() - started
    assert response.status_code == 502
    assert response.get_json()["code"] == "REGISTRY_UNREACHABLE"
    assert "3 s" in response.get_json()["detail"]
    assert elapsed < 6, elapsed  # a byte a second never trips a per-read timeout of 3 s


@pytest.mark.parametrize("mode", ["huge-json", "huge-error"])
def test_an_endless_answer_is_a_502_without_reading_it_all(app_allowing, headers, mode):
    with FakeRegistry(mode, size=100 * 1024 * 1024) as registry:
        client = app_allowing(registry.address).test_client()
        response = client.get(
            f"/v1/registries/{registry.address}/repositories", headers=headers("read")
        )
        sent = registry.sent
    assert response.status_code == 502
    problem = response.get_json()
    assert problem["code"] == "REGISTRY_ERROR" and "larger than" in problem["detail"]
    assert sent < 32 * 1024 * 1024  # the registry was cut off, not read to its end


def test_strict_mode_allows_only_the_list_docker_hub_included(app_allowing, headers, harness):
    listed = [entry["address"] for entry in harness["registries"].values()]
    client = app_allowing(
        BERTH_ALLOW_PUBLIC_REGISTRIES=False, BERTH_ALLOWED_REGISTRIES=listed
    ).test_client()
    _refused(client.get("/v1/search?term=busybox", headers=headers("read")))
    pull = {"reference": "busybox"}
    _refused(client.post("/v1/images/pull", json=pull, headers=headers("write")))
    listed = harness["registries"]["open"]["address"]
    response = client.get(f"/v1/registries/{listed}/repositories", headers=headers("read"))
    assert response.status_code == 200
