"""The ledger equals a fresh scan of the upper after every kind of change.

Hard links, renames over files, open-unlinked files, sparse files,
truncation, fallocate, xattrs, deep and wide trees. The scan is
quota_util.scan(), a Python re-implementation of quota/charge.h.
"""
import errno
import os
import shutil
import time

from helpers import (FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE,
                     FALLOC_FL_ZERO_RANGE, RENAME_EXCHANGE, expect_errno,
                     fallocate, renameat2)
from quota_util import (BLOCK, K, M, assert_ledger_matches_scan, charge_data,
                        fsize, ledger, make_file, qmount, set_quota, used,
                        wait_ledger)

EDQUOT = errno.EDQUOT
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


# ======================================================= ledger == scan

def test_hard_links_count_once(make_ws):
    w = qmount(make_ws, "quota_bytes=1M")
    os.mkdir(w.p("sub"))
    make_file(w.p("a"), 10000)
    os.setxattr(w.p("a"), "user.tag", b"abc")
    base = used(w)
    assert base == (BLOCK + 12 * K + 11, 2)
    os.link(w.p("a"), w.p("b"))
    os.link(w.p("a"), w.p("sub", "c"))
    assert used(w) == base
    assert_ledger_matches_scan(w)
    # full to the byte: linking still works
    set_quota(w, bytes=base[0])
    os.link(w.p("b"), w.p("d"))
    assert used(w) == base
    # growth through any name is charged to the one inode
    fd = os.open(w.p("sub", "c"), os.O_WRONLY | os.O_APPEND)
    try:
        assert os.write(fd, b"z" * 2288) == 2288        # to 12288: same charge
        expect_errno(EDQUOT, os.write, fd, b"z")
    finally:
        os.close(fd)
    set_quota(w, bytes="1M")
    for name in ("a", "b", os.path.join("sub", "c")):
        os.unlink(w.p(name))
        assert used(w) == base
        assert_ledger_matches_scan(w)
    os.unlink(w.p("d"))
    wait_ledger(w, lambda q: q["inodes_used"] == 1)
    assert used(w) == (BLOCK, 1)
    assert_ledger_matches_scan(w)
    assert ledger(w)["xattr_inodes"] == 0


def test_rename_over_releases_the_replaced(make_ws):
    w = qmount(make_ws, "quota_bytes=1M")
    make_file(w.p("x"), 8 * K)
    make_file(w.p("y"), 20 * K)
    make_file(w.p("z"), 4 * K)
    os.setxattr(w.p("z"), "user.big", b"q" * 1000)
    os.mkdir(w.p("D1"))
    os.mkdir(w.p("D2"))
    os.setxattr(w.p("D2"), "user.d", b"1" * 10)
    make_file(w.p("h1"), 12 * K)
    os.link(w.p("h1"), w.p("h2"))
    assert_ledger_matches_scan(w)
    b0, i0 = used(w)

    os.rename(w.p("x"), w.p("y"))
    assert used(w) == (b0 - 20 * K, i0 - 1)
    os.rename(w.p("y"), w.p("z"))                    # z's xattr goes too
    assert used(w) == (b0 - 24 * K - 1008, i0 - 2)
    os.rename(w.p("D1"), w.p("D2"))                  # over an empty dir
    assert used(w) == (b0 - 28 * K - 1024, i0 - 3)
    assert_ledger_matches_scan(w)
    os.rename(w.p("z"), w.p("h2"))                   # h1 keeps the inode
    assert used(w) == (b0 - 28 * K - 1024, i0 - 3)
    assert_ledger_matches_scan(w)
    # a rename between two links of one inode does nothing
    os.link(w.p("h1"), w.p("h3"))
    os.rename(w.p("h1"), w.p("h3"))
    assert os.path.exists(w.u("h1")) and os.path.exists(w.u("h3"))
    assert used(w) == (b0 - 28 * K - 1024, i0 - 3)
    os.unlink(w.p("h3"))
    # a refused rename over a non-empty directory releases nothing
    os.mkdir(w.p("full"))
    make_file(w.p("full", "in"), 100)
    b_full = used(w)
    os.mkdir(w.p("D3"))
    expect_errno((errno.ENOTEMPTY, errno.EEXIST), os.rename, w.p("D3"),
                 w.p("full"))
    os.rmdir(w.p("D3"))
    assert used(w) == b_full
    assert_ledger_matches_scan(w)
    make_file(w.p("e1"), 4 * K)
    make_file(w.p("e2"), 40 * K)
    b1 = used(w)
    renameat2(w.p("e1"), w.p("e2"), RENAME_EXCHANGE)
    assert used(w) == b1
    assert fsize(w.u("e1")) == 40 * K
    assert_ledger_matches_scan(w)
    assert ledger(w)["xattr_inodes"] == 0


