"""``app.domain.deletion``: the engine's delete and prune rules replayed on a snapshot (no engine).

The engine-backed tests in test_delete_prune.py check these answers against real deletions.
"""

import pytest

from app.domain.deletion import (
    DeleteConflict,
    ImageStore,
    StoredContainer,
    StoredImage,
    dangling_images,
    force_outcome,
    simulate_delete,
)
from app.domain.familiar import familiar, is_single_reference, normalized, ref_name
from app.domain.layers import chain_ids
from app.domain.prune_filters import match_labels, parse_until, rfc3339_ns

BASE = "sha256:" + "b" * 64
CHILD = "sha256:" + "c" * 64
OTHER = "sha256:" + "d" * 64
L1, L2, L3 = ("sha256:" + x * 64 for x in "123")


def store(images, containers=()):
    return ImageStore(images, containers)


def base_and_child(child_refs=("app:1",), base_refs=()):
    return [
        StoredImage(BASE, None, list(base_refs), chain_ids([L1])),
        StoredImage(CHILD, BASE, list(child_refs), chain_ids([L1, L2])),
    ]


def test_familiar_forms():
    assert familiar("busybox") == "busybox:latest"
    assert familiar("docker.io/library/busybox:1") == "busybox:1"
    assert familiar("docker.io/team/app") == "team/app:latest"
    assert familiar("127.0.0.1:5000/a/b") == "127.0.0.1:5000/a/b:latest"
    assert familiar("a/b@sha256:" + "e" * 64) == "a/b@sha256:" + "e" * 64
    assert ref_name("127.0.0.1:5000/a/b:1") == "127.0.0.1:5000/a/b"
    assert ref_name("a@sha256:" + "e" * 64) == "a"
    assert normalized("busybox:1") == "docker.io/library/busybox:1"
    assert normalized("localhost:5000/x:1") == "localhost:5000/x:1"


def test_single_reference_rule():
    digest = "@sha256:" + "e" * 64
    assert is_single_reference(["a:1"])
    assert not is_single_reference([])
    assert not is_single_reference(["a:1", "a:2"])
    assert is_single_reference(["a:1", "a" + digest])
    assert not is_single_reference(["a:1", "b" + digest])
    assert is_single_reference(["a" + digest, "a@sha256:" + "f" * 64])


def test_delete_by_name_with_other_tags_only_untags():
    images = base_and_child(child_refs=("app:1", "app:2"))
    assert simulate_delete(store(images), "app:1", CHILD, False, True) == {
        "untagged": ["app:1"],
        "deleted": [],
        "deleted_layers": [],
    }


def test_delete_last_tag_deletes_image_its_layer_and_dangling_parent():
    result = simulate_delete(store(base_and_child()), "app:1", CHILD, False, True)
    assert result["untagged"] == ["app:1"]
    assert result["deleted"] == [CHILD, BASE]
    assert result["deleted_layers"] == [chain_ids([L1, L2])[1], L1]


def test_noprune_keeps_the_parent():
    result = simulate_delete(store(base_and_child()), "app:1", CHILD, False, False)
    assert result["deleted"] == [CHILD]
    assert result["deleted_layers"] == [chain_ids([L1, L2])[1]]


def test_tagged_parent_is_kept():
    result = simulate_delete(
        store(base_and_child(base_refs=["base:1"])), "app:1", CHILD, False, True
    )
    assert result["deleted"] == [CHILD]
    assert result["deleted_layers"] == [chain_ids([L1, L2])[1]]


def test_layer_shared_with_another_image_stays():
    images = base_and_child() + [StoredImage(OTHER, None, ["other:1"], chain_ids([L1, L3]))]
    result = simulate_delete(store(images), "app:1", CHILD, False, True)
    assert result["deleted"] == [CHILD, BASE]
    assert result["deleted_layers"] == [chain_ids([L1, L2])[1]]  # L1 is held by OTHER


def test_stopped_container_by_name_is_in_use_and_force_deletes():
    containers = [StoredContainer("x" * 64, "web", CHILD, "exited")]
    with pytest.raises(DeleteConflict) as caught:
        simulate_delete(store(base_and_child(), containers), "app:1", CHILD, False, True)
    assert caught.value.kind == "in_use"
    forced = simulate_delete(store(base_and_child(), containers), "app:1", CHILD, True, True)
    # Both images go (the parent is left unused); the container keeps every layer on disk.
    assert forced["deleted"] == [CHILD, BASE]
    assert forced["deleted_layers"] == []
    assert force_outcome(store(base_and_child(), containers), "app:1", CHILD, True) == "deleted"


def test_running_container_by_name_force_only_untags():
    containers = [StoredContainer("x" * 64, "web", CHILD, "running")]
    result = simulate_delete(store(base_and_child(), containers), "app:1", CHILD, True, True)
    assert result == {"untagged": ["app:1"], "deleted": [], "deleted_layers": []}
    assert force_outcome(store(base_and_child(), containers), "app:1", CHILD, True) == (
        "untagged_only"
    )


