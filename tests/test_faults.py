"""Fault tests: the daemon killed under load, clients killed in the middle of
big requests, clean shutdown by signal and by fusermount3 -u, and running out
of descriptors.

Every process a test starts is ended by its pid; every mount is unmounted by
the make_ws fixture's cleanup even when an assertion fails.
"""
import errno
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import WSFS, is_mounted, pid_alive

# What the kernel answers on a FUSE mount whose daemon is gone: ENOTCONN, or
# ECONNABORTED for requests caught by the abort (kernel's choice, not wsfs's).
DEAD = (errno.ENOTCONN, errno.ECONNABORTED)

# --------------------------------------------------------------------------
# helpers


def kill_quietly(p):
    if p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def log_tail(w, n=4000):
    try:
        with open(os.path.join(w.state, "log", f"{w.name}.log"), "rb") as f:
            return f.read()[-n:].decode(errors="replace")
    except OSError as e:
        return f"<no daemon log: {e}>"


def registry_row(w):
    db = sqlite3.connect(os.path.join(w.state, "state.db"), timeout=5)
    try:
        return db.execute("SELECT name, mountpoint, pid FROM mounts WHERE name=?",
                          (w.name,)).fetchone()
    finally:
        db.close()


def mount_entries(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return sum(1 for line in f if line.split()[4] == path)


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def upper_fds(pid, upper):
    """How many of the daemon's descriptors are on files under UPPER."""
    upper = os.path.realpath(upper)
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target == upper or target.startswith(upper + "/"):
            n += 1
    return n


def probe(w, timeout=5):
    """stat, write and read back through the mount in a child process, so a
    wedged daemon costs a bounded wait, not a hung test run."""
    code = ("import os, sys\n"
            "m = sys.argv[1]\n"
            "os.stat(m)\n"
            "p = os.path.join(m, 'probe-%d' % os.getpid())\n"
            "with open(p, 'wb') as f: f.write(b'probe')\n"
            "with open(p, 'rb') as f: assert f.read() == b'probe'\n"
            "os.unlink(p)\n"
            "os.listdir(m)\n")
    t0 = time.time()
    p = subprocess.Popen([sys.executable, "-c", code, w.mnt],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_quietly(p)
        raise AssertionError(f"stat/write through the mount took more than "
                             f"{timeout}s: daemon wedged?\n{log_tail(w)}")
    finally:
        kill_quietly(p)
    assert p.returncode == 0, f"probe failed: {err.decode()[-2000:]}"
    return time.time() - t0


# The subreaper: runs `wsfs ...`, then adopts the daemon when its parent
# exits after the mount is up, and reports the daemon's exit status.
REAPER = r'''
import ctypes, json, os, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(36, 1, 0, 0, 0) == 0          # PR_SET_CHILD_SUBREAPER
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"mount_rc": r.returncode, "stderr": r.stderr}), flush=True)
while True:
    try:
        pid, st = os.wait()
    except ChildProcessError:
        break
    print(json.dumps({"pid": pid, "status": st}), flush=True)
'''


def mount_reaped(w):
    """Mount W under a subreaper; returns the reaper Popen."""
    reaper = subprocess.Popen([sys.executable, "-c", REAPER, WSFS, "-o",
                               w.opts()] + w.extra_args + [w.mnt],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    first = json.loads(reaper.stdout.readline() or '{"mount_rc": -1, "stderr": "reaper died"}')
    if first["mount_rc"] != 0:
        kill_quietly(reaper)
        raise AssertionError(f"mount failed: {first['stderr']}")
    assert is_mounted(w.mnt)
    w.pid = w.daemon_pid()
    return reaper


def daemon_exit_status(reaper, pid, timeout):
    """The daemon's wait status as seen by the subreaper, or None."""
    try:
        out, _ = reaper.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    for line in out.splitlines():
        rec = json.loads(line)
        if rec.get("pid") == pid:
            return rec["status"]
    raise AssertionError(f"the daemon {pid} was not reaped by the subreaper: {out}")


# --------------------------------------------------------------------------
# (1) the daemon SIGKILLed in the middle of a workload

WRITER = r'''
import errno, json, os, sys
mnt = sys.argv[1]
d = os.path.join(mnt, "w")
def gen(k):
    return (b"gen %08d|" % k) * 4096       # 53,248 bytes
k = 0
first = None
try:
    while True:
        data = gen(k)
        tmp = os.path.join(d, "tmp-%d" % k)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        for off in range(0, len(data), 8192):
            os.write(fd, data[off:off + 8192])
        os.close(fd)
        if k % 5 == 4:
            os.rename(tmp, os.path.join(d, "latest"))      # replaces
        else:
            os.rename(tmp, os.path.join(d, "file-%d" % k))
        k += 1
        if k == 20:
            print("STARTED", flush=True)
except OSError as e:
    first = e.errno
try:
    # a new name: the kernel must ask the (dead) daemon
    os.close(os.open(os.path.join(d, "after-%d" % k), os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    second = 0
except OSError as e:
    second = e.errno
print(json.dumps({"k": k, "first": first, "second": second}), flush=True)
'''


def gen(k):
    return (b"gen %08d|" % k) * 4096


def check_writer_upper(upper_w, k_reached):
    """Every name is one the writer made; renamed files are complete;
    at most the one file being written is a partial prefix."""
    names = sorted(os.listdir(upper_w))
    tmps = [n for n in names if n.startswith("tmp-")]
    assert len(tmps) <= 1, f"more than one temp file left: {tmps}"
    for n in names:
        with open(os.path.join(upper_w, n), "rb") as f:
            data = f.read()
        if n.startswith("file-"):
            k = int(n[5:])
            assert k <= k_reached and k % 5 != 4, n
            assert data == gen(k), f"{n} is not the complete file"
        elif n == "latest":
            k = int(data[4:12])
            assert k % 5 == 4 and k <= k_reached
            assert data == gen(k), "latest is not a complete generation"
        elif n.startswith("tmp-"):
            k = int(n[4:])
            assert k >= k_reached - 1, f"stale temp file {n}"
            assert gen(k).startswith(data), f"{n} is not a prefix of what was written"
        else:
            raise AssertionError(f"unexpected file in the upper: {n}")
    complete = [n for n in names if n.startswith("file-")]
    return complete


def test_sigkill_daemon_mid_workload(make_ws):
    w = make_ws()
    os.mkdir(w.p("w"))
    old_pid = w.pid
    writer = subprocess.Popen([sys.executable, "-c", WRITER, w.mnt],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        line = writer.stdout.readline()
        assert line.strip() == "STARTED", writer.stderr.read()
        time.sleep(0.3)
        w.kill(signal.SIGKILL)
        t0 = time.time()
        try:
            out, err = writer.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError("the writer hung after the daemon was killed")
        waited = time.time() - t0
    finally:
        kill_quietly(writer)
    assert writer.returncode == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert res["first"] in DEAD, res
    assert waited < 10
    deadline = time.time() + 5
    while pid_alive(old_pid) and time.time() < deadline:
        time.sleep(0.02)
    assert not pid_alive(old_pid)
    if is_mounted(w.mnt):
        assert res["second"] in DEAD, res
        with pytest.raises(OSError) as ei:
            os.stat(w.p("w", "new-name"))
        assert ei.value.errno in DEAD
    r = subprocess.run(["fusermount3", "-u", w.mnt], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, f"fusermount3 -u on the dead mount: {r.stderr}"
    assert not is_mounted(w.mnt)
    w.pid = None

    # the upper is consistent
    complete = check_writer_upper(w.u("w"), res["k"])
    assert len(complete) >= 16
    assert sorted(os.listdir(w.upper)) == ["w"], "junk in the upper"

    # the stale row is still there, and the name can be mounted again
    row = registry_row(w)
    assert row is None or row[2] == old_pid
    w.mount()
    assert w.pid != old_pid
    assert registry_row(w)[2] == w.pid
    ls = w.wsctl("ls")
    assert ls.returncode == 0, ls.stderr
    line = [l for l in ls.stdout.splitlines() if l.split()[:1] == [w.name]]
    assert line, ls.stdout
    assert os.path.realpath(w.mnt) in line[0] and "mounted" in line[0].split()
    assert str(w.pid) in line[0].split()
    assert sorted(os.listdir(w.p("w"))) == sorted(os.listdir(w.u("w")))
    for n in complete:
        with open(w.p("w", n), "rb") as f:
            assert f.read() == gen(int(n[5:]))
    probe(w)


def test_remount_over_dead_mount_without_unmounting(make_ws):
    """A SIGKILLed daemon leaves a dead mount; the next daemon with the same
    name and mountpoint replaces it instead of stacking on top of it."""
    w = make_ws()
    with open(w.p("f"), "wb") as f:
        f.write(b"before")
    old_pid = w.pid
    w.kill(signal.SIGKILL)
    deadline = time.time() + 5
    while pid_alive(old_pid) and time.time() < deadline:
        time.sleep(0.02)
    assert not pid_alive(old_pid)
    with pytest.raises(OSError) as ei:
        os.stat(w.p("g"))
    assert ei.value.errno in DEAD
    w.pid = None
    w.mount()
    assert mount_entries(w.mnt) == 1, "the new mount is stacked on the dead one"
    with open(w.p("f"), "rb") as f:
        assert f.read() == b"before"
    probe(w)
    ls = w.wsctl("ls")
    assert ls.returncode == 0 and "stale" not in ls.stdout, ls.stdout


# --------------------------------------------------------------------------
# (2) clients SIGKILLed in the middle of big requests

CLIENT = r'''
import os, sys, mmap
mnt, kind, i = sys.argv[1], sys.argv[2], int(sys.argv[3])
buf = bytes([i & 0xff]) * (64 << 20)
while True:
    if kind == "write":
        fd = os.open(os.path.join(mnt, "big-%d" % i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        n = os.write(fd, buf)                # one 64 MiB write
        os.fsync(fd)
        os.close(fd)
    elif kind == "pwrite":
        fd = os.open(os.path.join(mnt, "big-%d" % i), os.O_RDWR | os.O_CREAT, 0o644)
        for off in range(0, 64 << 20, 8 << 20):
            os.pwrite(fd, buf[:8 << 20], off)
        os.ftruncate(fd, 0)
        os.close(fd)
    elif kind == "read":
        fd = os.open(os.path.join(mnt, "src"), os.O_RDONLY)
        while os.read(fd, 16 << 20):
            pass
        os.close(fd)
    elif kind == "mmap":
        fd = os.open(os.path.join(mnt, "src"), os.O_RDONLY)
        m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        sum(m[j] for j in range(0, len(m), 4096))
        m.close()
        os.close(fd)
    else:
        fd = os.open(os.path.join(mnt, "many"), os.O_RDONLY | os.O_DIRECTORY)
        os.listdir(fd)
        os.close(fd)
        list(os.scandir(os.path.join(mnt, "many")))
'''


def wsctl_status(w):
    r = w.wsctl("status", w.name)
    assert r.returncode == 0, r.stderr
    kv = {}
    for line in r.stdout.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            kv[parts[0].rstrip(":")] = parts[1].strip()
    return kv


def test_clients_killed_mid_request(make_ws):
    w = make_ws(options="allow_other,fd_cache=32")
    with open(w.u("src"), "wb") as f:
        f.write(os.urandom(1 << 20) * 64)
    os.mkdir(w.u("many"))
    for i in range(3000):
        open(w.u("many", f"entry-{i:04d}-" + "n" * 60), "w").close()
    probe(w)
    # descriptors on the upper beyond the cached ones: the fixed few
    base_extra = upper_fds(w.pid, w.upper) - int(wsctl_status(w)["cached_fds"])
    kinds = ["write", "pwrite", "read", "mmap", "readdir"]
    rnd = random.Random(20)
    clients = []
    try:
        for i in range(20):
            clients.append(subprocess.Popen(
                [sys.executable, "-c", CLIENT, w.mnt, kinds[i % len(kinds)], str(i)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        kill_at = sorted((rnd.uniform(0.3, 2.5), n) for n in range(20))
        t0 = time.time()
        for at, n in kill_at:
            delay = at - (time.time() - t0)
            if delay > 0:
                time.sleep(delay)
            c = clients[n]
            assert c.poll() is None, (
                f"client {n} ({kinds[n % len(kinds)]}) died on its own: "
                f"{c.stderr.read().decode()[-2000:]}")
            os.kill(c.pid, signal.SIGKILL)
        for n, c in enumerate(clients):
            try:
                c.wait(timeout=10)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"client {n} did not die on SIGKILL "
                                     f"(stuck in the daemon?)")
            assert c.returncode == -signal.SIGKILL
    finally:
        for c in clients:
            kill_quietly(c)
    assert pid_alive(w.pid), f"daemon died\n{log_tail(w)}"
    assert probe(w, timeout=5) < 5
    assert pid_alive(w.pid)
    # every open file of the dead clients is released again
    deadline = time.time() + 5
    while True:
        st = wsctl_status(w)
        if st.get("open_files") == "0" and st.get("open_dirs") == "0":
            break
        assert time.time() < deadline, f"handles leaked: {st}"
        time.sleep(0.1)
    st = wsctl_status(w)
    extra = upper_fds(w.pid, w.upper) - int(st["cached_fds"])
    assert extra <= base_extra, (
        f"descriptors leaked: {extra} on the upper besides the cache, "
        f"{base_extra} before the clients ran ({st})")
    for i in range(20):
        if kinds[i % len(kinds)] in ("write", "pwrite") and os.path.exists(w.u(f"big-{i}")):
            size = os.path.getsize(w.u(f"big-{i}"))
            assert os.path.getsize(w.p(f"big-{i}")) == size


# --------------------------------------------------------------------------
# (3) (4) clean shutdown


def check_clean_exit(w, reaper, pid, sock, how):
    t0 = time.time()
    status = daemon_exit_status(reaper, pid, timeout=5)
    elapsed = time.time() - t0
    assert status is not None, f"daemon still running 5s after {how}\n{log_tail(w)}"
    assert os.WIFEXITED(status), f"daemon killed by signal {os.WTERMSIG(status)}"
    assert os.WEXITSTATUS(status) == 0, \
        f"daemon exit status {os.WEXITSTATUS(status)} after {how}\n{log_tail(w)}"
    assert elapsed < 5
    assert not is_mounted(w.mnt), f"still mounted after {how}"
    assert registry_row(w) is None, "registry row not removed"
    assert not os.path.exists(sock), "control socket file left behind"
    w.pid = None
    ls = w.wsctl("ls")
    assert ls.returncode == 0 and w.name not in ls.stdout, ls.stdout


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_unmounts_cleanly(make_ws, sig):
    w = make_ws(mount=False)
    reaper = mount_reaped(w)
    try:
        pid = w.pid
        sock = os.path.join(w.state, "run", f"{w.name}.sock")
        assert os.path.exists(sock), "no control socket while mounted"
        assert registry_row(w)[2] == pid
        with open(w.p("f"), "wb") as f:
            f.write(b"x" * 100000)
        # a file kept open through the stop must not block it
        held = os.open(w.p("f"), os.O_RDONLY)
        try:
            os.kill(pid, sig)
            check_clean_exit(w, reaper, pid, sock, signal.Signals(sig).name)
        finally:
            try:
                os.close(held)
            except OSError:
                pass        # the flush of a file on a finished mount may fail
    finally:
        kill_quietly(reaper)
    with open(w.u("f"), "rb") as f:
        assert f.read() == b"x" * 100000


def test_fusermount_unmounts_cleanly(make_ws):
    w = make_ws(mount=False)
    reaper = mount_reaped(w)
    try:
        pid = w.pid
        sock = os.path.join(w.state, "run", f"{w.name}.sock")
        assert os.path.exists(sock)
        with open(w.p("f"), "wb") as f:
            f.write(b"data")
        r = subprocess.run(["fusermount3", "-u", w.mnt], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        check_clean_exit(w, reaper, pid, sock, "fusermount3 -u")
    finally:
        kill_quietly(reaper)
    with open(w.u("f"), "rb") as f:
        assert f.read() == b"data"


# --------------------------------------------------------------------------
# (5) running out of descriptors

OPENER = r'''
import errno, json, os, sys
mnt, n = sys.argv[1], int(sys.argv[2])
fds, errs = [], {}
for i in range(n):
    try:
        fds.append((i, os.open(os.path.join(mnt, "many", "f%03d" % i), os.O_RDWR)))
    except OSError as e:
        name = errno.errorcode.get(e.errno, str(e.errno))
        errs[name] = errs.get(name, 0) + 1
bad = []
for i, fd in fds:
    try:
        if os.pread(fd, 100, 0) != b"content %d" % i:
            bad.append(i)
        os.pwrite(fd, b"C", 0)
    except OSError as e:
        bad.append((i, e.errno))
print("OPEN %d" % len(fds), flush=True)
sys.stdin.readline()
for _, fd in fds:
    os.close(fd)
print(json.dumps({"opened": len(fds), "errs": errs, "bad": bad}), flush=True)
'''


def run_opener(w, n):
    p = subprocess.Popen([sys.executable, "-c", OPENER, w.mnt, str(n)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("OPEN"), p.stderr.read()
        held_fds = fd_count(w.pid)
        p.stdin.write("\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=60)
    finally:
        kill_quietly(p)
    assert p.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), held_fds


def nofile_limits(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no open-file limit")


def small_cache_ws(make_ws):
    w = make_ws(options="allow_other,fd_cache=16")
    os.mkdir(w.p("many"))
    for i in range(300):
        with open(w.p("many", "f%03d" % i), "wb") as f:
            f.write(b"content %d" % i)
    return w


def test_300_open_files_with_16_cached_descriptors(make_ws):
    """Open files pin their node's descriptor; the cache bound must not
    limit how many files can be open at once."""
    w = small_cache_ws(make_ws)
    res, held = run_opener(w, 300)
    assert res["opened"] == 300 and not res["errs"], res
    assert res["bad"] == [], res
    assert held >= 300, "open files must hold real descriptors"
    for i in range(300):
        with open(w.p("many", "f%03d" % i), "r+b") as f:
            assert f.read() == b"Content %d" % i
    assert pid_alive(w.pid)
    probe(w)


def test_100_open_directories_with_16_cached_descriptors(make_ws):
    w = make_ws(options="allow_other,fd_cache=16")
    for i in range(100):
        os.makedirs(w.u(f"d{i:03d}", f"inner{i}"))
    fds = []
    try:
        for i in range(100):
            fds.append(os.open(w.p(f"d{i:03d}"), os.O_RDONLY | os.O_DIRECTORY))
        for i, fd in enumerate(fds):
            assert os.listdir(fd) == [f"inner{i}"]
            os.mkdir(f"made{i}", dir_fd=fd)
    finally:
        for fd in fds:
            os.close(fd)
    assert all(os.path.isdir(w.u(f"d{i:03d}", f"made{i}")) for i in range(100))


def test_cache_full_of_open_files_does_not_break_other_nodes(make_ws):
    """With fd_cache=16, 20 open files whose nodes' descriptors are cached
    (a chmod by path caches them, the open pins them) leave no evictable
    cache entry: requests on every OTHER node must still work (by opening
    a descriptor beyond the cap for a moment), not fail."""
    w = make_ws(options="allow_other,fd_cache=16")
    os.mkdir(w.u("open"))
    for i in range(20):
        with open(w.u("open", f"f{i}"), "wb") as f:
            f.write(b"open %d" % i)
    for j in range(10):
        os.makedirs(w.u("other", f"d{j}"))
        with open(w.u("other", f"d{j}", "x"), "wb") as f:
            f.write(b"x %d" % j)
    fds = []
    failures = []
    try:
        for i in range(20):
            p = w.p("open", f"f{i}")
            try:
                fds.append((i, os.open(p, os.O_RDWR)))
                os.chmod(p, 0o640)
            except OSError as e:
                failures.append(f"open+chmod of f{i}: {errno.errorcode.get(e.errno)}")
        for j in range(10):
            d = w.p("other", f"d{j}")
            for what, fn in (
                    ("stat", lambda: os.stat(os.path.join(d, "x"))),
                    ("chmod", lambda: os.chmod(os.path.join(d, "x"), 0o600)),
                    ("utime", lambda: os.utime(os.path.join(d, "x"), (3, 3))),
                    ("setxattr", lambda: os.setxattr(os.path.join(d, "x"), "user.k", b"v")),
                    ("create", lambda: open(os.path.join(d, "new"), "wb").close()),
                    ("rename", lambda: os.rename(os.path.join(d, "new"), os.path.join(d, "new2"))),
                    ("listdir", lambda: os.listdir(d))):
                try:
                    fn()
                except OSError as e:
                    failures.append(f"d{j} {what}: {errno.errorcode.get(e.errno)}")
        for i, fd in fds:
            assert os.pread(fd, 100, 0) == b"open %d" % i
    finally:
        for _, fd in fds:
            os.close(fd)
    assert not failures, f"{len(failures)} requests failed: {failures[:12]}"
    assert sorted(os.listdir(w.u("other", "d9"))) == ["new2", "x"]


def test_daemon_out_of_descriptors_fails_requests_not_itself(make_ws):
    """The daemon's own RLIMIT_NOFILE is lowered under it (prlimit), then a
    client opens 300 files at once: the opens beyond the limit fail with
    EMFILE/ENFILE, the ones that succeed work, the daemon survives, and
    once the files are closed everything works again under the same limit."""
    w = small_cache_ws(make_ws)
    soft, hard = nofile_limits(w.pid)
    limit = fd_count(w.pid) + 40
    r = subprocess.run(["prlimit", "--pid", str(w.pid), f"--nofile={limit}:{hard}"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    try:
        res, held = run_opener(w, 300)
        assert pid_alive(w.pid), f"daemon died when out of descriptors\n{log_tail(w)}"
        assert 0 < res["opened"] < 300, res
        assert set(res["errs"]) <= {"EMFILE", "ENFILE"}, \
            f"out of descriptors must be reported as EMFILE/ENFILE: {res['errs']}"
        assert res["bad"] == [], f"files that did open misbehaved: {res['bad']}"
        # everything closed again: the daemon works under the same low limit
        assert probe(w) < 5
        for i in range(0, 300, 7):
            with open(w.p("many", "f%03d" % i), "rb") as f:
                assert f.read()[1:] == b"ontent %d" % i
        res, _ = run_opener(w, 20)
        assert res["opened"] == 20 and not res["errs"], res
        os.mkdir(w.p("after"))
        with open(w.p("after", "x"), "wb") as f:
            f.write(b"fine")
        assert sorted(os.listdir(w.p("many")))[:2] == ["f000", "f001"]
    finally:
        subprocess.run(["prlimit", "--pid", str(w.pid), f"--nofile={soft}:{hard}"],
                       capture_output=True)
    assert pid_alive(w.pid)
    with open(w.u("after", "x"), "rb") as f:
        assert f.read() == b"fine"
