"""Lookup, getattr and setattr through wsfs: stat fields against the upper,
name edge cases, chmod, chown, utimensat, timestamp update rules, and
extended attributes.  Expected values are ext4's."""
import ctypes
import errno
import os
import stat

import pytest

from helpers import (UTIME_NOW, UTIME_OMIT, expect_errno, libc, outcome,
                     read_file, utimensat, write_file, wsp, refdir)  # noqa: F401

SEC = 10**9
OLD = 1_000_000_000 * SEC          # 2001-09-09, well in the past


def same_stat(a, b, fields=("st_mode", "st_nlink", "st_uid", "st_gid",
                            "st_size", "st_blocks", "st_mtime_ns",
                            "st_ctime_ns")):
    for f in fields:
        assert getattr(a, f) == getattr(b, f), (
            f"{f}: mount {getattr(a, f)} != upper {getattr(b, f)}")


# ------------------------------------------------------------ lookup/getattr

def test_stat_regular_file_fields(wsp):
    write_file(wsp.p("f"), b"x" * 10000)
    st = os.stat(wsp.p("f"))
    assert st.st_mode == stat.S_IFREG | 0o644
    assert st.st_nlink == 1
    assert st.st_uid == 0 and st.st_gid == 0
    assert st.st_size == 10000
    assert st.st_blocks >= 10000 // 512
    assert st.st_blksize > 0
    same_stat(st, os.stat(wsp.u("f")))
    fd = os.open(wsp.p("f"), os.O_RDONLY)
    try:
        fst = os.fstat(fd)
    finally:
        os.close(fd)
    assert (fst.st_ino, fst.st_mode, fst.st_size) == \
        (st.st_ino, st.st_mode, st.st_size)


def test_stat_directory_and_root(wsp):
    os.mkdir(wsp.p("d"))
    os.mkdir(wsp.p("d", "s1"))
    os.mkdir(wsp.p("d", "s2"))
    write_file(wsp.p("d", "f"), b"")
    st = os.stat(wsp.p("d"))
    assert st.st_mode == stat.S_IFDIR | 0o755
    assert st.st_nlink == 4
    same_stat(st, os.stat(wsp.u("d")))
    root = os.stat(wsp.p(""))
    assert stat.S_ISDIR(root.st_mode)
    assert stat.S_IMODE(root.st_mode) == stat.S_IMODE(os.stat(wsp.u("")).st_mode)
    assert root.st_nlink == os.stat(wsp.u("")).st_nlink
    assert os.stat(wsp.p("d", "..")).st_ino == root.st_ino
    assert os.stat(wsp.p("d", ".")).st_ino == st.st_ino


def test_inode_numbers_stable_and_distinct(wsp):
    write_file(wsp.p("a"), b"")
    write_file(wsp.p("b"), b"")
    ia = os.stat(wsp.p("a")).st_ino
    assert ia != os.stat(wsp.p("b")).st_ino
    assert os.stat(wsp.p("a")).st_ino == ia
    os.rename(wsp.p("a"), wsp.p("c"))
    assert os.stat(wsp.p("c")).st_ino == ia


def test_lookup_errors(wsp):
    write_file(wsp.p("f"), b"")
    os.mkdir(wsp.p("d"))
    expect_errno(errno.ENOENT, os.stat, wsp.p("missing"))
    expect_errno(errno.ENOENT, os.stat, wsp.p("d", "missing"))
    expect_errno(errno.ENOENT, os.stat, wsp.p("missing", "x"))
    expect_errno(errno.ENOTDIR, os.stat, wsp.p("f", "x"))
    expect_errno(errno.ENOTDIR, os.lstat, wsp.p("f", "x", "y"))
    # a removed name really is gone (no stale cached entry)
    os.unlink(wsp.p("f"))
    expect_errno(errno.ENOENT, os.stat, wsp.p("f"))


@pytest.mark.parametrize("op", ["stat", "create", "mkdir", "symlink", "link",
                                "rename", "mknod"])
