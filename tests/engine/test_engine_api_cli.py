"""The docker CLI through Berth (``DOCKER_HOST=tcp://berth/engines/local``): images work as on
the socket, everything else is refused with Berth's message and changes nothing."""

from __future__ import annotations

import json
import tarfile

import pytest
from docker.errors import APIError, NotFound

from tests.support.engine_api import DockerCLI, front_door
from tests.support.images import unique
from tests.support.search_index import SearchIndex

REPOS = [{"name": "library/busybox", "description": "Tiny box", "star_count": 3000}]


@pytest.fixture(scope="module")
def index():
    with SearchIndex(REPOS) as idx:
        yield idx


@pytest.fixture(scope="module")
def door(harness, tmp_path_factory, index):
    data_dir = tmp_path_factory.mktemp("engine-api-cli")
    with front_door(harness, data_dir, [f"127.0.0.1:{index.port}"]) as (server, tokens):
        yield server, tokens


@pytest.fixture
def cli(door, harness, tmp_path):
    """``cli(token="images", engine="local")``: a DockerCLI with its own config directory."""
    server, tokens = door
    made = 0

    def make(token: str | None = "images", engine: str = "local") -> DockerCLI:
        nonlocal made
        made += 1
        secret = tokens[token] if token else None
        return DockerCLI(harness["docker_cli"], server.url, engine, tmp_path / f"c{made}", secret)

    return make


@pytest.fixture
def cleanup(docker_client):
    """Names and ids to remove from the engine after the test (directly, not through Berth)."""
    names: list[str] = []
    yield names
    for name in reversed(names):
        try:
            docker_client.api.remove_image(name, force=True)
        except APIError:
            pass


def _id(docker_client, name: str) -> str:
    return docker_client.api.inspect_image(name)["Id"]


def test_version_images_inspect_and_history_read_the_engine(cli, docker_client, base_image):
    docker = cli()
    assert docker.ok("version", "--format", "{{.Server.APIVersion}}").strip() == "1.41"
    listed = docker.ok("images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}")
    assert f"{_id(docker_client, base_image)} {base_image}" in listed.splitlines()
    inspected = json.loads(docker.ok("image", "inspect", base_image))
    assert inspected == [docker_client.api.inspect_image(base_image)]
    history = docker.ok("history", "--no-trunc", "--format", "{{.ID}}", base_image)
    assert _id(docker_client, base_image) in history.split()
    assert "Images" in docker.ok("system", "df")


def test_tag_push_rmi_and_pull_with_the_open_registry(cli, harness, docker_client, cleanup):
    docker = cli()
    base = harness["base_image"]
    target = f"{harness['registries']['open']['address']}/{unique('berth-cli')}:1"
    cleanup.append(target)
    docker.ok("tag", base, target)
    assert _id(docker_client, target) == _id(docker_client, base)
    pushed = docker.ok("push", target)
    assert "digest: sha256:" in pushed
    docker.ok("rmi", target)
    with pytest.raises(NotFound):
        docker_client.api.inspect_image(target)
    pulled = docker.ok("pull", target)
    assert "Downloaded newer image" in pulled or "Image is up to date" in pulled
    assert _id(docker_client, target) == _id(docker_client, base)


def test_login_then_push_and_pull_with_the_htpasswd_registry(cli, harness, docker_client, cleanup):
    docker = cli()
    basic = harness["registries"]["basic"]
    target = f"{basic['address']}/{unique('berth-cli')}:1"
    cleanup.append(target)
    docker.ok("tag", harness["base_image"], target)
    refused = docker.run("push", target)
    assert refused.returncode != 0  # no credentials yet: the registry says no
    login = docker.ok(
        "login",
        basic["address"],
        "-u",
        basic["username"],
        "--password-stdin",
        input=basic["password"].encode(),
    )
    assert "Login Succeeded" in login
    assert basic["address"] in json.loads((docker.config_dir / "config.json").read_text())["auths"]
    assert "digest: sha256:" in docker.ok("push", target)
    docker.ok("rmi", target)
    docker.ok("pull", target)
    assert _id(docker_client, target) == _id(docker_client, harness["base_image"])
    wrong = docker.run(
        "login", basic["address"], "-u", basic["username"], "--password-stdin", input=b"nope"
    )
    assert wrong.returncode != 0


