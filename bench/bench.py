#!/usr/bin/env python3
"""Load benchmark of the Code Repos API, with the database floor measured in the same run.

For each store (PostgreSQL, SQLite) it starts the release binary, seeds a project
with 25 connections, and drives four endpoints with wrk (32 connections): GET list,
GET one, POST create (a unique body per request) and PUT. On PostgreSQL it then runs
pgbench with the SQL those endpoints issue, at the same concurrency: the floor. It
prints req/s, p50, p99, the ratio to the floor, and the server's peak RSS.

Then correlation (`CORRELATION.md`, "Speed"): a connection whose cache holds
200,000 repository paths and 100,000 PR-file rows (10,000 PRs of 10 files),
seeded straight into the database, and a 50-frame Python trace (46 frames in
files that PRs changed near their lines, 2 in `__init__.py` files with 10,000
candidates each, 2 library frames): `POST /v1/code/correlate` with 1 and with
8 concurrent clients.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

MASTER_KEY = "QkVOQ0hCRU5DSEJFTkNIQkVOQ0hCRU5DSEJFTkNIMDA="  # 32 bytes, bench only
ADMIN_URL = os.environ.get("SIGSENTRY_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
BENCH_DB = "sigsentry_bench"

LUA_COMMON = """
wrk.headers["Authorization"] = "Bearer {key}"
wrk.headers["Content-Type"] = "application/json"
"""

LUA_CREATE = LUA_COMMON + """
local counter = 0
local thread_id = 0
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  thread_id = tid
end
function request()
  counter = counter + 1
  local body = string.format(
    '{{"platform":"github","credentials":{{"token":"ghp_benchtoken000000000000001"}},' ..
    '"repositories":["bench/t%d-r%d"],"lookbackDays":30}}', thread_id, counter)
  return wrk.format("POST", "/v1/config/repos", nil, body)
