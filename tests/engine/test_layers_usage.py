"""GET /v1/images/{ref}/layers and GET /v1/usage against the real engine.

What the CLI never shows well: which images share a layer, and what the images really cost on
disk once shared layers are counted once.
"""

from tests.support.images import unique

MIB = 1024 * 1024


def layers_of(client, headers, ref):
    answer = client.get(f"/v1/images/{ref}/layers", headers=headers("read"))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def usage(client, headers, query=""):
    answer = client.get(f"/v1/usage{query}", headers=headers("read"))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def remove_build_containers(images, docker_client):
    for container in images.containers:
        docker_client.api.remove_container(container, force=True)
    images.containers.clear()


def test_layers_show_steps_sizes_and_sharing_along_a_commit_chain(
    client, headers, images, docker_client, base_image
):
    repo = unique("commit_test")
    author = "Ann Example <ann@example.com>"
    first_id, first_ref = images.image(
        "echo one > /first", repository=repo, tag="first", author=author, message="add first"
    )
    second_id, second_ref = images.image(
        "echo two > /second", repository=repo, tag="second", base=first_ref, message="add second"
    )
    base = docker_client.images.get(base_image)
    base_layers = base.attrs["RootFS"]["Layers"]

    body = layers_of(client, headers, second_ref)
    assert body["id"] == second_id
    assert body["repo_tags"] == [second_ref]
    layers = body["layers"]
    assert [layer["diff_id"] for layer in layers[: len(base_layers)]] == base_layers
    assert len(layers) == len(base_layers) + 2
    assert [layer["index"] for layer in layers] == list(range(len(layers)))

    bottom, middle, top = layers[0], layers[-2], layers[-1]
    sharing_bottom = {s["id"]: s["repo_tags"] for s in bottom["shared_with"]}
    assert sharing_bottom[base.id] == base.tags
    assert sharing_bottom[first_id] == [first_ref]
    assert second_id not in sharing_bottom
    assert middle["shared_with"] == [{"id": first_id, "repo_tags": [first_ref]}]
    assert top["shared_with"] == []

    assert top["size"] == len("two\n") and middle["size"] == len("one\n")
    assert "echo two > /second" in top["created_by"]
    assert top["comment"] == "add second" and middle["comment"] == "add first"
    assert middle["author"] == author
    assert middle["step_image"] == first_id and top["step_image"] == second_id
    assert body["unique_size"] == 4
    assert body["shared_size"] == body["size"] - 4
    assert sum(layer["size"] for layer in layers) == body["size"]


def test_imported_image_has_one_layer_from_its_import_step(client, headers, base_image):
    body = layers_of(client, headers, base_image)
    assert len(body["layers"]) == 1
    layer = body["layers"][0]
    assert layer["chain_id"] == layer["diff_id"]
    assert layer["size"] == body["size"]
    assert layer["comment"].startswith("Imported from")


def test_layers_of_missing_image_is_404(client, headers):
    answer = client.get(f"/v1/images/{unique()}:nope/layers", headers=headers("read"))
    assert answer.status_code == 404
    assert answer.get_json()["code"] == "IMAGE_NOT_FOUND"


def test_three_images_sharing_a_large_base_cost_one_base_on_disk(
    client, headers, images, docker_client
):
    before = usage(client, headers)
    big_id, big_ref = images.image(f"head -c {32 * MIB} /dev/urandom > /big")
    repo = unique("usage")
    children = [
        images.image(f"echo {n} > /small", repository=repo, tag=f"c{n}", base=big_ref)[0]
        for n in range(3)
    ]
    remove_build_containers(images, docker_client)
    docker_client.api.remove_image(big_ref)  # the base is now an untagged intermediate
    big_size = docker_client.api.inspect_image(big_id)["Size"]
    assert big_size > 32 * MIB

    mine = usage(client, headers, f"?reference={repo}")
    assert mine["images"] == 3
    assert abs(mine["apparent_size"] - 3 * big_size) < 1024
    assert abs(mine["actual_size"] - big_size) < 1024
    assert abs(mine["shared_size"] - big_size) < 1024
    assert mine["dangling"] == {"count": 0, "size": 0, "reclaimable": None}

    after = usage(client, headers)
    assert after["images"] - before["images"] == 3
    assert abs((after["apparent_size"] - before["apparent_size"]) - 3 * big_size) < 1024
    # Only the random file's layer and three tiny ones are new on disk.
    assert abs((after["actual_size"] - before["actual_size"]) - 32 * MIB) < 1024
    assert after["actual_size"] == docker_client.df()["LayersSize"]

    layers = layers_of(client, headers, f"{repo}:c0")
    big_layer = layers["layers"][-2]
    assert big_layer["size"] >= 32 * MIB
    assert {s["id"] for s in big_layer["shared_with"]} == {big_id, *children[1:]}


