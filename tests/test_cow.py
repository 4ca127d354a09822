"""cow layers: base trees merged under the upper at '/'.

The first layer listed wins a name, directories merge, listings have no
duplicates and agree with stat. The first change to an entry from a base
tree copies it up atomically, charged to the quota, keeping its inode
number (across a remount too); deleting a base entry leaves a whiteout, a
directory made over one is opaque. The sources never change.
"""
import errno
import os
import stat
import subprocess
import threading

import pytest

from helpers import expect_errno, write_file
from quota_util import K, M, assert_ledger_matches_scan, ledger
from test_layers import tree_state


def make_lowers(base, n=2):
    lows = [os.path.join(base, f"low{i + 1}") for i in range(n)]
    for d in lows:
        os.makedirs(os.path.join(d, "sub"))
    write_file(os.path.join(lows[0], "a"), b"one\n", 0o640)
    write_file(os.path.join(lows[1], "a"), b"two\n")
    write_file(os.path.join(lows[1], "b"), b"b2\n")
    write_file(os.path.join(lows[0], "sub", "x"), b"s1\n")
    write_file(os.path.join(lows[1], "sub", "y"), b"s2\n")
    os.mkdir(os.path.join(lows[1], "only2"))
    write_file(os.path.join(lows[1], "only2", "inside"), b"i\n")
    write_file(os.path.join(lows[1], "dirfile"), b"file in low2\n")
    os.mkdir(os.path.join(lows[0], "dirfile"))
    os.setxattr(os.path.join(lows[0], "a"), "user.tag", b"base")
    os.utime(os.path.join(lows[0], "a"), ns=(1_000_000_000, 2_000_000_123))
    os.chown(os.path.join(lows[0], "a"), 1234, 5678)
    return lows


def cow_opts(lows, extra=""):
    return "allow_other," + ",".join(f"layer={d}:/:cow" for d in lows) + \
        ("," + extra if extra else "")


@pytest.fixture
def lows(tmpbase):
    lows = make_lowers(tmpbase)
    before = [tree_state(d) for d in lows]
    yield lows
    assert [tree_state(d) for d in lows] == before, "a source changed"


def inodes_by_readdir(d):
    return {e.name: e.inode() for e in os.scandir(d)}


def test_layers_merge_with_the_first_on_top(make_ws, lows):
    w = make_ws(options=cow_opts(lows))
    assert sorted(os.listdir(w.mnt)) == ["a", "b", "dirfile", "only2", "sub"]
    assert open(w.p("a"), "rb").read() == b"one\n"
    assert open(w.p("b"), "rb").read() == b"b2\n"
    assert os.path.isdir(w.p("dirfile"))        # low1's directory wins
    assert sorted(os.listdir(w.p("sub"))) == ["x", "y"]
    for d in (w.mnt, w.p("sub")):
        by_dir = inodes_by_readdir(d)
        assert {n: os.lstat(os.path.join(d, n)).st_ino for n in by_dir} \
            == by_dir
    assert os.listdir(w.upper) == []


def test_the_first_change_copies_up_and_keeps_the_inode(make_ws, lows):
    w = make_ws(options=cow_opts(lows))
    ino = os.lstat(w.p("a")).st_ino
    with open(w.p("a"), "ab") as f:
        f.write(b"more\n")
    assert open(w.p("a"), "rb").read() == b"one\nmore\n"
    st = os.lstat(w.p("a"))
    assert st.st_ino == ino
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == \
        (1234, 5678, 0o640)
    assert os.getxattr(w.p("a"), "user.tag") == b"base"
    assert open(w.u("a"), "rb").read() == b"one\nmore\n"
    assert inodes_by_readdir(w.mnt)["a"] == ino
    # every kind of change copies up; the number the agent saw stays
    changes = [
        ("chmod", "sub/x", lambda p: os.chmod(p, 0o600)),
        ("chown", "sub/y", lambda p: os.chown(p, 1, 2)),
        ("utime", "b", lambda p: os.utime(p, (5, 5))),
        ("truncate", "only2/inside", lambda p: os.truncate(p, 0)),
        ("setxattr", "dirfile", lambda p: os.setxattr(p, "user.n", b"1")),
    ]
    for what, rel, fn in changes:
        before = os.lstat(w.p(rel)).st_ino
        fn(w.p(rel))
        assert os.lstat(w.p(rel)).st_ino == before, what
        assert os.path.lexists(w.u(rel)), what
    assert os.lstat(w.p("sub", "x")).st_mode & 0o777 == 0o600
    assert os.lstat(w.p("sub", "y")).st_uid == 1
    assert os.path.getsize(w.p("only2", "inside")) == 0
    # the number survives a remount, through the copy's origin
    inos = {rel: os.lstat(w.p(rel)).st_ino for _, rel, _ in changes}
    w.umount()
    w.mount()
    assert os.lstat(w.p("a")).st_ino == ino
    assert {rel: os.lstat(w.p(rel)).st_ino for rel in inos} == inos
    assert inodes_by_readdir(w.mnt)["a"] == ino
    assert_ledger_matches_scan(w)


