#!/usr/bin/env python3
"""Rebuild each case's exact view from a factored eval/cases/<group>/<repo>.json[.gz].

    python3 eval/expand.py eval/cases/python/pallets__flask.json            # summary
    python3 eval/expand.py eval/cases/python/pallets__flask.json --case flask-fix-5123   # one case, full JSON
    python3 eval/expand.py --check eval/cases/*/*                            # consistency checks
    python3 eval/expand.py --stats eval/cases/*/*                            # counts (markdown)

A case's view, as the issue describes it:
  tree          = [paths[i] for [a, b] in case.tree.pathRanges for i in range(a, b)]
  pullRequests  = [pr for pr in pullRequests if window.from <= pr.mergedAt <= window.to]
                  (window = case.pullRequestWindow = [occurredAt - 365 days, occurredAt])
Standard library only.
"""

import argparse
import gzip
import json
import sys


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def expand_case(doc, case):
    paths = doc["paths"]
    tree = [paths[i] for a, b in case["tree"]["pathRanges"] for i in range(a, b)]
    lo, hi = case["pullRequestWindow"]["from"], case["pullRequestWindow"]["to"]
    prs = [p for p in doc["pullRequests"] if lo <= p["mergedAt"] <= hi]   # RFC 3339 UTC 'Z' strings sort as times
    out = {k: v for k, v in case.items() if k not in ("tree", "pullRequestWindow")}
    out["repository"] = doc["repository"]
    out["language"] = doc["language"]
    out["defaultBranch"] = doc["defaultBranch"]
    out["tree"] = tree
    out["pullRequests"] = prs
    return out


def check(doc):
    problems = []
    for case in doc["cases"]:
        v = expand_case(doc, case)
        tree = set(v["tree"])
        t = v["truth"]
        if len(tree) != case["tree"]["count"]:
            problems.append("%s: tree has %d paths, expected %d" % (case["id"], len(tree), case["tree"]["count"]))
        if t["file"] not in tree:
            problems.append("%s: truth file not in tree" % case["id"])
        nums = {p["number"] for p in v["pullRequests"]}
        for n in t["culpritPrs"]:
            if n not in nums:
                problems.append("%s: culprit #%d not among the case's PRs" % (case["id"], n))
        if case["fix"]["pr"] in nums:
            problems.append("%s: the fix PR is in the case's history" % case["id"])
        f = t["frames"][t["fixedFrameIndex"]]
        if f["path"] != t["file"] or f["line"] != t["line"]:
            problems.append("%s: fixedFrameIndex does not point at the fixed frame" % case["id"])
        for f in t["frames"]:
            if f["path"] is not None and f["path"] not in tree:
                problems.append("%s: frame %d path not in tree" % (case["id"], f["index"]))
        if not (t["functionRange"][0] <= t["line"] <= t["functionRange"][1]):
            problems.append("%s: line outside the function" % case["id"])
    return problems


def stats(files):
    """A markdown table of counts per repository and language group."""
    rows, groups = [], {}
    for fn in files:
        doc = load(fn)
        cs = doc["cases"]
        multi = sum(1 for c in cs if len(c["truth"]["culpritPrs"]) > 1)
        years = sorted(c["fix"]["mergedAt"][:4] for c in cs)
        rows.append((doc["group"], doc["repository"], len(cs), multi, len(doc["pullRequests"]), len(doc["paths"]),
                     max((c["tree"]["count"] for c in cs), default=0), "%s-%s" % (years[0], years[-1]) if years else "-"))
        groups[doc["group"]] = groups.get(doc["group"], 0) + len(cs)
    print("| group | repository | cases | >1 culprit | PRs shipped | paths (union) | largest tree | fixes merged |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in sorted(rows):
        print("| %s | %s | %d | %d | %d | %d | %d | %s |" % r)
    print()
    print("| group | cases |")
    print("|---|---:|")
    for g in sorted(groups):
        print("| %s | %d |" % (g, groups[g]))
    print("| **all** | **%d** |" % sum(groups.values()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--case")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--stats", action="store_true")
    a = ap.parse_args()
    if a.stats:
        stats(a.files)
        return
    bad = 0
    for fn in a.files:
        doc = load(fn)
        if a.check:
            probs = check(doc)
            bad += len(probs)
            print("%s: %d cases, %d problems" % (fn, len(doc["cases"]), len(probs)))
            for p in probs:
                print("  " + p)
            continue
        if a.case:
            for c in doc["cases"]:
                if c["id"] == a.case:
                    json.dump(expand_case(doc, c), sys.stdout, indent=1)
                    print()
            continue
        for c in doc["cases"]:
            v = expand_case(doc, c)
            print("%-28s tree=%-6d prs=%-5d file=%s function=%s culprits=%s" % (
                c["id"], len(v["tree"]), len(v["pullRequests"]), c["truth"]["file"], c["truth"]["function"], c["truth"]["culpritPrs"]))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