def test_name_of_256_bytes_is_enametoolong(wsp, op):
    long_name = wsp.p("n" * 256)
    write_file(wsp.p("f"), b"")
    calls = {
        "stat": lambda: os.stat(long_name),
        "create": lambda: os.open(long_name, os.O_CREAT | os.O_WRONLY, 0o644),
        "mkdir": lambda: os.mkdir(long_name),
        "symlink": lambda: os.symlink("f", long_name),
        "link": lambda: os.link(wsp.p("f"), long_name),
        "rename": lambda: os.rename(wsp.p("f"), long_name),
        "mknod": lambda: os.mkfifo(long_name),
    }
    expect_errno(errno.ENAMETOOLONG, calls[op])
    assert os.listdir(wsp.u("")) == ["f"]


def test_name_of_255_bytes(wsp):
    name = "é" * 127 + "x"         # 255 bytes of UTF-8
    assert len(name.encode()) == 255
    write_file(wsp.p(name), b"long")
    os.mkdir(wsp.p("d" * 255))
    os.symlink("t" * 255, wsp.p("d" * 255, "l" * 255))
    assert read_file(wsp.p(name)) == b"long"
    assert sorted(os.listdir(wsp.p(""))) == sorted([name, "d" * 255])
    assert read_file(wsp.u(name)) == b"long"
    assert os.readlink(wsp.u("d" * 255, "l" * 255)) == "t" * 255
    os.rename(wsp.p(name), wsp.p("r" * 255))
    assert read_file(wsp.u("r" * 255)) == b"long"


@pytest.mark.parametrize("name", [
    b"\xff\xfe-not-utf8", b"latin1-\xe9t\xe9", b"line\nbreak", b"\n",
    b"tab\there", b"\x01ctrl\x7f", b" lead and trail ", b"-dash",
    b"star*?[x]", b"...", b"back\\slash", b"quote'\"",
])
def test_odd_names_round_trip(wsp, name):
    mnt = os.fsencode(wsp.p(""))
    upper = os.fsencode(wsp.u(""))
    path = os.path.join(mnt, name)
    write_file(path, b"payload:" + name)
    assert os.listdir(mnt) == [name]
    assert read_file(path) == b"payload:" + name
    assert os.listdir(upper) == [name]
    assert read_file(os.path.join(upper, name)) == b"payload:" + name
    os.mkdir(os.path.join(mnt, b"d" + name))
    os.rename(path, os.path.join(mnt, b"d" + name, name))
    assert os.listdir(os.path.join(upper, b"d" + name)) == [name]
    os.unlink(os.path.join(mnt, b"d" + name, name))
    os.rmdir(os.path.join(mnt, b"d" + name))
    assert os.listdir(upper) == []


# ------------------------------------------------------------------ chmod

@pytest.mark.parametrize("mode", [0o000, 0o600, 0o644, 0o755, 0o1777,
                                  0o4755, 0o2755, 0o6711, 0o7777])
def test_chmod_file(wsp, mode):
    write_file(wsp.p("f"), b"")
    os.chmod(wsp.p("f"), mode)
    assert os.stat(wsp.p("f")).st_mode == stat.S_IFREG | mode
    assert os.stat(wsp.u("f")).st_mode == stat.S_IFREG | mode


def test_chmod_dir_and_via_fd_and_symlink(wsp):
    os.mkdir(wsp.p("d"))
    os.chmod(wsp.p("d"), 0o3750)
    assert os.stat(wsp.p("d")).st_mode == stat.S_IFDIR | 0o3750
    assert os.stat(wsp.u("d")).st_mode == stat.S_IFDIR | 0o3750
    write_file(wsp.p("f"), b"")
    fd = os.open(wsp.p("f"), os.O_RDONLY)
    try:
        os.fchmod(fd, 0o604)
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o604
    finally:
        os.close(fd)
    assert stat.S_IMODE(os.stat(wsp.u("f")).st_mode) == 0o604
    os.symlink("f", wsp.p("l"))
    os.chmod(wsp.p("l"), 0o640)            # follows the link
    assert stat.S_IMODE(os.stat(wsp.u("f")).st_mode) == 0o640
    assert os.lstat(wsp.p("l")).st_mode == stat.S_IFLNK | 0o777
    expect_errno(errno.ENOENT, os.chmod, wsp.p("missing"), 0o644)


