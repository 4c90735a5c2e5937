"""The metadata cache: fast reads that are never stale.

Image list, inspect and history answers are kept per engine and dropped on every engine event
that may change them. The engine tests change images *behind Berth's back* (docker CLI or
docker-py, never through Berth) after Berth has cached an answer, then poll Berth: the change must
show within a second.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import subprocess
import tarfile
import time

import flask
import pytest
import requests

from app import create_app
from app.engine.cache import MetadataCache
from app.engine.events import changes_metadata
from app.http.accessors import services
from app.observability.metrics import REGISTRY
from tests.support.gunicorn import gunicorn_server
from tests.support.harness import harness_module
from tests.support.images import unique
from tests.support.tokens import TOKENS, token_entries

WITHIN = 1.0  # the promise: a change made elsewhere shows in Berth within a second


def eventually(check, within: float = WITHIN, what: str = "the change"):
    """Poll ``check()`` until it returns a truthy value; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not show within {within} s")
        time.sleep(0.02)


@pytest.fixture
def cache(app, client, headers):
    """The default engine's cache, live (its watcher follows the engine's events)."""
    client.get("/v1/images", headers=headers("read"))  # the first read starts the watcher
    engine = services(app).engines.get()
    deadline = time.monotonic() + 15
    while not engine.cache.live:
        assert time.monotonic() < deadline, "the event watcher did not connect"
        time.sleep(0.02)
    return engine.cache


def cached(cache, client, headers, path):
    """GET ``path`` until an answer comes from the cache (events of an earlier change may still
    be arriving and drop it); that answer."""
    deadline = time.monotonic() + 10
    while True:
        hits = cache.hits
        answer = client.get(path, headers=headers("read"))
        assert answer.status_code == 200, answer.get_json()
        if cache.hits > hits:
            return answer.get_json()
        assert time.monotonic() < deadline, f"{path} was never served from the cache"
        time.sleep(0.01)


def docker_cli(harness, *args: str) -> None:
    """Run the docker CLI against the harness engine (as an operator would, beside Berth)."""
    env = {"DOCKER_CONFIG": harness["docker_config"], "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [harness["docker_cli"], "-H", harness["docker_host"], *args],
        check=True,
        capture_output=True,
        env=env,
        timeout=60,
    )


def cached_ids(cache, client, headers, query: str = "") -> set[str]:
    """The ids in a list answer that is now in the cache."""
    return {image["id"] for image in cached(cache, client, headers, f"/v1/images{query}")["images"]}


def list_ids(client, headers, query: str = "") -> dict[str, dict]:
    answer = client.get(f"/v1/images{query}", headers=headers("read"))
    assert answer.status_code == 200
    return {image["id"]: image for image in answer.get_json()["images"]}


# ---- the cache's own rules (no engine) ----


def test_cache_serves_nothing_until_the_watcher_opens_it():
    cache = MetadataCache()
    assert cache.token() is None
    assert not cache.put("k", cache.token(), b"v")
    assert cache.get("k") is None
    cache.open()
    assert cache.put("k", cache.token(), b"v")
    assert cache.get("k") == b"v"


def test_hits_and_misses_are_counted_and_a_first_look_counts_no_miss():
    cache = MetadataCache()
    cache.open()
    assert cache.get("k", count_miss=False) is None  # e.g. a route that is never cached
    assert (cache.hits, cache.misses) == (0, 0)
    assert cache.get("k") is None
    cache.put("k", cache.token(), b"v")
    assert cache.get("k", count_miss=False) == b"v"
    assert (cache.hits, cache.misses) == (1, 1)


def test_a_value_fetched_across_an_invalidation_is_not_kept():
    cache = MetadataCache()
    cache.open()
    token = cache.token()  # taken before asking the engine...
    cache.invalidate()  # ...an event arrives while the answer is on its way...
    assert not cache.put("k", token, b"old")  # ...so that answer is refused
    assert cache.get("k") is None


