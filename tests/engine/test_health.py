"""Liveness and readiness."""


def test_health_answers_without_engine_or_token(offline_client):
    response = offline_client.get("/v1/health")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_ready_tells_anonymous_callers_readiness_only(client):
    response = client.get("/v1/ready")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}  # no engine name, no version


def test_ready_takes_no_engine_parameter(client):
    for query in ("?engine=local", "?engine=nope", "?bogus=1"):
        refused = client.get("/v1/ready" + query)
        assert refused.status_code == 400
        assert refused.get_json()["code"] == "VALIDATION_FAILED"
        assert "nope" not in refused.get_data(as_text=True)


def test_ready_is_503_when_no_engine_answers(offline_client):
    response = offline_client.get("/v1/ready")
    assert response.status_code == 503
    assert response.get_json()["code"] == "ENGINE_UNAVAILABLE"
    assert "local" not in response.get_json()["detail"]
