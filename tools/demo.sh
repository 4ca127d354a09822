#!/bin/bash
# The wsfs demo: an agent's day in a workspace.
#
# Mounts a workspace over a fresh directory with the default state directory
# (/var/lib/wsfs), with a read-only documents layer at /input and ephemeral
# scratch at /tmp, then does what a coding agent does: reads its inputs
# (and fails to change them: EROFS), unpacks a source tarball, builds in
# scratch, runs a small C program, writes its outputs, runs into its 16 MiB
# quota (EDQUOT at the write that crosses it, df showing the limit), and the
# operator raises the quota live with `wsctl quota set`. A second agent's
# workspace shares a team directory with the first at /shared: the two
# count to 200 together under flock without losing an increment, and take
# turns writing a report while `wsctl locks` shows who holds the lock and
# who waits. Then it unmounts,
# shows the scratch wiped, an auditor's view of the hash-chained access log
# (report, denials, verify, the signed head), and what persisted in the
# upper directory. Run as root on Debian 12; it installs and builds what it
# needs.
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
TEAM=$DEMO/team
UPPER_B=$DEMO/upper-b
MNT_B=$DEMO/output-b
mkdir -p "$TEAM" "$UPPER_B" "$MNT_B"
cleanup() {
	for m in "$MNT" "$MNT_B"; do
		if mountpoint -q "$m"; then fusermount3 -u "$m" || umount -l "$m"; fi
	done
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

DOCS=$DEMO/documents
mkdir -p "$DOCS/specs"
printf '# Brief\nBuild hello, run it, keep the result.\n' > "$DOCS/brief.md"
printf 'sum of i %% 7 for i in 1..1000000\n' > "$DOCS/specs/hello.txt"
( cd "$DOCS" && find . -type f | sort | xargs sha256sum ) > "$DEMO/documents.sha256"

step "mount workspace '$NAME' at $MNT (upper: $UPPER), quota 16 MiB / 1000 inodes,"
echo "   documents read-only at /input, scratch at /tmp, the team directory at /shared"
"$WSFS" -o "upper=$UPPER,name=$NAME,allow_other,quota_bytes=16M,quota_inodes=1000,layer=$DOCS:/input,ephemeral=/tmp,shared=$TEAM:/shared" "$MNT"
grep " $MNT " /proc/mounts

step "the agent reads its inputs, and cannot change them"
cat "$MNT/input/brief.md"
ls -l "$MNT/input/specs"
for try in "echo edited >> $MNT/input/brief.md" "rm $MNT/input/specs/hello.txt" \
	   "mv $MNT/input/brief.md $MNT/stolen.md" "touch $MNT/input/new.md"; do
	if err=$(sh -c "$try" 2>&1); then echo "agent: unexpected: '$try' worked"; exit 1; fi
	echo "agent: $try -> ${err##*: }"
done

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

step "the agent builds and runs it, with its intermediate files in /tmp scratch"
cp -r "$MNT/hello-1.0" "$MNT/tmp/build"
(cd "$MNT/tmp/build" && make && ./hello "$MNT/result.txt")
cp "$MNT/tmp/build/hello" "$MNT/hello-1.0/hello"
dd if=/dev/urandom of="$MNT/tmp/cache.bin" bs=1M count=2 status=none
ls -l "$MNT/tmp" "$MNT/tmp/build"
cat "$MNT/result.txt"

step "and writes its outputs"
mkdir -p "$MNT/outputs/logs"
for i in $(seq 1 50); do echo "step $i ok" > "$MNT/outputs/logs/step-$i.log"; done
dd if=/dev/urandom of="$MNT/outputs/model.bin" bs=1M count=8 status=none
ln -s outputs/model.bin "$MNT/latest"
sha256sum "$MNT/outputs/model.bin" | tee "$DEMO/model.sha256"

step "a second agent's workspace shares the team directory; they count to 200 together under flock"
"$WSFS" -o "upper=$UPPER_B,name=$NAME-b,allow_other,shared=$TEAM:/shared" "$MNT_B"
echo 0 > "$MNT/shared/counter"
count() {	# MOUNT TIMES: read, add one, write back, holding the lock
	for _ in $(seq "$2"); do
		flock "$1/shared/counter" sh -c 'n=$(cat "$1"); echo $((n + 1)) > "$1"' sh "$1/shared/counter"
	done
}
count "$MNT" 100 & A=$!
count "$MNT_B" 100 & B=$!
wait "$A" "$B"
echo "counter: $(cat "$MNT_B/shared/counter") (agent 1 and agent 2 added 100 each, through two workspaces)"

step "the agents take turns on the report; wsctl locks shows who holds the lock and who waits"
flock "$MNT/shared/report.txt" sh -c 'echo "agent 1: section 1" >> "$1"; sleep 1.5' sh "$MNT/shared/report.txt" & A=$!
sleep 0.3
flock "$MNT_B/shared/report.txt" sh -c 'echo "agent 2: section 2" >> "$1"' sh "$MNT_B/shared/report.txt" & B=$!
sleep 0.3
"$WSCTL" locks
wait "$A" "$B"
cat "$MNT/shared/report.txt"
fusermount3 -u "$MNT_B"

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

step "unmount: the scratch is wiped"
fusermount3 -u "$MNT"
for _ in $(seq 50); do "$WSCTL" status "$NAME" >/dev/null 2>&1 || break; sleep 0.1; done
mountpoint -q "$MNT" && { echo "still mounted"; exit 1; }
"$WSCTL" ls
grep "ephemeral scratch wiped" "/var/lib/wsfs/log/$NAME.log" | tail -1
ls -A "$UPPER/tmp" | grep -q . && { echo "scratch leaked into the upper"; exit 1; }
echo "nothing of /tmp is left: $(ls -A /var/lib/wsfs/scratch | grep -c "^$NAME\." || true) scratch trees of $NAME remain"
(cd "$DOCS" && sha256sum -c --quiet "$DEMO/documents.sha256") && echo "documents: unchanged"

step "the auditor's view: what did the agent do, what was refused, is the log intact?"
"$WSCTL" audit report --ws "$NAME"
"$WSCTL" audit search --ws "$NAME" --result denied
"$WSCTL" audit verify --ws "$NAME"
"$WSCTL" audit head --ws "$NAME"

step "what persisted in the upper directory"
(cd "$UPPER" && find . -maxdepth 2 | sort | head -20 && echo "... $(find . | wc -l) entries")
(cd "$UPPER" && sed "s#$MNT#.#" "$DEMO/model.sha256" | sha256sum -c)
cat "$UPPER/result.txt"
echo
echo "demo finished: the workspace's files are in $UPPER"
