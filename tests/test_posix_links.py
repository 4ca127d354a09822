"""Hard links and symbolic links through wsfs.  Expected values are ext4's."""
import errno
import os
import stat

import pytest

from helpers import (expect_errno, linkat_follow, read_file, write_file,
                     wsp)  # noqa: F401


# ------------------------------------------------------------------ hard links

def nlinks(*paths):
    return [os.lstat(p).st_nlink for p in paths]


def test_link_counts_through_link_unlink_rename(wsp):
    write_file(wsp.p("a"), b"shared")
    os.mkdir(wsp.p("d"))
    os.link(wsp.p("a"), wsp.p("b"))
    os.link(wsp.p("a"), wsp.p("d", "c"))
    ino = os.stat(wsp.p("a")).st_ino
    assert {os.stat(p).st_ino for p in
            (wsp.p("a"), wsp.p("b"), wsp.p("d", "c"))} == {ino}
    assert nlinks(wsp.p("a"), wsp.p("b"), wsp.p("d", "c")) == [3, 3, 3]
    assert nlinks(wsp.u("a"), wsp.u("b"), wsp.u("d", "c")) == [3, 3, 3]
    assert os.stat(wsp.u("a")).st_ino == os.stat(wsp.u("d", "c")).st_ino
    # writes through one name are seen through all
    with open(wsp.p("b"), "r+b") as f:
        f.write(b"SH")
    assert read_file(wsp.p("d", "c")) == b"SHared"
    os.unlink(wsp.p("a"))
    assert nlinks(wsp.p("b"), wsp.p("d", "c")) == [2, 2]
    # rename of one link over another name of the same inode: no-op
    os.rename(wsp.p("b"), wsp.p("d", "c"))
    assert nlinks(wsp.p("b"), wsp.p("d", "c")) == [2, 2]
    # rename another file over a link: the inode loses that link
    write_file(wsp.p("other"), b"other")
    os.rename(wsp.p("other"), wsp.p("b"))
    assert nlinks(wsp.p("d", "c")) == [1]
    assert nlinks(wsp.u("d", "c")) == [1]
    assert read_file(wsp.p("b")) == b"other"
    assert read_file(wsp.p("d", "c")) == b"SHared"
    assert sorted(os.listdir(wsp.u(""))) == ["b", "d"]


