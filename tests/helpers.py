"""Helpers for the POSIX conformance tests (tests/test_posix_*.py).

The POSIX tests use the `wsp` fixture ("workspace or plain directory")
instead of conftest's `ws`.  Normally it is exactly conftest's `ws`: a live
wsfs mount.  With WSFS_TEST_NATIVE=1 it is a plain directory on the
filesystem of WSFS_TEST_DIR (default /tmp, ext4 here) whose p() and u() are
the same path: running the suite that way proves each expected value is what
the kernel filesystem itself does, so a test that passes natively and fails
on wsfs points at a daemon bug, not at a wrong expectation.

Also here: ctypes wrappers for the syscalls Python's os module lacks
(renameat2, utimensat with UTIME_NOW/UTIME_OMIT, fallocate modes,
opendir/readdir/telldir/seekdir), errno assertions, and `call_as`, a richer
variant of conftest.as_user that returns a value and can keep supplementary
groups.
"""
import ctypes
import ctypes.util
import errno
import os
import pickle

import pytest

NATIVE = os.environ.get("WSFS_TEST_NATIVE") == "1"

# Unprivileged identities used by the permission tests.  Only numeric ids
# matter: the kernel never consults /etc/passwd.
U1, G1 = 1000, 1000
U2, G2 = 1001, 1001
NOBODY, NOGROUP = 65534, 65534
EXTRA_GROUP = 2000          # a supplementary group given to U1 in some tests


class NativeWorkspace:
    """A plain directory standing in for a mount: p() and u() coincide."""

    native = True

    def __init__(self, base):
        self.base = base
        self.upper = os.path.join(base, "upper")
        self.mnt = self.upper
        self.state = None
        self.name = "native"
        self.pid = None
        os.makedirs(self.upper)
        os.chmod(self.base, 0o755)
        os.chmod(self.upper, 0o755)

    def p(self, *parts):
        return os.path.join(self.mnt, *parts)

    def u(self, *parts):
        return os.path.join(self.upper, *parts)


def is_native(w):
    return getattr(w, "native", False)


def _workspace(request, options):
    """conftest's workspace mounted with OPTIONS, or a NativeWorkspace under
    WSFS_TEST_NATIVE=1, with the process umask at 022 for the test (restored
    after), so mode expectations do not depend on the caller's environment."""
    old = os.umask(0o022)
    try:
        if NATIVE:
            base = request.getfixturevalue("tmpbase")
            yield NativeWorkspace(os.path.join(base, "w0"))
        else:
            yield request.getfixturevalue("make_ws")(options=options)
    finally:
        os.umask(old)


@pytest.fixture
def wsp(request):
    """A mounted workspace (allow_other), or plain ext4 when native."""
    yield from _workspace(request, "allow_other")


@pytest.fixture
def wsp_acl(request):
    """Like `wsp`, mounted with -o acl (POSIX ACLs enforced by the kernel)."""
    yield from _workspace(request, "allow_other,acl")


@pytest.fixture
def refdir(wsp):
    """A plain directory on the same filesystem as the upper directory, to
    measure filesystem-dependent limits (xattr sizes...) against."""
    d = os.path.join(wsp.base, "ref")
    os.makedirs(d, exist_ok=True)
    return d


# ---------------------------------------------------------------- assertions

def expect_errno(expected, fn, *args, **kw):
    """Call FN and assert it raises OSError with errno EXPECTED (an int or a
    tuple of acceptable ints). Returns the exception."""
    accepted = expected if isinstance(expected, tuple) else (expected,)
    try:
        res = fn(*args, **kw)
    except OSError as e:
        assert e.errno in accepted, (
            f"{getattr(fn, '__name__', fn)}{args}: expected "
            f"{'/'.join(errno.errorcode[x] for x in accepted)}, got "
            f"{errno.errorcode.get(e.errno, e.errno)} ({e})")
        return e
    raise AssertionError(
        f"{getattr(fn, '__name__', fn)}{args}: expected "
        f"{'/'.join(errno.errorcode[x] for x in accepted)}, but it succeeded"
        f" returning {res!r}")


def outcome(fn, *args, **kw):
    """('ok', result) or ('err', errno name): for comparing two filesystems."""
    try:
        return ("ok", fn(*args, **kw))
    except OSError as e:
        return ("err", errno.errorcode.get(e.errno, e.errno))


