"""Blueprints, one per resource. ``BLUEPRINTS`` is what ``create_app`` registers under /v1."""

from app.api.archives import bp as archives_bp
from app.api.audit import bp as audit_bp
from app.api.containers import bp as containers_bp
from app.api.distributions import bp as distributions_bp
from app.api.engines import bp as engines_bp
from app.api.health import bp as health_bp
from app.api.images import bp as images_bp
from app.api.jobs import bp as jobs_bp
from app.api.lifecycle import bp as lifecycle_bp
from app.api.push import bp as push_bp
from app.api.registries import bp as registries_bp
from app.api.search import bp as search_bp

BLUEPRINTS = [health_bp, images_bp, search_bp, containers_bp, engines_bp, audit_bp, archives_bp]
BLUEPRINTS += [push_bp, registries_bp, jobs_bp]
BLUEPRINTS += [lifecycle_bp]
BLUEPRINTS += [distributions_bp]
