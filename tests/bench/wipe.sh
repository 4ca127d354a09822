#!/bin/bash
# Benchmark: how long the unmount of a workspace takes to wipe 50,000 files
# of ephemeral scratch. The daemon times its own wipe and logs it; this
# script also reports the wall time of the unmount as the caller sees it.
#
#   tests/bench/wipe.sh [FILES]        (default 50000; run as root, after
#                                       tools/setup.sh has built build/)
set -euo pipefail
cd "$(dirname "$0")/../.."
FILES=${1:-50000}
WSFS=$PWD/build/fs/wsfs
DIR=$(mktemp -d /var/tmp/wsfs-wipe.XXXXXX)
NAME=wipe-$$
PID=
mkdir -p "$DIR/upper" "$DIR/mnt"
cleanup() {
	mountpoint -q "$DIR/mnt" && { fusermount3 -u "$DIR/mnt" || umount -l "$DIR/mnt"; }
	[ -n "$PID" ] && kill "$PID" 2>/dev/null || true
	rm -rf --one-file-system "$DIR"
}
trap cleanup EXIT

"$WSFS" -o "upper=$DIR/upper,state=$DIR/state,name=$NAME,ephemeral=/tmp" "$DIR/mnt"
PID=$(pgrep -n -f "name=$NAME,")
/usr/bin/python3 - "$DIR/mnt/tmp" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for d in range(100):
    os.mkdir(f"{root}/d{d}")
for i in range(n):
    fd = os.open(f"{root}/d{i % 100}/f{i}", os.O_WRONLY | os.O_CREAT, 0o644)
    if i % 10 == 0:
        os.write(fd, b"x" * 4096)
    os.close(fd)
PY
t0=$(date +%s.%N)
fusermount3 -u "$DIR/mnt"
while kill -0 "$PID" 2>/dev/null; do sleep 0.01; done
t1=$(date +%s.%N)
PID=
grep "ephemeral scratch wiped" "$DIR/state/log/$NAME.log"
/usr/bin/python3 -c "print('unmount to daemon exit: %.3f s' % ($t1 - $t0))"