def test_invalidate_drops_every_entry():
    cache = MetadataCache()
    cache.open()
    for key in ("a", "b"):
        cache.put(key, cache.token(), b"x")
    cache.invalidate()
    assert cache.get("a") is None and cache.get("b") is None


def test_losing_the_watcher_closes_the_cache_and_reopening_starts_empty():
    cache = MetadataCache()
    cache.open()
    token = cache.token()
    cache.put("k", token, b"v")
    cache.close()
    assert cache.get("k") is None and cache.token() is None
    cache.open()
    assert cache.get("k") is None
    assert not cache.put("k", token, b"v")  # a token from before the gap is void


def test_nothing_older_than_max_age_is_served():
    cache = MetadataCache(max_age=0.05)  # bounds changes the engine does not announce
    cache.open()
    token = cache.token()
    assert cache.put("k", token, b"v") and cache.get("k") == b"v"
    time.sleep(0.1)
    assert cache.get("k") is None
    assert not cache.put("k", token, b"v")  # fetched in the expired generation
    assert cache.put("k", cache.token(), b"v2") and cache.get("k") == b"v2"


def test_cache_size_is_bounded():
    cache = MetadataCache(max_entries=3)
    cache.open()
    for i in range(10):
        cache.put(i, cache.token(), b"x")
    assert cache.stats()["entries"] <= 3
    assert cache.get(9) == b"x"


@pytest.mark.parametrize(
    ("event", "changes"),
    [
        ({"Type": "image", "Action": "tag"}, True),
        ({"Type": "image", "Action": "untag"}, True),
        ({"Type": "image", "Action": "delete"}, True),
        ({"Type": "image", "Action": "pull"}, True),
        ({"Type": "image", "Action": "push"}, True),  # adds a repo digest
        ({"Type": "image", "Action": "load"}, True),
        ({"Type": "image", "Action": "import"}, True),
        ({"Type": "image", "Action": "some-future-action"}, True),
        ({"Type": "image", "Action": "save"}, False),
        ({"Type": "container", "Action": "create"}, True),
        ({"Type": "container", "Action": "destroy"}, True),
        ({"Type": "container", "Action": "commit"}, True),
        ({"Type": "container", "Action": "prune"}, True),
        ({"Type": "container", "Action": "start"}, False),
        ({"Type": "container", "Action": "exec_start: sh -c true"}, False),
        ({"Type": "container", "Action": "health_status: healthy"}, False),
        ({"Type": "network", "Action": "connect"}, False),
    ],
)
def test_which_engine_events_drop_the_cache(event, changes):
    assert changes_metadata(event) is changes


# ---- against the engine: changes made behind Berth's back ----


def test_repeated_reads_are_served_from_the_cache(cache, client, headers, images):
    image_id, ref = images.image("true")
    assert cached(cache, client, headers, f"/v1/images/{ref}")["id"] == image_id
    history = cached(cache, client, headers, f"/v1/images/{ref}/history")["history"]
    assert history[0]["id"] == image_id
    assert image_id in cached_ids(cache, client, headers)


def test_cached_answers_still_need_a_token_and_carry_a_request_id(cache, client, headers, images):
    _, ref = images.image("true")
    cached(cache, client, headers, f"/v1/images/{ref}")
    assert client.get(f"/v1/images/{ref}").status_code == 401
    hit = client.get(f"/v1/images/{ref}", headers={**headers("read"), "X-Request-Id": "r-1"})
    assert hit.status_code == 200 and hit.headers["X-Request-Id"] == "r-1"
    assert hit.mimetype == "application/json"


def test_tag_added_with_the_docker_cli_shows_within_a_second(
    cache, client, headers, images, harness
):
    image_id, ref = images.image("true")
    assert cached(cache, client, headers, f"/v1/images/{image_id}")["repo_tags"] == [ref]
    extra = f"{unique()}:cli"
    docker_cli(harness, "tag", image_id, extra)
    eventually(
        lambda: (
            extra in client.get(f"/v1/images/{image_id}", headers=headers("read")).json["repo_tags"]
        ),
        what="a tag added with docker tag",
    )