def test_chmod_times(wsp):
    write_file(wsp.p("f"), b"")
    os.utime(wsp.p("f"), ns=(OLD, OLD))
    before = os.stat(wsp.p("f"))
    os.chmod(wsp.p("f"), 0o600)
    after = os.stat(wsp.p("f"))
    assert after.st_ctime_ns > before.st_ctime_ns
    assert after.st_mtime_ns == OLD and after.st_atime_ns == OLD
    same_stat(after, os.stat(wsp.u("f")))


# ------------------------------------------------------------------ chown

def test_chown_as_root(wsp):
    write_file(wsp.p("f"), b"")
    os.chown(wsp.p("f"), 1000, 1000)
    st = os.stat(wsp.p("f"))
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    os.chown(wsp.p("f"), -1, 2000)
    assert (os.stat(wsp.p("f")).st_uid, os.stat(wsp.p("f")).st_gid) == \
        (1000, 2000)
    os.chown(wsp.p("f"), 3000, -1)
    ust = os.stat(wsp.u("f"))
    assert (ust.st_uid, ust.st_gid) == (3000, 2000)
    fd = os.open(wsp.p("f"), os.O_RDONLY)
    try:
        os.fchown(fd, 0, 0)
    finally:
        os.close(fd)
    assert (os.stat(wsp.u("f")).st_uid, os.stat(wsp.u("f")).st_gid) == (0, 0)
    expect_errno(errno.ENOENT, os.chown, wsp.p("missing"), 1, 1)


def test_lchown_symlink_only(wsp):
    write_file(wsp.p("f"), b"")
    os.symlink("f", wsp.p("l"))
    os.lchown(wsp.p("l"), 1000, 1001)
    lst = os.lstat(wsp.p("l"))
    assert (lst.st_uid, lst.st_gid) == (1000, 1001)
    assert (os.stat(wsp.p("f")).st_uid, os.stat(wsp.p("f")).st_gid) == (0, 0)
    ulst = os.lstat(wsp.u("l"))
    assert (ulst.st_uid, ulst.st_gid) == (1000, 1001)
    os.chown(wsp.p("l"), 1002, 1003)       # follows
    assert os.stat(wsp.u("f")).st_uid == 1002
    assert os.lstat(wsp.u("l")).st_uid == 1000


@pytest.mark.parametrize("before,owner,after", [
    (0o4755, (1000, 1000), 0o755),
    (0o2755, (1000, 1000), 0o755),
    (0o2745, (1000, 1000), 0o2745),      # setgid without group-exec stays
    (0o6755, (-1, -1), 0o755),           # even a no-op chown clears them
])
def test_chown_clears_setid_bits(wsp, before, owner, after):
    write_file(wsp.p("f"), b"")
    os.chmod(wsp.p("f"), before)
    os.chown(wsp.p("f"), *owner)
    assert stat.S_IMODE(os.stat(wsp.p("f")).st_mode) == after
    assert stat.S_IMODE(os.stat(wsp.u("f")).st_mode) == after


def test_chown_dir_keeps_setgid(wsp):
    os.mkdir(wsp.p("d"))
    os.chmod(wsp.p("d"), 0o2775)
    os.chown(wsp.p("d"), 1000, 1000)
    assert stat.S_IMODE(os.stat(wsp.p("d")).st_mode) == 0o2775
    assert stat.S_IMODE(os.stat(wsp.u("d")).st_mode) == 0o2775


