"""The log handler that writes lines from a thread of its own (app.observability.log_writer)."""

from __future__ import annotations

import io
import logging
import os
import threading

from app.observability.log_writer import BatchedLineHandler


class HeldStream(io.StringIO):
    """A stream whose writes wait until ``release`` is set, like a disk behind a busy journal."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.writing = threading.Event()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writing.set()
        assert self.release.wait(10), "the test never released the stream"
        self.writes.append(text)
        return super().write(text)


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("berth.test", logging.INFO, "", 0, message, None, None)


def emit_in_thread(handler: logging.Handler, messages: list[str]) -> threading.Thread:
    thread = threading.Thread(target=lambda: [handler.handle(record(m)) for m in messages])
    thread.start()
    return thread


def test_lines_wait_for_a_slow_write_in_one_batch_not_in_the_request_thread():
    stream = HeldStream()
    handler = BatchedLineHandler(stream)
    handler.handle(record("first"))
    assert stream.writing.wait(5)  # the writer thread is now held inside write()

    emitter = emit_in_thread(handler, [f"line {n}" for n in range(100)])
    emitter.join(5)
    assert not emitter.is_alive(), "a request thread waited for the held write"

    stream.release.set()
    handler.flush()
    assert stream.getvalue() == "first\n" + "".join(f"line {n}\n" for n in range(100))
    assert stream.writes == ["first\n", "".join(f"line {n}\n" for n in range(100))]
    handler.close()


def test_past_max_pending_a_request_thread_waits_and_no_line_is_dropped():
    stream = HeldStream()
    handler = BatchedLineHandler(stream, max_pending=5)
    handler.handle(record("first"))
    assert stream.writing.wait(5)

    emitter = emit_in_thread(handler, [f"line {n}" for n in range(8)])
    emitter.join(0.5)
    assert emitter.is_alive(), "more than max_pending lines were held in memory"

    stream.release.set()
    emitter.join(5)
    handler.flush()
    assert stream.getvalue().splitlines() == ["first"] + [f"line {n}" for n in range(8)]
    handler.close()


def test_lines_from_many_threads_arrive_whole_and_close_drains_them(tmp_path):
    path = tmp_path / "lines.log"
    with open(path, "w") as stream:
        handler = BatchedLineHandler(stream)
        threads = [emit_in_thread(handler, [f"t{t} n{n}" for n in range(500)]) for t in range(8)]
        for thread in threads:
            thread.join(10)
        handler.close()
        handler.handle(record("after close"))  # dropped, not written to a closed stream

    lines = path.read_text().splitlines()
    assert sorted(lines) == sorted(f"t{t} n{n}" for t in range(8) for n in range(500))
    for t in range(8):  # each thread's lines in the order it logged them
        assert [line for line in lines if line.startswith(f"t{t} ")] == [
            f"t{t} n{n}" for n in range(500)
        ]


def test_a_forked_child_writes_its_own_lines(tmp_path):
    # gunicorn forks its workers: a child must get a writer thread of its own, or its lines
    # would wait for a thread that only exists in the parent.
    path = tmp_path / "lines.log"
    with open(path, "w") as stream:
        handler = BatchedLineHandler(stream)
        handler.handle(record("parent before fork"))
        handler.flush()
        pid = os.fork()
        if pid == 0:  # the child
            handler.handle(record("child"))
            handler.flush()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        handler.handle(record("parent after fork"))
        handler.close()

    assert sorted(path.read_text().splitlines()) == [
        "child",
        "parent after fork",
        "parent before fork",
    ]
