"""Shared helpers for the quota tests (tests/test_quota*.py).

* `ledger(w)` / `set_quota(w, ...)` talk to the daemon's control socket
  directly (`quota` and `quota-set`), so the tests do not depend on wsctl.
* `scan(w)` is an independent re-implementation, in Python, of the charging
  rules of quota/charge.h, walking the upper directory itself.  It shares no
  code with the daemon's scan (quota/scan.c), so "ledger == scan" checks the
  daemon's bookkeeping against a second opinion, not against itself.
* `assert_ledger_matches_scan(w)` polls, because a release after close()
  happens when the kernel's RELEASE request arrives, after close returns.
"""
import errno
import os
import re
import socket
import sqlite3
import stat
import time

K = 1024
M = 1024 * K
BLOCK = 4096


# ---------------------------------------------------------------- control

def sock_path(w):
    return os.path.join(w.state, "run", f"{w.name}.sock")


def ctl(w, line, timeout=5.0):
    """Sends one request line; returns the reply's lines (first is the
    status: 'ok' or 'error MESSAGE')."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path(w))
        s.sendall(line.encode() + b"\n")
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    text = b"".join(chunks).decode()
    lines = text.splitlines()
    assert lines, f"empty reply to {line!r}"
    return lines


def _value(v):
    if v == "none":
        return None
    try:
        return int(v)
    except ValueError:
        return v


def parse_reply(lines):
    out = {}
    for l in lines[1:]:
        k, _, v = l.partition(" ")
        out[k] = _value(v)
    return out


class CtlError(Exception):
    pass


def ledger(w):
    """The daemon's `quota` reply as a dict; limits are ints or None."""
    lines = ctl(w, "quota")
    if lines[0] != "ok":
        raise CtlError(lines[0])
    return parse_reply(lines)


def set_quota(w, **kw):
    """quota-set KEY=VALUE...; values may be ints, strings ('64K') or None
    ('none'). Returns the reply dict; raises CtlError on an error reply."""
    args = []
    for k, v in kw.items():
        if v is None:
            v = "none"
        elif isinstance(v, (list, tuple)):
            v = ",".join(str(x) for x in v)
        args.append(f"{k}={v}")
    lines = ctl(w, "quota-set " + " ".join(args))
    if lines[0] != "ok":
        raise CtlError(lines[0])
    return parse_reply(lines)


def used(w):
    q = ledger(w)
    return q["bytes_used"], q["inodes_used"]


# ---------------------------------------------------------------- the scan

def charge_data(size):
    return 0 if size <= 0 else (size + BLOCK - 1) // BLOCK * BLOCK


def _xattr_charge(path):
    total = 0
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTSUP):
            return 0
        raise
    for n in names:
        if not n.startswith("user."):
            continue
        try:
            v = os.getxattr(path, n, follow_symlinks=False)
        except OSError as e:
            if e.errno in (errno.ENODATA, errno.ENOENT):
                continue
            raise
        total += len(n.encode()) + len(v)
    return total


def _charge(st):
    m = st.st_mode
    if stat.S_ISREG(m):
        return charge_data(st.st_size)
    if stat.S_ISDIR(m) or stat.S_ISLNK(m):
        return BLOCK
    return 0


def scan_path(root):
    """(bytes, inodes) the charging rules give the tree at ROOT: the root
    itself is free but its user.* xattrs are charged; hard-linked inodes
    count once; other filesystems mounted inside are not entered."""
    rst = os.lstat(root)
    dev = rst.st_dev
    nbytes = _xattr_charge(root)
    inodes = 0
    seen = set()
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except FileNotFoundError:
            continue
        with it:
            for e in it:
                try:
                    st = os.lstat(e.path)
                except FileNotFoundError:
                    continue
                if st.st_dev != dev:
                    continue
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    continue                # a cow whiteout: not charged
                if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                    if st.st_ino in seen:
                        continue
                    seen.add(st.st_ino)
                nbytes += _charge(st) + _xattr_charge(e.path)
                inodes += 1
                if stat.S_ISDIR(st.st_mode):
                    stack.append(e.path)
    return nbytes, inodes


def scan(w):
    return scan_path(w.upper)


