"""The per-process services ``create_app`` builds once, reached through one typed accessor.

    services().jobs.submit(...)          # in a view, a hook, a streamed body
    services(app).engines.close()        # given the app (tests, start-up)

Nothing is created on first use: a service that is not here does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, g, has_request_context

if TYPE_CHECKING:
    from app.engine import Engine, EnginePool
    from app.http.auth import Authorizer
    from app.http.routes.events import EventStreams
    from app.http.transfers import TransferSlots
    from app.jobs import JobRunner
    from app.observability.audit import AuditLog
    from app.registry.credentials import CredentialStore
    from app.registry.policy import OutboundPolicy
    from app.registry.tokens import TokenCache

_KEY = "berth.services"


@dataclass(frozen=True)
class Services:
    """Everything a request may need beyond its own input, one of each per app and process."""

    engines: EnginePool  # the configured Docker engines (connections opened on first use)
    outbound: OutboundPolicy  # every registry, search index and token realm passes it first
    authorizer: Authorizer  # bearer tokens → callers, scopes and engines (both request paths)
    jobs: JobRunner  # background pull, push, load and distributions
    credentials: CredentialStore  # BERTH_REGISTRY_AUTH_FILE, re-read when it changes
    registry_tokens: TokenCache  # bearer tokens registries gave this process
    audit: AuditLog  # one record per mutating call
    transfers: TransferSlots  # the bounded share of threads archive transfers may hold
    metrics_collectors: tuple[Any, ...] = ()  # read at scrape time (jobs by state)
    events: EventStreams | None = None  # engine and job events for GET /v1/events

    def install(self, app: Flask) -> None:
        app.extensions[_KEY] = self


def services(app: Flask | None = None) -> Services:
    """The services of ``app`` (default: the current one)."""
    return (app if app is not None else current_app).extensions[_KEY]


def get_engine(name: str | None = None) -> Engine:
    """The engine named ``name``, else the request's ``?engine=``, else the default one.

    Created on first use, once per process. ``@operation`` has already checked that the engine
    exists and that the caller's token may use it.
    """
    if name is None and has_request_context():
        name = g.get("engine_name")
    return services().engines.get(name)
