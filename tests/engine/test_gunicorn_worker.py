"""How Berth's gunicorn spreads connections over its workers (gunicorn.conf.py, reuse_port)."""

import socket

from tests.support.gunicorn import ESTABLISHED, LISTEN, gunicorn_server, tcp_sockets, wait_for
from tests.support.tokens import token_entries


def _ask_health(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(b"GET /v1/health HTTP/1.1\r\nHost: berth\r\n\r\n")
    return conn


def test_a_burst_of_kept_alive_connections_lands_on_every_worker(harness, tmp_path):
    # With one shared listening socket, whichever worker is awake may accept a whole burst and
    # serve it alone; a socket per worker lets the kernel spread the connections. Sixteen all on
    # one of two workers would happen once in 32,768 runs.
    env = {"DOCKER_HOST": harness["docker_host"], "BERTH_DATA_DIR": str(tmp_path)}
    with gunicorn_server(env, workers=2, threads=2, tokens=token_entries()) as server:
        assert wait_for(lambda: len(server.worker_pids()) == 2)
        workers = server.worker_pids()
        assert wait_for(lambda: all(tcp_sockets(pid, server.port, LISTEN) for pid in workers))
        conns = [_ask_health(server.port) for _ in range(16)]
        try:
            assert all(c.recv(4096).startswith(b"HTTP/1.1 200 OK") for c in conns)
            held = [len(tcp_sockets(pid, server.port, ESTABLISHED)) for pid in workers]
            assert sum(held) == 16 and all(held), held
        finally:
            for conn in conns:
                conn.close()


def test_without_reuse_port_the_workers_share_the_masters_socket(harness, tmp_path):
    env = {
        "DOCKER_HOST": harness["docker_host"],
        "BERTH_DATA_DIR": str(tmp_path),
        "BERTH_REUSE_PORT": "false",
    }
    with gunicorn_server(env, workers=2, tokens=token_entries()) as server:
        assert wait_for(lambda: len(server.worker_pids()) == 2)
        master = tcp_sockets(server.process.pid, server.port, LISTEN)
        assert len(master) == 1
        assert wait_for(
            lambda: all(
                tcp_sockets(pid, server.port, LISTEN) == master for pid in server.worker_pids()
            )
        )
