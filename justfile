# Every routine command of the project. `just --list` shows them.
# The target directory lives outside the clone so CI and local runs share it.
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", env_var("HOME") + "/.cache/sigsentry/target")

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

# Apply migrations to DATABASE_URL and exit.
migrate:
    cargo run -- migrate

# Load benchmarks against SQLite and PostgreSQL, with the pgbench floor.
bench:
    bash bench/run.sh

# The correlation evaluation on real repositories' history (eval/); writes docs/correlation.md.
eval:
    cargo run --release -p sigsentry-eval -- --write
