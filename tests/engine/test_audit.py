"""The audit trail: one record per mutating call (refused ones too), none per read, rotated by
size, paged newest first by admins, free of secrets."""

import io
import json
import multiprocessing
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app import create_app
from app.http.accessors import services
from app.observability.audit import BLOCK_BYTES, AuditLog, lines_backwards
from tests.support.images import unique
from tests.support.tokens import TOKENS, auth


def _records(app):
    path = Path(app.config["BERTH_DATA_DIR"]) / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_successful_tag_is_audited(app, client, headers, images):
    image_id, ref = images.image("true")
    repo = unique()
    response = client.post(
        f"/v1/images/{ref}/tags",
        json={"repository": repo, "tag": "v1"},
        headers={**headers("write"), "X-Request-Id": "audit-req-1"},
    )
    assert response.status_code == 201
    [record] = _records(app)
    assert record["operation"] == "tag_image"
    assert record["token"] == "write-token"
    assert record["target"] == ref and record["engine"] == "local"
    assert record["status"] == 201 and record["result"] == "success"
    assert record["image_ids"] == [image_id]
    assert record["references"] == [f"{repo}:v1"]
    assert record["request_id"] == "audit-req-1"
    assert record["time"].endswith("Z")


def test_failed_and_refused_mutations_are_audited(app, client, headers):
    client.post(f"/v1/images/{unique()}:x/tags", json={"repository": "a"}, headers=headers("write"))
    client.post("/v1/images/busybox/tags", json={"colour": 1}, headers=headers("write"))
    records = _records(app)
    assert [(r["status"], r["code"]) for r in records] == [
        (404, "IMAGE_NOT_FOUND"),
        (400, "VALIDATION_FAILED"),
    ]
    assert all(r["result"] == "failure" for r in records)


def test_reads_are_not_audited(app, client, headers):
    client.get("/v1/images", headers=headers("read"))
    assert _records(app) == []


def test_audit_endpoint_is_admin_only_and_filters(app, client, headers, images):
    _, ref = images.image("true")
    client.post(f"/v1/images/{ref}/tags", json={"repository": unique()}, headers=headers("write"))
    assert client.get("/v1/audit", headers=headers("read")).status_code == 403
    listed = client.get("/v1/audit?operation=tag_image", headers=headers("admin")).get_json()
    assert len(listed["records"]) == 1
    assert client.get("/v1/audit?operation=push", headers=headers("admin")).get_json() == {
        "records": [],
        "next": None,
    }
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    response = client.get("/v1/audit", query_string={"since": later}, headers=headers("admin"))
    assert response.get_json() == {"records": [], "next": None}
    assert client.get("/v1/audit?since=yesterday", headers=headers("admin")).status_code == 400


def test_audit_log_holds_no_token(app, client, headers, images):
    _, ref = images.image("true")
    client.post(f"/v1/images/{ref}/tags", json={"repository": unique()}, headers=headers("write"))
    text = (Path(app.config["BERTH_DATA_DIR"]) / "audit.log").read_text()
    assert all(token not in text for token in TOKENS.values())


# --------------------------------------------------------------------------- refusals and reads


def test_refused_mutations_are_audited_with_the_token_name_and_route(app, client, headers):
    ref = f"{unique()}:x"
    anonymous = client.post(f"/v1/images/{ref}/tags", json={"repository": "a"})
    wrong_token = client.post(
        f"/v1/images/{ref}/tags",
        json={"repository": "a"},
        headers={"Authorization": "Bearer not-a-token-of-this-server"},
    )
    wrong_scope = client.post(
        f"/v1/images/{ref}/tags", json={"repository": "a"}, headers=headers("read")
    )
    no_route = client.post("/v1/nothing-here", headers=headers("write"))
    assert [r.status_code for r in (anonymous, wrong_token, wrong_scope, no_route)] == [
        401,
        401,
        403,
        404,
    ]
    records = _records(app)
    assert [(r["token"], r["status"], r["code"]) for r in records] == [
        ("anonymous", 401, "UNAUTHORIZED"),
        ("anonymous", 401, "UNAUTHORIZED"),
        ("read-token", 403, "FORBIDDEN"),
        ("write-token", 404, records[3]["code"]),
    ]
    for record in records[:3]:
        assert record["operation"] == "tag_image" and record["method"] == "POST"
        assert record["path"] == f"/v1/images/{ref}/tags"
        assert record["route"] and "tags" in record["route"]
        assert record["engine"] == "local" and record["result"] == "failure"
    assert records[3]["path"] == "/v1/nothing-here" and records[3]["route"] is None
    text = (Path(app.config["BERTH_DATA_DIR"]) / "audit.log").read_text()
    assert "not-a-token-of-this-server" not in text
    assert all(token not in text for token in TOKENS.values())


def test_a_refused_engine_is_audited_with_the_engine(harness, config, headers):
    config = {
        **config,
        "BERTH_ENGINES": {"local": harness["docker_host"], "staging-1": harness["docker_host"]},
    }
    config["BERTH_TOKENS"] = config["BERTH_TOKENS"] + [
        {
            "name": "staging-writer",
            "token": "staging-writer-0123456789",
            "scopes": ["write"],
            "engines": ["staging-*"],
        }
    ]
    app = create_app(config)
    try:
        refused = app.test_client().post(
            "/v1/images/busybox/tags?engine=local",
            json={"repository": unique()},
            headers={"Authorization": "Bearer staging-writer-0123456789"},
        )
        assert refused.status_code == 403
        assert refused.get_json()["code"] == "ENGINE_FORBIDDEN"
        [record] = _records(app)
        assert record["token"] == "staging-writer" and record["engine"] == "local"
        assert (record["status"], record["code"]) == (403, "ENGINE_FORBIDDEN")
        assert record["operation"] == "tag_image"
    finally:
        services(app).engines.close()


