"""Read-only input layers and ephemeral scratch.

An ro layer must read exactly like its source and refuse every change with
EROFS, leaving the source byte-for-byte as it was; its target is a
mountpoint (EBUSY). Ephemeral scratch is charged like the upper, private to
its workspace, and wiped however the mount ends; what a killed daemon left
is swept by the next daemon on the state directory. Bad layer options fail
the mount with one clear line and create nothing.
"""
import errno
import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import time

import pytest

from conftest import as_user, is_mounted
from helpers import expect_errno, write_file
from quota_util import (K, assert_ledger_matches_scan, ledger, log_text,
                        make_file, quota_row, scan_path)


# ================================================================ helpers

def make_source(root):
    """A source tree with what an input layer must show faithfully."""
    os.makedirs(os.path.join(root, "sub", "deep"))
    os.mkdir(os.path.join(root, "emptyd"), 0o700)
    write_file(os.path.join(root, "a.txt"), b"alpha\n", 0o640)
    write_file(os.path.join(root, "run.sh"), b"#!/bin/sh\necho hi\n", 0o755)
    write_file(os.path.join(root, "sub", "deep", "b.bin"),
               os.urandom(200 * K))
    write_file(os.path.join(root, "hard1"), b"same inode\n")
    os.link(os.path.join(root, "hard1"), os.path.join(root, "sub", "hard2"))
    os.symlink("a.txt", os.path.join(root, "rel-link"))
    os.symlink("/etc/passwd", os.path.join(root, "abs-link"))
    os.mkfifo(os.path.join(root, "fifo"))
    os.setxattr(os.path.join(root, "a.txt"), "user.tag", b"input")
    os.chown(os.path.join(root, "run.sh"), 1234, 5678)
    os.utime(os.path.join(root, "a.txt"), ns=(1_000_000_000, 1_500_000_123))
    os.chmod(root, 0o755)


