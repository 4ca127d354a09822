#!/bin/bash
# The wsfs demo: the operator's and the agents' day, in under a minute.
#
#  1. An operator declares two agent workspaces in one YAML file (a
#     read-only documents volume at /input, a team directory shared by both
#     at /shared, scratch at /tmp, quotas) and applies it: a dry run first,
#     then for real, then once more to show that nothing changes.
#  2. It mounts both, and two agents work in them as an unprivileged uid
#     (the container recipe: the daemon runs as root with allow_other, the
#     agent does not): one reads its inputs and cannot change them (EROFS),
#     unpacks and builds a small program in scratch, writes its outputs and
#     runs into its quota (EDQUOT at the write that crosses it; df shows
#     the limit).
#  3. The operator raises the quota live and the agent's retry succeeds.
#  4. Both agents count to an exact total in /shared under flock while the
#     operator watches `wsctl top`, then take turns on a report while
#     `wsctl locks` shows who holds the lock and who waits.
#  5. Unmount: scratch is wiped, `wsctl ls` shows both stopped.
#  6. An auditor reads the hash-chained access log: report, denials, verify.
#  7. Both workspaces are removed with their uppers.
# Every expected failure is checked: if a write that must be refused is not,
# the demo stops with an error. Whatever happens, the exit trap unmounts
# what this run mounted, ends the processes it started and deletes its
# files. Run as root on Debian 12; it installs and builds what it needs.
# The agents' commands are single-quoted on purpose: they expand in the
# agent's shell, inside its workspace, not in this one.
# shellcheck disable=SC2016
set -eEuo pipefail
# Name the command that failed, whichever function it was in (-E).
trap 'echo "demo: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR
# The agents' uid must be able to reach what is made here.
umask 022
cd "$(dirname "$0")/.."
tools/setup.sh
WSCTL=$PWD/build/tools/wsctl
STATE=${WSFS_STATE:-/var/lib/wsfs}
# The uid and gid the agents run as. No passwd entry is needed: a container
# runtime hands out bare numbers too.
AGENT_ID=${WSFS_DEMO_UID:-1000}

# /var/lib/wsfs outlives the run, and so does its audit log: unique names
# keep this run's workspaces and records apart from every earlier run's.
A=agent-a-$$
B=agent-b-$$
DEMO=$(mktemp -d /tmp/wsfs-demo.XXXXXX)
# The agents reach their mountpoints through here.
chmod 755 "$DEMO"
declare -A MNT=([a]=$DEMO/agent-a [b]=$DEMO/agent-b)
DOCS=$DEMO/documents
TEAM=$DEMO/team
BG=()		# background agents to wait for
DECLARED=()	# workspaces this run declared and has not removed yet
declare -A DAEMON=()	# workspace -> its daemon's pid, while mounted

die() { printf 'demo: FAILED: %s\n' "$*" >&2; exit 1; }

cleanup() {
	local rc=$? pid ws m cmd
	trap - EXIT
	# The shell's own list of unreaped background jobs, not BG: a signal
	# can arrive between an agent's `&` and its BG+=.
	for pid in $(jobs -p); do
		# jobs -p also lists jobs already reaped, whose pid may be
		# another process's by now: only a child of ours is an agent.
		[ "$(awk '{ print $4 }' "/proc/$pid/stat" 2>/dev/null)" = $$ ] ||
			continue
		# Each agent runs in its own session (setsid), so its group id is
		# its pid and this ends its children too; the pid alone is for
		# one caught before its setsid (e.g. still opening the fifo).
		# KILL: an agent has nothing to save, and must not linger.
		kill -KILL -- "-$pid" 2>/dev/null || true
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	exec 3>&-	# a lock holder waiting on the fifo gets its reply
	for ws in "${DECLARED[@]}"; do
		"$WSCTL" umount "$ws" >/dev/null 2>&1 || true
	done
	for m in "${MNT[@]}"; do
		# A daemon that would not go: take the mount away from it.
		if mountpoint -q "$m"; then
			fusermount3 -u "$m" 2>/dev/null || umount -l "$m" || true
		fi
	done
	for ws in "${!DAEMON[@]}"; do
		# Its mount is gone, so it has nothing left to finish. The pid
		# is checked to still be this workspace's daemon first.
		pid=${DAEMON[$ws]}
		cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
		case $cmd in
		wsfs*"name=$ws,"*) kill "$pid" 2>/dev/null || true ;;
		esac
	done
	for ws in "${DECLARED[@]}"; do
		"$WSCTL" rm "$ws" >/dev/null 2>&1 || true
	done
	# --one-file-system: should anything still be mounted below, it is
	# left alone rather than emptied.
	rm -rf --one-file-system "$DEMO"
	if [ "$rc" -ne 0 ]; then echo "demo: failed (exit $rc); cleaned up" >&2; fi
	exit "$rc"
}
trap cleanup EXIT
# Through the EXIT trap, with the usual 128 + signal status.
trap 'exit 130' INT
trap 'exit 143' TERM

