#!/usr/bin/env python3
"""Load benchmark of the Code Repos API, with the database floor measured in the same run.

For each store (PostgreSQL, SQLite) it starts the release binary, seeds a project
with 25 connections, and drives four endpoints with wrk (32 connections): GET list,
GET one, POST create (a unique body per request) and PUT. On PostgreSQL it then runs
pgbench with the SQL those endpoints issue, at the same concurrency: the floor. It
prints req/s, p50, p99, the ratio to the floor, and the server's peak RSS.
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
    out = sh(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", path, url]).stdout
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
               SIGSENTRY_RATE_LIMIT="1000000000")
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
        peak = rss.stop()
    finally:
        server.terminate()
        server.wait(timeout=20)

    if store == "postgres":
        import hashlib
        key_hash = hashlib.sha256(key.encode()).hexdigest()
        scripts = floor_scripts(project, key_hash, ids)
        for name, result in results.items():
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
    print(f"\n{args.connections} connections, {args.duration} s per run, {os.cpu_count()} cores\n")
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))


if __name__ == "__main__":
    sys.exit(main())
