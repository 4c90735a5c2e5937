"""Cheap re-reads: ETag and 304 on metadata reads; limit, cursor and sort on /v1/images."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from app.http.accessors import services
from tests.support.images import unique
from tests.support.many_images import many_images


def _settled(client, headers, path):
    """GET ``path`` until the cache holds its answer (events of earlier changes settle)."""
    cache = services(client.application).engines.get().read_cache()
    for _ in range(200):
        hits = cache.hits
        answer = client.get(path, headers=headers("read"))
        assert answer.status_code == 200, answer.get_json()
        if cache.hits > hits:
            return answer
    pytest.fail(f"{path} never came from the cache")


def test_every_metadata_read_answers_304_to_its_own_etag(client, headers, images):
    image_id, ref = images.image("true")
    for path in (
        "/v1/images",
        f"/v1/images/{ref}",
        f"/v1/images/{ref}/history",
        f"/v1/images/{ref}/layers",
        "/v1/usage",
    ):
        first = client.get(path, headers=headers("read"))
        assert first.status_code == 200
        etag = first.headers["ETag"]
        assert etag.startswith('"') and etag.endswith('"')
        again = client.get(path, headers={**headers("read"), "If-None-Match": etag})
        assert again.status_code == 304, path
        assert again.data == b"" and again.headers["ETag"] == etag
        stale = client.get(path, headers={**headers("read"), "If-None-Match": '"other"'})
        assert stale.status_code == 200 and stale.headers["ETag"] == etag
        # Still 401 without a token, whatever the tag.
        assert client.get(path, headers={"If-None-Match": etag}).status_code == 401


def test_the_fast_path_and_flask_give_the_same_tag_and_a_change_gives_a_new_one(
    client, headers, images, base_image
):
    answer = _settled(client, headers, "/v1/images")  # this one came from the fast path
    etag = answer.headers["ETag"]
    fast = client.get("/v1/images", headers={**headers("read"), "If-None-Match": f"W/{etag}"})
    assert fast.status_code == 304
    services(client.application).engines.get().cache.invalidate()  # Flask answers the next one
    slow = client.get("/v1/images", headers={**headers("read"), "If-None-Match": etag})
    assert slow.status_code == 304 and slow.headers["ETag"] == etag

    images.image("true")  # a new image: the list, and so its tag, change
    for _ in range(200):
        changed = client.get("/v1/images", headers={**headers("read"), "If-None-Match": etag})
        if changed.status_code == 200:
            break
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def _pages(client, headers, query):
    seen, path, pages = [], f"/v1/images?{query}", 0
    while path:
        answer = client.get(path, headers=headers("read"))
        assert answer.status_code == 200, answer.get_json()
        pages += 1
        seen += [image["id"] for image in answer.get_json()["images"]]
        link = answer.headers.get("Link")
        if link is None:
            break
        url, rel = link.split(";", 1)
        assert rel.strip() == 'rel="next"'
        parts = urlsplit(url.strip("<>"))
        path = f"{parts.path}?{parts.query}"
    return seen, pages


def test_paging_through_2000_images_returns_each_exactly_once(client, headers, docker_client):
    with many_images(docker_client, unique("paging"), 2000) as selector:
        label = f"label={selector}"
        everything = client.get(f"/v1/images?{label}", headers=headers("read")).get_json()
        expected = {image["id"] for image in everything["images"]}
        assert len(expected) == 2000
        for sort in ("-created", "created", "size", "-name"):
            seen, pages = _pages(client, headers, f"{label}&limit=100&sort={sort}")
            assert len(seen) == 2000 and set(seen) == expected, sort
            assert pages == 20
        # The default order is newest first, ties by id.
        seen, _ = _pages(client, headers, f"{label}&limit=100")
        by_time = client.get(
            f"/v1/images?{label}&sort=-created&limit=1000", headers=headers("read")
        ).get_json()["images"]
        assert seen[:1000] == [image["id"] for image in by_time]
        created = [image["created"] for image in by_time]
        assert created == sorted(created, reverse=True)


def test_a_cursor_is_refused_when_forged_or_made_for_another_sort(client, headers, images):
    images.image("true")
    images.image("true")
    first = client.get("/v1/images?limit=1&sort=size", headers=headers("read"))
    link = first.headers["Link"]
    cursor = link.split("cursor=", 1)[1].split(">", 1)[0]
    other = client.get(f"/v1/images?limit=1&sort=name&cursor={cursor}", headers=headers("read"))
    assert other.status_code == 400 and "cursor" in other.get_json()["errors"]
    forged = client.get("/v1/images?limit=1&sort=size&cursor=bm9wZQ", headers=headers("read"))
    assert forged.status_code == 400
    assert client.get("/v1/images?limit=0", headers=headers("read")).status_code == 400
    assert client.get("/v1/images?sort=colour", headers=headers("read")).status_code == 400