def test_whiteouts_and_opaque_directories(make_ws, lows):
    w = make_ws(options=cow_opts(lows))
    os.unlink(w.p("b"))
    expect_errno(errno.ENOENT, os.lstat, w.p("b"))
    assert "b" not in os.listdir(w.mnt)
    os.unlink(w.p("sub", "x"))
    assert os.listdir(w.p("sub")) == ["y"]
    # a recreated name is new, and shows no trace of the old one
    write_file(w.p("b"), b"new b")
    assert open(w.p("b"), "rb").read() == b"new b"
    # rmdir of a merged directory needs it empty in the merged view
    expect_errno(errno.ENOTEMPTY, os.rmdir, w.p("only2"))
    os.unlink(w.p("only2", "inside"))
    os.rmdir(w.p("only2"))
    assert "only2" not in os.listdir(w.mnt)
    os.mkdir(w.p("only2"))
    assert os.listdir(w.p("only2")) == []       # opaque: low2's is hidden
    # rename over and out
    write_file(w.p("mine"), b"mine")
    os.rename(w.p("mine"), w.p("a"))
    assert open(w.p("a"), "rb").read() == b"mine"
    os.rename(w.p("sub", "y"), w.p("y"))
    assert os.listdir(w.p("sub")) == []
    assert open(w.p("y"), "rb").read() == b"s2\n"
    expect_errno(errno.EXDEV, os.rename, w.p("dirfile"), w.p("df"))
    assert sorted(os.listdir(w.mnt)) == ["a", "b", "dirfile", "only2", "sub",
                                         "y"]
    # whiteouts persist and are not charged
    w.umount()
    w.mount()
    assert sorted(os.listdir(w.mnt)) == ["a", "b", "dirfile", "only2", "sub",
                                         "y"]
    assert os.listdir(w.p("only2")) == []
    assert_ledger_matches_scan(w)


def test_three_layers_deep(make_ws, tmpbase):
    lows = make_lowers(tmpbase, 3)
    write_file(os.path.join(lows[2], "a"), b"three\n")
    write_file(os.path.join(lows[2], "c"), b"c3\n")
    os.makedirs(os.path.join(lows[2], "sub"), exist_ok=True)
    write_file(os.path.join(lows[2], "sub", "z"), b"s3\n")
    w = make_ws(options=cow_opts(lows))
    assert open(w.p("a"), "rb").read() == b"one\n"
    assert open(w.p("c"), "rb").read() == b"c3\n"
    assert sorted(os.listdir(w.p("sub"))) == ["x", "y", "z"]
    os.unlink(w.p("c"))
    os.unlink(w.p("sub", "z"))
    assert sorted(os.listdir(w.p("sub"))) == ["x", "y"]
    assert not os.path.exists(w.p("c"))


def test_copy_up_that_does_not_fit_the_quota(make_ws, tmpbase):
    lows = make_lowers(tmpbase)
    write_file(os.path.join(lows[0], "big"), b"B" * (3 * M))
    w = make_ws(options=cow_opts(lows, "quota_bytes=1M"))
    expect_errno(errno.EDQUOT, os.open, w.p("big"), os.O_WRONLY)
    expect_errno(errno.EDQUOT, os.chmod, w.p("big"), 0o600)
    assert os.listdir(w.upper) == []
    assert ledger(w)["bytes_used"] == 0
    assert open(w.p("big"), "rb").read(3) == b"BBB"