def test_open_unlinked_file_keeps_its_charge_until_last_close(make_ws):
    w = qmount(make_ws, "quota_bytes=1M")
    make_file(w.p("o"), 40 * K)
    make_file(w.p("keep"), 4 * K)
    fd1 = os.open(w.p("o"), os.O_RDWR)
    fd2 = os.open(w.p("o"), os.O_RDONLY)
    closed = [False, False]
    try:
        before = used(w)
        os.unlink(w.p("o"))
        assert used(w) == before
        assert_ledger_matches_scan(w, extra=(40 * K, 1))
        # still enforced and charged while it lives on
        assert os.pwrite(fd1, b"g" * (8 * K), 40 * K) == 8 * K
        assert_ledger_matches_scan(w, extra=(48 * K, 1))
        os.ftruncate(fd1, 44 * K)
        os.setxattr(fd1, "user.orphan", b"o" * 89)      # 100 bytes
        assert_ledger_matches_scan(w, extra=(44 * K + 100, 1))
        os.close(fd1)
        closed[0] = True
        time.sleep(0.3)                                  # fd2 still holds it
        assert_ledger_matches_scan(w, extra=(44 * K + 100, 1))
        os.close(fd2)
        closed[1] = True
        assert_ledger_matches_scan(w)
        assert used(w) == (4 * K, 1)
        assert ledger(w)["xattr_inodes"] == 0
    finally:
        for c, fd in zip(closed, (fd1, fd2)):
            if not c:
                os.close(fd)


def test_open_file_losing_all_its_links(make_ws):
    w = qmount(make_ws, "quota_bytes=1M")
    make_file(w.p("l1"), 12 * K)
    os.link(w.p("l1"), w.p("l2"))
    fd = os.open(w.p("l2"), os.O_RDONLY)
    try:
        os.unlink(w.p("l1"))
        assert used(w) == (12 * K, 1)
        assert_ledger_matches_scan(w)
        os.unlink(w.p("l2"))
        assert_ledger_matches_scan(w, extra=(12 * K, 1))
    finally:
        os.close(fd)
    assert_ledger_matches_scan(w)
    assert used(w) == (0, 0)


def test_rename_over_an_open_file_keeps_its_charge_until_close(make_ws):
    w = qmount(make_ws, "quota_bytes=1M")
    make_file(w.p("victim"), 24 * K)
    make_file(w.p("new"), 4 * K)
    fd = os.open(w.p("victim"), os.O_RDONLY)
    try:
        os.rename(w.p("new"), w.p("victim"))
        assert_ledger_matches_scan(w, extra=(24 * K, 1))
    finally:
        os.close(fd)
    assert_ledger_matches_scan(w)
    assert used(w) == (4 * K, 1)