def test_link_preserves_identity_and_metadata(wsp):
    write_file(wsp.p("f"), b"x")
    os.chmod(wsp.p("f"), 0o640)
    os.chown(wsp.p("f"), 1000, 1000)
    os.link(wsp.p("f"), wsp.p("g"))
    st = os.stat(wsp.p("g"))
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    os.chmod(wsp.p("g"), 0o600)            # one inode: seen via both
    assert stat.S_IMODE(os.stat(wsp.p("f")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(wsp.u("f")).st_mode) == 0o600


def test_link_errors(wsp):
    os.mkdir(wsp.p("d"))
    write_file(wsp.p("f"), b"")
    write_file(wsp.p("g"), b"")
    expect_errno(errno.EPERM, os.link, wsp.p("d"), wsp.p("dlink"))
    expect_errno(errno.EEXIST, os.link, wsp.p("f"), wsp.p("g"))
    expect_errno(errno.EEXIST, os.link, wsp.p("f"), wsp.p("d"))
    expect_errno(errno.ENOENT, os.link, wsp.p("missing"), wsp.p("x"))
    expect_errno(errno.ENOENT, os.link, wsp.p("f"), wsp.p("missing", "x"))
    expect_errno(errno.ENOTDIR, os.link, wsp.p("f"), wsp.p("g", "x"))
    expect_errno(errno.EEXIST, os.link, wsp.p("f"), wsp.p("f"))
    assert sorted(os.listdir(wsp.u(""))) == ["d", "f", "g"]
    assert nlinks(wsp.p("f")) == [1]


def test_link_into_subdir_and_back(wsp):
    os.makedirs(wsp.p("d", "e"))
    write_file(wsp.p("d", "e", "f"), b"deep")
    os.link(wsp.p("d", "e", "f"), wsp.p("top"))
    os.link(wsp.p("top"), wsp.p("d", "mid"))
    assert nlinks(wsp.p("d", "e", "f")) == [3]
    os.unlink(wsp.p("d", "e", "f"))
    os.rmdir(wsp.p("d", "e"))
    assert read_file(wsp.p("d", "mid")) == b"deep"
    assert nlinks(wsp.p("top"), wsp.u("d", "mid")) == [2, 2]


def test_link_to_symlink_links_the_symlink(wsp):
    write_file(wsp.p("f"), b"")
    os.symlink("f", wsp.p("l"))
    os.link(wsp.p("l"), wsp.p("l2"), follow_symlinks=False)
    assert stat.S_ISLNK(os.lstat(wsp.p("l2")).st_mode)
    assert os.lstat(wsp.p("l2")).st_ino == os.lstat(wsp.p("l")).st_ino
    assert os.lstat(wsp.p("l")).st_nlink == 2
    assert os.readlink(wsp.p("l2")) == "f"
    assert os.lstat(wsp.u("l2")).st_nlink == 2


def test_unlinked_open_file_keeps_data_and_nlink_zero(wsp):
    write_file(wsp.p("f"), b"abc")
    os.link(wsp.p("f"), wsp.p("g"))
    fd = os.open(wsp.p("f"), os.O_RDWR)
    try:
        os.unlink(wsp.p("f"))
        assert os.fstat(fd).st_nlink == 1
        os.unlink(wsp.p("g"))
        st = os.fstat(fd)
        assert st.st_nlink == 0
        os.pwrite(fd, b"def", 3)
        assert os.pread(fd, 10, 0) == b"abcdef"
        assert os.fstat(fd).st_size == 6
    finally:
        os.close(fd)
    assert os.listdir(wsp.u("")) == []


def test_link_from_open_unlinked_file_via_proc_is_refused(wsp):
    # linkat(AT_SYMLINK_FOLLOW) of an nlink==0 file that was not O_TMPFILE
    write_file(wsp.p("f"), b"abc")
    fd = os.open(wsp.p("f"), os.O_RDWR)
    try:
        os.unlink(wsp.p("f"))
        expect_errno(errno.ENOENT, linkat_follow, f"/proc/self/fd/{fd}",
                     wsp.p("again"))
    finally:
        os.close(fd)
    assert os.listdir(wsp.u("")) == []


# ------------------------------------------------------------------ symlinks

@pytest.mark.parametrize("target", [
    "/absolute/path/somewhere", "relative/target", "../up/../and/back",
    "trailing/", "./.", "with space and\nnewline", "x" * 255,
    "a/" * 100 + "end",
])
def test_symlink_target_stored_verbatim(wsp, target):
    os.symlink(target, wsp.p("l"))
    assert os.readlink(wsp.p("l")) == target
    assert os.readlink(wsp.u("l")) == target
    lst = os.lstat(wsp.p("l"))
    assert stat.S_ISLNK(lst.st_mode)
    assert stat.S_IMODE(lst.st_mode) == 0o777
    assert lst.st_size == len(target.encode())
    assert lst.st_nlink == 1
    assert (lst.st_uid, lst.st_gid) == (0, 0)
    assert os.lstat(wsp.u("l")).st_size == len(target.encode())


def test_symlink_non_utf8_target(wsp):
    target = b"\xff\xfe/odd\x01bytes"
    os.symlink(target, os.path.join(os.fsencode(wsp.p("")), b"l"))
    assert os.readlink(os.fsencode(wsp.p("l"))) == target
    assert os.readlink(os.fsencode(wsp.u("l"))) == target


def test_symlink_target_4095_bytes(wsp):
    target = ("seg/" * 1024)[:4094] + "z"
    assert len(target) == 4095
    os.symlink(target, wsp.p("long"))
    assert os.readlink(wsp.p("long")) == target
    assert os.readlink(wsp.u("long")) == target
    assert os.lstat(wsp.p("long")).st_size == 4095
    expect_errno(errno.ENAMETOOLONG, os.symlink, "y" * 4096, wsp.p("toolong"))
    assert not os.path.lexists(wsp.u("toolong"))


def test_symlink_errors(wsp):
    write_file(wsp.p("f"), b"")
    expect_errno(errno.EEXIST, os.symlink, "x", wsp.p("f"))
    expect_errno(errno.ENOENT, os.symlink, "", wsp.p("empty"))
    expect_errno(errno.ENOENT, os.symlink, "x", wsp.p("missing", "l"))
    expect_errno(errno.ENOTDIR, os.symlink, "x", wsp.p("f", "l"))
    expect_errno(errno.EINVAL, os.readlink, wsp.p("f"))
    expect_errno(errno.ENOENT, os.readlink, wsp.p("missing"))
    assert os.listdir(wsp.u("")) == ["f"]


def test_symlink_resolution(wsp):
    os.makedirs(wsp.p("d", "sub"))
    write_file(wsp.p("d", "sub", "f"), b"target-data")
    os.symlink("sub/f", wsp.p("d", "rel"))
    os.symlink(wsp.p("d", "sub", "f"), wsp.p("abs"))
    os.symlink("d/sub", wsp.p("dirlink"))
    os.symlink("../sub/f", wsp.p("d", "sub", "up"))
    assert read_file(wsp.p("d", "rel")) == b"target-data"
    assert read_file(wsp.p("abs")) == b"target-data"
    assert read_file(wsp.p("dirlink", "f")) == b"target-data"
    assert read_file(wsp.p("d", "sub", "up")) == b"target-data"
    assert os.stat(wsp.p("d", "rel")).st_ino == \
        os.stat(wsp.p("d", "sub", "f")).st_ino
    assert sorted(os.listdir(wsp.p("dirlink"))) == ["f", "up"]
    # writing through a symlink writes the target
    with open(wsp.p("d", "rel"), "ab") as f:
        f.write(b"+")
    assert read_file(wsp.u("d", "sub", "f")) == b"target-data+"


def test_dangling_symlink(wsp):
    os.symlink("nothing-here", wsp.p("dl"))
    lst = os.lstat(wsp.p("dl"))
    assert stat.S_ISLNK(lst.st_mode)
    expect_errno(errno.ENOENT, os.stat, wsp.p("dl"))
    expect_errno(errno.ENOENT, os.open, wsp.p("dl"), os.O_RDONLY)
    assert os.listdir(wsp.p("")) == ["dl"]
    # O_CREAT|O_EXCL does not follow: EEXIST
    expect_errno(errno.EEXIST, os.open, wsp.p("dl"),
                 os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    # O_CREAT alone creates the target through the link
    fd = os.open(wsp.p("dl"), os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b"made")
    os.close(fd)
    assert read_file(wsp.p("nothing-here")) == b"made"
    assert read_file(wsp.u("nothing-here")) == b"made"
    assert stat.S_ISLNK(os.lstat(wsp.u("dl")).st_mode)


def test_eloop_cycles_and_chains(wsp):
    os.symlink("b", wsp.p("a"))
    os.symlink("a", wsp.p("b"))
    os.symlink("self", wsp.p("self"))
    for name in ("a", "b", "self"):
        expect_errno(errno.ELOOP, os.stat, wsp.p(name))
        expect_errno(errno.ELOOP, os.open, wsp.p(name), os.O_RDONLY)
    expect_errno(errno.ELOOP, os.stat, wsp.p("a", "x"))
    assert os.readlink(wsp.p("a")) == "b"
    # the kernel follows at most 40 links
    write_file(wsp.p("end"), b"E")
    os.symlink("end", wsp.p("c0"))
    for i in range(1, 41):
        os.symlink(f"c{i - 1}", wsp.p(f"c{i}"))
    assert read_file(wsp.p("c39")) == b"E"           # 40 links
    expect_errno(errno.ELOOP, os.stat, wsp.p("c40"))  # 41 links


def test_o_nofollow_and_lstat_on_symlink(wsp):
    write_file(wsp.p("f"), b"data")
    os.symlink("f", wsp.p("l"))
    os.symlink("nowhere", wsp.p("dl"))
    expect_errno(errno.ELOOP, os.open, wsp.p("l"), os.O_RDONLY | os.O_NOFOLLOW)
    expect_errno(errno.ELOOP, os.open, wsp.p("dl"),
                 os.O_RDONLY | os.O_NOFOLLOW)
    expect_errno(errno.ELOOP, os.open, wsp.p("l"),
                 os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    assert stat.S_ISLNK(os.lstat(wsp.p("l")).st_mode)
    assert stat.S_ISREG(os.stat(wsp.p("l")).st_mode)
    assert read_file(wsp.u("f")) == b"data"


def test_rename_and_unlink_symlink_not_target(wsp):
    write_file(wsp.p("f"), b"x")
    os.mkdir(wsp.p("d"))
    os.symlink("../f", wsp.p("d", "l"))
    os.rename(wsp.p("d", "l"), wsp.p("d", "l2"))
    assert os.readlink(wsp.p("d", "l2")) == "../f"
    assert read_file(wsp.p("d", "l2")) == b"x"
    os.unlink(wsp.p("d", "l2"))
    assert read_file(wsp.p("f")) == b"x"
    assert os.listdir(wsp.u("d")) == []