# Headings in bold on a terminal; plain when the output is kept.
if [ -t 1 ]; then
	step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	step() { printf '\n== %s\n' "$*"; }
fi

# The operator's commands are shown as they would be typed.
op() {
	printf 'operator# wsctl %s\n' "$*"
	"$WSCTL" "$@"
}

# One command of agent $1 (a or b), in its workspace's root, as the agent's
# uid with a clean environment: what the agent sees is the mount, nothing
# else of the operator's. Relative paths in CMD are inside the workspace.
AS_AGENT=(setpriv --reuid "$AGENT_ID" --regid "$AGENT_ID" --clear-groups
	  env -i "PATH=$DEMO/bin:/usr/local/bin:/usr/bin:/bin" HOME=/nonexistent
	  LC_ALL=C bash -c 'cd -- "$1" && eval "$2"' agent)
run_agent() { "${AS_AGENT[@]}" "${MNT[$1]}" "$2"; }
agent() {
	printf 'agent-%s$ %s\n' "$1" "$2"
	run_agent "$1" "$2"
}
# agent WHO ERROR CMD: CMD must fail, and with ERROR; anything else is a
# broken demo (and a broken wsfs), so it stops here.
agent_refused() {
	local err
	printf 'agent-%s$ %s\n' "$1" "$3"
	if err=$(run_agent "$1" "$3" 2>&1); then
		die "agent-$1: '$3' succeeded; it must fail with '$2'"
	fi
	case $err in
	*"$2"*) echo "  -> refused: ${err##*: }" ;;
	*) die "agent-$1: '$3' failed with '$err', not '$2'" ;;
	esac
}
# In the background, in a session of its own (see cleanup).
# 3>&-: the fifo's write end (see step 4) is the operator's alone; an agent
# holding it open too would keep agent-a from ever seeing its end.
agent_bg() { setsid "${AS_AGENT[@]}" "${MNT[$1]}" "$2" 3>&- & BG+=($!); }
# The same with standard input from FILE (an explicit redirection: a
# background command's standard input is otherwise /dev/null).
agent_bg_from() { setsid "${AS_AGENT[@]}" "${MNT[$2]}" "$3" <"$1" 3>&- & BG+=($!); }
# Whether process $1 ends (or is a zombie awaiting its reaper) within 5 s.
gone() {
	local _ st
	for _ in $(seq 50); do
		st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
		[ "$st" = Z ] && return 0
		sleep 0.1
	done
	return 1
}
# Until `wsctl locks` has a line matching the regex (at most 10 s).
await_lock() {
	local _
	for _ in $(seq 100); do
		# Not a pipe into grep -q: with pipefail, wsctl cut short by
		# grep's early exit would make a match look like a failure.
		grep -qE "$1" <<<"$("$WSCTL" locks)" && return 0
		sleep 0.1
	done
	die "wsctl locks never showed /$1/"
}
wait_agents() {
	local pid
	for pid in "${BG[@]}"; do wait "$pid"; done
	BG=()
}

# ---- what the host provides: documents, a team directory, a tool -------
mkdir -p "$DOCS/specs" "$TEAM" "$DEMO/upper-a" "$DEMO/upper-b" "$DEMO/bin"
printf '# Brief\nBuild hello, run it, keep the result.\n' > "$DOCS/brief.md"
printf 'sum of i %% 7 for i in 1..1000000\n' > "$DOCS/specs/hello.txt"
mkdir -p "$DEMO/src/hello-1.0"
cat > "$DEMO/src/hello-1.0/hello.c" <<'C'
#include <stdio.h>

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
printf 'hello: hello.c\n\tcc -O2 -o hello hello.c\n' > "$DEMO/src/hello-1.0/Makefile"
tar -C "$DEMO/src" -czf "$DOCS/hello-1.0.tar.gz" hello-1.0
# The documents belong to the agents' uid, so permissions would let them
# write: only the read-only volume stands in the way, which is the point.
chown -R "$AGENT_ID:$AGENT_ID" "$DOCS" "$TEAM" "$DEMO/upper-a" "$DEMO/upper-b"
( cd "$DOCS" && find . -type f | sort | xargs sha256sum ) > "$DEMO/documents.sha256"
# The agents' one tool: add one to the number in FILE, N times, each time
# holding an exclusive flock on FILE for the read-modify-write.
cat > "$DEMO/bin/count" <<'SH'
#!/bin/sh
for _ in $(seq "$2"); do
	flock "$1" sh -c 'n=$(cat "$1"); echo $((n + 1)) > "$1"' sh "$1"
