"""Quota limits at their boundaries, through a live mount.

Every growing call: exactly at the limit succeeds, one byte (or inode) over
fails with EDQUOT and leaves nothing partial behind, checked in the upper
directory and in the ledger. Shrinking always works over quota, and growth
resumes once usage drops.
"""
import errno
import os
import shutil
import socket
import stat

import pytest

from helpers import (FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE,
                     FALLOC_FL_ZERO_RANGE, expect_errno, fallocate)
from quota_util import (BLOCK, K, M, assert_ledger_matches_scan, fsize,
                        make_file, qmount, read_upper, set_quota, touch, used,
                        wait_ledger, write_all)

EDQUOT = errno.EDQUOT
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


# ======================================================= boundaries: data

def test_write_exactly_to_limit_then_one_byte_over(make_ws):
    w = qmount(make_ws, "quota_bytes=64K")
    fd = os.open(w.p("f"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        write_all(fd, b"a" * (64 * K - 1), chunk=16 * K)
        assert used(w) == (64 * K, 1)
        # the last byte of the last charged block costs nothing more
        assert os.write(fd, b"b") == 1
        assert used(w) == (64 * K, 1)
        expect_errno(EDQUOT, os.write, fd, b"c")
        expect_errno(EDQUOT, os.write, fd, b"c" * (64 * K))
    finally:
        os.close(fd)
    data = read_upper(w.u("f"))
    assert len(data) == 64 * K
    assert data.endswith(b"ab")
    assert used(w) == (64 * K, 1)
    assert_ledger_matches_scan(w)


def test_write_straddling_the_limit_is_refused_whole(make_ws):
    w = qmount(make_ws, "quota_bytes=64K")
    start = 60 * K                       # 4 KiB of room
    make_file(w.p("g"), start)
    fd = os.open(w.p("g"), os.O_WRONLY)
    try:
        os.lseek(fd, 0, os.SEEK_END)
        expect_errno(EDQUOT, os.write, fd, b"x" * 5000)
        assert fsize(w.u("g")) == start
        expect_errno(EDQUOT, os.write, fd, b"x" * (BLOCK + 1))
        assert fsize(w.u("g")) == start
        assert os.lseek(fd, 0, os.SEEK_CUR) == start
        assert used(w) == (start, 1)
        assert os.write(fd, b"y" * BLOCK) == BLOCK
    finally:
        os.close(fd)
    assert fsize(w.u("g")) == 64 * K
    assert used(w) == (64 * K, 1)
    assert_ledger_matches_scan(w)


def test_write_from_mid_page_stops_at_the_limit(make_ws):
    # A write starting inside a page that is not in the page cache is sent
    # by the kernel as two requests split at the page boundary: the first,
    # within the charged block, may succeed (a short write); never a byte
    # lands past the limit.
    w = qmount(make_ws, "quota_bytes=64K")
    start = 60 * K + 100                 # charged 64 KiB: 3996 bytes of room
    make_file(w.p("g"), start)
    fd = os.open(w.p("g"), os.O_WRONLY | os.O_APPEND)
    try:
        try:
            n = os.write(fd, b"x" * 5000)
        except OSError as e:
            assert e.errno == EDQUOT
            n = 0
        assert n in (0, 64 * K - start), n
        assert fsize(w.u("g")) == start + n
        if n == 0:
            assert os.write(fd, b"y" * (64 * K - start)) == 64 * K - start
        expect_errno(EDQUOT, os.write, fd, b"z")
    finally:
        os.close(fd)
    assert fsize(w.u("g")) == 64 * K
    assert used(w) == (64 * K, 1)
    assert_ledger_matches_scan(w)


def test_unaligned_limit_rounds_charges_to_blocks(make_ws):
    # 10000 bytes of limit hold two 4 KiB blocks, not a third partial one
    w = qmount(make_ws, "quota_bytes=10000")
    make_file(w.p("f"), 8192)
    fd = os.open(w.p("f"), os.O_WRONLY | os.O_APPEND)
    try:
        expect_errno(EDQUOT, os.write, fd, b"z")
    finally:
        os.close(fd)
    expect_errno(EDQUOT, os.mkdir, w.p("d"))
    assert not os.path.lexists(w.u("d"))
    assert fsize(w.u("f")) == 8192
    assert used(w) == (8192, 1)


def test_pwrite_past_eof_charges_the_hole(make_ws):
    w = qmount(make_ws, "quota_bytes=64K")
    fd = os.open(w.p("s"), os.O_RDWR | os.O_CREAT, 0o644)
    fd2 = os.open(w.p("t"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert os.pwrite(fd, b"e", 64 * K - 1) == 1
        assert used(w) == (64 * K, 2)
        assert fsize(w.u("s")) == 64 * K
        # sparse on disk, charged for its apparent size all the same
        assert os.stat(w.u("s")).st_blocks * 512 < 64 * K
        expect_errno(EDQUOT, os.pwrite, fd, b"f", 64 * K)
        expect_errno(EDQUOT, os.pwrite, fd, b"f", 1 << 40)
        assert fsize(w.u("s")) == 64 * K
        # overwriting inside the file costs nothing, even when full
        assert os.pwrite(fd, b"g" * BLOCK, 2 * BLOCK) == BLOCK
        # a second file cannot get its first byte
        expect_errno(EDQUOT, os.pwrite, fd2, b"h", 0)
        expect_errno(EDQUOT, os.pwrite, fd2, b"h", 1 << 30)
        assert fsize(w.u("t")) == 0
    finally:
        os.close(fd)
        os.close(fd2)
    assert used(w) == (64 * K, 2)
    assert_ledger_matches_scan(w)


def test_append_boundary(make_ws):
    w = qmount(make_ws, "quota_bytes=64K")
    fa = os.open(w.p("log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    fb = os.open(w.p("log"), os.O_WRONLY)
    try:
        # FA was opened while the file was empty: appends go to the real end
        write_all(fb, b"p" * 10000)
        assert os.write(fa, b"q" * (64 * K - 10000)) == 64 * K - 10000
        assert used(w) == (64 * K, 1)
        expect_errno(EDQUOT, os.write, fa, b"r")
        expect_errno(EDQUOT, os.write, fa, b"r" * (32 * K))
        assert fsize(w.u("log")) == 64 * K
        # one byte of room made by a shrink: exactly one byte appends
        os.ftruncate(fb, 64 * K - 1)
        assert os.write(fa, b"s") == 1
        expect_errno(EDQUOT, os.write, fa, b"t")
    finally:
        os.close(fa)
        os.close(fb)
    data = read_upper(w.u("log"))
    assert data == b"p" * 10000 + b"q" * (64 * K - 10000 - 1) + b"s"
    assert used(w) == (64 * K, 1)
    assert_ledger_matches_scan(w)


@pytest.mark.parametrize("how", ["ftruncate", "truncate"])
def test_truncate_up_boundary(make_ws, how):
    w = qmount(make_ws, "quota_bytes=64K")
    touch(w.p("f"))
    touch(w.p("g"))

    def grow(name, size):
        if how == "truncate":
            os.truncate(w.p(name), size)
        else:
            fd = os.open(w.p(name), os.O_WRONLY)
            try:
                os.ftruncate(fd, size)
            finally:
                os.close(fd)

    grow("f", 64 * K - 4095)
    assert used(w) == (64 * K, 2)
    grow("f", 64 * K)                    # same last block: free
    assert fsize(w.u("f")) == 64 * K
    expect_errno(EDQUOT, grow, "f", 64 * K + 1)
    expect_errno(EDQUOT, grow, "f", 1 << 40)
    assert fsize(w.u("f")) == 64 * K
    expect_errno(EDQUOT, grow, "g", 1)
    assert fsize(w.u("g")) == 0
    assert used(w) == (64 * K, 2)
    grow("f", 10)                        # shrinking frees 60 KiB
    assert used(w) == (BLOCK, 2)
    grow("g", 60 * K)
    expect_errno(EDQUOT, grow, "g", 60 * K + 1)
    assert fsize(w.u("g")) == 60 * K
    assert used(w) == (64 * K, 2)
    assert_ledger_matches_scan(w)


def test_growth_failing_in_the_backing_fs_gives_back_its_reservation(make_ws):
    # ext4 files stop at 16 TiB: the daemon reserves, the syscall fails
    # with EFBIG, and the reservation must be returned.
    w = qmount(make_ws)
    make_file(w.p("f"), 100)
    fd = os.open(w.p("f"), os.O_RDWR)
    try:
        expect_errno(errno.EFBIG, os.ftruncate, fd, 1 << 50)
        expect_errno(errno.EFBIG, os.pwrite, fd, b"x", 1 << 50)
        expect_errno(errno.EFBIG, os.truncate, w.p("f"), 1 << 50)
    finally:
        os.close(fd)
    assert fsize(w.u("f")) == 100
    assert used(w) == (BLOCK, 1)
    assert_ledger_matches_scan(w)


def test_fallocate_boundary(make_ws):
    w = qmount(make_ws, "quota_bytes=64K")
    fd = os.open(w.p("f"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fallocate(fd, 0, 0, 60 * K)
        assert used(w) == (60 * K, 1)
        fallocate(fd, 0, 60 * K, 4 * K)
        assert used(w) == (64 * K, 1)
        assert fsize(w.u("f")) == 64 * K
        expect_errno(EDQUOT, fallocate, fd, 0, 64 * K, 1)
        expect_errno(EDQUOT, fallocate, fd, 0, 0, 64 * K + 1)
        expect_errno(EDQUOT, fallocate, fd, FALLOC_FL_ZERO_RANGE, 64 * K - 1, 2)
        assert fsize(w.u("f")) == 64 * K
        fallocate(fd, 0, 100, 1000)                       # inside: free
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 64 * K)     # inside: free
        expect_errno(errno.EOPNOTSUPP, fallocate, fd, FALLOC_FL_KEEP_SIZE,
                     64 * K - 1, 2)
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 32 * K)
        assert fsize(w.u("f")) == 64 * K
        assert used(w) == (64 * K, 1)
    finally:
        os.close(fd)
    assert_ledger_matches_scan(w)


def test_fallocate_keep_size_past_eof_only_refused_under_a_byte_limit(make_ws):
    # Preallocating past EOF takes disk space apparent size does not show:
    # refused under a byte limit (hard or soft), allowed without one.
    w = qmount(make_ws, "quota_inodes=100")
    make_file(w.p("f"), 5000)
    fd = os.open(w.p("f"), os.O_RDWR)
    try:
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1 * M)
        assert fsize(w.u("f")) == 5000
        assert os.stat(w.u("f")).st_blocks * 512 >= 1 * M
        assert used(w) == (8192, 1)
        assert_ledger_matches_scan(w)
        set_quota(w, soft_bytes="1G")
        expect_errno(errno.EOPNOTSUPP, fallocate, fd, FALLOC_FL_KEEP_SIZE,
                     0, 2 * M)
        set_quota(w, soft_bytes=None, bytes="1G")
        expect_errno(errno.EOPNOTSUPP, fallocate, fd, FALLOC_FL_KEEP_SIZE,
                     1 * M, 1)
        # within the file it is no growth at all
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 5000)
    finally:
        os.close(fd)
    assert fsize(w.u("f")) == 5000
    assert os.stat(w.u("f")).st_blocks * 512 < 2 * M
    assert_ledger_matches_scan(w)


def test_copy_file_range_boundary(make_ws):
    w = qmount(make_ws, "quota_bytes=96K")
    make_file(w.p("src"), 32 * K)
    s = os.open(w.p("src"), os.O_RDONLY)
    d = os.open(w.p("dst"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert os.copy_file_range(s, d, 32 * K, 0, 0) == 32 * K
        assert os.copy_file_range(s, d, 32 * K, 0, 32 * K) == 32 * K
        assert used(w) == (96 * K, 2)
        expect_errno(EDQUOT, os.copy_file_range, s, d, 1, 0, 64 * K)
        expect_errno(EDQUOT, os.copy_file_range, s, d, 32 * K, 0, 48 * K)
        assert fsize(w.u("dst")) == 64 * K
        assert used(w) == (96 * K, 2)
        # a count larger than the source copies to the source's end
        os.ftruncate(d, 32 * K)
        assert os.copy_file_range(s, d, 1 << 30, 0, 32 * K) == 32 * K
        assert fsize(w.u("dst")) == 64 * K
    finally:
        os.close(s)
        os.close(d)
    assert read_upper(w.u("dst")) == b"x" * (64 * K)
    assert used(w) == (96 * K, 2)
    assert_ledger_matches_scan(w)


# ======================================================= boundaries: entries

def _mkdir(p):
    os.mkdir(p)


def _symlink(p):
    os.symlink("some/target", p)


def _create(p):
    touch(p)


def _open_creat(p):
    with open(p, "w"):
        pass


def _mknod_reg(p):
    os.mknod(p, stat.S_IFREG | 0o644)


def _mkfifo(p):
    os.mkfifo(p)


def _socket(p):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(p)
    finally:
        s.close()


MAKERS = {"create": _create, "open_creat": _open_creat, "mknod_reg": _mknod_reg,
          "mkdir": _mkdir, "symlink": _symlink, "mkfifo": _mkfifo,
          "socket": _socket}


@pytest.mark.parametrize("kind", ["mkdir", "symlink"])
def test_byte_limit_on_mkdir_and_symlink(make_ws, kind):
    w = qmount(make_ws, "quota_bytes=16K")
    make = MAKERS[kind]
    for i in range(4):
        make(w.p(f"e{i}"))
    assert used(w) == (16 * K, 4)
    expect_errno(EDQUOT, make, w.p("e4"))
    assert not os.path.lexists(w.u("e4"))
    assert not os.path.lexists(w.p("e4"))
    assert used(w) == (16 * K, 4)
    if kind == "mkdir":
        # a refused mkdir deep inside is no different
        expect_errno(EDQUOT, os.mkdir, w.p("e0", "sub"))
        assert os.listdir(w.u("e0")) == []
    assert_ledger_matches_scan(w)


def test_empty_files_and_fifos_cost_no_bytes(make_ws):
    w = qmount(make_ws, "quota_bytes=8K")
    os.mkdir(w.p("a"))
    os.mkdir(w.p("b"))
    assert used(w) == (8 * K, 2)
    touch(w.p("f"))
    os.mkfifo(w.p("p"))
    os.mknod(w.p("n"), stat.S_IFREG | 0o600)
    assert used(w) == (8 * K, 5)
    fd = os.open(w.p("f"), os.O_WRONLY)
    try:
        expect_errno(EDQUOT, os.write, fd, b"1")
    finally:
        os.close(fd)
    assert_ledger_matches_scan(w)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_inode_limit_on_each_creating_call(make_ws, kind):
    w = qmount(make_ws, "quota_inodes=3")
    make = MAKERS[kind]
    for i in range(3):
        make(w.p(f"n{i}"))
    assert used(w)[1] == 3
    expect_errno(EDQUOT, make, w.p("n3"))
    assert not os.path.lexists(w.u("n3"))
    assert not os.path.lexists(w.p("n3"))
    assert used(w)[1] == 3
    rm = os.rmdir if kind == "mkdir" else os.unlink
    if kind != "mkdir":
        # a hard link is never refused: it makes no inode
        os.link(w.p("n0"), w.p("l0"), follow_symlinks=False)
        assert os.lstat(w.u("l0")).st_ino == os.lstat(w.u("n0")).st_ino
        assert used(w)[1] == 3
        rm(w.p("n0"))                  # the inode lives on under l0
        assert used(w)[1] == 3
        expect_errno(EDQUOT, make, w.p("n3"))
        rm(w.p("l0"))
    else:
        rm(w.p("n0"))
    wait_ledger(w, lambda q: q["inodes_used"] == 2)
    make(w.p("n3"))
    assert used(w)[1] == 3
    assert_ledger_matches_scan(w)


def test_open_creat_of_existing_name_at_inode_limit(make_ws):
    w = qmount(make_ws, "quota_inodes=2")
    make_file(w.p("a"), 100)
    touch(w.p("b"))
    fd = os.open(w.p("a"), os.O_WRONLY | os.O_CREAT)
    os.close(fd)
    with open(w.p("a"), "w") as f:          # O_CREAT|O_TRUNC, existing
        f.write("new")
    expect_errno(errno.EEXIST, os.open, w.p("b"),
                 os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    expect_errno(EDQUOT, touch, w.p("c"))
    assert read_upper(w.u("a")) == b"new"
    assert used(w) == (BLOCK, 2)
    assert_ledger_matches_scan(w)


def test_refused_charge_takes_neither_bytes_nor_inodes(make_ws):
    w = qmount(make_ws, "quota_bytes=8K,quota_inodes=10")
    os.mkdir(w.p("a"))
    os.mkdir(w.p("b"))
    for _ in range(3):
        expect_errno(EDQUOT, os.mkdir, w.p("c"))
        expect_errno(EDQUOT, os.symlink, "x", w.p("s"))
    assert used(w) == (8 * K, 2)
    set_quota(w, inodes=2, bytes="1M")
    for _ in range(3):
        expect_errno(EDQUOT, os.mkdir, w.p("c"))
        expect_errno(EDQUOT, touch, w.p("f"))
    assert used(w) == (8 * K, 2)
    assert_ledger_matches_scan(w)


def test_setxattr_boundary(make_ws):
    w = qmount(make_ws, "quota_bytes=4196")        # 4096 + 100
    make_file(w.p("f"), BLOCK)
    assert used(w) == (BLOCK, 1)
    # "user.a" (6) + 94 = 100 bytes: exactly the room
    os.setxattr(w.p("f"), "user.a", b"v" * 94)
    assert used(w) == (4196, 1)
    expect_errno(EDQUOT, os.setxattr, w.p("f"), "user.b", b"")
    assert "user.b" not in os.listxattr(w.u("f"))
    # replacing with a value one byte bigger
    expect_errno(EDQUOT, os.setxattr, w.p("f"), "user.a", b"w" * 95)
    assert os.getxattr(w.u("f"), "user.a") == b"v" * 94
    # replacing with a value of the same size needs nothing more
    os.setxattr(w.p("f"), "user.a", b"u" * 94)
    assert os.getxattr(w.u("f"), "user.a") == b"u" * 94
    # on the root too: its user xattrs are charged
    expect_errno(EDQUOT, os.setxattr, w.mnt, "user.r", b"1")
    assert "user.r" not in os.listxattr(w.upper)
    assert used(w) == (4196, 1)
    # smaller replacement gives back the difference, bigger takes it again
    os.setxattr(w.p("f"), "user.a", b"w" * 50)
    assert used(w) == (4196 - 44, 1)
    os.setxattr(w.p("f"), "user.a", b"x" * 94)
    assert used(w) == (4196, 1)
    os.removexattr(w.p("f"), "user.a")
    assert used(w) == (BLOCK, 1)
    os.setxattr(w.mnt, "user.r", b"1" * 94)
    assert used(w) == (4196, 1)
    assert_ledger_matches_scan(w)


def test_failed_setxattr_leaks_no_charge(make_ws):
    w = qmount(make_ws, "quota_bytes=1M")
    touch(w.p("f"))
    os.setxattr(w.p("f"), "user.a", b"12345")
    before = used(w)
    expect_errno(errno.EEXIST, os.setxattr, w.p("f"), "user.a", b"x" * 100,
                 os.XATTR_CREATE)
    expect_errno(errno.ENODATA, os.setxattr, w.p("f"), "user.zz", b"x" * 100,
                 os.XATTR_REPLACE)
    expect_errno(errno.ENODATA, os.removexattr, w.p("f"), "user.nope")
    # user.* xattrs are not allowed on symlinks (nor fifos) by the backing fs
    os.symlink("f", w.p("ln"))
    os.mkfifo(w.p("fifo"))
    before = used(w)
    expect_errno(errno.EPERM, os.setxattr, w.p("ln"), "user.s", b"x" * 50,
                 follow_symlinks=False)
    expect_errno(errno.EPERM, os.setxattr, w.p("fifo"), "user.s", b"x" * 50)
    assert used(w) == before
    assert_ledger_matches_scan(w)


def test_xattrs_outside_user_namespace_are_free(make_ws):
    w = qmount(make_ws, "quota_bytes=4K")
    make_file(w.p("f"), BLOCK)
    expect_errno(EDQUOT, os.setxattr, w.p("f"), "user.x", b"1")
    try:
        os.setxattr(w.p("f"), "trusted.t", b"y" * 200)
    except OSError as e:
        pytest.fail(f"trusted.* xattr refused: {e}")
    assert os.getxattr(w.u("f"), "trusted.t") == b"y" * 200
    assert used(w) == (BLOCK, 1)
    assert_ledger_matches_scan(w)


def test_quota_errno_enospc(make_ws):
    w = qmount(make_ws, "quota_bytes=8K,quota_inodes=3,quota_errno=enospc")
    make_file(w.p("a"), 8 * K)
    fd = os.open(w.p("a"), os.O_RDWR | os.O_APPEND)
    try:
        expect_errno(errno.ENOSPC, os.write, fd, b"1")
        expect_errno(errno.ENOSPC, os.ftruncate, fd, 8 * K + 1)
        expect_errno(errno.ENOSPC, fallocate, fd, 0, 0, 9 * K)
    finally:
        os.close(fd)
    expect_errno(errno.ENOSPC, os.truncate, w.p("a"), 12 * K)
    expect_errno(errno.ENOSPC, os.mkdir, w.p("d"))
    expect_errno(errno.ENOSPC, os.symlink, "t", w.p("s"))
    expect_errno(errno.ENOSPC, os.setxattr, w.p("a"), "user.k", b"v")
    touch(w.p("b"))
    touch(w.p("c"))
    expect_errno(errno.ENOSPC, touch, w.p("e"))
    expect_errno(errno.ENOSPC, os.mkfifo, w.p("p"))
    assert sorted(os.listdir(w.upper)) == ["a", "b", "c"]
    assert used(w) == (8 * K, 3)


# ======================================================= over quota

def test_over_quota_shrinking_always_works(make_ws):
    w = qmount(make_ws)                     # no limits: the ledger counts
    make_file(w.p("a"), 32 * K)
    make_file(w.p("b"), 32 * K)
    make_file(w.p("c"), 16 * K)
    os.mkdir(w.p("d"))
    make_file(w.p("d", "e"), 8 * K)
    os.symlink("a", w.p("s"))
    os.mkfifo(w.p("p"))
    assert used(w) == (96 * K, 7)
    assert_ledger_matches_scan(w)
    q = set_quota(w, bytes="16K", inodes=3)
    assert (q["bytes_limit"], q["inodes_limit"]) == (16 * K, 3)
    assert (q["bytes_used"], q["inodes_used"]) == (96 * K, 7)

    def refused_growth():
        fd = os.open(w.p("c"), os.O_WRONLY | os.O_APPEND)
        try:
            expect_errno(EDQUOT, os.write, fd, b"1")
        finally:
            os.close(fd)
        expect_errno(EDQUOT, os.mkdir, w.p("x"))
        expect_errno(EDQUOT, os.setxattr, w.p("c"), "user.k", b"v")

    refused_growth()
    expect_errno(EDQUOT, touch, w.p("y"))
    # rewriting in place grows nothing and works
    fd = os.open(w.p("c"), os.O_WRONLY)
    try:
        assert os.pwrite(fd, b"r" * BLOCK, 0) == BLOCK
    finally:
        os.close(fd)
    os.truncate(w.p("a"), 8 * K)
    assert used(w) == (72 * K, 7)
    os.rename(w.p("b"), w.p("a"))            # releases the old a
    assert used(w) == (64 * K, 6)
    os.unlink(w.p("s"))
    os.unlink(w.p("p"))
    assert used(w) == (60 * K, 4)
    refused_growth()
    shutil.rmtree(w.p("d"))
    assert used(w) == (48 * K, 2)
    assert_ledger_matches_scan(w)
    # inodes are back under their limit, bytes are not: an empty file may be
    # made, a byte may not be written
    touch(w.p("y"))
    refused_growth()
    with open(w.p("a"), "w"):                # O_TRUNC over quota
        pass
    assert used(w) == (16 * K, 3)
    refused_growth()
    os.truncate(w.p("c"), 12 * K)
    fd = os.open(w.p("c"), os.O_WRONLY | os.O_APPEND)
    try:
        assert os.write(fd, b"2" * BLOCK) == BLOCK
        expect_errno(EDQUOT, os.write, fd, b"3")
    finally:
        os.close(fd)
    assert used(w) == (16 * K, 3)
    assert_ledger_matches_scan(w)
