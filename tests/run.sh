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
