#!/usr/bin/env bash
# Measures the engine's core loop (`engine run`: scan, key, cache, run, commit) on two small
# workloads and compares it with GNU make (-j2) and snakemake (--cores 2) on the same layouts:
#
#   chain  s0 holds "seed\n"; step i runs `cp s{i-1} s{i}`, 200 steps in a row.
#   fan    in/f0000.txt .. in/f0999.txt, 4096 distinct bytes each; per file
#          `wc -c < in/fNNNN.txt > out/fNNNN.txt`, then one `cat` of the 1000 outputs, in order,
#          into all.txt; 2 jobs.
#
# For fan it measures: cold, noop (nothing changed), one-changed (one input's content changed),
# touch-only (every input's mtime changed, no content changed). Then it scales fan up to 10,000
# (and, with FULL=1, 100,000) files for the engine and make. It prints figures beside the goals;
# it is not a test (it exits 0 when a goal is missed).
#
# usage: bench/core.sh                  (from any directory)
# env:   RUNS=5          runs per figure for the engine and make; the best wall time is shown
#        SMK_RUNS=1      runs per figure for snakemake (its cold and touch-only runs are slow)
#        SCALE="10000"   fan sizes for the scaling table ("" skips it); default "10000",
#                        "10000 100000" when FULL=1
#        SNAKEMAKE=0     leave snakemake out
#        PROFILE=1       also count the engine's syscalls (strace -c -f) on fan cold and noop
#        SHM=0           skip the runs with the engine's state and products on tmpfs
#        CHAIN_STEPS=200 FAN_FILES=1000   (smaller values for a quick try only)
set -euo pipefail
export LC_ALL=C

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/bench/out"
work="$out/core"
venv="$out/venv"
runs="${RUNS:-5}"
smk_runs="${SMK_RUNS:-1}"
chain_steps="${CHAIN_STEPS:-200}"
fan_files="${FAN_FILES:-1000}"
if [ -n "${SCALE+set}" ]; then
  scale_sizes="$SCALE"
elif [ "${FULL:-0}" = 1 ]; then
  scale_sizes="10000 100000"
else
  scale_sizes="10000"
fi
[ "$scale_sizes" = 0 ] && scale_sizes=""
jobs=2
max_arg_strlen=131072 # Linux: the longest single argument to exec (`sh -c COMMAND`)

# Goals, printed beside the figures.
goal_cold_vs_make=1.5
goal_noop_vs_make=3
goal_noop_faster_than_smk=20
goal_one_changed_ran=2
goal_touch_ran=0
goal_touch_vs_noop=2
goal_fan_mb=100

say() { echo "core.sh: $*" >&2; }

# --- tools: install only what is missing -------------------------------------------------------
apt_updated=0
apt_install() { # apt_install PACKAGE...
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if ! command -v apt-get > /dev/null; then
    say "cannot install $* (no apt-get): install it by hand"
    return 1
  fi
  if [ "$apt_updated" = 0 ]; then
    $sudo apt-get update -qq > /dev/null || true
    apt_updated=1
  fi
  say "installing $*"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" > /dev/null
}

[ -x /usr/bin/time ] || apt_install time
command -v make > /dev/null || apt_install make
command -v python3 > /dev/null || apt_install python3
if ! command -v cargo > /dev/null; then
  say "cargo is missing: install Rust (https://rustup.rs) and run again"
  exit 2
fi
if [ "${PROFILE:-0}" = 1 ]; then
  command -v strace > /dev/null || apt_install strace
fi

cd "$root"
say "building the release binary..."
cargo build --release --quiet -p engine
engine="${CARGO_TARGET_DIR:-$root/target}/release/engine"

