"""Liveness and readiness."""


def test_health_answers_without_engine_or_token(offline_client):
    response = offline_client.get("/v1/health")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_ready_reports_the_engine_version(client):
    body = client.get("/v1/ready").get_json()
    assert body["status"] == "ready"
    assert body["version"].startswith("20.") or body["version"]
    assert float(body["api_version"]) >= 1.41


def test_ready_is_503_when_no_engine_answers(offline_client):
    response = offline_client.get("/v1/ready")
    assert response.status_code == 503
    assert response.get_json()["code"] == "ENGINE_UNAVAILABLE"
