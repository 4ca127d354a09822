#!/bin/bash
# Benchmark: filtered `wsctl audit search` over a log of 10 million records
# (the target: a filtered query answers in under a second).
#
#   tests/bench/audit_query.sh [RECORDS] [BUILD]
#       RECORDS  default 10000000 (generation takes a couple of minutes)
#       BUILD    default build/ (needs tools/wsctl and tests/tools/auditgen)
#
# The log is one workspace chain written by auditgen (a day of synthetic
# activity, times spread evenly over the last 24 hours) in a state
# directory under /var/tmp, removed at the end.  Each search runs twice,
# with --limit 100 and without, output to /dev/null; the script prints the
# wall time and how many records came back.  Searches without --limit are
# bound by how many records match: printing millions of records is not a
# query cost, so the unselective ones are reported but not judged.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-10000000}
BUILD=${2:-build}
WSCTL=$PWD/$BUILD/tools/wsctl
AUDITGEN=$PWD/$BUILD/tests/tools/auditgen
DIR=$(mktemp -d /var/tmp/wsfs-auditq.XXXXXX)
trap 'rm -rf --one-file-system "$DIR"' EXIT
mkdir -p "$DIR/state"

echo "generating $N records..."
t0=$(date +%s.%N)
"$AUDITGEN" --state "$DIR/state" --ws bench -n "$N" --batch 5000 \
	--checkpoint-every 100000 >/dev/null
t1=$(date +%s.%N)
printf 'generated in %.1f s; audit.db is %s\n' "$(echo "$t1 - $t0" | bc)" \
	"$(du -h "$DIR/state/audit.db" | cut -f1)"

# One search: its wall time and the number of records it printed.
run() {
	local label=$1 t0 t1 n
	shift
	t0=$(date +%s.%N)
	n=$("$WSCTL" --state "$DIR/state" audit search --format jsonl "$@" |
		wc -l)
	t1=$(date +%s.%N)
	printf '  %-44s %7.3f s  %9d records\n' "$label" \
		"$(echo "$t1 - $t0" | bc)" "$n"
}

# Warm the page cache once, as a host that has been serving would be, and
# let one wsctl run record itself first: the first writer after auditgen
# may have schema work to do (an index a newer build adds), which is not
# a query cost.  Every timed search includes recording itself.
cat "$DIR/state/audit.db" >/dev/null
"$WSCTL" --state "$DIR/state" audit head >/dev/null

searches=(
	"op+since|--op rename --since -2h"
	"uid|--uid 1002"
	"result=denied|--result denied"
	"pid|--pid 2007"
	"ws+since+until|--ws bench --since -3h --until -2h"
	"comm|--comm cargo"
	"op+uid+result|--op open --uid 1001 --result EACCES"
	"comm+since|--comm cargo --since -1h"
	"path glob+since|--path /src/* --since -1h"
	"uid+since|--uid 1002 --since -1h"
	"pid+since|--pid 2007 --since -1h"
	"result=denied+since|--result denied --since -1h"
)
for limit in 100 ""; do
	if [ -n "$limit" ]; then echo "--limit $limit:"; else echo "no limit:"; fi
	for s in "${searches[@]}"; do
		label=${s%%|*}
		# shellcheck disable=SC2086
		run "$label" ${s#*|} ${limit:+--limit $limit}
	done
done
