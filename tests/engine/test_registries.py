"""Private registries through their v2 API: catalog, tags, search, Basic and Bearer auth.

Against the harness's real distribution registries: ``open``, ``basic`` (htpasswd) and ``token``
(token auth, whose issuer these tests run on the registry's realm port).
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from app.errors import BerthError
from app.registry.addresses import registry_scheme, validate_registry
from app.registry.client import RegistryClient
from app.registry.credentials import CredentialStore, parse_auths, registry_key, resolve_auth
from app.registry.paging import page_of, scan_pages
from app.registry.tokens import parse_challenge
from tests.support.harness import harness_module
from tests.support.registry import (
    basic_credentials,
    push_image,
    registry_auth_header,
    served_digest,
)
from tests.support.token_issuer import token_issuer


def _auth_file(tmp_path, entries: dict) -> str:
    path = tmp_path / "registry-auth.json"
    path.write_text(json.dumps({"auths": entries}))
    path.chmod(0o600)
    return str(path)


def _basic_entry(username: str, password: str) -> dict:
    return {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def catalog(harness, docker_client, base_image):
    """Seven repositories ``<prefix>/r0..r6`` plus two non-matching ones in the open registry."""
    prefix = f"cat{uuid.uuid4().hex[:8]}"
    address = harness["registries"]["open"]["address"]
    names = [f"{prefix}/r{i}" for i in range(7)]
    others = [f"{prefix}x/other", f"zz{uuid.uuid4().hex[:8]}/unrelated"]
    for name in names + others:
        push_image(docker_client, base_image, f"{address}/{name}:1")
    yield {"prefix": prefix, "address": address, "names": names, "others": others}
    for name in names + others:
        try:
            docker_client.api.remove_image(f"{address}/{name}:1")
        except Exception:
            pass


# --------------------------------------------------------------------------- plain logic


def test_registry_must_be_host_and_port():
    assert validate_registry("Registry.Example.com:5000") == "registry.example.com:5000"
    assert validate_registry("127.0.0.1:5000") == "127.0.0.1:5000"
    assert validate_registry("[::1]:5000") == "[::1]:5000"
    for bad in (
        "http://registry:5000",
        "registry:5000/path",
        "user@registry",
        "user:pw@registry:5000",
        "registry:99999",
        "registry:",
        "-bad.example.com",
        "a b",
        "",
    ):
        with pytest.raises(BerthError) as info:
            validate_registry(bad)
        assert info.value.code == "INVALID_REGISTRY"


def test_plain_http_only_for_loopback_and_insecure_registries():
    assert registry_scheme("127.0.0.1:5000", []) == "http"
    assert registry_scheme("127.8.9.10", []) == "http"
    assert registry_scheme("localhost:5000", []) == "http"
    assert registry_scheme("[::1]:5000", []) == "http"
    assert registry_scheme("registry.example.com:5000", []) == "https"
    assert registry_scheme("10.1.2.3:5000", []) == "https"
    # a name is never resolved: one pointing at loopback is still https
    assert registry_scheme("loopback.example.com", []) == "https"
    insecure = ["registry.example.com:5000", "10.0.0.0/8", "plain.example.com"]
    assert registry_scheme("registry.example.com:5000", insecure) == "http"
    assert registry_scheme("registry.example.com:5001", insecure) == "https"
    assert registry_scheme("plain.example.com:443", insecure) == "http"
    assert registry_scheme("10.1.2.3:5000", insecure) == "http"
    assert registry_scheme("11.1.2.3:5000", insecure) == "https"
    assert RegistryClient("registry.example.com").base == "https://registry.example.com"
    assert RegistryClient("docker.io").base == "https://registry-1.docker.io"
    assert RegistryClient("127.0.0.1:5000").base == "http://127.0.0.1:5000"


def test_bearer_challenge_is_parsed():
    challenge = parse_challenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:team/app:pull,push"'
    )
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example.com/token",
        "service": "registry.example.com",
        "scope": "repository:team/app:pull,push",
    }
    assert parse_challenge('Basic realm="x"').scheme == "basic"
    assert parse_challenge("") is None


def test_filtered_scan_reads_upstream_pages_until_it_has_a_full_page():
    names = sorted([f"a{i:02d}" for i in range(20)] + [f"b{i:02d}" for i in range(20)])
    calls = []

    def fetch(size, last):
        calls.append((size, last))
        rest = [n for n in names if last is None or n > last]
        return rest[:size], len(rest) > size

    matches = lambda name: name.endswith(("1", "3", "5"))  # noqa: E731
    first = scan_pages(fetch, n=3, matches=matches, page_size=4)
    assert first.items == ["a01", "a03", "a05"]
    assert first.next_last == "a05"
    assert len(calls) > 1  # several upstream pages for one filtered page
    second = scan_pages(fetch, n=3, last=first.next_last, matches=matches, page_size=4)
    assert second.items == ["a11", "a13", "a15"]
    third = scan_pages(fetch, n=3, last=second.next_last, matches=matches, page_size=4)
    assert third.items == ["b01", "b03", "b05"]
    fourth = scan_pages(fetch, n=3, last=third.next_last, matches=matches, page_size=4)
    assert fourth.items == ["b11", "b13", "b15"]
    assert fourth.next_last is None  # no further match: no empty last page


def test_scan_stops_when_upstream_ignores_the_cursor():
    def fetch(size, last):
        return ["a", "b", "c"], True  # always the same page, always "more"

    page = scan_pages(fetch, n=10)
    assert page.items == ["a", "b", "c"]
    assert page.next_last is None


def test_tags_are_paged_by_berth_in_sorted_order():
    tags = ["3", "10", "1", "2", "latest"]
    first = page_of(tags, n=2)
    assert first.items == ["1", "10"] and first.next_last == "10"
    second = page_of(tags, n=2, last="10")
    assert second.items == ["2", "3"] and second.next_last == "3"
    third = page_of(tags, n=2, last="3")
    assert third.items == ["latest"] and third.next_last is None


def test_docker_config_auths_are_read_by_registry_host(tmp_path):
    entries = parse_auths(
        {
            "auths": {
                "https://index.docker.io/v1/": _basic_entry("hubuser", "hubpw"),
                "registry.example.com:5000": {"username": "u", "password": "p:with:colons"},
                "https://harbor.example.com": {"identitytoken": "idt"},
                "empty.example.com": {},
            },
            "credsStore": "desktop",
        }
    )
    assert entries["docker.io"]["username"] == "hubuser"
    assert entries["docker.io"]["password"] == "hubpw"
    assert entries["registry.example.com:5000"]["password"] == "p:with:colons"
    assert entries["harbor.example.com"] == {
        "identitytoken": "idt",
        "serveraddress": "harbor.example.com",
    }
    assert "empty.example.com" not in entries
    assert registry_key("index.docker.io") == "docker.io"


def test_request_credentials_win_over_stored_ones(tmp_path):
    store = CredentialStore(_auth_file(tmp_path, {"r.example.com": _basic_entry("s", "stored")}))
    assert resolve_auth("r.example.com", None, store)["password"] == "stored"
    given = resolve_auth("r.example.com", registry_auth_header("me", "given"), store)
    assert given["username"] == "me" and given["password"] == "given"
    assert resolve_auth("other.example.com", None, store) is None


def test_stored_credentials_follow_file_changes(tmp_path):
    path = _auth_file(tmp_path, {"r.example.com": _basic_entry("u", "old")})
    store = CredentialStore(path)
    assert store.lookup("r.example.com")["password"] == "old"
    _auth_file(tmp_path, {"r.example.com": _basic_entry("u", "rotated-password")})
    assert store.lookup("r.example.com")["password"] == "rotated-password"


def test_unusable_auth_file_is_reported_without_its_content(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"auths": {"r.example.com": {"auth": "not base64 !!"}}}')
    with pytest.raises(BerthError) as info:
        CredentialStore(path).lookup("r.example.com")
    assert info.value.code == "REGISTRY_AUTH_FILE_INVALID"
    assert "not base64 !!" not in info.value.detail


# --------------------------------------------------------------------------- catalog


def test_catalog_filter_paginates_across_pages(client, headers, catalog):
    address, prefix = catalog["address"], catalog["prefix"]
    url = f"/v1/registries/{address}/repositories?q={prefix}/&n=3"
    seen, pages = [], 0
    while url:
        response = client.get(url, headers=headers("read"))
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        pages += 1
        assert len(body["repositories"]) <= 3
        seen.extend(body["repositories"])
        if body["next"]:
            assert response.headers["Link"] == f'<{body["next"]}>; rel="next"'
        else:
            assert "Link" not in response.headers
        url = body["next"]
    assert seen == catalog["names"]
    assert pages == 3  # 3 + 3 + 1, and no empty fourth page


def test_catalog_glob_filter(client, headers, catalog):
    address, prefix = catalog["address"], catalog["prefix"]
    response = client.get(
        f"/v1/registries/{address}/repositories?q={prefix}*/r[0-2]", headers=headers("read")
    )
    assert response.get_json()["repositories"] == catalog["names"][:3]
    response = client.get(f"/v1/registries/{address}/repositories?q=*/other", headers=headers())
    assert f"{prefix}x/other" in response.get_json()["repositories"]


def test_catalog_without_filter_pages_through_everything(client, headers, catalog):
    url = f"/v1/registries/{catalog['address']}/repositories?n=2"
    seen = []
    while url:
        body = client.get(url, headers=headers("read")).get_json()
        assert len(body["repositories"]) <= 2
        seen.extend(body["repositories"])
        url = body["next"]
    assert seen == sorted(set(seen))  # in order, nothing twice
    assert set(catalog["names"] + catalog["others"]) <= set(seen)


def test_catalog_needs_read_scope(client, headers, catalog):
    response = client.get(
        f"/v1/registries/{catalog['address']}/repositories", headers=headers("push")
    )
    assert response.status_code == 403
    assert response.get_json()["code"] == "FORBIDDEN"


def test_bad_registry_address_is_400(client, headers):
    for bad in ("user@host:5000", "host:99999", "bad_host!"):
        response = client.get(f"/v1/registries/{bad}/repositories", headers=headers("read"))
        assert response.status_code == 400, bad
        assert response.get_json()["code"] == "INVALID_REGISTRY"


def test_stopped_registry_is_502_unreachable(client, headers, harness):
    module = harness_module()
    state = module.load_state(harness["dir"])
    address = state["registries"]["open"]["address"]
    module.stop_registry(state, "open")
    try:
        response = client.get(f"/v1/registries/{address}/repositories", headers=headers("read"))
        assert response.status_code == 502
        assert response.get_json()["code"] == "REGISTRY_UNREACHABLE"
        response = client.get(f"/v1/search?term=x&registry={address}", headers=headers("read"))
        assert response.status_code == 502
        assert response.get_json()["code"] == "REGISTRY_UNREACHABLE"
    finally:
        module.start_registry(state, "open")
        module.save_state(state)


# --------------------------------------------------------------------------- tags


def test_tags_come_with_the_registry_digests(client, headers, catalog, docker_client, images):
    address, name = catalog["address"], catalog["names"][0]
    other_id, _ = images.image("echo other > /other")
    push_image(docker_client, other_id, f"{address}/{name}:2")
    images.track(f"{address}/{name}:2")
    response = client.get(
        f"/v1/registries/{address}/repositories/{name}/tags", headers=headers("read")
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["repository"] == name and body["next"] is None
    assert [t["tag"] for t in body["tags"]] == ["1", "2"]
    for entry in body["tags"]:
        assert entry["digest"] == served_digest(address, name, entry["tag"])
    assert body["tags"][0]["digest"] != body["tags"][1]["digest"]


def test_tags_paginate(client, headers, catalog, docker_client, base_image):
    address, name = catalog["address"], catalog["names"][1]
    for tag in ("a", "b", "c", "d"):
        push_image(docker_client, base_image, f"{address}/{name}:{tag}")
    url = f"/v1/registries/{address}/repositories/{name}/tags?n=2"
    pages = []
    while url:
        response = client.get(url, headers=headers("read"))
        body = response.get_json()
        pages.append([t["tag"] for t in body["tags"]])
        url = body["next"]
    assert pages == [["1", "a"], ["b", "c"], ["d"]]


def test_tags_of_unknown_repository_is_404(client, headers, catalog):
    response = client.get(
        f"/v1/registries/{catalog['address']}/repositories/nope/{uuid.uuid4().hex}/tags",
        headers=headers("read"),
    )
    assert response.status_code == 404
    assert response.get_json()["code"] == "REPOSITORY_NOT_FOUND"


# --------------------------------------------------------------------------- search


def test_private_search_answers_like_hub_search(client, headers, catalog):
    address, prefix = catalog["address"], catalog["prefix"]
    response = client.get(f"/v1/search?term={prefix}/&registry={address}", headers=headers("read"))
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["name"] for r in results] == [f"{address}/{n}" for n in catalog["names"]]
    assert results[0] == {
        "name": f"{address}/{catalog['names'][0]}",
        "description": "",
        "stars": 0,
        "official": False,
        "automated": False,
    }
    limited = client.get(
        f"/v1/search?term={prefix}&registry={address}&limit=2", headers=headers("read")
    )
    assert len(limited.get_json()["results"]) == 2
    official = client.get(
        f"/v1/search?term={prefix}&registry={address}&official=true", headers=headers("read")
    )
    assert official.get_json()["results"] == []


# --------------------------------------------------------------------------- basic auth


@pytest.fixture(scope="module")
def basic_repo(harness, docker_client, base_image):
    address = harness["registries"]["basic"]["address"]
    name = f"priv{uuid.uuid4().hex[:8]}/app"
    push_image(docker_client, base_image, f"{address}/{name}:1", basic_credentials(harness))
    yield {"address": address, "name": name}
    try:
        docker_client.api.remove_image(f"{address}/{name}:1")
    except Exception:
        pass


def test_basic_registry_without_credentials_is_403(client, headers, basic_repo):
    response = client.get(
        f"/v1/registries/{basic_repo['address']}/repositories", headers=headers("read")
    )
    assert response.status_code == 403
    assert response.get_json()["code"] == "REGISTRY_AUTH_FAILED"


def test_basic_registry_with_wrong_credentials_is_403(client, headers, basic_repo, harness):
    auth = registry_auth_header(harness["registries"]["basic"]["username"], "wrong-password")
    response = client.get(
        f"/v1/registries/{basic_repo['address']}/repositories",
        headers={**headers("read"), "X-Registry-Auth": auth},
    )
    assert response.status_code == 403
    assert response.get_json()["code"] == "REGISTRY_AUTH_FAILED"


def test_basic_registry_with_request_credentials(client, headers, basic_repo, harness):
    creds = basic_credentials(harness)
    auth = registry_auth_header(creds["username"], creds["password"], basic_repo["address"])
    response = client.get(
        f"/v1/registries/{basic_repo['address']}/repositories/{basic_repo['name']}/tags",
        headers={**headers("read"), "X-Registry-Auth": auth},
    )
    assert response.status_code == 200
    digest = served_digest(
        basic_repo["address"], basic_repo["name"], "1", (creds["username"], creds["password"])
    )
    assert response.get_json()["tags"] == [{"tag": "1", "digest": digest}]


def test_stored_credentials_are_used(config, request, tmp_path, harness, basic_repo, headers):
    creds = basic_credentials(harness)
    config["BERTH_REGISTRY_AUTH_FILE"] = _auth_file(
        tmp_path, {basic_repo["address"]: _basic_entry(creds["username"], creds["password"])}
    )
    client = request.getfixturevalue("client")
    response = client.get(
        f"/v1/search?term={basic_repo['name']}&registry={basic_repo['address']}",
        headers=headers("read"),
    )
    assert response.status_code == 200
    assert [r["name"] for r in response.get_json()["results"]] == [
        f"{basic_repo['address']}/{basic_repo['name']}"
    ]


def test_request_credentials_beat_wrong_stored_ones(
    config, request, tmp_path, harness, basic_repo, headers
):
    creds = basic_credentials(harness)
    config["BERTH_REGISTRY_AUTH_FILE"] = _auth_file(
        tmp_path, {basic_repo["address"]: _basic_entry(creds["username"], "stale-password")}
    )
    client = request.getfixturevalue("client")
    url = f"/v1/registries/{basic_repo['address']}/repositories"
    assert client.get(url, headers=headers("read")).status_code == 403
    auth = registry_auth_header(creds["username"], creds["password"])
    response = client.get(url, headers={**headers("read"), "X-Registry-Auth": auth})
    assert response.status_code == 200
    assert basic_repo["name"] in response.get_json()["repositories"]


def test_malformed_registry_auth_header_is_400_without_echo(client, headers, basic_repo):
    response = client.get(
        f"/v1/registries/{basic_repo['address']}/repositories",
        headers={**headers("read"), "X-Registry-Auth": "secret-looking%%%value"},
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == "INVALID_REGISTRY_AUTH"
    assert "secret-looking" not in response.get_data(as_text=True)


# --------------------------------------------------------------------------- bearer tokens


@pytest.fixture(scope="module")
def token_repo(harness, docker_client, base_image):
    issuer = token_issuer(harness)
    address = harness["registries"]["token"]["address"]
    name = f"tok{uuid.uuid4().hex[:8]}/app"
    push_image(docker_client, base_image, f"{address}/{name}:1", basic_credentials(harness))
    yield {"address": address, "name": name, "issuer": issuer}
    try:
        docker_client.api.remove_image(f"{address}/{name}:1")
    except Exception:
        pass


def test_bearer_registry_tokens_are_fetched_and_reused(client, headers, token_repo, harness):
    issuer = token_repo["issuer"]
    issuer.reset()
    creds = basic_credentials(harness)
    auth = registry_auth_header(creds["username"], creds["password"])
    h = {**headers("read"), "X-Registry-Auth": auth}
    url = f"/v1/registries/{token_repo['address']}/repositories"
    first = client.get(url, headers=h)
    assert first.status_code == 200, first.get_json()
    assert token_repo["name"] in first.get_json()["repositories"]
    assert client.get(url, headers=h).status_code == 200
    catalog_requests = [r for r in issuer.requests if r["scopes"] == ["registry:catalog:*"]]
    assert len(catalog_requests) == 1  # the second call reused the cached token
    assert catalog_requests[0]["user"] == creds["username"]

    tags = client.get(f"{url}/{token_repo['name']}/tags", headers=h)
    assert tags.status_code == 200
    token = harness_module().make_registry_token(
        harness, [{"type": "repository", "name": token_repo["name"], "actions": ["pull"]}]
    )
    digest = served_digest(token_repo["address"], token_repo["name"], "1", token=token)
    assert tags.get_json()["tags"] == [{"tag": "1", "digest": digest}]
    assert [f"repository:{token_repo['name']}:pull"] in [r["scopes"] for r in issuer.requests]


def test_bearer_registry_tokens_are_not_shared_between_credentials(
    client, headers, token_repo, harness
):
    creds = basic_credentials(harness)
    url = f"/v1/registries/{token_repo['address']}/repositories"
    good = registry_auth_header(creds["username"], creds["password"])
    assert client.get(url, headers={**headers("read"), "X-Registry-Auth": good}).status_code == 200
    wrong = registry_auth_header(creds["username"], "wrong-password")
    response = client.get(url, headers={**headers("read"), "X-Registry-Auth": wrong})
    assert response.status_code == 403
    assert response.get_json()["code"] == "REGISTRY_AUTH_FAILED"
    anonymous = client.get(url, headers=headers("read"))
    assert anonymous.status_code == 403


def test_bearer_registry_with_identity_token(client, headers, token_repo):
    issuer = token_repo["issuer"]
    identity = f"idt-{uuid.uuid4().hex}"
    issuer.identity_tokens[identity] = "robot"
    issuer.reset()
    auth = base64.urlsafe_b64encode(json.dumps({"identitytoken": identity}).encode()).decode()
    response = client.get(
        f"/v1/registries/{token_repo['address']}/repositories/{token_repo['name']}/tags",
        headers={**headers("read"), "X-Registry-Auth": auth},
    )
    assert response.status_code == 200, response.get_json()
    assert [r["method"] for r in issuer.requests] == ["POST"]
    assert issuer.requests[0]["user"] == "robot"
