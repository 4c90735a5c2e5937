"""The portal (/ui/) in a real headless Chromium, against Berth under gunicorn and the engine.

Chromium is Debian's (``/usr/bin/chromium``, installed by the harness) driven by playwright; no
browser is downloaded. Every request the page makes is checked: one for another host is aborted
and fails the test, and so does any console error. Screenshots of each view go to
docs/screenshots/: `make test PYTEST_ARGS="-k ui_browser"` regenerates them.
"""

from __future__ import annotations

import json
import secrets
import tarfile
import time
import urllib.request
from urllib.parse import urlsplit

import pytest

from tests.support.browser import launch
from tests.support.gunicorn import gunicorn_server
from tests.support.harness import ROOT
from tests.support.images import unique
from tests.support.needs import need_browser
from tests.support.registry import push_image
from tests.support.tokens import TOKENS, harness_registries, token_entries, token_realm

SHOTS = ROOT / "docs" / "screenshots"
MANAGER = f"test-manager-{secrets.token_hex(12)}"


@pytest.fixture(scope="module")
def server(harness, tmp_path_factory):
    env = {
        "DOCKER_HOST": harness["docker_host"],
        "BERTH_DATA_DIR": str(tmp_path_factory.mktemp("ui")),
        "BERTH_ALLOWED_REGISTRIES": ",".join(harness_registries(harness)),
        "BERTH_ALLOW_PUBLIC_REGISTRIES": "false",
        "BERTH_INSECURE_REGISTRIES": token_realm(harness),
    }
    manager = {"name": "manager", "token": MANAGER, "scopes": ["read", "write", "delete"]}
    with gunicorn_server(env, workers=1, threads=8, tokens=[*token_entries(), manager]) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    sync_api = need_browser()
    with sync_api.sync_playwright() as playwright:
        launched = launch(playwright)
        yield launched
        launched.close()


class Watched:
    """A page whose console errors and requests off the server are recorded (and aborted)."""

    def __init__(self, browser, base_url: str) -> None:
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        origin = urlsplit(base_url).netloc
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("response", self._failed)

        def gate(route):
            url = route.request.url
            if url.startswith(("data:", "blob:")) or urlsplit(url).netloc == origin:
                route.continue_()
            else:
                self.outside.append(url)
                route.abort()

        self.page.route("**/*", gate)
        self.page.goto(base_url + "/ui/")

    def _failed(self, response) -> None:
        if response.status >= 400:
            self.errors.append(f"{response.status} {response.request.method} {response.url}")

    def sign_in(self, token: str) -> None:
        self.page.fill("#token", token)
        self.page.click("#signin button")
        self.page.wait_for_selector("#images tbody tr")
        self.page.wait_for_function("document.getElementById('usage-text').textContent !== ''")

    def row(self, reference: str):
        self.page.fill("#filter", reference)
        return self.page.locator("#images tbody tr", has_text=reference)

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / name), full_page=True)


