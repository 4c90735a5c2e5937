#!/usr/bin/env python3
"""The container's HEALTHCHECK: exit 0 when /v1/health answers 200 where gunicorn listens.

The address is BERTH_BIND's (a wildcard host is asked on loopback); HTTPS when BERTH_TLS_CERT
is set, since gunicorn then serves TLS itself. The certificate is not verified: the question is
only whether this server answers, not who it is. Standard library only, so it starts fast.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.request

WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "[::1]"}


def health_url(bind: str, tls: bool) -> str:
    """The URL of /v1/health for gunicorn's ``bind`` address (``host:port``, ``[v6]:port``)."""
    host, _, port = bind.strip().rpartition(":")
    return f"{'https' if tls else 'http'}://{WILDCARDS.get(host, host)}:{port}/v1/health"


def main() -> int:
    tls = bool(os.environ.get("BERTH_TLS_CERT"))
    url = health_url(os.environ.get("BERTH_BIND", "127.0.0.1:8080"), tls)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(url, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except OSError as err:
        print(f"{url}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
