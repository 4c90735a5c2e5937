"""Which process runs a job, and whether that process is still alive.

A job records its worker as (host id, pid, pid start time). The host id joins the host name and
the kernel's boot id, so a reboot never makes an old pid look alive; the start time (from
``/proc``) tells a recycled pid from the worker that held it. Zombies count as dead.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def host_id() -> str:
    """This machine, this boot."""
    try:
        boot = _BOOT_ID.read_text().strip()
    except OSError:
        boot = "unknown-boot"
    return f"{socket.gethostname()}/{boot}"


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0]), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return []
    return text[text.rfind(")") + 2 :].split()


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (None where /proc is missing)."""
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def is_alive(pid: int, started: str | None = None) -> bool:
    """True when ``pid`` runs, is not a zombie and (if known) started at ``started``."""
    if pid <= 0:
        return False
    fields = _proc_stat(pid)
    if fields is None:
        return False
    if fields:
        if fields[0] in ("Z", "X", "x"):
            return False
        if started is not None and len(fields) > 19 and fields[19] != started:
            return False
        return True
    try:  # no readable /proc: ask the kernel whether the pid exists
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Worker:
    host: str
    pid: int
    started: str | None

    @classmethod
    def current(cls) -> Worker:
        pid = os.getpid()
        return cls(host_id(), pid, process_start(pid))