def test_tag_moved_to_another_image_resolves_to_the_new_image_within_a_second(
    cache, client, headers, images, harness
):
    first_id, ref = images.image("true")
    second_id, _ = images.image("echo second > /f")
    assert cached(cache, client, headers, f"/v1/images/{ref}")["id"] == first_id
    assert cached(cache, client, headers, f"/v1/images/{ref}/history")["history"][0]["id"] == (
        first_id
    )
    docker_cli(harness, "tag", second_id, ref)
    eventually(
        lambda: client.get(f"/v1/images/{ref}", headers=headers("read")).json["id"] == second_id,
        what="the moved tag in inspect",
    )
    eventually(
        lambda: (
            client.get(f"/v1/images/{ref}/history", headers=headers("read")).json["history"][0][
                "id"
            ]
            == second_id
        ),
        what="the moved tag in history",
    )


def test_untag_of_one_tag_shows_within_a_second(cache, client, headers, images, docker_client):
    image_id, ref = images.image("true")
    other = f"{unique()}:second"
    docker_client.api.tag(image_id, *other.split(":"))
    assert sorted(cached(cache, client, headers, f"/v1/images/{other}")["repo_tags"]) == sorted(
        [ref, other]
    )
    docker_client.api.remove_image(other)  # rmi of one tag: the image stays
    eventually(
        lambda: client.get(f"/v1/images/{other}", headers=headers("read")).status_code == 404,
        what="the removed tag answering 404",
    )
    assert client.get(f"/v1/images/{image_id}", headers=headers("read")).json["repo_tags"] == [ref]


def test_deleted_image_is_gone_within_a_second(cache, client, headers, images, docker_client):
    image_id, ref = images.image("true")
    cached(cache, client, headers, f"/v1/images/{ref}")
    assert image_id in cached_ids(cache, client, headers)
    docker_client.api.remove_image(ref)
    eventually(
        lambda: client.get(f"/v1/images/{ref}", headers=headers("read")).status_code == 404,
        what="the deleted image answering 404",
    )
    assert image_id not in list_ids(client, headers)


def test_loaded_image_shows_within_a_second(cache, client, headers, images, docker_client):
    image_id, ref = images.image("echo loaded > /f")
    archive = b"".join(docker_client.api.get_image(ref))
    docker_client.api.remove_image(ref)
    assert image_id not in cached_ids(cache, client, headers)
    list(docker_client.api.load_image(archive))
    images.track(image_id)
    eventually(lambda: image_id in list_ids(client, headers), what="the loaded image")


def test_imported_image_shows_within_a_second(cache, client, headers, images, docker_client):
    repository = unique()
    query = f"?reference={repository}"
    assert cached(cache, client, headers, f"/v1/images{query}")["images"] == []
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    result = docker_client.api.import_image_from_data(
        buffer.getvalue(), repository=repository, tag="imported"
    )
    images.track(json.loads(result.strip().splitlines()[-1])["status"])
    eventually(
        lambda: (
            [i["repo_tags"] for i in list_ids(client, headers, query).values()]
            == [[f"{repository}:imported"]]
        ),
        what="the imported image",
    )


def test_untagged_commit_shows_within_a_second(cache, client, headers, images, docker_client):
    container_id = images.container("echo committed > /f")
    query = "?dangling=true"
    cached_ids(cache, client, headers, query)
    committed = docker_client.api.commit(container_id)["Id"]  # no tag: only a container event
    images.track(committed)
    eventually(lambda: committed in list_ids(client, headers, query), what="the committed image")