def test_usage_dangling_counts_what_get_dangling_lists_and_prune_would_free(
    client, headers, images
):
    old_id, ref = images.image("head -c 100000 /dev/urandom > /f")
    images.image("echo new > /f", repository=ref.split(":")[0])
    body = usage(client, headers)
    listed = client.get("/v1/images?dangling=true", headers=headers("read")).get_json()["images"]
    assert old_id in {i["id"] for i in listed}
    assert body["dangling"]["count"] == len(listed)
    assert body["dangling"]["size"] == sum(i["size"] for i in listed)
    dry = client.post("/v1/images/prune", json={"dry_run": True}, headers=headers("delete"))
    assert body["dangling"]["reclaimable"] == dry.get_json()["space_reclaimed"]
    assert body["dangling"]["reclaimable"] >= 100000


def test_usage_and_layers_need_read_scope(client):
    assert client.get("/v1/usage").status_code == 401
    assert client.get("/v1/images/busybox:1/layers").status_code == 401


def test_usage_rejects_unknown_query(client, headers):
    assert client.get("/v1/usage?all=1", headers=headers("read")).status_code == 400


def test_usage_asked_at_once_by_several_workers_all_answer(config, base_image):
    """The engine computes one disk usage at a time and refuses a second with a 500; each app
    here stands for a gunicorn worker of its own (its own engine client, lock and cache)."""
    from concurrent.futures import ThreadPoolExecutor

    from app import create_app
    from tests.support.tokens import auth

    for _ in range(3):
        clients = [create_app(dict(config)).test_client() for _ in range(4)]
        with ThreadPoolExecutor(len(clients) * 2) as pool:
            answers = list(
                pool.map(
                    lambda c: c.get("/v1/usage", headers=auth("read")), clients + clients[::-1]
                )
            )
        assert [a.status_code for a in answers] == [200] * len(answers), [
            a.get_json() for a in answers if a.status_code != 200
        ]


def test_facts_read_in_one_go_are_those_read_one_at_a_time(app, images, base_image):
    # A cold cache is filled by pipelined reads on the engine's socket (app.engine.pipelined);
    # what they keep must be exactly what one inspect and one history call at a time give.
    from app.http.accessors import services

    images.image("echo facts > /facts", repository=unique("facts"), tag="one")
    together = services(app).engines.get()
    listing = together._all_images()
    ids = [item["Id"] for item in listing] + ["sha256:" + "0" * 64]  # one gone meanwhile
    together._prefetch("facts", ids)
    together._prefetch("steps", ids[:-1])
    assert together._facts_cache.get("facts", ids[-1]) is None  # left to the one-at-a-time read
    assert together._image_facts(ids[-1]) is None

    fresh = create_app_like(app)
    try:
        one_by_one = services(fresh).engines.get()
        for image_id in ids[:-1]:
            assert together._facts_cache.get("facts", image_id) == one_by_one._image_facts(image_id)
            assert together._facts_cache.get("steps", image_id) == one_by_one._image_steps(image_id)
    finally:
        services(fresh).engines.close()


def create_app_like(app):
    from app import create_app

    return create_app(dict(app.config))


def test_a_worker_warms_every_images_facts_at_its_start(app, base_image):
    # gunicorn.conf.py's post_worker_init warms the engines; the first usage view then inspects
    # nothing one image at a time.
    from app.http.accessors import services

    fresh = create_app_like(app)  # a new worker's: nothing read yet
    engines = services(fresh).engines
    try:
        engine = engines.get()
        ids = [item["Id"] for item in engine._all_images()]
        assert all(engine._facts_cache.get("facts", i) is None for i in ids)
        engines.warm(engines.names).join(timeout=60)
        assert all(engine._facts_cache.get("facts", i) is not None for i in ids)
        assert engine.warm_image_facts() >= len(ids)
    finally:
        engines.close()