def write_file(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def pread_all(fd, size, offset):
    out = bytearray()
    while len(out) < size:
        chunk = os.pread(fd, size - len(out), offset + len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


# ------------------------------------------------------------ identity change

def call_as(uid, gid, fn, groups=()):
    """Run FN() in a forked child as UID/GID with supplementary GROUPS.

    Returns ('ok', value) with FN's (picklable) return value, or
    ('err', errno) if it raised OSError.  Any other exception fails the
    calling test with the child's message.  The parent stays root.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            try:
                os.setgroups(list(groups))
                os.setgid(gid)
                os.setuid(uid)
                res = ("ok", fn())
            except OSError as e:
                res = ("err", e.errno)
            except BaseException as e:  # noqa: BLE001 - reported to parent
                res = ("exc", f"{type(e).__name__}: {e}")
            try:
                data = pickle.dumps(res)
            except Exception as e:  # noqa: BLE001
                data = pickle.dumps(("exc", f"unpicklable result: {e}"))
            view = memoryview(data)
            while view:
                view = view[os.write(w, view):]
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    data = b"".join(chunks)
    assert data, "child produced no result"
    res = pickle.loads(data)
    if res[0] == "exc":
        raise AssertionError(f"in child as uid {uid}: {res[1]}")
    return res


def ok_as(uid, gid, fn, groups=()):
    """call_as that must succeed; returns FN's value."""
    res = call_as(uid, gid, fn, groups)
    assert res[0] == "ok", (
        f"as uid {uid}: expected success, got "
        f"{errno.errorcode.get(res[1], res[1])}")
    return res[1]


def err_as(uid, gid, expected, fn, groups=()):
    """call_as that must fail with errno EXPECTED (int or tuple)."""
    accepted = expected if isinstance(expected, tuple) else (expected,)
    res = call_as(uid, gid, fn, groups)
    names = "/".join(errno.errorcode[x] for x in accepted)
    assert res[0] == "err", f"as uid {uid}: expected {names}, it succeeded"
    assert res[1] in accepted, (
        f"as uid {uid}: expected {names}, got "
        f"{errno.errorcode.get(res[1], res[1])}")


# ---------------------------------------------------------------- libc calls

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
RENAME_WHITEOUT = 4

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10

UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


def _raise(what, path=None):
    e = ctypes.get_errno()
    if path is not None:
        raise OSError(e, os.strerror(e), path)
    raise OSError(e, f"{what}: {os.strerror(e)}")


def _b(path):
    return os.fsencode(path)


libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                           ctypes.c_char_p, ctypes.c_uint]
libc.renameat2.restype = ctypes.c_int


def renameat2(old, new, flags):
    if libc.renameat2(AT_FDCWD, _b(old), AT_FDCWD, _b(new), flags) != 0:
        _raise("renameat2", old)


libc.linkat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                        ctypes.c_char_p, ctypes.c_int]
libc.linkat.restype = ctypes.c_int
AT_SYMLINK_FOLLOW = 0x400


def linkat_follow(old, new):
    """linkat(..., AT_SYMLINK_FOLLOW): os.link() without dir fds calls plain
    link(2), which cannot give a name to an O_TMPFILE via /proc/self/fd."""
    if libc.linkat(AT_FDCWD, _b(old), AT_FDCWD, _b(new), AT_SYMLINK_FOLLOW):
        _raise("linkat", old)


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p,
                           ctypes.POINTER(Timespec), ctypes.c_int]
libc.utimensat.restype = ctypes.c_int


def utimensat(path, atime, mtime, follow=True):
    """ATIME/MTIME: (sec, nsec), UTIME_NOW or UTIME_OMIT; None for both means
    a NULL times pointer (both now)."""
    if atime is None and mtime is None:
        times = None
    else:
        times = (Timespec * 2)()
        for i, t in enumerate((atime, mtime)):
            if t in (UTIME_NOW, UTIME_OMIT):
                times[i].tv_sec, times[i].tv_nsec = 0, t
            else:
                times[i].tv_sec, times[i].tv_nsec = t
    flags = 0 if follow else AT_SYMLINK_NOFOLLOW
    if libc.utimensat(AT_FDCWD, _b(path), times, flags) != 0:
        _raise("utimensat", path)


libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                           ctypes.c_int64]
libc.fallocate.restype = ctypes.c_int


def fallocate(fd, mode, offset, length):
    if libc.fallocate(fd, mode, offset, length) != 0:
        _raise("fallocate")


class Dirent(ctypes.Structure):  # glibc x86_64/aarch64 struct dirent
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


