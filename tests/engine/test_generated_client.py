"""The OpenAPI document as a contract: a client generated from it by openapi-python-client, a
tool nobody here wrote, drives a real Berth (gunicorn, the harness engine and registry).

The generator must not warn (a warning means a part of the API left out of the client, or a
field typed loosely), and the generated functions must parse what Berth really answers: typed
models with the required fields, enums, times as datetimes, downloads as bytes, a 404 as a
``Problem``.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.gunicorn import gunicorn_server
from tests.support.images import unique
from tests.support.registry import push_image
from tests.support.tokens import TOKENS, harness_registries, token_entries, token_realm

PACKAGE = "berth_generated_client"


def _generate(spec: dict, where: Path) -> str:
    """Run openapi-python-client on ``spec``; returns its output (it must hold no warning)."""
    spec_path = where / "openapi.json"
    spec_path.write_text(json.dumps(spec))
    bin_dir = str(Path(sys.executable).parent)  # its post-generation hook runs ruff from here
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [
            f"{bin_dir}/openapi-python-client",
            "generate",
            "--path",
            str(spec_path),
            "--output-path",
            str(where / PACKAGE),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


@pytest.fixture
def server(harness, tmp_path):
    env = {
        "DOCKER_HOST": harness["docker_host"],
        "BERTH_DATA_DIR": str(tmp_path / "data"),
        "BERTH_ALLOWED_REGISTRIES": ",".join(harness_registries(harness)),
        "BERTH_ALLOW_PUBLIC_REGISTRIES": "false",
        "BERTH_INSECURE_REGISTRIES": token_realm(harness),
    }
    with gunicorn_server(env, workers=1, tokens=token_entries()) as server:
        yield server


@pytest.fixture
def api(server, tmp_path):
    """The generated package, imported from its own directory, and its authenticated client."""
    spec = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    output = _generate(spec, tmp_path)
    assert "warning" not in output.lower(), output
    sys.path.insert(0, str(tmp_path))
    try:
        package = importlib.import_module(PACKAGE)
        client = package.AuthenticatedClient(
            base_url=server.url, token=TOKENS["admin"], timeout=120.0
        )
        yield package, client
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(package, path: str):
    return importlib.import_module(f"{package.__name__}.{path}")


def test_a_generated_client_runs_a_workflow_against_the_engine(
    api, images, docker_client, harness, tmp_path
):
    package, client = api
    ops = {
        name: _module(package, f"api.{name}")
        for name in (
            "images.list_images",
            "images.inspect_image",
            "lifecycle.tag_image",
            "lifecycle.delete_image",
            "lifecycle.prune_images",
            "lifecycle.pull_image",
            "archives.save_image",
            "archives.load_archive",
            "jobs.get_job",
        )
    }
    models = _module(package, "models")
    types = _module(package, "types")
    image_id, ref = images.image("echo generated > /file")

    listed = ops["images.list_images"].sync(client=client)
    assert isinstance(listed, models.ImageList)
    mine = [i for i in listed.images if i.id == image_id]
    assert mine and ref in mine[0].repo_tags and mine[0].created.year >= 2000

    details = ops["images.inspect_image"].sync(ref, client=client)
    assert isinstance(details, models.ImageDetails)
    assert details.id == image_id and details.layers

    repository = unique("berth-gen")
    tagged = ops["lifecycle.tag_image"].sync(
        ref, client=client, body=models.TagRequest(repository=repository, tag="v1")
    )
    assert isinstance(tagged, models.TagResult) and tagged.id == image_id
    deleted = ops["lifecycle.delete_image"].sync(f"{repository}:v1", client=client)
    assert isinstance(deleted, models.DeleteResult)
    assert f"{repository}:v1" not in docker_client.images.get(image_id).tags

    pruned = ops["lifecycle.prune_images"].sync(
        client=client, body=models.PruneRequest(dry_run=True)
    )
    assert isinstance(pruned, models.PruneResult) and pruned.dry_run is True

    # Save to a file, delete the image, load the file: the image is back.
    archive = ops["archives.save_image"].sync(ref, client=client)
    assert isinstance(archive, types.File)
    saved = tmp_path / "image.tar"
    saved.write_bytes(archive.payload.read())
    docker_client.images.remove(image_id, force=True)
    with saved.open("rb") as body:
        loaded = ops["archives.load_archive"].sync(
            client=client, body=types.File(payload=body, file_name="image.tar")
        )
    assert isinstance(loaded, models.LoadResult) and ref in loaded.loaded
    assert docker_client.images.get(ref).id == image_id

    # An asynchronous pull from the harness's open registry, followed to its end.
    remote = f"{harness['registries']['open']['address']}/{unique('berth-gen')}:1"
    push_image(docker_client, image_id, remote)
    docker_client.images.remove(remote)
    images.track(image_id)
    started = ops["lifecycle.pull_image"].sync(
        client=client, body=models.PullRequest(reference=remote), prefer="respond-async"
    )
    assert isinstance(started, models.Job) and started.kind == models.JobKind.PULL
    deadline = time.monotonic() + 120
    job = started
    while job.state in (models.JobState.QUEUED, models.JobState.RUNNING):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = ops["jobs.get_job"].sync(started.id, client=client)
    assert job.state == models.JobState.SUCCEEDED, job.error
    assert job.error is None and job.finished >= job.created
    assert remote in docker_client.images.get(remote).tags
    docker_client.images.remove(remote)

    missing = ops["images.inspect_image"].sync("berth-gen-nope/never:1", client=client)
    assert isinstance(missing, models.Problem)
    assert missing.status == 404 and missing.code == "IMAGE_NOT_FOUND"
