"""Schemathesis hooks for the Code Repos API.

The document states every rule a JSON Schema can state. A few rules of a
valid request are not about one value but about several, or about what is
stored already, and no JSON Schema states them:

1. a service mapping's `repo` must be one of the body's `repositories`;
2. repositories are distinct without regard to case (`uniqueItems` compares
   exactly), and service names are distinct in a body (compared in NFC);
3. on PUT, credentials and repository names must be of the stored
   connection's platform, and a repository that a kept mapping names must
   stay;
4. a pull-request cursor is opaque: only one the server wrote decodes.

One failure is dropped (`filter_failure`): "created resource not found" for
a connection the server answered as an idempotent replay and deleted since
(the contract replays the stored 201 whatever became of the connection).

For a request generated as valid (positive), these hooks repair those rules,
and only those, so that the request is valid in full; a request generated as
invalid (negative) is left alone. A repository or service name already held
by another connection of the project is answered 409, which the document
declares and the positive check accepts: no hook is needed for it.

Each accommodation is listed in docs/api.md ("Fuzzing").

Environment: FUZZ_BASE_URL, FUZZ_KEY, FUZZ_PROJECT_ID (set by fuzz/run.sh).
"""

from __future__ import annotations

import base64
import os
import re
import unicodedata
from collections.abc import MutableMapping
from typing import Any

import requests
import schemathesis
from schemathesis.core.parameters import ParameterLocation

BASE_URL = os.environ.get("FUZZ_BASE_URL", "http://127.0.0.1:8080")
KEY = os.environ.get("FUZZ_KEY", "")
PROJECT_ID = os.environ.get("FUZZ_PROJECT_ID", "")

# Repository name patterns by platform, read from the document itself.
PATTERNS: dict[str, re.Pattern[str]] = {}

SESSION = requests.Session()


@schemathesis.hook
def after_load_schema(context: Any, schema: Any) -> None:
    raw = schema.raw_schema
    for variant in raw["components"]["schemas"]["CreateConnectionBody"]["oneOf"]:
        platform = variant["properties"]["platform"]["enum"][0]
        pattern = variant["properties"]["repositories"]["items"]["pattern"]
        PATTERNS[platform] = re.compile(pattern)


def _positive(case: Any, location: ParameterLocation) -> bool:
    meta = case.meta
    if meta is None:
        return False
    component = meta.components.get(location)
    if component is None:
        return meta.generation.mode.is_positive
    return component.mode.is_positive


