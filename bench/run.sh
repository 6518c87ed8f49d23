#!/usr/bin/env bash
# `just bench`: release build, then load on PostgreSQL and SQLite with the
# pgbench floor measured in the same run. Figures are ratios, not verdicts.
set -euo pipefail
cd "$(dirname "$0")/.."
# Where plain cargo builds (./target), unless CARGO_TARGET_DIR says otherwise (CI does).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk; then
  echo "bench: installing wrk (Debian package)"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk; else sudo apt-get update -qq && sudo apt-get install -y -qq wrk; fi
fi
need pgbench || { echo "bench: pgbench is missing (Debian package postgresql-client)"; exit 1; }
need psql || { echo "bench: psql is missing (Debian package postgresql-client)"; exit 1; }
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "bench: PostgreSQL does not answer on 127.0.0.1:5432; start it with:"
  echo "  pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start"
  exit 1
fi

cargo build --release --locked -p sigsentry-server
exec python3 bench/bench.py --binary "$CARGO_TARGET_DIR/release/sigsentry" "$@"