done
SH
chmod 755 "$DEMO/bin/count"

step "1. the operator declares two agent workspaces"
cat > "$DEMO/demo.yaml" <<YAML
# Two agents: the same documents (read-only), one team directory (shared,
# writable), private scratch at /tmp, 16 MiB each.
x-volumes: &volumes
  - {source: $DOCS, target: /input, read_only: true}
  - {source: $TEAM, target: /shared, read_only: false}
  - {type: tmpfs, target: /tmp}
workspaces:
  $A:
    upper: $DEMO/upper-a
    mountpoint: ${MNT[a]}
    quota: {bytes: 16M, inodes: 10k}
    audit: meta
    options: [allow_other]        # the agent's uid is not the daemon's
    volumes: *volumes
  $B:
    upper: $DEMO/upper-b
    mountpoint: ${MNT[b]}
    quota: {bytes: 16M, inodes: 10k}
    audit: meta
    options: [allow_other]
    volumes: *volumes
YAML
cat "$DEMO/demo.yaml"
cd "$DEMO"
op apply -f demo.yaml --dry-run
grep -q "\"$A\"" <<<"$("$WSCTL" ls --json)" && die "the dry run declared $A"
DECLARED=("$A" "$B")
op apply -f demo.yaml
op apply -f demo.yaml
op ls | grep -E "^(NAME|$A|$B) "

step "2. the operator mounts both; the agents (uid $AGENT_ID) go to work"
for ws in "$A" "$B"; do
	op mount "$ws"
	DAEMON[$ws]=$("$WSCTL" status "$ws" | awk '$1 == "pid:" { print $2 }')
done
# Scratch starts empty at every mount, mode 1777 like a tmpfs.
grep -E "^wsfs:($A|$B) " /proc/mounts

echo "-- agent-a reads its inputs, and cannot change them"
agent a 'id -u; ls input; cat input/brief.md'
agent_refused a "Read-only file system" 'echo edited >> input/brief.md'
agent_refused a "Read-only file system" 'rm input/specs/hello.txt'
agent_refused a "Read-only file system" 'mv input/brief.md stolen.md'
agent_refused a "Read-only file system" 'touch input/new.md'

echo "-- unpacks the source tarball and builds it in /tmp scratch"
agent a 'tar -C tmp -xzf input/hello-1.0.tar.gz && make -C tmp/hello-1.0'
agent a 'dd if=/dev/urandom of=tmp/cache.bin bs=1M count=2 status=none; ls tmp tmp/hello-1.0'

echo "-- writes its outputs"
agent a 'mkdir -p outputs/logs && tmp/hello-1.0/hello outputs/result.txt && cat outputs/result.txt'
agent a 'cp tmp/hello-1.0/hello outputs/ && for i in $(seq 10); do echo "step $i ok" > outputs/logs/step-$i.log; done'
agent a 'dd if=/dev/urandom of=outputs/model.bin bs=1M count=8 status=none && ln -s outputs/model.bin latest'
echo 'agent-a$ sha256sum outputs/model.bin'
run_agent a 'sha256sum outputs/model.bin' | tee "$DEMO/model.sha256"
agent b 'wc -l input/brief.md > notes.txt && echo "agent b was here" >> notes.txt && cat notes.txt'

echo "-- agent-a writes a 12 MiB checkpoint: more than its quota has left"
agent a 'df -h .'
agent_refused a "Disk quota exceeded" 'dd if=/dev/zero of=outputs/checkpoint.bin bs=1M count=12 status=none'
agent a 'du -h --apparent-size outputs/checkpoint.bin'
op quota show "$A"

