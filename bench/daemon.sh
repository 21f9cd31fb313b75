#!/usr/bin/env bash
# Measures `engine daemon`:
#
#   trigger latency  a continuous pipeline with cooldown 0 watches in/; FILES files land one at a
#                    time, GAP_MS apart; for each, the time from the file's mtime to the start of
#                    its task (the attempt's started_ms in the store). Prints p50, p90, p99, max.
#   idle CPU         a daemon watching PIPELINES continuous pipelines over TRACKED files in all,
#                    after their first runs, with nothing changing: CPU time used over IDLE_S
#                    seconds, as a share of one core (from /proc/PID/stat).
#
#   API throughput   GET /runs with wrk (Debian's package, installed if missing) on loopback.
#
# Goals printed beside the figures: p50 under 100 ms, p99 under 500 ms; idle under 1% of a core;
# over 5,000 requests/s with p99 under 20 ms.
# It is not a test: it exits 0 when a goal is missed.
#
# usage: bench/daemon.sh            (from any directory)
# env:   FILES=200 GAP_MS=150 PIPELINES=50 TRACKED=100000 IDLE_S=30
set -euo pipefail
export LC_ALL=C

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$root/bench/out/daemon"
files="${FILES:-200}"
gap_ms="${GAP_MS:-150}"
pipelines="${PIPELINES:-50}"
tracked="${TRACKED:-100000}"
idle_s="${IDLE_S:-30}"

say() { echo "daemon.sh: $*" >&2; }

cargo build --release -q -p engine --manifest-path "$root/Cargo.toml"
engine="${CARGO_TARGET_DIR:-$root/target}/release/engine"
rm -rf "$work"
mkdir -p "$work"

# start_daemon DIR: starts a daemon on DIR in the background; sets $daemon_pid.
start_daemon() {
  (cd "$1" && exec "$engine" daemon --listen 127.0.0.1:0 --grace 5 > daemon.log 2>&1) &
  daemon_pid=$!
  for _ in $(seq 100); do
    grep -q "daemon started" "$1/daemon.log" 2> /dev/null && return 0
    sleep 0.1
  done
  say "the daemon did not start:"; cat "$1/daemon.log" >&2; exit 1
}

stop_daemon() { kill -TERM "$daemon_pid" 2> /dev/null || true; wait "$daemon_pid" 2> /dev/null || true; }
trap stop_daemon EXIT

# --- trigger latency ---------------------------------------------------------------------------
lat="$work/latency"
mkdir -p "$lat/in"
cat > "$lat/watch.pipe" << 'EOF'
pipeline watch {
  trigger continuous cooldown 0s poll 1h

  source files {
    root "in"
    glob "*.txt"
    group file by regex "^(?P<file>[^/]+)[.]txt$"
  }

  step count each file {
    input files
    run "wc -c < {inputs} > {out}/n"
  }
}
EOF
start_daemon "$lat"
say "landing $files files, ${gap_ms} ms apart"
for i in $(seq -w 1 "$files"); do
  printf 'file %s\n' "$i" > "$lat/in/f$i.txt.part"
  mv "$lat/in/f$i.txt.part" "$lat/in/f$i.txt"   # lands whole, as a copy tool would
  sleep "$(awk -v ms="$gap_ms" 'BEGIN { print ms / 1000 }')"
done
for _ in $(seq 300); do
  done_count=$( (find "$lat/out/watch/count" -name n 2> /dev/null || true) | wc -l)
  [ "$done_count" -ge "$files" ] && break
  sleep 0.1
