"""Berth: Docker image operations behind a secure, documented HTTP API.

``create_app(config=None)`` builds the whole service: configuration (from the environment unless
a dict is given, as tests do), logging, the services (each built once here and reached through
``app.http.accessors.services()``), blueprints, error handlers and the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from app.config import DEFAULTS, docker_environment, load_config, validate_config
from app.engine import pool_from_config
from app.http.access_log import init_request_logging
from app.http.accessors import Services
from app.http.auditing import init_audit
from app.http.auth import init_auth
from app.http.cached_reads import CachedReads
from app.http.cors import init_cors
from app.http.engine_api.routes import bp as engine_api_bp
from app.http.openapi import init_openapi
from app.http.paths import reserved_image_words
from app.http.problems import register_error_handlers
from app.http.routes import BLUEPRINTS
from app.http.routes.events import init_events
from app.http.routes.metrics import bp as metrics_bp
from app.http.scopes import ROUTES
from app.http.transfers import init_transfers
from app.http.ui import bp as ui_bp
from app.jobs import runner_from_config
from app.observability.logs import configure_logging
from app.observability.metrics import ByteCountingMiddleware, JobsCollector
from app.registry.credentials import CredentialStore
from app.registry.policy import OutboundPolicy
from app.registry.tokens import TokenCache
from app.services.events import EventHub

__version__ = "0.1.0"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build a Berth app; ``config`` (tests) overrides what the environment says."""
    app = Flask(__name__, static_folder=None)
    settings = load_config() if config is None else {**DEFAULTS, **config}
    validate_config(settings)
    app.config.update(settings)
    # OPTIONS is not part of the API: only CORS preflights are answered (app.http.cors); 405
    # answers list the documented methods only.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.json.sort_keys = False
    configure_logging(app.config["BERTH_LOG_LEVEL"])

    init_request_logging(app)
    init_cors(app)  # its preflight answer comes before the token check
    app.extensions["berth.routes"] = dict(ROUTES)  # the scope of every route (app.http.scopes)
    jobs = runner_from_config(app.config)
    engines = pool_from_config(app.config, docker_environment(app.config))
    Services(
        engines=engines,
        outbound=OutboundPolicy.from_config(app.config),
        authorizer=init_auth(app),
        jobs=jobs,
        credentials=CredentialStore(app.config.get("BERTH_REGISTRY_AUTH_FILE")),
        registry_tokens=TokenCache(),
        audit=init_audit(app),
        transfers=init_transfers(app),
        metrics_collectors=(JobsCollector(jobs.store.count_by_state),),
        events=init_events(app, EventHub(engines.follow_events, jobs.store.changed_since)),
    ).install(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint, url_prefix="/v1")
    app.register_blueprint(metrics_bp)
    app.register_blueprint(engine_api_bp)  # /engines/<engine>/: Docker's clients, images only
    app.register_blueprint(ui_bp)  # /ui/: the reference portal, static files on the public API
    app.wsgi_app = CachedReads(app, ByteCountingMiddleware(app.wsgi_app))
    app.extensions["berth.reserved_image_words"] = reserved_image_words(app)
    register_error_handlers(app)
    init_openapi(app, __version__)
    return app