step "3. the operator raises agent-a's quota live; the agent retries"
op set "$A" --bytes 64M
agent a 'dd if=/dev/zero of=outputs/checkpoint.bin bs=1M count=12 status=none && echo "checkpoint written: $(du -h --apparent-size outputs/checkpoint.bin | cut -f1)"'
agent a 'df -h .'

step "4. the agents share /shared under locks; the operator watches"
agent a 'echo 0 > shared/counter'
echo "agent-a and agent-b each run 'count shared/counter 150' (flock, read, add one, write)"
agent_bg a 'count shared/counter 150'
agent_bg b 'count shared/counter 150'
# On a terminal top redraws the screen in place, which would wipe the story
# so far off it; through a pipe it prints plain frames, one after another.
echo "operator# wsctl top --iterations 2 --interval 0.5"
"$WSCTL" top --iterations 2 --interval 0.5 | cat
wait_agents
total=$(run_agent b 'cat shared/counter')
[ "$total" = 300 ] || die "the shared counter is $total, not 300: increments were lost"
echo "counter: $total (150 from each agent, through two workspaces: none lost)"

echo "-- they take turns on the report; wsctl locks shows who holds the lock and who waits"
# agent-a keeps the lock until it reads a line (an agent waiting on its
# model); here the line comes once the operator has looked, so the moment
# the table shows does not depend on timing.
mkfifo -m 600 "$DEMO/go"
echo "agent-a: flock shared/report.txt: append section 1, then wait for a reply"
agent_bg_from "$DEMO/go" a 'flock shared/report.txt sh -c "echo agent-a: section 1 >> shared/report.txt; read -r _"'
exec 3>"$DEMO/go"
await_lock "^$A +/shared/report.txt .* held$"
echo "agent-b: flock shared/report.txt: append section 2"
agent_bg b 'flock shared/report.txt sh -c "echo agent-b: section 2 >> shared/report.txt"'
await_lock "^$B +/shared/report.txt .* waiting$"
op locks
echo reply >&3	# agent-a finishes and lets go; agent-b goes on
exec 3>&-
wait_agents
agent b 'cat shared/report.txt'

step "5. the operator unmounts both: scratch is wiped"
echo "operator# wsctl status $A | grep -E '^(name|pid|open_files|cached_inodes):'"
"$WSCTL" status "$A" | grep -E '^(name|pid|open_files|cached_inodes):'
for ws in "$A" "$B"; do
	op umount "$ws"
	# umount returns once the daemon has let go of the workspace (its
	# last act); the process itself is gone a moment later.
	gone "${DAEMON[$ws]}" || die "$ws's daemon ${DAEMON[$ws]} outlived umount"
	unset "DAEMON[$ws]"
done
for m in "${MNT[@]}"; do mountpoint -q "$m" && die "$m is still mounted"; done
op ls | grep -E "^(NAME|$A|$B) "
grep -h "ephemeral scratch wiped" "$STATE/log/$A.log" "$STATE/log/$B.log" | sed 's/^/log: /'
[ -z "$(ls -A "$DEMO/upper-a/tmp" 2>/dev/null)" ] || die "scratch leaked into the upper"
left=0	# scratch trees are named NAME.PID under the state directory
for tree in "$STATE/scratch/$A".* "$STATE/scratch/$B".*; do
	if [ -e "$tree" ]; then left=$((left + 1)); fi
done
echo "nothing of /tmp is left: $left scratch trees of $A and $B remain"
(cd "$DOCS" && sha256sum -c --quiet "$DEMO/documents.sha256") && echo "documents: unchanged"

step "6. the auditor: what did each agent do, what was refused, is the log intact?"
op audit report --ws "$A" --files
op audit report --ws "$B"
op audit search --ws "$A" --result denied
op audit verify

step "7. what persisted, and clean up"
echo "agent-a's upper ($DEMO/upper-a):"
(cd "$DEMO/upper-a" && find . -maxdepth 2 ! -path './outputs/logs/*' | sort && echo "... $(find . | wc -l) entries")
(cd "$DEMO/upper-a" && sha256sum -c "$DEMO/model.sha256")
cat "$DEMO/upper-a/outputs/result.txt"
op rm "$A" --purge --yes
op rm "$B" --purge --yes
DECLARED=()
op ls | grep -E "^(NAME|$A|$B) "
echo
echo "demo finished: nothing left mounted; the uppers are deleted and $DEMO goes with the exit"
