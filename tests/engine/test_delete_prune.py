"""DELETE /v1/images/{ref} and POST /v1/images/prune against the real engine.

Every dry run is checked against the real operation that follows it: same untagged names, same
deleted images and layers, same bytes.
"""

import time

import pytest

from tests.support.images import unique


def delete(client, headers, ref, scope="delete", **query):
    args = "&".join(f"{k}={'true' if v else 'false'}" for k, v in query.items())
    return client.delete(f"/v1/images/{ref}" + (f"?{args}" if args else ""), headers=headers(scope))


def prune(client, headers, scope="delete", **body):
    return client.post("/v1/images/prune", json=body, headers=headers(scope))


def all_ids(docker_client, all=True):
    return {i["Id"] for i in docker_client.api.images(all=all)}


def exists(docker_client, image_id):
    return image_id in all_ids(docker_client)


def without_build_containers(images, docker_client):
    """Remove the containers the factory committed images from (they use the parent image)."""
    for container in images.containers:
        docker_client.api.remove_container(container, force=True)
    images.containers.clear()


# --- delete -----------------------------------------------------------------------------------


def test_delete_last_tag_deletes_the_image_and_its_layer(client, headers, images, docker_client):
    image_id, ref = images.image("echo x > /x")
    answer = delete(client, headers, ref)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["untagged"] == [ref]
    assert body["deleted"] == [image_id]
    assert len(body["deleted_layers"]) == 1  # the one layer this commit added
    assert body["dry_run"] is False
    assert not exists(docker_client, image_id)


def test_delete_one_of_two_tags_only_untags(client, headers, images, docker_client):
    image_id, ref = images.image("true")
    docker_client.api.tag(image_id, ref.split(":")[0], "second")
    answer = delete(client, headers, ref)
    assert answer.status_code == 200
    assert answer.get_json() == {
        "untagged": [ref],
        "deleted": [],
        "deleted_layers": [],
        "dry_run": False,
    }
    assert docker_client.images.get(image_id).tags == [ref.split(":")[0] + ":second"]


def test_delete_missing_image_is_404(client, headers):
    answer = delete(client, headers, f"{unique()}:nope")
    assert answer.status_code == 404
    assert answer.get_json()["code"] == "IMAGE_NOT_FOUND"
    assert delete(client, headers, f"{unique()}:nope", dry_run=True).status_code == 404


def test_image_used_by_stopped_container_is_409_and_force_deletes_it(
    client, headers, images, docker_client
):
    image_id, ref = images.image("echo x > /x")
    container = images.container("true", image=ref)  # ran and exited

    answer = delete(client, headers, ref)
    assert answer.status_code == 409
    problem = answer.get_json()
    assert problem["code"] == "IMAGE_IN_USE"
    assert problem["image"] == image_id
    assert problem["containers"] == [
        {"id": container, "name": docker_client.containers.get(container).name, "state": "exited"}
    ]
    assert problem["force_would_help"] is True
    assert problem["force_outcome"] == "deleted"
    assert "stopped" in problem["detail"] or "exited" in problem["detail"]

    by_id = delete(client, headers, image_id)
    assert by_id.status_code == 409
    assert by_id.get_json()["code"] == "IMAGE_IN_USE"
    assert by_id.get_json()["force_would_help"] is True

    dry = delete(client, headers, ref, force=True, dry_run=True)
    assert dry.status_code == 200
    assert exists(docker_client, image_id)
    real = delete(client, headers, ref, force=True)
    assert real.status_code == 200
    assert {**dry.get_json(), "dry_run": False} == real.get_json()
    assert image_id in real.get_json()["deleted"]
    assert real.get_json()["deleted_layers"] == []  # the container keeps the layers
    assert not exists(docker_client, image_id)
    assert docker_client.containers.get(container).status == "exited"


def test_image_used_by_running_container_is_never_deleted_even_with_force(
    client, headers, images, docker_client
):
    image_id, ref = images.image("echo x > /x")
    container = images.container("sleep 300", image=ref, keep_running=True)

    answer = delete(client, headers, ref)
    assert answer.status_code == 409
    problem = answer.get_json()
    assert problem["code"] == "IMAGE_IN_USE"
    assert problem["containers"][0]["id"] == container
    assert problem["containers"][0]["state"] == "running"
    assert problem["running"] == 1
    assert problem["force_would_help"] is False
    assert problem["force_outcome"] == "untagged_only"

    by_id = delete(client, headers, image_id, force=True)
    assert by_id.status_code == 409
    assert by_id.get_json()["code"] == "IMAGE_IN_USE"
    assert by_id.get_json()["force_outcome"] == "conflict"
    assert "running" in by_id.get_json()["detail"]

    # By name, force removes the name only; the image stays, untagged, under the container.
    forced = delete(client, headers, ref, force=True)
    assert forced.status_code == 200
    assert forced.get_json()["untagged"] == [ref]
    assert forced.get_json()["deleted"] == []
    assert docker_client.images.get(image_id).tags == []


