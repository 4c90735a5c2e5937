"""The event hub's buffer and the image list's keyset paging, without an engine."""

from __future__ import annotations

import threading

import pytest

from app.domain import listing
from app.services.events import EventHub, image_event, job_events


def _hub(size: int = 4) -> EventHub:
    return EventHub(lambda name, listener: None, lambda since: [], size=size)


def _tag(nanos: int, name: str) -> dict:
    return {
        "Type": "image",
        "Action": "tag",
        "Actor": {"ID": "sha256:" + "a" * 64, "Attributes": {"name": name}},
        "time": nanos // 10**9,
        "timeNano": nanos,
    }


def test_replayed_events_are_dropped_and_the_buffer_is_bounded():
    hub = _hub(size=3)
    position, _ = hub.start(None)
    for nanos in (1, 2, 2, 3, 4):  # 2 again: a watcher's resubscription replays it
        hub.publish(image_event("local", _tag(nanos, f"app:{nanos}")))
    position, fresh = hub.wait(position, 0)
    assert [e["id"] for e in fresh] == ["2", "3", "4"]  # the oldest fell out of the buffer
    assert hub.wait(position, 0) == (position, [])


def test_resume_gives_the_buffered_events_after_the_id():
    hub = _hub()
    for nanos in (10, 20, 30):
        hub.publish(image_event("local", _tag(nanos, "app:1")))
    _, backlog = hub.start("15")
    assert [e["id"] for e in backlog] == ["20", "30"]
    assert hub.start(None)[1] == []


def test_a_waiting_stream_wakes_on_an_event_and_on_close():
    hub = _hub()
    position, _ = hub.start(None)
    threading.Timer(0.1, hub.publish, [image_event("local", _tag(5, "app:1"))]).start()
    _, fresh = hub.wait(position, 5)
    assert [e["name"] for e in fresh] == ["app:1"]
    threading.Timer(0.1, hub.close).start()
    assert hub.wait(hub.start(None)[0], 5)[1] == [] and hub.closed


def test_container_events_other_than_commit_are_not_image_events():
    commit = {
        "Type": "container",
        "Action": "commit",
        "Actor": {"ID": "c1", "Attributes": {"imageID": "sha256:b", "imageRef": "app:2"}},
        "timeNano": 7,
    }
    event = image_event("local", commit)
    assert (event["action"], event["image"], event["name"]) == ("commit", "sha256:b", "app:2")
    assert image_event("local", {**commit, "Action": "start"}) is None


def test_job_events_tell_each_state_once_after_since():
    job = {"id": "j", "kind": "pull", "target": "a:1", "engine": "local", "state": "failed"}
    job |= {"created": 1.0, "started": 2.0, "finished": 3.0}
    assert [e["action"] for e in job_events(job, 0)] == ["queued", "running", "failed"]
    assert [e["action"] for e in job_events(job, 2.5)] == ["failed"]


def _images(count: int) -> list[dict]:
    return [
        {
            "id": f"sha256:{i:04d}",
            "created": f"2020-01-01T00:00:{i // 3:02d}Z",
            "size": i % 5,
            "repo_tags": [f"r{i % 7}:1"] if i % 4 else [],
        }
        for i in range(count)
    ]


@pytest.mark.parametrize("sort", listing.SORTS)
def test_pages_hold_each_image_once_in_sort_order(sort):
    images = _images(53)
    seen, cursor = [], None
    while True:
        chosen, cursor = listing.page(images, sort, 10, cursor)
        seen += chosen
        if cursor is None:
            break
    assert sorted(i["id"] for i in seen) == sorted(i["id"] for i in images)
    keys = [listing.sort_key(sort)(i) for i in seen]
    assert keys == sorted(keys, reverse=sort.startswith("-"))


def test_a_cursor_keeps_its_place_when_images_come_and_go():
    images = _images(20)
    first, cursor = listing.page(images, "size", 5, None)
    changed = [i for i in images if i not in first[:2]] + [{"id": "sha256:zzzz", "size": 0}]
    rest, _ = listing.page(changed, "size", 100, cursor)
    assert not {i["id"] for i in first} & {i["id"] for i in rest}


@pytest.mark.parametrize("cursor", ["", "!!", "bm9wZQ", listing.encode_cursor("size", [1, 2])])
def test_forged_cursors_are_refused(cursor):
    with pytest.raises(ValueError):
        listing.page(_images(3), "size", 1, cursor or "x")
    with pytest.raises(ValueError):
        listing.decode_cursor(listing.encode_cursor("size", [1, "a"]), "name")