def _distinct_repositories(names: list[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for name in names:
        if name.lower() not in seen:
            seen.add(name.lower())
            kept.append(name)
    return kept


def _name_for(platform: str, name: str, index: int) -> str:
    """`name` when the platform takes it, else a name the platform takes."""
    if PATTERNS[platform].search(name):
        return name
    return f"fuzz{index}/repo{index}"


def _fix_mappings(mappings: list[dict], repositories: list[str]) -> list[dict]:
    """Each mapping names one of `repositories`; service names distinct (in NFC, as the server compares them)."""
    names: set[str] = set()
    fixed = []
    for i, mapping in enumerate(mappings):
        name = unicodedata.normalize("NFC", mapping.get("serviceName", ""))
        if name in names:
            continue
        names.add(name)
        fixed.append({**mapping, "repo": repositories[i % len(repositories)]})
    return fixed


def _fix_create(body: dict) -> dict:
    repositories = _distinct_repositories(body["repositories"])
    body = {**body, "repositories": repositories}
    if "serviceMappings" in body:
        body["serviceMappings"] = _fix_mappings(body["serviceMappings"], repositories)
    return body


def _credentials_for(platform: str, credentials: dict) -> dict:
    """`credentials` in a form `platform` takes, keeping the drawn secret."""
    secret = (
        credentials.get("token")
        or credentials.get("appPassword")
        or credentials.get("apiToken")
        or (credentials.get("oauth") or {}).get("accessToken")
        or "fuzz-secret-value"
    )
    if platform == "github":
        if "token" in credentials or "installationId" in credentials:
            return credentials
        return {"token": secret}
    if platform == "gitlab":
        if "token" in credentials or "oauth" in credentials:
            return credentials
        return {"token": secret}
    # Bitbucket: no baseUrl, whatever the form.
    if "oauth" in credentials:
        return {"oauth": credentials["oauth"]}
    if "token" not in credentials and "installationId" not in credentials:
        return credentials
    return {"username": "fuzz", "appPassword": secret}


def _stored(connection_id: str) -> dict | None:
    headers = {"Authorization": f"Bearer {KEY}", "X-Project-Id": PROJECT_ID}
    response = SESSION.get(f"{BASE_URL}/v1/config/repos/{connection_id}", headers=headers, timeout=10)
    if response.status_code != 200:
        return None
    return response.json()["data"]


def _fix_update(body: dict, connection_id: str) -> dict:
    stored = _stored(connection_id)
    if stored is None:
        return body  # 404: nothing to be consistent with
    platform = stored["platform"]
    body = dict(body)
    if "credentials" in body:
        body["credentials"] = _credentials_for(platform, body["credentials"])
    if "repositories" in body:
        names = [_name_for(platform, name, i) for i, name in enumerate(body["repositories"])]
        repositories = _distinct_repositories(names)
        if "serviceMappings" not in body:
            # The kept mappings' repositories must stay.
            kept = _distinct_repositories([m["repo"] for m in stored["serviceMappings"]])
            keys = {k.lower() for k in kept}
            repositories = kept + [r for r in repositories if r.lower() not in keys]
            repositories = repositories[:100]
        body["repositories"] = repositories
    if "serviceMappings" in body:
        repositories = body.get("repositories", stored["repositories"])
        body["serviceMappings"] = _fix_mappings(body["serviceMappings"], repositories)
    # A GitHub App connection has no webhook secret of its own to rotate
    # (400 at /rotateWebhookSecret): a rule on the stored state, not the document.
    credentials = body.get("credentials")
    app_after = "installationId" in credentials if isinstance(credentials, dict) else stored["credentials"]["kind"] == "githubApp"
    if app_after and body.get("rotateWebhookSecret"):
        body["rotateWebhookSecret"] = False
    return body


def _pr_cursor(drawn: str) -> str:
    """A cursor as the server writes one: merge time, number, repository."""
    raw = f"1700000000000|{len(drawn)}|fuzz/repo".encode()
    return "p1" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


REQUESTS = 0
# Connection ids the server answered as an idempotent replay, and ids it deleted.
REPLAYED: set[str] = set()
DELETED: set[str] = set()


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Counts the requests schemathesis sends (fuzz/run.sh reports the figure),
    and notes replayed creations and deletions (see `filter_failure`)."""
    global REQUESTS
    REQUESTS += 1
    path = os.environ.get("FUZZ_COUNT_FILE")
    if path:
        with open(path, "w") as out:
            out.write(str(REQUESTS))
    operation = (case.operation.method.upper(), case.operation.path)
    if operation == ("POST", "/v1/config/repos") and response.status_code == 201:
        if response.headers.get("idempotent-replayed") == ["true"]:
            REPLAYED.add(response.json()["data"]["id"])
    elif operation == ("DELETE", "/v1/config/repos/{id}") and response.status_code == 200:
        DELETED.add(str((case.path_parameters or {}).get("id")))


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keeps every failure but one kind: "created resource not found" after an
    idempotent replay of a creation whose connection was deleted since. The
    contract replays the stored answer (201, the first connection's id) for the
    same key and body, whatever became of that connection; the 404 that
    follows is right."""
    if type(failure).__name__ != "EnsureResourceAvailability":
        return True
    connection_id = str((case.path_parameters or {}).get("id"))
    return not (connection_id in REPLAYED and connection_id in DELETED)


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    operation = (case.operation.method.upper(), case.operation.path)
    if _positive(case, ParameterLocation.HEADER) and isinstance(case.headers, MutableMapping):
        # A drawn project id names no project of the key: 403. Name the key's own.
        if "X-Project-Id" in case.headers:
            case.headers["X-Project-Id"] = PROJECT_ID
    if not isinstance(case.body, dict) or not _positive(case, ParameterLocation.BODY):
        body_ok = False
    else:
        body_ok = True
    if operation == ("POST", "/v1/config/repos") and body_ok and isinstance(case.body.get("repositories"), list):
        case.body = _fix_create(case.body)
    elif operation == ("PUT", "/v1/config/repos/{id}") and body_ok:
        connection_id = (case.path_parameters or {}).get("id")
        if isinstance(connection_id, str):
            case.body = _fix_update(case.body, connection_id)
    elif operation == ("GET", "/v1/config/repos/{id}/pull-requests"):
        query = case.query
        if _positive(case, ParameterLocation.QUERY) and isinstance(query, dict) and isinstance(query.get("cursor"), str):
            query["cursor"] = _pr_cursor(query["cursor"])
    return case