done
stop_daemon
runs=$(cd "$lat" && "$engine" runs --json --limit 100000 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
(cd "$lat" && python3 - "$engine" "$files" "$runs" << 'EOF'
import json, os, subprocess, sys
engine, files, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
latencies = []
for run in range(1, runs + 1):
    shown = json.loads(subprocess.run([engine, "show", str(run), "--json"], capture_output=True, text=True).stdout)
    for task in shown["tasks"]:
        if task["status"] != "succeeded":
            continue
        group = task["group"]
        mtime_ms = os.stat(f"in/{group}.txt").st_mtime_ns // 1_000_000
        started = task["attempts_detail"][0]["started_ms"]
        latencies.append(started - mtime_ms)
latencies.sort()
def pct(p):
    return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]
print(f"trigger latency over {len(latencies)} files ({runs} runs): p50 {pct(50)} ms, p90 {pct(90)} ms, "
      f"p99 {pct(99)} ms, max {latencies[-1]} ms   goal: p50 < 100 ms ({'ok' if pct(50) < 100 else 'MISSED'}), "
      f"p99 < 500 ms ({'ok' if pct(99) < 500 else 'MISSED'})")
EOF
)

# --- API throughput ----------------------------------------------------------------------------
# GET /runs (the newest 50 of the runs above, as JSON) from wrk on loopback.
if ! command -v wrk > /dev/null; then
  say "installing wrk"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get install -y -qq wrk > /dev/null 2>&1 || say "cannot install wrk: no API figures"
fi
if command -v wrk > /dev/null; then
  start_daemon "$lat"
  address=$(grep -o 'listen=[0-9.:]*' "$lat/daemon.log" | head -1 | cut -d= -f2)
  token=$(cat "$lat/.engine/api-token")
  wrk -t2 -c16 -d"${WRK_S:-10}"s --latency -H "Authorization: Bearer $token" "http://$address/runs" > "$work/wrk.txt"
  stop_daemon
  python3 - "$work/wrk.txt" << 'EOF'
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
def ms(label):
    value, unit = re.search(label + r"\s+([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
p99 = ms("99%")
print(f"API GET /runs (50 runs a page), wrk 2 threads 16 connections: {rps:.0f} requests/s, p50 {ms('50%'):.1f} ms, "
      f"p99 {p99:.1f} ms   goal: > 5000/s ({'ok' if rps > 5000 else 'MISSED'}), p99 < 20 ms ({'ok' if p99 < 20 else 'MISSED'})")
EOF
fi

# --- idle CPU ----------------------------------------------------------------------------------
idle="$work/idle"
per=$((tracked / pipelines))
say "idle: $pipelines pipelines over $tracked files ($per each)"
python3 - "$idle" "$pipelines" "$per" << 'EOF'
import os, sys
root, pipelines, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for p in range(pipelines):
    d = os.path.join(root, "data", f"p{p:02}")
    os.makedirs(d, exist_ok=True)
    for i in range(per):
        with open(os.path.join(d, f"f{i:05}.txt"), "w") as f:
            f.write(f"{p} {i}\n")
    with open(os.path.join(root, f"p{p:02}.pipe"), "w") as f:
        f.write(f"""pipeline p{p:02} {{
  trigger continuous cooldown 0s poll 1m

  source files {{
    root "data/p{p:02}"
    glob "*.txt"
  }}

  step all {{
    input files
    run "wc -l {{inputs}} | tail -n 1 > {{out}}/n"
  }}
}}
""")
EOF
start_daemon "$idle"
for _ in $(seq 600); do
  n=$( (find "$idle/out" -name n 2> /dev/null || true) | wc -l)
  [ "$n" -ge "$pipelines" ] && break
  sleep 0.5
done
sleep 2
ticks() { awk '{ print $14 + $15 }' "/proc/$daemon_pid/stat"; }
hz=$(getconf CLK_TCK)
before=$(ticks)
sleep "$idle_s"
after=$(ticks)
stop_daemon
python3 -c "
used = ($after - $before) / $hz
share = 100 * used / $idle_s
print(f'idle CPU of a daemon watching $pipelines pipelines over $tracked files: {used:.2f} s in $idle_s s = {share:.2f}% of a core   goal: < 1% ({\"ok\" if share < 1 else \"MISSED\"})')
"
