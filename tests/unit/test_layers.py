"""The direction of imports inside ``app/``, read from the source (no engine, nothing imported).

Rooms are ranked; a module may import its own room and the rooms below it, never one above:
config/errors < domain < observability < engine = registry < jobs < services < http < server.
``app/__init__.py`` (the factory) wires every room but ``server``, which no app module imports.
docker-py is imported only in ``app/engine``, Flask and werkzeug only in ``app/http`` and the
factory. And no module reaches itself again through its imports (imports inside functions count;
those only a type checker reads do not).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"
RANK = {
    "config": 0,
    "errors": 0,
    "domain": 1,
    "observability": 2,
    "engine": 3,
    "registry": 3,
    "jobs": 4,
    "services": 5,
    "http": 6,
    "server": 7,
}
FACTORY = "app"
THIRD_PARTY_ROOMS = {
    "docker": {"engine"},
    "flask": {"http", FACTORY},
    "werkzeug": {"http", FACTORY},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in sorted(APP.rglob("*.py"))}


def room(module: str) -> str:
    """``app`` for the factory, else the first name under ``app``."""
    parts = module.split(".")
    return FACTORY if len(parts) == 1 else parts[1]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (relative ones resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".")
    if not MODULES[module].name == "__init__.py":
        package = package[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str) -> list[tuple[str, bool]]:
    """(imported module, only for type checkers) for every import in ``module``; for ``from m
    import x``, ``m.x`` when that is a module of app, else ``m``."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for grandchild in child.body:
                    visit_one(grandchild, True)
                for grandchild in child.orelse:
                    visit_one(grandchild, typing_only)
                continue
            visit_one(child, typing_only)

    def visit_one(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, typing_only) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((sub if sub in MODULES else target, typing_only))
        visit(node, typing_only)

    visit(ast.parse(MODULES[module].read_text()), False)
    return found


GRAPH = {module: imports(module) for module in MODULES}


def test_every_module_lives_in_a_ranked_room():
    assert [m for m in MODULES if room(m) not in RANK and m != FACTORY] == []


def test_no_room_imports_a_higher_one():
    wrong = []
    for module, targets in GRAPH.items():
        mine = room(module)
        for target, _ in targets:
            if target != FACTORY and not target.startswith(FACTORY + "."):
                continue
            theirs = room(target)
            if mine == FACTORY:
                allowed = theirs != "server"
            else:
                allowed = theirs != FACTORY and RANK[theirs] <= RANK[mine]
            if not allowed:
                wrong.append(f"{module} ({mine}) imports {target} ({theirs})")
    assert wrong == []


@pytest.mark.parametrize("package", sorted(THIRD_PARTY_ROOMS))
def test_third_party_frameworks_stay_in_their_rooms(package):
    rooms = THIRD_PARTY_ROOMS[package]
    wrong = [
        module
        for module, targets in GRAPH.items()
        if room(module) not in rooms
        and any(t == package or t.startswith(package + ".") for t, _ in targets)
    ]
    assert wrong == [], f"{package} imported outside {sorted(rooms)}"


def test_no_import_cycle():
    edges = {
        module: sorted({t for t, typing_only in targets if t in MODULES and not typing_only})
        for module, targets in GRAPH.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in edges[module]:
            if state.get(target) == 1:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in state:
                walk(target)
        path.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            walk(module)
    assert [" -> ".join(cycle) for cycle in cycles] == []


def test_the_checks_see_what_they_check():
    """A guard against a check that passes by reading nothing."""
    assert len(MODULES) > 50
    assert ("app.errors", False) in GRAPH["app.http.problems"]
    assert ("flask", False) in GRAPH["app.http.problems"]
    assert any(t == "docker" for t, _ in GRAPH["app.engine.base"])
    assert ("app.engine", True) in GRAPH["app.http.accessors"]  # typing-only, still ranked