# ------------------------------------------------------------------ utimens

def test_utime_explicit_ns(wsp):
    write_file(wsp.p("f"), b"")
    before = os.stat(wsp.p("f"))
    os.utime(wsp.p("f"), ns=(1_234_567_890_123_456_789, 1_111_111_111_987_654_321))
    st = os.stat(wsp.p("f"))
    assert st.st_atime_ns == 1_234_567_890_123_456_789
    assert st.st_mtime_ns == 1_111_111_111_987_654_321
    assert st.st_ctime_ns > before.st_ctime_ns
    ust = os.stat(wsp.u("f"))
    assert ust.st_atime_ns == 1_234_567_890_123_456_789
    assert ust.st_mtime_ns == 1_111_111_111_987_654_321


@pytest.mark.parametrize("atime,mtime", [
    (-300_000_000 * SEC + 5, 0),                 # before the epoch
    (0, 13_000_000_000 * SEC),                   # year 2381
    (2**31 * SEC, (2**31 - 1) * SEC + 999_999_999),
])
def test_utime_extreme_times(wsp, atime, mtime):
    write_file(wsp.p("f"), b"")
    os.utime(wsp.p("f"), ns=(atime, mtime))
    st = os.stat(wsp.p("f"))
    assert (st.st_atime_ns, st.st_mtime_ns) == (atime, mtime)
    ust = os.stat(wsp.u("f"))
    assert (ust.st_atime_ns, ust.st_mtime_ns) == (atime, mtime)


def test_utimensat_now_and_omit(wsp):
    write_file(wsp.p("f"), b"")
    os.utime(wsp.p("f"), ns=(OLD, OLD + 5))
    # OMIT atime, explicit mtime
    utimensat(wsp.p("f"), UTIME_OMIT, (1_500_000_000, 42))
    st = os.stat(wsp.p("f"))
    assert st.st_atime_ns == OLD
    assert st.st_mtime_ns == 1_500_000_000 * SEC + 42
    # NOW mtime, OMIT atime
    ctime0 = st.st_ctime_ns
    utimensat(wsp.p("f"), UTIME_OMIT, UTIME_NOW)
    st = os.stat(wsp.p("f"))
    assert st.st_atime_ns == OLD
    assert st.st_mtime_ns > 1_600_000_000 * SEC
    assert st.st_ctime_ns >= ctime0
    # NOW atime, OMIT mtime
    mtime = st.st_mtime_ns
    utimensat(wsp.p("f"), UTIME_NOW, UTIME_OMIT)
    st = os.stat(wsp.p("f"))
    assert st.st_atime_ns > 1_600_000_000 * SEC
    assert st.st_mtime_ns == mtime
    # both OMIT: nothing changes, not even ctime
    os.utime(wsp.p("f"), ns=(OLD, OLD))
    before = os.stat(wsp.p("f"))
    utimensat(wsp.p("f"), UTIME_OMIT, UTIME_OMIT)
    after = os.stat(wsp.p("f"))
    assert (after.st_atime_ns, after.st_mtime_ns, after.st_ctime_ns) == \
        (before.st_atime_ns, before.st_mtime_ns, before.st_ctime_ns)
    # NULL times: both now
    utimensat(wsp.p("f"), None, None)
    st = os.stat(wsp.p("f"))
    assert st.st_atime_ns > OLD and st.st_mtime_ns > OLD
    ust = os.stat(wsp.u("f"))
    assert (ust.st_atime_ns, ust.st_mtime_ns) == (st.st_atime_ns, st.st_mtime_ns)


def test_utimensat_symlink_nofollow(wsp):
    write_file(wsp.p("f"), b"")
    os.symlink("f", wsp.p("l"))
    os.utime(wsp.p("f"), ns=(OLD, OLD))
    utimensat(wsp.p("l"), (1_400_000_000, 7), (1_400_000_001, 8), follow=False)
    lst = os.lstat(wsp.p("l"))
    assert lst.st_mtime_ns == 1_400_000_001 * SEC + 8
    assert lst.st_atime_ns == 1_400_000_000 * SEC + 7
    assert os.stat(wsp.p("f")).st_mtime_ns == OLD
    assert os.lstat(wsp.u("l")).st_mtime_ns == 1_400_000_001 * SEC + 8


