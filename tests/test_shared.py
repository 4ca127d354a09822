"""Shared directories: -o shared=SOURCE:TARGET.

One host directory, shown read-write at TARGET in several workspaces at
once. What one workspace, or a host process, changes there must show in the
others within a second even where they had cached it (ls, stat, content at
the next open, absence); a lock taken on a shared file makes the pages this
workspace cached of it current. Each workspace pays, in its own quota, for
the growth its own requests cause there (EDQUOT at the very call), gets back
only what it paid, and hands the charge back at unmount. Bad values fail the
mount with one clear line and create nothing; an agent can use the shared
directory neither to climb out of the workspace nor to move files between it
and the upper.
"""
import errno
import fcntl
import json
import os
import sqlite3
import stat
import struct
import subprocess
import time

import pytest

from conftest import is_mounted
from helpers import (U1, G1, RENAME_EXCHANGE, err_as, expect_errno, ok_as,
                     pread_all, read_file, renameat2, write_file)
from quota_util import (BLOCK, K, M, assert_ledger_matches_scan, make_file,
                        quota_row, scan_path, used, wait_ledger, write_all)

# The promise: another workspace's change shows within this many seconds
# (the daemon caches shared nodes for 0.5 s).
VISIBLE = 1.0
POLL = 0.01


# ================================================================ helpers

def seen_within(fn, what, since=None, limit=VISIBLE):
    """Polls FN() until it is true; returns the seconds since SINCE (the
    moment of the change, default now). An OSError counts as "not yet".
    Fails once LIMIT seconds have passed since SINCE."""
    t0 = time.monotonic() if since is None else since
    last = None
    while True:
        try:
            last = fn()
            if last:
                return time.monotonic() - t0
        except OSError as e:
            last = e
        if time.monotonic() - t0 > limit:
            raise AssertionError(f"{what}: not seen within {limit} s "
                                 f"(last: {last!r})")
        time.sleep(POLL)


