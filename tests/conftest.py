"""Shared fixtures for wsfs integration tests.

Every test that needs a workspace gets a real FUSE mount of the wsfs binary
under test, over a fresh upper directory and a private state directory.  The
fixture always unmounts and always ends the daemon it started, by pid, even
when the test fails.
"""
import errno
import itertools
import os
import signal
import sqlite3
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("WSFS_BUILD", os.path.join(ROOT, "build"))
WSFS = os.environ.get("WSFS_BIN", os.path.join(BUILD, "fs", "wsfs"))
WSCTL = os.environ.get("WSCTL_BIN", os.path.join(BUILD, "tools", "wsctl"))
HELPERS = os.path.join(BUILD, "tests")

_names = itertools.count()


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mnt = fields[4].encode().decode("unicode_escape")
            if mnt == path:
                return True
    return False


def mount_options(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == path:
                return fields[5].split(",")
    return None


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours counts as dead, but only once its other
    # threads are gone too: a killed thread-group leader turns zombie while
    # they are still exiting, and they hold its descriptors (and so its
    # locks and sockets) until the last one ends.
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                return True
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except FileNotFoundError:
        return False


class Workspace:
    """One mounted wsfs workspace: paths, the daemon's pid, and helpers."""

    def __init__(self, base, name=None, options="", extra_args=None,
                 no_upper=False):
        self.base = base
        self.upper = os.path.join(base, "upper")
        self.mnt = os.path.join(base, "mnt")
        self.state = os.path.join(base, "state")
        self.name = name or f"ws{os.getpid()}-{next(_names)}"
        self.options = options
        self.extra_args = extra_args or []
        self.pid = None
        self.no_upper = no_upper       # -o ephemeral: the upper is scratch
        for d in (self.upper, self.mnt):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.base, 0o755)
        os.chmod(self.upper, 0o755)

    def opts(self):
        o = f"state={self.state},name={self.name}"
        if not self.no_upper:
            o = f"upper={self.upper}," + o
        if self.options:
            o += "," + self.options
        return o

    def mount(self, check=True):
        cmd = [WSFS, "-o", self.opts()] + self.extra_args + [self.mnt]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if check:
            assert r.returncode == 0, f"mount failed: {r.stderr}"
            assert is_mounted(self.mnt)
            self.pid = self.daemon_pid()
        return r

    def daemon_pid(self):
        db = sqlite3.connect(os.path.join(self.state, "state.db"), timeout=5)
        try:
            row = db.execute("SELECT pid FROM mounts WHERE name=?",
                             (self.name,)).fetchone()
        finally:
            db.close()
        assert row, "daemon did not register itself"
        return row[0]

    def umount(self):
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", self.mnt],
                           capture_output=True, timeout=30)
        self.wait_exit()

    def wait_exit(self, timeout=10):
        if self.pid is None:
            return True
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not pid_alive(self.pid):
                self.pid = None
                return True
            time.sleep(0.02)
        return False

    def kill(self, sig=signal.SIGKILL):
        os.kill(self.pid, sig)

    def cleanup(self):
        """Unmount and end the daemon whatever state the test left."""
        if is_mounted(self.mnt):
            r = subprocess.run(["fusermount3", "-u", self.mnt],
                               capture_output=True, timeout=30)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", self.mnt], capture_output=True)
        if self.pid is not None and not self.wait_exit(5):
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait_exit(5)
        if is_mounted(self.mnt):
            subprocess.run(["umount", "-l", self.mnt], capture_output=True)

    def sanitizer_reports(self):
        """Sanitizer findings in the daemon's log (ASan/LSan/UBSan builds)."""
        path = os.path.join(self.state, "log", f"{self.name}.log")
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            return ""
        marks = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                 "runtime error:")
        return text if any(m in text for m in marks) else ""

    def p(self, *parts):
        """A path inside the mount."""
        return os.path.join(self.mnt, *parts)

    def u(self, *parts):
        """The same path in the upper (backing) directory."""
        return os.path.join(self.upper, *parts)

    def wsctl(self, *args, check=False):
        return subprocess.run([WSCTL, "--state", self.state] + list(args),
                              capture_output=True, text=True, timeout=30,
                              check=check)


