"""Image reads against the real engine: list, filters, inspect, history, tags, references."""

from urllib.parse import quote

from tests.support.images import unique


def test_list_shows_images_with_their_fields(client, headers, images):
    image_id, ref = images.image("true", changes=["LABEL team=berth"])
    images.container("true", image=ref, run=False)
    body = client.get("/v1/images", headers=headers("read")).get_json()
    mine = [i for i in body["images"] if i["id"] == image_id]
    assert len(mine) == 1
    entry = mine[0]
    assert entry["repo_tags"] == [ref]
    assert entry["created"].endswith("Z")
    assert entry["size"] > 0
    assert entry["labels"] == {"team": "berth"}
    assert entry["containers"] == 1  # the one created from it
    assert set(entry) == {
        "id",
        "repo_tags",
        "repo_digests",
        "created",
        "size",
        "labels",
        "containers",
    }


def test_list_filters_by_reference_and_label(client, headers, images, docker_client):
    repo = unique()
    id_a, _ = images.image("true", repository=repo, tag="a")
    id_b, _ = images.image("true", repository=unique())
    docker_client.api.tag(id_b, repo, "b")
    by_ref = client.get(f"/v1/images?reference={repo}:a", headers=headers("read")).get_json()
    assert [i["id"] for i in by_ref["images"]] == [id_a]
    both = client.get(f"/v1/images?reference={repo}", headers=headers("read")).get_json()
    assert {i["id"] for i in both["images"]} == {id_a, id_b}

    label = unique("lbl")
    id_c, _ = images.image("true", repository=unique(), changes=[f"LABEL {label}=yes tier=x"])
    by_label = client.get(f"/v1/images?label={label}", headers=headers("read")).get_json()
    assert [i["id"] for i in by_label["images"]] == [id_c]
    by_both = client.get(
        f"/v1/images?label={label}=yes&label=tier=x", headers=headers("read")
    ).get_json()
    assert [i["id"] for i in by_both["images"]] == [id_c]
    none = client.get(f"/v1/images?label={label}=no", headers=headers("read")).get_json()
    assert none["images"] == []


def test_list_dangling_true_and_false(client, headers, images, docker_client):
    repo = unique()
    old_id, _ = images.image("echo old > /f", repository=repo)
    new_id, _ = images.image("echo new > /f", repository=repo)  # takes the tag: old dangles
    dangling = client.get("/v1/images?dangling=true", headers=headers("read")).get_json()
    assert old_id in {i["id"] for i in dangling["images"]}
    assert new_id not in {i["id"] for i in dangling["images"]}
    tagged = client.get("/v1/images?dangling=false", headers=headers("read")).get_json()
    assert new_id in {i["id"] for i in tagged["images"]}
    assert old_id not in {i["id"] for i in tagged["images"]}


def test_list_rejects_a_non_boolean_filter(client, headers):
    response = client.get("/v1/images?dangling=maybe", headers=headers("read"))
    assert response.status_code == 400 and "dangling" in response.get_json()["errors"]


def test_inspect_shows_config_and_layers(client, headers, images, base_image, docker_client):
    image_id, ref = images.image(
        "echo hi > /hello",
        author="Ada <ada@example.com>",
        message="say hi",
        changes=[
            "ENV MODE=test",
            "EXPOSE 8080",
            "WORKDIR /srv",
            "USER nobody",
            "VOLUME /data",
            'CMD ["sh", "-c", "cat /hello"]',
        ],
    )
    body = client.get(f"/v1/images/{ref}", headers=headers("read")).get_json()
    assert body["id"] == image_id
    assert body["repo_tags"] == [ref]
    assert body["author"] == "Ada <ada@example.com>" and body["comment"] == "say hi"
    assert body["os"] == "linux" and body["architecture"]
    config = body["config"]
    assert "MODE=test" in config["env"]
    assert config["exposed_ports"] == ["8080/tcp"]
    assert config["working_dir"] == "/srv" and config["user"] == "nobody"
    assert config["volumes"] == ["/data"]
    assert config["cmd"] == ["sh", "-c", "cat /hello"]
    base_layers = docker_client.images.get(base_image).attrs["RootFS"]["Layers"]
    assert body["layers"][: len(base_layers)] == base_layers
    assert len(body["layers"]) == len(base_layers) + 1


