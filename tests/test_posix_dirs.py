"""POSIX directory semantics through wsfs: mkdir/rmdir/unlink, rename and
renameat2 flags, readdir (exactness, d_ino, d_type, 10,000 entries,
concurrent unlink, telldir/seekdir) and statfs.  Expected values are ext4's."""
import errno
import os
import socket
import stat
import threading

import pytest

from helpers import (RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, Dir,
                     expect_errno, read_file, renameat2, write_file,
                     wsp)  # noqa: F401


def ls(path):
    return sorted(os.listdir(path))


# ------------------------------------------------------------------ mkdir

def test_mkdir_mode_umask_and_nlink(wsp):
    os.mkdir(wsp.p("a"))
    st = os.stat(wsp.p("a"))
    assert stat.S_ISDIR(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o755          # 0777 & ~022
    assert st.st_nlink == 2
    assert st.st_uid == 0 and st.st_gid == 0
    root_links = os.stat(wsp.p("")).st_nlink
    os.mkdir(wsp.p("a", "b"), 0o700)
    os.mkdir(wsp.p("a", "c"), 0o7777)
    assert os.stat(wsp.p("a")).st_nlink == 4
    assert stat.S_IMODE(os.stat(wsp.p("a", "b")).st_mode) == 0o700
    # mkdir keeps the sticky bit and drops set-id bits (parent not setgid)
    assert stat.S_IMODE(os.stat(wsp.p("a", "c")).st_mode) == 0o1755
    assert os.stat(wsp.p("")).st_nlink == root_links
    ust = os.stat(wsp.u("a", "c"))
    assert stat.S_ISDIR(ust.st_mode) and stat.S_IMODE(ust.st_mode) == 0o1755
    assert os.stat(wsp.u("a")).st_nlink == 4
    assert os.stat(wsp.p("a")).st_size == os.stat(wsp.u("a")).st_size


def test_mkdir_errors(wsp):
    os.mkdir(wsp.p("d"))
    write_file(wsp.p("f"), b"")
    os.symlink("nowhere", wsp.p("dangling"))
    expect_errno(errno.EEXIST, os.mkdir, wsp.p("d"))
    expect_errno(errno.EEXIST, os.mkdir, wsp.p("f"))
    expect_errno(errno.EEXIST, os.mkdir, wsp.p("dangling"))
    expect_errno(errno.ENOENT, os.mkdir, wsp.p("missing", "x"))
    expect_errno(errno.ENOTDIR, os.mkdir, wsp.p("f", "x"))
    expect_errno(errno.ENAMETOOLONG, os.mkdir, wsp.p("n" * 256))
    assert not os.path.lexists(wsp.u("nowhere"))
    assert ls(wsp.u("")) == ["d", "dangling", "f"]


# ------------------------------------------------------------------ rmdir

def test_rmdir(wsp):
    os.mkdir(wsp.p("d"))
    os.mkdir(wsp.p("d", "sub"))
    assert os.stat(wsp.p("d")).st_nlink == 3
    os.rmdir(wsp.p("d", "sub"))
    assert os.stat(wsp.p("d")).st_nlink == 2
    assert not os.path.lexists(wsp.u("d", "sub"))
    os.rmdir(wsp.p("d"))
    assert not os.path.lexists(wsp.p("d"))
    assert not os.path.lexists(wsp.u("d"))
    expect_errno(errno.ENOENT, os.stat, wsp.p("d"))


def test_rmdir_errors(wsp):
    os.mkdir(wsp.p("d"))
    write_file(wsp.p("d", "f"), b"")
    os.mkdir(wsp.p("e"))
    os.symlink("e", wsp.p("link_to_dir"))
    expect_errno(errno.ENOTEMPTY, os.rmdir, wsp.p("d"))
    expect_errno(errno.ENOTDIR, os.rmdir, wsp.p("d", "f"))
    expect_errno(errno.ENOTDIR, os.rmdir, wsp.p("link_to_dir"))
    expect_errno(errno.ENOENT, os.rmdir, wsp.p("missing"))
    expect_errno(errno.ENOTDIR, os.rmdir, wsp.p("d", "f", "x"))
    expect_errno(errno.EINVAL, os.rmdir, wsp.p("e", "."))
    expect_errno(errno.ENOTEMPTY, os.rmdir, wsp.p("e", ".."))
    assert os.path.isdir(wsp.u("d")) and os.path.isdir(wsp.u("e"))
    assert os.path.isfile(wsp.u("d", "f"))


def test_rmdir_of_open_directory(wsp):
    os.mkdir(wsp.p("d"))
    fd = os.open(wsp.p("d"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.rmdir(wsp.p("d"))
        st = os.fstat(fd)
        assert stat.S_ISDIR(st.st_mode)
        assert st.st_nlink == 0
        assert os.listdir(fd) == []
        # nothing can be created in a removed directory
        expect_errno(errno.ENOENT, os.open, "x", os.O_CREAT | os.O_WRONLY,
                     0o644, dir_fd=fd)
    finally:
        os.close(fd)
    assert not os.path.lexists(wsp.u("d"))


# ------------------------------------------------------------------ unlink

def test_unlink(wsp):
    write_file(wsp.p("f"), b"x")
    os.symlink("f", wsp.p("l"))
    os.unlink(wsp.p("l"))                  # removes the link, not the target
    assert os.path.isfile(wsp.p("f"))
    assert not os.path.lexists(wsp.u("l"))
    os.unlink(wsp.p("f"))
    assert ls(wsp.p("")) == []
    assert ls(wsp.u("")) == []


def test_unlink_errors(wsp):
    os.mkdir(wsp.p("d"))
    write_file(wsp.p("f"), b"")
    expect_errno(errno.EISDIR, os.unlink, wsp.p("d"))
    expect_errno(errno.ENOENT, os.unlink, wsp.p("missing"))
    expect_errno(errno.ENOTDIR, os.unlink, wsp.p("f", "x"))
    expect_errno(errno.ENOTDIR, os.unlink, wsp.p("f") + "/")
    assert os.path.isdir(wsp.u("d")) and os.path.isfile(wsp.u("f"))


# ------------------------------------------------------------------ rename

def test_rename_plain(wsp):
    write_file(wsp.p("a"), b"content")
    ino = os.stat(wsp.p("a")).st_ino
    os.mkdir(wsp.p("d"))
    os.rename(wsp.p("a"), wsp.p("b"))
    assert not os.path.lexists(wsp.p("a"))
    assert read_file(wsp.p("b")) == b"content"
    assert os.stat(wsp.p("b")).st_ino == ino
    os.rename(wsp.p("b"), wsp.p("d", "c"))
    assert read_file(wsp.p("d", "c")) == b"content"
    assert os.stat(wsp.p("d", "c")).st_ino == ino
    assert ls(wsp.u("")) == ["d"]
    assert read_file(wsp.u("d", "c")) == b"content"


def test_rename_over_existing_file(wsp):
    write_file(wsp.p("a"), b"new")
    write_file(wsp.p("b"), b"old")
    os.link(wsp.p("b"), wsp.p("b2"))
    assert os.stat(wsp.p("b2")).st_nlink == 2
    ino_a = os.stat(wsp.p("a")).st_ino
    os.rename(wsp.p("a"), wsp.p("b"))
    assert read_file(wsp.p("b")) == b"new"
    assert os.stat(wsp.p("b")).st_ino == ino_a
    assert os.stat(wsp.p("b2")).st_nlink == 1        # old b lost a link
    assert read_file(wsp.p("b2")) == b"old"
    assert ls(wsp.u("")) == ["b", "b2"]
    assert read_file(wsp.u("b")) == b"new"


def test_rename_to_same_inode_is_noop(wsp):
    write_file(wsp.p("a"), b"x")
    os.link(wsp.p("a"), wsp.p("b"))
    os.rename(wsp.p("a"), wsp.p("b"))     # same inode: nothing happens
    assert ls(wsp.p("")) == ["a", "b"]
    assert os.stat(wsp.p("a")).st_nlink == 2
    os.rename(wsp.p("a"), wsp.p("a"))
    assert ls(wsp.u("")) == ["a", "b"]


def test_rename_dir_over_empty_dir(wsp):
    os.makedirs(wsp.p("src", "inner"))
    write_file(wsp.p("src", "inner", "f"), b"deep")
    os.mkdir(wsp.p("dst"))
    ino = os.stat(wsp.p("src")).st_ino
    root_nlink = os.stat(wsp.p("")).st_nlink
    os.rename(wsp.p("src"), wsp.p("dst"))
    assert not os.path.lexists(wsp.p("src"))
    assert os.stat(wsp.p("dst")).st_ino == ino
    assert read_file(wsp.p("dst", "inner", "f")) == b"deep"
    assert os.stat(wsp.p("")).st_nlink == root_nlink - 1
    assert read_file(wsp.u("dst", "inner", "f")) == b"deep"
    assert ls(wsp.u("")) == ["dst"]


def test_rename_dir_moves_dotdot(wsp):
    os.makedirs(wsp.p("a", "moving"))
    os.mkdir(wsp.p("b"))
    os.rename(wsp.p("a", "moving"), wsp.p("b", "moving"))
    assert os.stat(wsp.p("a")).st_nlink == 2
    assert os.stat(wsp.p("b")).st_nlink == 3
    assert os.stat(wsp.p("b", "moving", "..")).st_ino == \
        os.stat(wsp.p("b")).st_ino
    assert os.stat(wsp.u("b")).st_nlink == 3


@pytest.mark.parametrize("src_kind,dst_kind,err", [
    ("dir", "nonempty_dir", errno.ENOTEMPTY),
    ("file", "dir", errno.EISDIR),
    ("file", "nonempty_dir", errno.EISDIR),
    ("dir", "file", errno.ENOTDIR),
    ("symlink", "dir", errno.EISDIR),
    ("dir", "symlink", errno.ENOTDIR),
])
def test_rename_type_conflicts(wsp, src_kind, dst_kind, err):
    def make(name, kind):
        if kind == "file":
            write_file(wsp.p(name), b"data-" + name.encode())
        elif kind == "dir":
            os.mkdir(wsp.p(name))
        elif kind == "nonempty_dir":
            os.mkdir(wsp.p(name))
            write_file(wsp.p(name, "child"), b"")
        elif kind == "symlink":
            os.symlink("target", wsp.p(name))
    make("src", src_kind)
    make("dst", dst_kind)
    expect_errno(err, os.rename, wsp.p("src"), wsp.p("dst"))
    assert ls(wsp.p("")) == ["dst", "src"]
    assert ls(wsp.u("")) == ["dst", "src"]
    if dst_kind == "nonempty_dir":
        assert ls(wsp.u("dst")) == ["child"]


def test_rename_errors(wsp):
    os.makedirs(wsp.p("d", "sub"))
    write_file(wsp.p("f"), b"")
    expect_errno(errno.EINVAL, os.rename, wsp.p("d"), wsp.p("d", "sub", "x"))
    expect_errno(errno.EINVAL, os.rename, wsp.p("d"), wsp.p("d", "x"))
    expect_errno(errno.ENOENT, os.rename, wsp.p("missing"), wsp.p("x"))
    expect_errno(errno.ENOENT, os.rename, wsp.p("f"), wsp.p("missing", "x"))
    expect_errno(errno.ENOTDIR, os.rename, wsp.p("f"), wsp.p("f", "x"))
    expect_errno(errno.ENOTDIR, os.rename, wsp.p("f") + "/", wsp.p("g"))
    expect_errno(errno.EBUSY, os.rename, wsp.p("d", "."),
                 wsp.p("x"))
    expect_errno(errno.ENAMETOOLONG, os.rename, wsp.p("f"), wsp.p("n" * 256))
    assert ls(wsp.u("")) == ["d", "f"]
    assert ls(wsp.u("d")) == ["sub"]


def test_rename_noreplace(wsp):
    write_file(wsp.p("a"), b"A")
    write_file(wsp.p("b"), b"B")
    expect_errno(errno.EEXIST, renameat2, wsp.p("a"), wsp.p("b"),
                 RENAME_NOREPLACE)
    assert read_file(wsp.p("b")) == b"B"
    renameat2(wsp.p("a"), wsp.p("c"), RENAME_NOREPLACE)
    assert ls(wsp.p("")) == ["b", "c"]
    assert ls(wsp.u("")) == ["b", "c"]
    assert read_file(wsp.u("c")) == b"A"
    # a dangling symlink is an existing name too
    os.symlink("nowhere", wsp.p("dl"))
    expect_errno(errno.EEXIST, renameat2, wsp.p("c"), wsp.p("dl"),
                 RENAME_NOREPLACE)
    expect_errno(errno.EINVAL, renameat2, wsp.p("b"), wsp.p("x"),
                 RENAME_NOREPLACE | RENAME_EXCHANGE)


def test_rename_exchange_files(wsp):
    write_file(wsp.p("a"), b"AAA")
    os.mkdir(wsp.p("d"))
    write_file(wsp.p("d", "b"), b"B")
    ia, ib = os.stat(wsp.p("a")).st_ino, os.stat(wsp.p("d", "b")).st_ino
    renameat2(wsp.p("a"), wsp.p("d", "b"), RENAME_EXCHANGE)
    assert read_file(wsp.p("a")) == b"B"
    assert read_file(wsp.p("d", "b")) == b"AAA"
    assert os.stat(wsp.p("a")).st_ino == ib
    assert os.stat(wsp.p("d", "b")).st_ino == ia
    assert read_file(wsp.u("a")) == b"B"
    assert read_file(wsp.u("d", "b")) == b"AAA"


def test_rename_exchange_file_and_dir(wsp):
    write_file(wsp.p("f"), b"file")
    os.makedirs(wsp.p("x", "d"))
    write_file(wsp.p("x", "d", "inside"), b"in")
    root_nlink = os.stat(wsp.p("")).st_nlink
    renameat2(wsp.p("f"), wsp.p("x", "d"), RENAME_EXCHANGE)
    assert os.path.isdir(wsp.p("f"))
    assert read_file(wsp.p("f", "inside")) == b"in"
    assert read_file(wsp.p("x", "d")) == b"file"
    # directory link counts follow the subdirectory that moved
    assert os.stat(wsp.p("")).st_nlink == root_nlink + 1
    assert os.stat(wsp.p("x")).st_nlink == 2
    assert os.stat(wsp.p("f", "..")).st_ino == os.stat(wsp.p("")).st_ino
    assert os.path.isdir(wsp.u("f"))
    assert read_file(wsp.u("f", "inside")) == b"in"
    assert read_file(wsp.u("x", "d")) == b"file"


def test_rename_exchange_missing_target(wsp):
    write_file(wsp.p("a"), b"A")
    expect_errno(errno.ENOENT, renameat2, wsp.p("a"), wsp.p("missing"),
                 RENAME_EXCHANGE)
    expect_errno(errno.ENOENT, renameat2, wsp.p("missing"), wsp.p("a"),
                 RENAME_EXCHANGE)
    assert ls(wsp.p("")) == ["a"]
    assert ls(wsp.u("")) == ["a"]


def test_rename_exchange_dir_into_own_subdir(wsp):
    os.makedirs(wsp.p("d", "sub"))
    expect_errno(errno.EINVAL, renameat2, wsp.p("d"), wsp.p("d", "sub"),
                 RENAME_EXCHANGE)
    assert os.path.isdir(wsp.u("d", "sub"))


def test_rename_whiteout_does_not_break_the_mount(wsp):
    write_file(wsp.p("a"), b"A")
    try:
        renameat2(wsp.p("a"), wsp.p("b"), RENAME_WHITEOUT)
    except OSError:
        pass                                  # any errno is acceptable
    # the filesystem still answers and is consistent with its upper
    names = ls(wsp.p(""))
    assert names == ls(wsp.u(""))
    assert "b" in names or names == ["a"]
    write_file(wsp.p("after"), b"ok")
    assert read_file(wsp.u("after")) == b"ok"


def test_rename_updates_ctime_and_dir_times(wsp):
    os.mkdir(wsp.p("d1"))
    os.mkdir(wsp.p("d2"))
    write_file(wsp.p("d1", "f"), b"")
    old = (1_000_000_000 * 10**9, 1_000_000_000 * 10**9)
    for d in ("d1", "d2"):
        os.utime(wsp.p(d), ns=old)
    os.utime(wsp.p("d1", "f"), ns=old)
    before = os.stat(wsp.p("d1", "f"))
    os.rename(wsp.p("d1", "f"), wsp.p("d2", "g"))
    after = os.stat(wsp.p("d2", "g"))
    assert after.st_ctime_ns > before.st_ctime_ns      # ext4 touches ctime
    assert after.st_mtime_ns == old[1]
    for d in ("d1", "d2"):
        st = os.stat(wsp.p(d))
        assert st.st_mtime_ns > old[1]
        assert os.stat(wsp.u(d)).st_mtime_ns == st.st_mtime_ns


# ------------------------------------------------------------------ readdir

def test_readdir_exact_names_dots_and_types(wsp):
    os.mkdir(wsp.p("d"))
    write_file(wsp.p("d", "file"), b"")
    os.mkdir(wsp.p("d", "sub"))
    os.symlink("file", wsp.p("d", "link"))
    os.mkfifo(wsp.p("d", "fifo"))
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(wsp.p("d", "sock"))
    finally:
        s.close()
    with Dir(wsp.p("d")) as d:
        entries = d.read_all()
    names = sorted(n for n, _ in entries)
    assert names == [b".", b"..", b"fifo", b"file", b"link", b"sock", b"sub"]
    byname = dict(entries)
    assert byname[b"."] == os.stat(wsp.p("d")).st_ino
    assert byname[b".."] == os.stat(wsp.p("")).st_ino
    kinds = {}
    with os.scandir(wsp.p("d")) as it:
        for e in it:
            assert e.inode() == os.lstat(e.path).st_ino, e.name
            kinds[e.name] = (e.is_dir(follow_symlinks=False),
                             e.is_file(follow_symlinks=False),
                             e.is_symlink())
    assert kinds == {
        "file": (False, True, False), "sub": (True, False, False),
        "link": (False, False, True), "fifo": (False, False, False),
        "sock": (False, False, False)}
    assert ls(wsp.u("d")) == ["fifo", "file", "link", "sock", "sub"]


def test_readdir_empty_dir(wsp):
    os.mkdir(wsp.p("e"))
    with Dir(wsp.p("e")) as d:
        assert sorted(n for n, _ in d.read_all()) == [b".", b".."]
    assert os.listdir(wsp.p("e")) == []


def test_readdir_on_file_is_enotdir(wsp):
    write_file(wsp.p("f"), b"")
    expect_errno(errno.ENOTDIR, os.listdir, wsp.p("f"))
    expect_errno(errno.ENOENT, os.listdir, wsp.p("missing"))


def test_readdir_10000_entries(wsp):
    os.mkdir(wsp.p("big"))
    n = 10000
    names = [f"entry-{i:05d}-{'x' * (i % 40)}" for i in range(n)]
    for name in names:
        os.close(os.open(wsp.p("big", name), os.O_CREAT | os.O_WRONLY, 0o644))
    seen = []
    inos = {}
    with os.scandir(wsp.p("big")) as it:
        for e in it:
            seen.append(e.name)
            inos[e.name] = e.inode()
    assert len(seen) == n
    assert len(set(seen)) == n
    assert set(seen) == set(names)
    assert len(set(inos.values())) == n           # distinct inodes
    for name in names[::997]:
        assert inos[name] == os.lstat(wsp.p("big", name)).st_ino
    assert len(os.listdir(wsp.u("big"))) == n


def test_readdir_with_concurrent_unlink(wsp):
    os.mkdir(wsp.p("d"))
    n = 2000
    names = [f"f{i:04d}" for i in range(n)]
    for name in names:
        os.close(os.open(wsp.p("d", name), os.O_CREAT | os.O_WRONLY, 0o644))
    doomed = set(names[1::2])
    started = threading.Event()
    unlinked = threading.Event()
    errors = []

    def unlinker():
        try:
            started.wait(30)
            for name in sorted(doomed):
                os.unlink(wsp.p("d", name))
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            unlinked.set()

    t = threading.Thread(target=unlinker)
    t.start()
    listed = []
    try:
        with os.scandir(wsp.p("d")) as it:
            for i, e in enumerate(it):
                listed.append(e.name)
                if i == 50:
                    started.set()
                # interleave: after the first 50, read slowly until the
                # unlinker has finished, so listing and unlinking overlap
                if i > 50 and not unlinked.is_set():
                    unlinked.wait(0.005)
    finally:
        started.set()
        t.join(60)
    assert not errors
    assert len(listed) == len(set(listed)), "an entry was listed twice"
    assert set(listed) <= set(names)
    missing = (set(names) - doomed) - set(listed)
    assert not missing, f"never-unlinked entries not listed: {sorted(missing)[:5]}"
    assert sorted(os.listdir(wsp.p("d"))) == sorted(set(names) - doomed)
    assert sorted(os.listdir(wsp.u("d"))) == sorted(set(names) - doomed)


def test_telldir_seekdir_resume(wsp):
    os.mkdir(wsp.p("d"))
    n = 3000                    # several getdents batches
    for i in range(n):
        os.close(os.open(wsp.p("d", f"name-{i:04d}-padding-padding"),
                         os.O_CREAT | os.O_WRONLY, 0o644))
    with Dir(wsp.p("d")) as d:
        full = [name for name, _ in d.read_all()]
        assert len(full) == n + 2
        assert len(set(full)) == n + 2
        d.rewind()
        marks = {}
        for i in range(n + 2):
            if i in (0, 1, 7, 500, 1234, 2999, n + 1):
                marks[i] = d.tell()
            assert d.read()[0] == full[i]
        end = d.tell()
        assert d.read() is None
        for i in sorted(marks, reverse=True):
            d.seek(marks[i])
            rest = [name for name, _ in d.read_all()]
            assert rest == full[i:], f"resume at entry {i}"
        d.seek(end)
        assert d.read() is None
        d.rewind()
        assert [name for name, _ in d.read_all()] == full


def test_readdir_sees_new_entries_after_rewind(wsp):
    os.mkdir(wsp.p("d"))
    write_file(wsp.p("d", "a"), b"")
    with Dir(wsp.p("d")) as d:
        assert sorted(nm for nm, _ in d.read_all()) == [b".", b"..", b"a"]
        write_file(wsp.p("d", "b"), b"")
        d.rewind()
        assert sorted(nm for nm, _ in d.read_all()) == [b".", b"..", b"a",
                                                        b"b"]


# ------------------------------------------------------------------ statfs

def test_statfs_matches_upper(wsp):
    v = os.statvfs(wsp.p(""))
    u = os.statvfs(wsp.u(""))
    assert v.f_bsize == u.f_bsize
    assert v.f_frsize == u.f_frsize
    assert v.f_blocks == u.f_blocks
    assert v.f_files == u.f_files
    assert v.f_namemax == 255
    # free space moves between the calls; allow 1% of the filesystem
    assert abs(v.f_bfree - u.f_bfree) <= u.f_blocks // 100
    assert abs(v.f_bavail - u.f_bavail) <= u.f_blocks // 100
    assert abs(v.f_ffree - u.f_ffree) <= max(1000, u.f_files // 100)
    assert v.f_bavail <= v.f_bfree <= v.f_blocks
    # statfs on a file inside works too
    write_file(wsp.p("f"), b"")
    assert os.statvfs(wsp.p("f")).f_blocks == u.f_blocks


def test_name_reused_with_another_type(wsp):
    os.mkdir(wsp.p("x"))
    os.rmdir(wsp.p("x"))
    write_file(wsp.p("x"), b"now a file")
    st = os.lstat(wsp.p("x"))
    assert stat.S_ISREG(st.st_mode) and st.st_size == 10
    os.unlink(wsp.p("x"))
    os.symlink("target", wsp.p("x"))
    assert stat.S_ISLNK(os.lstat(wsp.p("x")).st_mode)
    assert os.readlink(wsp.p("x")) == "target"
    os.unlink(wsp.p("x"))
    os.mkdir(wsp.p("x"))
    assert stat.S_ISDIR(os.lstat(wsp.p("x")).st_mode)
    assert os.listdir(wsp.p("x")) == []
    assert stat.S_ISDIR(os.lstat(wsp.u("x")).st_mode)


def test_tree_deeper_than_path_max(wsp):
    """Paths longer than PATH_MAX work on ext4 through *at() calls; a
    daemon that rebuilds full paths would fail them."""
    seg = "s" * 200
    depth = 25                                    # > 5000 bytes below root
    fd = os.open(wsp.p(""), os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(seg, dir_fd=fd)
            nfd = os.open(seg, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        f = os.open("leaf", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)
        os.write(f, b"deep data")
        os.close(f)
        os.rename("leaf", "leaf2", src_dir_fd=fd, dst_dir_fd=fd)
        os.symlink("leaf2", "ln", dir_fd=fd)
        os.setxattr(f"/proc/self/fd/{fd}", "user.deep", b"1")
        assert sorted(os.listdir(fd)) == ["leaf2", "ln"]
        assert os.stat("ln", dir_fd=fd).st_size == 9
        f = os.open("ln", os.O_RDONLY, dir_fd=fd)
        assert os.read(f, 100) == b"deep data"
        os.close(f)
    finally:
        os.close(fd)
    # the upper holds the same tree
    fd = os.open(wsp.u(""), os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            nfd = os.open(seg, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        assert sorted(os.listdir(fd)) == ["leaf2", "ln"]
        f = os.open("leaf2", os.O_RDONLY, dir_fd=fd)
        assert os.read(f, 100) == b"deep data"
        os.close(f)
        assert os.getxattr(f"/proc/self/fd/{fd}", "user.deep") == b"1"
    finally:
        os.close(fd)


def test_inode_reuse_churn(wsp):
    """ext4 hands freed inode numbers straight to new files: a new object
    that reuses a number must never show the old one's type or data."""
    for i in range(100):
        write_file(wsp.p("x"), b"file %d" % i)
        assert read_file(wsp.p("x")) == b"file %d" % i
        os.unlink(wsp.p("x"))
        os.mkdir(wsp.p("x"))
        assert stat.S_ISDIR(os.lstat(wsp.p("x")).st_mode)
        assert os.listdir(wsp.p("x")) == []
        os.rmdir(wsp.p("x"))
        os.symlink("t%d" % i, wsp.p("x"))
        assert os.readlink(wsp.p("x")) == "t%d" % i
        os.unlink(wsp.p("x"))
    assert os.listdir(wsp.u("")) == []


def test_readdir_long_names(wsp):
    os.mkdir(wsp.p("d"))
    names = set()
    for i in range(600):
        n = 200 + i % 56                         # 200..255 bytes
        names.add((f"{i:04d}-" + "n" * n)[:n])
    for name in names:
        os.close(os.open(wsp.p("d", name), os.O_CREAT | os.O_WRONLY, 0o644))
    with Dir(wsp.p("d")) as d:
        listed = [n for n, _ in d.read_all()]
    assert len(listed) == len(names) + 2
    assert set(listed) == {os.fsencode(n) for n in names} | {b".", b".."}
    assert set(os.listdir(wsp.u("d"))) == names
