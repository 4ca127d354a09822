"""The audit log when things go wrong: audit.db that cannot be written (fail
closed, or alert and record the gap), audit_sync=full's promise, the daemon
SIGKILLed under load, and an unmount with records still queued.

audit.db is made unwritable with `chattr +i` on it and its WAL (ext4 under
WSFS_TEST_DIR), always undone in a finally.  Every process a test starts is
ended by its pid; every mount is unmounted by the make_ws fixture's cleanup
even when an assertion fails.
"""
import errno
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from conftest import WSCTL, pid_alive
from helpers import audit_checkpoints, audit_records

WAIT = 5.0      # the longest any state change below may take


# ================================================================ helpers

def db_path(w):
    return os.path.join(w.state, "audit.db")


@contextmanager
def immutable(w):
    """audit.db and its WAL cannot be written while inside."""
    files = [db_path(w), db_path(w) + "-wal"]
    for f in files:
        assert os.path.exists(f), f
    subprocess.run(["chattr", "+i"] + files, check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i"] + files, capture_output=True)


def log_text(w):
    try:
        with open(os.path.join(w.state, "log", f"{w.name}.log"),
                  errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_for(pred, timeout=WAIT, what="condition"):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def try_create(path):
    """0 if PATH could be created (and closed), else the errno."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
        return 0
    except OSError as e:
        return e.errno


def assert_chain(recs):
    seqs = [r["seq"] for r in recs]
    assert seqs == list(range(1, len(seqs) + 1)), \
        f"seq gap or repeat near {[s for i, s in enumerate(seqs) if s != i + 1][:5]}"


def verify(w):
    r = subprocess.run([WSCTL, "--state", w.state, "audit", "verify", "--ws",
                        w.name], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"verify failed: {r.stdout}{r.stderr}"
    m = re.match(r"OK: (\d+) records, (\d+) checkpoints", r.stdout)
    assert m, r.stdout
    return int(m.group(1)), int(m.group(2))


def count(con, ws, op, path):
    return con.execute("SELECT count(*) FROM records WHERE ws=? AND op=? AND "
                       "path=?", (ws, op, path)).fetchone()[0]


def kill_quietly(p):
    if p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    p.wait()


# ================================================================ fail closed

def test_fail_closed_refuses_then_recovers_without_a_gap(make_ws):
    w = make_ws()
    made = []
    for i in range(5):
        assert try_create(w.p(f"pre{i}")) == 0
        made.append(f"/pre{i}")
    with immutable(w):
        # The writer is asynchronous: the first operations may still be
        # accepted (and queued); within a second every one is refused.
        t0 = time.time()
        i = 0
        while True:
            e = try_create(w.p(f"during{i}"))
            if e == 0:
                made.append(f"/during{i}")
            else:
                assert e == errno.EIO, errno.errorcode.get(e, e)
                break
            i += 1
            assert time.time() - t0 < 1.0, "still serving after 1 s"
            time.sleep(0.005)
        # refused, and stays refused: reads too
        for j in range(5):
            assert try_create(w.p(f"refused{j}")) == errno.EIO
        try:
            os.listdir(w.mnt)
            raise AssertionError("listdir served while failing closed:\n" +
                                 log_text(w)[-1500:])
        except OSError as e:
            assert e.errno == errno.EIO
        text = log_text(w)
        assert "audit: cannot write audit.db" in text and \
            "refusing file operations with EIO" in text, text[-2000:]
    # repaired: serving again within ~2 s (the writer retries every 250 ms)
    t0 = time.time()
    wait_for(lambda: try_create(w.p("after")) == 0, 2.0, "recovery")
    made.append("/after")
    assert "audit.db writable again" in log_text(w)
    for j in range(5):
        assert not os.path.exists(w.u(f"refused{j}"))
    w.umount()
    recs = audit_records(w.state, w.name)
    assert_chain(recs)
    creates = [r["path"] for r in recs if r["op"] == "create"]
    assert creates == made, "a queued record was lost or a refused op recorded"
    assert len([r for r in recs if r["op"] == "release"]) == len(made)
    assert not [r for r in recs if r["op"] == "audit-gap"]
    assert audit_checkpoints(w.state, w.name)[-1][0] == len(recs)
    verify(w)


# ================================================================ alert

def test_alert_mode_serves_on_and_records_the_gap(make_ws):
    """70,000 records while audit.db is unwritable: more than the writer's
    queue (65,536) and its batch in hand (4,096) hold, so some are dropped,
    and an audit-gap record must say exactly how many."""
    w = make_ws(options="allow_other,audit_fail=alert")
    fd = os.open(w.p("f"), os.O_WRONLY | os.O_CREAT, 0o644)
    n = 70000
    try:
        with immutable(w):
            t0 = time.time()
            for i in range(n):          # one SETATTR request, one record each
                os.fchmod(fd, 0o600 if i & 1 else 0o644)
            elapsed = time.time() - t0
            assert try_create(w.p("still-serving")) == 0
            text = log_text(w)
            assert "audit: cannot write audit.db" in text and \
                "serving on (audit_fail=alert)" in text, text[-2000:]
    finally:
        os.close(fd)
    assert elapsed < 30, f"{n} operations took {elapsed:.1f} s"
    wait_for(lambda: "audit.db writable again" in log_text(w), what="repair")
    w.umount()
    recs = audit_records(w.state, w.name)
    assert_chain(recs)
    gaps = [r for r in recs if r["op"] == "audit-gap"]
    setattrs = [r for r in recs if r["op"] == "setattr"]
    assert len(gaps) == 1, gaps
    g = gaps[0]
    lost = g["bytes"]
    assert lost > 0
    # Every record the workload made is on the chain or counted as lost:
    # audit-start, mount, create f, N setattrs, create and release of
    # still-serving, release of f, unmount, audit-stop (and the gap itself).
    assert len(recs) - 1 + lost == n + 8, (len(recs), lost)
    assert n - lost <= len(setattrs) <= n
    m = re.fullmatch(r"lost=(\d+) first_ns=(\d+) last_ns=(\d+)", g["detail"])
    assert m and int(m.group(1)) == lost, g
    first_ns, last_ns = int(m.group(2)), int(m.group(3))
    # what was dropped is what came once the queue was full: the last
    # setattrs, after every one that was kept
    kept_last = max(r["time_ns"] for r in setattrs)
    assert kept_last <= first_ns <= last_ns <= g["time_ns"], \
        (setattrs[0]["time_ns"] - first_ns, kept_last - first_ns,
         last_ns - first_ns, g["time_ns"] - first_ns, g["seq"])
    assert (g["result"], g["comm"], g["layer"], g["pid"]) == \
        ("EIO", "wsfs", "-", recs[0]["pid"])
    assert f"recorded a gap of {lost} records" in log_text(w)
    assert audit_checkpoints(w.state, w.name)[-1][0] == len(recs)
    verify(w)


def test_alert_mode_without_drops_records_no_gap(make_ws):
    w = make_ws(options="allow_other,audit_fail=alert")
    with immutable(w):
        for i in range(200):
            assert try_create(w.p(f"f{i}")) == 0
        wait_for(lambda: "cannot write audit.db" in log_text(w), what="failure")
    wait_for(lambda: "audit.db writable again" in log_text(w), what="repair")
    w.umount()
    recs = audit_records(w.state, w.name)
    assert_chain(recs)
    assert not [r for r in recs if r["op"] == "audit-gap"]
    assert [r["path"] for r in recs if r["op"] == "create"] == \
        [f"/f{i}" for i in range(200)]
    verify(w)


# ================================================================ sync=full

def test_sync_full_commits_before_the_operation_returns(make_ws):
    w = make_ws(options="allow_other,audit_sync=full")
    con = sqlite3.connect(db_path(w), timeout=5)
    try:
        def recorded(op, path):
            return count(con, w.name, op, path)

        os.mkdir(w.p("d"))
        assert recorded("mkdir", "/d") == 1
        fd = os.open(w.p("d/f"), os.O_WRONLY | os.O_CREAT, 0o644)
        assert recorded("create", "/d/f") == 1
        os.write(fd, b"data")
        os.close(fd)
        fd = os.open(w.p("d/f"), os.O_RDONLY)
        assert recorded("open", "/d/f") == 1
        os.close(fd)
        os.chmod(w.p("d/f"), 0o600)
        assert recorded("setattr", "/d/f") == 1
        os.setxattr(w.p("d/f"), "user.k", b"v")
        assert recorded("setxattr", "/d/f") == 1
        os.symlink("f", w.p("d/s"))
        assert recorded("symlink", "/d/s") == 1
        os.link(w.p("d/f"), w.p("d/h"))
        assert recorded("link", "/d/f") == 1
        os.rename(w.p("d/h"), w.p("d/h2"))
        assert recorded("rename", "/d/h") == 1
        os.unlink(w.p("d/h2"))
        assert recorded("unlink", "/d/h2") == 1
        os.mkdir(w.p("e"))
        os.rmdir(w.p("e"))
        assert recorded("rmdir", "/e") == 1
        for i in range(50):
            os.mkdir(w.p(f"m{i}"))
            assert recorded("mkdir", f"/m{i}") == 1, i
    finally:
        con.close()


def test_sync_full_never_reports_success_for_an_unrecorded_operation(make_ws):
    """With audit_sync=full, an operation that returns success has its
    record in audit.db; once audit.db cannot be written an operation must
    fail (EIO), not succeed with its record stuck in the queue."""
    w = make_ws(options="allow_other,audit_sync=full")
    os.mkdir(w.p("before"))
    con = sqlite3.connect(db_path(w), timeout=5)
    try:
        with immutable(w):
            for name in ("a", "b", "c"):
                try:
                    os.mkdir(w.p(name))
                except OSError as e:
                    assert e.errno == errno.EIO
                    continue
                assert count(con, w.name, "mkdir", f"/{name}") == 1, \
                    f"mkdir {name} returned success without its record"
    finally:
        con.close()


# ================================================================ SIGKILL

WRITER = r'''
import os, sys
mnt, idx, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lfd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
def done(line):
    os.write(lfd, (line + "\n").encode())
    os.fsync(lfd)
i = 0
try:
    while True:
        a = "/w%d-%d" % (idx, i)
        fd = os.open(mnt + a, os.O_WRONLY | os.O_CREAT, 0o644)
        done("create " + a)
        os.write(fd, b"x" * 1000)
        os.close(fd)
        os.rename(mnt + a, mnt + a + ".r")
        done("rename " + a)
        if i % 3 == 0:
            os.unlink(mnt + a + ".r")
            done("unlink " + a + ".r")
        else:
            os.mkdir(mnt + a + ".d")
            done("mkdir " + a + ".d")
        i += 1
except OSError:
    pass
'''


@pytest.mark.parametrize("sync", ["normal", "full"])
def test_sigkill_under_load_the_chain_continues(make_ws, tmpbase, sync):
    w = make_ws(options=f"allow_other,audit_sync={sync}")
    script = os.path.join(tmpbase, "writer.py")
    with open(script, "w") as f:
        f.write(WRITER)
    logs = [os.path.join(tmpbase, f"done{i}.log") for i in range(4)]
    procs = [subprocess.Popen([sys.executable, script, w.mnt, str(i), logs[i]],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(4)]
    try:
        time.sleep(0.8)
        old = w.pid
        w.kill(signal.SIGKILL)
        wait_for(lambda: not pid_alive(old), what="the daemon's death")
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    finally:
        for p in procs:
            kill_quietly(p)
    w.pid = None
    first = audit_records(w.state, w.name)
    assert_chain(first)
    assert first[-1]["op"] not in ("unmount", "audit-stop")
    w.mount()
    os.mkdir(w.p("after-restart"))
    w.umount()
    recs = audit_records(w.state, w.name)
    assert_chain(recs)
    n = len(first)
    assert recs[:n] == first
    assert recs[n]["op"] == "audit-start" and recs[n]["seq"] == n + 1
    assert [r["op"] for r in recs].count("audit-start") == 2
    assert [r["path"] for r in recs if r["op"] == "mkdir"][-1] == "/after-restart"
    completed = []
    for log in logs:
        with open(log) as f:
            completed += [line.split() for line in f.read().splitlines()]
    assert len(completed) > 20, "the writers did too little to test anything"
    if sync == "full":
        have = {(r["op"], r["path"]) for r in first if r["result"] == "0"}
        missing = [c for c in completed if (c[0], c[1]) not in have]
        assert not missing, f"{len(missing)} completed ops unrecorded: {missing[:5]}"
    verify(w)


# ================================================================ unmount

def test_unmount_commits_what_is_queued(make_ws):
    """Records queued while audit.db cannot be written (alert mode) are
    committed by an unmount that starts before it is repaired."""
    w = make_ws(options="allow_other,audit_fail=alert")
    fd = os.open(w.p("f"), os.O_WRONLY | os.O_CREAT, 0o644)
    n = 3000
    um = None
    try:
        with immutable(w):
            for i in range(n):
                os.fchmod(fd, 0o600 if i & 1 else 0o644)
            os.close(fd)
            fd = -1
            wait_for(lambda: "cannot write audit.db" in log_text(w), what="failure")
            um = subprocess.Popen(["fusermount3", "-u", w.mnt],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(0.5)
            assert pid_alive(w.pid), "the daemon ended with records unwritten"
        assert um.wait(timeout=30) == 0
        assert w.wait_exit(15)
    finally:
        if fd >= 0:
            os.close(fd)
        if um is not None:
            kill_quietly(um)
    recs = audit_records(w.state, w.name)
    assert_chain(recs)
    assert len([r for r in recs if r["op"] == "setattr"]) == n
    assert [r["op"] for r in recs[-2:]] == ["unmount", "audit-stop"]
    assert not [r for r in recs if r["op"] == "audit-gap"]
    assert audit_checkpoints(w.state, w.name)[-1][0] == len(recs)
    assert "could not be written at unmount" not in log_text(w)
    verify(w)


def test_unmount_right_after_a_burst(make_ws):
    w = make_ws()
    fd = os.open(w.p("f"), os.O_WRONLY | os.O_CREAT, 0o644)
    n = 20000
    for i in range(n):
        os.fchmod(fd, 0o600 if i & 1 else 0o644)
    os.close(fd)
    w.umount()
    recs = audit_records(w.state, w.name)
    assert_chain(recs)
    assert len([r for r in recs if r["op"] == "setattr"]) == n
    assert recs[-1]["op"] == "audit-stop"
    assert audit_checkpoints(w.state, w.name)[-1][0] == len(recs)
    verify(w)