def test_dry_run_matches_real_delete_with_untagged_parent(client, headers, images, docker_client):
    parent_id, parent_ref = images.image("echo p > /p")
    child_id, child_ref = images.image("echo c > /c", base=parent_ref, tag="one")
    without_build_containers(images, docker_client)
    repo = child_ref.split(":")[0]
    docker_client.api.tag(child_id, repo, "two")
    docker_client.api.remove_image(parent_ref)  # the parent is now an untagged intermediate
    assert exists(docker_client, parent_id)

    first_dry = delete(client, headers, child_ref, dry_run=True).get_json()
    assert first_dry == {
        "untagged": [child_ref],
        "deleted": [],
        "deleted_layers": [],
        "dry_run": True,
    }
    first = delete(client, headers, child_ref).get_json()
    assert {**first_dry, "dry_run": False} == first

    dry = delete(client, headers, f"{repo}:two", dry_run=True)
    assert dry.status_code == 200
    predicted = dry.get_json()
    assert predicted["untagged"] == [f"{repo}:two"]
    assert predicted["deleted"] == [child_id, parent_id]
    assert len(predicted["deleted_layers"]) == 2
    assert exists(docker_client, child_id) and exists(docker_client, parent_id)  # unchanged
    real = delete(client, headers, f"{repo}:two").get_json()
    assert {**predicted, "dry_run": False} == real
    assert not exists(docker_client, child_id) and not exists(docker_client, parent_id)


def test_noprune_keeps_the_untagged_parent(client, headers, images, docker_client):
    parent_id, parent_ref = images.image("echo p > /p")
    child_id, child_ref = images.image("echo c > /c", base=parent_ref)
    without_build_containers(images, docker_client)
    docker_client.api.remove_image(parent_ref)
    dry = delete(client, headers, child_ref, noprune=True, dry_run=True).get_json()
    assert dry["deleted"] == [child_id]
    real = delete(client, headers, child_ref, noprune=True).get_json()
    assert {**dry, "dry_run": False} == real
    assert exists(docker_client, parent_id)


def test_dry_run_of_a_refused_delete_answers_the_same_409(client, headers, images):
    _, ref = images.image("true")
    images.container("true", image=ref, run=False)  # created, never started
    dry = delete(client, headers, ref, dry_run=True)
    real = delete(client, headers, ref)
    assert dry.status_code == real.status_code == 409
    dry_problem, real_problem = dry.get_json(), real.get_json()
    for key in ("code", "image", "containers", "force_would_help", "force_outcome", "detail"):
        assert dry_problem[key] == real_problem[key]
    assert real_problem["containers"][0]["state"] == "created"


def test_image_with_children_is_409_even_with_force(client, headers, images, docker_client):
    parent_id, parent_ref = images.image("echo p > /p")
    child_id, _ = images.image("echo c > /c", base=parent_ref)
    without_build_containers(images, docker_client)
    answer = delete(client, headers, parent_id, force=True)
    assert answer.status_code == 409
    problem = answer.get_json()
    assert problem["code"] == "IMAGE_HAS_CHILDREN"
    assert [c["id"] for c in problem["children"]] == [child_id]
    assert problem["force_would_help"] is False
    # By name, only the name goes: the engine keeps a parent of other images.
    by_name = delete(client, headers, parent_ref)
    assert by_name.status_code == 200
    assert by_name.get_json()["deleted"] == []


def test_id_with_names_in_two_repositories_needs_force(client, headers, images, docker_client):
    image_id, ref = images.image("true")
    other = unique()
    docker_client.api.tag(image_id, other, "1")
    answer = delete(client, headers, image_id)
    assert answer.status_code == 409
    problem = answer.get_json()
    assert problem["code"] == "IMAGE_HAS_REFERENCES"
    assert sorted(problem["references"]) == sorted([ref, f"{other}:1"])
    assert problem["force_would_help"] is True
    dry = delete(client, headers, image_id, force=True, dry_run=True).get_json()
    real = delete(client, headers, image_id, force=True).get_json()
    assert sorted(real["untagged"]) == sorted([ref, f"{other}:1"])
    assert real["deleted"] == [image_id]
    assert {**dry, "dry_run": False} == real


def test_delete_needs_delete_scope(client, headers, images):
    _, ref = images.image("true")
    assert delete(client, headers, ref, scope="write").status_code == 403
    assert delete(client, headers, ref, scope="read").status_code == 403


def test_delete_rejects_unknown_query_and_bad_reference(client, headers):
    assert client.delete("/v1/images/a:1?purge=1", headers=headers("delete")).status_code == 400
    assert client.delete("/v1/images/UPPER:1", headers=headers("delete")).status_code == 400


# --- dangling images and prune ----------------------------------------------------------------


def _dangling(client, headers):
    body = client.get("/v1/images?dangling=true", headers=headers("read")).get_json()
    return {i["id"] for i in body["images"]}


