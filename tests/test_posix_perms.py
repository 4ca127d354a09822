"""Ownership and permission semantics through wsfs, exercised as
unprivileged users (uid 1000, 1001, 65534).  wsfs enables default_permissions
and creates files as the caller: everything below is what ext4 does for the
same calls, and every object a user creates must carry that user's ids in the
upper directory too."""
import errno
import os
import socket
import stat

import pytest

from helpers import (EXTRA_GROUP, G1, G2, NOBODY, NOGROUP, U1, U2, err_as,
                     ok_as, read_file, refdir, write_file, wsp, wsp_acl,  # noqa: F401
                     expect_errno, is_native)


def shared_dir(wsp, name="pub", mode=0o777, owner=(0, 0)):
    os.mkdir(wsp.p(name))
    os.chown(wsp.p(name), *owner)
    os.chmod(wsp.p(name), mode)
    return wsp.p(name)


def ids(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid


def user_file(wsp, rel, uid, gid, mode, data=b"data"):
    write_file(wsp.p(rel), data)
    os.chown(wsp.p(rel), uid, gid)
    os.chmod(wsp.p(rel), mode)


# ------------------------------------------------------------ ownership

def _make_sock(path):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(path)
    finally:
        s.close()


@pytest.mark.parametrize("kind", ["file", "mknod", "dir", "symlink", "fifo",
                                  "socket", "hardlink_target"])
def test_created_objects_owned_by_caller(wsp, kind):
    shared_dir(wsp)
    path = wsp.p("pub", "obj")

    def create():
        if kind == "file":
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
        elif kind == "mknod":
            os.mknod(path, stat.S_IFREG | 0o644)
        elif kind == "dir":
            os.mkdir(path)
        elif kind == "symlink":
            os.symlink("somewhere", path)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "socket":
            _make_sock(path)
        elif kind == "hardlink_target":
            os.close(os.open(path + ".orig", os.O_CREAT | os.O_WRONLY, 0o644))
            os.link(path + ".orig", path)

    ok_as(U1, G1, create)
    assert ids(path) == (U1, G1)
    assert ids(wsp.u("pub", "obj")) == (U1, G1)


def test_created_by_nobody_and_by_root(wsp):
    shared_dir(wsp)
    ok_as(NOBODY, NOGROUP, lambda: write_file(wsp.p("pub", "n"), b"x"))
    write_file(wsp.p("pub", "r"), b"x")
    assert ids(wsp.u("pub", "n")) == (NOBODY, NOGROUP)
    assert ids(wsp.u("pub", "r")) == (0, 0)
    assert ids(wsp.p("pub", "n")) == (NOBODY, NOGROUP)


def test_user_writes_land_in_upper(wsp):
    shared_dir(wsp)

    def work():
        os.makedirs(wsp.p("pub", "a", "b"))
        write_file(wsp.p("pub", "a", "b", "f"), b"by user")
        os.rename(wsp.p("pub", "a", "b", "f"), wsp.p("pub", "a", "g"))
        return sorted(os.listdir(wsp.p("pub", "a")))

    assert ok_as(U1, G1, work) == ["b", "g"]
    assert read_file(wsp.u("pub", "a", "g")) == b"by user"
    for rel in (("pub", "a"), ("pub", "a", "b"), ("pub", "a", "g")):
        assert ids(wsp.u(*rel)) == (U1, G1)


# ------------------------------------------------------------ umask

@pytest.mark.parametrize("umask,fmode,dmode", [
    (0o022, 0o644, 0o755),
    (0o077, 0o600, 0o700),
    (0o002, 0o664, 0o775),
    (0o000, 0o666, 0o777),
    (0o777, 0o000, 0o000),
])
def test_umask_applied(wsp, umask, fmode, dmode):
    shared_dir(wsp)

    def create():
        os.umask(umask)
        os.close(os.open(wsp.p("pub", "f"), os.O_CREAT | os.O_WRONLY, 0o666))
        os.mkdir(wsp.p("pub", "d"), 0o777)
        os.mkfifo(wsp.p("pub", "p"), 0o666)

    ok_as(U1, G1, create)
    for name, want in (("f", fmode), ("d", dmode), ("p", fmode)):
        assert stat.S_IMODE(os.lstat(wsp.p("pub", name)).st_mode) == want, name
        assert stat.S_IMODE(os.lstat(wsp.u("pub", name)).st_mode) == want, name


@pytest.mark.parametrize("umask,fmode,dmode", [(0o027, 0o640, 0o750),
                                               (0o000, 0o666, 0o777)])
def test_umask_for_root_too(wsp, umask, fmode, dmode):
    old = os.umask(umask)
    try:
        write_file(wsp.p("f"), b"", mode=0o666)
        os.mkdir(wsp.p("d"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(wsp.p("f")).st_mode) == fmode
    assert stat.S_IMODE(os.stat(wsp.u("f")).st_mode) == fmode
    assert stat.S_IMODE(os.stat(wsp.u("d")).st_mode) == dmode


# ------------------------------------------------------------ setgid dirs

def test_setgid_directory_inheritance(wsp):
    shared_dir(wsp, "sg", 0o2777, owner=(0, EXTRA_GROUP))

    def create():
        os.close(os.open(wsp.p("sg", "f"), os.O_CREAT | os.O_WRONLY, 0o644))
        os.mkdir(wsp.p("sg", "sub"))
        os.mkdir(wsp.p("sg", "sub", "deeper"))
        os.mkfifo(wsp.p("sg", "fifo"))
        os.symlink("f", wsp.p("sg", "link"))

    ok_as(U1, G1, create)
    for rel in ("f", "sub", "fifo", "link", "sub/deeper"):
        assert ids(wsp.p("sg", rel)) == (U1, EXTRA_GROUP), rel
        assert ids(wsp.u("sg", rel)) == (U1, EXTRA_GROUP), rel
    for rel in ("sub", "sub/deeper"):
        assert os.stat(wsp.p("sg", rel)).st_mode == stat.S_IFDIR | 0o2755
        assert os.stat(wsp.u("sg", rel)).st_mode == stat.S_IFDIR | 0o2755
    # regular files do not get the setgid bit
    assert os.stat(wsp.p("sg", "f")).st_mode == stat.S_IFREG | 0o644


def test_setgid_dir_root_creates_with_dir_group(wsp):
    shared_dir(wsp, "sg", 0o2775, owner=(U1, EXTRA_GROUP))
    write_file(wsp.p("sg", "f"), b"")
    os.mkdir(wsp.p("sg", "d"))
    assert ids(wsp.u("sg", "f")) == (0, EXTRA_GROUP)
    assert ids(wsp.u("sg", "d")) == (0, EXTRA_GROUP)
    assert stat.S_IMODE(os.stat(wsp.u("sg", "d")).st_mode) & stat.S_ISGID


def test_setgid_bit_stripped_on_create_by_non_member(wsp):
    shared_dir(wsp, "sg", 0o2777, owner=(0, EXTRA_GROUP))

    def create():
        os.close(os.open(wsp.p("sg", "f"), os.O_CREAT | os.O_WRONLY, 0o2755))

    ok_as(U1, G1, create)
    assert os.stat(wsp.p("sg", "f")).st_mode == stat.S_IFREG | 0o755
    assert os.stat(wsp.u("sg", "f")).st_mode == stat.S_IFREG | 0o755
    # a member of the group keeps it
    ok_as(U2, G2, lambda: os.close(os.open(
        wsp.p("sg", "g"), os.O_CREAT | os.O_WRONLY, 0o2755)),
        groups=[EXTRA_GROUP])
    assert os.stat(wsp.u("sg", "g")).st_mode == stat.S_IFREG | 0o2755


def test_no_setgid_inheritance_in_plain_dir(wsp):
    shared_dir(wsp, "plain", 0o777, owner=(0, EXTRA_GROUP))
    ok_as(U1, G1, lambda: os.mkdir(wsp.p("plain", "d")))
    assert ids(wsp.u("plain", "d")) == (U1, G1)
    assert os.stat(wsp.u("plain", "d")).st_mode == stat.S_IFDIR | 0o755


# ------------------------------------------------------------ sticky dirs

@pytest.fixture
def sticky(wsp):
    shared_dir(wsp, "tmp", 0o1777)

    def make(name):
        write_file(wsp.p("tmp", name), b"owner's")
        os.chmod(wsp.p("tmp", name), 0o666)

    ok_as(U1, G1, lambda: make("mine"))
    ok_as(U2, G2, lambda: make("theirs"))
    return wsp


def test_sticky_dir_protects_other_users_files(sticky):
    w = sticky
    err_as(U2, G2, errno.EPERM, lambda: os.unlink(w.p("tmp", "mine")))
    err_as(U2, G2, errno.EPERM,
           lambda: os.rename(w.p("tmp", "mine"), w.p("tmp", "stolen")))
    err_as(U2, G2, errno.EPERM,
           lambda: os.rename(w.p("tmp", "theirs"), w.p("tmp", "mine")))
    # but the file's own mode still lets U2 write to it
    ok_as(U2, G2, lambda: write_file(w.p("tmp", "mine"), b"rewritten"))
    assert sorted(os.listdir(w.u("tmp"))) == ["mine", "theirs"]
    assert read_file(w.u("tmp", "mine")) == b"rewritten"
    assert ids(w.u("tmp", "mine")) == (U1, G1)


def test_sticky_dir_owner_and_root_may_remove(sticky):
    w = sticky
    ok_as(U1, G1, lambda: os.rename(w.p("tmp", "mine"), w.p("tmp", "moved")))
    ok_as(U1, G1, lambda: os.unlink(w.p("tmp", "moved")))
    os.unlink(w.p("tmp", "theirs"))               # root
    assert os.listdir(w.u("tmp")) == []


def test_sticky_dir_owned_by_user_lets_dir_owner_remove(wsp):
    shared_dir(wsp, "tmp", 0o1777, owner=(NOBODY, NOGROUP))
    ok_as(U1, G1, lambda: write_file(wsp.p("tmp", "f"), b""))
    ok_as(NOBODY, NOGROUP, lambda: os.unlink(wsp.p("tmp", "f")))
    assert os.listdir(wsp.u("tmp")) == []


def test_sticky_dir_subdir_of_other_user(wsp):
    shared_dir(wsp, "tmp", 0o1777)
    ok_as(U1, G1, lambda: os.mkdir(wsp.p("tmp", "d1"), 0o777))
    err_as(U2, G2, errno.EPERM, lambda: os.rmdir(wsp.p("tmp", "d1")))
    err_as(U2, G2, errno.EPERM,
           lambda: os.rename(wsp.p("tmp", "d1"), wsp.p("tmp", "d2")))
    assert os.listdir(wsp.u("tmp")) == ["d1"]


# ------------------------------------------------------------ access checks

def test_read_write_permission_denied(wsp):
    shared_dir(wsp)
    user_file(wsp, "pub/secret", U1, G1, 0o600)
    user_file(wsp, "pub/readonly", U1, G1, 0o644)
    err_as(U2, G2, errno.EACCES, lambda: read_file(wsp.p("pub", "secret")))
    err_as(NOBODY, NOGROUP, errno.EACCES,
           lambda: os.open(wsp.p("pub", "secret"), os.O_RDONLY))
    err_as(U2, G2, errno.EACCES,
           lambda: os.open(wsp.p("pub", "readonly"), os.O_WRONLY))
    err_as(U2, G2, errno.EACCES,
           lambda: os.open(wsp.p("pub", "readonly"), os.O_RDONLY | os.O_TRUNC))
    err_as(U2, G2, errno.EACCES,
           lambda: os.truncate(wsp.p("pub", "readonly"), 0))
    assert ok_as(U2, G2, lambda: read_file(wsp.p("pub", "readonly"))) == b"data"
    assert ok_as(U1, G1, lambda: read_file(wsp.p("pub", "secret"))) == b"data"
    # root bypasses
    assert read_file(wsp.p("pub", "secret")) == b"data"
    assert read_file(wsp.u("pub", "readonly")) == b"data"


def test_group_and_other_bits(wsp):
    shared_dir(wsp)
    user_file(wsp, "pub/g", U1, EXTRA_GROUP, 0o640)
    err_as(U2, G2, errno.EACCES, lambda: read_file(wsp.p("pub", "g")))
    assert ok_as(U2, G2, lambda: read_file(wsp.p("pub", "g")),
                 groups=[EXTRA_GROUP]) == b"data"
    # owner bits apply to the owner even when group/other are wider
    user_file(wsp, "pub/o", U1, G1, 0o077)
    err_as(U1, G1, errno.EACCES, lambda: read_file(wsp.p("pub", "o")))
    assert ok_as(U2, G2, lambda: read_file(wsp.p("pub", "o"))) == b"data"


def test_create_in_other_users_dir_denied(wsp):
    shared_dir(wsp, "home1", 0o755, owner=(U1, G1))
    ok_as(U1, G1, lambda: write_file(wsp.p("home1", "f"), b""))
    err_as(U2, G2, errno.EACCES,
           lambda: os.open(wsp.p("home1", "x"), os.O_CREAT | os.O_WRONLY, 0o644))
    err_as(U2, G2, errno.EACCES, lambda: os.mkdir(wsp.p("home1", "x")))
    err_as(U2, G2, errno.EACCES, lambda: os.symlink("t", wsp.p("home1", "x")))
    err_as(U2, G2, errno.EACCES, lambda: os.mkfifo(wsp.p("home1", "x")))
    err_as(U2, G2, errno.EACCES, lambda: os.unlink(wsp.p("home1", "f")))
    err_as(U2, G2, errno.EACCES,
           lambda: os.rename(wsp.p("home1", "f"), wsp.p("home1", "g")))
    # the workspace root belongs to root and is 0755
    err_as(U1, G1, errno.EACCES, lambda: os.mkdir(wsp.p("x")))
    assert os.listdir(wsp.u("home1")) == ["f"]
    assert sorted(os.listdir(wsp.u(""))) == ["home1"]


def test_search_and_list_permissions(wsp):
    shared_dir(wsp, "noexec", 0o766, owner=(U1, G1))     # others: rw-
    shared_dir(wsp, "noread", 0o711, owner=(U1, G1))     # others: --x
    write_file(wsp.p("noexec", "f"), b"x")
    write_file(wsp.p("noread", "f"), b"y")
    os.chmod(wsp.p("noread", "f"), 0o644)
    err_as(U2, G2, errno.EACCES, lambda: os.stat(wsp.p("noexec", "f")))
    err_as(U2, G2, errno.EACCES, lambda: read_file(wsp.p("noexec", "f")))
    err_as(U2, G2, errno.EACCES, lambda: os.listdir(wsp.p("noread")))
    assert ok_as(U2, G2, lambda: read_file(wsp.p("noread", "f"))) == b"y"
    assert ok_as(U1, G1, lambda: sorted(os.listdir(wsp.p("noread")))) == ["f"]


@pytest.mark.parametrize("uid,gid,groups,expect", [
    (U1, G1, (), {"R": True, "W": True, "X": False}),
    (U2, G2, (), {"R": True, "W": False, "X": False}),
    (U2, G2, (EXTRA_GROUP,), {"R": True, "W": True, "X": True}),
    (NOBODY, NOGROUP, (), {"R": True, "W": False, "X": False}),
])
def test_access_syscall(wsp, uid, gid, groups, expect):
    shared_dir(wsp)
    user_file(wsp, "pub/f", U1, EXTRA_GROUP, 0o674)

    def check():
        return {"R": os.access(wsp.p("pub", "f"), os.R_OK),
                "W": os.access(wsp.p("pub", "f"), os.W_OK),
                "X": os.access(wsp.p("pub", "f"), os.X_OK)}

    assert ok_as(uid, gid, check, groups=groups) == expect


def test_rename_dir_across_parents_needs_write_on_dir(wsp):
    shared_dir(wsp)
    os.mkdir(wsp.p("pub", "rootdir"), 0o755)            # root's, not U1's
    ok_as(U1, G1, lambda: os.mkdir(wsp.p("pub", "dest")))
    err_as(U1, G1, errno.EACCES,
           lambda: os.rename(wsp.p("pub", "rootdir"),
                             wsp.p("pub", "dest", "rootdir")))
    # within the same parent no write access to the directory is needed
    ok_as(U1, G1, lambda: os.rename(wsp.p("pub", "rootdir"),
                                    wsp.p("pub", "renamed")))
    assert sorted(os.listdir(wsp.u("pub"))) == ["dest", "renamed"]


def test_protected_hardlinks(wsp):
    with open("/proc/sys/fs/protected_hardlinks") as f:
        if f.read().strip() != "1":
            pytest.skip("fs.protected_hardlinks is off")
    shared_dir(wsp)
    user_file(wsp, "pub/rootfile", 0, 0, 0o600)
    err_as(U1, G1, errno.EPERM,
           lambda: os.link(wsp.p("pub", "rootfile"), wsp.p("pub", "mylink")))
    ok_as(U1, G1, lambda: write_file(wsp.p("pub", "own"), b""))
    ok_as(U1, G1, lambda: os.link(wsp.p("pub", "own"), wsp.p("pub", "own2")))
    assert os.stat(wsp.u("pub", "own")).st_nlink == 2
    assert not os.path.lexists(wsp.u("pub", "mylink"))


def test_o_noatime_by_non_owner_is_eperm(wsp):
    shared_dir(wsp)
    user_file(wsp, "pub/f", U1, G1, 0o644)
    err_as(U2, G2, errno.EPERM,
           lambda: os.open(wsp.p("pub", "f"), os.O_RDONLY | os.O_NOATIME))
    ok_as(U1, G1, lambda: os.close(os.open(wsp.p("pub", "f"),
                                           os.O_RDONLY | os.O_NOATIME)))


# ------------------------------------------------------------ chmod/chown

def test_chmod_by_non_owner_is_eperm(wsp):
    shared_dir(wsp)
    user_file(wsp, "pub/f", U1, G1, 0o666)
    err_as(U2, G2, errno.EPERM, lambda: os.chmod(wsp.p("pub", "f"), 0o777))
    err_as(U2, G2, errno.EPERM, lambda: os.chmod(wsp.p("pub", "f"), 0o666),
           groups=[G1])                              # group membership: no
    ok_as(U1, G1, lambda: os.chmod(wsp.p("pub", "f"), 0o600))
    assert stat.S_IMODE(os.stat(wsp.u("pub", "f")).st_mode) == 0o600


def test_chmod_setgid_by_owner_outside_group_is_dropped(wsp):
    shared_dir(wsp)
    user_file(wsp, "pub/f", U1, EXTRA_GROUP, 0o644)
    ok_as(U1, G1, lambda: os.chmod(wsp.p("pub", "f"), 0o2755))
    assert stat.S_IMODE(os.stat(wsp.p("pub", "f")).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(wsp.u("pub", "f")).st_mode) == 0o755
    ok_as(U1, G1, lambda: os.chmod(wsp.p("pub", "f"), 0o2755),
          groups=[EXTRA_GROUP])
    assert stat.S_IMODE(os.stat(wsp.u("pub", "f")).st_mode) == 0o2755
    # setuid is always the owner's to set
    ok_as(U1, G1, lambda: os.chmod(wsp.p("pub", "f"), 0o4755))
    assert stat.S_IMODE(os.stat(wsp.u("pub", "f")).st_mode) == 0o4755


def test_chown_by_non_root(wsp):
    shared_dir(wsp)
    user_file(wsp, "pub/f", U1, G1, 0o644)
    f = wsp.p("pub", "f")
    err_as(U1, G1, errno.EPERM, lambda: os.chown(f, U2, -1))
    err_as(U1, G1, errno.EPERM, lambda: os.chown(f, 0, G1))
    err_as(U2, G2, errno.EPERM, lambda: os.chown(f, U2, G2))
    err_as(U2, G2, errno.EPERM, lambda: os.chown(f, -1, G2))
    # chown to oneself (uid unchanged) is allowed
    ok_as(U1, G1, lambda: os.chown(f, U1, -1))
    ok_as(U1, G1, lambda: os.chown(f, -1, -1))
    assert ids(wsp.u("pub", "f")) == (U1, G1)


def test_chgrp_only_to_own_groups(wsp):
    shared_dir(wsp)
    user_file(wsp, "pub/f", U1, 0, 0o644)
    f = wsp.p("pub", "f")
    # no supplementary groups: only the primary group is allowed
    err_as(U1, G1, errno.EPERM, lambda: os.chown(f, -1, EXTRA_GROUP))
    assert ids(wsp.u("pub", "f")) == (U1, 0)
    ok_as(U1, G1, lambda: os.chown(f, -1, G1))
    assert ids(wsp.p("pub", "f")) == (U1, G1)
    assert ids(wsp.u("pub", "f")) == (U1, G1)
    # with a supplementary group, that group too
    ok_as(U1, G1, lambda: os.chown(f, -1, EXTRA_GROUP), groups=[EXTRA_GROUP])
    assert ids(wsp.u("pub", "f")) == (U1, EXTRA_GROUP)
    err_as(U1, G1, errno.EPERM, lambda: os.chown(f, -1, 3000),
           groups=[EXTRA_GROUP])


def test_chgrp_by_owner_clears_setid(wsp):
    shared_dir(wsp)
    user_file(wsp, "pub/f", U1, 0, 0o6755)
    ok_as(U1, G1, lambda: os.chown(wsp.p("pub", "f"), -1, G1))
    assert stat.S_IMODE(os.stat(wsp.u("pub", "f")).st_mode) == 0o755


def test_lchown_symlink_by_owner(wsp):
    shared_dir(wsp)
    ok_as(U1, G1, lambda: os.symlink("x", wsp.p("pub", "l")))
    ok_as(U1, G1, lambda: os.lchown(wsp.p("pub", "l"), -1, EXTRA_GROUP),
          groups=[EXTRA_GROUP])
    assert ids(wsp.u("pub", "l")) == (U1, EXTRA_GROUP)


# ------------------------------------------------------------ setid on write

@pytest.mark.parametrize("before,groups,after", [
    (0o4777, (), 0o777),
    (0o6777, (), 0o777),
    (0o2777, (), 0o777),
    (0o2777, (G1,), 0o777),       # group-exec setgid: cleared for members too
    (0o2767, (), 0o767),          # writer outside the group: cleared
    (0o2767, (G1,), 0o2767),      # member, no group exec: kept
])
def test_write_by_non_root_clears_setid(wsp, before, groups, after):
    shared_dir(wsp)
    user_file(wsp, "pub/f", U1, G1, before, b"0123")

    def write():
        fd = os.open(wsp.p("pub", "f"), os.O_WRONLY)
        try:
            os.pwrite(fd, b"X", 1)
        finally:
            os.close(fd)

    ok_as(U2, G2, write, groups=groups)
    assert stat.S_IMODE(os.stat(wsp.p("pub", "f")).st_mode) == after
    assert stat.S_IMODE(os.stat(wsp.u("pub", "f")).st_mode) == after
    assert read_file(wsp.u("pub", "f")) == b"0X23"


def test_write_by_owner_clears_setuid(wsp):
    shared_dir(wsp)
    user_file(wsp, "pub/f", U1, G1, 0o4755)
    ok_as(U1, G1, lambda: write_file(wsp.p("pub", "f"), b"new"))
    assert stat.S_IMODE(os.stat(wsp.u("pub", "f")).st_mode) == 0o755


def test_truncate_by_non_root_clears_setuid(wsp):
    shared_dir(wsp)
    user_file(wsp, "pub/f", U1, G1, 0o4777)
    ok_as(U2, G2, lambda: os.truncate(wsp.p("pub", "f"), 1))
    assert stat.S_IMODE(os.stat(wsp.u("pub", "f")).st_mode) == 0o777
    assert os.stat(wsp.u("pub", "f")).st_size == 1


def test_write_by_root_keeps_setuid(wsp):
    write_file(wsp.p("f"), b"abc")
    os.chmod(wsp.p("f"), 0o4755)
    fd = os.open(wsp.p("f"), os.O_WRONLY)
    try:
        os.write(fd, b"x")
    finally:
        os.close(fd)
    assert stat.S_IMODE(os.stat(wsp.u("f")).st_mode) == 0o4755


# ------------------------------------------------------------ utimes

def test_utime_permissions(wsp):
    shared_dir(wsp)
    user_file(wsp, "pub/writable", U1, G1, 0o666)
    user_file(wsp, "pub/readonly", U1, G1, 0o644)
    # UTIME_NOW needs only write access
    ok_as(U2, G2, lambda: os.utime(wsp.p("pub", "writable")))
    # explicit times need ownership
    err_as(U2, G2, errno.EPERM,
           lambda: os.utime(wsp.p("pub", "writable"), ns=(0, 0)))
    err_as(U2, G2, errno.EACCES, lambda: os.utime(wsp.p("pub", "readonly")))
    ok_as(U1, G1, lambda: os.utime(wsp.p("pub", "readonly"),
                                   ns=(10**18, 10**18)))
    assert os.stat(wsp.u("pub", "readonly")).st_mtime_ns == 10**18


# ------------------------------------------------------------ xattrs

def test_xattr_permissions(wsp):
    shared_dir(wsp)
    user_file(wsp, "pub/f", U1, G1, 0o644)
    os.setxattr(wsp.p("pub", "f"), "trusted.hidden", b"root-only")
    os.setxattr(wsp.p("pub", "f"), "user.visible", b"v")
    f = wsp.p("pub", "f")
    # user.* follows the file's permission bits
    assert ok_as(U2, G2, lambda: os.getxattr(f, "user.visible")) == b"v"
    err_as(U2, G2, errno.EACCES, lambda: os.setxattr(f, "user.x", b"1"))
    ok_as(U1, G1, lambda: os.setxattr(f, "user.owner", b"1"))
    # trusted.* is invisible and unwritable without CAP_SYS_ADMIN
    err_as(U1, G1, errno.ENODATA, lambda: os.getxattr(f, "trusted.hidden"))
    err_as(U1, G1, errno.EPERM, lambda: os.setxattr(f, "trusted.x", b"1"))
    listed = ok_as(U1, G1, lambda: sorted(os.listxattr(f)))
    assert listed == ["user.owner", "user.visible"]
    assert sorted(os.listxattr(wsp.u("pub", "f"))) == \
        ["trusted.hidden", "user.owner", "user.visible"]


# ------------------------------------------------ open descriptors, groups

def test_open_fd_keeps_access_after_chmod(wsp):
    shared_dir(wsp)
    user_file(wsp, "pub/f", U1, G1, 0o644, b"0123456789")

    def work():
        fd = os.open(wsp.p("pub", "f"), os.O_RDWR)
        try:
            # root takes every permission away while the file is open
            rfd, wfd = go
            os.write(wfd, b"1")
            os.read(rfd, 1)
            os.pwrite(fd, b"AB", 0)
            os.ftruncate(fd, 6)               # checked against the open mode
            os.utime(fd)                      # owner: allowed
            data = os.pread(fd, 100, 0)
            # a new open is refused now
            try:
                os.open(wsp.p("pub", "f"), os.O_RDONLY)
                reopened = "ok"
            except OSError as e:
                reopened = errno.errorcode[e.errno]
            return data, reopened
        finally:
            os.close(fd)

    # two pipes: the child signals after opening, the parent chmods, replies
    to_parent = os.pipe()
    to_child = os.pipe()
    go = (to_child[0], to_parent[1])
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(G1)
            os.setuid(U1)
            res = work()
            code = 0 if res == (b"AB2345", "EACCES") else 1
        except BaseException:  # noqa: BLE001
            code = 2
        os._exit(code)
    os.read(to_parent[0], 1)
    os.chmod(wsp.p("pub", "f"), 0o000)
    os.write(to_child[1], b"1")
    _, status = os.waitpid(pid, 0)
    for fd in to_parent + to_child:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, \
        "I/O through an fd opened before chmod 000 must keep working"
    assert read_file(wsp.u("pub", "f")) == b"AB2345"
    assert stat.S_IMODE(os.stat(wsp.u("pub", "f")).st_mode) == 0o000


def test_dir_writable_only_through_supplementary_group(wsp):
    shared_dir(wsp, "team", 0o770, owner=(0, EXTRA_GROUP))
    grp = [EXTRA_GROUP]

    def work():
        write_file(wsp.p("team", "f"), b"team data")
        os.mkdir(wsp.p("team", "d"))
        os.rename(wsp.p("team", "f"), wsp.p("team", "d", "g"))
        os.symlink("d/g", wsp.p("team", "l"))
        os.link(wsp.p("team", "d", "g"), wsp.p("team", "h"))
        os.unlink(wsp.p("team", "h"))
        return sorted(os.listdir(wsp.p("team")))

    assert ok_as(U2, G2, work, groups=grp) == ["d", "l"]
    err_as(U2, G2, errno.EACCES, lambda: os.listdir(wsp.p("team")))
    assert read_file(wsp.u("team", "d", "g")) == b"team data"
    for rel in ("d", "d/g", "l"):
        assert ids(wsp.u("team", rel)) == (U2, G2), rel


def test_o_trunc_and_truncate_by_non_owner_writer(wsp):
    shared_dir(wsp)
    user_file(wsp, "pub/f", U1, G1, 0o666, b"abcdef")
    ok_as(U2, G2, lambda: os.close(os.open(wsp.p("pub", "f"),
                                           os.O_WRONLY | os.O_TRUNC)))
    assert os.stat(wsp.u("pub", "f")).st_size == 0
    write_file(wsp.p("pub", "f"), b"abcdef")
    ok_as(U2, G2, lambda: os.truncate(wsp.p("pub", "f"), 2))
    assert read_file(wsp.u("pub", "f")) == b"ab"
    assert ids(wsp.u("pub", "f")) == (U1, G1)


def test_statfs_and_readlink_as_user(wsp):
    shared_dir(wsp)
    os.symlink("some/target", wsp.p("pub", "l"))
    assert ok_as(NOBODY, NOGROUP, lambda: os.readlink(wsp.p("pub", "l"))) == \
        "some/target"
    assert ok_as(NOBODY, NOGROUP,
                 lambda: os.statvfs(wsp.p("pub")).f_blocks) == \
        os.statvfs(wsp.u("")).f_blocks


def test_root_overrides_permission_bits(wsp):
    shared_dir(wsp, "locked", 0o000, owner=(U1, G1))
    write_file(wsp.p("locked", "f"), b"root wrote")
    os.chown(wsp.p("locked", "f"), U1, G1)
    os.chmod(wsp.p("locked", "f"), 0o000)
    assert read_file(wsp.p("locked", "f")) == b"root wrote"
    with open(wsp.p("locked", "f"), "ab") as f:
        f.write(b"!")
    assert os.listdir(wsp.p("locked")) == ["f"]
    assert read_file(wsp.u("locked", "f")) == b"root wrote!"
    err_as(U1, G1, errno.EACCES, lambda: os.listdir(wsp.p("locked")))
    # root cannot execute a file with no execute bit at all
    assert not os.access(wsp.p("locked", "f"), os.X_OK)
    os.chmod(wsp.p("locked", "f"), 0o001)
    assert os.access(wsp.p("locked", "f"), os.X_OK)


# ------------------------------------------------------------ POSIX ACLs
# ext4 (mounted with its default "acl") stores and enforces POSIX ACLs; the
# xattr blobs are built by hand (format of <linux/posix_acl_xattr.h>).

ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = \
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20
ACL_ACCESS = "system.posix_acl_access"
ACL_DEFAULT = "system.posix_acl_default"


def acl_blob(*entries):
    """entries: (tag, perm, id-or-None) in canonical (sorted) order."""
    import struct
    out = struct.pack("<I", 2)
    for tag, perm, ident in entries:
        out += struct.pack("<HHI", tag, perm,
                           0xFFFFFFFF if ident is None else ident)
    return out


def acl_entries(blob):
    import struct
    assert struct.unpack_from("<I", blob)[0] == 2
    return [struct.unpack_from("<HHI", blob, off)
            for off in range(4, len(blob), 8)]


def test_access_acl_grants_named_user(wsp_acl):
    wsp = wsp_acl
    shared_dir(wsp)
    user_file(wsp, "pub/f", U1, G1, 0o600, b"acl data")
    f = wsp.p("pub", "f")
    os.setxattr(f, ACL_ACCESS, acl_blob(
        (ACL_USER_OBJ, 6, None), (ACL_USER, 4, U2), (ACL_GROUP_OBJ, 0, None),
        (ACL_MASK, 4, None), (ACL_OTHER, 0, None)))
    # the group bits of the mode now show the mask
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(wsp.u("pub", "f")).st_mode) == 0o640
    assert (ACL_USER, 4, U2) in acl_entries(os.getxattr(f, ACL_ACCESS))
    assert (ACL_USER, 4, U2) in acl_entries(
        os.getxattr(wsp.u("pub", "f"), ACL_ACCESS))
    assert ok_as(U2, G2, lambda: read_file(f)) == b"acl data"
    err_as(U2, G2, errno.EACCES, lambda: os.open(f, os.O_WRONLY))
    err_as(NOBODY, NOGROUP, errno.EACCES, lambda: read_file(f))
    assert ok_as(U2, G2, lambda: os.access(f, os.R_OK)) is True
    # chmod rewrites the mask: the named user loses access
    os.chmod(f, 0o600)
    assert (ACL_MASK, 0, 0xFFFFFFFF) in acl_entries(os.getxattr(f, ACL_ACCESS))
    err_as(U2, G2, errno.EACCES, lambda: read_file(f))


def test_acl_named_user_denied_despite_other_bits(wsp_acl):
    wsp = wsp_acl
    shared_dir(wsp)
    user_file(wsp, "pub/f", U1, G1, 0o644, b"x")
    f = wsp.p("pub", "f")
    os.setxattr(f, ACL_ACCESS, acl_blob(
        (ACL_USER_OBJ, 6, None), (ACL_USER, 0, U2), (ACL_GROUP_OBJ, 4, None),
        (ACL_MASK, 4, None), (ACL_OTHER, 4, None)))
    err_as(U2, G2, errno.EACCES, lambda: read_file(f))
    assert ok_as(NOBODY, NOGROUP, lambda: read_file(f)) == b"x"


def test_default_acl_inheritance_matches_backing_fs(wsp_acl):
    wsp = wsp_acl
    refdir = os.path.join(wsp.base, "ref")
    os.makedirs(refdir, exist_ok=True)
    default = acl_blob(
        (ACL_USER_OBJ, 7, None), (ACL_USER, 7, U2), (ACL_GROUP_OBJ, 5, None),
        (ACL_MASK, 7, None), (ACL_OTHER, 5, None))
    roots = {"mnt": wsp.p("pub"), "upper": wsp.u("pub"),
             "ref": os.path.join(refdir, "pub")}
    shared_dir(wsp)
    os.mkdir(roots["ref"])
    os.chmod(roots["ref"], 0o777)
    for d in (roots["mnt"], roots["ref"]):
        os.setxattr(d, ACL_DEFAULT, default)

    def create(base):
        def run():
            os.umask(0o022)            # ignored under a default ACL
            os.close(os.open(os.path.join(base, "f"),
                             os.O_CREAT | os.O_WRONLY, 0o666))
            os.mkdir(os.path.join(base, "d"), 0o777)
        return run

    ok_as(U1, G1, create(roots["mnt"]))
    ok_as(U1, G1, create(roots["ref"]))
    for name in ("f", "d"):
        ref = os.path.join(roots["ref"], name)
        for where in ("mnt", "upper"):
            p = os.path.join(roots[where], name)
            assert os.stat(p).st_mode == os.stat(ref).st_mode, (where, name)
            assert os.getxattr(p, ACL_ACCESS) == os.getxattr(ref, ACL_ACCESS)
    assert stat.S_IMODE(os.stat(wsp.p("pub", "f")).st_mode) == 0o664
    assert os.getxattr(wsp.p("pub", "d"), ACL_DEFAULT) == \
        os.getxattr(os.path.join(roots["ref"], "d"), ACL_DEFAULT)
    # the inherited entry is enforced: U2 may write U1's new file
    ok_as(U2, G2, lambda: write_file(wsp.p("pub", "f"), b"by acl"))
    assert read_file(wsp.u("pub", "f")) == b"by acl"


def test_acl_refused_without_acl_option(wsp):
    """Without -o acl the kernel does not enforce ACLs, so storing one would
    only pretend to grant access: refused like ext4 mounted noacl."""
    if is_native(wsp):
        pytest.skip("wsfs option")
    shared_dir(wsp)
    user_file(wsp, "pub/f", U1, G1, 0o600, b"x")
    blob = acl_blob((ACL_USER_OBJ, 6, None), (ACL_USER, 4, U2),
                    (ACL_GROUP_OBJ, 0, None), (ACL_MASK, 4, None),
                    (ACL_OTHER, 0, None))
    expect_errno(errno.EOPNOTSUPP, os.setxattr, wsp.p("pub", "f"), ACL_ACCESS, blob)
    expect_errno(errno.ENODATA, os.getxattr, wsp.p("pub", "f"), ACL_ACCESS)
    assert ACL_ACCESS not in os.listxattr(wsp.u("pub", "f"))
    err_as(U2, G2, errno.EACCES, lambda: read_file(wsp.p("pub", "f")))
