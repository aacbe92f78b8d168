#!/usr/bin/env python3
"""Count test results from meson's testlog.json.

Every test program speaks TAP; each "ok"/"not ok" line is one result.  A
program that failed without printing a "not ok" (a crash, a timeout, a
sanitizer abort after its last check) counts as one more failure, so no
failure is ever lost.  "not ok ... # TODO" is an expected failure (an
operation not served yet, run anyway): counted apart, not as a failure.
Prints 'N passed, N failed, N skipped, N todo'.
"""
import json
import re
import sys

passed = failed = skipped = todo = 0
bad = []
for path in sys.argv[1:]:
    with open(path) as f:
        for line in f:
            t = json.loads(line)
            out = t.get("stdout") or ""
            res = t.get("result")
            ok = len(re.findall(r"^ok \d+", out, re.M))
            nok = len(re.findall(r"^not ok \d+", out, re.M))
            skip = len(re.findall(r"^ok \d+.*# SKIP", out, re.M | re.I))
            td = len(re.findall(r"^not ok \d+.*# TODO", out, re.M | re.I))
            passed += ok - skip
            skipped += skip
            failed += nok - td
            todo += td
            nok -= td
            if res == "SKIP" and ok + nok == 0:
                skipped += 1
            if res not in ("OK", "SKIP", "EXPECTEDFAIL") and nok == 0:
                failed += 1
            if res not in ("OK", "SKIP", "EXPECTEDFAIL"):
                bad.append("%s (%s)" % (t.get("name"), res))
for b in bad:
    print("failed: " + b)
print("%d passed, %d failed, %d skipped, %d todo" % (passed, failed, skipped,
                                                   todo))
sys.exit(1 if failed else 0)