def test_inspect_by_id_short_id_and_registry_path(client, headers, images, docker_client):
    image_id, _ = images.image("true")
    long_ref = f"127.0.0.1:5000/{unique('team')}/app:1.0"
    repo, tag = long_ref.rsplit(":", 1)
    docker_client.api.tag(image_id, repo, tag)
    for ref in (image_id, image_id.split(":")[1][:12], long_ref):
        response = client.get(f"/v1/images/{ref}", headers=headers("read"))
        assert response.status_code == 200, ref
        assert response.get_json()["id"] == image_id
    history = client.get(f"/v1/images/{long_ref}/history", headers=headers("read"))
    assert history.status_code == 200


def test_repository_named_like_a_subresource_is_reached_with_its_tag(
    client, headers, images, docker_client
):
    image_id, _ = images.image("true")
    repo = f"{unique()}/history"
    docker_client.api.tag(image_id, repo, "latest")
    response = client.get(f"/v1/images/{repo}:latest", headers=headers("read"))
    assert response.status_code == 200 and response.get_json()["id"] == image_id


def test_missing_image_is_404(client, headers):
    response = client.get(f"/v1/images/{unique()}:nope", headers=headers("read"))
    assert response.status_code == 404
    body = response.get_json()
    assert body["code"] == "IMAGE_NOT_FOUND"


def test_history_is_newest_first_with_messages(client, headers, images, base_image):
    _, first = images.image("touch /a", message="step one")
    _, second = images.image("touch /b", base=first, message="step two")
    body = client.get(f"/v1/images/{second}/history", headers=headers("read")).get_json()
    entries = body["history"]
    assert [e["comment"] for e in entries[:2]] == ["step two", "step one"]
    assert entries[0]["tags"] == [second]
    assert entries[-1]["id"] is not None
    assert set(entries[0]) == {"id", "created", "created_by", "size", "comment", "tags"}


def test_tag_creates_a_reference_and_moves_an_existing_one(client, headers, images, docker_client):
    id_a, ref_a = images.image("true")
    id_b, _ = images.image("true")
    repo = unique()
    response = client.post(
        f"/v1/images/{ref_a}/tags", json={"repository": repo, "tag": "v1"}, headers=headers("write")
    )
    assert response.status_code == 201
    assert response.get_json() == {"reference": f"{repo}:v1", "id": id_a}
    assert response.headers["Location"] == "/v1/images/" + quote(f"{repo}:v1", safe="/:")
    assert docker_client.images.get(f"{repo}:v1").id == id_a
    moved = client.post(
        f"/v1/images/{id_b}/tags", json={"repository": repo, "tag": "v1"}, headers=headers("write")
    )
    assert moved.status_code == 201
    assert docker_client.images.get(f"{repo}:v1").id == id_b


def test_tag_defaults_to_latest_and_validates(client, headers, images, docker_client):
    image_id, ref = images.image("true")
    repo = unique()
    ok = client.post(f"/v1/images/{ref}/tags", json={"repository": repo}, headers=headers("write"))
    assert ok.get_json()["reference"] == f"{repo}:latest"
    bad_repo = client.post(
        f"/v1/images/{ref}/tags", json={"repository": "Bad"}, headers=headers("write")
    )
    assert bad_repo.status_code == 400 and "repository" in bad_repo.get_json()["errors"]
    bad_tag = client.post(
        f"/v1/images/{ref}/tags", json={"repository": repo, "tag": ".x"}, headers=headers("write")
    )
    assert bad_tag.status_code == 400 and "tag" in bad_tag.get_json()["errors"]
    missing = client.post(
        f"/v1/images/{unique()}/tags", json={"repository": repo}, headers=headers("write")
    )
    assert missing.status_code == 404