def test_utimensat_errors(wsp):
    write_file(wsp.p("f"), b"")
    expect_errno(errno.ENOENT, utimensat, wsp.p("missing"), UTIME_NOW,
                 UTIME_NOW)
    expect_errno(errno.EINVAL, utimensat, wsp.p("f"), (0, 1_000_000_000),
                 UTIME_OMIT)


# ------------------------------------------------------ time update rules

def test_write_advances_mtime_and_ctime(wsp):
    write_file(wsp.p("f"), b"abc")
    os.utime(wsp.p("f"), ns=(OLD, OLD))
    before = os.stat(wsp.p("f"))
    fd = os.open(wsp.p("f"), os.O_WRONLY)
    try:
        os.pwrite(fd, b"x", 1)
    finally:
        os.close(fd)
    after = os.stat(wsp.p("f"))
    assert after.st_mtime_ns > OLD
    assert after.st_ctime_ns > before.st_ctime_ns
    assert after.st_atime_ns == OLD            # writing is not accessing
    ust = os.stat(wsp.u("f"))
    assert ust.st_mtime_ns > OLD
    assert ust.st_mtime_ns == after.st_mtime_ns


@pytest.mark.parametrize("how", ["truncate", "ftruncate", "o_trunc"])
def test_truncate_advances_mtime_and_ctime(wsp, how):
    write_file(wsp.p("f"), b"abcdef")
    os.utime(wsp.p("f"), ns=(OLD, OLD))
    before = os.stat(wsp.p("f"))
    if how == "truncate":
        os.truncate(wsp.p("f"), 2)
    elif how == "ftruncate":
        fd = os.open(wsp.p("f"), os.O_WRONLY)
        os.ftruncate(fd, 2)
        os.close(fd)
    else:
        os.close(os.open(wsp.p("f"), os.O_WRONLY | os.O_TRUNC))
    after = os.stat(wsp.p("f"))
    assert after.st_mtime_ns > OLD
    assert after.st_ctime_ns > before.st_ctime_ns
    assert os.stat(wsp.u("f")).st_mtime_ns == after.st_mtime_ns


def test_read_does_not_touch_mtime_or_ctime(wsp):
    write_file(wsp.p("f"), b"abc")
    os.utime(wsp.p("f"), ns=(OLD, OLD))
    before = os.stat(wsp.p("f"))
    assert read_file(wsp.p("f")) == b"abc"
    after = os.stat(wsp.p("f"))
    assert after.st_mtime_ns == OLD
    assert after.st_ctime_ns == before.st_ctime_ns


@pytest.mark.parametrize("op", ["create", "unlink", "mkdir", "rmdir",
                                "symlink", "link", "rename_in", "rename_out"])
def test_directory_times_on_entry_change(wsp, op):
    os.mkdir(wsp.p("d"))
    os.mkdir(wsp.p("other"))
    write_file(wsp.p("d", "existing"), b"")
    os.mkdir(wsp.p("d", "sub"))
    write_file(wsp.p("other", "o"), b"")
    os.utime(wsp.p("d"), ns=(OLD, OLD))
    before = os.stat(wsp.p("d"))
    {
        "create": lambda: write_file(wsp.p("d", "new"), b""),
        "unlink": lambda: os.unlink(wsp.p("d", "existing")),
        "mkdir": lambda: os.mkdir(wsp.p("d", "newdir")),
        "rmdir": lambda: os.rmdir(wsp.p("d", "sub")),
        "symlink": lambda: os.symlink("x", wsp.p("d", "sl")),
        "link": lambda: os.link(wsp.p("other", "o"), wsp.p("d", "hl")),
        "rename_in": lambda: os.rename(wsp.p("other", "o"), wsp.p("d", "o")),
        "rename_out": lambda: os.rename(wsp.p("d", "existing"),
                                        wsp.p("other", "e")),
    }[op]()
    after = os.stat(wsp.p("d"))
    assert after.st_mtime_ns > OLD
    assert after.st_ctime_ns > before.st_ctime_ns
    assert after.st_atime_ns == OLD
    assert os.stat(wsp.u("d")).st_mtime_ns == after.st_mtime_ns