def tree_state(root):
    """What a tree holds, by relative path: type, mode, owner, size, mtime,
    content digest, link target and user xattrs. Never follows links."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rec = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                   st.st_uid, st.st_gid, st.st_nlink, st.st_mtime_ns]
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    rec += [st.st_size, hashlib.sha256(f.read()).hexdigest()]
            elif stat.S_ISLNK(st.st_mode):
                rec.append(os.readlink(p))
            if not stat.S_ISLNK(st.st_mode):
                rec.append(sorted((k, os.getxattr(p, k))
                                  for k in os.listxattr(p)
                                  if k.startswith("user.")))
            out[os.path.relpath(p, root)] = rec
    return out


def scratch_dirs(state):
    d = os.path.join(state, "scratch")
    try:
        return sorted(n for n in os.listdir(d) if not n.startswith("."))
    except FileNotFoundError:
        return []


def wiped_line(w):
    m = re.findall(r"ephemeral scratch wiped: (\d+) files, (\d+) "
                   r"directories, (\d+) bytes", log_text(w))
    return [tuple(int(x) for x in g) for g in m]


def fill_scratch(root, outside="/etc"):
    """26 non-directories and 1 directory, 53,248 bytes of file data, and a
    symlink to OUTSIDE that a wipe must not follow."""
    for i in range(20):
        write_file(os.path.join(root, f"f{i}"), b"s" * 2048)
    os.mkdir(os.path.join(root, "d"))
    for i in range(5):
        write_file(os.path.join(root, "d", f"g{i}"), b"t" * 2457)
    os.symlink(outside, os.path.join(root, "escape"))
    return 26


@pytest.fixture
def source(tmpbase):
    root = os.path.join(tmpbase, "src")
    os.mkdir(root)
    make_source(root)
    return root


# ================================================================ ro layers

def test_ro_layer_reads_exactly_like_its_source(make_ws, source):
    w = make_ws(options=f"allow_other,layer={source}:/input")
    assert tree_state(w.p("input")) == tree_state(source)
    # hard links stay one inode, and are not the upper's
    a = os.lstat(w.p("input", "hard1"))
    b = os.lstat(w.p("input", "sub", "hard2"))
    assert a.st_ino == b.st_ino == os.lstat(
        os.path.join(source, "hard1")).st_ino
    assert os.readlink(w.p("input", "abs-link")) == "/etc/passwd"
    assert sorted(os.listdir(w.p("input"))) == sorted(os.listdir(source))
    # the target shows the source's root, not the upper's directory
    assert os.stat(w.p("input")).st_ino == os.stat(source).st_ino
    assert os.path.isdir(w.u("input"))
    assert os.listdir(w.u("input")) == []


def _modifications(w):
    """Every change an agent could try on the input, with its errno."""
    i = w.p("input")
    os.mkdir(w.p("mine"))
    write_file(w.p("mine", "f"), b"mine")
    return [
        ("open O_WRONLY", lambda: os.open(f"{i}/a.txt", os.O_WRONLY), errno.EROFS),
        ("open O_RDWR", lambda: os.open(f"{i}/a.txt", os.O_RDWR), errno.EROFS),
        ("open O_APPEND", lambda: os.open(f"{i}/a.txt", os.O_WRONLY | os.O_APPEND), errno.EROFS),
        ("open O_TRUNC", lambda: os.open(f"{i}/a.txt", os.O_RDONLY | os.O_TRUNC), errno.EROFS),
        ("create", lambda: os.open(f"{i}/new", os.O_WRONLY | os.O_CREAT, 0o644), errno.EROFS),
        ("create deep", lambda: os.open(f"{i}/sub/deep/new", os.O_WRONLY | os.O_CREAT, 0o644), errno.EROFS),
        ("mkdir", lambda: os.mkdir(f"{i}/newdir"), errno.EROFS),
        ("mkfifo", lambda: os.mkfifo(f"{i}/newfifo"), errno.EROFS),
        ("symlink", lambda: os.symlink("x", f"{i}/newlink"), errno.EROFS),
        ("truncate", lambda: os.truncate(f"{i}/a.txt", 0), errno.EROFS),
        ("chmod", lambda: os.chmod(f"{i}/a.txt", 0o777), errno.EROFS),
        ("chmod root", lambda: os.chmod(i, 0o777), errno.EROFS),
        ("chown", lambda: os.chown(f"{i}/a.txt", 1, 1), errno.EROFS),
        ("lchown link", lambda: os.lchown(f"{i}/rel-link", 1, 1), errno.EROFS),
        ("utime", lambda: os.utime(f"{i}/a.txt", (1, 1)), errno.EROFS),
        ("setxattr", lambda: os.setxattr(f"{i}/a.txt", "user.x", b"1"), errno.EROFS),
        ("replace xattr", lambda: os.setxattr(f"{i}/a.txt", "user.tag", b"2"), errno.EROFS),
        ("removexattr", lambda: os.removexattr(f"{i}/a.txt", "user.tag"), errno.EROFS),
        ("unlink", lambda: os.unlink(f"{i}/a.txt"), errno.EROFS),
        ("unlink link", lambda: os.unlink(f"{i}/abs-link"), errno.EROFS),
        ("rmdir", lambda: os.rmdir(f"{i}/emptyd"), errno.EROFS),
        ("rename inside", lambda: os.rename(f"{i}/a.txt", f"{i}/b.txt"), errno.EROFS),
        ("rename out", lambda: os.rename(f"{i}/a.txt", w.p("stolen")), errno.EROFS),
        ("rename in", lambda: os.rename(w.p("mine", "f"), f"{i}/planted"), errno.EROFS),
        ("rename over", lambda: os.rename(w.p("mine", "f"), f"{i}/a.txt"), errno.EROFS),
        ("link into", lambda: os.link(w.p("mine", "f"), f"{i}/planted"), errno.EROFS),
        ("link out", lambda: os.link(f"{i}/a.txt", w.p("mine", "ln")), errno.EXDEV),
    ]


def test_every_change_to_an_ro_layer_is_erofs(make_ws, source):
    before = tree_state(source)
    w = make_ws(options=f"allow_other,layer={source}:/input")
    for what, fn, want in _modifications(w):
        e = expect_errno(want, fn)
        assert e.errno == want, what
    # the workspace's own files are untouched and still writable
    assert open(w.p("mine", "f"), "rb").read() == b"mine"
    assert not os.path.exists(w.p("stolen"))
    assert tree_state(w.p("input")) == before
    w.umount()
    assert tree_state(source) == before


def test_ro_refusals_hold_for_an_unprivileged_agent(make_ws, source):
    from helpers import err_as
    os.chmod(os.path.join(source, "a.txt"), 0o666)
    before = tree_state(source)
    w = make_ws(options=f"allow_other,layer={source}:/input")
    i = w.p("input")
    err_as(65534, 65534, errno.EROFS, lambda: os.open(f"{i}/a.txt", os.O_WRONLY))
    err_as(65534, 65534, errno.EROFS, lambda: os.truncate(f"{i}/a.txt", 0))
    err_as(1234, 5678, errno.EROFS, lambda: os.chmod(f"{i}/run.sh", 0o777))
    w.umount()
    assert tree_state(source) == before


def test_the_target_is_a_mountpoint(make_ws, source):
    w = make_ws(options=f"allow_other,layer={source}:/data/input")
    os.mkdir(w.p("other"))
    expect_errno(errno.EBUSY, os.rmdir, w.p("data", "input"))
    expect_errno(errno.EBUSY, os.rename, w.p("data", "input"), w.p("moved"))
    expect_errno(errno.EBUSY, os.rename, w.p("other"), w.p("data", "input"))
    assert os.path.exists(w.p("data", "input", "a.txt"))
    # the parent it was made in is an ordinary directory of the upper
    assert os.path.isdir(w.u("data", "input"))
    expect_errno(errno.ENOTEMPTY, os.rmdir, w.p("data"))


def test_one_source_at_two_targets(make_ws, source):
    w = make_ws(options=f"allow_other,layer={source}:/a,layer={source}:/b")
    assert tree_state(w.p("a")) == tree_state(w.p("b")) == tree_state(source)
    expect_errno(errno.EXDEV, os.link, w.p("a", "a.txt"), w.p("x"))


def test_layers_are_kept_with_the_workspace(make_ws, source, tmpbase):
    w = make_ws(options=f"allow_other,layer={source}:/input")
    w.umount()
    w.options = "allow_other"
    w.mount()
    assert open(w.p("input", "a.txt"), "rb").read() == b"alpha\n"
    expect_errno(errno.EROFS, os.unlink, w.p("input", "a.txt"))
    w.umount()
    other = os.path.join(tmpbase, "other")
    os.mkdir(other)
    write_file(os.path.join(other, "o"), b"o")
    w.options = f"allow_other,layer={other}:/docs"
    w.mount()
    assert os.listdir(w.p("docs")) == ["o"]
    # the old target is an empty directory of the upper now
    assert os.listdir(w.p("input")) == []


@pytest.mark.parametrize("planted", ["file", "symlink", "symlinked parent"])
def test_something_in_the_way_of_a_target_fails_the_mount(make_ws, source,
                                                          tmpbase, planted):
    # the upper is the agent's: between mounts it may have put a file or a
    # symlink (to a directory outside) where the operator's target goes
    outside = os.path.join(tmpbase, "outside")
    os.mkdir(outside)
    target = "/input" if planted != "symlinked parent" else "/data/input"
    w = make_ws(mount=False, options=f"allow_other,layer={source}:{target}")
    if planted == "file":
        write_file(w.u("input"), b"not a dir")
    elif planted == "symlink":
        os.symlink(outside, w.u("input"))
    else:
        os.symlink(outside, w.u("data"))
    r = w.mount(check=False)
    assert r.returncode != 0
    assert f"'{target}'" in r.stderr and "not a directory" in r.stderr, \
        r.stderr
    assert not is_mounted(w.mnt)
    assert os.listdir(outside) == []
    if planted == "file":
        assert open(w.u("input"), "rb").read() == b"not a dir"


BAD_LAYERS = [
    ("layer=/no/such/dir:/in", "No such file or directory"),
    ("layer={file}:/in", "not a directory"),
    ("layer=relative/src:/in", "not an absolute path"),
    ("layer={src}:in", "target 'in' is not an absolute path"),
    ("layer={src}:/a/../b", ".."),
    ("layer={src}:/../escape", ".."),
    ("layer={src}:/./in", "'.'"),
    ("layer={src}:/", "cannot be at '/'"),
    ("layer={src}:/in:rw", "unknown mode 'rw'"),
    ("layer={src}:/in:ro:extra", "too many ':'"),
    ("layer=:/in", "empty source"),
    ("layer={src}:", "empty target"),
    ("layer={src}:/in,layer={src}:/in", "overlap"),
    ("layer={src}:/in,layer={src}:/in/sub", "overlap"),
    ("layer={src}:/in,ephemeral=/in/tmp", "overlap"),
    ("ephemeral=/tmp,ephemeral=/tmp", "overlap"),
    ("ephemeral=tmp", "'tmp'"),
    ("layer={src}:/my input", "contains a space"),
    ("ephemeral=/../tmp", ".."),
    ("ephemeral", "do not give upper="),
    ("layer={upper}:/in", "is the upper"),
    ("layer={upper}/..:/in", "contains the upper"),
]


@pytest.mark.parametrize("opt,needle", BAD_LAYERS,
                         ids=[b[0] for b in BAD_LAYERS])
def test_bad_layer_options_fail_cleanly(make_ws, source, tmpbase, opt, needle):
    file = os.path.join(tmpbase, "plain")
    write_file(file, b"x")
    w = make_ws(mount=False)
    before_upper = sorted(os.listdir(w.upper))
    w.options = "allow_other," + opt.format(src=source, file=file,
                                            upper=w.upper)
    r = w.mount(check=False)
    assert r.returncode != 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("wsfs: "), r.stderr
    assert needle in lines[0], r.stderr
    assert not is_mounted(w.mnt)
    assert sorted(os.listdir(w.upper)) == before_upper
    assert not os.path.exists(w.state), "a refused mount made its state dir"


def test_cow_layers_elsewhere_than_the_root_are_refused(make_ws, source):
    w = make_ws(mount=False, options=f"allow_other,layer={source}:/base:cow")
    r = w.mount(check=False)
    assert r.returncode != 0
    assert "cow layers are supported at '/' only" in r.stderr, r.stderr
    assert not is_mounted(w.mnt)


# ================================================================ ephemeral

def test_ephemeral_scratch_is_charged_and_private(make_ws):
    w = make_ws(options="allow_other,ephemeral=/tmp,quota_bytes=1M")
    assert os.path.isdir(w.p("tmp"))
    make_file(w.p("tmp", "big"), 800 * K)
    q = ledger(w)
    assert q["bytes_used"] >= 800 * K
    # the scratch is not in the upper, and it is counted all the same
    assert os.listdir(w.u("tmp")) == []
    expect_errno(errno.EDQUOT, make_file, w.p("f"), 400 * K)
    dirs = scratch_dirs(w.state)
    assert dirs == [f"{w.name}.{w.pid}"]
    scratch = os.path.join(w.state, "scratch", dirs[0])
    assert stat.S_IMODE(os.stat(scratch).st_mode) == 0o700
    os.unlink(w.p("tmp", "big"))
    make_file(w.p("f"), 400 * K)
    w.umount()
    row = quota_row(w)
    assert row["clean"] == 1
    assert (row["used_bytes"], row["used_inodes"]) == scan_path(w.upper)


@pytest.mark.parametrize("whole", [False, True])
def test_scratch_is_like_a_tmpfs_for_unprivileged_agents(make_ws, whole):
    """Scratch starts as mode 1777: any agent uid may create files there,
    and only a file's owner may remove or rename it."""
    w = make_ws(options="allow_other,ephemeral" if whole else
                "allow_other,ephemeral=/tmp", no_upper=whole)
    d = w.p("") if whole else w.p("tmp")
    st = os.stat(d)
    assert stat.S_IMODE(st.st_mode) == 0o1777 and st.st_uid == 0

    def make(name):
        def fn():
            with open(os.path.join(d, name), "wb") as f:
                f.write(b"mine")
        return fn

    assert as_user(1000, 1000, make("a")) == 0
    assert as_user(1001, 1001, make("b")) == 0
    assert os.stat(os.path.join(d, "a")).st_uid == 1000
    assert as_user(1001, 1001, lambda: os.unlink(os.path.join(d, "a"))) == \
        -errno.EPERM
    assert as_user(1001, 1001, lambda: os.rename(
        os.path.join(d, "a"), os.path.join(d, "stolen"))) == -errno.EPERM
    assert as_user(1000, 1000, lambda: os.unlink(os.path.join(d, "a"))) == 0
    assert sorted(os.listdir(d)) == ["b"]


