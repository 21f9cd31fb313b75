#!/bin/sh
# generate.sh: makes the observatory example's data, small text "images" of 8 x 16 numbers.
#
#   ./generate.sh                  the shipped data: the calibration frames and two nights
#   ./generate.sh NIGHT [SCANS]    one more night (YYYYMMDD) of SCANS scans (default 3), e.g.
#                                  ./generate.sh 20240503 4, to watch `engine daemon` pick it up
#
# Writes calib/dark.dat and calib/flat.dat (the detector's dark current and pixel response) and
# raw/NIGHT/scanNNN.dat, each scan being dark + flat * (sky + stars) + noise, rounded. The same
# arguments always give the same files (a fixed pseudo-random generator, not awk's rand()).
# From night 20240502 on, a new source (a "transient") shines at row 3, column 8.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

# frame KIND SEED [NIGHT]: prints one 8 x 16 frame.
frame() {
    awk -v kind="$1" -v seed="$2" -v night="${3:-0}" '
        function rnd() { seed = (seed * 16807) % 2147483647; return seed / 2147483647 }
        function noise() { return (rnd() + rnd() + rnd() + rnd() - 2) * 6 }
        BEGIN {
            rows = 8; cols = 16
            # Stars: row, column, peak counts. Light spills 30% to the four neighbours.
            n = split("2 3 400  5 11 250  7 5 120  1 14 90", s, " ")
            if (night >= 20240502) { s[++n] = 3; s[++n] = 8; s[++n] = 180 }
            for (i = 1; i <= n; i += 3) {
                sky[s[i], s[i + 1]] += s[i + 2]
                sky[s[i] - 1, s[i + 1]] += 0.3 * s[i + 2]; sky[s[i] + 1, s[i + 1]] += 0.3 * s[i + 2]
                sky[s[i], s[i + 1] - 1] += 0.3 * s[i + 2]; sky[s[i], s[i + 1] + 1] += 0.3 * s[i + 2]
            }
            # The dark and the flat are drawn from their own fixed seeds, as the detector is the same every night.
            d = 11; f = 23
            for (r = 1; r <= rows; r++) {
                line = ""
                for (c = 1; c <= cols; c++) {
                    d = (d * 16807) % 2147483647; dark = 10 + 4 * d / 2147483647
                    f = (f * 16807) % 2147483647; flat = 0.85 + 0.3 * f / 2147483647
                    if (kind == "dark") v = sprintf("%.2f", dark)
                    else if (kind == "flat") v = sprintf("%.3f", flat)
                    else v = sprintf("%d", dark + flat * (50 + sky[r, c]) + noise() + 0.5)
                    line = line (c > 1 ? " " : "") v
                }
                print line
            }
        }'
}

# night NIGHT SCANS: writes raw/NIGHT/scan001.dat ...
night() {
    case $1 in
        [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]) ;;
        *) echo "generate.sh: a night is YYYYMMDD, not '$1'" >&2; exit 2 ;;
    esac
    mkdir -p "$here/raw/$1"
    i=1
    while [ "$i" -le "$2" ]; do
        name=$(printf 'scan%03d.dat' "$i")
        # Write beside, then rename: the pipeline never sees a half-written scan.
        frame scan $(( ($1 % 100000) * 100 + i )) "$1" > "$here/raw/$1/.$name.part"
        mv "$here/raw/$1/.$name.part" "$here/raw/$1/$name"
        i=$((i + 1))
    done
}

if [ $# -eq 0 ]; then
    mkdir -p "$here/calib"
    frame dark 0 > "$here/calib/dark.dat"
    frame flat 0 > "$here/calib/flat.dat"
    night 20240501 3
    night 20240502 3
else
    night "$1" "${2:-3}"
fi
