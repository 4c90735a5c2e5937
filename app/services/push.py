"""Pushing one tag: what to push, doing it, and proving the registry has it.

A push is successful only when the registry accepted the manifest: the engine's stream must end
with the manifest digest, and where Berth can reach the registry itself, the registry must serve
that tag. The digest returned is the registry's own (``Docker-Content-Digest``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.domain.progress import Progress
from app.domain.references import Reference, hub_api_path, is_image_id, without_digest
from app.errors import (
    BerthError,
    ManifestUnknown,
    RegistryError,
    ValidationFailed,
)
from app.registry.addresses import is_docker_hub
from app.registry.client import RegistryClient
from app.services.local_tags import lent_names, tag_for

log = logging.getLogger("berth.push")
NO_DIGEST_TARGET = "A push target cannot carry a digest; give a tag."


@dataclass(frozen=True)
class PushPlan:
    """``source`` (as the caller named the image) pushed as ``reference`` (always tagged)."""

    source: str
    reference: Reference
    retag: bool

    @property
    def registry(self) -> str:
        return self.reference.registry

    @property
    def repository(self) -> str:
        """The repository as the engine names it."""
        return self.reference.repository

    @property
    def tag(self) -> str:
        assert self.reference.tag is not None
        return self.reference.tag

    @property
    def registry_path(self) -> str:
        """The repository as the registry's API names it."""
        path = self.reference.path
        return hub_api_path(path) if is_docker_hub(self.registry) else path


def plan_push(ref: str, target: str | None) -> PushPlan:
    """Decide what to push; raises 400 errors for what cannot be pushed (no side effects)."""
    if target:
        reference = without_digest(target, NO_DIGEST_TARGET, ValidationFailed)
        return PushPlan(ref, reference.with_default_tag(), retag=True)
    if is_image_id(ref):
        raise ValidationFailed(
            "An image id names no repository: give 'target' (e.g. 'registry:5000/team/app:1.0')."
        )
    reference = without_digest(
        ref,
        "A digest cannot be pushed to: push a tag, or give 'target' to tag the image first.",
        ValidationFailed,
    )
    return PushPlan(ref, reference.with_default_tag(), retag=False)


def prepare(engine: Any, plan: PushPlan) -> str:
    """Check the image exists (404 IMAGE_NOT_FOUND); its id. Nothing is tagged here."""
    source = plan.source if plan.retag else str(plan.reference)
    return engine.inspect_image_raw(source)["Id"]


class TargetPush:
    """The engine's push of ``plan``'s image under the target name, as a progress stream.

    Nothing happens until it is read: then the target name is lent to the image
    (``app.services.local_tags``), the push starts, and when the stream ends, fails, is closed or
    aborted, every local tag is as it was. ``abort()`` may be called from any thread.
    """

    def __init__(self, engine: Any, plan: PushPlan, image_id: str, auth: dict | None) -> None:
        self._engine, self._plan, self._image_id, self._auth = engine, plan, image_id, auth
        self._lock = threading.Lock()
        self._events: Any = None
        self._aborted = False
        self._iterator = self._run()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._iterator

    def _run(self) -> Iterator[dict[str, Any]]:
        plan, engine = self._plan, self._engine
        names = [str(plan.reference)] if plan.retag else []
        with lent_names(engine, self._image_id, names, keep_new=False):
            tag_for(engine, self._image_id, names)
            with self._lock:
                if self._aborted:
                    return
                self._events = engine.push_stream(plan.repository, plan.tag, self._auth)
            try:
                yield from self._events
            finally:
                self._events.close()

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            events = self._events
        if events is not None:
            events.abort()

    def close(self) -> None:
        """End the push (if it runs) and give the local names back; call from the reader."""
        self._iterator.close()


class Push:
    """One push on one engine: the image is checked now, the push starts when ``events()`` is
    read, and ``outcome`` says whether the registry really has it. ``auth`` goes to the engine
    for this call only; ``verifier`` (a v2 client, or None) asks the registry afterwards."""

    def __init__(
        self,
        engine: Any,
        plan: PushPlan,
        auth: dict[str, Any] | None,
        verifier: RegistryClient | None = None,
    ) -> None:
        self.engine, self.plan, self._auth, self._verifier = engine, plan, auth, verifier
        self.image_id = prepare(engine, plan)  # 404 IMAGE_NOT_FOUND before anything starts

    def events(self) -> TargetPush:
        return TargetPush(self.engine, self.plan, self.image_id, self._auth)

    @staticmethod
    def progress() -> Progress:
        return Progress()

    def outcome(self, progress: Progress) -> dict[str, Any]:
        return outcome(self.plan, self.image_id, progress, self._verifier)


def outcome(
    plan: PushPlan, image_id: str, progress: Progress, verifier: RegistryClient | None
) -> dict[str, Any]:
    """The push result, only if the registry accepted the manifest; else a BerthError."""
    progress.raise_for_error()
    if not progress.digest:
        last = progress.messages[-1] if progress.messages else "nothing"
        raise RegistryError(
            f"The engine ended the push without a manifest digest (last said: {last}); "
            "the registry did not confirm the image."
        )
    digest = progress.digest
    if verifier is not None:
        try:
            served = verifier.manifest_digest(plan.registry_path, plan.tag)
        except ManifestUnknown:
            raise RegistryError(
                f"The push ended, but {plan.registry} does not serve {plan.registry_path}:"
                f"{plan.tag}."
            ) from None
        except BerthError as e:  # Berth cannot check (unreachable from here, no pull right)
            log.info("push of %s not verified: %s", plan.reference, e.code)
        else:
            if served != digest:
                log.warning(
                    "push of %s: the engine reported %s, the registry serves %s",
                    plan.reference,
                    digest,
                    served,
                )
            digest = served
    return {
        "reference": str(plan.reference),
        "digest": digest,
        "size": progress.size,
        "id": image_id,
    }