def test_copy_up_of_a_large_file_under_readers(make_ws, tmpbase):
    lows = make_lowers(tmpbase)
    data = os.urandom(64 * K) * 128           # 8 MiB
    write_file(os.path.join(lows[0], "big"), data)
    w = make_ws(options=cow_opts(lows))
    errors = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                with open(w.p("big"), "rb") as f:
                    got = f.read()
                if got[:len(data)] != data:
                    errors.append("a reader saw other data")
            except OSError as e:
                errors.append(repr(e))

    held = open(w.p("big"), "rb")           # opened before the copy-up
    ts = [threading.Thread(target=reader) for _ in range(3)]
    for t in ts:
        t.start()
    with open(w.p("big"), "ab") as f:
        f.write(b"tail")
    stop.set()
    for t in ts:
        t.join(30)
    assert not errors, errors[:3]
    # a handle opened before the copy-up keeps working, and reads the file
    # as it is now, as on a filesystem without layers
    assert held.read() == data + b"tail"
    held.close()
    assert open(w.p("big"), "rb").read() == data + b"tail"
    assert open(os.path.join(lows[0], "big"), "rb").read() == data


def test_copy_up_of_a_hard_linked_file(make_ws, tmpbase):
    lows = make_lowers(tmpbase)
    write_file(os.path.join(lows[0], "h1"), b"linked\n")
    os.link(os.path.join(lows[0], "h1"), os.path.join(lows[0], "h2"))
    w = make_ws(options=cow_opts(lows))
    assert os.lstat(w.p("h1")).st_ino == os.lstat(w.p("h2")).st_ino
    with open(w.p("h1"), "ab") as f:
        f.write(b"changed\n")
    # within the mount both names are still one file
    assert open(w.p("h2"), "rb").read() == b"linked\nchanged\n"
    assert os.lstat(w.p("h1")).st_ino == os.lstat(w.p("h2")).st_ino


def test_find_and_ls_agree_after_copy_up(make_ws, lows):
    w = make_ws(options=cow_opts(lows))
    os.chmod(w.p("sub", "x"), 0o600)
    os.unlink(w.p("b"))
    found = subprocess.run(["find", w.mnt, "-printf", "%i %P\n"],
                           capture_output=True, text=True, check=True).stdout
    listed = subprocess.run(["ls", "-iRa", w.mnt], capture_output=True,
                            text=True, check=True).stdout
    for line in found.splitlines():
        ino, rel = line.split(" ", 1)
        if not rel:
            continue
        assert int(ino) == os.lstat(w.p(rel)).st_ino, rel
        assert f"{ino} {os.path.basename(rel)}" in listed, rel
    assert " b\n" not in found


def test_entry_changes_in_base_directories(make_ws, lows):
    # new entries of every kind in a directory only the base trees have:
    # the directory is copied up first, empty, with its metadata
    w = make_ws(options=cow_opts(lows))
    sub_ino = os.lstat(w.p("sub")).st_ino
    os.mkfifo(w.p("sub", "fifo"))
    os.symlink("x", w.p("sub", "ln"))
    os.mkdir(w.p("sub", "d"))
    os.link(w.p("sub", "x"), w.p("sub", "x2"))          # copies x up
    os.removexattr(w.p("a"), "user.tag")
    assert sorted(os.listdir(w.p("sub"))) == ["d", "fifo", "ln", "x", "x2",
                                              "y"]
    assert os.lstat(w.p("sub")).st_ino == sub_ino
    assert os.lstat(w.p("sub", "x")).st_ino == os.lstat(w.p("sub", "x2")).st_ino
    assert os.readlink(w.p("sub", "ln")) == "x"
    assert open(w.p("sub", "x2"), "rb").read() == b"s1\n"
    assert os.listxattr(w.p("a")) == []        # the origin mark is hidden
    # the daemon's marks can be neither read nor forged, even by root
    expect_errno(errno.ENODATA, os.getxattr, w.p("a"), "trusted.wsfs.origin")
    expect_errno(errno.EPERM, os.setxattr, w.p("sub", "d"),
                 "trusted.wsfs.opaque", b"y")
    expect_errno(errno.ENODATA, os.removexattr, w.p("a"),
                 "trusted.wsfs.origin")
    assert sorted(os.listdir(w.u("sub"))) == ["d", "fifo", "ln", "x", "x2"]
    assert_ledger_matches_scan(w)
