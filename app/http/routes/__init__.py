"""Blueprints, one per resource. ``BLUEPRINTS`` is what ``create_app`` registers under /v1."""

from app.http.routes.archives import bp as archives_bp
from app.http.routes.audit import bp as audit_bp
from app.http.routes.containers import bp as containers_bp
from app.http.routes.distributions import bp as distributions_bp
from app.http.routes.engines import bp as engines_bp
from app.http.routes.events import bp as events_bp
from app.http.routes.health import bp as health_bp
from app.http.routes.images import bp as images_bp
from app.http.routes.jobs import bp as jobs_bp
from app.http.routes.lifecycle import bp as lifecycle_bp
from app.http.routes.push import bp as push_bp
from app.http.routes.registries import bp as registries_bp
from app.http.routes.search import bp as search_bp
from app.http.routes.token import bp as token_bp

BLUEPRINTS = [health_bp, images_bp, search_bp, containers_bp, engines_bp, audit_bp, archives_bp]
BLUEPRINTS += [push_bp, registries_bp, jobs_bp]
BLUEPRINTS += [lifecycle_bp]
BLUEPRINTS += [distributions_bp]
BLUEPRINTS += [events_bp]
BLUEPRINTS += [token_bp]