smk=""
if [ "${SNAKEMAKE:-1}" != 0 ]; then
  if [ ! -x "$venv/bin/snakemake" ]; then
    say "installing snakemake into $venv"
    if ! python3 -m venv "$venv" > /dev/null 2>&1; then
      rm -rf "$venv"
      apt_install python3-venv || true
      python3 -m venv "$venv" > /dev/null 2>&1 || rm -rf "$venv"
    fi
    if [ -x "$venv/bin/pip" ]; then
      "$venv/bin/pip" install -q snakemake > "$out/pip.log" 2>&1 || say "pip install snakemake failed (see $out/pip.log)"
    fi
  fi
  if [ -x "$venv/bin/snakemake" ] && "$venv/bin/snakemake" --version > /dev/null 2>&1; then
    smk="$venv/bin/snakemake"
  else
    say "snakemake is unavailable: going on without it"
  fi
fi
make_version="$(make --version | sed -n 1p)"
smk_version=""
[ -n "$smk" ] && smk_version="snakemake $("$smk" --version)"

# --- measuring ---------------------------------------------------------------------------------
# timed LOG DIR CMD...: runs CMD in DIR with its output in LOG. Sets `us` (wall microseconds,
# from bash's EPOCHREALTIME) and `kb` (peak RSS of CMD, from /usr/bin/time -f %M). Returns CMD's
# status.
timed() {
  local log=$1 dir=$2 t0 t1 rc=0
  shift 2
  t0=$EPOCHREALTIME
  (cd "$dir" && exec /usr/bin/time -f %M -o "$log.rss" "$@") > "$log" 2>&1 || rc=$?
  t1=$EPOCHREALTIME
  us=$((10#${t1/./} - 10#${t0/./}))
  kb=$(tail -n 1 "$log.rss")
  return "$rc"
}

# Results: best wall time (us), highest peak RSS (kB), and tasks (re)run per attempt ("2 2 2").
declare -A best_us peak_kb ran

record() { # record KEY: folds the last `timed` into the results under KEY
  local key=$1
  if [ -z "${best_us[$key]:-}" ] || [ "$us" -lt "${best_us[$key]}" ]; then best_us[$key]=$us; fi
  if [ -z "${peak_kb[$key]:-}" ] || [ "$kb" -gt "${peak_kb[$key]}" ]; then peak_kb[$key]=$kb; fi
}

add_ran() { ran[$1]="${ran[$1]:+${ran[$1]} }$2"; }

# engine_ran LOG: the number of tasks that ran, from the summary line
# "run N succeeded: T tasks (X ran, Y cached) in ..." on stderr.
engine_ran() {
  local line
  line=$(grep -E 'run [0-9]+ [a-z]+: [0-9]+ tasks' "$1" | tail -n 1)
  if [[ $line =~ ([0-9]+)\ ran ]]; then echo "${BASH_REMATCH[1]}"; elif [ -n "$line" ]; then echo 0; else echo "?"; fi
}

# newer_outputs DIR: how many outputs (files under out/, all.txt, s1..) are newer than DIR/.marker
newer_outputs() {
  (cd "$1" && find . -path ./in -prune -o -path ./.snakemake -prune -o -path ./.engine -prune -o \
    -type f -newer .marker ! -name '*.log*' ! -name .marker ! -name Makefile ! -name Snakefile \
    ! -name '*.pipe' ! -name '*.list' -print | wc -l)
}

# reset DIR: moves everything a run made (outputs and state) out of DIR, into the trash, keeping
# inputs and definitions. Nothing is deleted while measuring (the trash goes at the end): on ext4
# without a journal (this machine's root file system), creating a file skips, one by one, every
# inode deleted in the last minute (five while its inode table block is unwritten), so a run
# right after a deletion of thousands of files pays for the harness's cleanup, each tool in
# proportion to the files it creates.
reset() {
  local bin
  bin="$trash/$((++trashed))"
  mkdir -p "$bin"
  find "$1" -mindepth 1 -maxdepth 1 ! -name in ! -name src ! -name s0 ! -name '*.pipe' \
    ! -name Makefile ! -name Snakefile -exec mv -t "$bin" {} +
}

tool_cmd() { # tool_cmd TOOL PIPEFILE: sets the array `cmd`
  case "$1" in
    engine) cmd=("$engine" run -q --jobs "$jobs" --state .engine --out out "$2") ;;
    make) cmd=(make -j"$jobs") ;;
    maker) cmd=(make -r -j"$jobs") ;; # make without its built-in implicit rules
    shm) cmd=("$engine" run -q --jobs "$jobs" --state "$shm_base/$2/.engine" --out "$shm_base/$2/out" "$2") ;;
    smk) cmd=("$smk" --cores "$jobs" --quiet) ;;
  esac
}