def test_link_and_xattr_change_ctime_only(wsp):
    write_file(wsp.p("f"), b"")
    os.utime(wsp.p("f"), ns=(OLD, OLD))
    c0 = os.stat(wsp.p("f")).st_ctime_ns
    os.link(wsp.p("f"), wsp.p("g"))
    st = os.stat(wsp.p("f"))
    assert st.st_ctime_ns > c0 and st.st_mtime_ns == OLD
    c1 = st.st_ctime_ns
    os.setxattr(wsp.p("f"), "user.k", b"v")
    st = os.stat(wsp.p("f"))
    assert st.st_ctime_ns > c1 and st.st_mtime_ns == OLD


# ------------------------------------------------------------------ xattrs

def test_user_xattr_set_get_list_remove(wsp):
    write_file(wsp.p("f"), b"")
    os.setxattr(wsp.p("f"), "user.a", b"alpha")
    os.setxattr(wsp.p("f"), "user.b", b"\x00binary\xff")
    os.setxattr(wsp.p("f"), "user.empty", b"")
    assert os.getxattr(wsp.p("f"), "user.a") == b"alpha"
    assert os.getxattr(wsp.p("f"), "user.b") == b"\x00binary\xff"
    assert os.getxattr(wsp.p("f"), "user.empty") == b""
    assert sorted(os.listxattr(wsp.p("f"))) == ["user.a", "user.b",
                                                 "user.empty"]
    assert os.getxattr(wsp.u("f"), "user.b") == b"\x00binary\xff"
    os.setxattr(wsp.p("f"), "user.a", b"replaced")
    assert os.getxattr(wsp.p("f"), "user.a") == b"replaced"
    os.removexattr(wsp.p("f"), "user.a")
    expect_errno(errno.ENODATA, os.getxattr, wsp.p("f"), "user.a")
    assert sorted(os.listxattr(wsp.p("f"))) == ["user.b", "user.empty"]
    assert sorted(os.listxattr(wsp.u("f"))) == ["user.b", "user.empty"]


def test_xattr_on_dir_and_via_fd(wsp):
    os.mkdir(wsp.p("d"))
    os.setxattr(wsp.p("d"), "user.dir", b"1")
    assert os.listxattr(wsp.p("d")) == ["user.dir"]
    assert os.getxattr(wsp.u("d"), "user.dir") == b"1"
    write_file(wsp.p("f"), b"")
    fd = os.open(wsp.p("f"), os.O_RDONLY)
    try:
        os.setxattr(fd, "user.fd", b"via-fd")
        assert os.getxattr(fd, "user.fd") == b"via-fd"
        assert os.listxattr(fd) == ["user.fd"]
        os.removexattr(fd, "user.fd")
        assert os.listxattr(fd) == []
    finally:
        os.close(fd)


