"""The README's first command must keep working: run the demo end to end.

The demo is the operator's story told in under a minute: apply a YAML file,
mount, two unprivileged agents at work, a live quota change, top, locks,
umount, the audit, and removal.  These tests run it as the README says and
check every one of those moments from what it prints, then check that it
left nothing behind, also when it is stopped halfway.
"""
import os
import re
import signal
import subprocess
import time

import pytest
from conftest import ROOT, WSCTL, is_mounted

DEMO = os.path.join(ROOT, "tools", "demo.sh")
BUDGET_S = 60


def _mounts_under(prefix):
    """Mountpoints at or below prefix."""
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f
                if line.split()[4].startswith(prefix)]


def _processes_mentioning(text):
    """Pids whose command line contains text (the run's names or dir)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except (FileNotFoundError, ProcessLookupError):
            continue
        if text in cmd and not zombie:
            found.append((int(pid), cmd))
    return found


def _declared(names):
    out = subprocess.run([WSCTL, "ls"], capture_output=True, text=True,
                         check=True).stdout
    return [n for n in names if re.search(rf"^{re.escape(n)}\s", out, re.M)]


def _assert_left_nothing(out, a, b):
    demo = re.search(r"(/tmp/wsfs-demo\.\w+)/", out)
    assert demo, out[-3000:]
    demo = demo.group(1)
    assert not _mounts_under(demo), _mounts_under(demo)
    with open("/proc/self/mountinfo") as f:
        mounts = f.read()
    for name in (a, b):
        assert not is_mounted(os.path.join(demo, name.rsplit("-", 1)[0]))
        assert f" wsfs:{name} " not in mounts     # nor anywhere else
    assert not os.path.exists(demo)               # temporary files gone
    assert _declared([a, b]) == []                # no stale registrations
    # No daemon, agent or helper of the run is still running.  A daemon
    # exits a moment after it lets go of its workspace, so allow that.
    deadline = time.monotonic() + 5
    while True:
        left = (_processes_mentioning(a) + _processes_mentioning(b) +
                _processes_mentioning(demo))
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left, left


def test_demo_tells_the_operator_story_in_under_a_minute():
    start = time.monotonic()
    try:
        r = subprocess.run([DEMO], capture_output=True, text=True,
                           timeout=300)
    except subprocess.TimeoutExpired as e:
        # Killed without its trap: clean up after it, then fail.
        got = e.stdout or b""
        _rescue(got.decode(errors="replace") if isinstance(got, bytes)
                else got)
        raise
    elapsed = time.monotonic() - start
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert elapsed < BUDGET_S, f"the demo took {elapsed:.1f} s"
    m = re.search(r"^  (agent-a-(\d+)):$", out, re.M)
    assert m, out[:3000]
    a, b = m.group(1), f"agent-b-{m.group(2)}"

    def row(name, *cells):
        """A table row of name with these cells in order."""
        pat = r"\s.*".join(re.escape(c) for c in cells)
        return re.search(rf"^{re.escape(name)}\s.*{pat}", out, re.M)

    # 1. Declared in YAML: shown, dry run, applied, re-applied unchanged.
    for key in ("workspaces:", "read_only: true", "read_only: false",
                "type: tmpfs, target: /tmp", "quota: {bytes: 16M",
                "options: [allow_other]"):
        assert key in out, key
    dry = out.index("operator# wsctl apply -f demo.yaml --dry-run")
    real = out.index("operator# wsctl apply -f demo.yaml\n")
    again = out.index("operator# wsctl apply -f demo.yaml\n", real + 1)
    assert dry < real < again
    assert f"would create {a}" in out[dry:real]
    assert f"would create {b}" in out[dry:real]
    assert "layer /input ro " in out[dry:real]
    assert "layer /shared shared " in out[dry:real]
    assert "layer /tmp ephemeral" in out[dry:real]
    assert f"create {a}\n" in out[real:again]
    assert f"unchanged {a}\nunchanged {b}\n" in out[again:]
    assert row(a, "-", "stopped", "0/16M")
    assert row(b, "-", "stopped", "0/10240")

    # 2. Mounted, and the agents are an unprivileged uid through allow_other.
    assert f"mounted {a} at " in out and f"mounted {b} at " in out
    assert re.search(rf"^wsfs:{a} \S+ fuse\.wsfs \S*allow_other", out, re.M)
    assert re.search(r"^agent-a\$ id -u; .*\n1000$", out, re.M)
    assert "Build hello, run it, keep the result." in out
    # Every attempt to change the inputs is refused by the read-only volume.
    assert len(re.findall(r"^agent-a\$ .*input/.*\n  -> refused: "
                          r"Read-only file system$", out, re.M)) == 4
    assert "documents: unchanged" in out
    # Unpacked and built in scratch, run, outputs written and verified.
    assert "tar -C tmp -xzf input/hello-1.0.tar.gz" in out
    assert "cc -O2 -o hello hello.c" in out
    assert "hello from inside the workspace: sum=2999998" in out
    assert "outputs/model.bin: OK" in out       # checksum, in the upper
    assert "agent b was here" in out            # the second agent works too
    # The quota: df shows it, the crossing write fails with EDQUOT.
    assert re.search(rf"^wsfs:{a}\s+16M\s", out, re.M)
    assert re.search(r"^agent-a\$ dd .*checkpoint.*\n  -> refused: "
                     r"Disk quota exceeded$", out, re.M)
    assert re.search(r"bytes:\s+1\d\.\d MiB of 16 MiB", out)

    # 3. Raised live with wsctl set; the retry succeeds; df shows 64M.
    assert f"update {a}: bytes 16 MiB -> 64 MiB (live)" in out
    assert "checkpoint written: 12M" in out
    assert re.search(rf"^wsfs:{a}\s+64M\s", out, re.M)
    # The operator watches top: two plain frames with both workspaces.
    frames = re.findall(r"^wsctl top - .*: \d+ mounted", out, re.M)
    assert len(frames) == 2, out[-4000:]
    assert len(re.findall(r"^NAME\s+USED\s+LIMIT\s.*OPS/S", out, re.M)) == 2
    assert row(a, "64 MiB") and row(b, "16 MiB")
    assert "\x1b[" not in out       # no terminal codes when not a tty

    # 4. Shared directory under flock: an exact total, and the lock table.
    assert "counter: 300 (150 from each agent" in out, out[-4000:]
    assert re.search(rf"^{a}\s+/shared/report\.txt\s+flock\s+exclusive"
                     r".*\bheld$", out, re.M), out[-4000:]
    assert re.search(rf"^{b}\s+/shared/report\.txt\s+flock\s+exclusive"
                     r".*\bwaiting$", out, re.M), out[-4000:]
    assert "agent-a: section 1\nagent-b: section 2" in out
    assert re.search(r"cached_inodes:\s+\d+", out)

    # 5. Unmounted: scratch wiped (the build tree's 3 files + cache.bin),
    # both shown stopped, no scratch tree left over.
    assert f"unmounted {a} from " in out and f"unmounted {b} from " in out
    m = re.search(r"ephemeral scratch wiped: (\d+) files", out)
    assert m and int(m.group(1)) == 4, out[-4000:]
    assert "nothing of /tmp is left: 0 scratch trees" in out
    assert row(a, "-", "stopped", "64M") and row(b, "-", "stopped")

    # 6. The auditor: report with files, the refusals, an intact chain.
    assert f"== {a}" in out and f"== {b}" in out
    assert re.search(r"denials:\s+5: EROFS 4, EDQUOT 1", out)
    assert re.search(r"^\s+created\s.*\s/outputs/model\.bin$", out, re.M)
    denied = re.findall(rf"^\S+ \S+ {a}\s+\d+\s+1000\s.*\s(EROFS|EDQUOT)\s",
                        out, re.M)
    assert denied.count("EROFS") == 4 and denied.count("EDQUOT") == 1
    m = re.search(r"OK: (\d+) records, (\d+) checkpoints", out)
    assert m and int(m.group(1)) > 100 and int(m.group(2)) >= 1

    # 7. Removed with their uppers; nothing left mounted, running or on disk.
    assert f"removed {a}\n" in out and f"removed {b}\n" in out
    assert re.search(r"^deleted /tmp/wsfs-demo\.\w+/upper-a \(\d+ files",
                     out, re.M)
    assert "demo finished" in out
    _assert_left_nothing(out, a, b)


def _rescue(out):
    """After a demo that had to be killed: undo what its trap could not,
    so that one failure does not leave mounts for every later test."""
    m = re.search(r"^  (agent-a-(\d+)):$", out, re.M)
    demo = re.search(r"(/tmp/wsfs-demo\.\w+)/", out)
    names = [m.group(1), f"agent-b-{m.group(2)}"] if m else []
    for name in names:
        subprocess.run([WSCTL, "umount", name], capture_output=True,
                       timeout=30)
    if demo:
        for mnt in _mounts_under(demo.group(1)):
            subprocess.run(["umount", "-l", mnt], capture_output=True)
    for name in names:
        subprocess.run([WSCTL, "rm", name], capture_output=True)
    if demo:
        subprocess.run(["rm", "-rf", "--one-file-system", demo.group(1)])


@pytest.mark.parametrize("moment", [
    "operator# wsctl mount agent-b-",          # one mounted, one mounting
    "agent-a and agent-b each run 'count",     # both agents counting
    # agent-a holding a lock and waiting for input, agent-b about to queue
    # behind it: a process blocked on a fifo, the hardest to end.
    "agent-a: flock shared/report.txt",
])
def test_demo_stopped_halfway_leaves_nothing_behind(moment):
    """SIGTERM while workspaces are mounted and agents are at work: the
    exit trap must still unmount, end every process and clean up."""
    p = subprocess.Popen([DEMO], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    out = []
    killed = False
    try:
        for line in p.stdout:
            out.append(line)
            if line.startswith(moment):
                p.send_signal(signal.SIGTERM)
                break
        out.append(p.communicate(timeout=60)[0])
    finally:
        if p.poll() is None:
            killed = True
            p.kill()
            p.wait()
            _rescue("".join(out))
    text = "".join(out)
    assert not killed, "the demo did not end on SIGTERM: " + text[-3000:]
    assert any(line.startswith(moment) for line in out), text[-3000:]
    assert p.returncode == 128 + signal.SIGTERM, text[-3000:]
    assert "demo: failed (exit 143); cleaned up" in text
    m = re.search(r"^  (agent-a-(\d+)):$", text, re.M)
    assert m, text[:3000]
    _assert_left_nothing(text, m.group(1), f"agent-b-{m.group(2)}")
