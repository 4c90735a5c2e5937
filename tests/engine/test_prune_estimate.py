"""What GET /v1/usage says a dangling prune would free, against the dry run and the engine.

The usage view decides it from the images the prune deletes and the kept images that could hold
their shared layers (app.domain.reclaim); the dry run replays over every image's layers; the
engine's own prune frees what it frees.
"""

from __future__ import annotations

from contextlib import contextmanager

from app import create_app
from app.domain.deletion import ImageStore
from app.http.accessors import services
from tests.support.images import unique
from tests.support.layered import layered_archive

LABEL = "berth-test.prune-estimate"


@contextmanager
def loaded(docker_client, images, sizes):
    """Load ``images`` ((tags, layer names) each); their label filter, pruned afterwards."""
    batch = unique("estimate")
    for line in docker_client.api.load_image(layered_archive(images, sizes, {LABEL: batch})):
        assert not (isinstance(line, dict) and line.get("error")), line
    selector = f"{LABEL}={batch}"
    try:
        yield selector
    finally:
        for image in docker_client.images.list(filters={"label": selector}):
            docker_client.api.remove_image(image.id, force=True)


def reclaimable(client, headers) -> int:
    answer = client.get("/v1/usage", headers=headers("read"))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["dangling"]["reclaimable"]


def dry_run(client, headers) -> int:
    answer = client.post("/v1/images/prune", json={"dry_run": True}, headers=headers("delete"))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["space_reclaimed"]


def by_witnesses(app, ours: set[str]) -> int:
    """The witnesses' answer alone, read cold (Undecided when they cannot decide), for what
    deleting this test's dangling images frees; other tests' images count as kept."""
    engines = services(create_app(dict(app.config))).engines
    try:
        engine = engines.get()
        listing = engine._all_images()
        images, containers = engine._snapshot(with_layers=False, listing=listing)
        store = ImageStore(images, containers)
        store.prune(True, None, None)
        deleted = [i for i in store.outcome.deleted if i in ours]
        assert deleted
        return engine._freed_by_witnesses(listing, deleted, engine._system_df)
    finally:
        engines.close()


def labelled(docker_client, selector) -> set[str]:
    return {image.id for image in docker_client.images.list(filters={"label": selector})}


def test_deleted_images_sharing_lower_layers_with_kept_ones_free_their_own(
    app, client, headers, docker_client
):
    sizes = {"base": 40000, "mid": 9000, "t1": 100, "t2": 200, "u1": 3000, "u2": 5000}
    family = [
        ([f"{unique('kept')}:1"], ["base", "mid", "t1"]),
        ([f"{unique('kept')}:1"], ["base", "t2"]),
        ([], ["base", "u1"]),
        ([], ["base", "mid", "u2"]),
    ]
    before = reclaimable(client, headers)
    with loaded(docker_client, family, sizes) as selector:
        now = reclaimable(client, headers)
        assert now - before == sizes["u1"] + sizes["u2"]
        assert now == dry_run(client, headers)
        assert by_witnesses(app, labelled(docker_client, selector)) == sizes["u1"] + sizes["u2"]
        pruned = docker_client.api.prune_images(filters={"dangling": True, "label": [selector]})
        assert pruned["SpaceReclaimed"] == sizes["u1"] + sizes["u2"]
    assert reclaimable(client, headers) == before


def test_layers_only_deleted_images_share_are_freed_too(app, client, headers, docker_client):
    sizes = {"only": 7000, "v1": 300, "v2": 400}
    before = reclaimable(client, headers)
    with loaded(docker_client, [([], ["only", "v1"]), ([], ["only", "v2"])], sizes) as selector:
        now = reclaimable(client, headers)
        assert now - before == sum(sizes.values())
        assert now == dry_run(client, headers)
        # No kept image shares as much as they do: "only" goes with them.
        assert by_witnesses(app, labelled(docker_client, selector)) == sum(sizes.values())
        pruned = docker_client.api.prune_images(filters={"dangling": True, "label": [selector]})
        assert pruned["SpaceReclaimed"] == sum(sizes.values())


def test_a_parent_kept_by_its_container_keeps_its_layers(app, client, headers, images):
    # parent ← child, both untagged: the prune deletes the child, and the parent stays because
    # the container the child was committed from still uses it. /system/df lists only the child.
    parent_id, parent_ref = images.image("head -c 6000 /dev/urandom > /p")
    child_id, child_ref = images.image("head -c 900 /dev/urandom > /c", base=parent_ref)
    before = reclaimable(client, headers)
    for ref in (parent_ref, child_ref):  # their tags move to new images
        images.image("true", repository=ref.split(":")[0])
    now = reclaimable(client, headers)
    assert now == dry_run(client, headers)
    child = images.client.api.inspect_image(child_id)
    parent = images.client.api.inspect_image(parent_id)
    assert child["Parent"] == parent_id
    assert now - before == child["Size"] - parent["Size"]
    assert by_witnesses(app, {child_id, parent_id}) == child["Size"] - parent["Size"]
