"""The reference portal at /ui/: static files shipped in this folder, built only on the public API.

The page holds no secret of its own: the person pastes a token, kept in the tab's sessionStorage,
and every call it makes is an ordinary API call with that bearer token. The pages themselves are
public (they contain no data) and are served with a strict Content-Security-Policy: scripts,
styles and connections to this origin only.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory

from app.errors import NotFound

STATIC = Path(__file__).resolve().parent
# Chart.js sets canvas sizes through element styles, hence 'unsafe-inline' for styles only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; form-action 'none'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
FILES = frozenset({"index.html", "app.js", "views.js", "charts.js", "style.css"})

bp = Blueprint("ui", __name__)


def _send(relative: str):
    response = send_from_directory(STATIC, relative, max_age=0)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/ui/")
def index():
    """The portal's page."""
    return _send("index.html")


@bp.get("/ui/<path:filename>")
def asset(filename: str):
    """The portal's scripts, styles and vendored libraries (nothing else in the folder)."""
    if filename not in FILES and not (
        filename.startswith("vendor/") and filename.endswith(".js") and filename.count("/") == 1
    ):
        raise NotFound("No such file in the portal.")
    return _send(filename)