@pytest.mark.parametrize("how", ["fusermount", "umount", "SIGTERM", "SIGINT"])
def test_every_way_a_mount_ends_wipes_the_scratch(make_ws, tmpbase, how):
    canary = os.path.join(tmpbase, "canary")
    os.mkdir(canary)
    write_file(os.path.join(canary, "keep"), b"keep")
    w = make_ws(options="allow_other,ephemeral=/tmp,ephemeral=/var/scratch")
    n = fill_scratch(w.p("tmp"), outside=canary)
    write_file(w.p("var", "scratch", "one"), b"1" * 100)
    assert len(scratch_dirs(w.state)) == 1
    if how == "fusermount":
        subprocess.run(["fusermount3", "-u", w.mnt], check=True)
    elif how == "umount":
        subprocess.run(["umount", w.mnt], check=True)
    else:
        w.kill(getattr(signal, how))
    assert w.wait_exit(10)
    assert not is_mounted(w.mnt)
    assert scratch_dirs(w.state) == []
    assert os.listdir(os.path.join(w.state, "scratch")) == []
    files, _, nbytes = wiped_line(w)[-1]
    assert files == n + 1
    assert nbytes == 20 * 2048 + 5 * 2457 + 100
    # the symlink to a directory outside was removed, not followed
    assert os.listdir(canary) == ["keep"]