def test_search_asks_an_allowed_index(cli, index):
    out = cli().ok("search", "--format", "{{.Name}} {{.StarCount}}", f"127.0.0.1:{index.port}/box")
    assert "library/busybox 3000" in out.splitlines()
    assert any(path.startswith("/v1/search") for path in index.requests)


def test_a_registry_outside_the_policy_is_refused_before_the_engine_asks(cli):
    refused = cli().run("pull", "127.0.0.1:1/nothing:1")
    assert refused.returncode != 0
    assert b"Registry 127.0.0.1:1 is not allowed" in refused.stderr


def test_commit_export_import_dangling_and_prune(cli, images, docker_client, cleanup, tmp_path):
    docker = cli()
    container = images.container("echo hello > /greeting")
    repo = unique("berth-cli")
    cleanup.extend([f"{repo}:committed", f"{repo}:imported"])
    committed = docker.ok("commit", container, f"{repo}:committed").strip()
    assert committed == _id(docker_client, f"{repo}:committed")
    archive = tmp_path / "fs.tar"
    docker.ok("export", "-o", str(archive), container)
    with tarfile.open(archive) as tar:
        assert tar.extractfile("greeting").read() == b"hello\n"
    imported = docker.ok("import", str(archive), f"{repo}:imported").strip()
    assert imported == _id(docker_client, f"{repo}:imported")
    # Moving the tag leaves the committed image without a name: dangling, then pruned.
    docker.ok("tag", f"{repo}:imported", f"{repo}:committed")
    dangling = docker.ok("images", "--filter", "dangling=true", "--no-trunc", "-q").split()
    assert committed in dangling
    pruned = docker.ok("image", "prune", "-f")
    assert committed in pruned
    with pytest.raises(NotFound):
        docker_client.api.inspect_image(committed)


def test_save_and_load_round_trip(cli, harness, docker_client, cleanup, tmp_path):
    docker = cli()
    name = f"{unique('berth-cli')}:saved"
    cleanup.append(name)
    docker.ok("tag", harness["base_image"], name)
    archive = tmp_path / "image.tar"
    docker.ok("save", "-o", str(archive), name)
    with tarfile.open(archive) as tar:
        assert "manifest.json" in tar.getnames()
    docker.ok("rmi", name)
    loaded = docker.ok("load", "-i", str(archive))
    assert f"Loaded image: {name}" in loaded
    assert _id(docker_client, name) == _id(docker_client, harness["base_image"])


def test_a_read_token_cannot_remove_an_image(cli, harness, docker_client, cleanup):
    name = f"{unique('berth-cli')}:keep"
    cleanup.append(name)
    docker_client.api.tag(harness["base_image"], name.split(":")[0], "keep")
    refused = cli("read").run("rmi", name)
    assert refused.returncode != 0
    assert b"this token lacks the 'delete' scope" in refused.stderr
    assert _id(docker_client, name)  # still there
    assert cli("read").ok("images", "-q")


def test_run_and_build_are_refused_and_change_nothing(cli, harness, docker_client, tmp_path):
    docker = cli()
    before = {c.id for c in docker_client.containers.list(all=True)}
    ran = docker.run("run", "--rm", harness["base_image"], "true")
    assert ran.returncode != 0
    assert b"Berth allows image operations only" in ran.stderr
    assert {c.id for c in docker_client.containers.list(all=True)} == before
    name = unique("berth-cli-built")
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {harness['base_image']}\nRUN true\n")
    built = docker.run("build", "-t", name, str(context))
    assert built.returncode != 0
    assert b"Berth allows image operations only" in built.stderr
    with pytest.raises(NotFound):
        docker_client.api.inspect_image(name)
    volumes = docker.run("volume", "ls")
    assert volumes.returncode != 0 and b"Berth allows image operations only" in volumes.stderr


def test_a_token_limited_to_one_engine_cannot_use_another(cli, base_image):
    refused = cli("staging", engine="local").run("images")
    assert refused.returncode != 0
    assert b"this token may not use the engine 'local'" in refused.stderr
    assert base_image.split(":")[0] in cli("staging", engine="staging-1").ok("images")


def test_without_a_token_the_cli_says_how_to_set_one(cli):
    refused = cli(None).run("images")
    assert refused.returncode != 0
    assert b"HttpHeaders" in refused.stderr and b"config.json" in refused.stderr
