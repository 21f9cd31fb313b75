#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need on a fresh machine, then
# checks formatting and lints, and runs every test (unit, snapshot, property, end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."

# Toolchain components the checks use (present on most machines; cheap when they are).
if ! cargo fmt --version >/dev/null 2>&1; then rustup component add rustfmt; fi
if ! cargo clippy --version >/dev/null 2>&1; then rustup component add clippy; fi

# The SLURM executor's end-to-end tests need a real cluster: a one-node one on this machine.
echo "== slurm cluster"
bash tests/slurm/cluster.sh

# The web page's browser tests need Debian's chromium, Node.js 20 or later with npm, and
# playwright-core (tests/web/package-lock.json). Without them the run fails: never a silent skip.
echo "== browser test tools"
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: the browser tests need Debian's chromium at /usr/bin/chromium, and it cannot be installed here (that takes root and apt-get)" >&2
    exit 1
  fi
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
    echo "error: apt-get could not install chromium, which the browser tests need" >&2
    exit 1
  fi
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "error: the browser tests need Node.js 20 or later with npm (node or npm is missing)" >&2
  exit 1
fi
if [ "$(node -p 'Number(process.versions.node.split(".")[0])')" -lt 20 ]; then
  echo "error: the browser tests need Node.js 20 or later (playwright-core does); this is $(node --version)" >&2
  exit 1
fi
(cd tests/web && npm ci --no-audit --no-fund --loglevel=error)

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  # nextest does not run doctests.
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi

# The web page in a real browser, against the binary the tests above used.
echo "== browser tests"
cargo build -p engine --locked
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
(cd tests/web && ENGINE_BIN="$target/debug/engine" npm test)
echo "(screenshots of every page at 1280 and 390 px: target/web-screenshots/)"

# The API against docs/openapi.json: schemathesis, from PyPI, in a virtualenv (python3-venv).
echo "== API schema tests"
if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: the API schema tests need python3 with venv (Debian's python3-venv), and it cannot be installed here" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
SCHEMATHESIS_EXAMPLES=100 bash tests/api/schemathesis.sh "$target/debug/engine"