libc.opendir.argtypes = [ctypes.c_char_p]
libc.opendir.restype = ctypes.c_void_p
libc.readdir.argtypes = [ctypes.c_void_p]
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.telldir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
libc.seekdir.restype = None
libc.rewinddir.argtypes = [ctypes.c_void_p]
libc.rewinddir.restype = None
libc.closedir.argtypes = [ctypes.c_void_p]
libc.closedir.restype = ctypes.c_int


class Dir:
    """libc DIR* stream: iterate (name, d_ino) pairs, tell(), seek()."""

    def __init__(self, path):
        self.d = libc.opendir(_b(path))
        if not self.d:
            _raise("opendir", path)

    def read(self):
        ctypes.set_errno(0)
        ent = libc.readdir(self.d)
        if not ent:
            if ctypes.get_errno():
                _raise("readdir")
            return None
        return ent.contents.d_name, ent.contents.d_ino

    def read_all(self):
        out = []
        while True:
            e = self.read()
            if e is None:
                return out
            out.append(e)

    def tell(self):
        return libc.telldir(self.d)

    def seek(self, pos):
        libc.seekdir(self.d, pos)

    def rewind(self):
        libc.rewinddir(self.d)

    def close(self):
        if self.d:
            libc.closedir(self.d)
            self.d = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()



# ----------------------------------------------------------------- audit log
# For tests/test_audit_*.py: reading <state>/audit.db, fingerprints computed
# by an independent tool (Debian's xxhsum), and "agents": small programs
# with a name of their own, so the records' comm can be told from pytest's.

AUDIT_FIELDS = ("ws", "seq", "time_ns", "host", "layer", "uid", "gid", "pid",
                "comm", "op", "path", "path2", "ino", "bytes", "result",
                "detail", "fp")


def audit_records(state, ws=None, raw=False):
    """The records of chain WS (every chain when None) in <STATE>/audit.db,
    in (ws, seq) order, as dicts. Text fields are str decoded like file
    names (os.fsdecode), or the stored bytes when RAW."""
    import sqlite3
    con = sqlite3.connect(os.path.join(state, "audit.db"), timeout=10)
    con.text_factory = bytes if raw else os.fsdecode
    try:
        q = f"SELECT {', '.join(AUDIT_FIELDS)} FROM records"
        args = ()
        if ws is not None:
            q += " WHERE ws=?"
            args = (ws,)
        rows = con.execute(q + " ORDER BY ws, seq", args).fetchall()
    finally:
        con.close()
    return [dict(zip(AUDIT_FIELDS, r)) for r in rows]


def audit_checkpoints(state, ws):
    """(size, head, note) of chain WS's checkpoints, by size."""
    import sqlite3
    con = sqlite3.connect(os.path.join(state, "audit.db"), timeout=10)
    try:
        return con.execute("SELECT size, head, note FROM checkpoints WHERE "
                           "ws=? ORDER BY size", (ws,)).fetchall()
    finally:
        con.close()


def xxh128(data):
    """XXH3-128 of DATA as 32 hex digits, from xxhsum -H2 (package xxhash),
    which prints "HASH  stdin"."""
    import subprocess
    r = subprocess.run(["xxhsum", "-H2", "-"], input=data, capture_output=True,
                       timeout=60, check=True)
    digest = r.stdout.split()[0].decode()
    assert len(digest) == 32, r.stdout
    return digest


AGENT = r'''#!/usr/bin/python3
# A workspace client with a name of its own (the kernel names a process
# after the script it runs). argv: CODE MOUNT; CODE sees p(), err(), out.
import errno, json, os, sys
M = sys.argv[2]
out = {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid()}
def p(*parts):
    return os.path.join(M, *parts)
def err(fn, *a):
    try:
        fn(*a)
        return "0"
    except OSError as e:
        return errno.errorcode[e.errno]
os.umask(0o022)
exec(sys.argv[1])
print(json.dumps(out))
'''


def make_agent(directory, name):
    """Writes the agent script as DIRECTORY/NAME (NAME: at most 15 bytes,
    the kernel's comm length) and returns its path."""
    assert len(name) <= 15
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o755)
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(AGENT)
    os.chmod(path, 0o755)
    return path


def run_agent(agent, mount, code, uid=None, gid=None, timeout=60):
    """Runs CODE in AGENT (as UID/GID when given, through setpriv, which
    execs: the pid stays the agent's). Returns the agent's `out` dict."""
    import json
    import subprocess
    cmd = [agent, code, mount]
    if uid is not None:
        cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
               "--inh-caps=-all", "--"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"agent failed: {r.stderr}"
    return json.loads(r.stdout)