def test_pull_and_push_show_within_a_second(cache, client, headers, images, docker_client, harness):
    image_id, _ = images.image("echo pushed > /f")
    repository = f"{harness['registries']['open']['address']}/{unique()}"
    docker_client.api.tag(image_id, repository, "v1")
    assert cached(cache, client, headers, f"/v1/images/{image_id}")["repo_digests"] == []
    for _ in docker_client.api.push(repository, "v1", stream=True, decode=True):
        pass
    eventually(  # the engine records the digest it pushed
        lambda: client.get(f"/v1/images/{image_id}", headers=headers("read")).json["repo_digests"],
        what="the pushed image's repo digest",
    )
    docker_client.api.remove_image(f"{repository}:v1")
    docker_client.api.remove_image(image_id, force=True)
    assert image_id not in cached_ids(cache, client, headers)
    for _ in docker_client.api.pull(repository, "v1", stream=True, decode=True):
        pass
    images.track(image_id)
    eventually(lambda: image_id in list_ids(client, headers), what="the pulled image")


def test_container_count_follows_containers_created_and_removed(
    cache, client, headers, images, docker_client
):
    image_id, ref = images.image("true")
    query = f"?reference={ref}"
    assert cached(cache, client, headers, f"/v1/images{query}")["images"][0]["containers"] == 0
    container_id = images.container("true", ref, run=False)
    eventually(
        lambda: list_ids(client, headers, query)[image_id]["containers"] == 1,
        what="the new container in the count",
    )
    docker_client.api.remove_container(container_id)
    eventually(
        lambda: list_ids(client, headers, query)[image_id]["containers"] == 0,
        what="the removed container in the count",
    )


def test_reads_bypass_the_cache_while_the_engine_is_away(cache, client, headers, images, harness):
    image_id, ref = images.image("true")
    cached(cache, client, headers, f"/v1/images/{ref}")
    module = harness_module()
    state = module.load_state(harness["dir"])
    try:
        module.stop_engine(state)
        eventually(lambda: not cache.live, within=5, what="the lost event stream")
        answer = client.get(f"/v1/images/{ref}", headers=headers("read"))
        assert answer.status_code == 503  # never an answer remembered from before
    finally:
        module.start_engine(state)
        module.save_state(state)
    eventually(lambda: cache.live, within=15, what="the watcher reconnecting")
    assert cached(cache, client, headers, f"/v1/images/{ref}")["id"] == image_id


# ---- under gunicorn: one cache and watcher per worker, started after the fork ----


def test_gunicorn_workers_see_changes_within_a_second(harness, tmp_path, images, docker_client):
    image_id, ref = images.image("true")
    auth = {"Authorization": f"Bearer {TOKENS['read']}"}
    env = {"DOCKER_HOST": harness["docker_host"], "BERTH_DATA_DIR": str(tmp_path)}
    with gunicorn_server(env, workers=2, threads=4, tokens=token_entries()) as server:
        url = f"{server.url}/v1/images/{ref}"

        def statuses(connections: int) -> set[int]:
            # A new connection each time, so that both workers answer some of them.
            seen = set()
            for _ in range(connections):
                with requests.Session() as session:
                    seen.add(session.get(url, headers=auth, timeout=10).status_code)
            return seen

        assert statuses(10) == {200}  # starts each worker's watcher...
        time.sleep(0.5)  # ...which follows the engine a few milliseconds later
        assert statuses(20) == {200}  # these answers are cached by the workers
        docker_client.api.remove_image(ref)
        eventually(lambda: statuses(8) == {404}, what="the deletion in every worker")


# ---- hits answered before Flask (app.http.cached_reads) ----


@contextlib.contextmanager
def entering_flask(app):
    """Paths of the requests entering Flask in ``app`` (a hit answered before Flask enters none)."""
    seen: list[str] = []

    def note(sender, **extra):
        seen.append(flask.request.full_path)

    flask.request_started.connect(note, app)
    try:
        yield seen
    finally:
        flask.request_started.disconnect(note, app)


@pytest.fixture
def flask_entries(app):
    with entering_flask(app) as seen:
        yield seen


def answered_before_flask(client, flask_entries, path, request_headers):
    """GET ``path`` until one answer comes without entering Flask; (first answer, that one)."""
    first = client.get(path, headers=request_headers)
    assert first.status_code == 200, first.get_json()
    deadline = time.monotonic() + 10
    while True:
        entered = len(flask_entries)
        answer = client.get(path, headers=request_headers)
        if len(flask_entries) == entered:
            return first, answer
        assert time.monotonic() < deadline, f"{path} was never answered before Flask"
        time.sleep(0.01)


