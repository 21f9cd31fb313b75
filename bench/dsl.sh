#!/usr/bin/env bash
# Measures how fast `engine check` (parse + check + lower) and `engine fmt` handle very large
# pipelines: generates pipelines of 10,000 and 100,000 steps with bench/gen_pipeline.py, runs the
# release binary on each several times, and prints the best wall time and peak RSS beside the goals.
#
# usage: bench/dsl.sh            (from any directory)
# env:   RUNS=3                  runs per measurement; the best (lowest) wall time and RSS are shown
#        STEPS="10000 100000"    sizes to generate; the 100k/10k ratio needs both
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/bench/out"
runs="${RUNS:-3}"
read -r -a sizes <<< "${STEPS:-10000 100000}"

# Goals, printed beside the figures.
goal_10k_ms=200
goal_100k_ms=2500
goal_100k_mb=200

cd "$root"
echo "building the release binary..." >&2
cargo build --release --quiet -p engine
engine="${CARGO_TARGET_DIR:-$root/target}/release/engine"
mkdir -p "$out"

# measure CMD...: runs CMD once, prints "WALL_SECONDS PEAK_KB"; fails (printing CMD's stderr) if CMD fails.
if [ -x /usr/bin/time ]; then
  measure() {
    local log="$out/time.log" err="$out/stderr.log"
    if ! /usr/bin/time -o "$log" -f '%e %M' "$@" > /dev/null 2> "$err"; then
      echo "failed: $*" >&2
      cat "$err" >&2
      return 1
    fi
    tail -n 1 "$log"
  }
else
  echo "note: /usr/bin/time is missing (apt-get install time); measuring with python's resource module" >&2
  measure() {
    python3 - "$@" <<'EOF'
import resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - start
if done.returncode != 0:
    sys.stderr.write(f"failed: {' '.join(sys.argv[1:])}\n" + done.stderr.decode(errors="replace"))
    sys.exit(1)
print(f"{wall:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
EOF
  }
fi

# best_of CMD...: runs CMD $runs times, prints "BEST_WALL_MS BEST_PEAK_MB".
best_of() {
  local results=() i
  for ((i = 0; i < runs; i++)); do
    results+=("$(measure "$@")")
  done
  printf '%s\n' "${results[@]}" | awk '
    NR == 1 || $1 < wall { wall = $1 }
    NR == 1 || $2 < rss { rss = $2 }
    END { printf "%.0f %.1f\n", wall * 1000, rss / 1024 }'
}

verdict() { # verdict VALUE GOAL -> "ok" or "MISSED"
  awk -v v="$1" -v g="$2" 'BEGIN { print (v + 0 < g + 0) ? "ok" : "MISSED" }'
}

declare -A wall_ms peak_mb
printf '\n%-8s %10s %10s %10s %14s   %s\n' "steps" "file MB" "wall ms" "peak MB" "ms/1000 steps" "goal"
for n in "${sizes[@]}"; do
  file="$out/pipeline-$n.pipe"
  python3 "$root/bench/gen_pipeline.py" --steps "$n" --out "$file"
  read -r ms mb < <(best_of "$engine" check "$file")
  wall_ms[$n]=$ms
  peak_mb[$n]=$mb
  size_mb=$(awk -v b="$(wc -c < "$file")" 'BEGIN { printf "%.1f", b / 1e6 }')
  per_k=$(awk -v ms="$ms" -v n="$n" 'BEGIN { printf "%.1f", ms / (n / 1000) }')
  goal=""
  case "$n" in
    10000) goal="< ${goal_10k_ms} ms: $(verdict "$ms" "$goal_10k_ms")" ;;
    100000) goal="< ${goal_100k_ms} ms: $(verdict "$ms" "$goal_100k_ms"), peak < ${goal_100k_mb} MB: $(verdict "$mb" "$goal_100k_mb")" ;;
  esac
  printf '%-8s %10s %10s %10s %14s   %s\n' "$n" "$size_mb" "$ms" "$mb" "$per_k" "$goal"
done

if [ -n "${wall_ms[10000]:-}" ] && [ -n "${wall_ms[100000]:-}" ]; then
  ratio=$(awk -v a="${wall_ms[100000]}" -v b="${wall_ms[10000]}" 'BEGIN { printf "%.1f", (b > 0) ? a / b : 0 }')
  echo "time 100k / 10k: $ratio (linear scaling is about 10)"
fi

# `engine fmt` on the 10k file, on a copy so the generated file stays as generated.
if [ -f "$out/pipeline-10000.pipe" ]; then
  cp "$out/pipeline-10000.pipe" "$out/fmt-10000.pipe"
  read -r ms mb < <(best_of "$engine" fmt "$out/fmt-10000.pipe")
  echo "engine fmt, 10000 steps: ${ms} ms, peak ${mb} MB"
fi
