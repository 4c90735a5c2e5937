"""Private registries through their v2 API: catalog pages, tags with digests, catalog search."""

from __future__ import annotations

import re
from typing import Any

from app.domain.references import PATH_PATTERN, hub_api_path
from app.errors import InvalidReference
from app.registry.addresses import is_docker_hub
from app.registry.client import RegistryClient
from app.registry.paging import Page, name_matcher, page_of, scan_pages

FETCH_PAGE = 100  # upstream page size while filtering (registries accept at least 100)
_NAME = re.compile(PATH_PATTERN)


def repository_path(registry: str, name: str) -> str:
    """A repository name as the registry's API spells it (Hub: ``busybox`` → ``library/...``)."""
    if len(name) > 255 or not _NAME.match(name):
        raise InvalidReference(
            f"'{name[:100]}' is not a repository name (lowercase path components separated by "
            "'/', e.g. 'team/app')."
        )
    return hub_api_path(name) if is_docker_hub(registry) else name


def list_repositories(client: RegistryClient, *, q: str | None, n: int, last: str | None) -> Page:
    """One page of the catalog, filtered by ``q`` (substring or glob), after ``last``."""
    if not q:
        return scan_pages(client.catalog_page, n=n, last=last)
    return scan_pages(
        client.catalog_page, n=n, last=last, matches=name_matcher(q), page_size=max(n, FETCH_PAGE)
    )


def list_tags(client: RegistryClient, name: str, *, n: int, last: str | None) -> dict[str, Any]:
    """One page of ``name``'s tags, each with the digest the registry serves for it."""
    path = repository_path(client.registry, name)
    page = page_of(client.tags(path), n=n, last=last)
    return {
        "repository": path,
        "tags": client.tag_digests(path, page.items),
        "next_last": page.next_last,
    }


def search_catalog(
    client: RegistryClient,
    term: str,
    limit: int,
    official: bool | None = None,
    min_stars: int | None = None,
) -> list[dict[str, Any]]:
    """Catalog names matching ``term``, shaped like Docker Hub search results.

    Names carry the registry (``host:port/team/app``) so they can be pulled as they are. Private
    registries have no stars, descriptions or official images: ``official=true`` or
    ``min_stars>0`` match nothing.
    """
    if official or (min_stars or 0) > 0:
        return []
    page = scan_pages(
        client.catalog_page, n=limit, matches=name_matcher(term), page_size=FETCH_PAGE
    )
    return [
        {
            "name": f"{client.registry}/{name}",
            "description": "",
            "stars": 0,
            "official": False,
            "automated": False,
        }
        for name in page.items
    ]
