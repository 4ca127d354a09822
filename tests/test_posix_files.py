"""POSIX file semantics through wsfs: open flags, read/write, sparse and large
files, truncate, fallocate, SEEK_DATA/SEEK_HOLE, copy_file_range, fsync, mmap
and open-unlinked files.  Every expected value is ext4's (see helpers.py for
the WSFS_TEST_NATIVE=1 mode that checks that)."""
import errno
import mmap
import os
import stat
import threading

import pytest

from conftest import as_user
from helpers import (FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE,
                     FALLOC_FL_ZERO_RANGE, expect_errno, fallocate, is_native,
                     linkat_follow,
                     pread_all, read_file, write_file, wsp)  # noqa: F401

GiB = 1 << 30
MiB = 1 << 20


# ------------------------------------------------------------------ open/create

def test_create_new_file_shows_in_upper(wsp):
    fd = os.open(wsp.p("f"), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o640)
    assert os.write(fd, b"hello") == 5
    os.close(fd)
    st = os.stat(wsp.p("f"))
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert st.st_size == 5
    assert read_file(wsp.u("f")) == b"hello"
    assert stat.S_IMODE(os.stat(wsp.u("f")).st_mode) == 0o640


def test_creat_excl_on_existing_is_eexist(wsp):
    write_file(wsp.p("f"), b"keep")
    expect_errno(errno.EEXIST, os.open, wsp.p("f"),
                 os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.mkdir(wsp.p("d"))
    expect_errno(errno.EEXIST, os.open, wsp.p("d"),
                 os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    assert read_file(wsp.u("f")) == b"keep"


def test_creat_without_excl_opens_existing(wsp):
    write_file(wsp.p("f"), b"keep", mode=0o600)
    fd = os.open(wsp.p("f"), os.O_CREAT | os.O_RDWR, 0o777)
    assert os.read(fd, 10) == b"keep"
    os.close(fd)
    # the mode argument only applies to new files
    assert stat.S_IMODE(os.stat(wsp.p("f")).st_mode) == 0o600


def test_creat_in_missing_dir_is_enoent(wsp):
    expect_errno(errno.ENOENT, os.open, wsp.p("nodir", "f"),
                 os.O_CREAT | os.O_WRONLY, 0o644)
    assert not os.path.lexists(wsp.u("nodir"))


def test_creat_on_directory_is_eisdir(wsp):
    os.mkdir(wsp.p("d"))
    expect_errno(errno.EISDIR, os.open, wsp.p("d"), os.O_CREAT | os.O_WRONLY,
                 0o644)


def test_o_trunc_empties_file(wsp):
    write_file(wsp.p("f"), b"x" * 10000)
    fd = os.open(wsp.p("f"), os.O_WRONLY | os.O_TRUNC)
    assert os.fstat(fd).st_size == 0
    os.write(fd, b"ab")
    os.close(fd)
    assert read_file(wsp.p("f")) == b"ab"
    assert read_file(wsp.u("f")) == b"ab"
    assert os.stat(wsp.u("f")).st_size == 2


def test_o_trunc_with_rdonly_on_existing_truncates(wsp):
    # Linux truncates even with O_RDONLY when the caller may write.
    write_file(wsp.p("f"), b"abc")
    fd = os.open(wsp.p("f"), os.O_RDONLY | os.O_TRUNC)
    os.close(fd)
    assert os.stat(wsp.p("f")).st_size == 0
    assert os.stat(wsp.u("f")).st_size == 0


def test_o_append_writes_at_end_even_after_lseek(wsp):
    write_file(wsp.p("f"), b"0123456789")
    fd = os.open(wsp.p("f"), os.O_WRONLY | os.O_APPEND)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b"AB")
    assert os.lseek(fd, 0, os.SEEK_CUR) == 12
    os.lseek(fd, 3, os.SEEK_SET)
    os.write(fd, b"CD")
    os.close(fd)
    assert read_file(wsp.p("f")) == b"0123456789ABCD"
    assert read_file(wsp.u("f")) == b"0123456789ABCD"


def test_o_append_pwrite_appends_on_linux(wsp):
    # Linux ignores pwrite's offset on O_APPEND descriptors.
    write_file(wsp.p("f"), b"0123")
    fd = os.open(wsp.p("f"), os.O_WRONLY | os.O_APPEND)
    os.pwrite(fd, b"Z", 0)
    os.close(fd)
    assert read_file(wsp.p("f")) == b"0123Z"


def test_o_direct_aligned_io(wsp):
    fd = os.open(wsp.p("f"), os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o644)
    try:
        buf = mmap.mmap(-1, 8192)          # page-aligned buffer
        pattern = bytes(range(256)) * 32
        buf[:] = pattern
        assert os.pwrite(fd, buf, 0) == 8192
        rbuf = mmap.mmap(-1, 4096)
        assert os.preadv(fd, [rbuf], 4096) == 4096
        assert bytes(rbuf) == pattern[4096:]
        assert os.fstat(fd).st_size == 8192
    finally:
        os.close(fd)
    assert read_file(wsp.u("f")) == pattern


def test_o_noatime_read_keeps_atime(wsp):
    write_file(wsp.p("f"), b"data")
    # atime older than mtime: under relatime a plain read would update it.
    os.utime(wsp.p("f"), ns=(1_000_000_000 * 10**9, 1_600_000_000 * 10**9))
    fd = os.open(wsp.p("f"), os.O_RDONLY | os.O_NOATIME)
    assert os.read(fd, 100) == b"data"
    os.close(fd)
    assert os.stat(wsp.p("f")).st_atime_ns == 1_000_000_000 * 10**9
    assert os.stat(wsp.u("f")).st_atime_ns == 1_000_000_000 * 10**9


def test_plain_read_updates_stale_atime(wsp):
    write_file(wsp.p("f"), b"data")
    os.utime(wsp.p("f"), ns=(1_000_000_000 * 10**9, 1_600_000_000 * 10**9))
    fd = os.open(wsp.p("f"), os.O_RDONLY)
    assert os.read(fd, 100) == b"data"
    os.close(fd)
    # relatime: atime <= mtime, so the read moved atime to "now"
    assert os.stat(wsp.p("f")).st_atime_ns > 1_600_000_000 * 10**9


def test_write_on_rdonly_fd_is_ebadf(wsp):
    write_file(wsp.p("f"), b"abc")
    fd = os.open(wsp.p("f"), os.O_RDONLY)
    try:
        expect_errno(errno.EBADF, os.write, fd, b"x")
        expect_errno(errno.EINVAL, os.ftruncate, fd, 0)   # Linux: EINVAL
    finally:
        os.close(fd)
    fd = os.open(wsp.p("f"), os.O_WRONLY)
    try:
        expect_errno(errno.EBADF, os.read, fd, 1)
    finally:
        os.close(fd)
    assert read_file(wsp.u("f")) == b"abc"


def test_o_directory_on_file_is_enotdir(wsp):
    write_file(wsp.p("f"), b"")
    expect_errno(errno.ENOTDIR, os.open, wsp.p("f"),
                 os.O_RDONLY | os.O_DIRECTORY)


def test_trailing_slash_on_file_is_enotdir(wsp):
    write_file(wsp.p("f"), b"")
    expect_errno(errno.ENOTDIR, os.open, wsp.p("f") + "/", os.O_RDONLY)
    expect_errno(errno.ENOTDIR, os.stat, wsp.p("f") + "/")


@pytest.mark.parametrize("flags", [os.O_WRONLY, os.O_RDWR,
                                   os.O_WRONLY | os.O_CREAT,
                                   os.O_RDONLY | os.O_TRUNC])
def test_open_dir_for_writing_is_eisdir(wsp, flags):
    os.mkdir(wsp.p("d"))
    expect_errno(errno.EISDIR, os.open, wsp.p("d"), flags, 0o644)


def test_open_dir_rdonly_works(wsp):
    os.mkdir(wsp.p("d"))
    fd = os.open(wsp.p("d"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert stat.S_ISDIR(os.fstat(fd).st_mode)
        expect_errno(errno.EISDIR, os.read, fd, 10)
    finally:
        os.close(fd)


def test_o_nofollow_on_symlink_is_eloop(wsp):
    write_file(wsp.p("f"), b"x")
    os.symlink("f", wsp.p("l"))
    expect_errno(errno.ELOOP, os.open, wsp.p("l"), os.O_RDONLY | os.O_NOFOLLOW)
    # O_NOFOLLOW only concerns the last component; a plain file opens fine
    os.close(os.open(wsp.p("f"), os.O_RDONLY | os.O_NOFOLLOW))
    # O_PATH|O_NOFOLLOW opens the link itself
    fd = os.open(wsp.p("l"), os.O_PATH | os.O_NOFOLLOW)
    try:
        assert stat.S_ISLNK(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def test_open_missing_is_enoent(wsp):
    expect_errno(errno.ENOENT, os.open, wsp.p("missing"), os.O_RDONLY)


def test_o_tmpfile(wsp):
    os.mkdir(wsp.p("d"))
    try:
        fd = os.open(wsp.p("d"), os.O_TMPFILE | os.O_RDWR, 0o600)
    except OSError as e:
        assert e.errno == errno.EOPNOTSUPP, (
            f"O_TMPFILE must work or fail with EOPNOTSUPP, got "
            f"{errno.errorcode.get(e.errno)}")
        assert os.listdir(wsp.p("d")) == []
        assert os.listdir(wsp.u("d")) == []
        return
    try:
        os.write(fd, b"anonymous")
        st = os.fstat(fd)
        assert stat.S_ISREG(st.st_mode)
        assert st.st_nlink == 0
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert os.listdir(wsp.p("d")) == []
        assert os.listdir(wsp.u("d")) == []
        linkat_follow(f"/proc/self/fd/{fd}", wsp.p("d", "named"))
        assert os.fstat(fd).st_nlink == 1
        assert os.listdir(wsp.p("d")) == ["named"]
        assert read_file(wsp.p("d", "named")) == b"anonymous"
        assert read_file(wsp.u("d", "named")) == b"anonymous"
    finally:
        os.close(fd)


def test_o_tmpfile_excl_cannot_be_linked(wsp):
    try:
        fd = os.open(wsp.p(""), os.O_TMPFILE | os.O_EXCL | os.O_RDWR, 0o600)
    except OSError as e:
        assert e.errno == errno.EOPNOTSUPP
        return
    try:
        expect_errno(errno.ENOENT, linkat_follow, f"/proc/self/fd/{fd}",
                     wsp.p("named"))
    finally:
        os.close(fd)


# ------------------------------------------------------------------ read/write

def test_round_trip_and_offsets(wsp):
    fd = os.open(wsp.p("f"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        assert os.write(fd, b"hello world") == 11
        assert os.lseek(fd, 0, os.SEEK_CUR) == 11
        assert os.pread(fd, 5, 6) == b"world"
        assert os.pwrite(fd, b"W", 6) == 1
        assert os.lseek(fd, 0, os.SEEK_CUR) == 11   # pwrite keeps the offset
        assert os.pread(fd, 100, 0) == b"hello World"
        assert os.pread(fd, 100, 11) == b""           # at EOF
        assert os.pread(fd, 100, 1000) == b""         # past EOF
        assert os.lseek(fd, -5, os.SEEK_END) == 6
        assert os.read(fd, 3) == b"Wor"
    finally:
        os.close(fd)
    assert read_file(wsp.u("f")) == b"hello World"


def test_write_past_eof_leaves_zero_hole(wsp):
    fd = os.open(wsp.p("f"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"A")
        os.pwrite(fd, b"B", 100000)
        assert os.fstat(fd).st_size == 100001
        data = pread_all(fd, 100001, 0)
    finally:
        os.close(fd)
    assert data == b"A" + b"\0" * 99999 + b"B"
    assert read_file(wsp.u("f")) == data


def test_large_write_8mib(wsp):
    data = os.urandom(8 * MiB)
    fd = os.open(wsp.p("big"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        assert os.fstat(fd).st_size == 8 * MiB
        assert pread_all(fd, 8 * MiB, 0) == data
        # an unaligned window in the middle
        assert os.pread(fd, 70000, 3 * MiB + 123) == \
            data[3 * MiB + 123: 3 * MiB + 123 + 70000]
    finally:
        os.close(fd)
    assert read_file(wsp.u("big")) == data
    assert os.stat(wsp.p("big")).st_blocks == os.stat(wsp.u("big")).st_blocks


def test_sparse_file_beyond_4gib(wsp):
    off = 5 * GiB
    fd = os.open(wsp.p("sparse"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        assert os.pwrite(fd, b"Z", off) == 1
        st = os.fstat(fd)
        assert st.st_size == off + 1
        assert os.pread(fd, 1, off) == b"Z"
        assert os.pread(fd, 10, off - 4) == b"\0\0\0\0Z"
        assert os.pread(fd, 4096, 4 * GiB + 12345) == b"\0" * 4096
        assert os.lseek(fd, 0, os.SEEK_DATA) == off
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 0
        assert os.lseek(fd, off, os.SEEK_HOLE) == off + 1
        expect_errno(errno.ENXIO, os.lseek, fd, off + 1, os.SEEK_DATA)
        assert os.lseek(fd, 0, os.SEEK_END) == off + 1
    finally:
        os.close(fd)
    ust = os.stat(wsp.u("sparse"))
    assert ust.st_size == off + 1
    assert ust.st_blocks <= 64       # really sparse in the upper
    assert os.stat(wsp.p("sparse")).st_blocks == ust.st_blocks
    with open(wsp.u("sparse"), "rb") as f:
        f.seek(off)
        assert f.read() == b"Z"


def test_seek_data_hole_on_sparse_file(wsp):
    blk = 4096
    fd = os.open(wsp.p("f"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.pwrite(fd, b"a" * blk, 16 * blk)        # data at [16,17) blocks
        os.pwrite(fd, b"b" * blk, 64 * blk)        # data at [64,65)
        os.ftruncate(fd, 128 * blk)                # trailing hole
        os.fsync(fd)
        assert os.lseek(fd, 0, os.SEEK_DATA) == 16 * blk
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 0
        assert os.lseek(fd, 16 * blk, os.SEEK_HOLE) == 17 * blk
        assert os.lseek(fd, 17 * blk, os.SEEK_DATA) == 64 * blk
        assert os.lseek(fd, 64 * blk + 10, os.SEEK_DATA) == 64 * blk + 10
        assert os.lseek(fd, 64 * blk, os.SEEK_HOLE) == 65 * blk
        expect_errno(errno.ENXIO, os.lseek, fd, 65 * blk, os.SEEK_DATA)
        # SEEK_HOLE in the trailing hole: the offset itself
        assert os.lseek(fd, 100 * blk, os.SEEK_HOLE) == 100 * blk
        # at or past EOF: ENXIO for both
        expect_errno(errno.ENXIO, os.lseek, fd, 128 * blk, os.SEEK_HOLE)
        expect_errno(errno.ENXIO, os.lseek, fd, 200 * blk, os.SEEK_DATA)
        expect_errno(errno.ENXIO, os.lseek, fd, 200 * blk, os.SEEK_HOLE)
        # negative offsets
        expect_errno(errno.ENXIO, os.lseek, fd, -1, os.SEEK_DATA)
    finally:
        os.close(fd)


def test_seek_data_hole_dense_file(wsp):
    write_file(wsp.p("f"), b"x" * 10000)
    fd = os.open(wsp.p("f"), os.O_RDONLY)
    try:
        assert os.lseek(fd, 0, os.SEEK_DATA) == 0
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 10000   # implicit hole at EOF
        assert os.lseek(fd, 5000, os.SEEK_DATA) == 5000
        expect_errno(errno.ENXIO, os.lseek, fd, 10000, os.SEEK_DATA)
    finally:
        os.close(fd)


def test_lseek_errors(wsp):
    write_file(wsp.p("f"), b"abc")
    fd = os.open(wsp.p("f"), os.O_RDONLY)
    try:
        expect_errno(errno.EINVAL, os.lseek, fd, -1, os.SEEK_SET)
        expect_errno(errno.EINVAL, os.lseek, fd, 0, 99)
        assert os.lseek(fd, 1000, os.SEEK_SET) == 1000
        assert os.read(fd, 10) == b""
    finally:
        os.close(fd)


# ------------------------------------------------------------------ truncate

def test_truncate_grow_and_shrink(wsp):
    write_file(wsp.p("f"), b"abcdef")
    os.truncate(wsp.p("f"), 3)
    assert os.stat(wsp.p("f")).st_size == 3
    assert read_file(wsp.u("f")) == b"abc"
    os.truncate(wsp.p("f"), 10)
    assert read_file(wsp.p("f")) == b"abc" + b"\0" * 7
    assert read_file(wsp.u("f")) == b"abc" + b"\0" * 7
    # shrinking then growing must not resurrect old bytes
    os.truncate(wsp.p("f"), 1)
    os.truncate(wsp.p("f"), 6)
    assert read_file(wsp.p("f")) == b"a" + b"\0" * 5


def test_ftruncate_grow_and_shrink(wsp):
    fd = os.open(wsp.p("f"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"x" * 8192)
        os.ftruncate(fd, 100)
        assert os.fstat(fd).st_size == 100
        assert os.pread(fd, 8192, 0) == b"x" * 100
        os.ftruncate(fd, 3 * GiB)
        assert os.fstat(fd).st_size == 3 * GiB
        assert os.pread(fd, 10, 3 * GiB - 10) == b"\0" * 10
        # the file offset is untouched by ftruncate
        assert os.lseek(fd, 0, os.SEEK_CUR) == 8192
    finally:
        os.close(fd)
    assert os.stat(wsp.u("f")).st_size == 3 * GiB


def test_truncate_errors(wsp):
    write_file(wsp.p("f"), b"abc")
    os.mkdir(wsp.p("d"))
    expect_errno(errno.EINVAL, os.truncate, wsp.p("f"), -1)
    expect_errno(errno.EISDIR, os.truncate, wsp.p("d"), 0)
    expect_errno(errno.ENOENT, os.truncate, wsp.p("missing"), 0)
    expect_errno(errno.ENOTDIR, os.truncate, wsp.p("f", "x"), 0)
    # beyond ext4's maximum file size (16 TiB with 4 KiB blocks)
    expect_errno(errno.EFBIG, os.truncate, wsp.p("f"), 1 << 50)
    assert read_file(wsp.u("f")) == b"abc"


# ------------------------------------------------------------------ fallocate

def test_posix_fallocate_grows_file(wsp):
    fd = os.open(wsp.p("f"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"abc")
        os.posix_fallocate(fd, 0, 1 * MiB)
        st = os.fstat(fd)
        assert st.st_size == 1 * MiB
        assert st.st_blocks * 512 >= 1 * MiB
        assert os.pread(fd, 6, 0) == b"abc\0\0\0"
        assert os.pread(fd, 4096, 512 * 1024) == b"\0" * 4096
    finally:
        os.close(fd)
    ust = os.stat(wsp.u("f"))
    assert ust.st_size == 1 * MiB
    assert ust.st_blocks * 512 >= 1 * MiB


def test_fallocate_keep_size(wsp):
    fd = os.open(wsp.p("f"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"abc")
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1 * MiB)
        st = os.fstat(fd)
        assert st.st_size == 3
        assert st.st_blocks * 512 >= 1 * MiB
    finally:
        os.close(fd)
    assert os.stat(wsp.u("f")).st_size == 3


def test_punch_hole(wsp):
    blk = 4096
    data = b"A" * (16 * blk)
    write_file(wsp.p("f"), data)
    fd = os.open(wsp.p("f"), os.O_RDWR)
    try:
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  4 * blk, 4 * blk)
        assert os.fstat(fd).st_size == 16 * blk
        got = pread_all(fd, 16 * blk, 0)
        assert got == b"A" * (4 * blk) + b"\0" * (4 * blk) + b"A" * (8 * blk)
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 4 * blk
        assert os.lseek(fd, 4 * blk, os.SEEK_DATA) == 8 * blk
        # an unaligned punch zeroes the partial blocks too
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 10 * blk + 1,
                  10)
        assert os.pread(fd, 12, 10 * blk) == b"A" + b"\0" * 10 + b"A"
    finally:
        os.close(fd)
    assert read_file(wsp.u("f"))[4 * blk: 8 * blk] == b"\0" * (4 * blk)


def test_punch_hole_requires_keep_size(wsp):
    write_file(wsp.p("f"), b"A" * 8192)
    fd = os.open(wsp.p("f"), os.O_RDWR)
    try:
        expect_errno(errno.EOPNOTSUPP, fallocate, fd, FALLOC_FL_PUNCH_HOLE,
                     0, 4096)
        expect_errno(errno.EINVAL, fallocate, fd, 0, 0, 0)     # len 0
        expect_errno(errno.EINVAL, fallocate, fd, 0, -1, 10)   # negative off
    finally:
        os.close(fd)
    fd = os.open(wsp.p("f"), os.O_RDONLY)
    try:
        expect_errno(errno.EBADF, fallocate, fd, 0, 0, 4096)
    finally:
        os.close(fd)
    assert read_file(wsp.u("f")) == b"A" * 8192


def test_zero_range(wsp):
    write_file(wsp.p("f"), b"A" * 16384)
    fd = os.open(wsp.p("f"), os.O_RDWR)
    try:
        try:
            fallocate(fd, FALLOC_FL_ZERO_RANGE, 100, 5000)
        except OSError as e:
            # Kernel FUSE only forwards ZERO_RANGE on recent kernels; an
            # EOPNOTSUPP there is the kernel's, not the daemon's, decision.
            if is_native(wsp) or e.errno != errno.EOPNOTSUPP:
                raise
            pytest.skip("kernel FUSE does not forward FALLOC_FL_ZERO_RANGE")
        got = pread_all(fd, 16384, 0)
        assert got == b"A" * 100 + b"\0" * 5000 + b"A" * (16384 - 5100)
        fallocate(fd, FALLOC_FL_ZERO_RANGE, 16000, 1000)   # grows
        assert os.fstat(fd).st_size == 17000
    finally:
        os.close(fd)
    assert os.stat(wsp.u("f")).st_size == 17000


# ------------------------------------------------------------ copy_file_range

def test_copy_file_range(wsp):
    src = os.urandom(300000)
    write_file(wsp.p("src"), src)
    write_file(wsp.p("dst"), b"D" * 1000)
    fi = os.open(wsp.p("src"), os.O_RDONLY)
    fo = os.open(wsp.p("dst"), os.O_RDWR)
    try:
        # explicit offsets: file positions untouched
        n = os.copy_file_range(fi, fo, 200000, 1000, 500)
        assert n == 200000
        assert os.lseek(fi, 0, os.SEEK_CUR) == 0
        assert os.lseek(fo, 0, os.SEEK_CUR) == 0
        assert os.fstat(fo).st_size == 200500
        got = pread_all(fo, 200500, 0)
        assert got == b"D" * 500 + src[1000:201000]
        # file positions used and advanced
        os.lseek(fi, 299990, os.SEEK_SET)
        os.lseek(fo, 10, os.SEEK_SET)
        n = os.copy_file_range(fi, fo, 100)     # only 10 left in src
        assert n == 10
        assert os.lseek(fi, 0, os.SEEK_CUR) == 300000
        assert os.lseek(fo, 0, os.SEEK_CUR) == 20
        assert os.pread(fo, 10, 10) == src[299990:]
        # at source EOF: 0
        assert os.copy_file_range(fi, fo, 100, 300000, 0) == 0
    finally:
        os.close(fi)
        os.close(fo)
    expected = b"D" * 10 + src[299990:] + b"D" * 480 + src[1000:201000]
    assert read_file(wsp.p("dst")) == expected
    assert read_file(wsp.u("dst")) == expected


def test_copy_file_range_errors(wsp):
    write_file(wsp.p("a"), b"x" * 10000)
    write_file(wsp.p("b"), b"")
    fa = os.open(wsp.p("a"), os.O_RDWR)
    fw = os.open(wsp.p("a"), os.O_WRONLY)
    fapp = os.open(wsp.p("b"), os.O_WRONLY | os.O_APPEND)
    fr = os.open(wsp.p("b"), os.O_RDONLY)
    try:
        # overlapping ranges in the same file
        expect_errno(errno.EINVAL, os.copy_file_range, fa, fa, 5000, 0, 100)
        # source not readable, destination not writable / append-only
        expect_errno(errno.EBADF, os.copy_file_range, fw, fa, 10, 0, 5000)
        expect_errno(errno.EBADF, os.copy_file_range, fa, fr, 10, 0, 0)
        expect_errno(errno.EBADF, os.copy_file_range, fa, fapp, 10, 0, 0)
        # non-overlapping copy within one file works
        assert os.copy_file_range(fa, fa, 100, 0, 9000) == 100
        assert os.fstat(fa).st_size == 10000
    finally:
        for fd in (fa, fw, fapp, fr):
            os.close(fd)
    os.mkdir(wsp.p("d"))
    fd = os.open(wsp.p("d"), os.O_RDONLY)
    fb = os.open(wsp.p("b"), os.O_WRONLY)
    try:
        expect_errno(errno.EISDIR, os.copy_file_range, fd, fb, 10)
    finally:
        os.close(fd)
        os.close(fb)


# ------------------------------------------------------------------ fsync

def test_fsync_fdatasync_file_and_dir(wsp):
    os.mkdir(wsp.p("d"))
    fd = os.open(wsp.p("d", "f"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"durable")
        os.fsync(fd)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    dfd = os.open(wsp.p("d"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
        os.fdatasync(dfd)
    finally:
        os.close(dfd)
    rfd = os.open(wsp.p("d", "f"), os.O_RDONLY)
    try:
        os.fsync(rfd)             # allowed on a read-only descriptor
    finally:
        os.close(rfd)
    assert read_file(wsp.u("d", "f")) == b"durable"


# ------------------------------------------------------------------ mmap

def test_shared_writable_mmap(wsp):
    size = 3 * 4096 + 100
    write_file(wsp.p("f"), b"." * size)
    fd = os.open(wsp.p("f"), os.O_RDWR)
    try:
        m = mmap.mmap(fd, size, mmap.MAP_SHARED,
                      mmap.PROT_READ | mmap.PROT_WRITE)
        m[0:5] = b"hello"
        m[4096 * 2 + 7: 4096 * 2 + 12] = b"world"
        m[size - 3:size] = b"end"
        m.flush()                 # msync(MS_SYNC)
        # visible through read() on the same and on a new descriptor
        assert os.pread(fd, 5, 0) == b"hello"
        fd2 = os.open(wsp.p("f"), os.O_RDONLY)
        assert os.pread(fd2, 5, 4096 * 2 + 7) == b"world"
        os.close(fd2)
        m.close()
    finally:
        os.close(fd)
    expected = bytearray(b"." * size)
    expected[0:5] = b"hello"
    expected[4096 * 2 + 7: 4096 * 2 + 12] = b"world"
    expected[size - 3:] = b"end"
    assert read_file(wsp.p("f")) == bytes(expected)
    assert read_file(wsp.u("f")) == bytes(expected)


def test_mmap_after_ftruncate_extend(wsp):
    write_file(wsp.p("f"), b"a" * 4096)
    fd = os.open(wsp.p("f"), os.O_RDWR)
    try:
        os.ftruncate(fd, 16384)
        m = mmap.mmap(fd, 16384, mmap.MAP_SHARED,
                      mmap.PROT_READ | mmap.PROT_WRITE)
        assert m[4096:4100] == b"\0\0\0\0"
        m[10000:10004] = b"MMAP"
        m.flush()
        m.close()
        assert os.pread(fd, 4, 10000) == b"MMAP"
        assert os.fstat(fd).st_size == 16384
    finally:
        os.close(fd)
    data = read_file(wsp.u("f"))
    assert len(data) == 16384
    assert data[:4096] == b"a" * 4096
    assert data[10000:10004] == b"MMAP"
    assert data[4096:10000] == b"\0" * (10000 - 4096)


def test_mmap_sees_write(wsp):
    write_file(wsp.p("f"), b"0" * 8192)
    fd = os.open(wsp.p("f"), os.O_RDWR)
    try:
        m = mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ)
        os.pwrite(fd, b"new", 5000)
        assert m[5000:5003] == b"new"
        m.close()
    finally:
        os.close(fd)


def test_private_mmap_does_not_write_back(wsp):
    write_file(wsp.p("f"), b"0" * 4096)
    fd = os.open(wsp.p("f"), os.O_RDONLY)
    try:
        m = mmap.mmap(fd, 4096, mmap.MAP_PRIVATE,
                      mmap.PROT_READ | mmap.PROT_WRITE)
        m[0:4] = b"priv"
        assert m[0:4] == b"priv"
        m.close()
        # a shared writable mapping of an O_RDONLY descriptor is refused
        expect_errno(errno.EACCES, mmap.mmap, fd, 4096, mmap.MAP_SHARED,
                     mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)
    assert read_file(wsp.u("f")) == b"0" * 4096


# ------------------------------------------------------- open-unlinked files

def test_unlinked_open_file_stays_usable(wsp):
    write_file(wsp.p("f"), b"before")
    fd = os.open(wsp.p("f"), os.O_RDWR)
    try:
        os.unlink(wsp.p("f"))
        assert not os.path.lexists(wsp.p("f"))
        assert not os.path.lexists(wsp.u("f"))
        assert os.listdir(wsp.p("")) == []
        assert os.pread(fd, 100, 0) == b"before"
        os.pwrite(fd, b"-after", 6)
        assert os.pread(fd, 100, 0) == b"before-after"
        st = os.fstat(fd)
        assert st.st_nlink == 0
        assert st.st_size == 12
        os.ftruncate(fd, 3)
        assert os.fstat(fd).st_size == 3
        # the name is free again: a new file there is a different one
        write_file(wsp.p("f"), b"new")
        assert os.stat(wsp.p("f")).st_ino != st.st_ino
        assert os.pread(fd, 100, 0) == b"bef"
    finally:
        os.close(fd)
    assert read_file(wsp.p("f")) == b"new"
    assert os.listdir(wsp.u("")) == ["f"]


def test_concurrent_writers_distinct_regions(wsp):
    size = 256 * 1024
    write_file(wsp.p("f"), b"")
    errors = []

    def writer(k):
        try:
            fd = os.open(wsp.p("f"), os.O_WRONLY)
            try:
                chunk = bytes([65 + k]) * 4096
                for i in range(k, size // 4096, 4):
                    os.pwrite(fd, chunk, i * 4096)
            finally:
                os.close(fd)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    data = read_file(wsp.u("f"))
    assert len(data) == size
    for i in range(size // 4096):
        assert data[i * 4096:(i + 1) * 4096] == bytes([65 + i % 4]) * 4096


# ------------------------------------------------- descriptors vs namespace

def test_fd_survives_rename_of_file_and_parent(wsp):
    os.makedirs(wsp.p("a", "b"))
    write_file(wsp.p("a", "b", "f"), b"start")
    fd = os.open(wsp.p("a", "b", "f"), os.O_RDWR)
    try:
        os.rename(wsp.p("a", "b", "f"), wsp.p("a", "b", "g"))
        os.rename(wsp.p("a"), wsp.p("z"))
        os.pwrite(fd, b"-moved", 5)
        os.fsync(fd)
        assert os.fstat(fd).st_nlink == 1
        assert os.fstat(fd).st_ino == os.stat(wsp.p("z", "b", "g")).st_ino
    finally:
        os.close(fd)
    assert read_file(wsp.p("z", "b", "g")) == b"start-moved"
    assert read_file(wsp.u("z", "b", "g")) == b"start-moved"
    assert sorted(os.listdir(wsp.u(""))) == ["z"]


def test_rename_over_open_file_keeps_old_contents(wsp):
    write_file(wsp.p("old"), b"old contents")
    write_file(wsp.p("new"), b"new contents")
    fd = os.open(wsp.p("old"), os.O_RDWR)
    try:
        os.rename(wsp.p("new"), wsp.p("old"))
        assert os.pread(fd, 100, 0) == b"old contents"
        assert os.fstat(fd).st_nlink == 0
        os.pwrite(fd, b"OLD", 0)                  # goes to the orphan
    finally:
        os.close(fd)
    assert read_file(wsp.p("old")) == b"new contents"
    assert read_file(wsp.u("old")) == b"new contents"
    assert os.listdir(wsp.u("")) == ["old"]


def test_many_files_open_at_once(wsp):
    n = 400
    fds = []
    try:
        for i in range(n):
            fds.append(os.open(wsp.p(f"f{i:03d}"), os.O_CREAT | os.O_RDWR,
                               0o644))
        for rnd in range(3):                     # round-robin over all fds
            for i, fd in enumerate(fds):
                os.write(fd, f"{i}:{rnd};".encode())
        for i, fd in enumerate(fds):
            assert os.pread(fd, 100, 0) == f"{i}:0;{i}:1;{i}:2;".encode()
    finally:
        for fd in fds:
            os.close(fd)
    for i in range(0, n, 37):
        assert read_file(wsp.u(f"f{i:03d}")) == f"{i}:0;{i}:1;{i}:2;".encode()
    assert len(os.listdir(wsp.u(""))) == n


def test_writeback_mode_append_and_write_only(make_ws):
    """With -o writeback the daemon opens write-only files read-write (the
    kernel reads around partial pages) and leaves O_APPEND to the kernel:
    appends still land at the end, and a 0200 file stays writable to its
    owner and unreadable through the mount."""
    w = make_ws(options="allow_other,writeback")
    path = w.p("log")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, b"one\n")
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"two\n")
        fd2 = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.write(fd2, b"three\n")
        os.close(fd2)
    finally:
        os.close(fd)
    with open(path, "rb") as f:
        assert f.read() == b"one\ntwo\nthree\n"

    def owner_writes_but_cannot_read():
        fdw = os.open(w.p("pub", "wo"), os.O_WRONLY | os.O_CREAT, 0o200)
        os.write(fdw, b"secret-ish")
        os.close(fdw)
        try:
            os.open(w.p("pub", "wo"), os.O_RDONLY)
        except PermissionError:
            return 0
        return 1

    os.mkdir(w.p("pub"))
    os.chmod(w.p("pub"), 0o777)
    assert as_user(1000, 1000, owner_writes_but_cannot_read) == 0
    w.umount()
    with open(w.u("pub", "wo"), "rb") as f:
        assert f.read() == b"secret-ish"
    with open(w.u("log"), "rb") as f:
        assert f.read() == b"one\ntwo\nthree\n"