def gone(path):
    """Whether PATH is absent (ENOENT), without following a last symlink."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    return False


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def status_json(w):
    r = w.wsctl("status", w.name, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def shared_usage(w):
    doc = status_json(w)
    return doc["shared.bytes"], doc["shared.inodes"]


def mount_shared(make_ws, src, extra="", state=None):
    """A workspace with SRC shared at /sh; on STATE's state directory if
    given (several daemons on one state directory, as on a real host)."""
    opts = f"allow_other,shared={src}:/sh" + (f",{extra}" if extra else "")
    w = make_ws(mount=False, options=opts)
    if state is not None:
        w.state = state
    w.mount()
    return w


@pytest.fixture
def src(tmpbase):
    root = os.path.join(tmpbase, "src")
    os.mkdir(root)
    os.chmod(root, 0o777)       # unprivileged agents write there too
    return root


@pytest.fixture
def pair(make_ws, src):
    """Workspaces A and B with SRC shared at /sh, on one state directory."""
    a = mount_shared(make_ws, src)
    b = mount_shared(make_ws, src, state=a.state)
    return a, b, src


# ======================================================== 1. coherence

def test_new_entries_show_in_the_other_workspace(pair):
    a, b, src = pair
    # B looks first, so it has cached the listing and the names' absence
    assert os.listdir(b.p("sh")) == []
    for name in ("new", "d"):
        expect_errno(errno.ENOENT, os.stat, b.p("sh", name))
    write_file(a.p("sh", "new"), b"from A")
    os.mkdir(a.p("sh", "d"))
    write_file(a.p("sh", "d", "inner"), b"deep")
    t0 = time.monotonic()
    # by name first: a listing would replace the negative entries
    seen_within(lambda: read_file(b.p("sh", "new")) == b"from A",
                "the new file through B", t0)
    seen_within(lambda: stat.S_ISDIR(os.stat(b.p("sh", "d")).st_mode),
                "mkdir through B", t0)
    seen_within(lambda: read_file(b.p("sh", "d", "inner")) == b"deep",
                "a file in the new directory through B", t0)
    seen_within(lambda: sorted(os.listdir(b.p("sh"))) == ["d", "new"],
                "ls of B", t0)
    # listings are not cached: B's next one has a name A just made
    write_file(a.p("sh", "later"), b"")
    t0 = time.monotonic()
    seen_within(lambda: "later" in os.listdir(b.p("sh")), "ls of B", t0)
    # B's own creations go the same way back
    write_file(b.p("sh", "d", "reply"), b"from B")
    t0 = time.monotonic()
    seen_within(lambda: read_file(a.p("sh", "d", "reply")) == b"from B",
                "B's file through A", t0)
    # it all lives in the host directory, none of it in either upper, and
    # the uppers stay private
    assert sorted(os.listdir(src)) == ["d", "later", "new"]
    assert read_file(os.path.join(src, "d", "reply")) == b"from B"
    assert os.listdir(a.u("sh")) == [] and os.listdir(b.u("sh")) == []
    write_file(b.p("private"), b"B's own")
    assert gone(a.p("private"))
    assert os.path.exists(b.u("private"))


def test_rewritten_content_is_read_at_the_next_open(pair):
    a, b, src = pair
    old = b"A" * 5000
    write_file(a.p("sh", "f"), old)
    seen_within(lambda: read_file(b.p("sh", "f")) == old, "the first version")
    # each time, B has just read the file (its pages and size are cached)
    # and A rewrites it in place: same inode, same, larger, smaller size
    for new in (b"B" * 5000, b"C" * 20000, b"D" * 10):
        assert os.stat(b.p("sh", "f")).st_size > 0
        assert read_file(b.p("sh", "f")) != new
        fd = os.open(a.p("sh", "f"), os.O_WRONLY)
        try:
            assert os.pwrite(fd, new, 0) == len(new)
            os.ftruncate(fd, len(new))
        finally:
            os.close(fd)
        t0 = time.monotonic()
        seen_within(lambda: os.stat(b.p("sh", "f")).st_size == len(new),
                    f"size {len(new)} through B", t0)
        seen_within(lambda: read_file(b.p("sh", "f")) == new,
                    f"{len(new)} bytes of {new[:1]!r} through B", t0)
    assert read_file(os.path.join(src, "f")) == b"D" * 10


def test_chmod_rename_and_delete_show_in_the_other_workspace(pair):
    a, b, src = pair
    write_file(a.p("sh", "f"), b"content")
    os.mkdir(a.p("sh", "dir"))
    seen_within(lambda: mode_of(b.p("sh", "f")) == 0o644, "the file")
    seen_within(lambda: os.path.isdir(b.p("sh", "dir")), "the directory")
    os.chmod(a.p("sh", "f"), 0o600)
    t0 = time.monotonic()
    seen_within(lambda: mode_of(b.p("sh", "f")) == 0o600, "chmod", t0)
    os.rename(a.p("sh", "f"), a.p("sh", "g"))
    t0 = time.monotonic()
    seen_within(lambda: gone(b.p("sh", "f")), "the old name gone", t0)
    seen_within(lambda: read_file(b.p("sh", "g")) == b"content",
                "the new name", t0)
    # B keeps an open file working after A deletes it, as on one host
    fd = os.open(b.p("sh", "g"), os.O_RDONLY)
    try:
        os.unlink(a.p("sh", "g"))
        os.rmdir(a.p("sh", "dir"))
        t0 = time.monotonic()
        seen_within(lambda: gone(b.p("sh", "g")), "deleted file", t0)
        seen_within(lambda: gone(b.p("sh", "dir")), "removed directory", t0)
        seen_within(lambda: os.listdir(b.p("sh")) == [], "empty ls", t0)
        expect_errno(errno.ENOENT, os.open, b.p("sh", "g"), os.O_RDONLY)
        assert os.pread(fd, 100, 0) == b"content"
    finally:
        os.close(fd)
    assert os.listdir(src) == []


def test_host_changes_show_in_both_workspaces(pair):
    a, b, src = pair
    h = os.path.join(src, "h")
    for w in (a, b):
        assert os.listdir(w.p("sh")) == []
        expect_errno(errno.ENOENT, os.stat, w.p("sh", "h"))
    write_file(h, b"host v1")
    os.mkdir(os.path.join(src, "hd"))
    t0 = time.monotonic()
    for w in (a, b):
        seen_within(lambda: read_file(w.p("sh", "h")) == b"host v1",
                    f"host file in {w.name}", t0)
        seen_within(lambda: os.path.isdir(w.p("sh", "hd")),
                    f"host mkdir in {w.name}", t0)
    with open(h, "r+b") as f:           # same size, in place
        f.write(b"HOST V2")
    os.chmod(h, 0o640)
    t0 = time.monotonic()
    for w in (a, b):
        seen_within(lambda: read_file(w.p("sh", "h")) == b"HOST V2",
                    f"host rewrite in {w.name}", t0)
        seen_within(lambda: mode_of(w.p("sh", "h")) == 0o640,
                    f"host chmod in {w.name}", t0)
    os.unlink(h)
    os.rmdir(os.path.join(src, "hd"))
    t0 = time.monotonic()
    for w in (a, b):
        seen_within(lambda: gone(w.p("sh", "h")) and gone(w.p("sh", "hd")),
                    f"host deletions in {w.name}", t0)


# ================================================ 2. coherence under locks

F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)
F_OFD_SETLKW = getattr(fcntl, "F_OFD_SETLKW", 38)


def ofd(fd, cmd, typ):
    # struct flock on x86_64/aarch64: type, whence, start, len, pid, pad
    fcntl.fcntl(fd, cmd, struct.pack("hhqqi4x", typ, os.SEEK_SET, 0, 0, 0))


def lock(fd, how, exclusive, wait=True):
    """Takes (or, with WAIT false, tries) a whole-file lock of kind HOW."""
    if how == "fcntl":
        fcntl.lockf(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) |
                    (0 if wait else fcntl.LOCK_NB))
    elif how == "ofd":
        ofd(fd, F_OFD_SETLKW if wait else F_OFD_SETLK,
            fcntl.F_WRLCK if exclusive else fcntl.F_RDLCK)
    else:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) |
                    (0 if wait else fcntl.LOCK_NB))


def unlock(fd, how):
    if how == "fcntl":
        fcntl.lockf(fd, fcntl.LOCK_UN)
    elif how == "ofd":
        ofd(fd, F_OFD_SETLK, fcntl.F_UNLCK)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)


@pytest.mark.parametrize("how", ["fcntl", "ofd", "flock"])
def test_a_lock_makes_cached_pages_current(pair, how):
    """A keeps the file open and has read it; B rewrites it under a lock.
    A's pages are stale until A takes a lock: then it reads B's bytes."""
    a, b, src = pair
    old, new, tail = b"o" * 6000, b"N" * 6000, b"+appended"
    write_file(os.path.join(src, "db"), old)
    fa = os.open(a.p("sh", "db"), os.O_RDWR)
    try:
        assert pread_all(fa, 6000, 0) == old        # cached in A now
        fb = os.open(b.p("sh", "db"), os.O_RDWR)
        try:
            lock(fb, how, exclusive=True)
            # the lock is the host's: A cannot have it while B holds it
            expect_errno((errno.EAGAIN, errno.EACCES), lock, fa, how,
                         False, wait=False)
            assert os.pwrite(fb, new, 0) == len(new)  # same size
            unlock(fb, how)
        finally:
            os.close(fb)
        # Without a lock nothing tells A's kernel: a same-size rewrite
        # leaves its pages as they were (ARCHITECTURE.md, "Shared
        # directories"). If this fails the premise below is gone.
        assert os.pread(fa, 6000, 0) == old, "A's pages were not cached"
        lock(fa, how, exclusive=False)
        assert pread_all(fa, 6000, 0) == new
        unlock(fa, how)

        # the same after B grows the file: A learns the new size too
        fb = os.open(b.p("sh", "db"), os.O_WRONLY | os.O_APPEND)
        try:
            lock(fb, how, exclusive=True)
            assert os.write(fb, tail) == len(tail)
            unlock(fb, how)
        finally:
            os.close(fb)
        lock(fa, how, exclusive=True)
        assert os.fstat(fa).st_size == 6000 + len(tail)
        assert pread_all(fa, 7000, 0) == new + tail
        unlock(fa, how)
    finally:
        os.close(fa)


# ================================================================ 3. quota

def test_growth_in_the_shared_dir_is_charged_to_the_writer(make_ws, src):
    a = mount_shared(make_ws, src, "quota_bytes=1M")
    b = mount_shared(make_ws, src, "quota_bytes=1M", state=a.state)
    base_a, base_b = used(a), used(b)
    # the target directory made in each upper is that upper's
    assert base_a == base_b == (BLOCK, 1)
    room = 1 * M - base_a[0]
    fd = os.open(a.p("sh", "big"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        assert write_all(fd, b"a" * room, chunk=16 * K) == room
        assert used(a) == (1 * M, 2)
        # the write that would cross the limit fails whole, nothing lands
        expect_errno(errno.EDQUOT, os.write, fd, b"b")
        expect_errno(errno.EDQUOT, os.write, fd, b"b" * (64 * K))
        expect_errno(errno.EDQUOT, os.ftruncate, fd, room + 1)
    finally:
        os.close(fd)
    assert os.path.getsize(os.path.join(src, "big")) == room
    assert used(a) == (1 * M, 2)
    assert shared_usage(a) == (room, 1)
    # B pays nothing for A's file and still has its whole quota there
    assert used(b) == base_b and shared_usage(b) == (0, 0)
    make_file(b.p("sh", "b-file"), 512 * K)
    assert used(b) == (BLOCK + 512 * K, 2)
    assert shared_usage(b) == (512 * K, 1)
    assert used(a) == (1 * M, 2)
    # wsctl quota show reports the same usage
    r = a.wsctl("quota", "show", a.name, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["bytes"]["used"] == 1 * M
    # deleting its own file gives A its charge back, and room again
    os.unlink(a.p("sh", "big"))
    wait_ledger(a, lambda q: (q["bytes_used"], q["inodes_used"]) == base_a)
    assert shared_usage(a) == (0, 0)
    make_file(a.p("sh", "again"), 1 * M - BLOCK)
    assert used(a) == (1 * M, 2)


def test_inode_quota_in_the_shared_dir(make_ws, src):
    a = mount_shared(make_ws, src, "quota_inodes=3")
    assert used(a)[1] == 1                  # /sh in the upper
    write_file(a.p("sh", "f1"), b"1")
    os.mkdir(a.p("sh", "d1"))
    assert used(a)[1] == 3
    expect_errno(errno.EDQUOT, os.open, a.p("sh", "f2"),
                 os.O_WRONLY | os.O_CREAT, 0o644)
    expect_errno(errno.EDQUOT, os.mkdir, a.p("sh", "d2"))
    expect_errno(errno.EDQUOT, os.symlink, "f1", a.p("sh", "l2"))
    expect_errno(errno.EDQUOT, os.mkfifo, a.p("sh", "p2"))
    assert sorted(os.listdir(src)) == ["d1", "f1"]
    assert shared_usage(a) == (2 * BLOCK, 2)
    # removing its own entries gives A its inodes back
    os.rmdir(a.p("sh", "d1"))
    wait_ledger(a, lambda q: q["inodes_used"] == 2)
    os.symlink("f1", a.p("sh", "l2"))
    os.unlink(a.p("sh", "f1"))
    wait_ledger(a, lambda q: q["inodes_used"] == 2)
    assert shared_usage(a) == (BLOCK, 1)
    os.mkfifo(a.p("sh", "p2"))
    assert used(a)[1] == 3


def test_removing_anothers_entry_frees_no_inode(make_ws, src):
    a = mount_shared(make_ws, src, "quota_inodes=3")
    write_file(a.p("sh", "f1"), b"1")
    os.mkdir(a.p("sh", "d1"))
    os.mkdir(os.path.join(src, "theirs"))
    seen_within(lambda: os.path.isdir(a.p("sh", "theirs")), "their dir")
    os.rmdir(a.p("sh", "theirs"))
    time.sleep(0.1)
    assert used(a)[1] == 3
    expect_errno(errno.EDQUOT, os.mkdir, a.p("sh", "d2"))


def test_deleting_anothers_file_gives_no_credit(make_ws, src):
    a = mount_shared(make_ws, src)
    b = mount_shared(make_ws, src, state=a.state)
    make_file(a.p("sh", "a-file"), 200 * K)
    charged_a = used(a)
    assert shared_usage(a) == (200 * K, 1)
    base_b = used(b)
    seen_within(lambda: os.path.exists(b.p("sh", "a-file")), "A's file")
    os.unlink(b.p("sh", "a-file"))
    assert gone(os.path.join(src, "a-file"))
    # B was charged nothing there, so it is credited nothing
    time.sleep(0.1)             # a credit would come with the unlink reply
    assert used(b) == base_b and shared_usage(b) == (0, 0)
    # and A is not credited for a removal its requests did not make
    assert used(a) == charged_a
    # B pays for a file of its own; removing, truncating or renaming over
    # files it did not grow still credits it no bytes
    make_file(b.p("sh", "b-file"), 100 * K)
    assert used(b) == (base_b[0] + 100 * K, base_b[1] + 1)
    for name in ("host-file", "host-trunc", "victim"):
        make_file(os.path.join(src, name), 300 * K)
    seen_within(lambda: os.path.exists(b.p("sh", "victim")), "host files")
    os.unlink(b.p("sh", "host-file"))
    os.truncate(b.p("sh", "host-trunc"), 0)
    write_file(b.p("sh", "small"), b"s")
    os.rename(b.p("sh", "small"), b.p("sh", "victim"))
    time.sleep(0.1)
    assert used(b)[0] == base_b[0] + 100 * K + BLOCK
    assert shared_usage(b)[0] == 100 * K + BLOCK
    assert os.path.getsize(os.path.join(src, "host-trunc")) == 0
    # its own files give back what they cost, and no more
    os.unlink(b.p("sh", "b-file"))
    os.unlink(b.p("sh", "victim"))
    wait_ledger(b, lambda q: q["bytes_used"] == base_b[0])
    assert shared_usage(b)[0] == 0


def test_deleting_anothers_file_buys_no_room(make_ws, src):
    a = mount_shared(make_ws, src, "quota_bytes=1M")
    make_file(a.p("sh", "mine"), 1 * M - BLOCK)    # A is at its limit
    expect_errno(errno.EDQUOT, make_file, a.p("sh", "more"), 1)
    make_file(os.path.join(src, "theirs"), 512 * K)
    seen_within(lambda: os.path.exists(a.p("sh", "theirs")), "their file")
    os.unlink(a.p("sh", "theirs"))
    time.sleep(0.1)
    assert used(a)[0] == 1 * M
    fd = os.open(a.p("sh", "mine"), os.O_WRONLY | os.O_APPEND)
    try:
        expect_errno(errno.EDQUOT, os.write, fd, b"x")
    finally:
        os.close(fd)
    assert os.path.getsize(os.path.join(src, "mine")) == 1 * M - BLOCK
    # A makes room only by shrinking what it paid for
    os.truncate(a.p("sh", "mine"), 512 * K)
    make_file(a.p("sh", "more"), 256 * K)
    assert used(a)[0] == BLOCK + 768 * K


def test_a_file_grown_by_another_is_charged_only_for_own_growth(make_ws, src):
    a = mount_shared(make_ws, src, "quota_bytes=1M")
    b = mount_shared(make_ws, src, state=a.state)
    base = used(a)
    write_file(a.p("sh", "g"), b"a" * BLOCK)
    assert used(a) == (base[0] + BLOCK, base[1] + 1)
    # B grows A's file to twice A's whole quota
    fd = os.open(b.p("sh", "g"), os.O_WRONLY | os.O_APPEND)
    try:
        write_all(fd, b"b" * (2 * M - BLOCK))
    finally:
        os.close(fd)
    seen_within(lambda: os.stat(a.p("sh", "g")).st_size == 2 * M, "B's growth")
    # A appends and pays for its 4 KiB only (its tracked 4 KiB size would
    # make this 2 MiB of growth, over its limit)
    fd = os.open(a.p("sh", "g"), os.O_WRONLY | os.O_APPEND)
    try:
        assert os.write(fd, b"c" * BLOCK) == BLOCK
    finally:
        os.close(fd)
    assert used(a) == (base[0] + 2 * BLOCK, base[1] + 1)
    fd = os.open(a.p("sh", "g"), os.O_WRONLY)
    try:
        # rewriting bytes that exist costs nothing
        assert os.pwrite(fd, b"d" * BLOCK, 0) == BLOCK
        assert used(a) == (base[0] + 2 * BLOCK, base[1] + 1)
        # a write extending from where the file really ends
        assert os.pwrite(fd, b"e", 2 * M + BLOCK) == 1
        assert used(a) == (base[0] + 3 * BLOCK, base[1] + 1)
        # shrinking it gives back only what A paid, not B's 2 MiB
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)
    assert os.path.getsize(os.path.join(src, "g")) == 0
    assert used(a) == (base[0], base[1] + 1)
    assert shared_usage(a) == (0, 1)
    # a file B made: A pays for the growth its truncate causes, no more
    make_file(b.p("sh", "g2"), 8 * K)
    os.truncate(a.p("sh", "g2"), 16 * K)
    assert used(a) == (base[0] + 8 * K, base[1] + 1)


def test_the_shared_charge_is_handed_back_at_unmount(make_ws, src):
    w = mount_shared(make_ws, src, "quota_bytes=2M")
    make_file(w.p("sh", "s"), 300 * K)
    os.mkdir(w.p("sh", "sd"))
    make_file(w.p("own"), 100 * K)
    upper = scan_path(w.upper)
    assert used(w) == (upper[0] + 300 * K + BLOCK, upper[1] + 2)
    assert shared_usage(w) == (300 * K + BLOCK, 2)
    w.umount()
    row = quota_row(w)
    assert row["clean"] == 1
    assert (row["used_bytes"], row["used_inodes"]) == scan_path(w.upper)
    w.mount()
    assert_ledger_matches_scan(w)
    assert shared_usage(w) == (0, 0)
    # the shared files outlive the mount, and are nobody's charge now
    assert os.path.getsize(os.path.join(src, "s")) == 300 * K
    os.unlink(w.p("sh", "s"))
    assert_ledger_matches_scan(w)


def test_an_open_file_removed_is_credited_at_its_last_close(make_ws, src):
    w = mount_shared(make_ws, src)
    base = used(w)
    make_file(w.p("sh", "f"), 100 * K)
    fd = os.open(w.p("sh", "f"), os.O_RDWR)
    try:
        os.unlink(w.p("sh", "f"))
        assert gone(os.path.join(src, "f"))
        # still there for whoever has it open, so still paid for
        assert used(w) == (base[0] + 100 * K, base[1] + 1)
        assert os.pwrite(fd, b"x" * BLOCK, 100 * K) == BLOCK
        assert used(w) == (base[0] + 100 * K + BLOCK, base[1] + 1)
    finally:
        os.close(fd)
    wait_ledger(w, lambda q: (q["bytes_used"], q["inodes_used"]) == base)
    assert shared_usage(w) == (0, 0)


@pytest.fixture
def tmpfs(tmpbase):
    """mount(NAME): a fresh tmpfs at TMPBASE/NAME, lazily unmounted after
    the test. tmpfs numbers its inodes 1, 2, 3... per mount."""
    made = []

    def mount(name):
        d = os.path.join(tmpbase, name)
        os.mkdir(d)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m,mode=0755",
                        "wsfs-test", d], check=True, timeout=30)
        made.append(d)
        return d

    yield mount
    for d in reversed(made):
        subprocess.run(["umount", "-l", d], capture_output=True, timeout=30)


def test_removing_a_shared_file_keeps_upper_xattr_charges(tmpfs, make_ws):
    """The xattr charge table is keyed by inode number. A shared source on
    another filesystem has numbers of its own, and removing a shared file
    must not take the charge of the upper inode that has the same number
    (nothing in a shared directory is charged for xattrs)."""
    tmpfs("wt")                     # the workspace's base: upper, state
    src = tmpfs("srcfs")
    os.chmod(src, 0o777)
    w = make_ws(sub="wt", options=f"allow_other,shared={src}:/sh")
    write_file(w.p("x"), b"upper file")
    os.setxattr(w.p("x"), "user.tag", b"v" * 1000)
    num = os.stat(w.u("x")).st_ino
    for i in range(100000):
        p = os.path.join(src, f"f{i}")
        write_file(p, b"")
        if os.stat(p).st_ino >= num:
            break
    assert os.stat(p).st_ino == num, "no shared file got the upper's number"
    seen_within(lambda: os.path.exists(w.p("sh", os.path.basename(p))),
                "the shared file")
    assert os.stat(w.p("sh", os.path.basename(p))).st_ino == num
    assert_ledger_matches_scan(w)
    os.unlink(w.p("sh", os.path.basename(p)))
    assert_ledger_matches_scan(w)
    # the upper file's xattr charge is still known, so removing it frees it
    os.unlink(w.p("x"))
    assert_ledger_matches_scan(w)
    w.umount()
    row = quota_row(w)
    assert (row["used_bytes"], row["used_inodes"]) == scan_path(w.upper)


# ============================================================ 4. bad input

BAD_SHARED = [
    ("shared={src}", "no target; the form is SOURCE:TARGET"),
    ("shared=", "no target"),
    ("shared=:/sh", "empty source"),
    ("shared={src}:", "empty target"),
    ("shared=relative/src:/sh", "source 'relative/src' is not an absolute"),
    ("shared=/no/such/dir:/sh", "No such file or directory"),
    ("shared={file}:/sh", "not a directory"),
    ("shared={src}:sh", "target 'sh' is not an absolute path"),
    ("shared={src}:/", "cannot be at '/'"),
    ("shared={src}:/a/../sh", "'..'"),
    ("shared={src}:/../sh", "'..'"),
    ("shared={src}:/./sh", "'.'"),
    ("shared={src}:/my sh", "contains a space"),
    ("shared={src}:/sh:ro", "too many ':'"),
    ("shared={src}:/sh:shared", "too many ':'"),
    ("shared={src}:/sh:x:y", "too many ':'"),
    ("layer={src}:/in:shared", "shared=SOURCE:TARGET"),
    ("shared={upper}:/sh", "shared source '{upper}' is the upper"),
    ("shared={upper}/sub:/sh", "is inside the upper"),
    ("shared={upper}/..:/sh", "contains the upper"),
    ("shared={src}:/sh,shared={src2}:/sh", "layers overlap: '/sh' and '/sh'"),
    ("shared={src}:/sh,shared={src2}:/sh/in", "overlap"),
    ("layer={src2}:/in,shared={src}:/in/sh", "overlap"),
    ("shared={src}:/sh,layer={src2}:/sh/in", "overlap"),
    ("shared={src}:/sh,ephemeral=/sh/tmp", "overlap"),
    # an ro or cow view of a shared source would not show its changes
    ("layer={src2}:/in,shared={src2}:/sh",
     "ro layer source '{src2}' is the shared directory '{src2}'"),
    ("shared={src2}:/sh,layer={src2}/sub:/in",
     "ro layer source '{src2}/sub' is inside the shared directory"),
    ("shared={src2}/sub:/sh,layer={src2}:/:cow",
     "cow layer source '{src2}' contains the shared directory"),
]


@pytest.mark.parametrize("opt,needle", BAD_SHARED,
                         ids=[b[0] for b in BAD_SHARED])
def test_bad_shared_options_fail_cleanly(make_ws, src, tmpbase, opt, needle):
    file = os.path.join(tmpbase, "plain")
    write_file(file, b"x")
    src2 = os.path.join(tmpbase, "src2")
    os.makedirs(os.path.join(src2, "sub"))
    w = make_ws(mount=False)
    os.mkdir(w.u("sub"))
    before_upper = sorted(os.listdir(w.upper))
    fmt = dict(src=src, src2=src2, file=file, upper=w.upper)
    w.options = "allow_other," + opt.format(**fmt)
    r = w.mount(check=False)
    assert r.returncode != 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("wsfs: "), r.stderr
    assert needle.format(**fmt) in lines[0], r.stderr
    if "layer=" not in opt:         # a shared directory takes no MODE
        assert "MODE" not in lines[0], r.stderr
    assert not is_mounted(w.mnt)
    assert sorted(os.listdir(w.upper)) == before_upper
    assert os.listdir(w.u("sub")) == []
    assert not os.path.exists(w.state), "a refused mount made its state dir"
    assert os.listdir(src) == [] and os.listdir(src2) == ["sub"]


@pytest.mark.parametrize("spec,how", [
    ("shared={state}:/sh", "shared source '{state}' is the state directory"),
    ("shared={state}/log:/sh", "is inside the state directory"),
    ("shared={parent}:/sh", "shared source '{parent}' contains the state"),
    ("layer={state}:/in", "ro source '{state}' is the state directory"),
])
def test_no_layer_may_show_the_state_directory(make_ws, tmpbase, spec, how):
    """state.db (quota limits) and the audit signing key must never be in
    the agent's reach, a shared layer's above all; stored stacks too."""
    w = make_ws(options="allow_other")
    parent = os.path.join(tmpbase, "st")
    os.mkdir(parent)
    w.umount()
    os.rename(w.state, os.path.join(parent, "state"))
    w.state = os.path.join(parent, "state")
    before = sorted(os.listdir(w.state))
    fmt = dict(state=w.state, parent=parent)
    w.options = "allow_other," + spec.format(**fmt)
    r = w.mount(check=False)
    assert r.returncode != 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("wsfs: "), r.stderr
    assert how.format(**fmt) in lines[0], r.stderr
    assert not is_mounted(w.mnt)
    assert os.listdir(w.u()) == []
    assert sorted(os.listdir(w.state)) == before


def test_a_stored_stack_showing_the_state_directory_is_refused(make_ws):
    w = make_ws(options="allow_other")
    w.umount()
    # a row put in state.db by hand, or stored by an older wsfs
    db = sqlite3.connect(os.path.join(w.state, "state.db"), timeout=5)
    try:
        with db:
            db.execute("INSERT INTO layers(name, position, mode, source, "
                       "target) VALUES(?, 0, 'shared', ?, '/sh')",
                       (w.name, os.path.realpath(w.state)))
    finally:
        db.close()
    r = w.mount(check=False)
    assert r.returncode != 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "is the state directory" in lines[0], r.stderr
    assert not is_mounted(w.mnt)
    assert os.listdir(w.upper) == []


# ================================================== 5. escape attempts

def test_dotdot_and_planted_symlinks_stay_in_the_workspace(make_ws, src,
                                                           tmpbase):
    """`..` out of the shared target is the workspace, never SOURCE's
    parent on the host; symlinks the host planted in SOURCE come back
    verbatim and resolve in the agent's view of the mount."""
    write_file(os.path.join(tmpbase, "host-secret"), b"next to SOURCE")
    os.mkdir(os.path.join(src, "d"))
    os.symlink("..", os.path.join(src, "up"))
    os.symlink("../..", os.path.join(src, "up2"))
    os.symlink("../..", os.path.join(src, "d", "up"))
    os.symlink("/etc", os.path.join(src, "abs"))
    outside = os.path.join(tmpbase, "outside")
    write_file(outside, b"outside", 0o666)
    os.symlink(outside, os.path.join(src, "victim"))
    w = mount_shared(make_ws, src)
    write_file(w.p("mine"), b"workspace file")
    root_id = (os.stat(w.mnt).st_dev, os.stat(w.mnt).st_ino)
    mine = os.listdir(w.mnt)
    assert sorted(mine) == ["mine", "sh"]

    def agent():
        ident = lambda p: (os.stat(p).st_dev, os.stat(p).st_ino)
        return {
            "dotdot": ident(w.p("sh", "..")),
            "dotdot2": ident(w.p("sh", "d", "..", "..")),
            "ls_dotdot": sorted(os.listdir(w.p("sh", ".."))),
            "ls_up": sorted(os.listdir(w.p("sh", "up"))),
            "ls_d_up": sorted(os.listdir(w.p("sh", "d", "up"))),
            "ls_up2": sorted(os.listdir(w.p("sh", "up2"))),
            "readlinks": [os.readlink(w.p("sh", n))
                          for n in ("up", "up2", "abs", "victim")],
            "abs_is_link": stat.S_ISLNK(os.lstat(w.p("sh", "abs")).st_mode),
            "secret": call_err(lambda: read_file(
                w.p("sh", "up", "host-secret"))),
            "secret2": call_err(lambda: read_file(
                w.p("sh", "..", "host-secret"))),
        }

    res = ok_as(U1, G1, agent)
    assert res["dotdot"] == root_id and res["dotdot2"] == root_id
    assert res["ls_dotdot"] == sorted(mine)
    # `up -> ..` is the workspace root, not tmpbase (SOURCE's parent)
    assert res["ls_up"] == sorted(mine) == res["ls_d_up"]
    # `up2 -> ../..` is the mount's parent in the agent's view
    assert res["ls_up2"] == sorted(os.listdir(w.base))
    assert "host-secret" not in res["ls_up"] + res["ls_up2"]
    assert res["readlinks"] == ["..", "../..", "/etc", outside]
    assert res["abs_is_link"]
    assert res["secret"] == res["secret2"] == errno.ENOENT
    # what acts on a link changes the link, never what it points at
    ok_as(U1, G1, lambda: os.rename(w.p("sh", "victim"), w.p("sh", "v2")))
    assert os.readlink(os.path.join(src, "v2")) == outside
    ok_as(U1, G1, lambda: os.unlink(w.p("sh", "v2")))
    assert read_file(outside) == b"outside"
    assert sorted(os.listdir(tmpbase)) == sorted(
        ["host-secret", "outside", "src", "w0"])


