#!/usr/bin/env python3
"""Build SigSentry's code-correlation evaluation dataset from real git history.

What it does (details in eval/README.md):
  for each repository, find fixing PRs, blame the lines each fix deleted or
  changed at the fix's parent (SZZ), map the blamed commits to their PRs (the
  culprits), find the function that was fixed, and write the stack trace the
  bug would have logged. Only derived data is written: paths, hunk headers,
  commit/PR metadata and the synthetic traces. No source file contents.

Re-running it
  1. Fetch every repository listed in eval/repos.json with the mounted search
     tool's `fetch` (it brings a bare git dir to /work/.mirror/OWNER+NAME/repo).
  2. From the worktree root:
         python3 eval/build_dataset.py /work/.mirror/*/repo
     or name them explicitly (OWNER/NAME=PATH also works):
         python3 eval/build_dataset.py /work/.mirror/pallets+flask/repo ...
     Options: --out DIR (default: this script's directory), --only OWNER/NAME
     (repeatable), --use-mirror-head. By default the mirror commit recorded
     in eval/repos.json is used when the mirror has it, so the output is
     reproduced byte for byte; --use-mirror-head takes the mirror's HEAD.
     A full run takes about 12 minutes on 2 cores.
  Repositories: REPOS below (language, source root, quota, `since`); a
  mirror whose OWNER/NAME is not in REPOS is skipped.
  Only the Python 3.11 standard library and git (>= 2.38) are needed.
  The selection is deterministic: candidates are processed in an order
  seeded by SEED and the repository name; nothing depends on wall time.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import gzip
import hashlib
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter, defaultdict

SEED = 20260823
WINDOW_DAYS = 365
MAX_FIX_SOURCE_FILES = 4      # a fix touching more source files is not a focused fix
MAX_FIX_DELETED_LINES = 60    # nor one that rewrites more than this many lines
MASS_CHANGE_FILES = 60        # blamed PRs touching more files than this, with a
                              # formatting-like title, are ignored (--ignore-rev)
GZIP_OVER = 500_000

# --------------------------------------------------------------------------
# Repositories and languages
# --------------------------------------------------------------------------

LANGS = {
    "python": {"ext": (".py",)},
    "java": {"ext": (".java",)},
    "kotlin": {"ext": (".kt",)},
    "javascript": {"ext": (".js", ".mjs", ".cjs")},
    "typescript": {"ext": (".ts", ".tsx")},
    "go": {"ext": (".go",)},
    "ruby": {"ext": (".rb",)},
    "rust": {"ext": (".rs",)},
    "csharp": {"ext": (".cs",)},
}

# language group used for counting/reporting and for trace formats
GROUP = {"python": "python", "java": "java", "kotlin": "java", "javascript": "javascript",
         "typescript": "javascript", "go": "go", "ruby": "ruby", "rust": "rust", "csharp": "dotnet"}

COMMON_EXCLUDE = [
    r"(^|/)(tests?|testing|testsuite|test_?utils|spec|specs|__tests__|test_suite|testdata|fixtures?|benches|benchmarks?|examples?|samples?|docs?|scripts|tools|vendor|third_party|node_modules|dist|build|\.github)/",
    r"(^|/)([\w.-]*[-_.])?test(s|ing)?([-_.][\w.-]*)?/", r"(^|/)test_[^/]*$", r"_test\.[a-z]+$", r"(^|/)conftest\.py$", r"\.(spec|test)\.[jt]sx?$",
    r"Tests?\.(java|kt|cs)$", r"(^|/)[^/]*Test(s|Case)?/", r"\.d\.ts$", r"\.min\.js$",
]

# repo -> config. `language`: the language whose files are source files.
# `src`: optional regex a source path must match. `exclude`: extra regexes.
# `since`: only fixes merged at or after this date become cases (keeps the
# PR history that must be shipped small for very active repositories).
REPOS = {
    "pallets/flask": {"language": "python", "src": r"^(src/)?flask/", "host": "web", "cases": 14},
    "psf/requests": {"language": "python", "src": r"^(src/)?requests/", "host": "lib", "cases": 13},
    "encode/httpx": {"language": "python", "src": r"^httpx/", "host": "lib", "cases": 13},
    "google/gson": {"language": "java", "src": r"/src/main/java/", "exclude": [r"^(metrics|test-\w+)/"], "host": "lib"},
    "square/okhttp": {"language": "kotlin", "src": r"/src/(main|commonJvmAndroid|jvmMain|androidMain|commonMain)/kotlin/", "host": "lib"},
    "expressjs/express": {"language": "javascript", "src": r"^(lib/|index\.js$)", "host": "web"},
    "axios/axios": {"language": "javascript", "src": r"^lib/", "host": "lib"},
    "renovatebot/renovate": {"language": "typescript", "src": r"^lib/", "since": "2025-01-01", "host": "cli"},
    "spf13/cobra": {"language": "go", "host": "lib", "cases": 13},
    "gin-gonic/gin": {"language": "go", "host": "web", "cases": 13},
    "grafana/loki": {"language": "go", "src": r"^(pkg|cmd|clients)/", "since": "2025-03-01", "host": "server", "cases": 14},
    "sinatra/sinatra": {"language": "ruby", "src": r"^(lib|rack-protection/lib|sinatra-contrib/lib)/", "host": "web"},
    "rubocop/rubocop": {"language": "ruby", "src": r"^lib/", "exclude": [r"^lib/rubocop/rspec/"], "since": "2023-01-01", "host": "cli"},
    "clap-rs/clap": {"language": "rust", "src": r"^(clap_[a-z_]+/src/|src/)", "host": "lib"},
    "serde-rs/serde": {"language": "rust", "src": r"^serde[a-z_]*/src/", "host": "lib"},
    "AutoMapper/AutoMapper": {"language": "csharp", "src": r"^src/AutoMapper/", "host": "lib"},
    "JamesNK/Newtonsoft.Json": {"language": "csharp", "src": r"^Src/Newtonsoft\.Json/", "host": "lib"},
}

MAX_CASES_PER_REPO = 20   # per-repository "cases" overrides it, to keep each language near 40

CLOSES_RE = re.compile(r"\b(fix(es|ed)?|close[sd]?|resolve[sd]?)\s+(#\d+|https://github\.com/\S+/issues/\d+)", re.I)
NOISE_RE = re.compile(
    r"\b(typos?|docs?|documentation|readme|changelog|ci|lint(er|ing)?|clippy|flake8|mypy|pyright|typing|type hints?|"
    r"type annotations?|spelling|codespell|formatting|rustfmt|gofmt|prettier|whitespace|deps|dependenc(y|ies)|bump|"
    r"release|workflow|benchmarks?|warnings?|comments?|license|copyright|links?|chore|refactor|grammar|grammatical|wording|"
    r"rephrase|docstrings?|translations?|i18n|badge|logo|website|examples?|style issues|code style|black|isort|ruff|pep8|"
    r"pylint|flake8|eslint|rubocop offen[cs]es|golangci|gofumpt)\b", re.I)
FORMAT_RE = re.compile(r"\b(reformat\w*|black|prettier|rustfmt|cargo fmt|gofmt|gofumpt|isort|ruff format|autoformat\w*|"
                       r"apply formatting|format (the )?code|code ?style|whitespace|relicens\w*|license headers?|modernize|pyupgrade|"
                       r"trailing commas?|quote style|indentation)\b", re.I)


def iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_since(s):
    return int(dt.datetime.fromisoformat(s).replace(tzinfo=dt.timezone.utc).timestamp())


# --------------------------------------------------------------------------
# Git access
# --------------------------------------------------------------------------

class Git:
    def __init__(self, gitdir):
        self.gitdir = gitdir
        self._cat = None
        self._blob_cache = {}

    def run(self, *args, check=True, text=True):
        p = subprocess.run(["git", "--git-dir", self.gitdir, "-c", "core.quotePath=false", *args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if check and p.returncode != 0:
            raise RuntimeError("git %s failed: %s" % (" ".join(args[:4]), p.stderr.decode(errors="replace")[:500]))
        return p.stdout.decode("utf-8", errors="replace") if text else p.stdout

    def show(self, rev, path):
        """Text of path at rev, or None."""
        key = (rev, path)
        if key in self._blob_cache:
            return self._blob_cache[key]
        if self._cat is None:
            self._cat = subprocess.Popen(["git", "--git-dir", self.gitdir, "cat-file", "--batch"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._cat.stdin.write(("%s:%s\n" % (rev, path)).encode())
        self._cat.stdin.flush()
        header = self._cat.stdout.readline().decode()
        if header.endswith("missing\n") or " " not in header:
            out = None
        else:
            size = int(header.split()[2])
            data = self._cat.stdout.read(size)
            self._cat.stdout.read(1)
            out = data.decode("utf-8", errors="replace") if b"\0" not in data[:8000] else None
            if out and out.startswith("\ufeff"):
                out = " " + out[1:]   # a BOM: keep offsets, lose the character
        if len(self._blob_cache) > 4000:
            self._blob_cache.clear()
        self._blob_cache[key] = out
        return out

    def close(self):
        if self._cat:
            self._cat.stdin.close()
            self._cat.wait()
            self._cat = None


# --------------------------------------------------------------------------
# History: PRs and which commits belong to which PR
# --------------------------------------------------------------------------

MERGE_PR_RE = re.compile(r"^Merge pull request #(\d+) from ([^/\s]+)/?(\S*)")
SQUASH_PR_RE = re.compile(r"\(#(\d+)\)\s*$")
NOREPLY_RE = re.compile(r"^(?:\d+\+)?([A-Za-z0-9-]+(?:\[bot\])?)@users\.noreply\.github\.com$")


class Commit:
    __slots__ = ("sha", "parents", "ctime", "atime", "aname", "aemail", "subject", "body")


def load_commits(git, head):
    fmt = "%H%x1f%P%x1f%ct%x1f%at%x1f%an%x1f%ae%x1f%s%x1f%b%x1e"
    out = git.run("log", "--topo-order", "--format=" + fmt, head)
    commits = []
    for rec in out.split("\x1e"):
        rec = rec.strip("\n")
        if not rec:
            continue
        f = rec.split("\x1f")
        c = Commit()
        c.sha, c.parents = f[0], f[1].split()
        c.ctime, c.atime = int(f[2]), int(f[3])
        c.aname, c.aemail, c.subject, c.body = f[4], f[5], f[6], f[7]
        commits.append(c)
    return commits


class PR:
    __slots__ = ("number", "title", "author", "merged", "sha", "kind", "branch", "body", "files", "commits")

    def to_json(self):
        return {"number": self.number, "title": self.title, "author": self.author,
                "mergedAt": iso(self.merged), "mergeCommitSha": self.sha, "files": self.files}


def author_login(name, email):
    m = NOREPLY_RE.match(email or "")
    return m.group(1) if m else name


def find_prs(git, commits):
    """PRs among all commits reachable from head: GitHub merge commits and
    squash commits whose subject ends in (#N). The earliest commit carrying a
    number is the PR's merge; later ones (cherry-picks, back-ports) also map
    to it. Returns {number: PR}, {sha: number}."""
    prs, sha2pr = {}, {}
    for c in sorted(commits, key=lambda c: (c.ctime, c.sha)):
        num = None
        if len(c.parents) >= 2:
            m = MERGE_PR_RE.match(c.subject)
            if m:
                num = int(m.group(1))
                title = next((l.strip() for l in c.body.splitlines() if l.strip()), m.group(3) or c.subject)
                author, branch, kind = m.group(2), m.group(3), "merge"
        else:
            m = SQUASH_PR_RE.search(c.subject)
            if m:
                num = int(m.group(1))
                title = SQUASH_PR_RE.sub("", c.subject).strip()
                author, branch, kind = author_login(c.aname, c.aemail), "", "squash"
        if num is None:
            continue
        sha2pr[c.sha] = num
        if num in prs:
            continue
        p = PR()
        p.number, p.title, p.author, p.merged, p.sha = num, title, author, c.ctime, c.sha
        p.kind, p.branch, p.body, p.files, p.commits = kind, branch, c.body, None, [c.sha]
        prs[num] = p
    return prs, sha2pr


def map_merge_members(git, prs, sha2pr, since_ts):
    """Commits of merged PR branches (M^1..M^2) belong to the PR of M."""
    for p in sorted(prs.values(), key=lambda p: (p.merged, p.number)):
        if p.kind != "merge" or p.merged < since_ts:
            continue
        out = git.run("rev-list", "%s^1..%s^2" % (p.sha, p.sha), check=False)
        for sha in out.split():
            sha2pr.setdefault(sha, p.number)
            p.commits.append(sha)


# --------------------------------------------------------------------------
# Diffs
# --------------------------------------------------------------------------

HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def diff_files(git, parent, commit):
    """Files changed between parent and commit, with -U0 hunk headers.
    Returns list of dicts {path, previousPath, status, hunks: [(a, b, c, d)]}."""
    raw = git.run("diff", "--raw", "-z", "-M", "--no-abbrev", parent, commit)
    parts = raw.split("\0")
    entries, i = [], 0
    while i < len(parts):
        meta = parts[i]
        if not meta.startswith(":"):
            i += 1
            continue
        st = meta.split()[-1]
        code = st[0]
        if code in "RC":
            old, new = parts[i + 1], parts[i + 2]
            i += 3
        else:
            old = new = parts[i + 1]
            i += 2
        status = {"A": "added", "D": "removed", "R": "renamed", "C": "added"}.get(code, "modified")
        entries.append({"path": new, "previousPath": old if code == "R" else None, "status": status,
                        "oldPath": old, "hunks": []})
    patch = git.run("diff", "-U0", "-M", "--no-color", "--no-ext-diff", parent, commit)
    idx = -1
    for line in patch.split("\n"):
        if line.startswith("diff --git "):
            idx += 1
        elif line.startswith("@@") and 0 <= idx < len(entries):
            m = HUNK_RE.match(line)
            if m:
                a, b, c, d = m.groups()
                entries[idx]["hunks"].append((int(a), 1 if b is None else int(b), int(c), 1 if d is None else int(d)))
    return entries


def _unquote(p):
    if p.startswith('"') and p.endswith('"'):
        b = p[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1")
        return b.decode("utf-8", errors="replace")
    return p


def _diff_batch(git, shas, res):
    """One `git log` over shas; False when git failed."""
    p = subprocess.Popen(["git", "--git-dir", git.gitdir, "-c", "core.quotePath=false", "log", "--no-walk=unsorted", "--stdin",
                          "--diff-merges=first-parent", "--raw", "-U0", "-M", "--no-abbrev", "--no-color", "--no-ext-diff",
                          "--format=%x00COMMIT %H"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(("\n".join(shas) + "\n").encode())
    p.stdin.close()
    cur, cur_sha, idx = None, None, -1
    for raw in p.stdout:
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        if line.startswith("\0COMMIT "):
            cur_sha = line[8:].strip()
            cur = res.setdefault(cur_sha, [])
            idx = -1
            continue
        if cur is None:
            continue
        if line.startswith(":") and "\t" in line:
            meta, *names = line.split("\t")
            code = meta.split()[-1][0]
            if code in "RC" and len(names) >= 2:
                old, new = _unquote(names[0]), _unquote(names[1])
            else:
                old = new = _unquote(names[0])
            status = {"A": "added", "D": "removed", "R": "renamed", "C": "added"}.get(code, "modified")
            cur.append({"path": new, "previousPath": old if code == "R" else None, "status": status, "oldPath": old, "hunks": []})
        elif line.startswith("diff --git "):
            idx += 1
        elif line.startswith("@@") and 0 <= idx < len(cur):
            m = HUNK_RE.match(line)
            if m:
                a, b, c, d = m.groups()
                cur[idx]["hunks"].append((int(a), 1 if b is None else int(b), int(c), 1 if d is None else int(d)))
    p.stderr.read()
    return p.wait() == 0


def _raw_entries(git, parent, sha, renames=True):
    args = ["diff", "--raw", "-z", "--no-abbrev"] + (["-M"] if renames else ["--no-renames"]) + [parent, sha]
    raw = git.run(*args, check=False).split("\0")
    out, i = [], 0
    while i < len(raw):
        meta = raw[i]
        if not meta.startswith(":"):
            i += 1
            continue
        code = meta.split()[-1][0]
        if code in "RC":
            old, new = raw[i + 1], raw[i + 2]
            i += 3
        else:
            old = new = raw[i + 1]
            i += 2
        out.append((code, old, new))
    return out


def _diff_degraded(git, sha):
    """File list and per-file hunks of a commit some of whose blobs the
    snapshot lacks; a file whose diff cannot be made keeps no hunks."""
    parent = git.run("rev-parse", sha + "^1", check=False).strip()
    try:
        return diff_files(git, parent, sha)
    except RuntimeError:
        pass
    ents = _raw_entries(git, parent, sha, renames=True) or _raw_entries(git, parent, sha, renames=False)
    files = []
    for code, old, new in ents:
        status = {"A": "added", "D": "removed", "R": "renamed", "C": "added"}.get(code, "modified")
        hunks = []
        out = subprocess.run(["git", "--git-dir", git.gitdir, "diff", "-U0", "--no-color", parent, sha, "--", old, new],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if out.returncode == 0:
            for l in out.stdout.decode("utf-8", "replace").split("\n"):
                m = HUNK_RE.match(l)
                if m:
                    a, b, c, d = m.groups()
                    hunks.append((int(a), 1 if b is None else int(b), int(c), 1 if d is None else int(d)))
        files.append({"path": new, "previousPath": old if code == "R" else None, "status": status, "oldPath": old, "hunks": hunks})
    return files


def diff_many(git, shas):
    """diff_files(first parent, sha) for many commits in few git processes.
    A snapshot may lack large blobs (fetch leaves out files of 4 MiB and
    more): commits touching one are diffed file by file, and a file whose
    diff cannot be made keeps its path with no hunks (as GitHub leaves
    `patch` out for very large files)."""
    res = {}
    if not shas:
        return res
    # which commits reference a blob the snapshot does not have?
    p = subprocess.run(["git", "--git-dir", git.gitdir, "log", "--no-walk=unsorted", "--stdin", "--diff-merges=first-parent",
                        "--raw", "--no-abbrev", "--no-renames", "--format=%x00COMMIT %H"],
                       input=("\n".join(shas) + "\n").encode(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    blobs, cur = defaultdict(set), None
    for line in p.stdout.decode("utf-8", "replace").split("\n"):
        if line.startswith("\0COMMIT "):
            cur = line[8:].strip()
        elif line.startswith(":") and cur:
            f = line.split("\t")[0].split()
            for b in (f[2], f[3]):
                if set(b) != {"0"} and f[0][1:] != "160000" and f[1] != "160000":
                    blobs[cur].add(b)
    allb = sorted(set().union(*blobs.values())) if blobs else []
    chk = subprocess.run(["git", "--git-dir", git.gitdir, "cat-file", "--batch-check"], input=("\n".join(allb) + "\n").encode(),
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    missing = {l.split()[0] for l in chk.stdout.decode().split("\n") if l.endswith(" missing")}
    bad = [s for s in shas if blobs.get(s, set()) & missing]
    good = [s for s in shas if s not in set(bad)]
    if good and not _diff_batch(git, good, res):
        # git buffers its output, so any of them may be cut short: one by one
        for s in good:
            res[s] = _diff_degraded(git, s)
    for s in bad:
        res[s] = _diff_degraded(git, s)
    return res


def hunk_header(h):
    a, b, c, d = h
    return "@@ -%s +%s @@" % ("%d" % a if b == 1 else "%d,%d" % (a, b), "%d" % c if d == 1 else "%d,%d" % (c, d))


# --------------------------------------------------------------------------
# Source structure: a small function finder per language
# --------------------------------------------------------------------------

class Func:
    """A named function found in a file: 1-based inclusive line range."""
    __slots__ = ("name", "start", "end", "scope", "kind", "params", "anon_class", "extra")

    def __init__(self, name, start, end, scope, kind="func", params="", extra=None):
        self.name, self.start, self.end, self.scope, self.kind = name, start, end, scope, kind
        self.params, self.anon_class, self.extra = params, None, extra or {}

    def __repr__(self):
        return "Func(%s %s %d-%d)" % ("::".join(s[1] for s in self.scope), self.name, self.start, self.end)


RUST_CHAR_RE = re.compile(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]{1,6}\}|.)|[^\\'\n])'")
JS_REGEX_PREV = set("(,=:[!&|?{};+-*%<>~^")
JS_REGEX_KW = {"return", "typeof", "case", "in", "of", "new", "delete", "void", "throw", "yield", "await"}


def clean_c_like(text, lang):
    """Blank comments and string/char literals (keep newlines) so that braces
    and parentheses can be matched."""
    out = list(text)
    n, i = len(text), 0

    def blank(a, b):
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        ch = text[i]
        nx = text[i + 1] if i + 1 < n else ""
        if ch == "/" and nx == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
            continue
        if ch == "/" and nx == "*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
            continue
        if lang in ("javascript", "typescript") and ch == "/":
            k = i - 1
            while k >= 0 and text[k] in " \t":
                k -= 1
            prev = text[k] if k >= 0 else ";"
            word = re.search(r"([A-Za-z_$]+)$", text[max(0, k - 10):k + 1])
            if prev in JS_REGEX_PREV or prev == "\n" or (word and word.group(1) in JS_REGEX_KW):
                j, incls = i + 1, False
                while j < n and text[j] != "\n":
                    c = text[j]
                    if c == "\\":
                        j += 2
                        continue
                    if c == "[":
                        incls = True
                    elif c == "]":
                        incls = False
                    elif c == "/" and not incls:
                        break
                    j += 1
                if j < n and text[j] == "/":
                    blank(i + 1, j)
                    i = j + 1
                    continue
        if lang == "rust" and ch == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            close = '"' + m.group(1)
            j = text.find(close, i + len(m.group(0)))
            j = n if j < 0 else j + len(close)
            blank(i, j)
            i = j
            continue
        if ch == '"' and text.startswith('"""', i) and lang in ("java", "kotlin", "csharp"):
            j = text.find('"""', i + 3)
            j = n if j < 0 else j + 3
            blank(i, j)
            i = j
            continue
        if ch == '"' and lang == "csharp" and i > 0 and text[i - 1] == "@" or (ch == '"' and lang == "csharp" and i > 1 and text[i - 2:i] in ("$@", "@$")):
            j = i + 1
            while j < n:
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        j += 2
                        continue
                    break
                j += 1
            blank(i, j + 1)
            i = j + 1
            continue
        if ch == '"' or (ch == "`" and lang in ("javascript", "typescript", "go")) or (ch == "'" and lang in ("javascript", "typescript")):
            q, j = ch, i + 1
            multiline = ch == "`"
            while j < n:
                c = text[j]
                if c == "\\" and not (lang == "go" and q == "`"):
                    j += 2
                    continue
                if c == q:
                    break
                if c == "\n" and not multiline:
                    break
                j += 1
            blank(i, j + 1)
            i = j + 1
            continue
        if ch == "'" and lang in ("java", "kotlin", "csharp", "go", "rust"):
            m = RUST_CHAR_RE.match(text, i)
            if m:
                blank(i, m.end())
                i = m.end()
                continue
        i += 1
    return "".join(out)


CONT_START = (")", ".", ",", ":", "->", "=>", "where", "throws", "extends", "implements", "|", "&&", "||", "?", "+", "<", ">")
CONT_END = ("(", ",", "=", "->", "=>", ":", "<", "+", "&&", "||", "?", "|", ".")


def header_suffix(hlines):
    """From the lines between the previous statement boundary and a '{', keep
    the trailing declaration (walk back over continuation lines)."""
    lines = [l for l in hlines]
    while lines and not lines[-1][1].strip():
        lines.pop()
    if not lines:
        return "", None
    k = len(lines) - 1
    while k > 0:
        suffix = " ".join(l[1] for l in lines[k:])
        cur = lines[k][1].strip()
        prev = lines[k - 1][1].strip()
        if not prev:
            # a blank line ends it unless parentheses are still open
            if suffix.count(")") > suffix.count("("):
                k -= 1
                continue
            break
        if (suffix.count(")") > suffix.count("(") or cur.startswith(CONT_START) or prev.endswith(CONT_END)
                or suffix.count(">") > suffix.count("<") and "->" not in suffix and "=>" not in suffix):
            k -= 1
            continue
        break
    while k < len(lines) and not lines[k][1].strip():
        k += 1
    text = " ".join(l[1].strip() for l in lines[k:] if l[1].strip())
    return re.sub(r"\s+", " ", text).strip(), lines[k][0]


J_KW = {"if", "for", "while", "switch", "catch", "synchronized", "try", "else", "do", "finally", "return",
        "new", "throw", "case", "assert", "foreach", "using", "lock", "fixed", "get", "set", "init", "add",
        "remove", "nameof", "typeof", "checked", "unchecked", "when", "with", "function", "await", "yield",
        "loop", "match", "unsafe", "super", "this", "sizeof", "default", "static", "constructor_"}

JAVA_METHOD_RE = re.compile(
    r"^(?:@[\w.$]+(?:\s*\(.*?\))?\s+)*(?:(?:public|protected|private|static|final|abstract|synchronized|native|default|strictfp)\s+)*"
    r"(?:<.*?>\s+)?(?:(?P<ret>[\w$.<>\[\]?, ]+?)\s+)?(?P<name>[A-Za-z_$][\w$]*)\s*\((?P<params>.*)\)\s*(?:throws\s+[\w$.,\s<>]+)?$", re.S)
CS_METHOD_RE = re.compile(
    r"^(?:\[.*?\]\s*)*(?:(?:public|private|protected|internal|static|virtual|override|abstract|sealed|async|extern|unsafe|new|partial|readonly)\s+)*"
    r"(?:(?P<ret>[\w.<>\[\],?() ]+?)\s+)?(?P<name>[A-Za-z_]\w*)\s*(?:<[^()]*?>)?\s*\((?P<params>.*)\)\s*(?::\s*(?:base|this)\s*\(.*\))?\s*(?:where\s+.+)?$", re.S)
JS_METHOD_RE = re.compile(
    r"^(?:(?:static|async|get|set|public|private|protected|readonly|override|abstract)\s+)*\*?\s*(?P<name>#?[\w$]+)\s*(?:<[^()]*?>)?\s*\((?P<params>.*)\)\s*(?::\s*[^()]+(?:\(.*\))?[^()]*)?$", re.S)
GO_FUNC_RE = re.compile(r"^func\s*(?:\(\s*(?:(\w+)\s+)?(\*?)\s*([\w.]+)(?:\[[^\]]*\])?\s*\)\s*)?(\w+)\s*(?:\[[^\]]*\])?\s*\(")
RUST_FN_RE = re.compile(r"(?:^|\s)fn\s+(\w+)")
RUST_IMPL_RE = re.compile(r"^(?:unsafe\s+)?impl\b\s*(?:<.*?>)?\s*(?:(?P<trait>.+?)\s+for\s+)?(?P<ty>[^{]+?)\s*(?:where\b.*)?$", re.S)
KT_FUN_RE = re.compile(r"\bfun\s+(?:<[^>]*>\s*)?(?:(?P<recv>[\w.<>?, *]+)\.)?(?P<name>`[^`]+`|\w+)\s*\(")


def classify(lang, h, scope):
    """-> (kind, name, info) for the block whose header is h."""
    hs = h.strip()
    if not hs:
        return ("block", None, None)
    if lang == "java":
        m = re.search(r"(?:^|\s)(class|interface|enum|record|@interface)\s+([A-Za-z_$][\w$]*)", " " + hs)
        if m and not hs.endswith("->"):
            return ("class", m.group(2), None)
        if re.search(r"\bnew\s+[\w$.<>\[\], ?]+\s*\(.*\)\s*$", hs):
            return ("anonclass", None, None)
        if hs.endswith("->"):
            return ("lambda", None, None)
        m = JAVA_METHOD_RE.match(hs)
        if m and m.group("name") not in J_KW:
            ret = m.group("ret") or ""
            cls = next((s[1] for s in reversed(scope) if s[0] == "class"), None)
            if re.search(r"\b(new|return|else|throw)\b|=", ret):
                return ("block", None, None)
            if ret or m.group("name") == cls:
                name = "<init>" if m.group("name") == cls and not ret else m.group("name")
                return ("func", name, m.group("params"))
        return ("block", None, None)
    if lang == "kotlin":
        if hs.endswith("->"):
            return ("lambda", None, None)
        m = KT_FUN_RE.search(hs)
        if m and not re.search(r"\)\s*=\s*\S", hs[m.end():]):
            return ("func", m.group("name").strip("`"), None)
        if re.search(r"\bcompanion\s+object\b", hs):
            m = re.search(r"\bcompanion\s+object\s+(\w+)", hs)
            return ("class", m.group(1) if m else "Companion", None)
        m = re.search(r"(?:^|\s)(class|interface|object)\s+([A-Za-z_]\w*)", " " + hs)
        if m:
            return ("class", m.group(2), None)
        if re.search(r"(?:^|[\s=(,])object\s*:", hs):
            return ("anonclass", None, None)
        m = re.match(r"^(?:(?:public|private|internal|protected|override|open)\s+)*constructor\s*\(", hs)
        if m:
            return ("func", "<init>", None)
        if hs == "init":
            return ("func", "<init>", None)
        return ("block", None, None)
    if lang in ("javascript", "typescript"):
        if hs.endswith("=>"):
            for pat in (r"(?:const|let|var)\s+([\w$]+)\s*(?::[^=]+)?=\s*(?:async\s+)?(?:<[^()]*>)?\s*(?:\(.*\)|[\w$]+)\s*(?::\s*.+?)?\s*=>$",
                        r"^([\w$]+)\s*:\s*(?:async\s+)?(?:\(.*\)|[\w$]+)\s*(?::\s*.+?)?\s*=>$",
                        r"^(?:(?:private|public|protected|readonly|static)\s+)*([\w$]+)\s*(?::[^=]+)?=\s*(?:async\s+)?(?:\(.*\)|[\w$]+)\s*(?::\s*.+?)?\s*=>$",
                        r"(?:^|[\s;])(?:[\w$]+\.)*([\w$]+)\s*=\s*(?:async\s+)?(?:\(.*\)|[\w$]+)\s*=>$"):
                m = re.search(pat, hs, re.S)
                if m:
                    return ("func", m.group(1), {"arrow": True})
            return ("lambda", None, None)
        m = re.search(r"\bfunction\b\s*\*?\s*([\w$]+)?\s*(?:<[^()]*>)?\s*\((.*)\)\s*(?::\s*[^{]*)?$", hs, re.S)
        if m:
            own = m.group(1)
            before = hs[:m.start()]
            am = re.search(r"((?:[\w$]+\.)*)([\w$]+)\s*[:=]\s*(?:async\s*)?$", before)
            recv = None
            if am:
                chain = am.group(1).rstrip(".").split(".") if am.group(1) else []
                if "prototype" in chain:
                    recv = chain[chain.index("prototype") - 1] if chain.index("prototype") > 0 else None
                elif chain:
                    recv = chain[-1]
            name = own or (am.group(2) if am else None)
            if name:
                return ("func", name, {"recv": recv, "assigned": am.group(2) if am else None})
            return ("lambda", None, None)
        m = re.search(r"(?:^|\s)class\s+([\w$]+)", " " + hs)
        if m:
            return ("class", m.group(1), None)
        m = JS_METHOD_RE.match(hs)
        if m and m.group("name") not in J_KW and m.group("name") not in ("if", "for", "while"):
            return ("func", m.group("name"), {"method": True})
        return ("block", None, None)
    if lang == "go":
        m = GO_FUNC_RE.match(hs)
        if m:
            return ("func", m.group(4), {"recv": m.group(3), "ptr": bool(m.group(2))})
        if re.search(r"\bfunc\s*\(", hs):
            return ("lambda", None, None)
        return ("block", None, None)
    if lang == "rust":
        if hs.endswith("|") or re.search(r"\|\s*(->\s*[^|]+)?$", hs) and "fn " not in hs:
            return ("lambda", None, None)
        m = RUST_FN_RE.search(" " + hs)
        if m:
            return ("func", m.group(1), None)
        m = RUST_IMPL_RE.match(hs)
        if m:
            ty = re.sub(r"<.*$", "", m.group("ty").strip()).split("::")[-1].strip("&* ")
            trait = m.group("trait")
            return ("impl", ty, {"trait": re.sub(r"<.*$", "", trait).strip() if trait else None})
        m = re.search(r"(?:^|\s)trait\s+(\w+)", " " + hs)
        if m:
            return ("impl", m.group(1), {"trait": None, "is_trait": True})
        m = re.search(r"(?:^|\s)mod\s+(\w+)$", " " + hs)
        if m:
            return ("mod", m.group(1), None)
        return ("block", None, None)
    if lang == "csharp":
        m = re.search(r"(?:^|\s)namespace\s+([\w.]+)", " " + hs)
        if m:
            return ("ns", m.group(1), None)
        m = re.search(r"(?:^|\s)(class|struct|interface|record)\s+([A-Za-z_]\w*)", " " + hs)
        if m and "(" not in hs[:m.start()]:
            return ("class", m.group(2), None)
        if hs.endswith("=>") or re.search(r"\bdelegate\s*(\(.*\))?$", hs):
            return ("lambda", None, None)
        m = CS_METHOD_RE.match(hs)
        if m and m.group("name") not in J_KW:
            ret = m.group("ret") or ""
            cls = next((s[1] for s in reversed(scope) if s[0] == "class"), None)
            if re.search(r"\b(new|return|else|throw|await|var)\b|=", ret):
                return ("block", None, None)
            if ret or m.group("name") == cls:
                name = ".ctor" if (m.group("name") == cls and not ret) else m.group("name")
                if name == ".ctor" and re.match(r"^(?:\[.*?\]\s*)*static\s", hs):
                    name = ".cctor"
                return ("func", name, m.group("params"))
        return ("block", None, None)
    return ("block", None, None)


def brace_functions(text, lang):
    """Named functions (and their scopes) of a brace language file."""
    clean = clean_c_like(text, lang)
    line_starts = [0]
    for i, ch in enumerate(clean):
        if ch == "\n":
            line_starts.append(i + 1)

    def line_of(pos):
        return bisect.bisect_right(line_starts, pos)

    funcs = []
    stack = []      # entries: (kind, name, info, start_line, func_or_None)
    scope = []      # (kind, name, info) for class/impl/ns/mod/anonclass
    boundary = -1
    anon_counter = Counter()
    file_ns = None
    if lang == "csharp":
        m = re.search(r"^\s*namespace\s+([\w.]+)\s*;", clean, re.M)
        if m:
            file_ns = m.group(1)
            scope.append(("ns", file_ns, None))
    paren = 0
    literal_ok = lang in ("javascript", "typescript")
    for pos, ch in enumerate(clean):
        if ch == ";":
            boundary = pos
        elif ch == "(":
            paren += 1
        elif ch == ")":
            paren = max(0, paren - 1)
        elif ch == "{" and literal_ok and _is_literal(clean, pos, paren):
            stack.append({"kind": "literal"})
        elif ch == "{":
            seg = clean[boundary + 1:pos]
            first_line = line_of(boundary + 1)
            hl = [(first_line + k, s) for k, s in enumerate(seg.split("\n"))]
            h, hline = header_suffix(hl)
            kind, name, info = classify(lang, h, scope)
            start = hline or line_of(pos)
            entry = {"kind": kind, "name": name, "info": info, "start": start}
            if kind in ("class", "impl", "ns", "mod"):
                scope.append((kind, name, info))
                entry["scoped"] = True
            elif kind == "anonclass":
                outer = next((s for s in scope if s[0] == "class"), None)
                anon_counter[outer[1] if outer else ""] += 1
                scope.append(("anonclass", str(anon_counter[outer[1] if outer else ""]), None))
                entry["scoped"] = True
            elif kind == "func":
                f = Func(name, start, None, list(scope), params=info if isinstance(info, str) else "",
                         extra=info if isinstance(info, dict) else None)
                funcs.append(f)
                entry["func"] = f
            stack.append(entry)
            boundary = pos
        elif ch == "}":
            if stack and stack[-1]["kind"] == "literal":
                stack.pop()
                continue
            if stack:
                e = stack.pop()
                if e.get("scoped") and scope:
                    scope.pop()
                if e.get("func") is not None:
                    e["func"].end = line_of(pos)
            boundary = pos
    for f in funcs:
        if f.end is None:
            f.end = len(line_starts)
    # expression-bodied functions without braces (Kotlin `fun f() = x`, C# `=> x;`, JS arrows)
    lines = clean.split("\n")
    covered = {f.start for f in funcs}
    for i, l in enumerate(lines, 1):
        if i in covered:
            continue
        name = None
        if lang == "kotlin":
            m = KT_FUN_RE.search(l)
            if m and re.search(r"\)\s*(?::\s*[^=]+)?=\s*\S?", l[m.end():]) and "{" not in l[m.end():].split("=")[0]:
                name = m.group("name").strip("`")
        elif lang == "csharp":
            m = CS_METHOD_RE.match(l.strip().split("=>")[0].strip()) if "=>" in l else None
            if m and m.group("name") not in J_KW and m.group("ret") and "=" not in m.group("ret"):
                name = m.group("name")
        elif lang in ("javascript", "typescript"):
            m = re.match(r"^\s*(?:export\s+)?(?:const|let|var)\s+([\w$]+)\s*(?::[^=]+)?=\s*(?:async\s+)?(?:\([^)]*\)|[\w$]+)\s*(?::[^=]+)?=>\s*[^{\s]", l)
            if m:
                name = m.group(1)
        if name:
            ind = len(l) - len(l.lstrip())
            j = i
            while j < len(lines):
                nl = lines[j]
                if nl.strip() and (len(nl) - len(nl.lstrip())) <= ind:
                    break
                j += 1
            funcs.append(Func(name, i, max(i, j), _enclosing_scope(text, lang, funcs, i)))
    return funcs


def _is_literal(clean, pos, paren):
    """JS/TS: is the '{' at pos an object literal or a destructuring pattern?"""
    k = pos - 1
    while k >= 0 and clean[k] in " \t\n":
        k -= 1
    prev = clean[k] if k >= 0 else ";"
    if prev in "(,[?":
        return True
    if prev in "=:" and not clean[max(0, k - 1):k + 1] in ("=>",):
        return True
    if prev == "{" and paren > 0:
        return True
    word = re.search(r"([A-Za-z_$]+)$", clean[max(0, k - 10):k + 1])
    return bool(word and word.group(1) in ("return", "yield", "await"))


def _enclosing_scope(text, lang, funcs, line):
    # expression-bodied members: take the scope of a sibling function when there is one
    best = None
    for f in funcs:
        if f.start <= line <= f.end:
            continue
        if best is None or abs(f.start - line) < abs(best.start - line):
            best = f
    return list(best.scope) if best else []


def python_functions(text):
    lines = text.split("\n")
    funcs, classes = [], []
    in_str = None
    indent_of = []
    str_lines = set()
    for i, l in enumerate(lines):
        # crude triple-quoted string tracking so docstring bodies do not end blocks
        if in_str:
            str_lines.add(i)
        for q in ('"""', "'''"):
            cnt = l.count(q)
            if in_str == q and cnt % 2 == 1:
                in_str = None
            elif not in_str and cnt % 2 == 1:
                in_str = q
    def block_end(i, ind):
        # skip the rest of the signature: until parentheses balance and a ':' ends the line
        depth, j = 0, i
        while j < len(lines):
            s = lines[j].split("#")[0]
            depth += s.count("(") + s.count("[") - s.count(")") - s.count("]")
            if depth <= 0 and s.rstrip().endswith(":"):
                break
            if depth <= 0 and j > i + 30:
                break
            j += 1
        end = j
        k = j + 1
        while k < len(lines):
            s = lines[k]
            if s.strip() and not s.lstrip().startswith("#") and k not in str_lines:
                if len(s) - len(s.lstrip()) <= ind:
                    break
                end = k
            k += 1
        return end + 1
    for i, l in enumerate(lines):
        if i in str_lines:
            continue
        m = re.match(r"^(\s*)class\s+(\w+)", l)
        if m:
            classes.append((m.group(2), i + 1, block_end(i, len(m.group(1))), len(m.group(1))))
            continue
        m = re.match(r"^(\s*)(?:async\s+)?def\s+(\w+)", l)
        if m:
            ind = len(m.group(1))
            end = block_end(i, ind)
            scope = [("class", c[0], None) for c in classes if c[1] <= i + 1 <= c[2] and c[3] < ind]
            funcs.append(Func(m.group(2), i + 1, end, scope))
    return funcs


RUBY_DEF_RE = re.compile(r"^(\s*)def\s+(self\.)?([A-Za-z_]\w*[?!=]?|\[\]=?|[+\-*/%<>=!~^&|]+)")


RB_STR = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
RB_OPEN = re.compile(r"(?:^|[(;])\s*(class|module|def|if|unless|while|until|case|begin|for)\b")
RB_MID_OPEN = re.compile(r"(?:(?<![=!<>])=|\|\||&&|\(|<<)\s*(if|unless|case|begin|while|until)\b")
RB_DO = re.compile(r"\bdo\b\s*(\|[^|]*\|)?\s*$")
RB_END = re.compile(r"(?:^|;)\s*end\b(?![?!:])")
RB_HEREDOC = re.compile(r"<<[~-]?(['\"]?)([A-Z_][A-Z0-9_]*)\1")


def ruby_keyword_ends(lines):
    """end line (1-based) for each line that opens a class/module/def block,
    by counting block keywords against `end` (indentation alone fails on
    code like Sinatra's, whose `private` section is outdented)."""
    stack, ends = [], {}
    heredoc = None
    in_doc = False
    for k, raw in enumerate(lines):
        if in_doc:
            if raw.startswith("=end"):
                in_doc = False
            continue
        if raw.startswith("=begin"):
            in_doc = True
            continue
        if heredoc:
            if raw.strip() == heredoc:
                heredoc = None
            continue
        line = RB_STR.sub('""', raw)
        line = re.sub(r"(^|\s)#.*$", "", line)
        hm = RB_HEREDOC.search(line)
        if not line.strip():
            continue
        opens = 0
        for m in RB_OPEN.finditer(line):
            kw = m.group(1)
            if kw == "def" and re.match(r"\s*def\s+(?:self\.)?[\w?!]+(?:\([^)]*\)\s*|\s+)=(?![=~>])", line[m.start(1):]):
                pass   # endless def
            else:
                opens += 1
                stack.append((k, kw))
        for _ in RB_MID_OPEN.finditer(line):
            opens += 1
            stack.append((k, "expr"))
        if RB_DO.search(line) or re.search(r"\bdo\b\s*(\|[^|]*\|)?\s*$", line):
            stack.append((k, "do"))
        for _ in RB_END.finditer(line):
            if stack:
                start, kw = stack.pop()
                ends[start] = k + 1
        if re.search(r"\bend\s*$", line) and not RB_END.search(line) and stack and stack[-1][0] == k:
            start, kw = stack.pop()
            ends[start] = k + 1
        if hm:
            heredoc = hm.group(2)
    return ends


def ruby_functions(text):
    lines = text.split("\n")
    funcs, scopes = [], []
    kw_ends = ruby_keyword_ends(lines)

    def end_of(i, ind):
        if i in kw_ends:
            return kw_ends[i]
        for k in range(i + 1, len(lines)):
            s = lines[k]
            if re.match(r"^\s*end\b", s) and len(s) - len(s.lstrip()) == ind:
                return k + 1
            if s.strip() and len(s) - len(s.lstrip()) < ind and not s.lstrip().startswith(("#", "rescue", "ensure", "else", "elsif", "when", "in ")):
                return k
        return len(lines)
    singleton = []
    for i, l in enumerate(lines):
        m = re.match(r"^(\s*)(class|module)\s+([A-Z][\w:]*)", l)
        if m and not re.search(r"\bend\s*$", l):
            scopes.append((m.group(3), i + 1, end_of(i, len(m.group(1))), len(m.group(1)), m.group(2)))
            continue
        m = re.match(r"^(\s*)class\s*<<\s*self\b", l)
        if m:
            singleton.append((i + 1, end_of(i, len(m.group(1)))))
            continue
        m = RUBY_DEF_RE.match(l)
        if m:
            ind = len(m.group(1))
            rest = l[m.end():]
            if re.match(r"^(\([^)]*\))?\s*=[^=~]", rest) or re.search(r"\bend\s*$", l):
                end = i + 1
            else:
                end = end_of(i, ind)
            scope = [("class", s[0], s[4]) for s in scopes if s[1] < i + 1 <= s[2]]
            is_self = bool(m.group(2)) or any(a <= i + 1 <= b for a, b in singleton)
            funcs.append(Func(m.group(3), i + 1, end, scope, extra={"self": is_self}))
    return funcs


def ruby_block_depth(text, func, line):
    """How many `do ... end` / `{ |x|` blocks enclose line inside func."""
    lines = text.split("\n")
    depth = 0
    target_ind = len(lines[line - 1]) - len(lines[line - 1].lstrip())
    for k in range(func.start, line - 1):
        s = lines[k]
        ind = len(s) - len(s.lstrip())
        if ind >= target_ind:
            continue
        if re.search(r"(\bdo|\{)\s*(\|[^|]*\|)?\s*$", s.split(" #")[0]):
            # the block must still be open at `line`
            closed = False
            for q in range(k + 1, line - 1):
                t = lines[q]
                if (len(t) - len(t.lstrip())) == ind and re.match(r"^\s*(end|\})", t):
                    closed = True
                    break
            if not closed:
                depth += 1
    return depth


def functions_of(text, lang):
    if text is None:
        return []
    if lang == "python":
        return python_functions(text)
    if lang == "ruby":
        return ruby_functions(text)
    try:
        return brace_functions(text, lang)
    except RecursionError:
        return []


def enclosing(funcs, line):
    best = None
    for f in funcs:
        if f.start <= line <= f.end and (best is None or f.start >= best.start):
            best = f
    return best


# --------------------------------------------------------------------------
# Repository context at one commit
# --------------------------------------------------------------------------

COMMENT_ONLY = {
    "python": re.compile(r"^\s*(#.*)?$"), "ruby": re.compile(r"^\s*(#.*)?$"),
}
C_COMMENT = re.compile(r"^\s*(//.*|/\*.*|\*.*|\*/)?$")
PUNCT_ONLY = re.compile(r"^\s*[\]\[(){};,.:]*\s*$|^\s*(end|else|begin|\}\s*else\s*\{|\);?|\)\s*\{|\}\)\;?|pass|return;?|break;?|continue;?)\s*$")


def meaningful(line, lang):
    if line is None:
        return False
    if PUNCT_ONLY.match(line):
        return False
    rx = COMMENT_ONLY.get(lang, C_COMMENT)
    if rx.match(line):
        return False
    if lang in ("python",) and re.match(r'^\s*("""|\'\'\'|[rbuf]?["\'])', line) and not re.search(r"[=(]", line):
        return False  # docstring-ish
    if lang in ("javascript", "typescript", "java", "kotlin", "csharp", "go", "rust") and re.match(r"^\s*(import|using|package|use)\b", line):
        return False
    if lang == "python" and re.match(r"^\s*(import|from)\s", line):
        return False
    if lang == "ruby" and re.match(r"^\s*(require|require_relative)\b", line):
        return False
    return True


class RepoCtx:
    def __init__(self, name, gitdir, cfg, head):
        self.name, self.cfg, self.head = name, cfg, head
        self.owner, self.short = name.split("/")
        self.git = Git(gitdir)
        self.lang = cfg["language"]
        self.group = GROUP[self.lang]
        self.exts = LANGS[self.lang]["ext"]
        self.src_re = re.compile(cfg["src"]) if cfg.get("src") else None
        self.excl = [re.compile(x) for x in COMMON_EXCLUDE + cfg.get("exclude", [])]
        self._trees, self._funcs, self._grep, self._bybase = {}, {}, {}, {}

    def is_src(self, path):
        if not path.endswith(self.exts):
            return False
        if self.src_re and not self.src_re.search(path):
            return False
        p = path
        if self.src_re:  # do not let the source root itself trip an exclusion (e.g. src/.../main/)
            m = self.src_re.search(path)
            p = path[:m.start()] + "/" + path[m.end():] if m else path
        return not any(x.search(p) for x in self.excl)

    def tree(self, rev):
        if rev not in self._trees:
            out = self.git.run("ls-tree", "-r", "-z", "--full-tree", rev)
            paths = []
            for ent in out.split("\0"):
                if not ent:
                    continue
                meta, path = ent.split("\t", 1)
                if meta.split()[1] == "blob":
                    paths.append(path)
            if len(self._trees) > 6:
                self._trees.clear()
            self._trees[rev] = sorted(paths)
        return self._trees[rev]

    def text(self, rev, path):
        return self.git.show(rev, path)

    def funcs(self, rev, path):
        key = (rev, path)
        if key not in self._funcs:
            if len(self._funcs) > 3000:
                self._funcs.clear()
            self._funcs[key] = functions_of(self.text(rev, path), self.lang)
        return self._funcs[key]

    def grep(self, rev, word):
        key = (rev, word)
        if key in self._grep:
            return self._grep[key]
        specs = ["*" + e for e in self.exts]
        out = self.git.run("grep", "-n", "-w", "-F", "-I", "-e", word, rev, "--", *specs, check=False)
        hits = []
        for line in out.split("\n"):
            if not line:
                continue
            parts = line.split(":", 3)
            if len(parts) < 4:
                continue
            _, path, ln, content = parts
            if self.is_src(path):
                hits.append((path, int(ln), content))
        if len(self._grep) > 2000:
            self._grep.clear()
        self._grep[key] = hits
        return hits


# --------------------------------------------------------------------------
# SZZ
# --------------------------------------------------------------------------

def blame_lines(ctx, parent, path, linenos, ignore_revs):
    """{line: sha} for the given 1-based lines of path at parent (git blame -w)."""
    if not linenos:
        return {}
    ranges, s = [], None
    for ln in sorted(set(linenos)):
        if s is None:
            s = e = ln
        elif ln == e + 1:
            e = ln
        else:
            ranges.append((s, e))
            s = e = ln
    ranges.append((s, e))
    args = ["blame", "-w", "--porcelain"]
    for r in ignore_revs:
        args += ["--ignore-rev", r]
    for a, b in ranges:
        args += ["-L", "%d,%d" % (a, b)]
    args += [parent, "--", path]
    out = ctx.git.run(*args, check=False)
    res = {}
    for line in out.split("\n"):
        m = re.match(r"^([0-9a-f]{40}) \d+ (\d+)", line)
        if m:
            res[int(m.group(2))] = m.group(1)
    return {ln: sha for ln, sha in res.items() if ln in set(linenos)}


STRONG_FIX_RE = re.compile(r"\b(fix(es|ed|ing)?|bug(fix)?|crash(es|ed|ing)?|regression|panic(s|ked)?|npe|hotfix|broken|incorrect(ly)?|wrong(ly)?)\b", re.I)
WEAK_FIX_RE = re.compile(r"(?<![\w.`:])([Ee]rrors?|[Ee]xceptions?)(?![\w(`.:])")
NOT_FIX_START = re.compile(r"^\s*(feat|perf|docs?|chore|test|refactor|build|ci|style)(\([^)]*\))?!?:|^\s*(improve|add|export|implement|support|allow|"
                           r"introduce|update|use|make|optimi[sz]e|speed|remove|deprecate|bump|upgrade|enable|expose|rename|move)\b", re.I)


def is_fix_pr(p):
    text = "%s %s" % (p.title, p.branch.replace("-", " ").replace("_", " ").replace("/", " "))
    if re.match(r"^\s*(revert|reapply)\b", p.title, re.I):
        return False
    if NOT_FIX_START.search(p.title) and not STRONG_FIX_RE.search(p.title):
        return False
    if re.search(r"\bfix(es|ed)?\s+(the\s+)?(flaky\s+|failing\s+|broken\s+)?(tests?|specs?|ci|build|lint|docs?|typos?)\b", p.title, re.I):
        return False
    if NOISE_RE.search(p.title) and not re.search(r"\b(crash|exception|panic|regression|npe)\b", p.title, re.I):
        return False
    return bool(STRONG_FIX_RE.search(text) or WEAK_FIX_RE.search(p.title) or CLOSES_RE.search(p.body or ""))


def ignore_revs_for(ctx, parent, mass_revs):
    revs = set(mass_revs)
    txt = ctx.text(parent, ".git-blame-ignore-revs")
    if txt:
        for l in txt.splitlines():
            l = l.strip()
            if re.fullmatch(r"[0-9a-f]{40}", l):
                revs.add(l)
    return sorted(revs)


def mass_change_revs(ctx, commits):
    """Mainline formatting/relicensing commits that touched many files: blame
    looks through them (as git blame --ignore-rev would with the repository's
    .git-blame-ignore-revs)."""
    out = []
    for c in commits:
        if len(c.parents) == 1 and FORMAT_RE.search(c.subject):
            n = len(ctx.git.run("diff", "--name-only", c.parents[0], c.sha, check=False).split())
            if n > MASS_CHANGE_FILES:
                out.append(c.sha)
    return out


def szz(ctx, p, prs, sha2pr, by_sha, ignore_revs):
    """Run SZZ for fix PR p. Returns a dict or (None, reason)."""
    c = by_sha[p.sha]
    if not c.parents:
        return None, "root commit"
    parent = c.parents[0]
    try:
        files = diff_files(ctx.git, parent, p.sha)
    except RuntimeError:
        return None, "diff unavailable (blob missing from snapshot)"
    src = [f for f in files if ctx.is_src(f["path"]) or ctx.is_src(f["oldPath"])]
    if not src:
        return None, "no source file"
    if len(src) > MAX_FIX_SOURCE_FILES:
        return None, "too many source files"
    deleted = {}
    for f in src:
        if f["status"] not in ("modified", "renamed"):
            continue
        lines = [ln for (a, b, _, _) in f["hunks"] if b > 0 for ln in range(a, a + b)]
        if lines:
            deleted[f["oldPath"]] = lines
    ndel = sum(len(v) for v in deleted.values())
    if ndel == 0:
        return None, "adds lines only"
    if ndel > MAX_FIX_DELETED_LINES:
        return None, "too many deleted lines"
    fix_merged = p.merged
    lo = fix_merged - WINDOW_DAYS * 86400
    blamed = {}   # (path, line) -> sha
    stats = Counter()
    for path, lines in sorted(deleted.items()):
        text = ctx.text(parent, path)
        if text is None:
            continue
        tl = text.split("\n")
        keep = [ln for ln in lines if ln <= len(tl) and meaningful(tl[ln - 1], ctx.lang)]
        stats["meaningful"] += len(keep)
        for ln, sha in blame_lines(ctx, parent, path, keep, ignore_revs).items():
            blamed[(path, ln)] = sha
    if not blamed:
        return None, "nothing to blame"
    per_pr = defaultdict(list)
    for (path, ln), sha in sorted(blamed.items()):
        bc = by_sha.get(sha)
        if bc is not None and len(bc.parents) >= 2:
            stats["mergeNoise"] += 1
            continue
        num = sha2pr.get(sha)
        if num is None or num not in prs:
            stats["noPr"] += 1
            continue
        if num == p.number:
            stats["samePr"] += 1
            continue
        q = prs[num]
        if not (lo <= q.merged <= fix_merged):
            stats["outOfWindow"] += 1
            continue
        per_pr[num].append((path, ln))
    if not per_pr:
        return None, "no culprit PR in window"
    latest = max(prs[n].merged for n in per_pr)
    occurred = fix_merged - 3600
    if occurred <= latest:
        occurred = latest + max(60, (fix_merged - latest) // 2)
    # the window is counted back from occurredAt
    for n in list(per_pr):
        if prs[n].merged < occurred - WINDOW_DAYS * 86400 or prs[n].merged > occurred:
            stats["outOfWindow"] += len(per_pr.pop(n))
    if not per_pr:
        return None, "no culprit PR in window"
    # the fixed function: the (file, function) holding most culprit-blamed lines
    groups = defaultdict(list)
    for n, locs in per_pr.items():
        for path, ln in locs:
            f = enclosing(ctx.funcs(parent, path), ln)
            if f is not None:
                groups[(path, f.start, f.name)].append((ln, n))
    if not groups:
        return None, "no enclosing function"
    key = sorted(groups, key=lambda k: (-len(groups[k]), k))[0]
    path = key[0]
    func = next(f for f in ctx.funcs(parent, path) if f.start == key[1] and f.name == key[2])
    lns = sorted(ln for ln, _ in groups[key])
    frame_line = lns[(len(lns) - 1) // 2]
    culprits = sorted(per_pr, key=lambda n: (-len(per_pr[n]), prs[n].merged, n))
    added_text = []
    fnew = next((f for f in src if f["oldPath"] == path), None)
    if fnew is not None:
        newt = ctx.text(p.sha, fnew["path"])
        if newt:
            nl = newt.split("\n")
            for (_, _, cc, d) in fnew["hunks"]:
                added_text += nl[cc - 1:cc - 1 + d]
    oldt = ctx.text(parent, path).split("\n")
    deleted_text = [oldt[ln - 1] for ln in deleted.get(path, []) if ln <= len(oldt)]
    return {
        "parent": parent, "path": path, "func": func, "line": frame_line, "occurred": occurred,
        "culprits": culprits, "perPr": {n: len(v) for n, v in per_pr.items()},
        "inFunction": Counter(n for _, n in groups[key]),
        "stats": stats, "deletedLines": ndel, "blamedLines": len(blamed),
        "srcFiles": [f["path"] for f in src], "added": added_text, "deleted": deleted_text,
    }, None


# --------------------------------------------------------------------------
# Callers: real call sites of a function in the parent tree
# --------------------------------------------------------------------------

DECL_RE = {
    "python": r"^\s*(async\s+)?def\s+{n}\b", "ruby": r"^\s*def\s+(self\.)?{n}(?![\w?!=])",
    "go": r"^\s*func\s+(\([^)]*\)\s*)?{n}\b", "rust": r"\bfn\s+{n}\b",
    "javascript": r"\bfunction\s*\*?\s*{n}\b|^\s*(static\s+|async\s+|get\s+|set\s+)*{n}\s*\([^)]*\)\s*\{{", "typescript": r"\bfunction\s*\*?\s*{n}\b|^\s*(public\s+|private\s+|protected\s+|static\s+|async\s+|readonly\s+|get\s+|set\s+)*{n}\s*(<[^>]*>)?\([^)]*\)\s*(:[^{{]*)?\{{",
    "kotlin": r"\bfun\s+(<[^>]*>\s*)?([\w.]+\.)?{n}\b",
}


def callee_name(ctx, func):
    """(word to grep, regex that a calling line must match)."""
    lang, name = ctx.lang, func.name
    cls = next((s[1] for s in reversed(func.scope) if s[0] == "class"), None)
    if name in ("<init>", ".ctor", "__init__", "initialize", "constructor") and cls:
        if lang == "python":
            return cls, re.compile(r"(?<![\w.])%s\s*\(" % re.escape(cls))
        if lang == "ruby":
            return cls, re.compile(r"\b%s\.new\b" % re.escape(cls))
        if lang == "kotlin":
            return cls, re.compile(r"(?<![\w.])%s\s*\(" % re.escape(cls))
        return cls, re.compile(r"\bnew\s+%s\s*(<[^>]*>)?\s*\(" % re.escape(cls))
    if lang == "ruby":
        return name, re.compile(r"(?:(?<=\.)|(?<=&\.)|(?<![\w:@$.]))%s(?![\w?!=:])" % re.escape(name))
    return name, re.compile(r"(?<![\w$])%s\s*(?:::<[^>]*>)?(?:<[^<>()]*>)?\s*\(" % re.escape(name))


def callee_tokens(ctx, rev, path, func):
    """Names a file must mention to plausibly call func from outside its file:
    the class or type it belongs to, its module or package."""
    toks = set()
    cls = [s[1] for s in func.scope if s[0] in ("class", "impl")]
    if cls:
        toks.add(cls[-1])
    base = os.path.basename(path).rsplit(".", 1)[0]
    lang = ctx.lang
    if lang == "python":
        toks.add(os.path.basename(os.path.dirname(path)) if base == "__init__" else base)
    elif lang in ("javascript", "typescript"):
        toks.add(base if base != "index" else os.path.basename(os.path.dirname(path)))
    elif lang == "go":
        toks.add(os.path.basename(os.path.dirname(path)) or ctx.short)
    elif lang == "rust":
        toks.add(base if base not in ("mod", "lib", "main") else os.path.basename(os.path.dirname(path)))
    elif lang in ("java", "kotlin", "csharp"):
        toks.add(base)
    elif lang == "ruby" and not cls:
        toks.add(base)
    return sorted(t for t in toks if t and len(t) > 2)


def find_callers(ctx, rev, path, func, rng, avoid):
    word, rx = callee_name(ctx, func)
    if len(word) < 3:
        return []
    hits = ctx.grep(rev, word)
    if len(hits) > 400:
        hits = [h for h in hits if h[0] == path or os.path.dirname(h[0]) == os.path.dirname(path)]
    decl = DECL_RE.get(ctx.lang)
    decl_rx = re.compile(decl.format(n=re.escape(word))) if decl else None
    cmt = COMMENT_ONLY.get(ctx.lang, C_COMMENT)
    out = []
    for hp, ln, content in hits:
        if not rx.search(content) or cmt.match(content):
            continue
        if decl_rx and decl_rx.search(content):
            continue
        fs = ctx.funcs(rev, hp)
        caller = enclosing(fs, ln)
        if caller is None or caller.start == ln:
            continue
        if (hp, caller.start) in avoid:
            continue
        if any(sc[0] == "mod" and sc[1] in ("tests", "test") for sc in caller.scope) or re.match(r"^(test_|Test)", caller.name):
            continue
        if hp == path and caller.start == func.start:
            continue
        out.append((hp, caller, ln))
    tokens = callee_tokens(ctx, rev, path, func)
    def related(hp):
        if hp == path or (ctx.lang in ("go", "java", "kotlin", "csharp") and os.path.dirname(hp) == os.path.dirname(path)):
            return True
        t = ctx.text(rev, hp) or ""
        return any(re.search(r"(?<![\w$])%s(?![\w$])" % re.escape(tok), t) for tok in tokens)
    out = [x for x in out if related(x[0])]
    out.sort(key=lambda x: (x[0], x[2]))
    # prefer the same file or directory a little, as real call chains do
    near = [x for x in out if os.path.dirname(x[0]) == os.path.dirname(path)]
    if near and rng.random() < 0.6:
        return near
    return out


ENTRY_NAMES = {
    "python": [r"(^|/)(__main__|cli|app|wsgi|main|api|sessions|_client)\.py$"],
    "java": [r"/(Gson|Main|Application|OkHttpClient|RealCall)\.java$"],
    "kotlin": [r"/(RealCall|OkHttpClient|Main)\.kt$"],
    "javascript": [r"(^|/)(index|application|express|axios|cli)\.js$"],
    "typescript": [r"(^|/)(renovate|index|global-worker|repository/index)\.ts$"],
    "go": [r"(^|/)(main|command|gin|server|cmd)\.go$"],
    "ruby": [r"(^|/)(cli|runner|base|main|application)\.rb$"],
    "rust": [r"(^|/)(main|lib|app)\.rs$"],
    "csharp": [r"/(Mapper|MapperConfiguration|JsonConvert|JsonSerializer|Program)\.cs$"],
}


def entry_frame(ctx, rev, path, avoid, rng):
    """When no call site is found: a plausible entry point from a real file."""
    tree = [p for p in ctx.tree(rev) if ctx.is_src(p)]
    pats = [re.compile(x) for x in ENTRY_NAMES.get(ctx.lang, [])]
    cands = [p for p in tree if any(x.search(p) for x in pats) and p != path]
    if not cands:
        cands = [p for p in tree if os.path.dirname(p) == os.path.dirname(path) and p != path] or [path]
    cands.sort()
    for _ in range(6):
        p = rng.choice(cands)
        fs = [f for f in ctx.funcs(rev, p) if (p, f.start) not in avoid and f.end > f.start]
        if fs:
            f = rng.choice(sorted(fs, key=lambda f: f.start))
            ln = f.start + 1 + (rng.randrange(max(1, min(f.end - f.start - 1, 12))) if f.end - f.start > 2 else 0)
            return (p, f, min(ln, f.end))
    return None


# --------------------------------------------------------------------------
# How a frame of the repository's code prints, per language
# --------------------------------------------------------------------------

def _cargo_targets(ctx, rev, d):
    txt = ctx.text(rev, (d + "/" if d else "") + "Cargo.toml")
    if not txt:
        return []
    section, pkg, out, cur = None, None, [], None
    for raw in txt.splitlines():
        l = raw.strip()
        m = re.match(r"^\[\[?([\w.\-]+)\]\]?", l)
        if m:
            section = m.group(1)
            cur = {"kind": section} if section in ("lib", "bin") else None
            if cur is not None:
                out.append(cur)
            continue
        m = re.match(r'^(name|path)\s*=\s*"([^"]+)"', l)
        if m:
            if section == "package" and m.group(1) == "name":
                pkg = m.group(2)
            elif cur is not None:
                cur[m.group(1)] = m.group(2)
    if pkg is None:
        return []
    res = []
    kinds = {t["kind"] for t in out}
    if "lib" not in kinds:
        out.append({"kind": "lib"})
    if "bin" not in kinds:
        out.append({"kind": "bin"})
    for t in out:
        default = "src/lib.rs" if t["kind"] == "lib" else "src/main.rs"
        rel = t.get("path", default)
        full = (d + "/" if d else "") + rel
        name = t.get("name", pkg).replace("-", "_")
        res.append((full, name))
    return res


def rust_module_path(ctx, rev, path):
    tree = set(ctx.tree(rev))
    d = os.path.dirname(path)
    best = None
    probe = d
    while True:
        if (probe + "/Cargo.toml" if probe else "Cargo.toml") in tree:
            for root_file, name in _cargo_targets(ctx, rev, probe):
                if root_file not in tree:
                    continue
                rd = os.path.dirname(root_file)
                if path == root_file or path.startswith(rd + "/"):
                    if best is None or len(rd) > len(best[0]):
                        best = (rd, name, root_file)
        if not probe:
            break
        probe = os.path.dirname(probe)
    if best is None:
        return [re.sub(r"\W", "_", os.path.basename(d) or ctx.short)]
    rd, name, root_file = best
    if path == root_file:
        return [name]
    rel = path[len(rd) + 1:] if rd else path
    comps = rel[:-3].split("/")
    if comps[-1] in ("mod", "lib", "main"):
        comps = comps[:-1]
    return [name] + [c.replace("-", "_") for c in comps]


def go_import_path(ctx, rev, path):
    tree = set(ctx.tree(rev))
    d = os.path.dirname(path)
    probe = d
    while True:
        gm = (probe + "/go.mod") if probe else "go.mod"
        if gm in tree:
            txt = ctx.text(rev, gm) or ""
            m = re.search(r"^module\s+(\S+)", txt, re.M)
            if m:
                rel = d[len(probe):].strip("/")
                return m.group(1) + ("/" + rel if rel else ""), m.group(1), probe
        if not probe:
            break
        probe = os.path.dirname(probe)
    return "github.com/%s/%s" % (ctx.owner.lower(), ctx.short.lower()) + ("/" + d if d else ""), None, ""


RUST_STD_TYPES = {"String": "alloc::string::String", "Vec": "alloc::vec::Vec", "Box": "alloc::boxed::Box", "Option": "core::option::Option",
                  "HashMap": "std::collections::hash::map::HashMap", "BTreeMap": "alloc::collections::btree::map::BTreeMap",
                  "PathBuf": "std::path::PathBuf", "OsString": "std::ffi::os_str::OsString", "OsStr": "std::ffi::os_str::OsStr",
                  "str": "str", "bool": "bool", "char": "char", "Result": "core::result::Result", "Rc": "alloc::rc::Rc",
                  "Arc": "alloc::sync::Arc", "Cow": "alloc::borrow::Cow", "Duration": "core::time::Duration"}
RUST_STD_TYPES.update({t: t for t in ("u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32", "f64")})

CS_ALIASES = {"string": "String", "int": "Int32", "bool": "Boolean", "object": "Object", "long": "Int64",
              "double": "Double", "float": "Single", "decimal": "Decimal", "byte": "Byte", "char": "Char",
              "short": "Int16", "uint": "UInt32", "ulong": "UInt64", "void": "Void", "sbyte": "SByte", "ushort": "UInt16"}


def split_top(s, sep=","):
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch in "<([{":
            depth += 1
        elif ch in ">)]}":
            depth -= 1
        if ch == sep and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


def dotnet_params(params):
    res = []
    for p in split_top(params or ""):
        p = re.sub(r"^\s*(\[[^\]]*\]\s*)+", "", p).split("=")[0].strip()
        if not p:
            continue
        byref = bool(re.match(r"^(ref|out|in)\s", p))
        p = re.sub(r"^(this|params|ref|out|in|scoped|readonly)\s+", "", p)
        p = re.sub(r"^(this|params|ref|out|in|scoped|readonly)\s+", "", p)
        parts = p.rsplit(None, 1)
        if len(parts) != 2:
            continue
        ty, nm = parts
        nullable_value = ty.endswith("?") and ty[:-1] in CS_ALIASES and ty[:-1] not in ("string", "object")
        ty = ty.rstrip("?")
        arr = ""
        m = re.match(r"^(.*?)((\[\])+)$", ty)
        if m:
            ty, arr = m.group(1), m.group(2)
        gm = re.match(r"^([\w.]+)\s*<(.*)>$", ty)
        if gm:
            ty = "%s`%d" % (gm.group(1).split(".")[-1], len(split_top(gm.group(2))))
        else:
            ty = CS_ALIASES.get(ty, ty.split(".")[-1])
        if nullable_value:
            ty = "Nullable`1"
        res.append("%s%s%s %s" % (ty, arr, "&" if byref else "", nm))
    return ", ".join(res)


JS_RECV = {"res": "ServerResponse", "req": "IncomingMessage", "app": "Function", "proto": "Function",
           "exports": "Object", "module": "Object", "utils": "Object", "this": "Object"}


def app_frame(ctx, rev, path, func, line):
    """Everything needed to print one frame of the repository's own code."""
    text = ctx.text(rev, path) or ""
    lines = text.split("\n")
    src_line = lines[line - 1] if 0 < line <= len(lines) else ""
    col = len(src_line) - len(src_line.lstrip()) + 1
    fr = {"app": True, "path": path, "line": line, "col": col, "func": func.name, "fn": func}
    classes = [s for s in func.scope if s[0] in ("class", "anonclass")]
    lang = ctx.lang
    if lang == "python":
        fr["label"] = func.name
    elif lang in ("java", "kotlin"):
        m = re.search(r"^\s*package\s+([\w.]+)", text, re.M)
        pkg = m.group(1) if m else ""
        chain = [s[1] for s in classes]
        if not chain:
            base = os.path.basename(path).rsplit(".", 1)[0]
            base = re.sub(r"^-", "_", base)
            chain = [base[:1].upper() + base[1:] + ("Kt" if lang == "kotlin" else "")]
        cls = "$".join(chain)
        name = func.name
        if lang == "kotlin" and name == "<init>" and not classes:
            name = "invoke"
        fr["label"] = "%s%s.%s" % (pkg + "." if pkg else "", cls, name)
        fr["file"] = os.path.basename(path)
        fr["pkg"] = pkg
    elif lang in ("javascript", "typescript"):
        cls = next((s[1] for s in reversed(classes) if s[0] == "class"), None)
        ex = func.extra or {}
        if cls and func.name == "constructor":
            fr["label"] = "new " + cls
        elif cls:
            fr["label"] = "%s.%s" % (cls, func.name)
        elif ex.get("recv"):
            recv = ex["recv"]
            fr["label"] = "%s.%s" % (JS_RECV.get(recv, recv[:1].upper() + recv[1:] if recv[:1].islower() and recv not in JS_RECV else recv), func.name)
        else:
            fr["label"] = func.name
    elif lang == "go":
        imp, module, moddir = go_import_path(ctx, rev, path)
        if re.search(r"^package\s+main\b", text, re.M):
            imp = "main"
        ex = func.extra or {}
        if ex.get("recv"):
            recv = ex["recv"].split(".")[-1]
            fr["label"] = "%s.%s.%s" % (imp, "(*%s)" % recv if ex.get("ptr") else recv, func.name)
        else:
            fr["label"] = "%s.%s" % (imp, func.name)
        fr["module"], fr["moddir"] = module, moddir
    elif lang == "rust":
        mods = rust_module_path(ctx, rev, path)
        mods += [s[1] for s in func.scope if s[0] == "mod"]
        impl = next((s for s in reversed(func.scope) if s[0] == "impl"), None)
        base = "::".join(mods)
        if impl and impl[2] and impl[2].get("trait"):
            ty = RUST_STD_TYPES.get(impl[1], "%s::%s" % (base, impl[1]))
            fr["label"] = "<%s as %s>::%s" % (ty, impl[2]["trait"], func.name)
        elif impl:
            fr["label"] = "%s::%s::%s" % (base, impl[1], func.name)
        else:
            fr["label"] = "%s::%s" % (base, func.name)
    elif lang == "ruby":
        mods = [s[1] for s in func.scope if s[0] == "class"]
        owner = "::".join(mods)
        sep = "." if (func.extra or {}).get("self") else "#"
        depth = ruby_block_depth(text, func, line)
        prefix = "" if depth == 0 else ("block in " if depth == 1 else "block (%d levels) in " % depth)
        fr["label_old"] = prefix + func.name
        fr["label_new"] = prefix + ("%s%s%s" % (owner, sep, func.name) if owner else func.name)
        fr["label"] = fr["label_new"]
    elif lang == "csharp":
        ns = ".".join(s[1] for s in func.scope if s[0] == "ns")
        chain = "+".join(s[1] if s[0] == "class" else "<>c__DisplayClass%s" % s[1] for s in classes)
        fr["label"] = "%s%s.%s(%s)" % (ns + "." if ns else "", chain, func.name, dotnet_params(func.params))
    return fr


# --------------------------------------------------------------------------
# What went wrong: the kind of error, from the fix's title and diff
# --------------------------------------------------------------------------

KIND_RULES = [
    ("recursion", r"recurs\w*|stack ?overflow|infinite loop|stack level too deep"),
    ("null", r"null|none|nil|undefined|npe|nullpointer\w*|nullreference\w*|unwrap|missing|empty value|falsy"),
    ("index", r"index\w*|out of (range|bounds)|bounds|off[- ]by[- ]one|empty (list|array|slice|string|input)|length|overrun"),
    ("overflow", r"overflow|underflow|divide by zero|division by zero|integer"),
    ("encoding", r"unicode|utf-?8|encod\w*|decod\w*|charset|non-ascii|latin-?1|multibyte|emoji"),
    ("parse", r"pars\w+|json|syntax|malformed|invalid|deserializ\w*|serializ\w*|format\w*|url|uri|quot\w*"),
    ("type", r"types?|cast\w*|instance|generics?|interface|conversion|coerc\w*"),
    ("key", r"keys?|lookup|dict\w*|hash|map|headers?|param\w*|option\w*|config\w*"),
    ("timeout", r"timeouts?|timed out|deadline"),
    ("concurrency", r"deadlock|race|concurren\w*|thread\w*|mutex|goroutine|locks?"),
    ("io", r"socket|connection|streams?|eof|closed?|pipe|proxy|redirect\w*|response|request|body|read|write|files?|path"),
]

NULL_CODE = re.compile(r"\bis (not )?None\b|[!=]==? ?null\b|[!=]==? ?undefined\b|\?\.|\?\?|[!=]= ?nil\b|\.nil\?|&\.|\bif let Some\b|\.is_none\(\)|\.is_some\(\)|\bOption<|\bunwrap_or|\bObjects\.requireNonNull|\bis null\b|\bis not null\b|ArgumentNullException|\bif not \w+\b")
INDEX_CODE = re.compile(r"\blen\(|\.length\b|\.len\(\)|\.size\(\)|\.Count\b|\.Length\b|\[\s*-?\d+\s*\]|\.get\(\d|\bempty\?|\.is_empty\(\)|\.isEmpty\(\)")
TYPE_CODE = re.compile(r"\bisinstance\(|\binstanceof\b|\bis_a\?|\bkind_of\?|\btypeof\b|\bas\?|\bis [A-Z]\w+\b|\.(downcast|try_into)\b|\btype\(")
CATCH_CODE = re.compile(r"\b(?:except|catch\s*\(|rescue)\s*\(?\s*([A-Z][\w.:]*(?:Error|Exception|Timeout))")
EXC_NAME = re.compile(r"`?\b([A-Z][A-Za-z0-9]*(?:Error|Exception|Timeout|Panic))\b`?")


def title_phrase(title):
    t = re.sub(r"^\s*\[[^\]]*\]\s*", "", title)
    t = re.sub(r"\b(the )?(bug|issue|problem|error|crash) (of|in|with|when|where|on)\s+", "", t, flags=re.I)
    t = re.sub(r"^\s*\w+(\([^)]*\))?!?:\s*", "", t) if re.match(r"^\s*\w+(\([^)]*\))?!?:", t) else t
    t = re.sub(r"^\s*(bug ?fix|hot ?fix|fix(es|ed|ing)?|bug|issue)\b[:\s-]*", "", t, flags=re.I)
    t = re.sub(r"^\s*(for|a|an|the|some|possible|potential)\s+", "", t, flags=re.I)
    t = re.sub(r"^\s*(don'?t|do not|avoid|prevent|handle|guard against|correctly handle|properly handle|make sure|ensure|allow|"
               r"support|stop|no longer|never)\s+", "", t, flags=re.I)
    t = re.sub(r"\s*\((?:(?:fix(?:es|ed)?|close[sd]?|resolve[sd]?|see|refs?)\s*)?(?:#\d+|gh-\d+)(?:\s*,\s*#\d+)*\)", "", t, flags=re.I)
    t = re.sub(r"[,;:]?\s*\b(fix(es|ed)?|close[sd]?|resolve[sd]?)\s+#\d+.*$", "", t, flags=re.I)
    t = re.sub(r"\s*\(?(#\d+|gh-\d+)\)?", "", t)
    t = re.sub(r"\s+", " ", t).strip(" .:;,-")
    if len(t) > 90:
        t = t[:90].rsplit(" ", 1)[0].rstrip(" ,;:-")
    if not t:
        return "unexpected state"
    return t[:1].lower() + t[1:] if not t[:2].isupper() else t


def infer_kind(title, added, deleted):
    t = title.lower()
    code_add = "\n".join(added)
    m = CATCH_CODE.search(code_add)
    caught = m.group(1) if m else None
    named = [n for n in EXC_NAME.findall(title)]
    for kind, rx in KIND_RULES:
        if re.search(r"\b(%s)\b" % rx, t):
            kw_kind = kind
            break
    else:
        kw_kind = None
    if kw_kind in (None, "io", "key", "parse", "type") and NULL_CODE.search(code_add) and not NULL_CODE.search("\n".join(deleted)):
        code_kind = "null"
    elif INDEX_CODE.search(code_add) and not INDEX_CODE.search("\n".join(deleted)):
        code_kind = "index"
    elif TYPE_CODE.search(code_add) and not TYPE_CODE.search("\n".join(deleted)):
        code_kind = "type"
    else:
        code_kind = None
    if kw_kind in ("recursion", "null", "index", "overflow", "encoding", "timeout", "concurrency"):
        kind = kw_kind
    else:
        kind = code_kind or kw_kind or "generic"
    return kind, (named[0] if named else None), caught


def idents(line):
    attrs = re.findall(r"\.([A-Za-z_]\w*)\b(?!\s*\()", line)
    calls = re.findall(r"([A-Za-z_]\w*)\s*\(", line)
    strs = re.findall(r"""["']([A-Za-z0-9_\-./: ]{1,24})["']""", line)
    words = [w for w in re.findall(r"\b([a-z_][a-zA-Z0-9_]{2,})\b", line)
             if w not in ("self", "this", "return", "if", "else", "for", "while", "not", "and", "the", "none", "null",
                          "nil", "true", "false", "new", "let", "const", "var", "def", "end", "func", "elif", "await",
                          "async", "pub", "mut", "impl", "fn", "use", "unless", "then", "in", "is", "or")]
    return attrs, calls, strs, words


def pick(rng, seq, default):
    seq = [s for s in seq if s]
    return rng.choice(seq) if seq else default


# library frame helpers ------------------------------------------------------

def L(label, file=None, line=None, col=None, **kw):
    d = {"app": False, "label": label, "file": file, "line": line, "col": col}
    d.update(kw)
    return d


def py_lib(rng):
    v = rng.choice(["3.11", "3.12", "3.12", "3.13"])
    std = rng.choice(["/usr/local/lib/python%s" % v, "/usr/local/lib/python%s" % v, "/usr/lib/python%s" % v])
    site = rng.choice([std + "/site-packages", "/app/.venv/lib/python%s/site-packages" % v,
                       "/opt/venv/lib/python%s/site-packages" % v])
    return v, std, site


def exception_for(ctx, case, rng, fr0):
    """-> dict(type, message, inner=[lib frames innermost first], extra...)"""
    g = ctx.group
    title = case["fixTitle"]
    kind, named, caught = infer_kind(title, case["added"], case["deleted"])
    src = fr0.get("src", "")
    attrs, calls, strs, words = idents(src)
    attr = pick(rng, attrs, pick(rng, words, "value"))
    word = pick(rng, words, "value")
    phrase = title_phrase(title)
    repo_exc = ctx.repo_exceptions(case["parent"])
    explicit = None
    for n in [caught, named]:
        if n and (n.split(".")[-1].split("::")[-1] in repo_exc or n in BUILTIN_EXC.get(g, ())):
            explicit = n
            break
    builtin = None
    for n in [caught, named]:
        short = n.split(".")[-1].split("::")[-1] if n else None
        if short and short in STD_EXC.get(g, {}) and short not in repo_exc:
            builtin = STD_EXC[g][short]
            kind = builtin[1]
            explicit = None
            break
    if kind == "generic" and not builtin and not explicit and (
            len(phrase.split()) < 3 or re.search(r"\b(crash\w*|errors?|exceptions?|raises?|blow(s|ing)? up)\b", title, re.I)):
        # a title that names no symptom: take the commonest crash of the language
        kind = "null"
    exc = {"kind": kind, "inner": [], "type": None, "message": None}
    if g == "python" and explicit in PY_KIND:
        kind = exc["kind"] = PY_KIND[explicit]
        explicit = None
    if g == "python":
        v, std, site = case["style"]["py"]
        if explicit:
            short = explicit.split(".")[-1]
            exc["type"] = repo_exc.get(short, short)
            exc["message"] = phrase if kind == "generic" else {
                "null": "'NoneType' object has no attribute '%s'" % attr}.get(kind, phrase)
        elif kind == "null":
            exc["type"], exc["message"] = rng.choice([
                ("AttributeError", "'NoneType' object has no attribute '%s'" % attr),
                ("TypeError", "'NoneType' object is not subscriptable"),
                ("TypeError", "argument of type 'NoneType' is not iterable")])
        elif kind == "index":
            exc["type"], exc["message"] = "IndexError", rng.choice(["list index out of range", "tuple index out of range", "string index out of range"])
        elif kind == "key":
            exc["type"], exc["message"] = "KeyError", "'%s'" % pick(rng, strs, word)
        elif kind == "encoding":
            exc["type"], exc["message"] = rng.choice([
                ("UnicodeDecodeError", "'utf-8' codec can't decode byte 0xe9 in position %d: invalid continuation byte" % rng.randrange(3, 90)),
                ("UnicodeEncodeError", "'latin-1' codec can't encode character '\\u2019' in position %d: ordinal not in range(256)" % rng.randrange(3, 60))])
        elif kind == "recursion":
            exc["type"], exc["message"] = "RecursionError", "maximum recursion depth exceeded"
            exc["recursion"] = True
        elif kind == "parse" and re.search(r"json", title, re.I):
            exc["type"], exc["message"] = "json.decoder.JSONDecodeError", "Expecting value: line 1 column 1 (char 0)"
            exc["inner"] = [L("raw_decode", std + "/json/decoder.py", 356), L("decode", std + "/json/decoder.py", 338),
                            L("loads", std + "/json/__init__.py", 346)]
        elif kind == "parse" and re.search(r"\b(url|uri|ipv6|host)\b", title, re.I):
            exc["type"], exc["message"] = "ValueError", rng.choice(["Invalid IPv6 URL", "Port could not be cast to integer value as '%s'" % word])
            exc["inner"] = [L("urlsplit", std + "/urllib/parse.py", 514), L("urlparse", std + "/urllib/parse.py", 395)]
        elif kind in ("parse", "overflow"):
            exc["type"], exc["message"] = "ValueError", rng.choice(["invalid literal for int() with base 10: '%s'" % pick(rng, strs, "abc"), phrase])
        elif kind == "type":
            exc["type"], exc["message"] = "TypeError", rng.choice([
                "expected str, bytes or os.PathLike object, not NoneType", "'%s' object is not callable" % rng.choice(["str", "NoneType", "dict"]),
                "unsupported operand type(s) for +: 'NoneType' and 'str'", "%s() got an unexpected keyword argument '%s'" % (pick(rng, calls, word), word)])
        elif kind == "timeout":
            exc["type"], exc["message"] = "TimeoutError", "timed out"
            exc["inner"] = [L("readinto", std + "/socket.py", 720)]
        elif kind == "io":
            exc["type"], exc["message"] = rng.choice([("OSError", phrase), ("ConnectionResetError", "[Errno 104] Connection reset by peer")])
        else:
            exc["type"], exc["message"] = rng.choice(["RuntimeError", "ValueError"]), phrase
    elif g == "java":
        jb = "java.base/" if case["style"]["javaModules"] else ""
        if explicit and explicit.split(".")[-1] in repo_exc:
            exc["type"], exc["message"] = repo_exc[explicit.split(".")[-1]], phrase
        elif kind == "null":
            exc["type"] = "java.lang.NullPointerException"
            m = re.search(r"\b([a-z]\w*)\.(\w+)\(", src)
            exc["message"] = rng.choice([None, 'Cannot invoke "%s()" because "%s" is null' % (m.group(2), m.group(1)) if m else None])
            if rng.random() < 0.3:
                exc["inner"] = [L(jb + "java.util.Objects.requireNonNull", "Objects.java", 233)]
                exc["message"] = None
        elif kind == "index":
            n = rng.randrange(0, 4)
            exc["type"], exc["message"] = "java.lang.IndexOutOfBoundsException", "Index %d out of bounds for length %d" % (n, n)
            exc["inner"] = [L(jb + "jdk.internal.util.Preconditions.outOfBounds", "Preconditions.java", 100),
                            L(jb + "jdk.internal.util.Preconditions.outOfBoundsCheckIndex", "Preconditions.java", 106),
                            L(jb + "jdk.internal.util.Preconditions.checkIndex", "Preconditions.java", 302),
                            L(jb + "java.util.Objects.checkIndex", "Objects.java", 385),
                            L(jb + "java.util.ArrayList.get", "ArrayList.java", 427)]
        elif kind in ("parse", "overflow") and rng.random() < 0.5:
            exc["type"], exc["message"] = "java.lang.NumberFormatException", 'For input string: "%s"' % pick(rng, strs, "1e400")
            exc["inner"] = [L(jb + "java.lang.NumberFormatException.forInputString", "NumberFormatException.java", 67),
                            L(jb + "java.lang.Long.parseLong", "Long.java", 711)]
        elif kind == "concurrency":
            exc["type"], exc["message"] = "java.util.ConcurrentModificationException", None
            exc["inner"] = [L(jb + "java.util.HashMap$HashIterator.nextNode", "HashMap.java", 1605),
                            L(jb + "java.util.HashMap$KeyIterator.next", "HashMap.java", 1628)]
        elif kind == "type":
            exc["type"] = "java.lang.ClassCastException"
            exc["message"] = "class java.lang.String cannot be cast to class java.lang.Number (java.lang.String and java.lang.Number are in module java.base of loader 'bootstrap')"
        elif kind == "recursion":
            exc["type"], exc["message"], exc["recursion"] = "java.lang.StackOverflowError", None, True
        elif kind == "encoding":
            exc["type"], exc["message"] = "java.nio.charset.MalformedInputException", "Input length = 1"
            exc["inner"] = [L(jb + "java.nio.charset.CoderResult.throwException", "CoderResult.java", 281)]
        elif kind == "timeout":
            exc["type"], exc["message"] = "java.net.SocketTimeoutException", rng.choice(["timeout", "Read timed out"])
            exc["inner"] = [L(jb + "sun.nio.ch.NioSocketImpl.timedRead", "NioSocketImpl.java", 288),
                            L(jb + "sun.nio.ch.NioSocketImpl.implRead", "NioSocketImpl.java", 314),
                            L(jb + "sun.nio.ch.NioSocketImpl.read", "NioSocketImpl.java", 355),
                            L(jb + "java.net.Socket$SocketInputStream.read", "Socket.java", 1099),
                            L("okio.InputStreamSource.read", "JvmOkio.kt", 93)]
        elif kind == "io":
            exc["type"], exc["message"] = rng.choice([("java.io.IOException", phrase), ("java.io.EOFException", None),
                                                      ("java.net.ProtocolException", phrase)])
        else:
            exc["type"], exc["message"] = rng.choice(["java.lang.IllegalStateException", "java.lang.IllegalArgumentException"]), phrase
    elif g == "javascript":
        if explicit and explicit in repo_exc:
            exc["type"], exc["message"] = explicit, phrase
        elif kind == "null":
            exc["type"] = "TypeError"
            exc["message"] = rng.choice(["Cannot read properties of undefined (reading '%s')" % attr,
                                         "Cannot read properties of null (reading '%s')" % attr])
        elif kind == "recursion":
            exc["type"], exc["message"], exc["recursion"] = "RangeError", "Maximum call stack size exceeded", True
        elif kind == "index":
            exc["type"], exc["message"] = rng.choice([("RangeError", "Invalid array length"),
                                                      ("TypeError", "Cannot read properties of undefined (reading '0')")])
        elif kind == "parse" and re.search(r"json|body|response|data", title, re.I):
            exc["type"], exc["message"] = "SyntaxError", rng.choice(['Unexpected token \'<\', "<!DOCTYPE "... is not valid JSON', "Unexpected end of JSON input"])
            exc["inner"] = [L("JSON.parse", "<anonymous>", native=True)]
        elif kind == "encoding" or (kind == "parse" and re.search(r"ur[il]|path|query|encod", title, re.I)):
            if rng.random() < 0.5:
                exc["type"], exc["message"] = "URIError", "URI malformed"
                exc["inner"] = [L("decodeURIComponent", "<anonymous>", native=True)]
            else:
                exc["type"], exc["message"] = "TypeError", "Invalid URL"
                exc["inner"] = [L("new URL", "node:internal/url", 816, 29)]
        elif kind == "type":
            exc["type"], exc["message"] = "TypeError", rng.choice(["%s is not a function" % pick(rng, calls, word), "Cannot convert undefined or null to object",
                                                                   "%s.%s is not a function" % (word, pick(rng, calls, "forEach"))])
        elif kind == "io" and re.search(r"socket|stream|connection|request", title, re.I):
            exc["type"], exc["message"] = "Error", rng.choice(["socket hang up", "write EPIPE", "read ECONNRESET"])
        else:
            exc["type"], exc["message"] = "Error", phrase
    elif g == "go":
        if kind == "null":
            exc["message"] = "runtime error: invalid memory address or nil pointer dereference"
            exc["signal"] = "[signal SIGSEGV: segmentation violation code=0x1 addr=0x%x pc=0x%x]" % (rng.choice([0, 0x8, 0x10, 0x18, 0x28, 0x30]), rng.randrange(0x400000, 0x2000000))
        elif kind == "index":
            n = rng.randrange(0, 5)
            exc["message"] = rng.choice(["runtime error: index out of range [%d] with length %d" % (n, n),
                                         "runtime error: slice bounds out of range [:%d] with capacity %d" % (n + 1, n)])
        elif kind == "concurrency":
            exc["message"], exc["fatal"] = "concurrent map writes", True
            exc["inner"] = [L("internal/runtime/maps.fatal", "/usr/local/go/src/runtime/panic.go", 1058, args="({0x%x?, 0x%x?})"),
                            L("runtime.mapassign_faststr", "/usr/local/go/src/internal/runtime/maps/runtime_faststr_swiss.go", 264, args="(0x%x, 0xc000%x, {0xc000%x, 0x%x})")]
        elif kind == "type":
            exc["message"] = "interface conversion: interface {} is %s, not %s" % rng.choice([("nil", "string"), ("string", "int"), ("float64", "int64"), ("map[string]interface {}", "[]interface {}")])
        elif kind == "key":
            exc["message"] = "assignment to entry in nil map"
        elif kind == "recursion":
            exc["message"], exc["fatal"], exc["recursion"] = "stack overflow", True, True
            exc["pre"] = ["runtime: goroutine stack exceeds 1000000000-byte limit",
                          "runtime: sp=0xc0200e0390 stack=[0xc0200e0000, 0xc0400e0000]"]
        else:
            exc["message"] = phrase
        exc["type"] = None
    elif g == "rust":
        rv = case["style"]["rustc"]
        core = "/rustc/%s/library/core/src" % rv
        std = "/rustc/%s/library/std/src" % rv
        begin = rng.choice([L("rust_begin_unwind", std + "/panicking.rs", 665, 5),
                            L("__rustc::rust_begin_unwind", std + "/panicking.rs", 697, 5)])
        pf = L("core::panicking::panic_fmt", core + "/panicking.rs", 75, 14)
        if kind == "null":
            exc["message"] = "called `Option::unwrap()` on a `None` value"
            exc["inner"] = [begin, pf, L("core::panicking::panic", core + "/panicking.rs", 145, 5),
                            L("core::option::unwrap_failed", core + "/option.rs", 2015, 5)]
        elif kind == "index":
            n = rng.randrange(0, 5)
            exc["message"] = "index out of bounds: the len is %d but the index is %d" % (n, n)
            exc["inner"] = [begin, pf, L("core::panicking::panic_bounds_check", core + "/panicking.rs", 273, 5)]
        elif kind == "encoding" or (kind == "parse" and rng.random() < 0.3):
            exc["message"] = "byte index %d is not a char boundary; it is inside 'é' (bytes %d..%d) of `%s`" % (5, 4, 6, "caf\u00e9 con le\u00f1a"[:12])
            exc["inner"] = [begin, pf, L("core::str::slice_error_fail_rt", core + "/str/mod.rs", 68, 5),
                            L("core::str::slice_error_fail", core + "/str/mod.rs", 64, 5)]
        elif kind == "overflow":
            exc["message"] = "attempt to subtract with overflow"
            exc["inner"] = [begin, pf, L("core::panicking::panic_const::panic_const_sub_overflow", core + "/panicking.rs", 178, 21)]
        elif kind in ("parse", "io", "type"):
            err = {"parse": "ParseIntError { kind: InvalidDigit }", "io": 'Os { code: 32, kind: BrokenPipe, message: "Broken pipe" }',
                   "type": 'Error { kind: InvalidType, message: "invalid type: string, expected u64" }'}[kind]
            exc["message"] = "called `Result::unwrap()` on an `Err` value: %s" % err
            exc["inner"] = [begin, pf, L("core::result::unwrap_failed", core + "/result.rs", 1704, 5)]
        elif kind == "recursion":
            exc["message"] = "internal error: entered unreachable code: %s" % phrase
            exc["inner"] = [begin, pf]
        else:
            exc["message"] = rng.choice([phrase, "internal error: entered unreachable code: %s" % phrase])
            exc["inner"] = [begin, pf]
            if exc["message"].startswith("internal error"):
                exc["inner"].append(L("core::panicking::panic", core + "/panicking.rs", 145, 5))
        exc["type"] = None
    elif g == "ruby":
        new = case["style"]["ruby34"]
        q = (lambda s: "'%s'" % s) if new else (lambda s: "`%s'" % s)
        rb = case["style"]["rubylib"]
        if explicit and explicit.split("::")[-1] in repo_exc:
            exc["type"], exc["message"] = repo_exc[explicit.split("::")[-1]], phrase
        elif kind == "null":
            exc["type"] = "NoMethodError"
            exc["message"] = "undefined method %s for %s" % (q(pick(rng, calls + attrs, "each")), "nil" if new else "nil:NilClass")
        elif kind == "key":
            exc["type"], exc["message"] = "KeyError", "key not found: :%s" % pick(rng, attrs + words, "name")
            if ".fetch" in src:
                exc["cframe"] = "Hash#fetch"
        elif kind == "type":
            exc["type"], exc["message"] = "TypeError", rng.choice(["no implicit conversion of nil into String", "no implicit conversion of Symbol into Integer",
                                                                   "nil can't be coerced into Integer"])
        elif kind == "index":
            exc["type"], exc["message"] = "IndexError", "index %d outside of array bounds: -%d...%d" % (3, 3, 3)
            if ".fetch" in src:
                exc["cframe"] = "Array#fetch"
        elif kind == "encoding":
            exc["type"], exc["message"] = rng.choice([("Encoding::CompatibilityError", "incompatible character encodings: UTF-8 and BINARY (ASCII-8BIT)"),
                                                      ("ArgumentError", "invalid byte sequence in UTF-8")])
        elif kind == "recursion":
            exc["type"], exc["message"], exc["recursion"] = "SystemStackError", "stack level too deep", True
        elif kind == "parse" and re.search(r"ur[il]", title, re.I):
            exc["type"], exc["message"] = "URI::InvalidURIError", 'bad URI (is not URI?): "%s"' % pick(rng, strs, "http://exa mple.com/")
            exc["inner"] = [L(("URI::RFC3986_Parser#split" if new else "split"), rb + "/uri/rfc3986_parser.rb", 130),
                            L(("URI::RFC3986_Parser#parse" if new else "parse"), rb + "/uri/rfc3986_parser.rb", 135),
                            L(("URI.parse" if new else "parse"), rb + "/uri/common.rb", 212)]
        elif kind == "frozen" or re.search(r"frozen", title, re.I):
            exc["type"], exc["message"] = "FrozenError", "can't modify frozen String: \"%s\"" % pick(rng, strs, "text/html")
        else:
            exc["type"], exc["message"] = rng.choice([("ArgumentError", phrase), ("RuntimeError", phrase)])
    elif g == "dotnet":
        if explicit and explicit.split(".")[-1] in repo_exc:
            exc["type"], exc["message"] = repo_exc[explicit.split(".")[-1]], phrase
        elif kind == "null":
            if rng.random() < 0.3 and words:
                exc["type"], exc["message"] = "System.ArgumentNullException", "Value cannot be null. (Parameter '%s')" % word
                exc["inner"] = [L("System.ArgumentNullException.Throw(String paramName)"),
                                L("System.ArgumentNullException.ThrowIfNull(Object argument, String paramName)")]
            else:
                exc["type"], exc["message"] = "System.NullReferenceException", "Object reference not set to an instance of an object."
        elif kind == "index":
            if rng.random() < 0.5:
                exc["type"], exc["message"] = "System.IndexOutOfRangeException", "Index was outside the bounds of the array."
            else:
                exc["type"] = "System.ArgumentOutOfRangeException"
                exc["message"] = "Index was out of range. Must be non-negative and less than the size of the collection. (Parameter 'index')"
                exc["inner"] = [L("System.ThrowHelper.ThrowArgumentOutOfRange_IndexMustBeLessException()"),
                                L("System.Collections.Generic.List`1.get_Item(Int32 index)")]
        elif kind == "key":
            exc["type"], exc["message"] = "System.Collections.Generic.KeyNotFoundException", "The given key '%s' was not present in the dictionary." % word
            exc["inner"] = [L("System.ThrowHelper.ThrowKeyNotFoundException[T](T key)"), L("System.Collections.Generic.Dictionary`2.get_Item(TKey key)")]
        elif kind in ("parse", "overflow") and rng.random() < 0.5:
            if kind == "overflow":
                exc["type"], exc["message"] = "System.OverflowException", "Arithmetic operation resulted in an overflow."
            else:
                exc["type"], exc["message"] = "System.FormatException", "The input string '%s' was not in a correct format." % pick(rng, strs, "1.5e")
                exc["inner"] = [L("System.Number.ThrowFormatException[TChar](ReadOnlySpan`1 value)"),
                                L("System.Int32.Parse(String s, IFormatProvider provider)")]
        elif kind == "type":
            exc["type"], exc["message"] = "System.InvalidCastException", "Unable to cast object of type 'System.String' to type 'System.Int32'."
            exc["inner"] = [L("System.Runtime.CompilerServices.CastHelpers.ChkCastAny(Void* toTypeHnd, Object obj)")]
        elif kind == "concurrency":
            exc["type"], exc["message"] = "System.InvalidOperationException", "Collection was modified; enumeration operation may not execute."
            exc["inner"] = [L("System.ThrowHelper.ThrowInvalidOperationException_InvalidOperation_EnumFailedVersion()"),
                            L("System.Collections.Generic.List`1.Enumerator.MoveNextRare()")]
        elif re.search(r"MissingMethod", title):
            exc["type"], exc["message"] = "System.MissingMethodException", "Method not found: '%s'" % phrase
        else:
            exc["type"], exc["message"] = rng.choice(["System.InvalidOperationException", "System.ArgumentException"]), phrase
    if builtin and g not in ("go", "rust"):
        if exc["type"] != builtin[0]:
            exc["type"] = builtin[0]
            if kind == "generic" or builtin[0].endswith(("IllegalArgumentException", "IllegalStateException", "UnsupportedOperationException",
                                                          "ArgumentException", "InvalidOperationException", "NotSupportedException",
                                                          "ValueError", "RuntimeError", "NotImplementedError", "ArgumentError")):
                exc["message"] = phrase
    return exc


STD_EXC = {
    "java": {n.rsplit(".", 1)[1]: (n, k) for n, k in [
        ("java.lang.NullPointerException", "null"), ("java.lang.ArrayIndexOutOfBoundsException", "index"),
        ("java.lang.IndexOutOfBoundsException", "index"), ("java.lang.StringIndexOutOfBoundsException", "index"),
        ("java.lang.IllegalArgumentException", "generic"), ("java.lang.IllegalStateException", "generic"),
        ("java.lang.ClassCastException", "type"), ("java.lang.NumberFormatException", "parse"),
        ("java.lang.UnsupportedOperationException", "generic"), ("java.util.ConcurrentModificationException", "concurrency"),
        ("java.lang.StackOverflowError", "recursion"), ("java.lang.ArithmeticException", "overflow"),
        ("java.util.NoSuchElementException", "index"), ("java.io.EOFException", "io"), ("java.io.IOException", "io"),
        ("java.net.SocketTimeoutException", "timeout"), ("java.net.ProtocolException", "io"),
        ("java.net.UnknownHostException", "io"), ("java.io.InterruptedIOException", "timeout"),
        ("javax.net.ssl.SSLPeerUnverifiedException", "io"), ("javax.net.ssl.SSLHandshakeException", "io"),
        ("java.lang.NoSuchMethodError", "generic"), ("java.lang.NoClassDefFoundError", "generic"),
        ("java.lang.OutOfMemoryError", "generic"), ("java.lang.IllegalAccessException", "generic")]},
    "dotnet": {n.rsplit(".", 1)[1]: (n, k) for n, k in [
        ("System.NullReferenceException", "null"), ("System.ArgumentNullException", "null"), ("System.ArgumentException", "generic"),
        ("System.InvalidOperationException", "generic"), ("System.IndexOutOfRangeException", "index"),
        ("System.ArgumentOutOfRangeException", "index"), ("System.InvalidCastException", "type"), ("System.FormatException", "parse"),
        ("System.OverflowException", "overflow"), ("System.Collections.Generic.KeyNotFoundException", "key"),
        ("System.StackOverflowException", "recursion"), ("System.MissingMethodException", "generic"),
        ("System.NotSupportedException", "generic"), ("System.NotImplementedException", "generic"),
        ("System.ObjectDisposedException", "generic"), ("System.TypeLoadException", "type"),
        ("System.Reflection.AmbiguousMatchException", "generic"), ("System.Security.VerificationException", "generic")]},
    "javascript": {n: (n, k) for n, k in [("TypeError", "type"), ("RangeError", "index"), ("SyntaxError", "parse"),
                                          ("ReferenceError", "generic"), ("URIError", "encoding")]},
    "ruby": {n.split("::")[-1]: (n, k) for n, k in [
        ("NoMethodError", "null"), ("NameError", "generic"), ("ArgumentError", "generic"), ("TypeError", "type"), ("KeyError", "key"),
        ("FrozenError", "generic"), ("ZeroDivisionError", "overflow"), ("IndexError", "index"), ("SystemStackError", "recursion"),
        ("Encoding::CompatibilityError", "encoding"), ("Encoding::UndefinedConversionError", "encoding"), ("RangeError", "index")]},
    "python": {n: (n, k) for n, k in [
        ("KeyError", "key"), ("IndexError", "index"), ("AttributeError", "null"), ("TypeError", "type"), ("ValueError", "generic"),
        ("UnicodeDecodeError", "encoding"), ("UnicodeEncodeError", "encoding"), ("RecursionError", "recursion"),
        ("TimeoutError", "timeout"), ("OSError", "io"), ("RuntimeError", "generic"), ("NotImplementedError", "generic"),
        ("ZeroDivisionError", "overflow"), ("OverflowError", "overflow"), ("StopIteration", "generic"),
        ("FileNotFoundError", "io"), ("PermissionError", "io"), ("AssertionError", "generic"), ("ImportError", "generic"),
        ("ModuleNotFoundError", "generic"), ("UnboundLocalError", "generic"), ("NameError", "generic")]},
}


PY_KIND = {"KeyError": "key", "LookupError": "key", "IndexError": "index", "AttributeError": "null", "TypeError": "type",
           "UnicodeDecodeError": "encoding", "UnicodeEncodeError": "encoding", "RecursionError": "recursion",
           "TimeoutError": "timeout", "OSError": "io", "ConnectionError": "io", "ValueError": "parse", "OverflowError": "overflow",
           "ZeroDivisionError": "overflow"}

BUILTIN_EXC = {
    "python": {"KeyError", "ValueError", "TypeError", "AttributeError", "IndexError", "RuntimeError", "UnicodeDecodeError",
               "UnicodeEncodeError", "RecursionError", "OSError", "TimeoutError", "AssertionError", "NotImplementedError",
               "StopIteration", "LookupError", "ConnectionError", "FileNotFoundError", "PermissionError", "ZeroDivisionError", "OverflowError"},
}


def repo_exceptions(ctx, rev):
    """{ShortName: printed name} of exception classes the repository defines."""
    key = ("exc", rev)
    if key in ctx._grep:
        return ctx._grep[key]
    pat = {"python": r"^\s*class \w+(Error|Exception|Timeout)\b", "java": r"class \w+(Exception|Error)\b",
           "kotlin": r"class \w+(Exception|Error)\b", "javascript": r"class \w+Error\b", "typescript": r"class \w+Error\b",
           "ruby": r"^\s*class \w+(Error|Exception)\b", "csharp": r"class \w+Exception\b"}.get(ctx.lang)
    res = {}
    if pat:
        out = ctx.git.run("grep", "-n", "-E", "-I", "-e", pat, rev, "--", *["*" + e for e in ctx.exts], check=False)
        for line in out.split("\n"):
            parts = line.split(":", 3)
            if len(parts) < 4 or not ctx.is_src(parts[1]):
                continue
            path, content = parts[1], parts[3]
            m = re.search(r"class\s+(\w+)", content)
            if not m:
                continue
            name = m.group(1)
            if ctx.lang == "python":
                mod = path[:-3].split("/")
                if mod[0] in ("src", "lib"):
                    mod = mod[1:]
                cut = [i for i, c in enumerate(mod) if c.startswith("_") and c != "__init__"]
                mod = mod[:cut[0]] if cut else [c for c in mod if c != "__init__"]
                res.setdefault(name, ".".join(mod + [name]))
            elif ctx.lang in ("java", "kotlin"):
                t = ctx.text(rev, path) or ""
                pm = re.search(r"^\s*package\s+([\w.]+)", t, re.M)
                res.setdefault(name, (pm.group(1) + "." if pm else "") + name)
            elif ctx.lang == "csharp":
                t = ctx.text(rev, path) or ""
                nm = re.search(r"^\s*namespace\s+([\w.]+)", t, re.M)
                res.setdefault(name, (nm.group(1) + "." if nm else "") + name)
            elif ctx.lang == "ruby":
                t = (ctx.text(rev, path) or "").split("\n")
                ln = int(parts[2])
                ind = len(content) - len(content.lstrip())
                outer = []
                for k in range(ln - 2, -1, -1):
                    mm = re.match(r"^(\s*)(module|class)\s+([A-Z][\w:]*)", t[k])
                    if mm and len(mm.group(1)) < ind:
                        outer.insert(0, mm.group(3))
                        ind = len(mm.group(1))
                res.setdefault(name, "::".join(outer + [name]))
            else:
                res.setdefault(name, name)
    ctx._grep[key] = res
    return res


RepoCtx.repo_exceptions = repo_exceptions


# --------------------------------------------------------------------------
# Composing the trace
# --------------------------------------------------------------------------

ROOTS = {
    "python": ["/app/{p}", "/srv/build/{p}", "/home/runner/work/{n}/{n}/{p}", "/opt/{n}/{p}", "/usr/src/app/{p}", "/workspace/{p}"],
    "go": ["/build/{p}", "/src/{p}", "/go/src/github.com/{o}/{n}/{p}", "/home/runner/work/{n}/{n}/{p}", "{module}/{mp}", "/app/{p}"],
    "javascript": ["/app/{p}", "/usr/src/app/{p}", "/home/node/app/{p}", "/srv/{n}/{p}", "file:///app/{p}", "/opt/{n}/{p}"],
    "ruby": ["/app/{p}", "/srv/{n}/{p}", "/home/runner/work/{n}/{n}/{p}", "/usr/src/app/{p}", "/var/www/{n}/releases/20260105093012/{p}"],
    "rust": ["./{p}", "/build/{p}", "/home/runner/work/{n}/{n}/{p}", "/usr/src/{n}/{p}", "/workspace/{p}"],
    "dotnet": ["/_/{p}", "/src/{p}", "/home/runner/work/{n}/{n}/{p}", "C:\\projects\\{n}\\{pw}", "D:\\a\\{n}\\{n}\\{pw}", "/_/{p}"],
}

USER_FRAMES = {
    "python": [("/app/billing/tasks.py", "sync_invoices"), ("/app/services/payments.py", "charge_customer"),
               ("/app/worker/jobs.py", "run_job"), ("/srv/app/clients/partner_api.py", "fetch_page")],
    "java": [("com.acme.orders.web.OrderController.create", "OrderController.java"),
             ("com.acme.billing.InvoiceClient.fetchInvoices", "InvoiceClient.java"),
             ("io.acme.sync.PartnerSyncJob.run", "PartnerSyncJob.java")],
    "javascript": [("/app/src/services/billing.js", "syncInvoices"), ("/app/src/routes/orders.js", "createOrder"),
                   ("/usr/src/app/src/jobs/partnerSync.js", "runPartnerSync")],
    "go": [("/build/cmd/ordersctl/main.go", "main.main"), ("/build/ordersctl.go", "main.main"), ("/src/cmd/ingest/ingest.go", "main.run")],
    "rust": [("./src/bin/ordersctl.rs", "ordersctl::main"), ("./src/ingest.rs", "ingest::run")],
    "ruby": [("/app/app/controllers/orders_controller.rb", "OrdersController#create", "create"),
             ("/app/lib/tasks/partner_sync.rb", "PartnerSync#run", "run")],
    "dotnet": [("Acme.Orders.Api.Controllers.OrdersController.Get(Int32 id)", "/src/Acme.Orders.Api/Controllers/OrdersController.cs"),
               ("Acme.Billing.Worker.InvoiceSyncService.ExecuteAsync(CancellationToken stoppingToken)", "/src/Acme.Billing.Worker/InvoiceSyncService.cs")],
}

PREFIXES = ["iso-level-pod", "pod", "cri", "syslog", "log4j"]


def prefix_fn(style, ts, pod, rng):
    t = dt.datetime.fromtimestamp(ts, dt.timezone.utc)
    ms = rng.randrange(1000)
    if style == "iso-level-pod":
        p = "%s.%03dZ ERROR [%s] " % (t.strftime("%Y-%m-%dT%H:%M:%S"), ms, pod)
    elif style == "pod":
        p = "[%s] " % pod
    elif style == "cri":
        p = "%s.%09dZ stderr F " % (t.strftime("%Y-%m-%dT%H:%M:%S"), ms * 1000000 + rng.randrange(1000000))
    elif style == "syslog":
        p = "%s ip-10-0-%d-%d %s[%d]: " % (t.strftime("%b %d %H:%M:%S"), rng.randrange(256), rng.randrange(256), pod.split("-")[0], rng.randrange(100, 40000))
    else:
        p = "%s,%03d ERROR [%s] " % (t.strftime("%Y-%m-%d %H:%M:%S"), ms, pod)
    return lambda line: p + line


def mapping_candidates(ctx, rev, runtime, java_pkg=None, java_file=None):
    """Repository paths a correct mapper could pick for this frame."""
    tree = ctx.tree(rev)
    if java_file is not None:
        tail = (java_pkg.replace(".", "/") + "/" if java_pkg else "") + java_file
        c = [p for p in tree if p == tail or p.endswith("/" + tail)]
        return c or [p for p in tree if os.path.basename(p) == java_file]
    comps = runtime.replace("\\", "/").split("/")
    base = comps[-1]
    by_base = ctx._bybase.get(rev)
    if by_base is None:
        by_base = defaultdict(list)
        for p in tree:
            by_base[os.path.basename(p)].append(p)
        ctx._bybase = {rev: by_base}
    cands = by_base.get(base, [])
    full = [p for p in cands if comps[-len(p.split("/")):] == p.split("/")]
    if full:
        best = max(len(p.split("/")) for p in full)
        return [p for p in full if len(p.split("/")) == best]

    def common(p):
        pc, k = p.split("/"), 0
        while k < len(pc) and k < len(comps) and pc[-1 - k] == comps[-1 - k]:
            k += 1
        return k
    if not cands:
        return []
    best = max(common(p) for p in cands)
    return [p for p in cands if common(p) == best]


def choose_root(ctx, case, rng, app_frames):
    g = ctx.group
    roots = ROOTS.get(g)
    if not roots:
        return None
    order = list(roots)
    rng.shuffle(order)
    # a third of Python cases deploy a src/ layout without the src/ directory
    if g == "python" and rng.random() < 0.3 and all(f["path"].startswith("src/") for f in app_frames):
        order.insert(0, "/app/{p_nosrc}")
    for r in order:
        ok = True
        for f in app_frames:
            rt = runtime_path(ctx, case, r, f)
            if mapping_candidates(ctx, case["parent"], rt) != [f["path"]]:
                ok = False
                break
        if ok:
            return r
    return order[-1]


def runtime_path(ctx, case, root, f):
    p = f["path"]
    mp = p
    module = f.get("module")
    if "{module}" in root:
        if not module:
            root, module = "/build/{p}", ""
        else:
            md = f.get("moddir") or ""
            mp = p[len(md) + 1:] if md and p.startswith(md + "/") else p
    return root.format(p=p, n=ctx.short, o=ctx.owner, pw=p.replace("/", "\\"), module=module or "", mp=mp,
                       p_nosrc=p[4:] if p.startswith("src/") else p)


def compose(ctx, case, rng):
    rev = case["parent"]
    g = ctx.group
    host = ctx.cfg.get("host", "lib")
    text = ctx.text(rev, case["path"]) or ""
    fr0 = app_frame(ctx, rev, case["path"], case["func"], case["line"])
    fr0["src"] = text.split("\n")[case["line"] - 1]
    # callers
    want = rng.choice([1, 1, 2, 2, 2, 3, 3, 4])
    callers, avoid = [], {(case["path"], case["func"].start)}
    cur_path, cur_func = case["path"], case["func"]
    for _ in range(want):
        cands = find_callers(ctx, rev, cur_path, cur_func, rng, avoid)
        if not cands:
            break
        p, f, ln = rng.choice(cands)
        fr = app_frame(ctx, rev, p, f, ln)
        src = (ctx.text(rev, p) or "").split("\n")[ln - 1]
        word = callee_name(ctx, cur_func)[0]
        k = src.find(word)
        fr["col"] = (k + 1) if k >= 0 else fr["col"]
        callers.append(fr)
        avoid.add((p, f.start))
        cur_path, cur_func = p, f
    entry = False
    if not callers:
        e = entry_frame(ctx, rev, case["path"], avoid, rng)
        if e:
            callers.append(app_frame(ctx, rev, e[0], e[1], e[2]))
            entry = True
    exc = exception_for(ctx, case, rng, fr0)
    if exc.get("cframe"):
        # Ruby prints a C method's frame with its caller's file and line
        cf = dict(fr0)
        cf.update(label=exc["cframe"], label_new=exc["cframe"], label_old=exc["cframe"].split("#")[-1], cframe=True)
        exc["inner"] = [cf] + exc["inner"]
    app = [fr0] + callers
    # user-application frames (code that is not in the repository) for libraries
    tree_bases = {os.path.basename(p) for p in ctx.tree(rev)}
    user = []
    if host == "lib" and rng.random() < 0.4:
        opts = [u for u in USER_FRAMES[g] if os.path.basename(u[1] if g in ("java", "dotnet") else u[0]) not in tree_bases]
        if opts:
            u = rng.choice(opts)
            if g == "java":
                user = [L(u[0], u[1], rng.randrange(20, 200), user=True)]
            elif g == "dotnet":
                user = [L(u[0], u[1], rng.randrange(20, 200), user=True)]
            elif g == "ruby":
                user = [L(u[1], u[0], rng.randrange(10, 120), user=True, label_old=u[2])]
            elif g == "go":
                user = [L(u[1], u[0], rng.randrange(10, 120), user=True)]
            else:
                user = [L(u[1], u[0], rng.randrange(10, 200), rng.randrange(3, 40), user=True)]
    outer, header = outer_frames(ctx, case, rng, host, g, app, tree_bases)
    root = choose_root(ctx, case, rng, app)
    for f in app + [f for f in exc["inner"] if f.get("app")]:
        f["rt"] = runtime_path(ctx, case, root, f) if root else None
    chained = False
    if callers and not entry and not exc.get("recursion") and not exc.get("fatal"):
        chained = rng.random() < {"python": 0.15, "java": 0.3, "dotnet": 0.3}.get(g, 0)
    rec = exc.get("recursion", False)
    if rec:
        reps = {"python": 3, "java": 6, "javascript": 6, "ruby": 4, "go": 4}.get(g, 1)
        app = [fr0] * reps + app[1:]
    blocks = []
    if chained:
        c1 = callers[0]
        fn = c1["fn"]
        wrap = dict(c1)
        wrap["line"] = min(fn.end, c1["line"] + rng.randrange(1, 4))
        outer_exc = wrapper_exception(ctx, case, rng, exc)
        tail = callers[1:] + user + outer
        blocks.append({"type": outer_exc["type"], "message": outer_exc["message"], "frames": [wrap] + tail})
        cause_frames = exc["inner"] + [fr0, c1]
        if g == "java":
            blocks.append({"type": exc["type"], "message": exc["message"], "frames": cause_frames, "more": len(tail)})
        else:
            blocks.append({"type": exc["type"], "message": exc["message"], "frames": cause_frames})
        if g == "python":
            blocks[0]["cause_word"] = rng.choice(["cause", "cause", "context"])
    else:
        blocks.append({"type": exc["type"], "message": exc["message"], "frames": exc["inner"] + app + user + outer})
    if g == "javascript":
        blocks[0]["frames"] = blocks[0]["frames"][:10]   # V8's default Error.stackTraceLimit
    render = RENDER[g]
    lines = render(ctx, case, rng, blocks, exc, header)
    frames = []
    for b in blocks:
        for f in b["frames"]:
            frames.append(f)
    if g == "go" and header.get("created_by"):
        frames.append(header["created_by"])
    fixed_index = next(i for i, f in enumerate(frames) if f is fr0)
    truth = []
    for i, f in enumerate(frames):
        if f.get("app"):
            ent = {"index": i, "path": f["path"], "function": f["label"] if g != "ruby" else f.get("printed", f["label"]), "line": f["line"]}
            if g == "java":
                cands = mapping_candidates(ctx, rev, None, f["pkg"], f["file"])
            elif f.get("rt"):
                cands = mapping_candidates(ctx, rev, f["rt"])
            else:
                cands = [f["path"]]
            if cands != [f["path"]]:
                ent["ambiguousWith"] = sorted(c for c in cands if c != f["path"])[:10]
        else:
            ent = {"index": i, "path": None, "function": f.get("printed", f["label"]), "line": f.get("line"),
                   "kind": "user" if f.get("user") else ("createdBy" if f.get("created_by") else "library")}
        truth.append(ent)
    prefix = None
    if rng.random() < 1 / 3:
        prefix = rng.choice(PREFIXES)
        pod = "%s-%s-%s" % (re.sub(r"[^a-z0-9]+", "-", ctx.short.lower()).strip("-"),
                            "".join(rng.choice("0123456789abcdef") for _ in range(9)),
                            "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5)))
        pf = prefix_fn(prefix, case["occurred"], pod, rng)
        lines = [pf(l) for l in lines]
    features = {"format": header.get("format"), "logPrefix": prefix, "chained": chained, "recursion": rec,
                "callers": len(callers) - (1 if entry else 0), "entryFrame": entry, "userFrames": len(user),
                "libraryFramesAboveFixed": len(exc["inner"]), "pathRoot": root, "errorKind": exc["kind"]}
    features["fixedFrameIndex"] = fixed_index
    return "\n".join(lines) + "\n", truth, features, exc


def wrapper_exception(ctx, case, rng, exc):
    g = ctx.group
    repo_exc = ctx.repo_exceptions(case["parent"])
    names = sorted(repo_exc)
    words = set(w.lower() for w in re.findall(r"[A-Za-z]+", case["fixTitle"]))
    liked = [n for n in names if any(w in n.lower() for w in words if len(w) > 3)]
    pool = liked or names
    base = {"python": ("RuntimeError", None), "java": ("java.lang.RuntimeException", None),
            "dotnet": ("System.InvalidOperationException", None)}[g]
    t = repo_exc[rng.choice(pool)] if pool and rng.random() < 0.7 else base[0]
    if g == "java":
        cause = exc["type"] + (": " + exc["message"] if exc["message"] else "")
        msg = cause if rng.random() < 0.6 else title_phrase(case["fixTitle"])
    elif g == "dotnet":
        msg = rng.choice(["Error mapping types." if "AutoMapper" in t else "An error occurred while processing the request.",
                          title_phrase(case["fixTitle"])])
    else:
        msg = title_phrase(case["fixTitle"])
    return {"type": t, "message": msg}


def outer_frames(ctx, case, rng, host, g, app, tree_bases):
    """Framework/runtime frames below the application's (innermost first), and
    format details."""
    st = case["style"]
    h = {"format": g}
    if g == "python":
        v, std, site = st["py"]
        h["format"] = "python-%s" % v
        if host == "web":
            return (rng.choice([
                [L("handle_request", site + "/gunicorn/workers/sync.py", 178), L("handle", site + "/gunicorn/workers/sync.py", 135)],
                [L("execute", site + "/werkzeug/serving.py", 331), L("run_wsgi", site + "/werkzeug/serving.py", 370),
                 L("handle_one_request", std + "/http/server.py", 424), L("handle", site + "/werkzeug/serving.py", 398)]]), h)
        return (rng.choice([
            [], [L("run", std + "/concurrent/futures/thread.py", 59), L("_worker", std + "/concurrent/futures/thread.py", 93),
                 L("run", std + "/threading.py", 1012), L("_bootstrap_inner", std + "/threading.py", 1075), L("_bootstrap", std + "/threading.py", 1032)],
            [L("__protected_call__", site + "/celery/app/trace.py", 736), L("trace_task", site + "/celery/app/trace.py", 453)],
            [L("run_until_complete", std + "/asyncio/base_events.py", 687), L("run", std + "/asyncio/runners.py", 118), L("run", std + "/asyncio/runners.py", 194)]]), h)
    if g == "java":
        jb = "java.base/" if st["javaModules"] else ""
        h["format"] = "jvm"
        pool = [L(jb + "java.util.concurrent.ThreadPoolExecutor.runWorker", "ThreadPoolExecutor.java", 1144),
                L(jb + "java.util.concurrent.ThreadPoolExecutor$Worker.run", "ThreadPoolExecutor.java", 642),
                L(jb + "java.lang.Thread.run", "Thread.java", 1583)]
        spring = [L(jb + "jdk.internal.reflect.DirectMethodHandleAccessor.invoke", "DirectMethodHandleAccessor.java", 103),
                  L(jb + "java.lang.reflect.Method.invoke", "Method.java", 580),
                  L("org.springframework.web.method.support.InvocableHandlerMethod.doInvoke", "InvocableHandlerMethod.java", 255),
                  L("org.springframework.web.method.support.InvocableHandlerMethod.invokeForRequest", "InvocableHandlerMethod.java", 188)]
        coro = [L("kotlin.coroutines.jvm.internal.BaseContinuationImpl.resumeWith", "ContinuationImpl.kt", 33),
                L("kotlinx.coroutines.DispatchedTask.run", "DispatchedTask.kt", 108),
                L("kotlinx.coroutines.scheduling.CoroutineScheduler.runSafely", "CoroutineScheduler.kt", 584),
                L("kotlinx.coroutines.scheduling.CoroutineScheduler$Worker.run", "CoroutineScheduler.kt", 677)]
        opts = [pool, [], spring] + ([coro] if ctx.lang == "kotlin" else [])
        return rng.choice(opts), h
    if g == "javascript":
        h["format"] = "v8"
        ticks = L("process.processTicksAndRejections", "node:internal/process/task_queues", rng.choice([95, 105]), 5)
        if host == "web":
            return rng.choice([
                [L("Layer.handleRequest", "/app/node_modules/router/lib/layer.js", 152, 17), L("next", "/app/node_modules/router/lib/route.js", 157, 13),
                 L("Route.dispatch", "/app/node_modules/router/lib/route.js", 117, 3), L("handle", "/app/node_modules/router/index.js", 435, 11)],
                [L("Server.emit", "node:events", 519, 28), L("parserOnIncoming", "node:_http_server", 1141, 12),
                 L("HTTPParser.parserOnHeadersComplete", "node:_http_common", 118, 17)]]), h
        return rng.choice([[ticks], [], [ticks, L("async Promise.all (index 0)", None, raw=True)]]), h
    if g == "go":
        h["format"] = "go"
        h["goroutine"] = rng.choice([1, 1, 7, 23, 58, 112, 2381])
        http = [L("net/http.HandlerFunc.ServeHTTP", "/usr/local/go/src/net/http/server.go", 2220, args="(0xc000%x?, {0x%x?, 0xc000%x?}, 0xc000%x?)"),
                L("net/http.serverHandler.ServeHTTP", "/usr/local/go/src/net/http/server.go", 3210, args="({0xc000%x?}, {0x%x?, 0xc000%x?}, 0xc000%x)"),
                L("net/http.(*conn).serve", "/usr/local/go/src/net/http/server.go", 2092, args="(0xc000%x, {0x%x, 0xc000%x})")]
        if host in ("web", "server") and rng.random() < 0.6:
            h["http"] = True
            h["goroutine"] = rng.randrange(30, 4000)
            h["created_by"] = L("net/http.(*Server).Serve", "/usr/local/go/src/net/http/server.go", 3360, created_by=True)
            return http[rng.randrange(0, 2):], h
        if host == "server":
            h["goroutine"] = rng.randrange(30, 4000)
            h["created_by"] = L("github.com/grafana/dskit/services.(*BasicService).StartAsync.func1",
                                "/go/pkg/mod/github.com/grafana/dskit@v0.0.0-20250611075409-46f51e1ce914/services/basic_service.go", 161, created_by=True)
            return [L("github.com/grafana/dskit/services.(*BasicService).main",
                      "/go/pkg/mod/github.com/grafana/dskit@v0.0.0-20250611075409-46f51e1ce914/services/basic_service.go", 193, args="(0xc000%x)")], h
        return [], h
    if g == "rust":
        h["format"] = "rust"
        core = "/rustc/%s/library/core/src" % st["rustc"]
        return [L("core::ops::function::FnOnce::call_once", core + "/ops/function.rs", 250, 5)], h
    if g == "ruby":
        new = st["ruby34"]
        h["format"] = "ruby-3.4" if new else ("ruby-2.7-reversed" if st.get("rubyReversed") else "ruby")
        gems = st["gems"]
        if host == "web":
            return [L("Rack::Head#call", gems + "/rack-3.1.8/lib/rack/head.rb", 15),
                    L("Rack::MethodOverride#call", gems + "/rack-3.1.8/lib/rack/method_override.rb", 28),
                    L("Puma::Configuration::ConfigMiddleware#call", gems + "/puma-6.4.3/lib/puma/configuration.rb", 279),
                    L("block in Puma::Request#handle_request", gems + "/puma-6.4.3/lib/puma/request.rb", 99),
                    L("block in Puma::ThreadPool#spawn_thread", gems + "/puma-6.4.3/lib/puma/thread_pool.rb", 167)][:rng.randrange(2, 6)], h
        binstub = gems.rsplit("/gems", 1)[0] + "/bin/rubocop" if "/gems" in gems else "/usr/local/bundle/bin/rubocop"
        return [L("Kernel#load", binstub, 25), L("<main>", binstub, 25)], h
    if g == "dotnet":
        h["format"] = "dotnet"
        aspnet = [L("lambda_method12(Closure, Object, Object[])"),
                  L("Microsoft.AspNetCore.Mvc.Infrastructure.ActionMethodExecutor.SyncObjectResultExecutor.Execute(ActionContext actionContext, IActionResultTypeMapper mapper, ObjectMethodExecutor executor, Object controller, Object[] arguments)"),
                  L("Microsoft.AspNetCore.Mvc.Infrastructure.ControllerActionInvoker.InvokeActionMethodAsync()"),
                  L("Microsoft.AspNetCore.Mvc.Infrastructure.ControllerActionInvoker.Next(State& next, Scope& scope, Object& state, Boolean& isCompleted)")]
        worker = [L("Microsoft.Extensions.Hosting.Internal.Host.TryExecuteBackgroundServiceAsync(BackgroundService backgroundService)")]
        return rng.choice([aspnet, worker, []]), h
    return [], h


def go_args(rng, n=None):
    n = rng.randrange(0, 4) if n is None else n
    if rng.random() < 0.15:
        return "(...)"
    parts = []
    for _ in range(n):
        parts.append(rng.choice(["0xc000%06x" % rng.randrange(1 << 24), "{0x%x, 0x%x}" % (rng.randrange(0x400000, 0x2000000), rng.randrange(1, 40)),
                                 "0x%x" % rng.randrange(1, 0x100)]))
    return "(" + ", ".join(parts) + ")"


def render_python(ctx, case, rng, blocks, exc, header):
    out = []
    seq = list(reversed(blocks))
    for bi, b in enumerate(seq):
        if bi > 0:
            out += ["", "The above exception was the direct cause of the following exception:" if blocks[0].get("cause_word") == "cause"
                    else "During handling of the above exception, another exception occurred:", ""]
        out.append("Traceback (most recent call last):")
        frames = list(reversed(b["frames"]))
        rec_done = False
        for k, f in enumerate(frames):
            file = f["rt"] if f.get("app") else f["file"]
            out.append('  File "%s", line %d, in %s' % (file, f["line"], f["label"]))
            if exc.get("recursion") and not rec_done and f.get("app") and k >= 2 and frames[k - 1] is f and frames[k - 2] is f:
                out.append("  [Previous line repeated 996 more times]")
                rec_done = True
        out.append(b["type"] + (": " + b["message"] if b["message"] else ""))
    return out


def render_java(ctx, case, rng, blocks, exc, header):
    out = []

    def fl(f):
        if f.get("app"):
            return "\tat %s(%s:%d)" % (f["label"], f["file"], f["line"])
        if f.get("file") is None:
            return "\tat %s(Native Method)" % f["label"]
        return "\tat %s(%s:%d)" % (f["label"], f["file"], f["line"])
    for bi, b in enumerate(blocks):
        head = b["type"] + (": " + b["message"] if b["message"] else "")
        out.append(head if bi == 0 else "Caused by: " + head)
        for f in b["frames"]:
            out.append(fl(f))
        if b.get("more"):
            out.append("\t... %d more" % b["more"])
    return out


def render_js(ctx, case, rng, blocks, exc, header):
    b = blocks[0]
    out = [b["type"] + (": " + b["message"] if b["message"] else "")]
    for i, f in enumerate(b["frames"]):
        if f.get("raw"):
            out.append("    at " + f["label"])
            f["printed"] = f["label"]
            continue
        label = f["label"]
        if f.get("app") and i > 0 and ctx.cfg.get("host") != "web" and rng.random() < 0.25:
            label = "async " + label
        f["printed"] = label
        if f.get("native"):
            out.append("    at %s (<anonymous>)" % label)
        elif f.get("app"):
            out.append("    at %s (%s:%d:%d)" % (label, f["rt"], f["line"], f["col"]))
        elif f.get("line") is not None:
            out.append("    at %s (%s:%d:%d)" % (label, f["file"], f["line"], f["col"] or 1))
        else:
            out.append("    at %s" % label)
    if rng.random() < 0.25:
        out += ["", "Node.js v%s" % rng.choice(["18.20.4", "20.18.0", "22.11.0"])]
    return out


def render_go(ctx, case, rng, blocks, exc, header):
    b = blocks[0]
    msg = b["message"]
    out = list(exc.get("pre", []))
    if header.get("http"):
        out.append("http: panic serving 10.%d.%d.%d:%d: %s" % (rng.randrange(256), rng.randrange(256), rng.randrange(256), rng.randrange(30000, 65000), msg))
        out.append("goroutine %d [running]:" % header["goroutine"])
        lead = [L("net/http.(*conn).serve.func1", "/usr/local/go/src/net/http/server.go", 1947, args="()"),
                L("panic", "/usr/local/go/src/runtime/panic.go", 785, args="({0x%x?, 0x%x?})")]
        b["frames"][:0] = lead
        exc["inner"] = lead + exc["inner"]
    elif exc.get("fatal"):
        out += ["fatal error: " + msg, "", "goroutine %d [running]:" % header["goroutine"]]
    else:
        out.append("panic: " + msg)
        if exc.get("signal"):
            out.append(exc["signal"])
        out += ["", "goroutine %d [running]:" % header["goroutine"]]
    for f in b["frames"]:
        if f.get("app"):
            out.append(f["label"] + go_args(rng))
            out.append("\t%s:%d +0x%x" % (f["rt"], f["line"], rng.randrange(0x10, 0x6ff)))
        else:
            a = f.get("args") or "()"
            a = re.sub(r"%x", lambda m: "%x" % rng.randrange(0x1000, 0xffffff), a)
            out.append(f["label"] + a)
            out.append("\t%s:%d +0x%x" % (f["file"], f["line"], rng.randrange(0x10, 0x6ff)))
    if exc.get("recursion"):
        out.append("...additional frames elided...")
    cb = header.get("created_by")
    if cb:
        out.append("created by %s in goroutine %d" % (cb["label"], rng.choice([1, 1, 9, 41])))
        out.append("\t%s:%d +0x%x" % (cb["file"], cb["line"], rng.randrange(0x10, 0x6ff)))
    return out


def render_rust(ctx, case, rng, blocks, exc, header):
    b = blocks[0]
    fr0 = next(f for f in b["frames"] if f.get("app"))
    tname = rng.choice(["main", "main", "main", "<unnamed>", "tokio-runtime-worker"])
    out = ["thread '%s' panicked at %s:%d:%d:" % (tname, fr0["path"], fr0["line"], fr0["col"]), b["message"], "stack backtrace:"]
    for i, f in enumerate(b["frames"]):
        out.append("%4d: %s" % (i, f["label"]))
        file = f["rt"] if f.get("app") else f["file"]
        out.append("             at %s:%d:%d" % (file, f["line"], f["col"] or 5))
    out.append("note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.")
    return out


def _ruby_old_label(label):
    return re.sub(r"^((?:block (?:\(\d+ levels\) )?in )?)[A-Z][\w:]*[#.]", r"\1", label)


def render_ruby(ctx, case, rng, blocks, exc, header):
    b = blocks[0]
    new = case["style"]["ruby34"]
    rev = case["style"].get("rubyReversed") and not new
    q = (lambda s: "'%s'" % s) if new else (lambda s: "`%s'" % s)
    entries = []
    for f in b["frames"]:
        if f.get("app"):
            label = f["label_new"] if new else f["label_old"]
            file = f["rt"]
        else:
            label = f["label"] if new else f.get("label_old") or _ruby_old_label(f["label"])
            file = f["file"]
        f["printed"] = label
        entries.append("%s:%d:in %s" % (file, f["line"], q(label)))
    head = "%s: %s (%s)" % (entries[0], b["message"], b["type"])
    rec_line = None
    if exc.get("recursion"):
        rec_line = " ... %d levels..." % rng.randrange(9000, 12000)
    if rev:
        out = ["Traceback (most recent call last):"]
        n = len(entries)
        for k in range(n - 1, 0, -1):
            out.append("\t%d: from %s" % (k, entries[k]))
        out.append(head)
        return out
    out = [head]
    for k, e in enumerate(entries[1:], 1):
        out.append("\tfrom " + e)
        if rec_line and k == 3:
            out.append("\t" + rec_line)
            rec_line = None
    return out


def render_dotnet(ctx, case, rng, blocks, exc, header):
    def fl(f):
        if f.get("app"):
            return "   at %s in %s:line %d" % (f["label"], f["rt"], f["line"])
        if f.get("user"):
            return "   at %s in %s:line %d" % (f["label"], f["file"], f["line"])
        return "   at %s" % f["label"]
    lead = "Unhandled exception. " if rng.random() < 0.3 else ""
    out = []
    asyncy = rng.random() < 0.2
    if len(blocks) == 2:
        o, i = blocks
        out.append("%s%s: %s" % (lead, o["type"], o["message"]))
        out.append(" ---> %s: %s" % (i["type"], i["message"]))
        out += [fl(f) for f in i["frames"]]
        out.append("   --- End of inner exception stack trace ---")
        out += [fl(f) for f in o["frames"]]
    else:
        b = blocks[0]
        out.append("%s%s: %s" % (lead, b["type"], b["message"]))
        for k, f in enumerate(b["frames"]):
            out.append(fl(f))
            if asyncy and f.get("app") and k + 1 < len(b["frames"]) and b["frames"][k + 1].get("app"):
                out.append("--- End of stack trace from previous location ---")
                asyncy = False
    return out


RENDER = {"python": render_python, "java": render_java, "javascript": render_js, "go": render_go,
          "rust": render_rust, "ruby": render_ruby, "dotnet": render_dotnet}


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

RUSTC = ["90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf", "4eb161250e340c8f48f66e2b929ef4a5bed7c181",
         "05f9846f893b09a1be1fc8560e33fc3c815cfecb", "17067e9ac6d7e98f18d4d3d4ae7c4ba2c2a4ba39"]


def case_style(ctx, rng):
    new = rng.random() < 0.5
    rv = "3.4.0" if new else rng.choice(["3.3.0", "3.2.0", "2.7.0"])
    reversed_fmt = (not new) and rv == "2.7.0" and rng.random() < 0.5
    gems = rng.choice(["/usr/local/bundle/gems", "/usr/local/lib/ruby/gems/%s/gems" % rv,
                       "/home/app/vendor/bundle/ruby/%s/gems" % rv])
    return {"py": py_lib(rng), "javaModules": rng.random() < 0.8, "rustc": rng.choice(RUSTC),
            "ruby34": new, "rubyReversed": reversed_fmt, "rubylib": "/usr/local/lib/ruby/" + rv, "gems": gems}


def ranges_of(indices):
    out, s, prev = [], None, None
    for i in indices:
        if s is None:
            s = prev = i
        elif i == prev + 1:
            prev = i
        else:
            out.append([s, prev + 1])
            s = prev = i
    if s is not None:
        out.append([s, prev + 1])
    return out


def build_repo(name, gitdir, head, log):
    cfg = REPOS[name]
    ctx = RepoCtx(name, gitdir, cfg, head)
    git = ctx.git
    branch = git.run("symbolic-ref", "--short", "HEAD", check=False).strip() or "main"
    commits = load_commits(git, head)
    by_sha = {c.sha: c for c in commits}
    prs, sha2pr = find_prs(git, commits)
    for q in prs.values():
        # "Merge pull request #N from OWNER/branch" names the fork; a branch of
        # the repository itself names the organisation: take the branch tip's author
        c = by_sha[q.sha]
        if q.kind == "merge" and q.author.lower() == ctx.owner.lower() and len(c.parents) > 1 and c.parents[1] in by_sha:
            t = by_sha[c.parents[1]]
            q.author = author_login(t.aname, t.aemail)
    since = parse_since(cfg["since"]) if cfg.get("since") else 0
    map_merge_members(git, prs, sha2pr, since - (WINDOW_DAYS + 1) * 86400 if since else 0)
    recent = [c for c in commits if c.ctime >= since - 3 * 365 * 86400]
    mass = mass_change_revs(ctx, recent)
    rng = random.Random("%d:%s" % (SEED, name))
    cands = sorted((p for p in prs.values() if p.merged >= since and is_fix_pr(p)), key=lambda p: p.number)
    rng.shuffle(cands)
    quota = cfg.get("cases", MAX_CASES_PER_REPO)
    why = Counter()
    cases = []
    log("%s: %d commits, %d PRs, %d fix candidates, %d mass-change revs" % (name, len(commits), len(prs), len(cands), len(mass)))
    for p in cands:
        if len(cases) >= quota:
            break
        parent = by_sha[p.sha].parents[0] if by_sha[p.sha].parents else None
        if parent is None:
            continue
        res, reason = szz(ctx, p, prs, sha2pr, by_sha, ignore_revs_for(ctx, parent, mass))
        if res is None:
            why[reason] += 1
            continue
        why["kept"] += 1
        res["fixTitle"] = p.title
        crng = random.Random("%d:%s:%d" % (SEED, name, p.number))
        res["style"] = case_style(ctx, crng)
        text, frames, features, exc = compose(ctx, res, crng)
        fixed_idx = features.pop("fixedFrameIndex")
        cases.append({"pr": p, "res": res, "text": text, "frames": frames, "features": features, "exc": exc, "fixedIndex": fixed_idx})
        log("  + %s#%d %s -> %s:%d %s culprits=%s" % (ctx.short, p.number, p.title[:60], res["path"], res["line"], res["func"].name, res["culprits"]))
    log("%s: %s" % (name, dict(why)))
    # the history every case needs
    cases.sort(key=lambda c: (c["pr"].merged, c["pr"].number))
    windows = [(c["res"]["occurred"] - WINDOW_DAYS * 86400, c["res"]["occurred"]) for c in cases]
    needed = sorted((q for q in prs.values() if any(a <= q.merged <= b for a, b in windows)), key=lambda q: (q.merged, q.number))
    log("%s: diffing %d PRs" % (name, len(needed)))
    pr_json = []
    diffs = diff_many(git, [q.sha for q in needed])
    for q in needed:
        files = diffs.get(q.sha, [])[:3000]   # GitHub lists at most 3000 files of a PR
        pr_json.append({"number": q.number, "title": q.title, "author": q.author, "mergedAt": iso(q.merged),
                        "mergeCommitSha": q.sha,
                        "files": [{"path": f["path"], "previousPath": f["previousPath"], "status": f["status"],
                                   "hunks": "\n".join(hunk_header(h) for h in f["hunks"])} for f in files]})
    all_paths = set()
    trees = {}
    for c in cases:
        t = ctx.tree(c["res"]["parent"])
        trees[c["res"]["parent"]] = t
        all_paths.update(t)
    paths = sorted(all_paths)
    index = {p: i for i, p in enumerate(paths)}
    out_cases = []
    for c in cases:
        p, r = c["pr"], c["res"]
        t = trees[r["parent"]]
        out_cases.append({
            "id": "%s-fix-%d" % (ctx.short.lower().replace(".", "-"), p.number),
            "fix": {"sha": p.sha, "parentSha": r["parent"], "pr": p.number, "title": p.title, "mergedAt": iso(p.merged)},
            "occurredAt": iso(r["occurred"]),
            "tree": {"pathRanges": ranges_of(sorted(index[x] for x in t)), "count": len(t)},
            "pullRequestWindow": {"from": iso(r["occurred"] - WINDOW_DAYS * 86400), "to": iso(r["occurred"])},
            "stacktrace": c["text"],
            "service": None,
            "truth": {
                "file": r["path"], "function": r["func"].name, "line": r["line"],
                "functionRange": [r["func"].start, r["func"].end],
                "fixedFrameIndex": c["fixedIndex"],
                "culpritPrs": r["culprits"],
                "frames": c["frames"],
                "exception": {"type": c["exc"]["type"], "message": c["exc"]["message"]},
            },
            "szz": {"fixSourceFiles": r["srcFiles"], "deletedLines": r["deletedLines"], "blamedLines": r["blamedLines"],
                    "culpritLines": {str(n): k for n, k in sorted(r["perPr"].items())},
                    "culpritLinesInFunction": {str(n): k for n, k in sorted(r["inFunction"].items())},
                    "discardedLines": dict(sorted(r["stats"].items()))},
            "features": c["features"],
        })
    doc = {
        "repository": name, "language": cfg["language"], "group": GROUP[cfg["language"]], "defaultBranch": branch,
        "mirrorCommit": head, "formatVersion": 1, "hunkContext": 0, "windowDays": WINDOW_DAYS,
        "paths": paths, "pullRequests": pr_json, "cases": out_cases,
        "selection": {"since": cfg.get("since"), "quota": quota, "candidates": len(cands), "outcomes": dict(sorted(why.items()))},
    }
    git.close()
    return doc


def repo_name_from_path(path):
    p = os.path.abspath(path).rstrip("/")
    for part in reversed(p.split("/")):
        if "+" in part:
            return part.replace("+", "/", 1)
    raise SystemExit("cannot tell the repository of %s: pass OWNER/NAME=PATH" % path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mirrors", nargs="+", help="bare git dirs (/work/.mirror/OWNER+NAME/repo) or OWNER/NAME=PATH")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--use-mirror-head", action="store_true")
    args = ap.parse_args(argv)
    repos_json = os.path.join(args.out, "repos.json")
    recorded = {}
    if os.path.exists(repos_json):
        for r in json.load(open(repos_json))["repositories"]:
            recorded[r["repository"]] = r
    mirrors = {}
    for m in args.mirrors:
        if "=" in m:
            n, pth = m.split("=", 1)
        else:
            n, pth = repo_name_from_path(m), m
        if n not in REPOS:
            print("skipping %s: not configured" % n, file=sys.stderr)
            continue
        mirrors[n] = pth
    log = lambda s: print(s, file=sys.stderr, flush=True)
    for name in REPOS:
        if name not in mirrors or (args.only and name not in args.only):
            continue
        g = Git(mirrors[name])
        head = g.run("rev-parse", "HEAD").strip()
        rec = recorded.get(name, {}).get("mirrorCommit")
        if rec and not args.use_mirror_head:
            if g.run("cat-file", "-t", rec, check=False).strip() == "commit":
                head = rec
            else:
                log("%s: recorded commit %s not in mirror; using its HEAD %s" % (name, rec, head))
        doc = build_repo(name, mirrors[name], head, log)
        lang = doc["group"]
        d = os.path.join(args.out, "cases", lang)
        os.makedirs(d, exist_ok=True)
        slug = name.replace("/", "__")
        data = json.dumps(doc, indent=None, separators=(",", ":"), ensure_ascii=False, sort_keys=False).encode()
        for ext in (".json", ".json.gz"):
            old = os.path.join(d, slug + ext)
            if os.path.exists(old):
                os.remove(old)
        if len(data) > GZIP_OVER:
            fn = os.path.join(d, slug + ".json.gz")
            with open(fn, "wb") as fh:
                with gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=9) as gz:
                    gz.write(data)
        else:
            fn = os.path.join(d, slug + ".json")
            with open(fn, "wb") as fh:
                fh.write(data)
        recorded[name] = {"repository": name, "language": doc["language"], "group": lang, "defaultBranch": doc["defaultBranch"],
                          "mirrorCommit": head, "since": REPOS[name].get("since"), "file": os.path.relpath(fn, args.out),
                          "cases": len(doc["cases"]), "pullRequests": len(doc["pullRequests"]), "paths": len(doc["paths"])}
        with open(repos_json, "w") as fh:
            json.dump({"note": "fetch each repository (github:OWNER/NAME) and re-run eval/build_dataset.py; "
                               "mirrorCommit is the commit the data was built from",
                       "repositories": [recorded[n] for n in REPOS if n in recorded]}, fh, indent=2)
            fh.write("\n")
        log("wrote %s (%d cases, %d bytes)" % (fn, len(doc["cases"]), os.path.getsize(fn)))


if __name__ == "__main__":
    main()
