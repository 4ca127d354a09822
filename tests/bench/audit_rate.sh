#!/bin/bash
# Benchmark: the audit store's append rate and `wsctl audit verify`'s rate.
#
#   tests/bench/audit_rate.sh [BUILD_DIR] [RECORDS]
#                       (defaults build/ and 1000000; builds nothing)
#
# auditgen appends RECORDS synthetic records to a fresh state directory in
# /var/tmp (a real disk, as the daemon's state is) in batches of 1000, the
# daemon writer's batch size, with a checkpoint every 100,000; then the
# whole log is verified.  Targets: writer >= 100,000 records/s, verify >=
# 500,000 records/s.  Other load on the machine lowers both.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
RECORDS=${2:-1000000}
AUDITGEN=$BUILD/tests/tools/auditgen
WSCTL=$BUILD/tools/wsctl
for exe in "$AUDITGEN" "$WSCTL"; do
	[ -x "$exe" ] || { echo "audit_rate.sh: $exe not built" >&2; exit 1; }
done
DIR=$(mktemp -d /var/tmp/wsfs-audit-rate.XXXXXX)
trap 'rm -rf --one-file-system "$DIR"' EXIT

out=$("$AUDITGEN" --state "$DIR" --ws bench -n "$RECORDS" --batch 1000 \
	--checkpoint-every 100000)
# "appended N records in S s (R records/s)"
rate=$(sed -n 's/.*(\([0-9]*\) records\/s).*/\1/p' <<<"$out")
echo "writer: $rate records/s"

start=$(date +%s.%N)
"$WSCTL" --state "$DIR" audit verify --ws bench >"$DIR/verify.out"
end=$(date +%s.%N)
cat "$DIR/verify.out"
python3 - "$start" "$end" "$RECORDS" <<'PY'
import sys
start, end, n = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
print(f"verify: {n / (end - start):.0f} records/s")
PY