def call_err(fn):
    """0 if FN succeeds, else its errno (for agents' results)."""
    try:
        fn()
        return 0
    except OSError as e:
        return e.errno


def test_nothing_moves_between_shared_and_upper(make_ws, src):
    w = mount_shared(make_ws, src)
    os.chmod(w.mnt, 0o777)      # the agent may change the workspace root
    ok_as(U1, G1, lambda: write_file(w.p("sh", "s"), b"shared"))
    ok_as(U1, G1, lambda: write_file(w.p("own"), b"upper"))
    ok_as(U1, G1, lambda: os.mkdir(w.p("dir")))
    for fn in (lambda: os.link(w.p("sh", "s"), w.p("ln")),
               lambda: os.link(w.p("own"), w.p("sh", "ln")),
               lambda: os.rename(w.p("sh", "s"), w.p("moved")),
               lambda: os.rename(w.p("own"), w.p("sh", "moved")),
               lambda: os.rename(w.p("dir"), w.p("sh", "dir")),
               lambda: renameat2(w.p("own"), w.p("sh", "s"),
                                 RENAME_EXCHANGE)):
        err_as(U1, G1, errno.EXDEV, fn)
    # the target itself cannot be removed, moved away or replaced
    err_as(U1, G1, errno.EBUSY, lambda: os.rmdir(w.p("sh")))
    err_as(U1, G1, errno.EBUSY, lambda: os.rename(w.p("sh"), w.p("x")))
    err_as(U1, G1, errno.EBUSY, lambda: os.rename(w.p("dir"), w.p("sh")))
    expect_errno(errno.EBUSY, os.rmdir, w.p("sh"))
    assert sorted(os.listdir(src)) == ["s"]
    assert sorted(os.listdir(w.upper)) == ["dir", "own", "sh"]
    assert os.listdir(w.u("sh")) == []
    assert read_file(os.path.join(src, "s")) == b"shared"
    assert os.stat(os.path.join(src, "s")).st_uid == U1