def wait_for_image(docker_client, reference: str) -> str:
    """The id of ``reference`` once a background pull has made it."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return docker_client.images.get(reference).id
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def watched(browser, server):
    made = []

    def open_page() -> Watched:
        made.append(Watched(browser, server.url))
        return made[-1]

    yield open_page
    for w in made:
        w.context.close()
    for w in made:
        assert not w.outside, f"requests off the machine: {w.outside}"


def test_read_token_sees_images_usage_and_layer_sharing_and_no_actions(watched, images):
    base_id, base_ref = images.image("echo base > /base", repository=unique("ui-base"))
    _, child_ref = images.image("echo child > /child", repository=unique("ui-child"), base=base_ref)
    images.image("echo other > /other", repository=unique("ui-other"), base=base_ref)
    w = watched()
    w.sign_in(TOKENS["read"])
    page = w.page
    assert "read-token" in page.text_content("#who")
    assert "images:" in page.text_content("#usage-text")
    assert page.locator("#usage-chart").bounding_box()["height"] > 100
    w.shot("images.png")

    if page.evaluate("Berth.hasEvents"):  # GET /v1/events: the table follows the engine live
        _, live_ref = images.image("true", repository=unique("ui-live"))
        page.wait_for_selector(f"#images tbody tr:has-text('{live_ref}')", timeout=15000)

    row = w.row(child_ref)
    row.get_by_role("button", name="Layers").click()
    page.wait_for_selector("#layers tbody tr")
    layer_rows = page.locator("#layers tbody tr")
    assert layer_rows.count() >= 3  # the harness's base, the base image's step, the child's
    shared = page.text_content("#layers tbody")
    assert "ui-other" in shared and "ui-base" in shared  # the lower layers are shared
    assert layer_rows.last.text_content().endswith("none (unique)")  # the child's own step
    assert page.locator("#layers-chart").bounding_box()["height"] > 100
    w.shot("layers.png")

    # A read token is offered nothing that changes the engine.
    for name in ("Tag", "Delete", "Push"):
        assert page.get_by_role("button", name=name).count() == 0, name
    for box in ("#pull-form", "#prune-box", "#load-box"):
        assert not page.locator(box).is_visible(), box
    assert w.errors == []


def test_manager_tags_previews_and_deletes(watched, images, docker_client):
    image_id, ref = images.image("echo x > /x", repository=unique("ui-tag"))
    w = watched()
    w.sign_in(MANAGER)
    page = w.page
    w.row(ref).get_by_role("button", name="Tag").click()
    new_repo = unique("ui-tagged")
    page.fill("#action-body input[name=repository]", new_repo)
    page.fill("#action-body input[name=tag]", "v1")
    page.click("#action-body button[type=submit]")
    page.wait_for_selector("#action-title:text('Tagged')")
    assert docker_client.images.get(f"{new_repo}:v1").id == image_id

    w.row(f"{new_repo}:v1").get_by_role("button", name="Delete").click()
    page.get_by_role("button", name=f"Delete the name {new_repo}:v1").click()
    page.wait_for_selector("#confirm-delete")
    preview = page.text_content("#action-body")
    assert "nothing has been deleted yet" in preview and "would untag (1)" in preview
    assert docker_client.images.get(f"{new_repo}:v1").id == image_id  # the preview changed nothing
    w.shot("delete-preview.png")
    page.click("#confirm-delete")
    page.wait_for_selector("#action-title:text('Deleted')")
    assert f"{new_repo}:v1" not in docker_client.images.get(image_id).tags
    assert w.errors == []


def test_manager_saves_an_image_and_previews_a_prune(watched, images, tmp_path):
    _, ref = images.image("echo s > /s", repository=unique("ui-save"))
    w = watched()
    w.sign_in(MANAGER)
    page = w.page
    with page.expect_download() as download:
        w.row(ref).get_by_role("button", name="Save").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.endswith(".tar")
    with tarfile.open(saved) as tar:
        assert "manifest.json" in tar.getnames()

    page.click("#prune-preview")
    page.wait_for_selector("#prune-result:has-text('Would delete')")
    assert page.get_by_role("button", name="Prune now").count() == 1
    assert w.errors == []


def test_manager_sees_why_an_image_in_use_cannot_go(watched, images):
    _, ref = images.image("true", repository=unique("ui-used"))
    images.container("true", ref)
    w = watched()
    w.sign_in(MANAGER)
    w.row(ref).get_by_role("button", name="Delete").click()
    w.page.wait_for_selector("#action-title:text('Cannot delete')")
    body = w.page.text_content("#action-body")
    assert "IMAGE_IN_USE" in body and "container" in body and "With force:" in body
    # A stopped container does not stop a forced delete: previewed first, like any other.
    w.page.get_by_role("button", name="Preview with force").click()
    w.page.wait_for_selector("#action-title:text('(force)?')")
    assert "would untag (1)" in w.page.text_content("#action-body")
    assert images.client.images.get(ref)  # still there: only previewed
    # The browser reports the 409 itself; nothing else went wrong.
    assert all("409" in e for e in w.errors), w.errors


def test_manager_pulls_with_progress_and_loads_an_archive(
    watched, server, harness, base_image, docker_client, tmp_path, images
):
    address = harness["registries"]["open"]["address"]
    remote = f"{address}/{unique('ui-pull')}:1"
    push_image(docker_client, base_image, remote)
    docker_client.api.remove_image(remote)
    w = watched()
    w.sign_in(MANAGER)
    page = w.page
    page.evaluate(
        """() => { window.pullStatuses = [];
        new MutationObserver(() => window.pullStatuses.push(
            document.getElementById('pull-status').textContent))
          .observe(document.getElementById('pull-status'), {childList: true, characterData: true,
            subtree: true}); }"""
    )
    page.fill("#pull-ref", remote)
    page.click("#pull-form button")
    page.wait_for_selector("#pull-status:text('pulled')", timeout=60000)
    statuses = page.evaluate("window.pullStatuses")
    assert len(statuses) >= 2 and statuses[-1].startswith("pulled"), statuses
    assert page.locator("#pull-progress").is_visible()
    w.shot("pull.png")
    assert docker_client.images.get(remote).id == docker_client.images.get(base_image).id
    docker_client.api.remove_image(remote)  # the name only: it is the harness's base image

    # The registry, browsed: repositories, then tags with digests, each offered for a pull.
    page.fill("#registry", address)
    page.click("#registry-form button")
    repository = remote.split("/", 1)[1].rsplit(":", 1)[0]
    page.get_by_role("link", name=repository).click()
    page.wait_for_selector("#registry-result li:has-text('sha256:')")
    assert page.locator("#registry-result").get_by_role("button", name="Pull").count() == 1

    # A job started elsewhere with the same token shows in the jobs list.
    request = urllib.request.Request(
        server.url + "/v1/images/pull",
        data=json.dumps({"reference": remote}).encode(),
        headers={
            "Authorization": f"Bearer {MANAGER}",
            "Content-Type": "application/json",
            "Prefer": "respond-async",
        },
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 202
    page.wait_for_selector(f"#jobs tbody tr:has-text('{repository}')", timeout=15000)
    w.shot("jobs.png")
    wait_for_image(docker_client, remote)
    docker_client.api.remove_image(remote)

    loaded_id, loaded_ref = images.image("echo load > /load", repository=unique("ui-load"))
    archive = tmp_path / "image.tar"
    with archive.open("wb") as f:
        for chunk in docker_client.api.get_image(loaded_ref):
            f.write(chunk)
    docker_client.api.remove_image(loaded_ref)
    page.set_input_files("#load-file", str(archive))
    page.wait_for_selector("#load-status:text('loaded')", timeout=60000)
    assert loaded_ref in page.text_content("#load-status")
    assert docker_client.images.get(loaded_ref).id == loaded_id
    assert float(page.get_attribute("#load-progress", "value")) > 0
    w.shot("load.png")
    assert w.errors == []
