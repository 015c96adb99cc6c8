#!/usr/bin/env bash
# Starts dev-registry on a free loopback port, waits for a leader, runs the py-consul
# conformance script against it, and always stops the registry again.
#
# Usage: run.sh [path/to/dev-registry]
#   Without an argument the registry runs through `cargo run -q -p dev-registry --`.
# Needs: python3 with py-consul 1.8.0 (pip install py-consul==1.8.0).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
workspace="$(cd "$here/../../.." && pwd)"

if ! python3 -c 'import consul' 2>/dev/null; then
  echo "run.sh: python module 'consul' missing; pip install py-consul==1.8.0" >&2
  exit 1
fi

if [[ $# -ge 1 ]]; then
  registry=("$1")
else
  registry=(cargo run -q --manifest-path "$workspace/Cargo.toml" -p dev-registry --)
fi

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
base="http://127.0.0.1:$port"
log="$(mktemp "${TMPDIR:-/tmp}/dev-registry-conformance.XXXXXX")"

"${registry[@]}" --bind 127.0.0.1 --port "$port" --min-check-interval 100ms >"$log" 2>&1 &
pid=$!

cleanup() {
  status=$?
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  if [[ $status -ne 0 ]]; then
    echo "--- dev-registry log ---" >&2
    cat "$log" >&2
  fi
  rm -f "$log"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Ready means a leader is known: a 200 whose body names one (§5.5 of the reference).
# Generous: without a binary argument this includes the build.
deadline=$((SECONDS + 600))
until leader="$(python3 - "$base" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/v1/status/leader", timeout=2) as response:
    body = response.read().decode()
if ":" not in body:
    sys.exit(1)
print(body)
PY
)"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "run.sh: dev-registry exited before it became ready" >&2
    exit 1
  fi
  if (( SECONDS > deadline )); then
    echo "run.sh: dev-registry not ready after 600s" >&2
    exit 1
  fi
  sleep 0.2
done
echo "dev-registry ready at $base (leader $leader)"

CONSUL_HTTP_ADDR="127.0.0.1:$port" python3 "$here/py_consul_check.py"