def test_retagging_leaves_a_dangling_image_and_prune_removes_it_and_nothing_else(
    client, headers, images, docker_client, base_image
):
    old_id, ref = images.image("echo old > /f")
    new_id, _ = images.image("echo new > /f", repository=ref.split(":")[0])  # takes the name
    dangling = _dangling(client, headers)
    assert old_id in dangling and new_id not in dangling

    dry = prune(client, headers, dry_run=True)
    assert dry.status_code == 200
    predicted = dry.get_json()
    skipped = {s["id"] for s in predicted["skipped"]}
    intermediates = all_ids(docker_client) - all_ids(docker_client, all=False)
    # GET ?dangling=true lists exactly the dangling images prune removes (prune also takes
    # their untagged intermediate parents, which are not dangling themselves).
    assert dangling <= set(predicted["deleted"])
    assert not skipped & dangling
    assert set(predicted["deleted"]) - dangling <= intermediates
    assert old_id in predicted["deleted"]
    assert predicted["space_reclaimed"] > 0
    before = all_ids(docker_client)
    assert old_id in before  # the dry run changed nothing

    real = prune(client, headers)
    assert real.status_code == 200
    result = real.get_json()
    assert set(result["deleted"]) == set(predicted["deleted"])
    assert sorted(result["deleted_layers"]) == sorted(predicted["deleted_layers"])
    assert result["space_reclaimed"] == predicted["space_reclaimed"]
    assert before - all_ids(docker_client) == set(result["deleted"])  # nothing else went
    assert exists(docker_client, new_id)
    assert docker_client.images.get(base_image)
    assert old_id not in _dangling(client, headers)


def test_dangling_image_used_by_a_container_is_not_listed_and_is_kept(
    client, headers, images, docker_client
):
    label = unique("lbl")
    old_id, ref = images.image("echo old > /f", changes=[f"LABEL {label}=1"])
    container = images.container("true", image=old_id)
    images.image("echo new > /f", repository=ref.split(":")[0])
    assert old_id not in _dangling(client, headers)  # prune keeps it, so it is not listed
    counted = client.get("/v1/usage", headers=headers("read")).get_json()["dangling"]["count"]
    assert counted == len(_dangling(client, headers))

    dry = prune(client, headers, dry_run=True, labels=[label]).get_json()
    assert dry["deleted"] == []
    assert dry["skipped"] == [
        {
            "id": old_id,
            "reason": "used by container(s) " + docker_client.containers.get(container).name,
        }
    ]
    real = prune(client, headers, labels=[label]).get_json()
    assert real["deleted"] == [] and real["space_reclaimed"] == 0
    assert exists(docker_client, old_id)


def test_prune_filters_by_label_and_age(client, headers, images, docker_client):
    label = unique("lbl")
    old_id, ref = images.image("echo old > /f", changes=[f"LABEL {label}=yes"])
    images.image("echo new > /f", repository=ref.split(":")[0])

    too_new = prune(client, headers, dry_run=True, labels=[label], until="1h").get_json()
    assert too_new["deleted"] == []
    other_value = prune(client, headers, dry_run=True, labels=[f"{label}=no"]).get_json()
    assert other_value["deleted"] == []
    later = str(int(time.time()) + 60)  # unix seconds: everything made before then
    dry = prune(client, headers, dry_run=True, labels=[f"{label}=yes"], until=later).get_json()
    assert dry["deleted"] == [old_id]
    real = prune(client, headers, labels=[f"{label}=yes"], until=later).get_json()
    assert real["deleted"] == [old_id]
    assert real["space_reclaimed"] == dry["space_reclaimed"] > 0
    assert not exists(docker_client, old_id)


def test_prune_all_removes_unused_tagged_images(client, headers, images, docker_client):
    label = unique("lbl")
    image_id, ref = images.image("echo x > /x", changes=[f"LABEL {label}=1"])
    used_id, used_ref = images.image("echo y > /y", changes=[f"LABEL {label}=1"])
    images.container("true", image=used_ref)
    dry = prune(client, headers, dangling=False, labels=[label], dry_run=True).get_json()
    assert dry["untagged"] == [ref]
    assert dry["deleted"] == [image_id]
    assert [s["id"] for s in dry["skipped"]] == [used_id]
    real = prune(client, headers, dangling=False, labels=[label]).get_json()
    assert {**dry, "dry_run": False, "skipped": None} == {**real, "skipped": None}
    assert exists(docker_client, used_id) and not exists(docker_client, image_id)


@pytest.mark.parametrize(
    "body",
    [{"until": "soon"}, {"labels": ["=x"]}, {"dangling": "maybe"}, {"force": True}],
)
def test_invalid_prune_body_is_400(client, headers, body):
    assert prune(client, headers, **body).status_code == 400


def test_prune_needs_delete_scope(client, headers):
    assert prune(client, headers, scope="write", dry_run=True).status_code == 403
