"""Hub-style search through the real engine, answered by a v1 index served on loopback."""

import pytest

from tests.support.search_index import SearchIndex

REPOS = [
    {
        "name": "library/busybox",
        "description": "Tiny box",
        "star_count": 3000,
        "is_official": True,
        "is_automated": False,
    },
    {
        "name": "acme/busybox-tools",
        "description": "Extra tools",
        "star_count": 12,
        "is_official": False,
        "is_automated": True,
    },
    {
        "name": "acme/unrelated",
        "description": "not this",
        "star_count": 99,
        "is_official": False,
        "is_automated": False,
    },
]


@pytest.fixture(scope="module")
def index():
    with SearchIndex(REPOS) as idx:
        yield idx


@pytest.fixture
def index_client(app_allowing, index):
    """A client of an app whose outbound policy allows the index."""
    return app_allowing(f"127.0.0.1:{index.port}").test_client()


def test_search_goes_through_the_engine(index_client, headers, index):
    response = index_client.get(
        f"/v1/search?term=127.0.0.1:{index.port}/busybox", headers=headers("read")
    )
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["name"] for r in results] == ["library/busybox", "acme/busybox-tools"]
    assert results[0] == {
        "name": "library/busybox",
        "description": "Tiny box",
        "stars": 3000,
        "official": True,
        "automated": False,
    }
    assert any(path.startswith("/v1/search") for path in index.requests)


def test_search_filters_official_and_stars(index_client, headers, index):
    term = f"127.0.0.1:{index.port}/busybox"
    official = index_client.get(f"/v1/search?term={term}&official=true", headers=headers("read"))
    assert [r["name"] for r in official.get_json()["results"]] == ["library/busybox"]
    starred = index_client.get(f"/v1/search?term={term}&min_stars=100", headers=headers("read"))
    assert [r["name"] for r in starred.get_json()["results"]] == ["library/busybox"]


def test_search_limit_is_passed_and_bounded(index_client, headers, index):
    term = f"127.0.0.1:{index.port}/busybox"
    one = index_client.get(f"/v1/search?term={term}&limit=1", headers=headers("read"))
    assert len(one.get_json()["results"]) == 1
    for bad in ("0", "101", "x"):
        response = index_client.get(f"/v1/search?term={term}&limit={bad}", headers=headers("read"))
        assert response.status_code == 400 and "limit" in response.get_json()["errors"]


def test_search_needs_a_term(client, headers):
    response = client.get("/v1/search", headers=headers("read"))
    assert response.status_code == 400 and "term" in response.get_json()["errors"]
