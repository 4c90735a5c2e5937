#!/usr/bin/env bash
# Start the test harness (own dockerd + registries), run the whole suite, stop the harness.
# Extra arguments go to pytest. Needs root (dockerd); in CI a harness that fails is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
dir=$(mktemp -d -t berth-harness.XXXXXX)
stop() { "$PY" scripts/harness.py stop --dir "$dir" >/dev/null 2>&1 || true; }
trap stop EXIT
if ! "$PY" scripts/harness.py start --dir "$dir" --engines 3; then
    echo "The test harness could not start (see above); the engine suite cannot run." >&2
    exit 1
fi
# Berth's own registry client (and anything else in the tests) may reach loopback only.
export HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9
export NO_PROXY=127.0.0.1,localhost,::1,127.0.0.0/8
set +e
BERTH_TEST_HARNESS="$dir/harness.json" "$PY" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure here." >&2
    exit 1
fi
exit "$status"