def test_get_and_head_are_never_audited(app, client, headers, images):
    _, ref = images.image("true")
    for method in ("GET", "HEAD"):
        for path in ("/v1/images", f"/v1/images/{ref}", "/v1/jobs", "/v1/nothing-here"):
            client.open(path, method=method, headers=headers("read"))
        client.open("/v1/images", method=method)  # refused (401), still a read
    assert _records(app) == []


# --------------------------------------------------------------------------- rotation and paging


def test_the_log_rotates_at_its_size_and_keeps_its_backups(tmp_path):
    log = AuditLog(tmp_path, max_bytes=1000, backups=2)
    for number in range(60):
        log.write({"n": number, "pad": "x" * 40})
    sizes = [path.stat().st_size for path in log.files() if path.exists()]
    assert len(sizes) == 3 and all(size <= 1000 for size in sizes)
    line = len(json.dumps({"n": 10, "pad": "x" * 40}, separators=(",", ":"))) + 1
    assert all(size + line > 1000 for size in sizes[1:])  # each backup was full when it rotated
    kept = [json.loads(s)["n"] for p in reversed(log.files()) for s in p.read_text().splitlines()]
    assert kept == list(range(60 - len(kept), 60))  # the oldest went, the rest in order, once
    assert stat.S_IMODE(os.stat(log.path).st_mode) == 0o600


def _append(directory, writer):
    log = AuditLog(directory, max_bytes=4000, backups=1000)
    for number in range(150):
        log.write({"writer": writer, "n": number})


def test_processes_appending_together_rotate_without_losing_or_doubling_a_record(tmp_path):
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_append, args=(tmp_path, w)) for w in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
        assert process.exitcode == 0
    log = AuditLog(tmp_path, max_bytes=4000, backups=1000)
    assert len([p for p in log.files() if p.exists()]) >= 3  # it rotated, more than once
    records, cursor = log.page(10_000)
    assert cursor is None
    assert sorted((r["writer"], r["n"]) for r in records) == [
        (w, n) for w in range(4) for n in range(150)
    ]
    for writer in range(4):  # each writer's records, newest first, in its own order
        assert [r["n"] for r in records if r["writer"] == writer] == list(range(149, -1, -1))


def _page_all(client, limit, before=None):
    query = {"limit": limit, **({"before": before} if before else {})}
    body = client.get("/v1/audit", query_string=query, headers=auth("admin")).get_json()
    return body["records"], body["next"]


def test_paging_returns_every_record_once_newest_first_across_rotations(config):
    app = create_app({**config, "BERTH_AUDIT_MAX_BYTES": 3000, "BERTH_AUDIT_BACKUPS": 50})
    client = app.test_client()
    sent = [f"page-{number}" for number in range(40)]
    for request_id in sent:  # refused (401): cheap mutations, each audited
        client.delete(f"/v1/images/{unique()}", headers={"X-Request-Id": request_id})
    assert (Path(config["BERTH_DATA_DIR"]) / "audit.log.3").exists()
    seen, cursor = [], None
    records, cursor = _page_all(client, 7)
    seen += records
    for number in range(25):  # new records (and rotations) while paging: on no later page
        client.delete(f"/v1/images/{unique()}", headers={"X-Request-Id": f"late-{number}"})
    while cursor:
        records, cursor = _page_all(client, 7, cursor)
        seen += records
    assert [r["request_id"] for r in seen] == list(reversed(sent))
    services(app).engines.close()


def test_a_page_reads_from_the_end_not_the_whole_file():
    lines = [json.dumps({"n": n, "pad": "x" * 40}).encode() for n in range(5000)]
    data = b"\n".join(lines) + b"\n"

    class Counting(io.BytesIO):
        read_bytes = 0

        def read(self, size=-1):
            chunk = super().read(size)
            Counting.read_bytes += len(chunk)
            return chunk

    f = Counting(data)
    reader = lines_backwards(f, len(data))
    assert [json.loads(next(reader)[1])["n"] for _ in range(3)] == [4999, 4998, 4997]
    assert Counting.read_bytes <= BLOCK_BYTES < len(data)
    offsets = dict(
        (json.loads(line)["n"], offset) for offset, line in lines_backwards(f, len(data))
    )
    assert len(offsets) == 5000 and data[offsets[1234] :].startswith(lines[1234])


def test_a_bad_cursor_is_400(client, headers):
    response = client.get("/v1/audit?before=bm90LWEtY3Vyc29y", headers=headers("admin"))
    assert response.status_code == 400 and "before" in response.get_json()["errors"]


def test_a_registry_the_policy_refuses_is_audited(app, client, headers):
    # A loopback port no setting lists: refused before any connection, and recorded.
    response = client.post(
        "/v1/images/pull", json={"reference": "127.0.0.1:9/nothing:1"}, headers=headers("write")
    )
    assert response.status_code == 403
    assert response.get_json()["code"] == "REGISTRY_NOT_ALLOWED"
    [record] = _records(app)
    assert (record["token"], record["operation"]) == ("write-token", "pull_image")
    assert (record["status"], record["code"]) == (403, "REGISTRY_NOT_ALLOWED")
    assert record["engine"] == "local" and record["result"] == "failure"