def test_a_killed_daemons_scratch_is_swept_by_the_next(make_ws):
    w = make_ws(options="allow_other,ephemeral=/tmp")
    fill_scratch(w.p("tmp"))
    dead = f"{w.name}.{w.pid}"
    w.kill(signal.SIGKILL)
    assert w.wait_exit(10)
    w.cleanup()
    assert scratch_dirs(w.state) == [dead]
    # any daemon on that state directory sweeps it, another name too
    w2 = make_ws(mount=False, options="allow_other")
    w2.state = w.state
    w2.mount()
    assert scratch_dirs(w.state) == []
    assert re.search(r"swept 1 scratch tree left by daemons that died: "
                     r"26 files", log_text(w2)), log_text(w2)


def test_two_workspaces_never_share_scratch(make_ws):
    a = make_ws(options="allow_other,ephemeral=/tmp")
    b = make_ws(mount=False, options="allow_other,ephemeral=/tmp")
    b.state = a.state
    b.mount()
    write_file(a.p("tmp", "mine"), b"a")
    write_file(b.p("tmp", "mine"), b"b")
    assert open(a.p("tmp", "mine"), "rb").read() == b"a"
    assert open(b.p("tmp", "mine"), "rb").read() == b"b"
    assert os.listdir(a.p("tmp")) == os.listdir(b.p("tmp")) == ["mine"]
    assert len(scratch_dirs(a.state)) == 2
    a.umount()
    assert open(b.p("tmp", "mine"), "rb").read() == b"b"
    assert scratch_dirs(a.state) == [f"{b.name}.{b.pid}"]