# ============================================== 6. the stored layer stack

def test_status_and_the_stored_stack(make_ws, src, tmpbase):
    # given through a symlink: resolved once, at parse time
    link = os.path.join(tmpbase, "current")
    os.symlink(src, link)
    w = make_ws(options=f"allow_other,shared={link}:/team/sh")
    r = w.wsctl("status", w.name)
    assert r.returncode == 0, r.stderr
    assert any(ln.split() == ["shared", "/team/sh", src]
               for ln in r.stdout.splitlines()), r.stdout
    assert status_json(w)["layers"] == [
        {"mode": "shared", "target": "/team/sh", "source": src}]
    db = sqlite3.connect(os.path.join(w.state, "state.db"), timeout=5)
    try:
        rows = db.execute("SELECT mode, source, target FROM layers WHERE "
                          "name=?", (w.name,)).fetchall()
    finally:
        db.close()
    assert rows == [("shared", src, "/team/sh")]
    write_file(w.p("team", "sh", "f"), b"kept")
    w.umount()
    # repointing the symlink changes nothing; a mount with no layer
    # options shows the stored stack again, read-write
    other = os.path.join(tmpbase, "other")
    os.mkdir(other)
    os.unlink(link)
    os.symlink(other, link)
    w.options = "allow_other"
    w.mount()
    assert status_json(w)["layers"] == [
        {"mode": "shared", "target": "/team/sh", "source": src}]
    assert read_file(w.p("team", "sh", "f")) == b"kept"
    write_file(w.p("team", "sh", "g"), b"new")
    assert sorted(os.listdir(src)) == ["f", "g"]
    assert os.listdir(other) == []
    expect_errno(errno.EBUSY, os.rmdir, w.p("team", "sh"))
    w.umount()
    # a stored source that has gone fails the mount cleanly
    moved = os.path.join(tmpbase, "moved")
    os.rename(src, moved)
    r = w.mount(check=False)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("wsfs: "), r.stderr
    assert src in lines[0] and "No such file or directory" in lines[0], \
        r.stderr
    assert not is_mounted(w.mnt)
    os.rename(moved, src)
    # new layer options replace the stack: the target is an upper
    # directory again, empty
    w.options = f"allow_other,layer={other}:/in"
    w.mount()
    assert status_json(w)["layers"] == [
        {"mode": "ro", "target": "/in", "source": other}]
    assert os.listdir(w.p("team", "sh")) == []
    assert sorted(os.listdir(src)) == ["f", "g"]