# scenario TOOL DIR PIPEFILE NAME REPS PREP [FIRST]: REPS times, PREP (a function given DIR and
# the attempt number, counted from FIRST, default 1) then a timed run; results under
# "TOOL:NAME". A failed run is reported and ends the scenario, and later calls for it do nothing.
scenario() {
  local tool=$1 dir=$2 pipe=$3 name=$4 reps=$5 prep=$6 first=${7:-1} i log n
  [ "${best_us[$tool:$name]:-}" = fail ] && return 0
  tool_cmd "$tool" "$pipe"
  for ((i = first; i < first + reps; i++)); do
    "$prep" "$dir" "$i"
    touch "$dir/.marker"
    sleep 0.01 # mtimes of the outputs must differ from the marker's
    log="$logs/$(basename "$(dirname "$dir")")-$tool-$name-$i.log"
    if ! timed "$log" "$dir" "${cmd[@]}"; then
      say "$tool $name failed (attempt $i); the end of $log:"
      tail -n 20 "$log" >&2
      best_us["$tool:$name"]=fail
      return 0
    fi
    record "$tool:$name"
    case $tool in engine | shm) n=$(engine_ran "$log") ;; *) n=$(newer_outputs "$dir") ;; esac
    add_ran "$tool:$name" "$n"
  done
}

prep_cold() { reset "$1"; }
prep_shm_cold() { rm -rf "${shm_base:?}/$shm_pipe"; }
prep_none() { :; }
prep_one() { cp "$mods/$2" "$1/in/$changed_file"; }
prep_touch() { find "$1/in" -type f -exec touch {} +; }

# --- workloads ---------------------------------------------------------------------------------
logs="$work/logs"
# The last invocation's files are deleted at the end of this one, for the reason `reset` gives.
trash="$out/core-trash.$$"
trashed=0
[ -d "$work" ] && mkdir -p "$trash" && mv "$work" "$trash/previous"
trap 'rm -rf "$trash"' EXIT
mkdir -p "$logs"

# What a durable commit costs here: 200 back-to-back fdatasync calls on bench/out's disk, as
# "p10/median/p90 ms" (every engine task commits to its redb store durably, so this bounds its
# speed; it is measured at the start and at the end, as busy disks drift).
fsync_probe() {
  python3 - "$work/fsync-probe" << 'EOF'
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b"x" * (1 << 20))
os.fsync(fd)
times = []
for i in range(200):
    os.pwrite(fd, b"y" * 4096, (i * 4096) % (1 << 20))
    start = time.perf_counter()
    os.fdatasync(fd)
    times.append(time.perf_counter() - start)
os.close(fd)
os.unlink(sys.argv[1])
times.sort()
print("/".join(f"{times[k] * 1000:.2f}" for k in (20, 100, 180)))
EOF
}
fsync_start=$(fsync_probe)
load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)

# Input files: N files of 4096 distinct (seeded random) bytes, named f + the index padded to W.
gen_inputs() { # gen_inputs DIR N W
  python3 - "$@" << 'EOF'
import os, random, sys
d, n, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(d, exist_ok=True)
for i in range(n):
    with open(os.path.join(d, f"f{i:0{w}d}.txt"), "wb") as f:
        f.write(random.Random(i).randbytes(4096))
EOF
}