def test_scratch_is_not_kept_across_mounts(make_ws):
    w = make_ws(options="allow_other,ephemeral=/tmp")
    write_file(w.p("tmp", "x"), b"x")
    write_file(w.p("kept"), b"k")
    w.umount()
    w.mount()
    assert os.listdir(w.p("tmp")) == []
    assert open(w.p("kept"), "rb").read() == b"k"


def test_nothing_moves_between_scratch_and_upper(make_ws):
    w = make_ws(options="allow_other,ephemeral=/tmp")
    write_file(w.p("tmp", "s"), b"s")
    write_file(w.p("u"), b"u")
    expect_errno(errno.EXDEV, os.rename, w.p("tmp", "s"), w.p("s"))
    expect_errno(errno.EXDEV, os.link, w.p("u"), w.p("tmp", "u"))
    expect_errno(errno.EBUSY, os.rmdir, w.p("tmp"))
    # mv falls back to copy and delete, as across filesystems
    subprocess.run(["mv", w.p("tmp", "s"), w.p("s")], check=True)
    assert open(w.p("s"), "rb").read() == b"s"
    assert_ledger_matches_scan(w)


def test_whole_workspace_ephemeral_keeps_nothing(make_ws):
    w = make_ws(options="allow_other,ephemeral,quota_inodes=100",
                no_upper=True)
    fill_scratch(w.mnt)
    assert os.listdir(w.upper) == []
    assert ledger(w)["inodes_used"] == 27
    w.umount()
    assert scratch_dirs(w.state) == []
    assert wiped_line(w)[-1][0] == 26
    w.mount()
    assert os.listdir(w.mnt) == []