end
"""

LUA_UPDATE = LUA_COMMON + """
local ids = {{{ids}}}
local counter = 0
function request()
  counter = counter + 1
  local id = ids[(counter % #ids) + 1]
  local body = string.format('{{"lookbackDays":%d}}', (counter % 300) + 1)
  return wrk.format("PUT", "/v1/config/repos/" .. id, nil, body)
end
"""

LUA_GET = LUA_COMMON + """
request = function() return wrk.format("GET", "{path}") end
"""

# The SQL each endpoint issues (auth lookup, then the store's queries), as pgbench scripts.
AUTH_SQL = (
    "SELECT k.id, k.tenant_id, k.project_id, k.name, k.permissions, k.created_at, k.revoked_at, t.plan "
    "FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash = :'key_hash' AND k.revoked_at IS NULL;"
)
CHILDREN_SQL = (
    "SELECT * FROM connection_repositories WHERE connection_id = ANY(ARRAY[{ids}]::uuid[]) ORDER BY connection_id, position;\n"
    "SELECT * FROM service_mappings WHERE connection_id = ANY(ARRAY[{ids}]::uuid[]) ORDER BY connection_id, position;"
)


def floor_scripts(project, key_hash, conn_ids):
    ids = ",".join(f"'{i}'" for i in conn_ids)
    one = conn_ids[0]
    auth = AUTH_SQL.replace(":'key_hash'", f"'{key_hash}'")
    list_sql = "\n".join([
        auth,
        f"SELECT * FROM repo_connections WHERE project_id = '{project}' ORDER BY id LIMIT 26;",
        CHILDREN_SQL.format(ids=ids),
    ])
    one_sql = "\n".join([
        auth,
        f"SELECT * FROM repo_connections WHERE project_id = '{project}' AND id = '{one}';",
        CHILDREN_SQL.format(ids=f"'{one}'"),
    ])
    create_sql = "\n".join([
        auth,
        "BEGIN;",
        f"SELECT id FROM projects WHERE id = '{project}' FOR UPDATE;",
        f"SELECT count(*) FROM connection_repositories WHERE project_id = '{project}';",
        f"SELECT connection_id, name_key FROM connection_repositories WHERE project_id = '{project}' AND name_key = ANY(ARRAY['floor/' || :client_id || '-' || random()]);",
        "\\set n random(1, 1000000000)",
        f"INSERT INTO repo_connections (id, tenant_id, project_id, platform, credential_kind, credential_hint, base_url, credential_key_id, credential_ciphertext, credentials_updated_at, lookback_days, is_active, version, created_at, updated_at) "
        f"SELECT gen_random_uuid(), tenant_id, id, 'github', 'token', '…0001', NULL, 'k', decode(repeat('ab', 60), 'hex'), now(), 30, true, 1, now(), now() FROM projects WHERE id = '{project}' RETURNING id \\gset conn_",
        f"INSERT INTO connection_repositories (connection_id, project_id, position, name, name_key, sync_state) VALUES (:conn_id, '{project}', 0, 'floor/' || :client_id || '-' || :n || '-' || random(), 'floor/' || :client_id || '-' || :n || '-' || random(), 'pending');",
        "COMMIT;",
    ])
    update_sql = "\n".join([
        auth,
        f"SELECT * FROM repo_connections WHERE project_id = '{project}' AND id = '{one}';",
        CHILDREN_SQL.format(ids=f"'{one}'"),
        "BEGIN;",
        f"SELECT id FROM projects WHERE id = '{project}' FOR UPDATE;",
        f"SELECT version FROM repo_connections WHERE project_id = '{project}' AND id = '{one}' FOR UPDATE;",
        f"SELECT count(*) FROM connection_repositories WHERE project_id = '{project}';",
        f"DELETE FROM service_mappings WHERE connection_id = '{one}';",
        f"UPDATE connection_repositories SET sync_state = 'pending' WHERE connection_id = '{one}';",
        f"UPDATE repo_connections SET lookback_days = 1 + (version % 300), version = version + 1, updated_at = now() WHERE id = '{one}';",
        "COMMIT;",
    ])
    return {"list": list_sql, "one": one_sql, "create": create_sql, "update": update_sql}


BIG_PATHS = 200_000
BIG_PRS = 10_000
FILES_PER_PR = 10


def big_path(i):
    return f"pkg{i % 200}/mod{(i // 200) % 50}/file{i}.py"


def trace_file(n):
    """The file frame n (1..46) of the bench trace is in: PR n changed it first."""
    return (n * 7919) % BIG_PATHS


def bench_trace():
    lines = ["Traceback (most recent call last):"]
    frames = []
    for n in range(46, 0, -1):
        frames.append((f"/app/{big_path(trace_file(n))}", (n * 7) % 300 + 5, f"step_{n}"))
    frames.insert(10, ("/app/pkg3/mod4/__init__.py", 12, "load"))
    frames.insert(30, ("/app/pkg9/mod1/__init__.py", 40, "init"))
    frames.insert(0, ("/usr/local/lib/python3.12/site-packages/gunicorn/workers/sync.py", 135, "handle"))
    frames.insert(1, ("/usr/local/lib/python3.12/site-packages/flask/app.py", 880, "dispatch_request"))
    for file, line, function in frames:
        lines.append(f'  File "{file}", line {line}, in {function}')
        lines.append("    do_something()")
    lines.append("KeyError: 'currency'")
    return "\n".join(lines) + "\n"


# 200,000 paths (and an __init__.py per module: 10,000 of them), 10,000 PRs
# of 10 files each; PR n changes file (n * 7919 + k * 104729) % 200000.
SEED_PG = """
INSERT INTO repository_files (connection_id, repository_key, path, name_key)
SELECT '{conn}', 'bench/big', 'pkg' || (i % 200) || '/mod' || ((i / 200) % 50) || '/file' || i || '.py', 'file' || i || '.py'
FROM generate_series(0, {paths} - 1) i;
INSERT INTO repository_files (connection_id, repository_key, path, name_key)
SELECT '{conn}', 'bench/big', 'pkg' || a || '/mod' || b || '/__init__.py', '__init__.py'
FROM generate_series(0, 199) a, generate_series(0, 49) b;
INSERT INTO pull_requests (connection_id, repository_key, repository, number, title, author, url, merged_at, merge_commit_sha, updated_at)
SELECT '{conn}', 'bench/big', 'bench/big', n, 'Change ' || n, 'dev', 'https://github.com/bench/big/pull/' || n,
       now() - make_interval(mins => n * 4), NULL, now() - make_interval(mins => n * 4)
FROM generate_series(1, {prs}) n;
INSERT INTO pull_request_files (connection_id, repository_key, number, path, previous_path, ranges)
SELECT '{conn}', 'bench/big', n, 'pkg' || (f % 200) || '/mod' || ((f / 200) % 50) || '/file' || f || '.py', NULL,
       ((n * 7) % 300) || '-' || ((n * 7) % 300 + 10)
FROM generate_series(1, {prs}) n, LATERAL (SELECT (n * 7919 + k * 104729) % {paths} AS f FROM generate_series(0, {per_pr} - 1) k) x;
UPDATE connection_repositories SET sync_state = 'ready', last_synced_at = now(), default_branch = 'main', tree_revision = 'bench'
WHERE connection_id = '{conn}';
ANALYZE;
"""

SEED_SQLITE = """
WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {paths} - 1)
INSERT INTO repository_files (connection_id, repository_key, path, name_key)
SELECT '{conn}', 'bench/big', 'pkg' || (i % 200) || '/mod' || ((i / 200) % 50) || '/file' || i || '.py', 'file' || i || '.py' FROM s;
WITH RECURSIVE a(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM a WHERE x < 199),
               b(y) AS (SELECT 0 UNION ALL SELECT y + 1 FROM b WHERE y < 49)
INSERT INTO repository_files (connection_id, repository_key, path, name_key)
SELECT '{conn}', 'bench/big', 'pkg' || x || '/mod' || y || '/__init__.py', '__init__.py' FROM a, b;
WITH RECURSIVE p(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM p WHERE n < {prs})
INSERT INTO pull_requests (connection_id, repository_key, repository, number, title, author, url, merged_at, merge_commit_sha, updated_at)
SELECT '{conn}', 'bench/big', 'bench/big', n, 'Change ' || n, 'dev', 'https://github.com/bench/big/pull/' || n,
       strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || (n * 4) || ' minutes'), NULL,
       strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || (n * 4) || ' minutes') FROM p;