@pytest.fixture
def tmpbase():
    # Not under /tmp's pytest dirs: those are 0700 and unreachable for the
    # unprivileged users the escape tests run as.
    d = tempfile.mkdtemp(prefix="wsfs-test-", dir=os.environ.get("WSFS_TEST_DIR", "/tmp"))
    os.chmod(d, 0o755)
    yield d
    subprocess.run(["rm", "-rf", "--one-file-system", d], capture_output=True)


@pytest.fixture
def make_ws(tmpbase):
    """Factory: make_ws(options="", name=None) -> mounted Workspace."""
    made = []

    def factory(options="allow_other", name=None, mount=True, extra_args=None,
                sub=None, no_upper=False):
        base = os.path.join(tmpbase, sub or f"w{len(made)}")
        os.makedirs(base, exist_ok=True)
        w = Workspace(base, name=name, options=options, extra_args=extra_args,
                      no_upper=no_upper)
        made.append(w)
        if mount:
            w.mount()
        return w

    yield factory
    reports = []
    for w in made:
        w.cleanup()
        r = w.sanitizer_reports()
        if r:
            reports.append(r)
    if reports:
        pytest.fail("sanitizer report in the daemon log:\n" + reports[0][-4000:])


@pytest.fixture
def ws(make_ws):
    """A mounted workspace with allow_other (default_permissions is implied)."""
    return make_ws()


def run_as(uid, gid, argv, **kw):
    """Run ARGV as an unprivileged user (no supplementary groups)."""
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
           "--inh-caps=-all", "--"] + argv
    return subprocess.run(cmd, capture_output=True, timeout=kw.pop("timeout", 120), **kw)


def as_user(uid, gid, fn):
    """Run FN in a forked child with the given credentials.

    Returns what FN returned (must be picklable-free: an int or None), or the
    errno of the OSError it raised, negated.  Credentials are dropped in the
    child only, so the test process stays root.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            res = fn()
            code = 0 if res is None else int(res)
        except OSError as e:
            code = -e.errno
        except BaseException:
            code = -10000
        os.write(w, str(code).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 64)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return int(data or b"-10001")


class Operator:
    """An operator's view of one state directory, driven through wsctl.

    cleanup() leaves nothing behind whatever the test did: every daemon
    the registry knows is stopped (wsctl umount --force, then SIGKILL by
    pid), and every wsfs mount under the test's base is detached.
    """

    wsctl_bin = WSCTL

    def __init__(self, base):
        self.base = base
        self.state = os.path.join(base, "state")

    def path(self, *parts):
        return os.path.join(self.base, *parts)

    def wsctl(self, *args, input=None, env=None, timeout=120):
        return subprocess.run([WSCTL, "--state", self.state] + list(args),
                              capture_output=True, text=True, input=input,
                              env=env, timeout=timeout)

    def ok(self, *args, **kw):
        r = self.wsctl(*args, **kw)
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
        return r.stdout

    def fails(self, status, *args, **kw):
        """Runs wsctl expecting STATUS and exactly one 'wsctl: ' line."""
        r = self.wsctl(*args, **kw)
        assert r.returncode == status, (args, r.returncode, r.stdout,
                                        r.stderr)
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("wsctl: "), (
            args, r.stderr)
        return lines[0]

    def ls(self):
        import json
        return {w["name"]: w for w in json.loads(self.ok("ls", "--json"))}

    def registry_pids(self):
        db_path = os.path.join(self.state, "state.db")
        if not os.path.exists(db_path):
            return {}
        db = sqlite3.connect(db_path, timeout=5)
        try:
            return dict(db.execute("SELECT name, pid FROM mounts"))
        finally:
            db.close()

    def cleanup(self):
        pids = self.registry_pids()
        for name in pids:
            self.wsctl("umount", "--force", name, timeout=60)
        for pid in pids.values():
            try:
                # a stale row's pid may belong to someone else by now
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == "wsfs":
                        os.kill(pid, signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError):
                pass
        with open("/proc/self/mountinfo") as f:
            mounts = [l.split()[4].encode().decode("unicode_escape")
                      for l in f]
        for m in reversed(mounts):
            if m.startswith(self.base + "/"):
                subprocess.run(["umount", "-l", m], capture_output=True)


@pytest.fixture
def operator(tmpbase):
    op = Operator(tmpbase)
    yield op
    op.cleanup()