def test_xattr_flags_and_errors(wsp):
    write_file(wsp.p("f"), b"")
    os.setxattr(wsp.p("f"), "user.x", b"1", os.XATTR_CREATE)
    expect_errno(errno.EEXIST, os.setxattr, wsp.p("f"), "user.x", b"2",
                 os.XATTR_CREATE)
    expect_errno(errno.ENODATA, os.setxattr, wsp.p("f"), "user.y", b"2",
                 os.XATTR_REPLACE)
    os.setxattr(wsp.p("f"), "user.x", b"3", os.XATTR_REPLACE)
    assert os.getxattr(wsp.p("f"), "user.x") == b"3"
    expect_errno(errno.EINVAL, os.setxattr, wsp.p("f"), "user.z", b"",
                 os.XATTR_CREATE | os.XATTR_REPLACE | 4)
    expect_errno(errno.ENODATA, os.getxattr, wsp.p("f"), "user.missing")
    expect_errno(errno.ENODATA, os.removexattr, wsp.p("f"), "user.missing")
    expect_errno(errno.ENOENT, os.getxattr, wsp.p("missing"), "user.x")
    expect_errno(errno.ENOTSUP, os.setxattr, wsp.p("f"), "bogus.ns", b"1")
    expect_errno(errno.ENOTSUP, os.getxattr, wsp.p("f"), "bogus.ns")
    expect_errno(errno.EINVAL, os.setxattr, wsp.p("f"), "user.", b"1")
    expect_errno(errno.ERANGE, os.setxattr, wsp.p("f"), "user." + "a" * 251,
                 b"1")
    os.setxattr(wsp.p("f"), "user." + "a" * 250, b"max-name")
    assert os.getxattr(wsp.u("f"), "user." + "a" * 250) == b"max-name"
    assert sorted(os.listxattr(wsp.u("f"))) == ["user." + "a" * 250, "user.x"]


def test_getxattr_listxattr_small_buffer_erange(wsp):
    write_file(wsp.p("f"), b"")
    os.setxattr(wsp.p("f"), "user.long", b"0123456789")
    path = os.fsencode(wsp.p("f"))
    buf = ctypes.create_string_buffer(64)
    libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                              ctypes.c_void_p, ctypes.c_size_t]
    libc.getxattr.restype = ctypes.c_ssize_t
    libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p,
                               ctypes.c_size_t]
    libc.listxattr.restype = ctypes.c_ssize_t
    assert libc.getxattr(path, b"user.long", None, 0) == 10   # size query
    assert libc.getxattr(path, b"user.long", buf, 3) == -1
    assert ctypes.get_errno() == errno.ERANGE
    assert libc.getxattr(path, b"user.long", buf, 10) == 10
    assert buf.raw[:10] == b"0123456789"
    assert libc.listxattr(path, None, 0) == len(b"user.long\0")
    assert libc.listxattr(path, buf, 2) == -1
    assert ctypes.get_errno() == errno.ERANGE


@pytest.mark.parametrize("size", [1, 255, 1024, 2000, 3000, 3900, 4000,
                                  4096, 8192, 65536, 65537])
def test_xattr_value_sizes_match_backing_fs(wsp, refdir, size):
    write_file(wsp.p("f"), b"")
    ref = os.path.join(refdir, f"f{size}")
    write_file(ref, b"")
    value = bytes((i * 7) & 0xFF for i in range(size))
    want = outcome(os.setxattr, ref, "user.big", value)
    got = outcome(os.setxattr, wsp.p("f"), "user.big", value)
    assert got == want, f"size {size}: backing fs gives {want}, mount {got}"
    if size <= 1024:
        assert want[0] == "ok"
    if size > 65536:
        assert want == ("err", "E2BIG")
    if want[0] == "ok":
        assert os.getxattr(wsp.p("f"), "user.big") == value
        assert os.getxattr(wsp.u("f"), "user.big") == value
    else:
        assert os.listxattr(wsp.u("f")) == []


def test_many_xattrs_until_full_match_backing_fs(wsp, refdir):
    write_file(wsp.p("f"), b"")
    ref = os.path.join(refdir, "many")
    write_file(ref, b"")
    for i in range(200):
        name = f"user.attr{i:03d}"
        want = outcome(os.setxattr, ref, name, b"v" * 100)
        got = outcome(os.setxattr, wsp.p("f"), name, b"v" * 100)
        assert got == want, f"xattr #{i}: backing {want}, mount {got}"
        if want[0] == "err":
            break
    assert sorted(os.listxattr(wsp.p("f"))) == sorted(os.listxattr(ref))


