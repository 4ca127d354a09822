#!/bin/bash
# Sets up and runs every wsfs test, twice: on the normal build and on the
# ASan+UBSan build. Ends with the line "N passed, N failed".
#
#   tests/run-all.sh            everything (what CI runs)
#   tests/run-all.sh -k xattr   extra arguments go to pytest
#
# Run as root on Debian 12: the integration tests mount real FUSE workspaces.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
tools/setup.sh --asan || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

OUT=$ROOT/build/test-results
rm -rf "$OUT"; mkdir -p "$OUT"
export WSFS_TEST_DIR=${WSFS_TEST_DIR:-/var/tmp}

run_suite() {
	local label=$1 build=$2; shift 2
	echo "== $label: unit tests ($build)"
	meson test -C "$build" --print-errorlogs --logbase "unit-$label" \
		> "$OUT/unit-$label.txt" 2>&1
	grep -E "^(Ok|Fail|Expected Fail|Unexpected Pass|Skipped|Timeout):" "$OUT/unit-$label.txt"
	cp "$build/meson-logs/unit-$label.json" "$OUT/" 2>/dev/null
	echo "== $label: integration tests ($build)"
	WSFS_BUILD=$ROOT/$build /usr/bin/python3 -m pytest -p no:cacheprovider -q \
		-rfE --junitxml="$OUT/pytest-$label.xml" tests "$@"
}

run_suite normal build "$@"
WSFS_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=86 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_suite sanitized build-asan "$@"

/usr/bin/python3 tests/summarize.py "$OUT"