@pytest.mark.parametrize("suffix", ["", "/history", "?engine=local", "/history?engine=local"])
def test_a_hit_is_answered_before_flask_with_flasks_bytes_and_headers(
    cache, client, headers, images, flask_entries, suffix
):
    _, ref = images.image("true")
    path = f"/v1/images/{ref}{suffix}"
    first, hit = answered_before_flask(client, flask_entries, path, headers("read"))
    assert hit.status_code == 200
    assert hit.get_data() == first.get_data()
    for name in ("Content-Type", "Content-Length"):
        assert hit.headers[name] == first.headers[name]
    assert set(hit.headers.keys()) == set(first.headers.keys())
    assert hit.headers["X-Request-Id"] != first.headers["X-Request-Id"]


def test_a_list_with_filters_is_answered_before_flask(
    cache, client, headers, images, flask_entries
):
    image_id, ref = images.image("true")
    path = f"/v1/images?reference={ref.split(':')[0]}&all=false"
    first, hit = answered_before_flask(client, flask_entries, path, headers("read"))
    assert [image["id"] for image in hit.get_json()["images"]] == [image_id]
    assert hit.get_data() == first.get_data()


@pytest.mark.parametrize(
    ("request_headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer not-a-token-of-this-service"}, 401),
        ({"Authorization": f"Basic {TOKENS['read']}"}, 401),
        ({"Authorization": f"Bearer {TOKENS['push']}"}, 403),
        ({"Authorization": f"Bearer {TOKENS['write']}"}, 403),
    ],
)
def test_a_cached_answer_is_refused_to_callers_flask_refuses(
    cache, client, headers, images, flask_entries, request_headers, status
):
    _, ref = images.image("true")
    path = f"/v1/images/{ref}"
    answered_before_flask(client, flask_entries, path, headers("read"))
    refused = client.get(path, headers=request_headers)
    assert refused.status_code == status
    assert refused.mimetype == "application/problem+json"
    assert flask_entries[-1] == path + "?"  # the refusal was Flask's own


def test_bearer_scheme_is_case_insensitive_before_flask_as_in_flask(
    cache, client, images, flask_entries
):
    _, ref = images.image("true")
    lower = {"Authorization": f"bearer {TOKENS['read']}"}
    first, hit = answered_before_flask(client, flask_entries, f"/v1/images/{ref}", lower)
    assert hit.get_data() == first.get_data()


def test_a_query_flask_refuses_is_never_answered_from_the_cache(
    cache, client, headers, images, flask_entries
):
    _, ref = images.image("true")
    answered_before_flask(client, flask_entries, f"/v1/images/{ref}", headers("read"))
    for query in ("?engine=local&engine=local", "?engine=", "?bogus=1", "?engine=nope"):
        entered = len(flask_entries)
        answer = client.get(f"/v1/images/{ref}{query}", headers=headers("read"))
        assert answer.status_code in (400, 404), (query, answer.get_json())
        assert len(flask_entries) == entered + 1


def test_a_token_limited_to_other_engines_is_refused_a_cached_answer(
    harness, config, images, headers
):
    config = dict(config)
    config["BERTH_ENGINES"] = {"local": harness["docker_host"], "staging": harness["docker_host"]}
    limited = {"name": "staging-reader", "token": "staging-reader-0123456789", "scopes": ["read"]}
    config["BERTH_TOKENS"] = config["BERTH_TOKENS"] + [{**limited, "engines": ["staging"]}]
    app = create_app(config)
    try:
        client = app.test_client()
        _, ref = images.image("true")
        assert client.get("/v1/images", headers=headers("read")).status_code == 200
        engine = services(app).engines.get()
        eventually(lambda: engine.cache.live, within=15, what="the event watcher")
        with entering_flask(app) as seen:
            for path in (f"/v1/images/{ref}", f"/v1/images/{ref}?engine=local"):
                answered_before_flask(client, seen, path, headers("read"))
                refused = client.get(path, headers={"Authorization": f"Bearer {limited['token']}"})
                assert refused.status_code == 403
                assert refused.get_json()["code"] == "ENGINE_FORBIDDEN"
    finally:
        services(app).engines.close()