WITH RECURSIVE p(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM p WHERE n < {prs}),
               k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < {per_pr} - 1)
INSERT INTO pull_request_files (connection_id, repository_key, number, path, previous_path, ranges)
SELECT '{conn}', 'bench/big', n,
       'pkg' || (((n * 7919 + j * 104729) % {paths}) % 200) || '/mod' || ((((n * 7919 + j * 104729) % {paths}) / 200) % 50)
       || '/file' || ((n * 7919 + j * 104729) % {paths}) || '.py', NULL,
       ((n * 7) % 300) || '-' || ((n * 7) % 300 + 10) FROM p, k;
UPDATE connection_repositories SET sync_state = 'ready', last_synced_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
       default_branch = 'main', tree_revision = 'bench' WHERE connection_id = '{conn}';
-- No ANALYZE: a server's connections keep the statistics they opened with, so
-- the bench measures the plans the migrations' fixed statistics give, as in service.

"""

LUA_CORRELATE = LUA_COMMON + """
wrk.method = "POST"
wrk.path = "/v1/code/correlate"
wrk.body = [==[{body}]==]
"""


def seed_correlation(store, database_url, base, key):
    body = {"platform": "github", "credentials": {"token": "ghp_benchcorrelate0000000001"},
            "repositories": ["bench/big"], "lookbackDays": 365,
            "serviceMappings": [{"serviceName": "big", "repo": "bench/big", "pathPrefix": ""}]}
    conn = http("POST", f"{base}/v1/config/repos", key, body)["data"]["id"]
    params = dict(conn=conn, paths=BIG_PATHS, prs=BIG_PRS, per_pr=FILES_PER_PR)
    started = time.time()
    if store == "postgres":
        psql(SEED_PG.format(**params), database_url)
    else:
        import sqlite3
        db = sqlite3.connect(database_url.removeprefix("sqlite://"), timeout=30)
        db.executescript(SEED_SQLITE.format(**params))
        db.close()
    print(f"bench: seeded {BIG_PATHS:,} paths and {BIG_PRS * FILES_PER_PR:,} PR-file rows "
          f"on {store} in {time.time() - started:.0f} s", file=sys.stderr)
    answer = http("POST", f"{base}/v1/code/correlate", key, {"stacktrace": bench_trace(), "service": "big"})["data"]
    mapped = sum(1 for f in answer["frames"] if f["mapping"])
    if len(answer["frames"]) != 50 or mapped < 46 or not answer["suspectPullRequests"]:
        sys.exit(f"bench: the correlation seed does not answer as designed ({len(answer['frames'])} frames, {mapped} mapped)")
    return json.dumps({"stacktrace": bench_trace(), "service": "big"})


def sh(cmd, env=None, check=True):
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        sys.exit(f"bench: {cmd[0]} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result


def psql(sql, db_url=ADMIN_URL):
    return sh(["psql", db_url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])


def db_url_for(name):
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def http(method, url, key, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


class Rss:
    """Samples the server's resident memory while load runs; keeps the peak."""

    def __init__(self, pid):
        self.pid, self.peak, self.running = pid, 0, True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self):
        while self.running:
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            self.peak = max(self.peak, int(line.split()[1]))
            except OSError:
                return
            time.sleep(0.05)

    def stop(self):
        self.running = False
        self.thread.join()
        return self.peak / 1024.0


def wrk(url, script_text, duration, connections):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script_text)
        path = f.name
    out = sh(["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", path, url]).stdout
    os.unlink(path)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    return {"rps": rps, "p50": lat.get("50"), "p99": lat.get("99"), "errors": int(non2xx.group(1)) if non2xx else 0}


def pgbench(db_url, sql, duration, connections):
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(sql + "\n")
        path = f.name
    out = sh(["pgbench", "-n", "-M", "prepared", f"-c{connections}", "-j2", f"-T{duration}", "-f", path, db_url]).stdout
    os.unlink(path)
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


