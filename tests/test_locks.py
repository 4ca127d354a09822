"""Advisory locks through wsfs: fcntl record locks, OFD locks and flock.

Agents are separate processes (POSIX locks belong to processes), driven
over a pipe: each is a small Python program (AGENT below) written to a
file with a distinctive name, so its process name is known. Most tests use
two or three workspaces that mount one host directory with
`-o shared=SRC:/shared`, and host processes that lock the backing files
directly. Expected results come from the kernel itself where they can: the
conflict matrix runs once on the backing directory natively and every
workspace combination must match it cell for cell.

Every process a test starts is killed by pid at teardown (the `agents`
fixture is set up after make_ws, so it is torn down before the mounts), and
every wait for an agent has a timeout.
"""
import errno
import json
import os
import re
import select
import signal
import sqlite3
import subprocess
import time
import types

import pytest


PY = "/usr/bin/python3"

# ------------------------------------------------------------------ agents

AGENT = r'''#!/usr/bin/python3
# A lock agent: reads one JSON command per line on stdin, answers one JSON
# line on stdout. Locks go through libc (ctypes) so that the errno is
# exactly the system call's, EINTR included; "pylock" goes through Python's
# fcntl module with a signal handler that raises.
import ctypes, errno, fcntl, json, os, signal, sys, time, traceback

libc = ctypes.CDLL(None, use_errno=True)

class Flock(ctypes.Structure):
    _fields_ = [("l_type", ctypes.c_short), ("l_whence", ctypes.c_short),
                ("l_start", ctypes.c_int64), ("l_len", ctypes.c_int64),
                ("l_pid", ctypes.c_int)]

libc.fcntl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(Flock)]
libc.flock.argtypes = [ctypes.c_int, ctypes.c_int]
F_OFD_SETLK = 37
CMD = {"posix": (fcntl.F_GETLK, fcntl.F_SETLK, fcntl.F_SETLKW),
       "ofd": (36, F_OFD_SETLK, 38)}    # F_OFD_GETLK, _SETLK, _SETLKW
TYPE = {"r": fcntl.F_RDLCK, "w": fcntl.F_WRLCK, "u": fcntl.F_UNLCK}
TNAME = {v: k for k, v in TYPE.items()}
FLOCK = {"sh": fcntl.LOCK_SH, "ex": fcntl.LOCK_EX, "un": fcntl.LOCK_UN}

class Interrupted(Exception):
    pass

state = {"raise": False, "sigs": 0}

def on_signal(sig, frame):
    state["sigs"] += 1
    if state["raise"]:
        raise Interrupted()

# signal.signal installs without SA_RESTART: a blocking lock returns EINTR.
signal.signal(signal.SIGUSR1, on_signal)

def ename(e):
    return errno.errorcode.get(e, str(e))

def lock(c):
    kind, fd, t0 = c["kind"], c["fd"], time.monotonic()
    if kind == "flock":
        how = FLOCK[c["type"]]
        if not c.get("wait") and c["type"] != "un":
            how |= fcntl.LOCK_NB
        rc = libc.flock(fd, how)
    else:
        fl = Flock(TYPE[c["type"]], os.SEEK_SET, c.get("start", 0),
                   c.get("len", 0), 0)
        rc = libc.fcntl(fd, CMD[kind][2 if c.get("wait") else 1],
                        ctypes.byref(fl))
    err = ctypes.get_errno() if rc else 0
    return {"err": ename(err) if rc else None, "t": time.monotonic() - t0,
            "sigs": state["sigs"]}

def getlk(c):
    fl = Flock(TYPE[c["type"]], os.SEEK_SET, c.get("start", 0),
               c.get("len", 0), 0)
    if libc.fcntl(c["fd"], CMD[c["kind"]][0], ctypes.byref(fl)) < 0:
        return {"err": ename(ctypes.get_errno())}
    return {"err": None, "type": TNAME[fl.l_type], "start": fl.l_start,
            "len": fl.l_len, "pid": fl.l_pid}

def pylock(c):
    # Python retries EINTR unless the handler raises: this one does.
    t0 = time.monotonic()
    state["raise"] = True
    try:
        if c["kind"] == "flock":
            fcntl.flock(c["fd"], fcntl.LOCK_EX)
        else:
            fcntl.lockf(c["fd"], fcntl.LOCK_EX)
        res = "locked"
    except Interrupted:
        res = "interrupted"
    finally:
        state["raise"] = False
    return {"res": res, "t": time.monotonic() - t0}

def handle(c):
    op = c["op"]
    if op == "open":
        return {"fd": os.open(c["path"], c.get("flags", os.O_RDWR))}
    if op == "close":
        os.close(c["fd"])
        return {}
    if op == "dup":
        return {"fd": os.dup(c["fd"])}
    if op == "lock":
        return lock(c)
    if op == "getlk":
        return getlk(c)
    if op == "pylock":
        return pylock(c)
    if op == "bgwait":        # a blocking lock on a thread of its own
        import threading
        threading.Thread(target=lambda: say(dict(lock(c), tag="bg")),
                         daemon=True).start()
        return {}
    if op == "ofd_many":      # N descriptions, an OFD read lock on each
        fds, errs = [], []
        for i in range(c["n"]):
            fds.append(os.open(c["path"], os.O_RDWR))
            fl = Flock(fcntl.F_RDLCK, os.SEEK_SET, i, 1, 0)
            if libc.fcntl(fds[-1], F_OFD_SETLK, ctypes.byref(fl)) < 0:
                errs.append((i, ename(ctypes.get_errno())))
        return {"fds": fds, "errs": errs}
    if op == "close_many":
        for fd in c["fds"]:
            os.close(fd)
        return {}
    if op == "restart":       # SA_RESTART on SIGUSR1, or not
        signal.siginterrupt(signal.SIGUSR1, not c["on"])
        return {}
    if op == "exit":
        os._exit(0)
    raise ValueError(op)

def say(obj):
    os.write(1, (json.dumps(obj) + "\n").encode())

say({"ready": os.getpid()})
for line in sys.stdin:
    try:
        say(handle(json.loads(line)))
    except OSError as e:
        say({"oserr": ename(e.errno)})
    except Exception:
        say({"exc": traceback.format_exc()})
'''


def agent_exe(tmpbase, name):
    """The agent program as TMPBASE/bin/NAME: its process name is NAME."""
    assert len(name) <= 15
    d = os.path.join(tmpbase, "bin")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, name)
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(AGENT)
        os.chmod(path, 0o755)
    return path


