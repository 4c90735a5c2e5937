"""The use cases are written once in app/services; views only parse, call and render them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.errors import ValidationFailed
from app.services.image_import import plan_import
from app.services.pull import plan_pull, plan_pull_by_digest

ROUTES = Path(__file__).resolve().parents[2] / "app" / "http" / "routes"
# Engine calls that belong to a use case of app/services, never to a view.
USE_CASE_CALLS = {"pull_image", "pulled_image", "push_stream", "load_images", "import_image"}
DIGEST = "sha256:" + "a" * 64


def test_a_bare_name_pulls_latest_and_is_known_by_its_familiar_name():
    plan = plan_pull("docker.io/library/busybox")
    assert (plan.registry, plan.repository, plan.tag) == (
        "docker.io",
        "docker.io/library/busybox",
        "latest",
    )
    assert plan.local_name == "busybox:latest"


def test_a_digest_reference_pulls_by_digest():
    plan = plan_pull(f"127.0.0.1:5000/team/app@{DIGEST}", platform="linux/amd64")
    assert plan.registry == "127.0.0.1:5000"
    assert plan.tag == DIGEST
    assert plan.local_name == f"127.0.0.1:5000/team/app@{DIGEST}"
    assert plan.platform == "linux/amd64"


def test_a_distribution_target_pulls_what_was_pushed_by_digest():
    plan = plan_pull_by_digest("127.0.0.1:5000", "127.0.0.1:5000/team/app", DIGEST)
    assert (plan.tag, plan.local_name) == (DIGEST, f"127.0.0.1:5000/team/app@{DIGEST}")
    assert plan.platform is None


def test_an_import_is_refused_before_the_body_is_read():
    with pytest.raises(ValidationFailed):
        plan_import("team/app", ["RUN rm -rf /"], None)
    plan = plan_import("team/app", ["ENV A=1"], "from a tar")
    assert str(plan.reference) == "team/app:latest"
    assert plan.changes == ["ENV A=1"]
    assert plan_import(None, [], None).reference is None


def _calls_and_imports(path: Path) -> tuple[set[str], set[str]]:
    tree = ast.parse(path.read_text())
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    imports = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    return calls, imports


@pytest.mark.parametrize("path", sorted(ROUTES.glob("*.py")), ids=lambda p: p.name)
def test_views_call_the_use_cases_and_not_each_other(path):
    calls, imports = _calls_and_imports(path)
    assert not calls & USE_CASE_CALLS, f"{path.name} drives the engine itself"
    if path.name != "__init__.py":
        assert not {m for m in imports if m.startswith("app.http.routes")}, path.name
