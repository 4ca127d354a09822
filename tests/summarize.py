"""Adds up the results of every suite run by tests/run-all.sh.

Reads meson's test logs (unit-*.json, one JSON object per test) and pytest's
JUnit files (pytest-*.xml) from the results directory, prints one line per
suite and finally "N passed, N failed". Exits 1 if anything failed or if no
test ran at all.
"""
import glob
import json
import os
import sys
import xml.etree.ElementTree as ET


def meson_counts(path):
    passed = failed = skipped = 0
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            result = json.loads(line).get("result")
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:
                failed += 1
    return passed, failed, skipped


def junit_counts(path):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    passed = failed = skipped = 0
    for s in suites:
        tests = int(s.get("tests", 0))
        f = int(s.get("failures", 0)) + int(s.get("errors", 0))
        sk = int(s.get("skipped", 0))
        passed += tests - f - sk
        failed += f
        skipped += sk
    return passed, failed, skipped


def main():
    out = sys.argv[1]
    total_p = total_f = total_s = 0
    files = sorted(glob.glob(os.path.join(out, "unit-*.json"))) + \
        sorted(glob.glob(os.path.join(out, "pytest-*.xml")))
    expected = 4  # unit + pytest, normal + sanitized
    if len(files) < expected:
        print(f"summary: only {len(files)} of {expected} result files were written")
        total_f += expected - len(files)
    for path in files:
        p, f, s = meson_counts(path) if path.endswith(".json") else junit_counts(path)
        print(f"summary: {os.path.basename(path)}: {p} passed, {f} failed, {s} skipped")
        total_p, total_f, total_s = total_p + p, total_f + f, total_s + s
    if total_p + total_f == 0:
        total_f = 1
    print(f"{total_p} passed, {total_f} failed, {total_s} skipped")
    sys.exit(1 if total_f else 0)


main()