width_for() { local w=${#1}; [ $((10 ** (w - 1))) -eq "$1" ] && w=$((w - 1)); [ "$w" -lt 4 ] && w=4; echo "$w"; }

# fan_pipe FILE AGG: the engine's fan pipeline, AGG being the aggregate step's command
fan_pipe() {
  cat > "$1" << EOF
pipeline fan {
  source files {
    root "in"
    glob "*.txt"
    group file by regex "^(?P<file>f[0-9]+)[.]txt\$"
  }

  step count each file {
    input files
    run "wc -c < {inputs} > {out}/{group}.txt"
  }

  step all {
    input count
    run "$2"
  }
}
EOF
}

# fan_makefile FILE LIST: LIST=1 passes the outputs to cat through a file (for sizes where the
# command line would be longer than one exec argument may be)
fan_makefile() {
  {
    printf 'OUTS := $(patsubst in/%%.txt,out/%%.txt,$(sort $(wildcard in/*.txt)))\n\n'
    printf 'all.txt: $(OUTS)\n'
    if [ "$2" = 1 ]; then
      printf '\t$(file >$@.list,$^)\n\txargs cat < $@.list > $@\n\n'
    else
      printf '\tcat $^ > $@\n\n'
    fi
    printf 'out/%%.txt: in/%%.txt | out\n\twc -c < $< > $@\n\nout:\n\tmkdir -p out\n'
  } > "$1"
}

fan_snakefile() {
  cat > "$1" << 'EOF'
import os
IDS = sorted(f[:-4] for f in os.listdir("in") if f.endswith(".txt"))

wildcard_constraints:
    f="f[0-9]+"

rule all:
    input: "all.txt"

rule count:
    input: "in/{f}.txt"
    output: "out/{f}.txt"
    shell: "wc -c < {input} > {output}"

rule cat:
    input: expand("out/{f}.txt", f=IDS)
    output: "all.txt"
    shell: "cat {input} > {output}"
EOF
}

tools=(engine make)
[ -n "$smk" ] && tools+=(smk)

# chain
say "chain: $chain_steps steps"
for tool in "${tools[@]}"; do
  d="$work/chain/$tool"
  mkdir -p "$d"
  case $tool in
    engine)
      mkdir -p "$d/src"
      printf 'seed\n' > "$d/src/s0"
      {
        printf 'pipeline chain {\n  source seed {\n    root "src"\n    glob "s0"\n  }\n'
        for ((i = 1; i <= chain_steps; i++)); do
          if [ "$i" = 1 ]; then prev=seed; else prev="s$((i - 1))"; fi
          printf '\n  step s%d {\n    input %s\n    run "cp {inputs} {out}/s%d"\n  }\n' "$i" "$prev" "$i"
        done
        printf '}\n'
      } > "$d/chain.pipe"
      ;;
    make)
      printf 'seed\n' > "$d/s0"
      {
        printf 'all: s%d\n.PHONY: all\n' "$chain_steps"
        for ((i = 1; i <= chain_steps; i++)); do printf '\ns%d: s%d\n\tcp $< $@\n' "$i" "$((i - 1))"; done
      } > "$d/Makefile"
      ;;
    smk)
      printf 'seed\n' > "$d/s0"
      cat > "$d/Snakefile" << EOF
N = $chain_steps

wildcard_constraints:
    i="[1-9][0-9]*"

rule all:
    input: f"s{N}"

rule step:
    input: lambda w: f"s{int(w.i) - 1}"
    output: "s{i}"
    shell: "cp {input} {output}"
EOF
      ;;
  esac
done
# The cold runs of the engine and make take turns, so that both see the machine as it is at the
# time (this VM's speed drifts from one minute to the next); snakemake's slow ones follow.
cold_in_turns() { # cold_in_turns WORKLOAD PIPEFILE
  local i tool
  for ((i = 1; i <= runs; i++)); do
    for tool in engine make; do
      scenario "$tool" "$work/$1/$tool" "$2" "$1-cold" 1 prep_cold "$i"
    done
  done
  if [ -n "$smk" ]; then
    scenario smk "$work/$1/smk" "$2" "$1-cold" "$smk_runs" prep_cold
  fi
}
cold_in_turns chain chain.pipe
if [ "$(cat "$work/chain/engine/out/chain/s$chain_steps/_all/s$chain_steps" 2> /dev/null)" != seed ]; then
  say "WARNING: the engine's s$chain_steps does not hold 'seed'"
