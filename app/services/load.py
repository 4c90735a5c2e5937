"""Loading images from an archive (``docker load``), and knowing what was really loaded.

The engine reads the archive as it arrives and reports in its progress stream what it loaded
(``Loaded image: name:tag`` or ``Loaded image ID: sha256:...``) or why it could not; a failure
there is classified (``INVALID_ARCHIVE`` for a body that is no image archive). Used by
``POST /v1/archives`` (direct, NDJSON or job) and by distributions streamed to their targets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from app.domain.progress import Progress
from app.domain.tar_framing import (
    LoadReport,
    classify_archive_error,
    parse_load_messages,
    unique_in_order,
)
from app.errors import InvalidArchive


class Load:
    """One ``docker load`` of ``body`` (chunks) on one engine.

    ``length`` is the body's size when known (else it goes chunked); ``quiet`` leaves the
    per-layer progress out of the engine's stream.
    """

    def __init__(
        self, engine: Any, body: Iterable[bytes], *, length: int | None = None, quiet: bool = True
    ) -> None:
        self.engine, self._body, self._length, self._quiet = engine, body, length, quiet

    def events(self) -> Iterator[dict[str, Any]]:
        """Send the archive; the engine's events (the whole body is sent before they come)."""
        return self.engine.load_images(self._body, length=self._length, quiet=self._quiet)

    @staticmethod
    def progress() -> Progress:
        return Progress(classify=classify_archive_error)

    def image_ids(self, progress: Progress) -> list[str]:
        """The ids of the images loaded, from what the engine reported (names resolved now)."""
        progress.raise_for_error()
        return self._ids(parse_load_messages(progress.messages))

    def outcome(self, progress: Progress) -> dict[str, Any]:
        """``{"loaded": [references], "ids": [ids]}``; 400 INVALID_ARCHIVE when nothing was."""
        progress.raise_for_error()
        report = parse_load_messages(progress.messages)
        if report.empty:
            raise InvalidArchive("The archive holds no image: the engine loaded nothing.")
        return {"loaded": report.references, "ids": unique_in_order(self._ids(report))}

    def _ids(self, report: LoadReport) -> list[str]:
        return self.engine.resolve_image_ids(report.references) + report.image_ids
