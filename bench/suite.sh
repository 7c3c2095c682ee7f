#!/usr/bin/env bash
# The runs behind bench/RESULTS.md, one after another, each bounded.
# Usage: [REV=commit] bench/suite.sh [NAME ...]   (no names: all).
# Writes bench/results/REV/NAME.{txt,json}.
# Each run starts and stops its own server on 127.0.0.1; nothing else is touched.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
# The server runs from a clean export of this commit (others may be editing p2sp/).
REV=${REV:-$(git rev-parse --short HEAD)}
OUT=bench/results/$REV
mkdir -p "$OUT"
PG_BENCH_URL=${PG_BENCH_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/p2sp_bench}

declare -A RUNS=(
  [dm-200]="--mode dm -n 200 -m 50"
  [dm-1000]="--mode dm -n 1000 -m 200 --duration 60 --procs 2"
  [dm-1000-warm]="--mode dm -n 1000 -m 200 --peers 10 --warmup --duration 60 --procs 2"
  [dm-1000-warm-noack]="--mode dm -n 1000 -m 200 --peers 10 --warmup --no-ack --duration 60 --procs 2"
  [dm-20-warm]="--mode dm -n 20 -m 500 --peers 3 --warmup"
  [paced-200]="--mode dm -n 1000 --rate 200 --duration 30 --peers 10 --warmup --procs 2"
  [paced-4000]="--mode dm -n 1000 --rate 4000 --duration 20 --peers 10 --warmup --procs 2"
  [fanout-200]="--mode fanout -n 200 --senders 10 -m 50"
  [fanout-1000]="--mode fanout -n 1000 --senders 10 -m 50 --duration 60 --procs 2"
  [fanout-1000-noack]="--mode fanout -n 1000 --senders 10 -m 100 --no-ack --procs 2"
  [idle-10000]="--mode idle -n 10000 --procs 2"
  [replay-10000]="--mode replay --pending 10000"
  [login-1000]="--mode login -n 1000 --procs 2"
  [login-1000-n1024]="--mode login -n 1000 --procs 2 --scrypt-n 1024"
  [compare-200]="--compare -n 200 -m 50"
  [compare-1000]="--compare -n 1000 -m 200 --duration 60 --procs 2"
  [compare-paced-4000]="--compare -n 1000 --rate 4000 --duration 20 --peers 10 --procs 2"
  [dm-1000-w8]="--mode dm -n 1000 -m 200 --window 8 --duration 60 --procs 2"
  [paced-1000]="--mode dm -n 1000 --rate 1000 --duration 20 --peers 10 --warmup --procs 2"
  [paced-2000]="--mode dm -n 1000 --rate 2000 --duration 20 --peers 10 --warmup --procs 2"
  [fanout-1000-s50]="--mode fanout -n 1000 --senders 50 -m 20 --procs 2"
  [dm-1000-pg]="--mode dm -n 1000 -m 200 --duration 60 --procs 2 --database-url $PG_BENCH_URL"
)
# dm-1000-pg needs an empty PostgreSQL database; it is made afresh before the run.
PG_ADMIN=${PG_ADMIN:-postgresql://postgres@127.0.0.1:5432/postgres}
ORDER=(compare-1000 dm-1000-w8 dm-1000-warm dm-1000-pg compare-paced-4000 paced-2000
       paced-1000 paced-200 fanout-1000 fanout-1000-s50 idle-10000 replay-10000 login-1000
       dm-200 dm-20-warm dm-1000 dm-1000-warm-noack fanout-200 fanout-1000-noack
       login-1000-n1024 compare-200)

names=("$@")
[ ${#names[@]} -eq 0 ] && names=("${ORDER[@]}")
for name in "${names[@]}"; do
  args=${RUNS[$name]:?unknown run $name}
  args="$args --server-rev $REV"
  if [ "$name" = dm-1000-pg ]; then
    db=${PG_BENCH_URL##*/}
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" ||
      { echo "=== $name skipped: cannot make database $db"; continue; }
  fi
  echo "=== $name: $PY -m bench $args --json $OUT/$name.json"
  # shellcheck disable=SC2086
  timeout 1800 "$PY" -m bench $args --json "$OUT/$name.json" 2>&1 | tee "$OUT/$name.txt"
done
