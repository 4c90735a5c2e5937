"""The audit trail: one record per mutating call, readable by admins, free of secrets."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import TOKENS
from tests.support.images import unique


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
        "records": []
    }
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    response = client.get("/v1/audit", query_string={"since": later}, headers=headers("admin"))
    assert response.get_json() == {"records": []}
    assert client.get("/v1/audit?since=yesterday", headers=headers("admin")).status_code == 400


def test_audit_log_holds_no_token(app, client, headers, images):
    _, ref = images.image("true")
    client.post(f"/v1/images/{ref}/tags", json={"repository": unique()}, headers=headers("write"))
    text = (Path(app.config["BERTH_DATA_DIR"]) / "audit.log").read_text()
    assert all(token not in text for token in TOKENS.values())
