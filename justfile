# Every routine command of the project. `just --list` shows them.
# Install just with `cargo install just` (or `pip install rust-just`).
# Builds go where plain `cargo` puts them (./target, or $CARGO_TARGET_DIR if
# you set it), so `just test` and `cargo test` share one build. Only CI
# (.ci/run) moves it outside the clone, to stay incremental between clones.

# Start the service (SQLite in ./data, first API key printed once).
run:
    cargo run

# Every test: unit, store contract (SQLite and PostgreSQL), HTTP, CLI.
test:
    cargo test --workspace

# What CI runs: fmt, clippy, tests, a short schemathesis run.
ci:
    bash .ci/run

# Format the code.
fmt:
    cargo fmt --all

# Lints as CI runs them.
lint:
    cargo clippy --workspace --all-targets -- -D warnings

# Regenerate docs/openapi.json from the code.
openapi:
    UPDATE_OPENAPI=1 cargo test -p sigsentry-http --test http

# The API document proven by schemathesis: every check, stateful phase, over 2,000 requests.
# FUZZ_QUICK=1 for the short run CI does; FUZZ_SEED, FUZZ_EXAMPLES, FUZZ_KEEP=1 (see fuzz/run.sh).
fuzz:
    bash fuzz/run.sh

# A PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres) for the tests: starts the
# machine's cluster, or makes a throwaway one under ~/.cache/sigsentry/postgres.
postgres:
    bash scripts/test-postgres.sh

# Apply migrations to DATABASE_URL and exit.
migrate:
    cargo run -- migrate

# Load benchmarks against SQLite and PostgreSQL, with the pgbench floor.
bench:
    bash bench/run.sh

# The correlation evaluation on real repositories' history (eval/): the real service synced from a
# platform stub, scored; writes docs/correlation.md. `just eval --offline` runs the domain's functions
# alone over the same cases in seconds (to try a ranking change); `--only python` or `--only owner/name`.
eval *args:
    cargo run --release -p sigsentry-eval -- --write {{args}}
