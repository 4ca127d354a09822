"""cow layers, first step: the merged view.

Two base trees are merged under the upper at '/': the first listed wins a
name, directories merge, listings have no duplicates and stat agrees with
readdir. Changing an entry that comes from a base tree is EROFS until
copy-up and whiteouts are built; the sources never change.
"""
import errno
import os

from helpers import expect_errno, write_file
from test_layers import tree_state


def make_lowers(base):
    low1, low2 = os.path.join(base, "low1"), os.path.join(base, "low2")
    for d in (low1, low2):
        os.makedirs(os.path.join(d, "sub"))
    write_file(os.path.join(low1, "a"), b"one\n")
    write_file(os.path.join(low2, "a"), b"two\n")
    write_file(os.path.join(low2, "b"), b"b2\n")
    write_file(os.path.join(low1, "sub", "x"), b"s1\n")
    write_file(os.path.join(low2, "sub", "y"), b"s2\n")
    os.mkdir(os.path.join(low2, "only2"))
    write_file(os.path.join(low2, "dirfile"), b"file in low2\n")
    os.mkdir(os.path.join(low1, "dirfile"))
    return low1, low2


def test_layers_merge_with_the_first_on_top(make_ws, tmpbase):
    low1, low2 = make_lowers(tmpbase)
    before = (tree_state(low1), tree_state(low2))
    w = make_ws(options=f"allow_other,layer={low1}:/:cow,layer={low2}:/:cow")
    assert sorted(os.listdir(w.mnt)) == ["a", "b", "dirfile", "only2", "sub"]
    assert open(w.p("a"), "rb").read() == b"one\n"
    assert open(w.p("b"), "rb").read() == b"b2\n"
    assert os.path.isdir(w.p("dirfile"))        # low1's directory wins
    assert sorted(os.listdir(w.p("sub"))) == ["x", "y"]
    assert open(w.p("sub", "y"), "rb").read() == b"s2\n"
    for name in os.listdir(w.mnt):
        assert os.lstat(w.p(name)).st_ino == {
            e.name: e.inode() for e in os.scandir(w.mnt)}[name]
    # the agent's own files go to the upper and show on top
    write_file(w.p("c"), b"mine")
    assert os.listdir(w.u()) == ["c"]
    os.unlink(w.p("c"))
    # changes to base entries wait for copy-up and whiteouts, and so do
    # new entries in a directory the upper does not have yet
    expect_errno(errno.EROFS, write_file, w.p("sub", "z"), b"not yet")
    expect_errno(errno.EROFS, os.open, w.p("a"), os.O_WRONLY)
    expect_errno(errno.EROFS, os.unlink, w.p("b"))
    expect_errno(errno.EROFS, os.rename, w.p("a"), w.p("a2"))
    expect_errno(errno.EROFS, os.chmod, w.p("sub", "x"), 0o600)
    w.umount()
    assert (tree_state(low1), tree_state(low2)) == before
