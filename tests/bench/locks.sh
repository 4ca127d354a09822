#!/bin/bash
# Benchmark: what an uncontended lock+unlock pair costs through wsfs.
#
#   tests/bench/locks.sh [BUILD_DIR] [PAIRS] [ROUNDS]
#                       (defaults build/, 20000 and 5; builds only the
#                       libfuse passthrough_ll example it compares with)
#
# Mounts libfuse's passthrough_ll example with -o flock (it forwards flock
# to the backing file and has no fcntl lock handlers) and a wsfs workspace
# over two directories in /var/tmp, then times PAIRS flock pairs through
# each and fcntl and OFD pairs through wsfs, ROUNDS times in turn so that
# machine noise hits every target alike; the median per-pair time of each
# is reported, with native ext4 for scale. The same on a file in a shared
# directory (-o shared=), where every grant also drops the agent's cached
# pages of the file and is answered by the delivery thread. Targets: wsfs flock <= 1.5x
# passthrough_ll flock; wsfs fcntl <= 1.5x wsfs flock.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=$(realpath "${1:-build}")
PAIRS=${2:-20000}
ROUNDS=${3:-5}
LOCKPAIRS=$BUILD/tests/tools/lockpairs
WSFS=$BUILD/fs/wsfs
SRC=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
for exe in "$LOCKPAIRS" "$WSFS"; do
	[ -x "$exe" ] || { echo "locks.sh: $exe not built" >&2; exit 1; }
done
[ -r "$SRC" ] || { echo "locks.sh: $SRC missing (apt-get install libfuse3-dev)" >&2; exit 1; }

DIR=$(mktemp -d /var/tmp/wsfs-locks-bench.XXXXXX)
PT_PID=
cleanup() {
	for m in "$DIR/pt-mnt" "$DIR/ws-mnt"; do
		mountpoint -q "$m" && fusermount3 -u "$m"
	done
	if [ -n "$PT_PID" ] && kill -0 "$PT_PID" 2>/dev/null; then
		kill "$PT_PID"; wait "$PT_PID" 2>/dev/null || true
	fi
	rm -rf --one-file-system "$DIR"
}
trap cleanup EXIT
mkdir -p "$DIR"/{native,pt-src,pt-mnt,ws-upper,ws-mnt,state,team}

cc -O2 -o "$DIR/passthrough_ll" "$SRC" $(pkg-config --cflags --libs fuse3)
"$DIR/passthrough_ll" -f -o flock,source="$DIR/pt-src" "$DIR/pt-mnt" \
	2>"$DIR/pt.log" &
PT_PID=$!
"$WSFS" -o upper="$DIR/ws-upper",state="$DIR/state",name=lockbench,shared="$DIR/team":/shared "$DIR/ws-mnt"
for i in $(seq 50); do mountpoint -q "$DIR/pt-mnt" && break; sleep 0.1; done
mountpoint -q "$DIR/pt-mnt" || { echo "passthrough_ll did not mount" >&2; exit 1; }

declare -A times
run() {	# NAME KIND FILE
	local t
	t=$("$LOCKPAIRS" "$2" "$3" "$PAIRS" | awk '{print $3}')
	times[$1]+="$t "
}
for r in $(seq "$ROUNDS"); do
	run native-flock flock "$DIR/native/f"
	run pt_ll-flock flock "$DIR/pt-mnt/f"
	run wsfs-flock flock "$DIR/ws-mnt/f"
	run wsfs-fcntl fcntl "$DIR/ws-mnt/f"
	run wsfs-ofd ofd "$DIR/ws-mnt/f"
	run shared-flock flock "$DIR/ws-mnt/shared/f"
	run shared-fcntl fcntl "$DIR/ws-mnt/shared/f"
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
declare -A med
echo "median ns per uncontended lock+unlock pair ($PAIRS pairs, $ROUNDS rounds):"
for k in native-flock pt_ll-flock wsfs-flock wsfs-fcntl wsfs-ofd shared-flock shared-fcntl; do
	med[$k]=$(median "${times[$k]}")
	printf '  %-13s %8s ns   (rounds: %s)\n' "$k" "${med[$k]}" "${times[$k]}"
done
awk -v a="${med[wsfs-flock]}" -v b="${med[pt_ll-flock]}" \
	'BEGIN { printf "wsfs flock / passthrough_ll flock: %.2f (target <= 1.50)\n", a / b }'
awk -v a="${med[wsfs-fcntl]}" -v b="${med[wsfs-flock]}" \
	'BEGIN { printf "wsfs fcntl / wsfs flock:           %.2f (target <= 1.50)\n", a / b }'
awk -v a="${med[wsfs-ofd]}" -v b="${med[wsfs-flock]}" \
	'BEGIN { printf "wsfs OFD / wsfs flock:             %.2f\n", a / b }'
awk -v a="${med[shared-flock]}" -v b="${med[pt_ll-flock]}" \
	'BEGIN { printf "shared flock / passthrough_ll flock: %.2f\n", a / b }'
awk -v a="${med[shared-fcntl]}" -v b="${med[shared-flock]}" \
	'BEGIN { printf "shared fcntl / shared flock:       %.2f\n", a / b }'
