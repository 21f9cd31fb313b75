#!/usr/bin/env bash
# The API against its own description: schemathesis (from PyPI, in a virtualenv under target/)
# sends requests made from docs/openapi.json to a real daemon, and fails on a 5xx, an answer
# that does not fit the schema, or a request the schema forbids that is not refused. Bounded in
# time. Usage: tests/api/schemathesis.sh ENGINE_BINARY
set -euo pipefail
cd "$(dirname "$0")/../.."
engine="$1"
config="$PWD/tests/api/schemathesis.toml"
target="${CARGO_TARGET_DIR:-target}"
venv="$target/schemathesis-venv"
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==4.32.5"
fi

work="$(mktemp -d)"
trap 'kill "$daemon" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/hello.pipe" <<'PIPE'
pipeline hello {
  param name: string = "world"
  step greet { run "echo hello {params.name} > {out}/greeting" }
}
PIPE
"$engine" daemon --dir "$work" --state "$work/.engine" --listen 127.0.0.1:0 >/dev/null 2>"$work/daemon.log" &
daemon=$!
for _ in $(seq 100); do
  grep -q "pipeline loaded" "$work/daemon.log" && break
  sleep 0.1
done
address="$(sed -n 's/.*listen=\([0-9.:]*\).*/\1/p' "$work/daemon.log" | head -1)"
token="$(cat "$work/.engine/api-token")"
# A run to read, cancel, resume, rerun and retry.
python3 - "$address" "$token" <<'PY'
import sys, urllib.request
address, token = sys.argv[1:]
request = urllib.request.Request(f"http://{address}/pipelines/hello/trigger", method="POST",
                                 headers={"Authorization": f"Bearer {token}"})
urllib.request.urlopen(request).read()
PY

# From the temp dir, where schemathesis keeps what it finds.
venv="$(cd "$venv" && pwd)"
cd "$work"
timeout 600 "$venv/bin/st" --config-file "$config" run "http://$address/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks all \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-25}" \
  --request-timeout 10 \
  --generation-deterministic