def test_sparse_and_truncate_up_down(make_ws):
    w = qmount(make_ws, "quota_bytes=64M")
    fd = os.open(w.p("sp"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, b"1", 10 * M - 1)
        assert used(w) == (10 * M, 1)
        assert_ledger_matches_scan(w)
        for size in (5 * M + 1, 0, 1, 4096, 4097, 3 * M, 7, 20 * M, 12345):
            os.ftruncate(fd, size)
            assert used(w) == (charge_data(size), 1), size
        os.pwrite(fd, b"2" * 100, 30 * M)
        assert used(w) == (charge_data(30 * M + 100), 1)
    finally:
        os.close(fd)
    for size in (1 * M, 100, 2 * M + 3):
        os.truncate(w.p("sp"), size)
        assert used(w) == (charge_data(size), 1), size
    assert_ledger_matches_scan(w)


def test_fallocate_modes_keep_the_ledger_true(make_ws):
    w = qmount(make_ws, "quota_bytes=64M")
    fd = os.open(w.p("fa"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fallocate(fd, 0, 0, 1 * M + 5)
        assert used(w) == (charge_data(1 * M + 5), 1)
        fallocate(fd, 0, 3 * M, 10)
        assert used(w) == (charge_data(3 * M + 10), 1)
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 2 * M)
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 3 * M)
        assert used(w) == (charge_data(3 * M + 10), 1)
        fallocate(fd, FALLOC_FL_ZERO_RANGE, 3 * M, 1 * M)
        assert used(w) == (4 * M, 1)
        assert_ledger_matches_scan(w)
    finally:
        os.close(fd)
    assert_ledger_matches_scan(w)


def test_xattrs_set_replace_remove(make_ws):
    w = qmount(make_ws, "quota_bytes=64M")
    make_file(w.p("f"), 100)
    os.mkdir(w.p("d"))
    targets = [w.p("f"), w.p("d"), w.mnt]
    for i, t in enumerate(targets):
        for j in range(5):
            os.setxattr(t, f"user.k{j}", bytes([97 + i]) * (10 + 50 * j))
    assert_ledger_matches_scan(w)
    q = ledger(w)
    assert q["xattr_inodes"] == 3
    for t in targets:
        os.setxattr(t, "user.k1", b"")               # shrink to empty
        os.setxattr(t, "user.k2", b"Z" * 2000)       # grow
        os.removexattr(t, "user.k0")
        assert_ledger_matches_scan(w)
    os.setxattr(w.p("f"), "user.k1", b"new", os.XATTR_REPLACE)
    assert_ledger_matches_scan(w)
    # deleting the file and the dir releases their xattrs with them
    os.unlink(w.p("f"))
    os.rmdir(w.p("d"))
    assert_ledger_matches_scan(w)
    assert ledger(w)["xattr_inodes"] == 1
    for j in (1, 2, 3, 4):
        os.removexattr(w.mnt, f"user.k{j}")
    assert used(w) == (0, 0)
    assert ledger(w)["xattr_inodes"] == 0


def test_deep_tree(make_ws):
    w = qmount(make_ws, "quota_bytes=64M,quota_inodes=1000")
    depth = 200
    path = w.mnt
    for i in range(depth):
        path = os.path.join(path, "d")
        os.mkdir(path)
    make_file(os.path.join(path, "leaf"), 5000)
    os.setxattr(os.path.join(path, "leaf"), "user.deep", b"1" * 22)
    os.symlink("leaf", os.path.join(path, "ln"))
    assert used(w) == (depth * BLOCK + 8192 + 31 + BLOCK, depth + 2)
    assert_ledger_matches_scan(w)
    shutil.rmtree(w.p("d"))
    assert used(w) == (0, 0)
    assert_ledger_matches_scan(w)


def test_wide_tree(make_ws):
    w = qmount(make_ws, "quota_bytes=64M,quota_inodes=5000")
    os.mkdir(w.p("wide"))
    names = []
    for i in range(1000):
        n = w.p("wide", f"f{i}")
        make_file(n, (i * 37) % 9000)
        names.append(n)
    for i in range(100):
        n = w.p("wide", f"s{i}")
        os.symlink(f"f{i}", n)
        names.append(n)
        n = w.p("wide", f"p{i}")
        os.mkfifo(n)
        names.append(n)
    for i in range(50):
        n = w.p("wide", f"d{i}")
        os.mkdir(n)
        names.append(n)
    assert used(w)[1] == 1 + 1000 + 200 + 50
    assert_ledger_matches_scan(w)
    for n in names[::2]:
        if os.path.isdir(n) and not os.path.islink(n):
            os.rmdir(n)
        else:
            os.unlink(n)
    assert_ledger_matches_scan(w)
    shutil.rmtree(w.p("wide"))
    assert used(w) == (0, 0)
