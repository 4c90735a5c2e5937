"""The OpenAPI document read as client generators and Swagger UI read it (no engine needed);
tests/test_generated_client.py and tests/test_apidocs_browser.py run the real tools."""

import re

import pytest

from app.http.openapi import TAGS

GENERATOR_READABLE = re.compile(r"^(application/json|application/octet-stream|text/.*|.*\+json)$")


@pytest.fixture
def spec(offline_client):
    return offline_client.get("/openapi.json").get_json()


def _operations(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield method.upper(), path, op


def test_tags_come_in_reading_order_each_with_one_line(spec):
    assert [t["name"] for t in spec["tags"]] == [name for name, _ in TAGS]
    assert all(t["description"] and "\n" not in t["description"] for t in spec["tags"])
    declared = {t["name"] for t in spec["tags"]}
    for method, path, op in _operations(spec):
        assert set(op["tags"]) <= declared, (method, path, op["tags"])


def test_summaries_are_whole_plain_sentences(spec):
    for method, path, op in _operations(spec):
        summary = op["summary"]
        assert "`" not in summary and "\n" not in summary, (method, path)
        assert summary.endswith((".", ")")), (method, path, summary)
        assert summary.count("(") == summary.count(")"), (method, path, summary)


def test_operation_ids_say_what_they_do(spec):
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(ids) == len(set(ids))
    assert {"load_archive", "pull_image", "inspect_image", "delete_image", "save_image"} <= set(ids)
    modules = ("images", "lifecycle", "archives", "jobs", "health", "search", "distributions")
    prefixed = [i for i in ids if i.split("_")[0] in modules and "_" in i and i != "search_images"]
    assert not prefixed


def test_description_names_every_scope(spec):
    description = spec["info"]["description"]
    for scope in ("read", "write", "delete", "push", "export", "metrics", "admin"):
        assert f"`{scope}`" in description, scope


def test_response_fields_that_are_always_there_are_required(spec):
    schemas = spec["components"]["schemas"]
    assert {"type", "title", "status", "detail", "code"} <= set(schemas["Problem"]["required"])
    assert "request_id" not in schemas["Problem"]["required"]
    assert {"id", "repo_tags", "size", "layers"} <= set(schemas["ImageDetails"]["required"])
    assert {"id", "kind", "state", "created", "error"} <= set(schemas["Job"]["required"])


def test_job_states_kinds_times_and_errors_are_typed(spec):
    job = spec["components"]["schemas"]["Job"]["properties"]
    assert job["state"]["enum"] == ["queued", "running", "succeeded", "failed", "cancelled"]
    assert set(job["kind"]["enum"]) >= {"pull", "push", "load", "distribution"}
    assert job["created"]["format"] == "date-time"
    assert job["finished"] == {"type": "string", "format": "date-time", "nullable": True}
    assert job["error"]["allOf"] == [{"$ref": "#/components/schemas/Problem"}]
    assert job["error"]["nullable"] is True
    summary = spec["components"]["schemas"]["ImageSummary"]["properties"]
    assert summary["created"]["format"] == "date-time"


def test_uploads_and_downloads_are_typed_for_generators(spec):
    binary = {"schema": {"type": "string", "format": "binary"}}
    for path in ("/v1/archives", "/v1/images/import"):
        body = spec["paths"][path]["post"]["requestBody"]["content"]
        assert body == {"application/octet-stream": binary}, path
    for method, path, op in _operations(spec):
        for status, response in op["responses"].items():
            content = response.get("content", {})
            readable = [m for m in content if GENERATOR_READABLE.match(m)]
            assert not content or readable, (method, path, status, list(content))
    for path in ("/v1/images/{ref}/archive", "/v1/archives", "/v1/jobs/{id}/events"):
        content = spec["paths"][path]["get"]["responses"]["200"]["content"]
        assert content["application/octet-stream"] == binary, path


def test_upload_accepts_octet_stream_as_a_content_type(offline_client, headers):
    # The content type is accepted: the request goes on to the engine, which is not there.
    response = offline_client.post(
        "/v1/archives",
        data=b"\0" * 1024,
        headers={**headers("write"), "Content-Type": "application/octet-stream"},
    )
    assert response.status_code != 415, response.get_json()


def test_swagger_ui_page_has_no_script_error_or_outside_request(offline_client):
    page = offline_client.get("/apidocs/").get_data(as_text=True)
    assert "<title>Berth</title>" in page
    assert "auth_config = None" not in page and "let auth_config = {};" in page
    assert "fonts.googleapis" not in page
    loaded = re.findall(r'<(?:script|img|link)[^>]*(?:src|href)="((?:https?:)?//[^"]*)"', page)
    assert not loaded
