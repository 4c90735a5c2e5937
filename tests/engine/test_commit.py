"""POST /v1/containers/{container}/commit against the real engine (`docker commit`)."""

import pytest

from tests.support.images import unique


def commit(client, headers, container, scope="write", **body):
    return client.post(f"/v1/containers/{container}/commit", json=body, headers=headers(scope))


def test_commit_walkthrough_layers_grow_by_one_and_history_keeps_messages(
    client, headers, images, docker_client, base_image
):
    repo = unique("commit_test")
    first_ctr = images.container("echo one > /first")
    answer = commit(
        client,
        headers,
        first_ctr,
        repository=repo,
        tag="first",
        author="Ann Example <ann@example.com>",
        message="add first",
    )
    assert answer.status_code == 201, answer.get_json()
    first = answer.get_json()
    images.track(first["id"])
    assert first["reference"] == f"{repo}:first"
    assert answer.headers["Location"] == f"/v1/images/{first['id']}"

    second_ctr = images.container("echo two > /second", image=f"{repo}:first")
    answer = commit(
        client, headers, second_ctr, repository=repo, tag="second", message="add second"
    )
    assert answer.status_code == 201, answer.get_json()
    second = answer.get_json()
    images.track(second["id"])

    def inspect(ref):
        response = client.get(f"/v1/images/{ref}", headers=headers("read"))
        assert response.status_code == 200
        return response.get_json()

    base, one, two = inspect(base_image), inspect(f"{repo}:first"), inspect(f"{repo}:second")
    assert one["id"] == first["id"] and two["id"] == second["id"]
    assert one["layers"][: len(base["layers"])] == base["layers"]
    assert two["layers"][: len(one["layers"])] == one["layers"]
    assert len(one["layers"]) == len(base["layers"]) + 1
    assert len(two["layers"]) == len(one["layers"]) + 1
    assert one["author"] == "Ann Example <ann@example.com>"
    assert one["comment"] == "add first"
    assert two["comment"] == "add second"
    assert one["parent"] == base["id"] and two["parent"] == one["id"]

    history = client.get(f"/v1/images/{repo}:second/history", headers=headers("read"))
    comments = [step["comment"] for step in history.get_json()["history"]]
    assert comments[:2] == ["add second", "add first"]

    # The committed filesystem really holds both files.
    output = docker_client.containers.run(
        f"{repo}:second", ["cat", "/first", "/second"], network_mode="none", remove=True
    )
    assert output == b"one\ntwo\n"


def test_changes_are_applied_to_the_new_image_config(client, headers, images):
    container = images.container("true")
    repo = unique()
    answer = commit(
        client,
        headers,
        container,
        repository=repo,
        changes=[
            "ENV MODE=production",
            'CMD ["serve", "--port", "8080"]',
            'ENTRYPOINT ["/bin/sh", "-c"]',
            "EXPOSE 8080/tcp",
            "LABEL team=berth",
            "USER nobody",
            "VOLUME /data",
            "WORKDIR /srv",
            "ONBUILD RUN echo child",
        ],
    )
    assert answer.status_code == 201, answer.get_json()
    images.track(answer.get_json()["id"])
    assert answer.get_json()["reference"] == f"{repo}:latest"
    config = client.get(f"/v1/images/{repo}", headers=headers("read")).get_json()["config"]
    assert "MODE=production" in config["env"]
    assert config["cmd"] == ["serve", "--port", "8080"]
    assert config["entrypoint"] == ["/bin/sh", "-c"]
    assert config["exposed_ports"] == ["8080/tcp"]
    assert config["labels"] == {"team": "berth"}
    assert config["user"] == "nobody"
    assert config["volumes"] == ["/data"]
    assert config["working_dir"] == "/srv"


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("RUN rm -rf /", "RUN cannot be applied"),
        ("COPY . /app", "COPY cannot be applied"),
        ("NONSENSE here", "'NONSENSE' is not an instruction"),
        ("EXPOSE web", "'web' is not a port"),
    ],
)
def test_bad_change_is_400_naming_the_line_and_creates_nothing(
    client, headers, images, docker_client, line, says
):
    container = images.container("true")
    repo = unique()
    answer = commit(client, headers, container, repository=repo, changes=["ENV OK=1", line])
    assert answer.status_code == 400
    problem = answer.get_json()
    assert answer.mimetype == "application/problem+json"
    assert problem["code"] == "VALIDATION_FAILED"
    assert f"changes[1] '{line}'" in problem["detail"]
    assert says in problem["detail"]
    assert docker_client.images.list(name=repo) == []


def test_missing_container_is_404(client, headers):
    answer = commit(client, headers, unique("no-such-container"), repository=unique())
    assert answer.status_code == 404
    assert answer.get_json()["code"] == "CONTAINER_NOT_FOUND"


def test_missing_container_is_404_even_with_bad_changes(client, headers):
    answer = commit(client, headers, unique("no-such-container"), changes=["RUN x"], tag="1")
    assert answer.status_code == 404
    assert answer.get_json()["code"] == "CONTAINER_NOT_FOUND"


def test_invalid_container_name_is_400(client, headers):
    answer = commit(client, headers, "-bad*name", repository=unique())
    assert answer.status_code == 400


def test_commit_by_container_id_without_repository_makes_an_untagged_image(
    client, headers, images, docker_client
):
    container = images.container("echo x > /x")
    answer = commit(client, headers, container)
    assert answer.status_code == 201
    body = answer.get_json()
    images.track(body["id"])
    assert body["reference"] is None
    assert docker_client.images.get(body["id"]).tags == []


def test_running_container_is_committed_with_pause_and_keeps_running(
    client, headers, images, docker_client
):
    container = images.container("echo live > /live; sleep 300", keep_running=True)
    answer = commit(client, headers, container, repository=unique(), pause=True)
    assert answer.status_code == 201
    images.track(answer.get_json()["id"])
    assert docker_client.containers.get(container).status == "running"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tag": "v1"}, "tag"),
        ({"repository": "Bad/Name"}, "repository"),
        ({"repository": "app:1"}, "repository"),
        ({"repository": "app", "tag": "bad tag"}, "tag"),
        ({"repository": "app", "changes": "ENV A=1"}, "changes"),
        ({"repository": "app", "surprise": 1}, "surprise"),
    ],
)
def test_invalid_body_is_400(client, headers, images, body, field):
    container = images.container("true", run=False)
    answer = client.post(f"/v1/containers/{container}/commit", json=body, headers=headers("write"))
    assert answer.status_code == 400
    assert field in answer.get_json()["errors"]


def test_commit_needs_write_scope(client, headers, images):
    container = images.container("true", run=False)
    assert commit(client, headers, container, scope="read").status_code == 403
    assert client.post(f"/v1/containers/{container}/commit", json={}).status_code == 401