def test_running_container_by_id_cannot_be_forced():
    containers = [StoredContainer("x" * 64, "web", CHILD, "paused")]
    with pytest.raises(DeleteConflict) as caught:
        simulate_delete(store(base_and_child(), containers), CHILD, CHILD, True, True)
    assert caught.value.kind == "running" and caught.value.hard
    assert force_outcome(store(base_and_child(), containers), CHILD, CHILD, True) == "conflict"


def test_stopped_container_by_id_prefix_needs_force():
    containers = [StoredContainer("x" * 64, "web", CHILD, "created")]
    with pytest.raises(DeleteConflict) as caught:
        simulate_delete(store(base_and_child(), containers), "cccccc", CHILD, False, True)
    assert caught.value.kind == "stopped" and not caught.value.hard
    result = simulate_delete(store(base_and_child(), containers), "cccccc", CHILD, True, True)
    assert result["untagged"] == ["app:1"] and result["deleted"] == [CHILD, BASE]


def test_image_with_children_cannot_be_deleted_by_id():
    with pytest.raises(DeleteConflict) as caught:
        simulate_delete(store(base_and_child(base_refs=["base:1"])), BASE, BASE, True, True)
    assert caught.value.kind == "children"


def test_deleting_the_last_name_of_a_parent_only_untags_it():
    result = simulate_delete(
        store(base_and_child(base_refs=["base:1"])), "base:1", BASE, False, True
    )
    assert result == {"untagged": ["base:1"], "deleted": [], "deleted_layers": []}


def test_id_with_tags_in_two_repositories_needs_force():
    images = base_and_child(child_refs=("app:1", "other:1"))
    with pytest.raises(DeleteConflict) as caught:
        simulate_delete(store(images), CHILD, CHILD, False, True)
    assert caught.value.kind == "reference"
    result = simulate_delete(store(images), CHILD, CHILD, True, True)
    assert sorted(result["untagged"]) == ["app:1", "other:1"]
    assert result["deleted"] == [CHILD, BASE]


def test_last_tag_removal_also_removes_digests_of_that_repository():
    digest_ref = "app@sha256:" + "e" * 64
    images = base_and_child(child_refs=("app:1", digest_ref))
    result = simulate_delete(store(images), "app:1", CHILD, False, True)
    assert result["untagged"] == ["app:1", digest_ref]
    assert result["deleted"] == [CHILD, BASE]


def test_prune_removes_dangling_heads_and_their_dangling_parents_only():
    images = base_and_child(child_refs=()) + [StoredImage(OTHER, None, ["keep:1"], chain_ids([L3]))]
    s = store(images)
    assert dangling_images(s) == [CHILD]
    s.prune()
    assert s.outcome.deleted == [CHILD, BASE]
    assert set(s.images) == {OTHER}


def test_prune_skips_dangling_images_that_containers_use():
    containers = [StoredContainer("x" * 64, "job", CHILD, "exited")]
    s = store(base_and_child(child_refs=()), containers)
    assert s.prune() == [CHILD]
    assert s.outcome.deleted == []


def test_prune_all_untags_tagged_unused_images():
    s = store(base_and_child())
    s.prune(dangling_only=False)
    assert s.outcome.untagged == ["app:1"]
    assert sorted(s.outcome.deleted) == sorted([CHILD, BASE])


def test_prune_until_and_labels_filters():
    images = [
        StoredImage(BASE, None, [], chain_ids([L1]), created_ns=100, labels={"a": "1"}),
        StoredImage(OTHER, None, [], chain_ids([L3]), created_ns=300, labels={"a": "2"}),
    ]
    s = store(images)
    assert s.prune(until_ns=200) == [BASE]
    s = store(images)
    assert s.prune(labels=["a=2"]) == [OTHER]
    s = store(images)
    assert s.prune(labels=["b"]) == []


def test_match_labels():
    assert match_labels([], {})
    assert match_labels(["a"], {"a": ""})
    assert match_labels(["a=1", "b"], {"a": "1", "b": "x"})
    assert not match_labels(["a=2"], {"a": "1"})
    assert not match_labels(["a"], {})


def test_time_parsing():
    assert rfc3339_ns("2024-01-02T03:04:05.123456789Z") == 1704164645123456789
    assert rfc3339_ns("2024-01-02T04:04:05+01:00") == 1704164645 * 10**9
    assert parse_until("1700000000", 0) == 1700000000
    assert parse_until("24h", 100000) == 100000 - 86400
    assert parse_until("1h30m", 10000) == 10000 - 5400
    assert parse_until("2024-01-02T03:04:05Z", 0) == 1704164645
    assert parse_until("2024-01-02", 0) == 1704153600
    for bad in ("soon", "24x", "1h 30m", "2024-13-45T00:00:00Z"):
        with pytest.raises(ValueError):
            parse_until(bad, 0)