@pytest.mark.parametrize("ns", ["trusted", "security"])
def test_privileged_xattr_namespaces_as_root(wsp, refdir, ns):
    write_file(wsp.p("f"), b"")
    ref = os.path.join(refdir, "priv")
    write_file(ref, b"")
    name = f"{ns}.wsfs_test"
    want = outcome(os.setxattr, ref, name, b"secret")
    got = outcome(os.setxattr, wsp.p("f"), name, b"secret")
    assert got == want
    if want[0] == "ok":
        assert os.getxattr(wsp.p("f"), name) == b"secret"
        assert name in os.listxattr(wsp.p("f"))
        assert os.getxattr(wsp.u("f"), name) == b"secret"
        os.removexattr(wsp.p("f"), name)
        assert name not in os.listxattr(wsp.u("f"))


def test_xattr_on_symlink(wsp):
    write_file(wsp.p("f"), b"")
    os.symlink("f", wsp.p("l"))
    os.setxattr(wsp.p("f"), "user.target", b"t")
    assert os.listxattr(wsp.p("l"), follow_symlinks=False) == []
    assert os.listxattr(wsp.p("l")) == ["user.target"]          # follows
    assert os.getxattr(wsp.p("l"), "user.target") == b"t"
    # user.* is not allowed on symlinks themselves
    expect_errno(errno.EPERM, os.setxattr, wsp.p("l"), "user.x", b"1",
                 follow_symlinks=False)
    expect_errno(errno.ENODATA, os.getxattr, wsp.p("l"), "user.x",
                 follow_symlinks=False)
    # trusted.* is, for root
    os.setxattr(wsp.p("l"), "trusted.onlink", b"L", follow_symlinks=False)
    assert os.listxattr(wsp.p("l"), follow_symlinks=False) == ["trusted.onlink"]
    assert os.getxattr(wsp.p("l"), "trusted.onlink",
                       follow_symlinks=False) == b"L"
    assert os.getxattr(wsp.u("l"), "trusted.onlink",
                       follow_symlinks=False) == b"L"
    assert "trusted.onlink" not in os.listxattr(wsp.u("f"))
    os.removexattr(wsp.p("l"), "trusted.onlink", follow_symlinks=False)
    assert os.listxattr(wsp.u("l"), follow_symlinks=False) == []


def test_user_xattr_on_fifo_is_eperm(wsp):
    os.mkfifo(wsp.p("fifo"))
    expect_errno(errno.EPERM, os.setxattr, wsp.p("fifo"), "user.x", b"1")
    expect_errno(errno.ENODATA, os.getxattr, wsp.p("fifo"), "user.x")
    os.setxattr(wsp.p("fifo"), "trusted.x", b"1")
    assert os.getxattr(wsp.u("fifo"), "trusted.x") == b"1"


def test_setattr_through_fd_of_unlinked_file(wsp):
    write_file(wsp.p("f"), b"0123456789")
    fd = os.open(wsp.p("f"), os.O_RDWR)
    try:
        os.unlink(wsp.p("f"))
        os.fchmod(fd, 0o600)
        os.fchown(fd, 1000, 1000)
        os.ftruncate(fd, 4)
        os.setxattr(fd, "user.orphan", b"yes")
        os.utime(fd, ns=(OLD, OLD + 1))
        st = os.fstat(fd)
        assert st.st_nlink == 0
        assert st.st_mode == stat.S_IFREG | 0o600
        assert (st.st_uid, st.st_gid) == (1000, 1000)
        assert st.st_mtime_ns == OLD + 1 and st.st_atime_ns == OLD
        assert st.st_size == 4
        assert os.getxattr(fd, "user.orphan") == b"yes"
        assert os.listxattr(fd) == ["user.orphan"]
    finally:
        os.close(fd)
    assert os.listdir(wsp.u("")) == []