def test_ephemeral_with_an_input_layer(make_ws, source):
    before = tree_state(source)
    w = make_ws(options=f"allow_other,ephemeral,layer={source}:/input",
                no_upper=True)
    assert open(w.p("input", "a.txt"), "rb").read() == b"alpha\n"
    expect_errno(errno.EROFS, os.unlink, w.p("input", "a.txt"))
    write_file(w.p("out"), b"result")
    w.umount()
    assert tree_state(source) == before
    assert scratch_dirs(w.state) == []


def test_status_lists_layers_and_scratch_usage(make_ws, source):
    w = make_ws(options=f"allow_other,layer={source}:/input,ephemeral=/tmp")
    make_file(w.p("tmp", "f"), 10000)
    r = w.wsctl("status", w.name)
    assert r.returncode == 0, r.stderr
    assert "/input" in r.stdout and source in r.stdout, r.stdout
    assert "/tmp" in r.stdout
    r = w.wsctl("status", w.name, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["layers"] == [{"mode": "ro", "target": "/input",
                              "source": source}]
    assert doc["ephemeral"] == [{"target": "/tmp", "bytes": 12288,
                                 "inodes": 1}]


def test_wipe_counts_a_large_scratch_exactly(make_ws):
    w = make_ws(options="allow_other,ephemeral=/tmp")
    for d in range(10):
        os.mkdir(w.p("tmp", f"d{d}"))
        for i in range(500):
            os.close(os.open(w.p("tmp", f"d{d}", f"f{i}"),
                             os.O_WRONLY | os.O_CREAT, 0o644))
    t0 = time.monotonic()
    w.umount()
    assert time.monotonic() - t0 < 60
    assert wiped_line(w)[-1][:2] == (5000, 12)
    assert scratch_dirs(w.state) == []