fi

# fan
say "fan: $fan_files files"
fan_w=$(width_for "$fan_files")
changed_file=$(printf 'f%0*d.txt' "$fan_w" $((fan_files / 2)))
mods="$work/fan/mods"
mkdir -p "$mods"
for ((i = 1; i <= (runs > smk_runs ? runs : smk_runs); i++)); do
  # a new content for the changed file at attempt i: i more bytes, so its count changes too
  python3 -c "import random,sys; sys.stdout.buffer.write(random.Random(-$i).randbytes(4096 + $i))" > "$mods/$i"
done
gen_inputs "$work/fan/inputs" "$fan_files" "$fan_w"
for tool in "${tools[@]}"; do
  d="$work/fan/$tool"
  mkdir -p "$d"
  cp -r "$work/fan/inputs" "$d/in"
  case $tool in
    engine) fan_pipe "$d/fan.pipe" "cat {inputs} > {out}/all.txt" ;;
    make) fan_makefile "$d/Makefile" 0 ;;
    smk) fan_snakefile "$d/Snakefile" ;;
  esac
done
say "fan: cold"
cold_in_turns fan fan.pipe
for tool in "${tools[@]}"; do
  d="$work/fan/$tool"
  say "fan: $tool"
  scenario "$tool" "$d" fan.pipe fan-noop "$runs" prep_none
  [ "$tool" = make ] && scenario maker "$d" fan.pipe fan-noop "$runs" prep_none
  scenario "$tool" "$d" fan.pipe fan-one "$runs" prep_one
  r=$runs
  [ "$tool" = smk ] && r=$smk_runs
  scenario "$tool" "$d" fan.pipe fan-touch "$r" prep_touch
done
# the products agree?
eng_all="$work/fan/engine/out/fan/all/_all/all.txt"
for tool in make smk; do
  [ -f "$work/fan/$tool/all.txt" ] || continue
  cmp -s "$eng_all" "$work/fan/$tool/all.txt" || say "WARNING: the engine's all.txt differs from $tool's"
done

