#!/bin/bash
# The wsfs demo: an agent's day in a workspace.
#
# Mounts a workspace over a fresh directory with the default state directory
# (/var/lib/wsfs), then does what a coding agent does: unpacks a source
# tarball, builds and runs a small C program, writes its outputs, runs into
# its 16 MiB quota (EDQUOT at the write that crosses it, df showing the
# limit), and the operator raises the quota live with `wsctl quota set`.
# Then it unmounts and shows what persisted in the upper directory. Run as root on Debian 12; it installs and builds what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
WSFS=$PWD/build/fs/wsfs
WSCTL=$PWD/build/tools/wsctl

DEMO=$(mktemp -d /tmp/wsfs-demo.XXXXXX)
UPPER=$DEMO/upper
MNT=$DEMO/output
NAME=demo-$$
mkdir -p "$UPPER" "$MNT"
cleanup() {
	if mountpoint -q "$MNT"; then fusermount3 -u "$MNT" || umount -l "$MNT"; fi
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "mount workspace '$NAME' at $MNT (upper: $UPPER), quota 16 MiB / 1000 inodes"
"$WSFS" -o "upper=$UPPER,name=$NAME,allow_other,quota_bytes=16M,quota_inodes=1000" "$MNT"
grep " $MNT " /proc/mounts

step "the agent receives a source tarball"
SRC=$DEMO/src/hello-1.0
mkdir -p "$SRC"
cat > "$SRC/hello.c" <<'C'
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	FILE *out = fopen(argc > 1 ? argv[1] : "result.txt", "w");
	unsigned long sum = 0;

	if (!out)
		return 1;
	for (unsigned long i = 1; i <= 1000000; i++)
		sum += i % 7;
	fprintf(out, "hello from inside the workspace: sum=%lu\n", sum);
	return fclose(out) != 0;
}
C
printf 'hello: hello.c\n\tcc -O2 -o hello hello.c\n' > "$SRC/Makefile"
tar -C "$DEMO/src" -czf "$DEMO/hello-1.0.tar.gz" hello-1.0
cp "$DEMO/hello-1.0.tar.gz" "$MNT/"
(cd "$MNT" && tar -xzf hello-1.0.tar.gz && ls -l hello-1.0)

step "the agent builds and runs it"
(cd "$MNT/hello-1.0" && make && ./hello "$MNT/result.txt")
cat "$MNT/result.txt"

step "and writes its outputs"
mkdir -p "$MNT/outputs/logs"
for i in $(seq 1 50); do echo "step $i ok" > "$MNT/outputs/logs/step-$i.log"; done
dd if=/dev/urandom of="$MNT/outputs/model.bin" bs=1M count=8 status=none
ln -s outputs/model.bin "$MNT/latest"
sha256sum "$MNT/outputs/model.bin" | tee "$DEMO/model.sha256"

step "the agent writes a checkpoint bigger than what is left of its quota"
df -h "$MNT"
if dd if=/dev/zero of="$MNT/outputs/checkpoint.bin" bs=1M count=12 status=none; then
	echo "agent: unexpected: the checkpoint fit"; exit 1
fi
echo "agent: the write failed with EDQUOT; $(du -h --apparent-size "$MNT/outputs/checkpoint.bin" | cut -f1) of the checkpoint got written"
df -h "$MNT"
"$WSCTL" quota show "$NAME"

step "the operator raises the quota live; the agent retries and succeeds"
"$WSCTL" quota set "$NAME" --bytes 64M
dd if=/dev/zero of="$MNT/outputs/checkpoint.bin" bs=1M count=12 status=none
echo "agent: checkpoint written: $(du -h --apparent-size "$MNT/outputs/checkpoint.bin" | cut -f1)"
df -h "$MNT"

step "wsctl ls and wsctl status $NAME"
"$WSCTL" ls
"$WSCTL" status "$NAME"

step "unmount"
fusermount3 -u "$MNT"
for _ in $(seq 50); do "$WSCTL" status "$NAME" >/dev/null 2>&1 || break; sleep 0.1; done
mountpoint -q "$MNT" && { echo "still mounted"; exit 1; }
"$WSCTL" ls

step "what persisted in the upper directory"
(cd "$UPPER" && find . -maxdepth 2 | sort | head -20 && echo "... $(find . | wc -l) entries")
(cd "$UPPER" && sed "s#$MNT#.#" "$DEMO/model.sha256" | sha256sum -c)
cat "$UPPER/result.txt"
echo
echo "demo finished: the workspace's files are in $UPPER"