def test_a_hit_before_flask_is_logged_and_counted(cache, client, headers, images, flask_entries):
    _, ref = images.image("true")
    path = f"/v1/images/{ref}"
    answered_before_flask(client, flask_entries, path, headers("read"))
    lines: list[dict] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.berth)
    access = logging.getLogger("berth.access")
    access.addHandler(handler)
    route = {"method": "GET", "route": "/v1/images/<path:ref>", "status": "200"}
    before = REGISTRY.get_sample_value("berth_http_requests_total", route) or 0
    try:
        entered = len(flask_entries)
        hit = client.get(path, headers={**headers("read"), "X-Request-Id": "hit-1"})
    finally:
        access.removeHandler(handler)
    assert len(flask_entries) == entered, "answered by Flask: run again"
    assert hit.headers["X-Request-Id"] == "hit-1"
    assert len(lines) == 1
    line = lines[0]
    assert {k: line[k] for k in ("request_id", "method", "path", "status", "token")} == {
        "request_id": "hit-1",
        "method": "GET",
        "path": path,
        "status": 200,
        "token": "read-token",
    }
    assert line["duration_ms"] >= 0
    assert REGISTRY.get_sample_value("berth_http_requests_total", route) == before + 1


ROUTE = "/v1/images/<path:ref>"


def _accounted(client, path, request_headers):
    """GET ``path``: (answer, its access-log fields, the metrics it added)."""
    lines: list[dict] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(dict(record.berth))
    access = logging.getLogger("berth.access")
    series = [
        ("berth_http_requests_total", {"method": "GET", "route": ROUTE, "status": "200"}),
        ("berth_http_request_duration_seconds_count", {"method": "GET", "route": ROUTE}),
        ("berth_stream_bytes_total", {"direction": "out"}),
    ]
    before = [REGISTRY.get_sample_value(name, labels) or 0 for name, labels in series]
    access.addHandler(handler)
    try:
        answer = client.get(path, headers=request_headers, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    finally:
        access.removeHandler(handler)
    after = [REGISTRY.get_sample_value(name, labels) or 0 for name, labels in series]
    assert len(lines) == 1
    lines[0].pop("duration_ms")
    return answer, lines[0], [b - a for a, b in zip(before, after, strict=True)]


def test_flask_and_the_fast_path_log_and_count_a_request_alike(
    cache, client, headers, images, flask_entries
):
    _, ref = images.image("true")
    path = f"/v1/images/{ref}"
    request_headers = {**headers("read"), "X-Request-Id": "same-request"}
    answered_before_flask(client, flask_entries, path, headers("read"))
    seen: dict[str, tuple] = {}
    deadline = time.monotonic() + 10
    while len(seen) < 2:
        assert time.monotonic() < deadline, f"only {sorted(seen)} answered"
        if "flask" not in seen:
            cache.invalidate()  # the next answer is Flask's (and fills the cache again)
        entered = len(flask_entries)
        answer, line, counted = _accounted(client, path, request_headers)
        assert answer.status_code == 200
        seen["flask" if len(flask_entries) > entered else "fast"] = (answer, line, counted)
    (flask_answer, flask_line, flask_counted) = seen["flask"]
    (fast_answer, fast_line, fast_counted) = seen["fast"]
    assert fast_answer.get_data() == flask_answer.get_data()
    expected = {
        "request_id": "same-request",
        "method": "GET",
        "path": path,
        "status": 200,
        "token": "read-token",
        "remote": "10.1.2.3",
    }
    assert flask_line == expected
    assert fast_line == expected
    assert fast_counted == flask_counted == [1, 1, len(flask_answer.get_data())]