# The engine again with its state and products on tmpfs, where fdatasync costs nothing: what is
# left is the engine's own work (processes, files, CPU), apart from durability.
shm_base=""
if [ "${SHM:-1}" != 0 ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  shm_base=$(mktemp -d /dev/shm/engine-core.XXXXXX)
  trap 'rm -rf "$shm_base" "$trash"' EXIT
  say "engine with its state on tmpfs"
  shm_pipe=chain.pipe
  scenario shm "$work/chain/engine" chain.pipe chain-cold "$runs" prep_shm_cold
  shm_pipe=fan.pipe
  scenario shm "$work/fan/engine" fan.pipe fan-cold "$runs" prep_shm_cold
  scenario shm "$work/fan/engine" fan.pipe fan-noop "$runs" prep_none
  rm -rf "${shm_base:?}"/*
fi

# --- printing ----------------------------------------------------------------------------------
ms() { # ms KEY: the best time in ms, or "-" / "fail"
  local v=${best_us[$1]:-}
  case $v in "") echo - ;; fail) echo fail ;; *) awk -v u="$v" 'BEGIN { printf "%.1f", u / 1000 }' ;; esac
}
mb() { local v=${peak_kb[$1]:-}; [ -z "$v" ] && echo - || awk -v k="$v" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { # ratio KEY_A KEY_B: a / b with 2 digits, or "-"
  local a=${best_us[$1]:-} b=${best_us[$2]:-}
  if [[ $a =~ ^[0-9]+$ && $b =~ ^[0-9]+$ && $b -gt 0 ]]; then
    awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }'
  else echo -; fi
}
# le A B / ge A B: "ok" when A <= B (A >= B), "MISSED" otherwise, "n/a" without A
le() { [ "$1" = - ] && echo "n/a" || awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 <= b + 0) ? "ok" : "MISSED" }'; }
ge() { [ "$1" = - ] && echo "n/a" || awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 >= b + 0) ? "ok" : "MISSED" }'; }

echo
echo "engine ($(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- engine dsl || echo '+local changes')) vs $make_version (-j$jobs)${smk_version:+ vs $smk_version (--cores $jobs)}"
echo "machine: $(nproc) cores; load average at the start $load_start, now $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo "fdatasync on bench/out's disk, p10/median/p90 of 200 back to back: $fsync_start ms at the start, $(fsync_probe) ms now"
echo "wall ms: best of $runs${smk:+ (snakemake: best of $smk_runs for cold and touch-only)}; engine MB: peak RSS, highest of the runs; ran: tasks the engine ran (for make/snakemake: outputs rewritten), per run"
printf '\n%-16s %10s %10s %10s %9s %9s %8s  %-15s %-15s %-15s %s\n' \
  workload "engine ms" "make ms" "smk ms" "eng/make" "eng/smk" "eng MB" "engine ran" "make ran" "smk ran" goal
row() { # row LABEL KEY GOAL
  printf '%-16s %10s %10s %10s %9s %9s %8s  %-15s %-15s %-15s %s\n' "$1" "$(ms "engine:$2")" "$(ms "make:$2")" \
    "$(ms "smk:$2")" "$(ratio "engine:$2" "make:$2")" "$(ratio "engine:$2" "smk:$2")" "$(mb "engine:$2")" \
    "${ran[engine:$2]:--}" "${ran[make:$2]:--}" "${ran[smk:$2]:--}" "$3"
}

chain_r=$(ratio engine:chain-cold make:chain-cold)
row "chain cold" chain-cold "<= ${goal_cold_vs_make}x make: $(le "$chain_r" "$goal_cold_vs_make")"
fan_r=$(ratio engine:fan-cold make:fan-cold)
row "fan cold" fan-cold "<= ${goal_cold_vs_make}x make: $(le "$fan_r" "$goal_cold_vs_make")"
noop_r=$(ratio engine:fan-noop make:fan-noop)
noop_smk=$(ratio smk:fan-noop engine:fan-noop)
noop_goal="<= ${goal_noop_vs_make}x make: $(le "$noop_r" "$goal_noop_vs_make")"
if [ "$noop_smk" != - ]; then
  noop_goal+="; >= ${goal_noop_faster_than_smk}x faster than snakemake (${noop_smk}x): $(ge "$noop_smk" "$goal_noop_faster_than_smk")"
fi
row "fan noop" fan-noop "$noop_goal"
one_ok=ok
for n in ${ran[engine:fan-one]:-?}; do [ "$n" = "$goal_one_changed_ran" ] || one_ok=MISSED; done
row "fan one-changed" fan-one "engine runs exactly $goal_one_changed_ran tasks: $one_ok"
touch_ok=ok
for n in ${ran[engine:fan-touch]:-?}; do [ "$n" = "$goal_touch_ran" ] || touch_ok=MISSED; done
touch_r=$(ratio engine:fan-touch engine:fan-noop)
row "fan touch-only" fan-touch "engine runs $goal_touch_ran tasks: $touch_ok; <= ${goal_touch_vs_noop}x engine noop (${touch_r}x): $(le "$touch_r" "$goal_touch_vs_noop")"
fan_peak=0
for s in fan-cold fan-noop fan-one fan-touch; do
  [ "${peak_kb[engine:$s]:-0}" -gt "$fan_peak" ] && fan_peak=${peak_kb[engine:$s]}
done
fan_peak_mb=$(awk -v k="$fan_peak" 'BEGIN { printf "%.1f", k / 1024 }')
mr=$(ratio engine:fan-noop maker:fan-noop)
[ "$mr" != - ] && echo "make -r -j$jobs (no built-in implicit rules) noop: $(ms maker:fan-noop) ms; engine noop is ${mr}x that (goal <= ${goal_noop_vs_make}x would be: $(le "$mr" "$goal_noop_vs_make"))"
if [ -n "$shm_base" ]; then
  echo "the engine with --state and --out on tmpfs (fdatasync free; inputs on disk as above):"
  for s in chain-cold fan-cold fan-noop; do
    printf '  %-12s %10s ms  %5sx make  %5sx the engine on disk\n' "${s/-/ }" "$(ms "shm:$s")" \
      "$(ratio "shm:$s" "make:$s")" "$(ratio "shm:$s" "engine:$s")"
  done
fi
echo "engine peak RSS on fan: $fan_peak_mb MB (goal < $goal_fan_mb MB: $(le "$fan_peak_mb" "$goal_fan_mb"))"

# --- scaling -----------------------------------------------------------------------------------
declare -A scale_note
for n in $scale_sizes; do
  say "fan scaling: $n files"
  w=$(width_for "$n")
  base="$work/fan-$n"
  gen_inputs "$base/inputs" "$n" "$w"
  for tool in engine make; do
    d="$base/$tool"
    mkdir -p "$d"
    mv "$base/inputs" "$d/in" 2> /dev/null || cp -r "$work/fan-$n/engine/in" "$d/in"
  done
  # `cat {inputs}` puts every input path into the one `sh -c` argument, which Linux limits to
  # 128 KiB: estimate its length and, past the limit, have the aggregate read the products through
  # a list instead (make gets the same treatment).
  abs_out="$base/engine/out"
  one_path="$abs_out/fan/count/f$(printf '%0*d' "$w" 0)/f$(printf '%0*d' "$w" 0).txt"
  cmd_len=$(((${#one_path} + 1) * n + 32))
  list=0
  if [ "$cmd_len" -ge "$max_arg_strlen" ]; then
    list=1
    scale_note[$n]="the aggregate's \`cat {inputs}\` would be a ${cmd_len}-byte argument (> 128 KiB): the engine's aggregate ran \`find OUT/fan/count -type f | sort | xargs cat\`, make's \`xargs cat < list\`"
  fi
  if [ "$list" = 1 ]; then
    fan_pipe "$base/engine/fan.pipe" "find '$abs_out/fan/count' -type f -name 'f*.txt' | sort | xargs cat > {out}/all.txt"
  else
    fan_pipe "$base/engine/fan.pipe" "cat {inputs} > {out}/all.txt"
  fi
  fan_makefile "$base/make/Makefile" "$list"
  cold_reps=$runs
  [ "$n" -ge 100000 ] && cold_reps=1
  for tool in engine make; do
    scenario "$tool" "$base/$tool" fan.pipe "fan$n-cold" "$cold_reps" prep_cold
    scenario "$tool" "$base/$tool" fan.pipe "fan$n-noop" "$runs" prep_none
  done
  scenario maker "$base/make" fan.pipe "fan$n-noop" "$runs" prep_none
  cmp -s "$base/engine/out/fan/all/_all/all.txt" "$base/make/all.txt" || say "WARNING: fan $n: the engine's all.txt differs from make's"
done

# The exact aggregate command at the first size past the limit, to show what happens.
for n in $scale_sizes; do
  [ -n "${scale_note[$n]:-}" ] || continue
  d="$work/fan-$n/engine-exact"
  mkdir -p "$d"
  ln -s "$work/fan-$n/engine/in" "$d/in"
  fan_pipe "$d/fan.pipe" "cat {inputs} > {out}/all.txt"
  tool_cmd engine fan.pipe
  # reuse the counts from the measured state: only the aggregate is new
  cp -r "$work/fan-$n/engine/.engine" "$d/.engine"
  exact_log="$logs/fan-$n-engine-exact.log"
  exact_status=ok
  timed "$exact_log" "$d" "${cmd[@]}" || exact_status="exit $?"
  # the aggregate's error, from `engine show --json` (it quotes the whole command: shortened)
  exact_run=$(grep -oE 'run [0-9]+ [a-z]+:' "$exact_log" | tail -n 1 | grep -oE '[0-9]+' || true)
  exact_err=$("$engine" show "${exact_run:-0}" --state "$d/.engine" --json 2> /dev/null | python3 -c '
import json, sys
for t in json.load(sys.stdin)["tasks"]:
    for a in t.get("attempts_detail") or []:
        e = a.get("error")
        if e:
            step, end = t["step"], a.get("end")
            print(f"{step}: attempt ended {end}: {len(e)}-byte error: {e[:40]} ... {e.rsplit(chr(58), 1)[-1].strip()}")
            sys.exit()
' 2> /dev/null || true)
  scale_note[exact]="with the exact \`cat {inputs} > {out}/all.txt\` at $n files: $exact_status; $(grep -E 'run [0-9]+ [a-z]+:' "$exact_log" | tail -n 1 | sed 's/^\[[^]]*\] //'); ${exact_err:-no message}"
  break
done

if [ -n "$scale_sizes" ]; then
  echo
  echo "fan scaling (engine and make; cold: best of $runs, one run at 100,000; noop: best of $runs)"
  printf '%-8s %11s %10s %11s %10s %10s %10s %11s %10s %11s %10s %11s %10s\n' files "engine cold" "us/file" \
    "engine noop" "us/file" "cold MB" "noop MB" "make cold" "us/file" "make noop" "us/file" "make -r noop" "us/file"
  per() { [[ ${best_us[$1]:-} =~ ^[0-9]+$ ]] && awk -v u="${best_us[$1]}" -v n="$2" 'BEGIN { printf "%.0f", u / n }' || echo -; }
  for n in "$fan_files" $scale_sizes; do
    k="fan$n"
    [ "$n" = "$fan_files" ] && k=fan
    printf '%-8s %11s %10s %11s %10s %10s %10s %11s %10s %11s %10s %11s %10s\n' "$n" "$(ms "engine:$k-cold")" \
      "$(per "engine:$k-cold" "$n")" "$(ms "engine:$k-noop")" "$(per "engine:$k-noop" "$n")" \
      "$(mb "engine:$k-cold")" "$(mb "engine:$k-noop")" "$(ms "make:$k-cold")" "$(per "make:$k-cold" "$n")" \
      "$(ms "make:$k-noop")" "$(per "make:$k-noop" "$n")" "$(ms "maker:$k-noop")" "$(per "maker:$k-noop" "$n")"
  done
  for n in $scale_sizes exact; do
    [ -n "${scale_note[$n]:-}" ] && echo "note ($n): ${scale_note[$n]}"
  done
fi

# --- profile -----------------------------------------------------------------------------------
# Syscall counts (not times: strace slows every call) of the engine on fan cold and noop, with its
# children: durable commits (fdatasync), processes started (execve) and threads/processes (clone).
if [ "${PROFILE:-0}" = 1 ]; then
  d="$work/fan/engine"
  tool_cmd engine fan.pipe
  echo
  echo "engine syscall counts on fan ($fan_files files; strace -f -c, counts only):"
  printf '%-6s %8s %12s %14s %8s %14s %8s %10s\n' run tasks fdatasync "per task" execve "per task" clone pwrite64
  count() { awk -v s="$1" '$NF == s { n = $4 } END { print n + 0 }' "$logs/strace-$what.txt"; }
  per_task() { awk -v a="$1" -v t="$tasks" 'BEGIN { printf "%.1f", a / t }'; }
  tasks=$((fan_files + 1))
  for what in cold noop; do
    [ "$what" = cold ] && reset "$d"
    (cd "$d" && strace -f -c -o "$logs/strace-$what.txt" \
      -e trace=fdatasync,fsync,execve,clone,clone3,vfork,pwrite64 "${cmd[@]}" > /dev/null 2>&1) || true
    fds=$(count fdatasync)
    ex=$(count execve)
    cl=$(($(count clone) + $(count clone3) + $(count vfork)))
    printf '%-6s %8s %12s %14s %8s %14s %8s %10s\n' "$what" "$tasks" "$fds" "$(per_task "$fds")" \
      "$ex" "$(per_task "$ex")" "$cl" "$(count pwrite64)"
  done
fi
