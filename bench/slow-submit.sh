#!/usr/bin/env bash
# Measures whether a slow SLURM controller holds up local tasks. A pipeline has one SLURM step
# (first to start: priority 10) and a fan of local steps; an `sbatch` ahead of the real one on
# PATH takes DELAY seconds to answer. The same fan runs once more without the SLURM step, as the
# reference. If submission blocked the run loop, the fan would finish DELAY seconds later than
# the reference; the figure is the ratio of the two fan times, and how many local tasks ended
# before `sbatch` answered. It needs the one-node SLURM cluster of tests/slurm/cluster.sh (as
# root); it is not a test (it exits 0 whatever the figures).
#
# usage: bench/slow-submit.sh           (from any directory)
# env:   DELAY=2      seconds sbatch takes to answer
#        LOCAL=20     local tasks, each `sleep 0.1`, 2 at a time
#        RUNS=3       runs of each; the best is shown
set -euo pipefail
export LC_ALL=C

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$root/bench/out/slow-submit"
delay="${DELAY:-2}"
local_tasks="${LOCAL:-20}"
runs="${RUNS:-3}"
say() { echo "slow-submit.sh: $*" >&2; }

bash "$root/tests/slurm/cluster.sh"
say "building the release engine"
(cd "$root" && cargo build --release --quiet -p engine)
engine="${CARGO_TARGET_DIR:-$root/target}/release/engine"
case "$engine" in /*) ;; *) engine="$root/$engine" ;; esac
real_sbatch="$(command -v sbatch)"

rm -rf "$work"
mkdir -p "$work/bin"
cat > "$work/bin/sbatch" <<SH
#!/bin/sh
sleep $delay
date +%s%N >> '$work/answered'
exec '$real_sbatch' "\$@"
SH
chmod +x "$work/bin/sbatch"

# pipeline FILE WITH_SLURM: the fan of local steps, and the SLURM step when asked.
pipeline() {
  {
    echo "pipeline fan {"
    if [ "$2" = 1 ]; then
      printf '  step remote {\n    executor slurm\n    priority 10\n    run "echo remote > {out}/r"\n  }\n'
    fi
    for i in $(seq 1 "$local_tasks"); do
      echo "  step l$i { run \"sleep 0.1; date +%s%N > {out}/t\" }"
    done
    echo "}"
  } > "$1"
}

# run_fan WITH_SLURM: prints the fan's time (from the run's start to the last local task's end,
# in ms) and how many local tasks ended before sbatch answered.
run_fan() {
  local dir="$work/run"
  rm -rf "$dir" "$work/answered"
  mkdir -p "$dir"
  pipeline "$dir/fan.pipe" "$1"
  local start
  start=$(date +%s%N)
  (cd "$dir" && PATH="$work/bin:$PATH" "$engine" run fan.pipe --jobs 2 --slurm-poll=200ms > /dev/null 2>&1)
  local last=0 before=0 answered=""
  [ -f "$work/answered" ] && answered=$(cat "$work/answered")
  for t in "$dir"/out/fan/l*/_all/t; do
    local at
    at=$(cat "$t")
    [ "$at" -gt "$last" ] && last=$at
    if [ -n "$answered" ] && [ "$at" -lt "$answered" ]; then before=$((before + 1)); fi
  done
  echo "$(( (last - start) / 1000000 )) $before"
}

best() { # best WITH_SLURM: the lowest fan time of RUNS runs, with its count
  local best_ms="" best_before=0
  for _ in $(seq 1 "$runs"); do
    read -r ms before < <(run_fan "$1")
    if [ -z "$best_ms" ] || [ "$ms" -lt "$best_ms" ]; then best_ms=$ms; best_before=$before; fi
  done
  echo "$best_ms $best_before"
}

read -r with_ms with_before < <(best 1)
read -r without_ms _ < <(best 0)
ratio=$(awk -v a="$with_ms" -v b="$without_ms" 'BEGIN { printf "%.2f", a / b }')
echo "local fan of $local_tasks tasks (sleep 0.1, --jobs 2), sbatch answering after ${delay}s"
echo "  with the SLURM step:    ${with_ms} ms; $with_before of $local_tasks local tasks ended before sbatch answered"
echo "  without it (reference): ${without_ms} ms"
echo "  ratio: ${ratio}x (goal: about 1; blocking submission would add ${delay}s)"
