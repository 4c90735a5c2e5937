"""One catalogue of error codes (``app/errors.py``): every code Berth sends is declared there once,
with one status and one title, and the rest of ``app/`` names codes through those classes.

Read from the source (no engine): keyword arguments ``code="..."`` and class attributes
``code = "..."`` anywhere in ``app/``.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from app import errors
from app.errors import BerthError, http_error

APP = Path(__file__).resolve().parents[2] / "app"
CATALOGUE = APP / "errors.py"


def catalogue() -> dict[str, list[type[BerthError]]]:
    """code → the classes of app.errors that declare it (BerthError, the base, excluded)."""
    found: dict[str, list[type[BerthError]]] = {}
    for cls in vars(errors).values():
        if inspect.isclass(cls) and issubclass(cls, BerthError) and cls is not BerthError:
            found.setdefault(cls.code, []).append(cls)
    return found


def _strings(node: ast.AST) -> list[str]:
    """The string constants an expression can evaluate to (a constant, or either side of an
    ``x if c else y``); [] for anything computed."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    return []


def literal_codes() -> list[tuple[str, int, str, str]]:
    """(file, line, how, code) for every code written as a literal in app/."""
    found = []
    for path in sorted(APP.rglob("*.py")):
        where = str(path.relative_to(APP.parent))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "code":
                found += [(where, node.value.lineno, "keyword", c) for c in _strings(node.value)]
            elif isinstance(node, ast.ClassDef):
                for statement in node.body:
                    if not isinstance(statement, ast.Assign):
                        continue
                    for target in statement.targets:
                        names = target.elts if isinstance(target, ast.Tuple) else [target]
                        values = (
                            statement.value.elts
                            if isinstance(statement.value, ast.Tuple)
                            else [statement.value]
                        )
                        for name, value in zip(names, values, strict=False):
                            if isinstance(name, ast.Name) and name.id == "code":
                                found += [
                                    (where, statement.lineno, "class", c) for c in _strings(value)
                                ]
    return found


def test_each_code_has_exactly_one_class_and_so_one_status_and_title():
    doubled = {code: [c.__name__ for c in classes] for code, classes in catalogue().items()}
    assert {code: names for code, names in doubled.items() if len(names) > 1} == {}
    for code, (cls,) in catalogue().items():
        assert code.isupper() and " " not in code, code
        assert cls.title, f"{cls.__name__} ({code}) has no title"
        assert 100 <= cls.status <= 599, cls


def test_every_code_used_in_app_is_declared_in_the_catalogue():
    declared = set(catalogue())
    undeclared = [entry for entry in literal_codes() if entry[3] not in declared]
    assert undeclared == []


def test_codes_are_named_through_their_class_outside_the_catalogue():
    """No ``code="..."`` passed ad hoc, no error class declared elsewhere: a new code is a new
    class in app/errors.py."""
    elsewhere = [entry for entry in literal_codes() if entry[0] != "app/errors.py"]
    assert elsewhere == []


def test_the_source_reader_sees_the_catalogue():
    """A guard against a check that passes by reading nothing."""
    in_catalogue = {code for where, _, _, code in literal_codes() if where == "app/errors.py"}
    assert {"IMAGE_NOT_FOUND", "MALFORMED_JSON", "ROUTE_CLOSED", "JOB_CANCELLED"} <= in_catalogue
    assert len(in_catalogue) >= len(catalogue()) - 1  # INTERNAL is BerthError's default too


def test_errors_has_no_flask():
    tree = ast.parse(CATALOGUE.read_text())
    modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in modules if m and m.split(".")[0] in ("flask", "werkzeug", "app")]


def test_statuses_werkzeug_raises_take_the_catalogue_class():
    assert type(http_error(405, "no")) is errors.MethodNotAllowed
    assert http_error(404, "no").to_problem()["title"] == errors.NotFound.title
    unlisted = http_error(416, "range")
    assert (unlisted.code, unlisted.status) == ("HTTP_416", 416)
