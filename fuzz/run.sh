#!/usr/bin/env bash
# `just fuzz`: the API document proven by schemathesis. Builds the service,
# starts it on a free port with a fresh SQLite database (sync worker off,
# enterprise plan with a large quota), creates a tenant, a project and a key
# with the CLI, and runs schemathesis against GET /v1/openapi.json with every
# check and every phase, stateful included. Any failure fails the run.
#
#   bash fuzz/run.sh               # the full run: 300 examples per operation, over 2,000 requests
#   FUZZ_QUICK=1 bash fuzz/run.sh  # the CI run: a few hundred requests
#
# Arguments go to `st run` (`--include-path-regex sync`, `--mode negative`).
# FUZZ_EXAMPLES overrides the examples per operation, FUZZ_PHASES the phases
# (examples,coverage,fuzzing,stateful), FUZZ_SEED fixes the seed,
# FUZZ_VENV where schemathesis is installed, FUZZ_KEEP=1 keeps the work
# directory (server log, database, reports).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# Where plain cargo builds (./target), unless CARGO_TARGET_DIR says otherwise (CI does).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TERM_COLOR=never

# The full run: every phase. The quick one leaves out the coverage phase (about
# 900 requests of boundary and type cases on its own) and draws fewer examples.
if [ "${FUZZ_QUICK:-0}" = 1 ]; then
  EXAMPLES="${FUZZ_EXAMPLES:-50}"
  PHASES="${FUZZ_PHASES:-examples,fuzzing,stateful}"
else
  EXAMPLES="${FUZZ_EXAMPLES:-300}"
  PHASES="${FUZZ_PHASES:-examples,coverage,fuzzing,stateful}"
fi

# The fuzzer, pinned, in its own virtualenv outside the clone.
PINNED=$(grep -E '^schemathesis==' fuzz/requirements.txt)
VENV="${FUZZ_VENV:-$HOME/.cache/sigsentry/${PINNED/==/-}}"
if [ ! -x "$VENV/bin/st" ]; then
  echo "fuzz: installing $PINNED into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r fuzz/requirements.txt
fi

echo "fuzz: cargo build"
cargo build --locked --quiet --bin sigsentry
BIN="$CARGO_TARGET_DIR/debug/sigsentry"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sigsentry-fuzz.XXXXXX")
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "${FUZZ_KEEP:-0}" = 1 ]; then
    echo "fuzz: kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export DATABASE_URL="sqlite://$WORK/fuzz.db"
export SIGSENTRY_DATA_DIR="$WORK"
export SIGSENTRY_LISTEN="127.0.0.1:$PORT"
export SIGSENTRY_QUOTAS="enterprise=100000"
export SIGSENTRY_SYNC_WORKER=false
# Every credential kind enabled (nothing is called: the worker is off), so
# that the App and OAuth shapes the document allows are accepted.
export SIGSENTRY_GITHUB_APP_ID=1
export SIGSENTRY_GITHUB_APP_PRIVATE_KEY_FILE="$ROOT/crates/platforms/tests/fixtures/test-only-github-app-key.pem"
export SIGSENTRY_GITLAB_OAUTH_CLIENT_ID=fuzz SIGSENTRY_GITLAB_OAUTH_CLIENT_SECRET=fuzz-secret
export SIGSENTRY_BITBUCKET_OAUTH_CLIENT_ID=fuzz SIGSENTRY_BITBUCKET_OAUTH_CLIENT_SECRET=fuzz-secret
# The per-key rate limit (1200/min) is not under test; the fuzzer would hit it.
export SIGSENTRY_RATE_LIMIT=1000000
export RUST_LOG="${RUST_LOG:-warn}"

json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
"$BIN" migrate >"$WORK/setup.log" 2>&1
TENANT=$("$BIN" tenant create --name fuzz --plan enterprise --json 2>>"$WORK/setup.log" | json_field id)
PROJECT=$("$BIN" project create --tenant "$TENANT" --name fuzz --json 2>>"$WORK/setup.log" | json_field id)
KEY=$("$BIN" key create --tenant "$TENANT" --project "$PROJECT" --permissions config:read,config:write \
  --name fuzz --json 2>>"$WORK/setup.log" | json_field key)

"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
BASE_URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
  curl -fsS "$BASE_URL/healthz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; echo "fuzz: the server did not start"; exit 1; }
  sleep 0.1
done

export FUZZ_BASE_URL="$BASE_URL" FUZZ_KEY="$KEY" FUZZ_PROJECT_ID="$PROJECT" FUZZ_COUNT_FILE="$WORK/requests"
SEED_ARGS=()
[ -n "${FUZZ_SEED:-}" ] && SEED_ARGS=(--seed "$FUZZ_SEED")

echo "fuzz: schemathesis ($PHASES; $EXAMPLES examples per operation) against $BASE_URL"
STARTED=$(date +%s)
status=0
# The key reaches schemathesis through the environment (schemathesis.toml), not the command line.
# From the work directory, so that schemathesis' cache (.schemathesis/) goes with it.
(cd "$WORK" && SCHEMATHESIS_HOOKS="${FUZZ_HOOKS:-$ROOT/fuzz/hooks.py}" "$VENV/bin/st" --config-file "$ROOT/fuzz/schemathesis.toml" run \
  "$BASE_URL/v1/openapi.json" \
  --checks all \
  --phases "$PHASES" \
  --max-examples "$EXAMPLES" \
  --generation-database none \
  --no-color \
  --report junit --report-dir "$WORK/report" \
  "${SEED_ARGS[@]}" "$@") || status=$?
ELAPSED=$(( $(date +%s) - STARTED ))

REQUESTS=$(cat "$WORK/requests" 2>/dev/null || echo "?")
echo "fuzz: $REQUESTS requests in ${ELAPSED}s"
if grep -q "panicked\|INTERNAL_ERROR" "$WORK/server.log"; then
  echo "fuzz: the server logged a panic or an internal error:"
  grep "panicked\|internal error" "$WORK/server.log" | head -20
  status=1
fi
if [ "$status" != 0 ]; then
  echo "fuzz: FAILED (schemathesis exit $status); server log: $WORK/server.log"
  FUZZ_KEEP=1
fi
exit "$status"