def assert_ledger_matches_scan(w, timeout=2.0, extra=(0, 0)):
    """Polls until the ledger's (bytes_used, inodes_used) equals the scan of
    the upper plus EXTRA (charges the scan cannot see, e.g. open unlinked
    files); fails showing both."""
    deadline = time.monotonic() + timeout
    while True:
        q = ledger(w)
        got = (q["bytes_used"], q["inodes_used"])
        s = scan(w)
        want = (s[0] + extra[0], s[1] + extra[1])
        if got == want:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"ledger (bytes, inodes) = {got}, scan of the upper"
                f"{' + ' + str(extra) if extra != (0, 0) else ''} = {want} "
                f"(difference {got[0] - want[0]} bytes, "
                f"{got[1] - want[1]} inodes)")
        time.sleep(0.05)


def wait_ledger(w, pred, timeout=2.0):
    """The first ledger for which PRED holds; fails with the last seen."""
    deadline = time.monotonic() + timeout
    while True:
        q = ledger(w)
        if pred(q):
            return q
        if time.monotonic() >= deadline:
            raise AssertionError(f"ledger never satisfied the condition: "
                                 f"bytes_used={q['bytes_used']} "
                                 f"inodes_used={q['inodes_used']} {q}")
        time.sleep(0.02)


# ---------------------------------------------------------------- log

def log_path(w):
    return os.path.join(w.state, "log", f"{w.name}.log")


def log_text(w):
    try:
        with open(log_path(w), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def count_log(w, pattern):
    return len(re.findall(pattern, log_text(w)))


def wait_log_count(w, pattern, n, timeout=2.0):
    """Waits until PATTERN occurs at least N times in the daemon log;
    returns the final count (which may be larger: callers assert it)."""
    deadline = time.monotonic() + timeout
    while True:
        c = count_log(w, pattern)
        if c >= n or time.monotonic() >= deadline:
            return c
        time.sleep(0.02)


# ---------------------------------------------------------------- files

def write_all(fd, data, chunk=64 * K):
    """Writes DATA in requests of at most CHUNK bytes (so no single FUSE
    write is split by the kernel); returns bytes written."""
    view = memoryview(data)
    done = 0
    while done < len(view):
        n = os.write(fd, view[done:done + chunk])
        assert n > 0
        done += n
    return done


def make_file(path, size, chunk=64 * K):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, b"x" * size, chunk)
    finally:
        os.close(fd)


def fsize(path):
    return os.lstat(path).st_size


# ---------------------------------------------------------------- writers

def writer_loop(path, flags, seed, tag, max_refusals=3,
                min_chunk=4 * K, max_chunk=64 * K):
    """Writes chunks of random size (MIN_CHUNK..MAX_CHUNK) of byte TAG to
    PATH opened with FLAGS until MAX_REFUSALS writes were refused with
    EDQUOT.  Returns [bytes written, refusals, [unexpected outcomes],
    short writes].  A short write is legitimate: the kernel may split a write
    that starts inside a page not in its cache into two requests, and the
    second may be refused.  Used by threads and, through `python -c`, by
    separate processes."""
    import random
    rng = random.Random(seed)
    tagb = bytes([tag])
    fd = os.open(path, flags, 0o644)
    ok = refused = short = 0
    other = []
    try:
        while refused < max_refusals:
            n = rng.randint(min_chunk, max_chunk)
            try:
                got = os.write(fd, tagb * n)
            except OSError as e:
                if e.errno == errno.EDQUOT:
                    refused += 1
                    continue
                other.append(errno.errorcode.get(e.errno, str(e.errno)))
                break
            ok += got
            if got <= 0 or got > n:
                other.append(f"write of {n} returned {got}")
                break
            if got != n:
                short += 1
    finally:
        os.close(fd)
    return [ok, refused, other, short]


def qmount(make_ws, opts=""):
    return make_ws(options="allow_other" + ("," + opts if opts else ""))


def touch(path):
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


def read_upper(path):
    with open(path, "rb") as f:
        return f.read()


def quota_row(w):
    """The workspace's row of state.db's quotas table, as a dict (or None)."""
    db = sqlite3.connect(os.path.join(w.state, "state.db"), timeout=5)
    try:
        db.row_factory = sqlite3.Row
        r = db.execute("SELECT * FROM quotas WHERE name=?", (w.name,)).fetchone()
        return dict(r) if r else None
    finally:
        db.close()