class Agent:
    """One agent process and the pipe to it."""

    def __init__(self, exe, errpath):
        self.name = os.path.basename(exe)
        self.errpath = errpath
        with open(errpath, "w") as err:
            self.proc = subprocess.Popen([exe], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err)
        self.pid = self.proc.pid
        self.buf = b""
        assert self.recv(20) == {"ready": self.pid}

    def stderr(self):
        with open(self.errpath, errors="replace") as f:
            return f.read()

    def send(self, **cmd):
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()

    def recv(self, timeout=10):
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(
                    f"agent {self.pid}: no answer in {timeout}s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError(f"agent {self.pid} died: {self.stderr()}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        res = json.loads(line)
        assert "exc" not in res, res["exc"]
        return res

    def answered(self, timeout):
        """Whether an answer is waiting (or arrives within TIMEOUT)."""
        if b"\n" in self.buf:
            return True
        fd = self.proc.stdout.fileno()
        return bool(select.select([fd], [], [], timeout)[0])

    def call(self, timeout=10, **cmd):
        self.send(**cmd)
        return self.recv(timeout)

    def open(self, path, flags=os.O_RDWR):
        res = self.call(op="open", path=path, flags=flags)
        if "oserr" in res:
            raise OSError(getattr(errno, res["oserr"]), path)
        return res["fd"]

    def close(self, fd):
        assert self.call(op="close", fd=fd) == {}

    def lock(self, fd, kind, type, start=0, len=0, timeout=10):
        """Non-blocking lock or unlock: None, or the errno name."""
        return self.call(timeout, op="lock", fd=fd, kind=kind, type=type,
                         start=start, len=len)["err"]

    def unlock(self, fd, kind):
        assert self.lock(fd, kind, "un" if kind == "flock" else "u") is None

    def start_wait(self, fd, kind, type, start=0, len=0):
        """Starts a blocking lock; its answer comes through recv()."""
        self.send(op="lock", fd=fd, kind=kind, type=type, start=start,
                  len=len, wait=True)

    def getlk(self, fd, kind, type, start=0, len=0):
        return self.call(op="getlk", fd=fd, kind=kind, type=type,
                         start=start, len=len)

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass

    def exit(self):
        self.send(op="exit")
        self.proc.wait(10)


@pytest.fixture
def agents(make_ws, tmpbase):
    """agents(name="lkagent") -> a started Agent; agents.popen(...) for
    other child processes. Set up after make_ws, so torn down (every
    process killed by pid) before the mounts are."""
    made, procs = [], []

    def spawn(name="lkagent"):
        a = Agent(agent_exe(tmpbase, name),
                  os.path.join(tmpbase, f"agent{len(made)}.err"))
        made.append(a)
        return a

    def popen(argv, group=False, **kw):
        p = subprocess.Popen(argv, start_new_session=group, **kw)
        procs.append((p, group))
        return p

    spawn.popen = popen
    yield spawn
    for p, group in procs:
        if p.poll() is None:
            try:
                if group:
                    os.killpg(p.pid, signal.SIGKILL)   # its forked children
                else:
                    p.kill()
            except ProcessLookupError:
                pass
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            pass
        if group:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for a in made:
        a.kill()


# -------------------------------------------------------------- workspaces

def shared_src(tmpbase, name="src"):
    src = os.path.join(tmpbase, name)
    os.makedirs(src, exist_ok=True)
    os.chmod(src, 0o777)
    return src


def shared_workspaces(make_ws, src, n, common_state=False, target="/shared"):
    """N workspaces mounting SRC read-write at TARGET (one state directory
    for all with COMMON_STATE, so `wsctl locks` sees them together)."""
    out = []
    for i in range(n):
        w = make_ws(options=f"allow_other,shared={src}:{target}",
                    sub=f"s{i}", mount=False)
        if common_state and out:
            w.state = out[0].state
        w.mount()
        out.append(w)
    return out


def host_file(src, name, size=0):
    path = os.path.join(src, name)
    with open(path, "wb") as f:
        f.write(b"\0" * size)
    os.chmod(path, 0o666)
    return path


def locks_json(w, *args):
    r = w.wsctl("locks", *args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def threads(pid):
    """The daemon's threads, less libfuse's idle workers (in
    fuse_dev_do_read): the worker pool grows under load up to its maximum
    and stays, which is no leak."""
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                n += f.read().strip() != "fuse_dev_do_read"
        except FileNotFoundError:
            pass
    return n


def thread_info(pid):
    """Each thread of PID: its name and where it sleeps, for messages."""
    out = []
    for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                wchan = f.read().strip()
        except FileNotFoundError:
            continue
        out.append(f"{tid}:{comm}:{wchan}")
    return " ".join(out)


def settle_threads(pid, at_most, timeout=5.0):
    """Waits until the daemon has at most AT_MOST threads (as counted by
    threads()); returns the count."""
    deadline = time.monotonic() + timeout
    n = threads(pid)
    while n > at_most and time.monotonic() < deadline:
        time.sleep(0.05)
        n = threads(pid)
    return n


def stable_threads(pid):
    """The daemon's thread count once it stopped changing for 0.3 s."""
    last, since = threads(pid), time.monotonic()
    deadline = since + 5
    while time.monotonic() < deadline:
        time.sleep(0.05)
        n = threads(pid)
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= 0.3:
            break
    return last


def eventually(fn, timeout=2.0, step=0.01):
    """FN() until truthy or TIMEOUT; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


# ===================================================== 1. conflict matrix

# The first lock is over [0, 99]; the second overlaps it, touches it
# without overlapping, or lies far inside the first's range to end of file.
RANGES = {
    "overlap": ((0, 100), (50, 100)),
    "adjacent": ((0, 100), (100, 100)),
    "eof": ((0, 0), (5000, 10)),
}
RW = [("r", "r"), ("r", "w"), ("w", "r"), ("w", "w")]


def matrix_cells():
    cells = []
    for kind in ("posix", "ofd"):
        for t1, t2 in RW:
            for rng, ((s1, l1), (s2, l2)) in RANGES.items():
                cells.append(((kind, t1, s1, l1), (kind, t2, s2, l2), rng))
    for k1, k2 in (("posix", "ofd"), ("ofd", "posix")):
        for t1, t2 in RW:
            cells.append(((k1, t1, 0, 100), (k2, t2, 50, 100), "overlap"))
    for t1, t2 in (("sh", "sh"), ("sh", "ex"), ("ex", "sh"), ("ex", "ex")):
        cells.append((("flock", t1, 0, 0), ("flock", t2, 0, 0), "file"))
    for k in ("posix", "ofd"):
        cells.append((("flock", "ex", 0, 0), (k, "w", 0, 0), "file"))
        cells.append(((k, "w", 0, 0), ("flock", "ex", 0, 0), "file"))
    return cells


def truth(first, second, rng, same_process):
    """What Linux gives on one local file: None or EAGAIN."""
    k1, t1 = first[:2]
    k2, t2 = second[:2]
    if (k1 == "flock") != (k2 == "flock"):
        return None                    # flock and fcntl locks never meet
    if k1 == "flock":
        return "EAGAIN" if "ex" in (t1, t2) else None
    if same_process and k1 == k2 == "posix":
        return None                    # one owner never conflicts with itself
    if rng == "adjacent":
        return None
    return "EAGAIN" if "w" in (t1, t2) else None


def run_cell(a, fa, b, fb, first, second):
    assert a.lock(fa, *first) is None, (first, "first lock refused")
    got = b.lock(fb, *second)
    for ag, fd, kind in ((b, fb, second[0]), (a, fa, first[0])):
        ag.unlock(fd, kind)
    return got


def run_matrix(a, fa, b, fb):
    return {(first, second, rng): run_cell(a, fa, b, fb, first, second)
            for first, second, rng in matrix_cells()}


def test_conflict_matrix_matches_local_fs(make_ws, agents, tmpbase):
    src = shared_src(tmpbase)
    w1, w2 = shared_workspaces(make_ws, src, 2)
    host_file(src, "m", 4096)
    host_file(w1.u(), "plain", 4096)
    a, b = agents("lk-a"), agents("lk-b")

    def fds(agent, path, n=1):
        return [agent.open(path) for _ in range(n)]

    # Natively, on the backing file: two processes, and one with two fds.
    ha = fds(a, os.path.join(src, "m"))[0]
    hb = fds(b, os.path.join(src, "m"))[0]
    native = run_matrix(a, ha, b, hb)
    h1, h2 = fds(a, os.path.join(src, "m"), 2)
    native_same = run_matrix(a, h1, a, h2)
    for (first, second, rng), got in native.items():
        assert got == truth(first, second, rng, False), (first, second, rng)
    for (first, second, rng), got in native_same.items():
        assert got == truth(first, second, rng, True), (first, second, rng)

    combos = {
        "two workspaces": (a, w1.p("shared/m"), b, w2.p("shared/m"), native),
        "one workspace": (a, w1.p("shared/m"), b, w1.p("shared/m"), native),
        "one workspace, upper file": (a, w1.p("plain"), b, w1.p("plain"),
                                      native),
        "workspace and host": (a, w1.p("shared/m"), b,
                               os.path.join(src, "m"), native),
        "host and workspace": (a, os.path.join(src, "m"), b,
                               w2.p("shared/m"), native),
        "one process, two fds": (a, w1.p("shared/m"), a, w1.p("shared/m"),
                                 native_same),
    }
    diffs = []
    for label, (x, px, y, py, expect) in combos.items():
        fx, fy = x.open(px), y.open(py)
        got = run_matrix(x, fx, y, fy)
        diffs += [f"{label}: {cell}: wsfs {got[cell]}, ext4 {expect[cell]}"
                  for cell in expect if got[cell] != expect[cell]]
        x.close(fx)
        y.close(fy)
    assert not diffs, "\n".join(diffs)


# =================================== 2. host and agent exclude each other

KIND_TYPES = {"posix": ("w", "u"), "ofd": ("w", "u"), "flock": ("ex", "un")}


@pytest.mark.parametrize("kind", ["posix", "ofd", "flock"])
def test_host_and_agent_exclude_each_other(make_ws, agents, tmpbase, kind):
    src = shared_src(tmpbase)
    (w,) = shared_workspaces(make_ws, src, 1)
    host_file(src, "f", 100)
    lk, un = KIND_TYPES[kind]
    host, agent = agents("lk-host"), agents("lk-agent")
    hfd = host.open(os.path.join(src, "f"))
    afd = agent.open(w.p("shared/f"))

    # The host holds: the agent's non-blocking lock fails ...
    assert host.lock(hfd, kind, lk) is None
    assert agent.lock(afd, kind, lk) in ("EAGAIN", "EACCES")
    # ... and its blocking lock waits until the host lets go.
    agent.start_wait(afd, kind, lk)
    assert not agent.answered(0.5), "the agent's lock did not wait"
    t0 = time.monotonic()
    assert host.lock(hfd, kind, un) is None
    res = agent.recv(5)
    assert res["err"] is None
    assert time.monotonic() - t0 < 2, "the waiter took long to proceed"
    # Now the agent holds: the host is refused until it unlocks.
    assert host.lock(hfd, kind, lk) in ("EAGAIN", "EACCES")
    host.start_wait(hfd, kind, lk)
    assert not host.answered(0.3), "the host's lock did not wait"
    assert agent.lock(afd, kind, un) is None
    assert host.recv(5)["err"] is None
    assert agent.lock(afd, kind, lk) in ("EAGAIN", "EACCES")


# ================================================================ 3. F_GETLK

def test_getlk_reports_holder(make_ws, agents, tmpbase):
    src = shared_src(tmpbase)
    w1, w2 = shared_workspaces(make_ws, src, 2)
    path = host_file(src, "g", 1000)
    holder, peer, other, host = (agents("lk-holder"), agents("lk-peer"),
                                 agents("lk-other"), agents("lk-host"))
    fh = holder.open(w1.p("shared/g"))
    fp = peer.open(w1.p("shared/g"))
    fo = other.open(w2.p("shared/g"))
    fhost = host.open(path)

    assert holder.lock(fh, "posix", "w", 10, 20) is None      # [10, 29]
    assert holder.lock(fh, "posix", "r", 100, 0) is None      # [100, EOF)
    assert host.lock(fhost, "posix", "r", 60, 5) is None      # [60, 64]

    def getlk(agent, fd, type, start, len, kind="posix"):
        r = agent.getlk(fd, kind, type, start, len)
        assert r["err"] is None, r
        return r["type"], r["start"], r["len"], r["pid"]

    # Another workspace: type and range, pid 0.
    assert getlk(other, fo, "w", 0, 50) == ("w", 10, 20, 0)
    assert getlk(other, fo, "w", 100, 1) == ("r", 100, 0, 0)
    assert getlk(other, fo, "r", 0, 50)[0] == "w"
    assert getlk(other, fo, "r", 100, 10)[0] == "u", "read locks share"
    assert getlk(other, fo, "w", 30, 30)[0] == "u", "gap between the locks"
    # The same workspace: the holder's pid.
    assert getlk(peer, fp, "w", 0, 50) == ("w", 10, 20, holder.pid)
    assert getlk(peer, fp, "w", 150, 0) == ("r", 100, 0, holder.pid)
    # The holder itself sees no conflict with its own locks.
    assert getlk(holder, fh, "w", 0, 50)[0] == "u"
    assert getlk(holder, fh, "w", 100, 0)[0] == "u"
    # A host process's POSIX lock: its pid, from either workspace.
    assert getlk(other, fo, "w", 60, 1) == ("r", 60, 5, host.pid)
    assert getlk(peer, fp, "w", 62, 10) == ("r", 60, 5, host.pid)
    # OFD F_GETLK sees the same lock (the kernel reports pid -1 for OFD).
    r = other.getlk(fo, "ofd", "w", 0, 50)
    assert (r["type"], r["start"], r["len"]) == ("w", 10, 20)
    # And the host sees the agent's lock on the backing file.
    r = host.getlk(fhost, "posix", "w", 0, 50)
    assert (r["type"], r["start"], r["len"]) == ("w", 10, 20)
    # Once released, nobody reports it.
    holder.unlock(fh, "posix")
    assert getlk(other, fo, "w", 0, 50)[0] == "u"
    assert getlk(peer, fp, "w", 0, 50)[0] == "u"
    # Read locks of a host process and of an agent overlap: whichever the
    # kernel reports, its range and pid are the same lock's.
    assert holder.lock(fh, "posix", "r", 62, 10) is None      # [62, 71]
    for agent, fd in ((peer, fp), (other, fo)):
        got = getlk(agent, fd, "w", 55, 30)
        assert got in (("r", 60, 5, host.pid),
                       ("r", 62, 10, holder.pid if agent is peer else 0)), got
    host.unlock(fhost, "posix")
    assert getlk(peer, fp, "w", 55, 30) == ("r", 62, 10, holder.pid)


# =========================================================== 4. waiting

def held_across(make_ws, agents, tmpbase, kind, with_third=False):
    """Two workspaces sharing shared/f: a holder in the first holds KIND's
    exclusive lock on it; a waiter (and a third agent) have it open in the
    second. Returns them all as attributes."""
    t = types.SimpleNamespace(src=shared_src(tmpbase))
    t.w1, t.w2 = shared_workspaces(make_ws, t.src, 2)
    host_file(t.src, "f", 10)
    t.lk, t.un = KIND_TYPES[kind]
    t.holder, t.waiter = agents("lk-holder"), agents("lk-waiter")
    t.fh = t.holder.open(t.w1.p("shared/f"))
    t.fw = t.waiter.open(t.w2.p("shared/f"))
    if with_third:
        t.third = agents("lk-third")
        t.f3 = t.third.open(t.w2.p("shared/f"))
    assert t.holder.lock(t.fh, kind, t.lk) is None
    return t

@pytest.mark.parametrize("kind", ["posix", "ofd", "flock"])
def test_wait_then_proceed(make_ws, agents, tmpbase, kind):
    t = held_across(make_ws, agents, tmpbase, kind)
    lk, un = t.lk, t.un
    holder, waiter, fh, fw = t.holder, t.waiter, t.fh, t.fw
    waiter.start_wait(fw, kind, lk)
    hold = 1.0
    time.sleep(hold)
    assert not waiter.answered(0), "the waiter got the lock while held"
    assert holder.lock(fh, kind, un) is None
    res = waiter.recv(5)
    assert res["err"] is None
    assert hold - 0.05 <= res["t"] < hold + 1.5, res
    assert holder.lock(fh, kind, lk) == "EAGAIN", "the waiter holds it now"


def waiting_rows(w):
    return [r for r in locks_json(w) if r["state"] == "waiting"]


@pytest.mark.parametrize("kind,how", [("posix", "ctypes"), ("ofd", "ctypes"),
                                      ("flock", "ctypes"), ("posix", "raise"),
                                      ("flock", "raise")])
def test_wait_interrupted_by_signal(make_ws, agents, tmpbase, kind, how):
    t = held_across(make_ws, agents, tmpbase, kind, with_third=True)
    w2, lk, un = t.w2, t.lk, t.un
    holder, waiter, third, fh, fw, f3 = (t.holder, t.waiter, t.third, t.fh,
                                         t.fw, t.f3)
    if how == "ctypes":
        waiter.start_wait(fw, kind, lk)
    else:
        waiter.send(op="pylock", fd=fw, kind=kind)
    assert eventually(lambda: waiting_rows(w2), 5), "no waiter listed"
    t0 = time.monotonic()
    os.kill(waiter.pid, signal.SIGUSR1)
    res = waiter.recv(5)
    elapsed = time.monotonic() - t0
    assert elapsed < 2, f"EINTR took {elapsed:.2f}s"
    if how == "ctypes":
        assert res["err"] == "EINTR" and res["sigs"] == 1, res
    else:
        assert res["res"] == "interrupted", res
    # The interrupted waiter waits no more and holds nothing.
    assert waiting_rows(w2) == []
    assert holder.lock(fh, kind, un) is None
    assert third.lock(f3, kind, lk) is None, "the interrupted waiter took it"
    rows = locks_json(w2)
    assert [(r["pid"], r["state"]) for r in rows] == [(third.pid, "held")]
    assert waiter.lock(fw, kind, lk) == "EAGAIN"


@pytest.mark.parametrize("kind", ["posix", "flock"])
def test_wait_restarts_with_sa_restart(make_ws, agents, tmpbase, kind):
    t = held_across(make_ws, agents, tmpbase, kind)
    w2, lk, un = t.w2, t.lk, t.un
    holder, waiter, fh, fw = t.holder, t.waiter, t.fh, t.fw
    waiter.call(op="restart", on=True)
    waiter.start_wait(fw, kind, lk)
    assert eventually(lambda: waiting_rows(w2), 5)
    os.kill(waiter.pid, signal.SIGUSR1)
    assert not waiter.answered(0.5), "SA_RESTART: the wait must go on"
    assert eventually(lambda: waiting_rows(w2), 2), "the restarted wait"
    assert holder.lock(fh, kind, un) is None
    res = waiter.recv(5)
    assert res["err"] is None and res["sigs"] == 1, res


@pytest.mark.parametrize("kind", ["posix", "ofd", "flock"])
def test_killed_waiter_leaks_nothing(make_ws, agents, tmpbase, kind):
    t = held_across(make_ws, agents, tmpbase, kind, with_third=True)
    src, w2, lk, un = t.src, t.w2, t.lk, t.un
    holder, waiter, third, fh, fw, f3 = (t.holder, t.waiter, t.third, t.fh,
                                         t.fw, t.f3)
    assert third.lock(f3, kind, lk) == "EAGAIN"    # warms w2 up
    # and a grant on a shared file starts w2's delivery thread, for good
    host_file(src, "g", 10)
    fg = third.open(w2.p("shared/g"))
    assert third.lock(fg, kind, lk) is None
    assert third.lock(fg, kind, un) is None
    before = stable_threads(w2.pid)
    waiter.start_wait(fw, kind, lk)
    assert eventually(lambda: waiting_rows(w2), 5)
    assert threads(w2.pid) >= before + 1, "the wait has no thread of its own"
    os.kill(waiter.pid, signal.SIGKILL)
    try:
        waiter.proc.wait(5)
    except subprocess.TimeoutExpired:
        pytest.fail("the killed waiter did not exit (its wait goes on)")
    assert eventually(lambda: waiting_rows(w2) == [], 2), waiting_rows(w2)
    assert holder.lock(fh, kind, un) is None
    assert third.lock(f3, kind, lk) is None, "the killed waiter's lock leaked"
    after = settle_threads(w2.pid, before)
    assert after <= before, \
        f"daemon threads: {before} before, {after} after: " \
        f"{thread_info(w2.pid)}"


# ====================================================== 5. many waiters

FARM = r'''
import fcntl, os, struct, sys, time
path, n = sys.argv[1], int(sys.argv[2])
kids = []
for i in range(n):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fd = os.open(path, os.O_RDWR)
            kind = "flock" if i % 2 else "posix"
            if kind == "flock":
                fcntl.flock(fd, fcntl.LOCK_EX)
            else:
                fcntl.fcntl(fd, fcntl.F_SETLKW,
                            struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))
            t0 = time.monotonic()
            time.sleep(0.002)
            t1 = time.monotonic()
            if kind == "flock":
                fcntl.flock(fd, fcntl.LOCK_UN)
            else:
                fcntl.fcntl(fd, fcntl.F_SETLK,
                            struct.pack("hhqqi", fcntl.F_UNLCK, 0, 0, 0, 0))
            os.close(fd)
            os.write(1, f"got {i} {kind} {t0} {t1}\n".encode())
            code = 0
        except BaseException as e:
            os.write(2, f"{i}: {e!r}\n".encode())
        os._exit(code)
    kids.append(pid)
bad = 0
for pid in kids:
    bad += os.waitpid(pid, 0)[1] != 0
os.write(1, f"done {bad}\n".encode())
'''


def test_fifty_waiters_stall_nothing(make_ws, agents, tmpbase):
    n = 50
    src = shared_src(tmpbase)
    (w,) = shared_workspaces(make_ws, src, 1)
    host_file(src, "f", 10)
    holder = agents("lk-holder")
    fh = holder.open(w.p("shared/f"))
    assert holder.lock(fh, "posix", "w") is None
    assert holder.lock(fh, "flock", "ex") is None
    before = stable_threads(w.pid)
    with open(os.path.join(tmpbase, "farm.err"), "w") as err:
        farm = agents.popen([PY, "-c", FARM, w.p("shared/f"), str(n)],
                            group=True, stdout=subprocess.PIPE, stderr=err)
    rows = eventually(lambda: len(waiting_rows(w)) == n and waiting_rows(w),
                      20, 0.1)
    assert rows, f"{len(waiting_rows(w))} of {n} waiters listed"
    assert sorted((r["kind"], r["type"]) for r in rows) == \
        [("fcntl", "write")] * (n // 2) + [("flock", "exclusive")] * (n // 2)
    assert threads(w.pid) >= before + n
    # Unrelated requests of the same workspace answer at once.
    for i in range(3):
        t0 = time.monotonic()
        os.stat(w.p())
        os.stat(w.p("shared"))
        with open(w.p(f"note{i}"), "w") as f:
            f.write("hello")
        with open(w.p(f"note{i}")) as f:
            assert f.read() == "hello"
        with open(w.p("shared", f"note{i}"), "w") as f:
            f.write("shared hello")
        assert os.listdir(w.p("shared"))
        took = time.monotonic() - t0
        assert took < 1, f"requests took {took:.2f}s behind {n} waiters"
    assert w.wsctl("status", w.name).returncode == 0
    # Release: every waiter takes the lock in turn and exits.
    holder.unlock(fh, "posix")
    holder.unlock(fh, "flock")
    out, deadline = b"", time.monotonic() + 30
    fd = farm.stdout.fileno()
    while b"done" not in out and time.monotonic() < deadline:
        if select.select([fd], [], [], 1)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
    lines = out.decode().splitlines()
    with open(os.path.join(tmpbase, "farm.err")) as f:
        assert lines and lines[-1] == "done 0", f.read()[-2000:]
    got = [l.split() for l in lines if l.startswith("got ")]
    assert sorted(int(g[1]) for g in got) == list(range(n))
    for kind in ("posix", "flock"):
        spans = sorted((float(g[3]), float(g[4])) for g in got if g[2] == kind)
        assert len(spans) == n // 2
        for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
            assert s1 >= e0, f"{kind}: two waiters held the lock at once"
    farm.wait(10)
    assert waiting_rows(w) == []
    assert holder.lock(fh, "posix", "w") is None
    assert holder.lock(fh, "flock", "ex") is None
    after = settle_threads(w.pid, before)
    assert after <= before, \
        f"daemon threads: {before} before, {after} after: {thread_info(w.pid)}"


# ======================================================= 6. counters

COUNTER = r'''
import errno, fcntl, os, struct, sys
path, n, mode, nrec, idx = (sys.argv[1], int(sys.argv[2]), sys.argv[3],
                            int(sys.argv[4]), int(sys.argv[5]))
W = 16
fd = os.open(path, os.O_RDWR)
print("ready", flush=True)
sys.stdin.read(1)
busy = 0
for i in range(n):
    # Try without waiting first, so that both the refusal and the wait
    # are exercised, and count how often the lock was taken by another.
    k = (i + idx) % nrec
    rng = struct.pack("hhqqi", fcntl.F_WRLCK, 0, k * W, W, 0)
    try:
        if mode == "flock":
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            fcntl.fcntl(fd, fcntl.F_SETLK, rng)
    except OSError as e:
        assert e.errno in (errno.EAGAIN, errno.EACCES), e
        busy += 1
        if mode == "flock":
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            fcntl.fcntl(fd, fcntl.F_SETLKW, rng)
    at = 0 if mode == "flock" else k * W
    v = int(os.pread(fd, W, at))
    assert os.pwrite(fd, b"%15d\n" % (v + 1), at) == W
    if mode == "flock":
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        fcntl.fcntl(fd, fcntl.F_SETLK,
                    struct.pack("hhqqi", fcntl.F_UNLCK, 0, k * W, W, 0))
os.close(fd)
print("done", busy)
'''


def run_counters(agents, tmpbase, paths, n, mode, nrec):
    """Runs one COUNTER per path, all at once; returns how many of their
    locks were found taken."""
    procs = []
    for idx, path in enumerate(paths):
        err = open(os.path.join(tmpbase, f"counter{idx}.err"), "w")
        procs.append(agents.popen(
            [PY, "-c", COUNTER, path, str(n), mode, str(nrec), str(idx)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
            text=True))
        err.close()
    for p in procs:                     # all ready, then all go
        assert p.stdout.readline() == "ready\n"
    for p in procs:
        p.stdin.write("g")
        p.stdin.flush()
    deadline, busy = time.monotonic() + 120, 0
    for idx, p in enumerate(procs):
        try:
            out, _ = p.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"counter {idx} did not finish")
        with open(os.path.join(tmpbase, f"counter{idx}.err")) as f:
            assert p.returncode == 0 and out.startswith("done "), f.read()
        busy += int(out.split()[1])
    return busy


@pytest.mark.parametrize("mode", ["flock", "fcntl"])
def test_counter_across_three_workspaces(make_ws, agents, tmpbase, mode):
    n, nrec, W = 1000, 4, 16
    src = shared_src(tmpbase)
    wss = shared_workspaces(make_ws, src, 3)
    with open(os.path.join(src, "counter"), "wb") as f:
        f.write((b"%15d\n" % 0) * nrec)
    paths = [w.p("shared/counter") for w in wss for _ in range(2)]
    t0 = time.monotonic()
    busy = run_counters(agents, tmpbase, paths, n, mode, nrec)
    took = time.monotonic() - t0
    assert busy > 0, "the counters never contended"
    with open(os.path.join(src, "counter"), "rb") as f:
        data = f.read()
    counts = [int(data[i * W:(i + 1) * W]) for i in range(nrec)]
    if mode == "flock":
        assert counts[0] == n * len(paths), (counts, took, busy)
    else:
        assert counts == [n * len(paths) // nrec] * nrec, (counts, took, busy)
    # Every workspace reads the final value, not a cached one.
    for w in wss:
        with open(w.p("shared/counter"), "rb") as f:
            assert f.read() == data


# ========================================================= 7. SQLite

SQLITE_WRITER = r'''
import sqlite3, sys
path, n = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path, timeout=60, isolation_level=None)
mode = db.execute("PRAGMA journal_mode").fetchone()[0]
assert mode == "delete", mode
for i in range(n):
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE t SET n = n + 1")
        db.execute("COMMIT")
    except sqlite3.Error as e:
        sys.exit(f"transaction {i}: {e} ({e.sqlite_errorname})")
db.close()
print("done")
'''


def test_sqlite_through_two_workspaces(make_ws, agents, tmpbase):
    n, per_ws = 200, 2
    src = shared_src(tmpbase)
    w1, w2 = shared_workspaces(make_ws, src, 2)
    db = sqlite3.connect(os.path.join(src, "db.sqlite"))
    db.execute("CREATE TABLE t (n INTEGER)")
    db.execute("INSERT INTO t VALUES (0)")
    db.commit()
    db.close()
    procs = []
    for w in (w1, w2):
        for i in range(per_ws):
            err = open(os.path.join(tmpbase, f"sql-{w.name}-{i}.err"), "w")
            procs.append((agents.popen(
                [PY, "-c", SQLITE_WRITER, w.p("shared/db.sqlite"), str(n)],
                stdout=subprocess.PIPE, stderr=err, text=True), err.name))
            err.close()
    deadline = time.monotonic() + 120
    for p, errname in procs:
        try:
            out, _ = p.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail("an SQLite writer did not finish")
        with open(errname) as f:
            assert p.returncode == 0 and out == "done\n", f.read()
    for path in (os.path.join(src, "db.sqlite"), w1.p("shared/db.sqlite"),
                 w2.p("shared/db.sqlite")):
        db = sqlite3.connect(path)
        try:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert db.execute("SELECT n FROM t").fetchall() == \
                [(n * per_ws * 2,)]
        finally:
            db.close()
    assert not os.path.exists(os.path.join(src, "db.sqlite-journal"))


# ===================================================== 8. release rules

def held_by_someone(agent, fd, kind):
    """Whether AGENT's non-blocking write lock is refused; leaves nothing."""
    lk, un = KIND_TYPES[kind]
    err = agent.lock(fd, kind, lk)
    if err is None:
        agent.lock(fd, kind, un)
        return False
    assert err == "EAGAIN", err
    return True


@pytest.mark.parametrize("where", ["shared", "upper"])
def test_posix_lock_dropped_by_any_close(make_ws, agents, tmpbase, where):
    src = shared_src(tmpbase)
    (w,) = shared_workspaces(make_ws, src, 1)
    if where == "shared":
        host_file(src, "f", 10)
        path = w.p("shared/f")
    else:
        host_file(w.u(), "f", 10)
        path = w.p("f")
    owner, other = agents("lk-owner"), agents("lk-other")
    fo = other.open(path)
    f1 = owner.open(path)
    assert owner.lock(f1, "posix", "r", 0, 1) is None
    assert owner.lock(f1, "posix", "w", 5, 5) is None
    f2 = owner.open(path)   # after the first lock: its close reaches wsfs
    assert held_by_someone(other, fo, "posix")
    owner.close(f2)       # never locked through: the locks go all the same
    assert not held_by_someone(other, fo, "posix")
    assert owner.lock(f1, "posix", "w", 5, 5) is None, "f1 still works"
    assert held_by_someone(other, fo, "posix")
    owner.close(f1)
    if where == "shared":
        assert not held_by_someone(other, fo, "posix")
    else:
        # f1 was opened before any lock (noflush): its RELEASE, which the
        # kernel sends in the background, drops what was locked through it.
        assert eventually(lambda: not held_by_someone(other, fo, "posix"))
    assert not any(r["kind"] == "fcntl" for r in locks_json(w))


def test_posix_lock_dropped_by_close_of_fd_opened_before(make_ws, agents,
                                                         tmpbase):
    """In a shared directory every close reaches the daemon, so a
    descriptor opened before the file had any lock drops it too."""
    src = shared_src(tmpbase)
    (w,) = shared_workspaces(make_ws, src, 1)
    host_file(src, "f", 10)
    owner, other = agents("lk-owner"), agents("lk-other")
    f1, f2 = owner.open(w.p("shared/f")), owner.open(w.p("shared/f"))
    fo = other.open(w.p("shared/f"))
    assert owner.lock(f2, "posix", "w") is None
    assert held_by_someone(other, fo, "posix")
    owner.close(f1)
    assert not held_by_someone(other, fo, "posix")


@pytest.mark.xfail(strict=True, reason="outside shared directories, a "
                   "descriptor opened before the file's first lock has "
                   "noflush, so its close cannot drop the owner's locks")
def test_upper_posix_lock_dropped_by_close_of_fd_opened_before(make_ws, agents,
                                                               tmpbase):
    w = make_ws(sub="u0")
    host_file(w.u(), "f", 10)
    owner, other = agents("lk-owner"), agents("lk-other")
    f1, f2 = owner.open(w.p("f")), owner.open(w.p("f"))
    fo = other.open(w.p("f"))
    assert owner.lock(f2, "posix", "w") is None
    assert held_by_someone(other, fo, "posix")
    owner.close(f1)
    assert not held_by_someone(other, fo, "posix")


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_locks_dropped_at_process_exit(make_ws, agents, tmpbase, how):
    src = shared_src(tmpbase)
    w1, w2 = shared_workspaces(make_ws, src, 2)
    for name in ("p", "o", "f"):
        host_file(src, name, 10)
    owner, other = agents("lk-owner"), agents("lk-other")
    fds = {k: owner.open(w1.p("shared", name))
           for k, name in (("posix", "p"), ("ofd", "o"), ("flock", "f"))}
    theirs = {k: other.open(w2.p("shared", name))
              for k, name in (("posix", "p"), ("ofd", "o"), ("flock", "f"))}
    for kind, fd in fds.items():
        assert owner.lock(fd, kind, KIND_TYPES[kind][0]) is None
        assert held_by_someone(other, theirs[kind], kind)
    if how == "exit":
        owner.exit()
    else:
        owner.kill()
    # POSIX locks go with the exit's FLUSH, before the exit completes; OFD
    # and flock locks with the RELEASE the kernel sends in the background
    # after the last close.
    assert not held_by_someone(other, theirs["posix"], "posix")
    for kind in ("ofd", "flock"):
        assert eventually(
            lambda: not held_by_someone(other, theirs[kind], kind), 2), kind
    assert locks_json(w1) == []


def test_ofd_lock_belongs_to_its_description(make_ws, agents, tmpbase):
    src = shared_src(tmpbase)
    w1, w2 = shared_workspaces(make_ws, src, 2)
    host_file(src, "f", 10)
    owner, other = agents("lk-owner"), agents("lk-other")
    fo = other.open(w2.p("shared/f"))
    f1, f2 = owner.open(w1.p("shared/f")), owner.open(w1.p("shared/f"))
    assert owner.lock(f1, "ofd", "w") is None
    f1b = owner.call(op="dup", fd=f1)["fd"]
    assert held_by_someone(other, fo, "ofd")
    assert held_by_someone(other, fo, "posix")
    owner.close(f2)                       # another description: no effect
    assert held_by_someone(other, fo, "ofd")
    owner.close(f1)                       # a dup still holds the description
    time.sleep(0.2)
    assert held_by_someone(other, fo, "ofd")
    owner.close(f1b)
    assert eventually(lambda: not held_by_someone(other, fo, "ofd"), 2)
    assert locks_json(w1) == []


def test_flock_goes_with_last_dup(make_ws, agents, tmpbase):
    src = shared_src(tmpbase)
    w1, w2 = shared_workspaces(make_ws, src, 2)
    host_file(src, "f", 10)
    owner, other = agents("lk-owner"), agents("lk-other")
    fo = other.open(w2.p("shared/f"))
    f1 = owner.open(w1.p("shared/f"))
    f2 = owner.open(w1.p("shared/f"))
    assert owner.lock(f1, "flock", "ex") is None
    f1b = owner.call(op="dup", fd=f1)["fd"]
    assert owner.lock(f2, "flock", "sh") == "EAGAIN", "another description"
    owner.close(f2)
    owner.close(f1)
    time.sleep(0.2)
    assert held_by_someone(other, fo, "flock"), "the dup keeps the flock"
    # A dup shares the lock: unlocking through it converts it for both.
    assert owner.lock(f1b, "flock", "sh") is None
    assert other.lock(fo, "flock", "sh") is None
    assert other.lock(fo, "flock", "un") is None
    assert owner.lock(f1b, "flock", "ex") is None
    owner.close(f1b)
    assert eventually(lambda: not held_by_someone(other, fo, "flock"), 2)
    assert locks_json(w1) == []


# ============================================== 9. the daemon dies holding

def test_daemon_killed_releases_everything(make_ws, agents, tmpbase):
    src = shared_src(tmpbase)
    w1, w2 = shared_workspaces(make_ws, src, 2, common_state=True)
    names = {"posix": "p", "ofd": "o", "flock": "f"}
    for name in names.values():
        host_file(src, name, 10)
    owner, peer = agents("lk-owner"), agents("lk-peer")
    host = agents("lk-host")
    waiter = agents("lk-waiter")
    mine = {k: owner.open(w1.p("shared", n)) for k, n in names.items()}
    theirs = {k: peer.open(w2.p("shared", n)) for k, n in names.items()}
    hosts = {k: host.open(os.path.join(src, n)) for k, n in names.items()}
    for kind, fd in mine.items():
        assert owner.lock(fd, kind, KIND_TYPES[kind][0]) is None
        assert held_by_someone(peer, theirs[kind], kind)
        assert held_by_someone(host, hosts[kind], kind)
    # One more agent of w1 waiting for the peer's lock when it dies.
    host_file(src, "q", 10)
    fq = waiter.open(w1.p("shared/q"))
    fpq = peer.open(w2.p("shared/q"))
    assert peer.lock(fpq, "posix", "w") is None
    waiter.start_wait(fq, "posix", "w")
    assert eventually(lambda: waiting_rows(w1), 5)

    w1.kill()
    assert w1.wait_exit(10), "the daemon did not die"
    for kind in names:
        lk, un = KIND_TYPES[kind]
        assert host.lock(hosts[kind], kind, lk) is None, kind
        assert host.lock(hosts[kind], kind, un) is None
        assert peer.lock(theirs[kind], kind, lk) is None, kind
    assert waiter.recv(5)["err"] is not None     # ENOTCONN or the like
    assert peer.lock(fpq, "posix", "u") is None
    assert host.lock(host.open(os.path.join(src, "q")), "posix", "w") is None
    # wsctl lists the live workspace and says the dead one is not running.
    rows = locks_json(w2)
    assert {(r["workspace"], r["path"]) for r in rows} == \
        {(w2.name, "/shared/" + n) for n in ("p", "o", "f")}
    r = w2.wsctl("locks", w1.name)
    assert r.returncode == 6 and "not running" in r.stderr, r


# ========================================================= 10. wsctl locks

def test_wsctl_locks_lists_and_refuses(make_ws, agents, tmpbase):
    src = shared_src(tmpbase)
    w1, w2 = shared_workspaces(make_ws, src, 2, common_state=True)
    host_file(src, "f", 1000)
    host_file(src, "g", 10)
    holder, flocker, waiter = (agents("lk-holder"), agents("lk-flocker"),
                               agents("lk-waiter"))
    t0 = time.time_ns()
    fh = holder.open(w1.p("shared/f"))
    assert holder.lock(fh, "posix", "w", 100, 100) is None     # 100-199
    assert holder.lock(fh, "posix", "r", 300, 0) is None       # 300-EOF
    fof = holder.open(w1.p("shared/f"))
    assert holder.lock(fof, "ofd", "r", 0, 10) is None          # 0-9
    fg = flocker.open(w2.p("shared/g"))
    assert flocker.lock(fg, "flock", "sh") is None
    fw = waiter.open(w2.p("shared/f"))
    waiter.start_wait(fw, "posix", "w", 150, 10)
    assert eventually(lambda: waiting_rows(w2), 5)
    t1 = time.time_ns()

    rows = locks_json(w1)
    for r in rows:
        assert t0 <= r["since_ns"] <= t1, r
        del r["since_ns"]
    a, b = sorted([w1.name, w2.name])

    def row(ws, path, state, kind, type, start, end, agent):
        return {"workspace": ws, "path": path, "state": state, "kind": kind,
                "type": type, "start": start, "end": end, "pid": agent.pid,
                "command": agent.name}
    mine = [row(w1.name, "/shared/f", "held", "fcntl", "read", 0, 9, holder),
            row(w1.name, "/shared/f", "held", "fcntl", "write", 100, 199,
                holder),
            row(w1.name, "/shared/f", "held", "fcntl", "read", 300, None,
                holder)]
    theirs = [row(w2.name, "/shared/f", "waiting", "fcntl", "write", 150, 159,
                  waiter),
              row(w2.name, "/shared/g", "held", "flock", "shared", 0, None,
                  flocker)]
    expect = mine + theirs if a == w1.name else theirs + mine
    assert rows == expect
    assert [r for r in locks_json(w1, w1.name)] and \
        all(r["workspace"] == w1.name for r in locks_json(w1, w1.name))
    only2 = locks_json(w1, w2.name)
    for r in only2:
        del r["since_ns"]
    assert only2 == theirs

    # The table: header, one row per lock, the same facts.
    r = w1.wsctl("locks")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["WORKSPACE", "PATH", "KIND", "TYPE", "RANGE",
                                "PID", "COMMAND", "SINCE", "STATE"]
    assert len(lines) == 1 + len(expect)
    table = [l.split() for l in lines[1:]]
    for cells, e in zip(table, expect):
        rng = f"{e['start']}-{'EOF' if e['end'] is None else e['end']}"
        assert cells[:7] == [e["workspace"], e["path"], e["kind"], e["type"],
                             rng, str(e["pid"]), e["command"]], cells
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", cells[7]) and \
            re.fullmatch(r"\d\d:\d\d:\d\d", cells[8]), cells
        assert cells[9] == e["state"]
    since = locks_json(w1)[0]["since_ns"]
    assert " ".join(table[0][7:9]) == \
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since // 10**9))
    r = w1.wsctl("locks", w2.name)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 3, r.stdout

    # wsctl status counts them.
    def counts(w):
        out = w.wsctl("status", w.name).stdout
        return (int(re.search(r"locks\.held:\s+(\d+)", out).group(1)),
                int(re.search(r"locks\.waiting:\s+(\d+)", out).group(1)))
    assert counts(w1) == (3, 0)
    assert counts(w2) == (1, 1)

    # Releases show at once; the waiter becomes a holder.
    holder.unlock(fh, "posix")
    assert waiter.recv(5)["err"] is None
    rows = locks_json(w1)
    assert [(r["workspace"], r["state"], r["kind"], r["pid"], r["start"])
            for r in rows if r["path"] == "/shared/f"] == sorted(
        [(w1.name, "held", "fcntl", holder.pid, 0),
         (w2.name, "held", "fcntl", waiter.pid, 150)])
    assert counts(w2) == (2, 0)

    # Bad input.
    r = w1.wsctl("locks", "nosuchws")
    assert r.returncode == 3 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "nosuchws" in r.stderr
    r = w1.wsctl("locks", "nosuchws", "--json")
    assert r.returncode == 3
    assert len(r.stderr.strip().splitlines()) == 1
    r = w1.wsctl("locks", "bad/name")
    assert r.returncode == 2 and "bad/name" in r.stderr, r.stderr
    r = w1.wsctl("locks", "--bogus")
    assert r.returncode == 2 and r.stdout == "", r.stderr
    r = w1.wsctl("locks", w1.name, w2.name)
    assert r.returncode == 2, r


def test_wsctl_locks_empty(make_ws):
    w = make_ws()
    r = w.wsctl("locks")
    assert r.returncode == 0
    assert r.stdout.split() == ["WORKSPACE", "PATH", "KIND", "TYPE", "RANGE",
                                "PID", "COMMAND", "SINCE", "STATE"]
    assert locks_json(w) == [] and locks_json(w, w.name) == []


# ========================================= 11. read-only input layers

def test_locks_in_read_only_layer(make_ws, agents, tmpbase):
    src = shared_src(tmpbase, "input")
    path = host_file(src, "data", 100)
    os.chmod(path, 0o644)
    w1 = make_ws(options=f"allow_other,layer={src}:/in", sub="l1")
    w2 = make_ws(options=f"allow_other,layer={src}:/in", sub="l2")
    a, b, host = agents("lk-a"), agents("lk-b"), agents("lk-host")
    fa = a.open(w1.p("in/data"), os.O_RDONLY)
    fb = b.open(w2.p("in/data"), os.O_RDONLY)
    fh = host.open(path)
    with pytest.raises(OSError) as e:
        a.open(w1.p("in/data"), os.O_RDWR)
    assert e.value.errno == errno.EROFS
    # Read locks share across workspaces and exclude a host writer.
    assert a.lock(fa, "posix", "r", 0, 10) is None
    assert b.lock(fb, "posix", "r", 5, 10) is None
    r = b.getlk(fb, "posix", "w", 0, 1)
    assert (r["type"], r["start"], r["len"], r["pid"]) == ("r", 0, 10, 0)
    assert b.lock(fb, "ofd", "r", 0, 0) is None
    assert host.lock(fh, "posix", "w", 8, 1) == "EAGAIN"
    assert host.lock(fh, "posix", "w", 50, 1) == "EAGAIN"    # b's OFD lock
    # A write lock needs a writable descriptor, which the agent cannot have.
    assert a.lock(fa, "posix", "w", 20, 1) == "EBADF"
    assert a.lock(fa, "ofd", "w", 20, 1) == "EBADF"
    b.unlock(fb, "posix")
    b.unlock(fb, "ofd")
    a.unlock(fa, "posix")
    assert host.lock(fh, "posix", "w", 0, 0) is None
    assert a.lock(fa, "posix", "r", 0, 10) == "EAGAIN"
    host.unlock(fh, "posix")
    # flock needs no write access: it works and conflicts across both.
    assert a.lock(fa, "flock", "ex") is None
    assert b.lock(fb, "flock", "sh") == "EAGAIN"
    assert host.lock(fh, "flock", "sh") == "EAGAIN"
    b.start_wait(fb, "flock", "sh")
    assert not b.answered(0.3)
    a.unlock(fa, "flock")
    assert b.recv(5)["err"] is None
    assert host.lock(fh, "flock", "sh") is None
    assert a.lock(fa, "flock", "ex") == "EAGAIN"
    rows = locks_json(w2)
    assert [(r["path"], r["kind"], r["type"]) for r in rows] == \
        [("/in/data", "flock", "shared")]


# ================================================ more: mirrors and edges

def proc_locks(path):
    """The kernel's locks on PATH's inode: [(class, type, start, end)]."""
    st = os.stat(path)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    out = []
    with open("/proc/locks") as f:
        for line in f:
            fields = line.split()
            if "->" in fields or fields[5] != dev:
                continue
            out.append((fields[1], fields[3].lower(), int(fields[6]),
                        None if fields[7] == "EOF" else int(fields[7])))
    return sorted(out, key=lambda x: x[2])


def test_listed_ranges_follow_the_kernel(make_ws, agents, tmpbase):
    """An owner's listed ranges (lockset.c) equal what the kernel holds on
    its description after every lock, unlock, split and merge."""
    import random
    src = shared_src(tmpbase)
    (w,) = shared_workspaces(make_ws, src, 1)
    path = host_file(src, "r", 10)
    owner = agents("lk-owner")
    fd = owner.open(w.p("shared/r"))
    rnd = random.Random(1234)
    for i in range(120):
        t = rnd.choice("rwu")
        start = rnd.randrange(0, 200)
        ln = rnd.choice([0, 1, 2, 5, 10, 30, 60])
        assert owner.lock(fd, "posix", t, start, ln) is None
        kernel = [(ty, st, en) for cls, ty, st, en in proc_locks(path)]
        assert all(cls == "OFDLCK" for cls, *_ in proc_locks(path))
        listed = [({"write": "write", "read": "read"}[r["type"]], r["start"],
                   r["end"]) for r in locks_json(w) if r["kind"] == "fcntl"]
        assert listed == kernel, (i, t, start, ln)
    owner.unlock(fd, "posix")
    assert proc_locks(path) == [] and locks_json(w) == []


def test_flock_failed_conversion_drops_the_old_lock(make_ws, agents, tmpbase):
    """Linux drops a flock before converting it, so a refused conversion
    leaves nothing held: the same through wsfs, and in the listing."""
    src = shared_src(tmpbase)
    w1, w2 = shared_workspaces(make_ws, src, 2)
    host_file(src, "c", 10)
    a, b, c = agents("lk-a"), agents("lk-b"), agents("lk-c")

    def run(pa, pb, pc):
        fa, fb, fc = a.open(pa), b.open(pb), c.open(pc)
        out = [a.lock(fa, "flock", "sh"), b.lock(fb, "flock", "sh"),
               a.lock(fa, "flock", "ex"),        # refused: b shares it
               c.lock(fc, "flock", "sh")]
        b.unlock(fb, "flock")
        out.append(c.lock(fc, "flock", "un"))
        out.append(b.lock(fb, "flock", "ex"))    # a holds nothing any more
        for ag, fd in ((a, fa), (b, fb), (c, fc)):
            ag.close(fd)
        return out
    native = run(*[os.path.join(src, "c")] * 3)
    assert native == [None, None, "EAGAIN", None, None, None]
    time.sleep(0.1)
    assert run(w1.p("shared/c"), w2.p("shared/c"), w1.p("shared/c")) == native
    a2 = agents("lk-a2")
    f1, f2 = a2.open(w1.p("shared/c")), a2.open(w1.p("shared/c"))
    assert a2.lock(f1, "flock", "sh") is None
    assert a2.lock(f2, "flock", "sh") is None
    assert a2.lock(f1, "flock", "ex") == "EAGAIN"
    assert [(r["type"], r["pid"]) for r in locks_json(w1)] == \
        [("shared", a2.pid)]


def test_odd_names_listed_exactly(make_ws, agents, tmpbase):
    src = shared_src(tmpbase)
    (w,) = shared_workspaces(make_ws, src, 1)
    name = "sp ace\ttab\nnl \u00e9"
    host_file(src, name, 10)
    a = agents("lk odd\u00e9")
    fd = a.open(w.p("shared", name))
    assert a.lock(fd, "posix", "w", 1, 2) is None
    rows = locks_json(w)
    assert [(r["path"], r["command"], r["start"], r["end"]) for r in rows] \
        == [("/shared/" + name, "lk odd\u00e9", 1, 2)]
    r = w.wsctl("locks")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2, r.stdout


def test_sigterm_ends_waits_and_exits(make_ws, agents, tmpbase):
    """A daemon told to stop while agents wait for locks ends the waits and
    exits; the host can lock everything at once afterwards."""
    src = shared_src(tmpbase)
    w1, w2 = shared_workspaces(make_ws, src, 2)
    host_file(src, "f", 10)
    host_file(src, "g", 10)
    holder, host = agents("lk-holder"), agents("lk-host")
    waiters = [agents(f"lk-wait{i}") for i in range(4)]
    fh = holder.open(w2.p("shared/f"))
    assert holder.lock(fh, "posix", "w") is None
    assert holder.lock(fh, "flock", "ex") is None
    fg = waiters[0].open(w1.p("shared/g"))
    assert waiters[0].lock(fg, "ofd", "w", 0, 1) is None       # held too
    for i, wt in enumerate(waiters):
        fd = wt.open(w1.p("shared/f"))
        wt.start_wait(fd, "flock" if i % 2 else "posix",
                      "ex" if i % 2 else "w")
    assert eventually(lambda: len(waiting_rows(w1)) == 4, 5)
    os.kill(w1.pid, signal.SIGTERM)
    for wt in waiters:
        assert wt.recv(10)["err"] is not None
    assert w1.wait_exit(10), "the daemon did not exit"
    hg = host.open(os.path.join(src, "g"))
    assert host.lock(hg, "ofd", "w", 0, 1) is None
    hf = host.open(os.path.join(src, "f"))
    holder.unlock(fh, "posix")
    holder.unlock(fh, "flock")
    assert host.lock(hf, "posix", "w") is None
    assert host.lock(hf, "flock", "ex") is None


def test_owner_budget_ends_in_enolck(make_ws, agents, tmpbase):
    """Each fcntl lock owner holds a descriptor in the daemon; past 4,096
    a new owner's lock fails with ENOLCK, and closing gives them back."""
    src = shared_src(tmpbase)
    (w,) = shared_workspaces(make_ws, src, 1)
    host_file(src, "many", 10)
    a, b = agents("lk-many"), agents("lk-other")
    res = a.call(60, op="ofd_many", path=w.p("shared/many"), n=4100)
    fds, errs = res["fds"], res["errs"]
    assert [i for i, e in errs] == list(range(4096, 4100)), errs[:5]
    assert {e for i, e in errs} == {"ENOLCK"}
    # Owners that exist keep working; new ones, blocking or not, do not.
    assert a.lock(fds[0], "ofd", "u") is None
    assert a.lock(fds[0], "ofd", "w", 0, 1) is None
    fb = b.open(w.p("shared/many"))
    assert b.lock(fb, "posix", "r", 5000, 1) == "ENOLCK"
    assert b.lock(fb, "flock", "sh") is None       # flock takes none
    b.unlock(fb, "flock")
    a.call(60, op="close_many", fds=fds[:10])
    assert eventually(lambda: b.lock(fb, "posix", "r", 5000, 1) is None, 5)
    a.call(60, op="close_many", fds=fds[10:])
    assert eventually(lambda: len(locks_json(w)) == 1, 10)
    res = a.call(60, op="ofd_many", path=w.p("shared/many"), n=4095)
    assert res["errs"] == [], res["errs"][:5]
    a.call(60, op="close_many", fds=res["fds"])


def test_close_while_another_thread_waits(make_ws, agents, tmpbase):
    """POSIX: a close drops the process's locks at once, even while another
    of its threads waits for a lock on the file; the wait goes on and its
    lock is held when it returns. Compared with the backing file natively."""
    src = shared_src(tmpbase)
    w1, w2 = shared_workspaces(make_ws, src, 2)
    host_file(src, "f", 100)

    def run(pp, pq):
        p, q = agents("lk-p"), agents("lk-q")
        f1, f2, fq = p.open(pp), p.open(pp), q.open(pq)
        out = [p.lock(f1, "posix", "w", 0, 10),
               q.lock(fq, "posix", "w", 20, 10)]
        assert p.call(op="bgwait", fd=f1, kind="posix", type="w", start=20,
                      len=10, wait=True) == {}
        time.sleep(0.2)
        out.append(q.lock(fq, "posix", "w", 0, 10))    # P holds [0, 9]
        p.close(f2)                                    # drops it, waiting
        out.append(q.lock(fq, "posix", "w", 0, 10))
        q.unlock(fq, "posix")
        res = p.recv(5)
        out.append((res["tag"], res["err"]))
        out.append(q.lock(fq, "posix", "w", 20, 10))   # P's now
        out.append(q.lock(fq, "posix", "w", 0, 10))
        p.kill()
        q.kill()
        return out
    native = run(os.path.join(src, "f"), os.path.join(src, "f"))
    assert native == [None, None, "EAGAIN", None, ("bg", None), "EAGAIN",
                      None]
    assert run(w1.p("shared/f"), w2.p("shared/f")) == native
    assert run(w1.p("shared/f"), w1.p("shared/f")) == native


STRESS = r'''
import fcntl, os, struct, sys, time
path, what, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
fd = os.open(path, os.O_RDWR)
n, end = 0, time.monotonic() + secs
while time.monotonic() < end:
    if what == "fcntl":
        fcntl.fcntl(fd, fcntl.F_SETLK,
                    struct.pack("hhqqi", fcntl.F_RDLCK, 0, 0, 1, 0))
        fcntl.fcntl(fd, fcntl.F_SETLK,
                    struct.pack("hhqqi", fcntl.F_UNLCK, 0, 0, 1, 0))
    elif what == "flock":
        fcntl.flock(fd, fcntl.LOCK_SH)
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        os.pread(fd, 4 << 20, 0)
    n += 1
print(n)
'''


@pytest.mark.parametrize("mode,nproc", [("multi-threaded", 12),
                                        ("single-threaded", 2)])
def test_grants_never_stall_readers(make_ws, agents, tmpbase, mode, nproc):
    """A grant on a shared file drops this workspace's cached pages first,
    which waits for pages being read in. Were that done on a libfuse worker,
    lockers would tie up every worker while the reads they wait for sit in
    the queue, and the workspace would hang for good."""
    src = shared_src(tmpbase)
    w = make_ws(options=f"allow_other,shared={src}:/shared", sub="s0",
                extra_args=["-s"] if mode == "single-threaded" else None)
    with open(os.path.join(src, "f"), "wb") as f:
        f.write(os.urandom(4 << 20))
    procs, secs = [], 3
    for i in range(nproc):
        for what in ("fcntl" if i % 2 == 0 else "flock", "read"):
            procs.append(agents.popen(
                [PY, "-c", STRESS, w.p("shared/f"), what, str(secs)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    hung = None
    deadline = time.monotonic() + secs + 1
    while time.monotonic() < deadline and hung is None:
        probe = agents.popen(["stat", w.p("shared")],
                             stdout=subprocess.DEVNULL)
        try:
            probe.wait(3)
        except subprocess.TimeoutExpired:
            hung = "stat did not answer in 3 s"
        time.sleep(0.2)
    if hung is None:
        for p in procs:
            try:
                out, errs = p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                hung = "a locker or reader did not finish"
                break
            assert p.returncode == 0 and int(out) > 0, errs
    if hung:
        # Abort the connection (umount -f reaches FUSE's umount_begin),
        # so that nothing stays stuck after the test.
        subprocess.run(["umount", "-f", w.mnt], capture_output=True)
        pytest.fail(f"the workspace hung: {hung}")



@pytest.mark.parametrize("deleter", ["workspace", "host"])
def test_open_after_delete_elsewhere(make_ws, agents, tmpbase, deleter):
    """SQLite's rollback journal protocol relies on this: once the writer
    has deleted its journal, nobody can open it by name, even if a reader
    still has it open. Locks do not help when the name lies."""
    src = shared_src(tmpbase)
    w1, w2 = shared_workspaces(make_ws, src, 2)
    other, reader = agents("lk-other"), agents("lk-reader")
    there = w2.p("shared/j") if deleter == "workspace" else \
        os.path.join(src, "j")
    fd = other.open(there, os.O_RDWR | os.O_CREAT)
    assert other.call(op="close", fd=other.open(there)) == {}
    os.stat(w1.p("shared/j"))                 # the workspace has seen it
    assert reader.call(op="close", fd=reader.open(w1.p("shared/j"))) == {}
    os.unlink(there)                          # deleted, still open in OTHER
    with pytest.raises(FileNotFoundError):
        reader.open(w1.p("shared/j"), os.O_RDONLY)
    other.close(fd)