def run_store(binary, store, args):
    workdir = tempfile.mkdtemp(prefix=f"sigsentry-bench-{store}-")
    if store == "postgres":
        psql(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        psql(f"CREATE DATABASE {BENCH_DB}")
        database_url = db_url_for(BENCH_DB)
    else:
        database_url = f"sqlite://{workdir}/bench.db"
    env = dict(os.environ, DATABASE_URL=database_url, SIGSENTRY_MASTER_KEY=MASTER_KEY, RUST_LOG="warn",
               SIGSENTRY_QUOTAS="enterprise=1000000000", SIGSENTRY_LISTEN=f"127.0.0.1:{args.port}",
               SIGSENTRY_DATA_DIR=workdir,
               # The load is one key; the per-key rate limit is not what is measured.
               SIGSENTRY_RATE_LIMIT="1000000000",
               # An API replica, as deployed beside separate workers: the thousands of
               # connections the create scenario makes would otherwise keep a worker
               # busy failing to reach github.com (there is no internet here) and
               # measure that instead.
               SIGSENTRY_SYNC_WORKER="false")
    env.pop("SIGSENTRY_MASTER_KEYS", None)

    def cli(*a):
        return json.loads(sh([binary, *a, "--json"], env=env).stdout)

    tenant = cli("tenant", "create", "--name", "bench", "--plan", "enterprise")["id"]
    project = cli("project", "create", "--tenant", tenant, "--name", "bench")["id"]
    key = cli("key", "create", "--tenant", tenant, "--project", project, "--permissions", "config:read,config:write")["key"]

    server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        ids = []
        for i in range(25):
            body = {"platform": "github", "credentials": {"token": "ghp_benchseed0000000000000001"},
                    "repositories": [f"seed/repo-{i}"],
                    "serviceMappings": [{"serviceName": f"svc-{i}", "repo": f"seed/repo-{i}", "pathPrefix": "src/"}]}
            ids.append(http("POST", f"{base}/v1/config/repos", key, body)["data"]["id"])

        scenarios = {
            "GET list": ("list", LUA_GET.format(key=key, path="/v1/config/repos?limit=25")),
            "GET one": ("one", LUA_GET.format(key=key, path=f"/v1/config/repos/{ids[0]}")),
            "POST create": ("create", LUA_CREATE.format(key=key)),
            "PUT update": ("update", LUA_UPDATE.format(key=key, ids=",".join(f'"{i}"' for i in ids))),
        }
        rss = Rss(server.pid)
        results = {}
        for name, (slug, script) in scenarios.items():
            results[name] = wrk(base, script, args.duration, args.connections)
            results[name]["slug"] = slug
        if not args.skip_correlation:
            # A project of its own: correlation reads every active connection of
            # the project, and the create scenario has just made thousands.
            corr_project = cli("project", "create", "--tenant", tenant, "--name", "correlation")["id"]
            corr_key = cli("key", "create", "--tenant", tenant, "--project", corr_project,
                           "--permissions", "config:read,config:write")["key"]
            body = seed_correlation(store, database_url, base, corr_key)
            script = LUA_CORRELATE.format(key=corr_key, body=body)
            for clients in (1, 8):
                results[f"POST correlate ({clients})"] = wrk(base, script, args.duration, clients)
        peak = rss.stop()
    finally:
        server.terminate()
        server.wait(timeout=20)

    if store == "postgres":
        import hashlib
        key_hash = hashlib.sha256(key.encode()).hexdigest()
        scripts = floor_scripts(project, key_hash, ids)
        for name, result in results.items():
            if "slug" in result:
                result["floor"] = pgbench(database_url, scripts[result["slug"]], args.duration, args.connections)
        psql(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    return results, peak


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_SECONDS", "10")))
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=18099)
    parser.add_argument("--stores", default="postgres,sqlite")
    parser.add_argument("--skip-correlation", action="store_true")
    args = parser.parse_args()

    rows = []
    for store in args.stores.split(","):
        results, peak = run_store(args.binary, store, args)
        for name, r in results.items():
            floor = r.get("floor")
            ratio = f"{r['rps'] / floor * 100:.0f}%" if floor else "n/a"
            rows.append((store, name, f"{r['rps']:.0f}", r["p50"], r["p99"], f"{floor:.0f}" if floor else "n/a",
                         ratio, str(r["errors"]), f"{peak:.1f}"))
    header = ("store", "endpoint", "req/s", "p50", "p99", "floor tps", "vs floor", "non-2xx", "peak RSS MiB")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    print(f"\n{args.connections} connections (correlate: as shown), {args.duration} s per run, {os.cpu_count()} cores\n")
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))


if __name__ == "__main__":
    sys.exit(main())
