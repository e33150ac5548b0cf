#!/bin/sh
# SPDX-FileCopyrightText: 2026 The Mimamori authors
# SPDX-License-Identifier: Apache-2.0
# `mimamori report` on a synthetic fiscal year (bench/fleet_gen) against `cat` of the same
# bytes, for a small and a full fleet: wall and CPU time, peak RSS (memory must stay flat in
# the number of cameras). fleet_gen's own line is collect's verification rate.
#
#   bench/report_bench.sh BUILD_DIR WORK_DIR [CAMERAS_SMALL CAMERAS_FULL]
set -eu
build=$1 work=$2 small=${3:-100} full=${4:-1475}
mkdir -p "$work"
for n in "$small" "$full"; do
  archive="$work/archive-$n"
  if [ ! -d "$archive" ]; then
    echo "generating $n cameras (fleet_gen; its second line is the collect benchmark)"
    "$build/bench/fleet_gen" --out "$archive" --cameras "$n" --broken 3 --scratch /dev/shm 2>/dev/null
  fi
  files=$(find "$archive" -path '*/audit/audit-FY2025.log' | sort)
  bytes=$(cat $files | wc -c)
  # Warm the page cache, then measure each twice and keep the second.
  cat $files > /dev/null
  for run in 1 2; do
    /usr/bin/time -o "$work/time" -f '%e %U %S %M' cat $files > /dev/null
    cat_stats=$(tail -n 1 "$work/time")
    /usr/bin/time -o "$work/time" -f '%e %U %S %M' "$build/apps/mimamori" report --fiscal-year 2025 \
        --archive "$archive" --out "$work/out-$n" >/dev/null 2>&1 || true  # exits 1: marked cameras
    report_stats=$(tail -n 1 "$work/time")  # after "Command exited with non-zero status 1"
  done
  echo "$n cameras, $bytes bytes of FY2025 files"
  echo "  cat:    wall/user/sys s, peak RSS KB: $cat_stats"
  echo "  report: wall/user/sys s, peak RSS KB: $report_stats"
  echo "$cat_stats $report_stats" | awk '{ printf "  report/cat: %.2fx wall, %.2fx CPU\n", $5/$1, ($6+$7)/($2+$3+0.000001) }'
done
