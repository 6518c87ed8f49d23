#!/usr/bin/env bash
# A PostgreSQL on 127.0.0.1:5432 that the tests can use (trust auth, user
# `postgres`): the tests make and drop databases of their own in it.
#
# 1. If one answers already, nothing to do.
# 2. If the machine has a Debian cluster (our machines), start it.
# 3. Else, with PostgreSQL's binaries installed (initdb, pg_ctl), make a
#    throwaway cluster under ~/.cache/sigsentry/postgres and start it.
# 4. Else, with Docker, run postgres:15 on that port.
set -euo pipefail
ready() { command -v pg_isready >/dev/null 2>&1 && pg_isready -h 127.0.0.1 -p 5432 -q; }
wait_ready() { for _ in $(seq 1 30); do ready && return 0; sleep 1; done; echo "postgres: not ready after 30 s" >&2; return 1; }

if ready; then echo "postgres: already answering on 127.0.0.1:5432"; exit 0; fi

if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  version=$(ls /etc/postgresql | sort -V | tail -1)
  echo "postgres: starting the machine's cluster $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_ready && exit 0
fi

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
initdb=$(command -v initdb || { [ -n "$bin" ] && echo "$bin/initdb"; } || true)
if [ -n "$initdb" ] && [ -x "$initdb" ]; then
  dir="$HOME/.cache/sigsentry/postgres"
  pg_ctl="$(dirname "$initdb")/pg_ctl"
  # PostgreSQL refuses to run as root: run it as the postgres user then.
  as=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || { echo "postgres: no 'postgres' user to run the server as" >&2; exit 1; }
    dir=/tmp/sigsentry-postgres; as=(runuser -u postgres --)
  fi
  if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres "$dir"
    "${as[@]}" "$initdb" -D "$dir" -U postgres --auth=trust >/dev/null
  fi
  echo "postgres: starting a throwaway cluster in $dir"
  "${as[@]}" "$pg_ctl" -D "$dir" -l "$dir/log" -o "-h 127.0.0.1 -p 5432 -k /tmp" start >/dev/null
  wait_ready && exit 0
fi

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  echo "postgres: running postgres:15 in Docker"
  docker run -d --rm --name sigsentry-test-postgres -p 127.0.0.1:5432:5432 \
    -e POSTGRES_HOST_AUTH_METHOD=trust postgres:15 >/dev/null
  wait_ready && exit 0
fi

echo "postgres: none found. Install PostgreSQL (Debian: apt-get install postgresql) or Docker, or point" >&2
echo "SIGSENTRY_TEST_DATABASE_URL at a server where the tests may create databases." >&2
exit 1
