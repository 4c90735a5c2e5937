"""The README's walkthrough, run as written against the test engine through a real gunicorn.

Every ```sh block under the walkthrough heading runs in one bash (``set -euo pipefail``), in
order, with only the variables the README lets a reader preset (BERTH, TOKEN, REGISTRY) set to
the test server, its token and the harness's open registry.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from pathlib import Path

from tests.support.gunicorn import gunicorn_server
from tests.support.harness import ROOT

README = ROOT / "README.md"
HEADING = "## Five-minute walkthrough"
SEPARATOR = "@@walkthrough-block@@"


def walkthrough_blocks(text: str) -> list[str]:
    """The ```sh blocks of the walkthrough section, in order."""
    section = text.split(f"\n{HEADING}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```sh\n(.*?)^```$", section, flags=re.S | re.M)


def json_documents(text: str) -> list[dict]:
    """The JSON objects printed one after another in ``text`` (curl adds no separator)."""
    decoder, found, i = json.JSONDecoder(), [], 0
    while (i := text.find("{", i)) != -1:
        try:
            document, end = decoder.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        found.append(document)
        i = end
    return found


def test_the_walkthrough_sets_up_first_and_cleans_up_last():
    blocks = walkthrough_blocks(README.read_text())
    assert len(blocks) >= 6
    assert blocks[0].startswith("scripts/walkthrough-setup.sh\n")
    assert blocks[-1].strip() == "scripts/walkthrough-setup.sh --remove"
    text = "".join(blocks)
    # One set of variables, and failures that keep their problem document.
    assert "$B/" not in text and "curl -f " not in text and "curl -sf" not in text
    assert text.count('H="Authorization: Bearer $TOKEN"') == 1


def labelled(harness, kind: str) -> list[str]:
    """Ids of the containers (``ps``) or images (``images``) carrying the walkthrough's label."""
    result = subprocess.run(
        [harness["docker_cli"], "-H", harness["docker_host"], kind, "-aq"]
        + ["--filter", "label=berth.walkthrough"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DOCKER_CONFIG": harness["docker_config"]},
    )
    return result.stdout.split()


def test_the_readme_walkthrough_runs_as_written(harness, tmp_path):
    blocks = walkthrough_blocks(README.read_text())
    token = f"walkthrough-{secrets.token_hex(12)}"
    registry = harness["registries"]["open"]["address"]
    env = {
        "DOCKER_HOST": harness["docker_host"],
        "BERTH_DATA_DIR": str(tmp_path / "data"),
        "BERTH_ALLOWED_REGISTRIES": registry,
        "BERTH_ALLOW_PUBLIC_REGISTRIES": "false",
    }
    tokens = [{"name": "walkthrough", "token": token, "scopes": ["admin"]}]
    # The blocks run where the reader stands, a checkout: scripts/ is there, the archive they
    # save lands in the working directory (a temporary one here).
    work = tmp_path / "work"
    work.mkdir()
    (work / "scripts").symlink_to(ROOT / "scripts")
    docker_dir = str(Path(harness["docker_cli"]).parent)
    shell_env = {
        "PATH": f"{docker_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tmp_path),
        "DOCKER_HOST": harness["docker_host"],
        "DOCKER_CONFIG": harness["docker_config"],
        "TOKEN": token,
        "REGISTRY": registry,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    script = "set -euo pipefail\n" + f"\necho {SEPARATOR}\n".join(blocks)
    try:
        with gunicorn_server(env, workers=1, threads=4, tokens=tokens) as server:
            ran = subprocess.run(
                ["bash", "-c", script],
                cwd=work,
                env={**shell_env, "BERTH": server.url},
                capture_output=True,
                text=True,
                timeout=300,
            )
        assert ran.returncode == 0, f"stdout:\n{ran.stdout[-3000:]}\nstderr:\n{ran.stderr[-3000:]}"
        outputs = ran.stdout.split(SEPARATOR + "\n")
        assert len(outputs) == len(blocks)
        setup, reads, tag_commit, delete, prune, jobs, registry_block, _ = outputs

        assert "made demo/app:1.0" in setup
        health, ready, listed, inspected, history = json_documents(reads)
        assert health == {"status": "ok"} and ready == {"status": "ready"}
        assert {"demo/app:1.0", "demo/app:2.0"} <= {
            tag for image in listed["images"] for tag in image["repo_tags"]
        }
        assert inspected["repo_tags"] == ["demo/app:2.0"]
        assert history["history"][0]["comment"] == "add /second"

        tagged, committed, layers, usage = json_documents(tag_commit)
        assert tagged["reference"] == "demo/app:stable"
        assert committed["reference"] == "demo/app:nightly"
        assert len(layers["layers"]) == 2 and layers["layers"][0]["shared_with"]
        assert usage["images"] >= 3

        in_use, dry_run, deleted = json_documents(delete)
        assert in_use["code"] == "IMAGE_IN_USE" and in_use["containers"][0]["name"] == "web2"
        assert dry_run["dry_run"] is True and deleted["dry_run"] is False
        assert dry_run["deleted"] == deleted["deleted"] and deleted["untagged"] == ["demo/app:2.0"]

        recommitted, dangling, prune_dry, pruned = json_documents(prune)
        assert [i["id"] for i in dangling["images"]] == [committed["id"]]
        assert prune_dry["deleted"] == pruned["deleted"] == [committed["id"]]
        assert recommitted["id"] != committed["id"]

        *events, job = json_documents(jobs)
        assert events[-1]["result"]["loaded"] == ["demo/app:1.0"]
        assert job["state"] == "succeeded" and job["kind"] == "load"

        pushed, tags, pulled = json_documents(registry_block)
        assert pushed["reference"] == f"{registry}/demo/app:1.0"
        assert {"tag": "1.0", "digest": pushed["digest"]} in tags["tags"]
        assert pulled["reference"] == f"{registry}/demo/app:1.0"
        assert pulled["id"] == job["result"]["ids"][0]

        assert labelled(harness, "ps") == [] and labelled(harness, "images") == []
    finally:
        subprocess.run(
            [str(ROOT / "scripts" / "walkthrough-setup.sh"), "--remove"],
            env=shell_env,
            capture_output=True,
            timeout=120,
        )
