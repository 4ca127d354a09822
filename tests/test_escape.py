"""Hostile-agent confinement tests.

The agent runs as nobody (uid 65534) inside an allow_other workspace and
tries to make the DAEMON touch anything outside the upper directory.  Next to
the upper sits a sentinel tree, <base>/outside/: world-writable, with a
world-readable secret, so a daemon that escaped with any credentials could
change or read it.  After every attack the sentinel must be byte-identical
(content, modes, owners, times, xattrs, inode numbers), hold no new entries,
and an inotify watch on it must have seen no access at all: not even an
open or a read of the secret.

Symlinks inside a workspace are followed by the kernel in the agent's own
namespace, which is normal.  To tell that apart from the daemon following
them, agents run in a private mount namespace where <base>/outside is
covered by a decoy tmpfs: whatever the kernel follows on the agent's behalf
lands in the decoy, so the only way to reach the real sentinel is through
the daemon, and the inotify watch (which sees every namespace) catches it.
"""
import ctypes
import errno
import hashlib
import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys

import pytest

from conftest import HELPERS, mount_options, run_as, as_user

NOBODY, NOGROUP = 65534, 65534
SECRET = b"TOP-SECRET-" + hashlib.sha256(b"wsfs escape sentinel").hexdigest().encode()
DECOY = b"decoy-in-agent-namespace"
TAG = b"sentinel-xattr-value"
SWAPPER = os.path.join(HELPERS, "tools", "swapper")

libc = ctypes.CDLL(None, use_errno=True)


def renameat2(old, new, flags):
    if libc.syscall(316, -100, os.fsencode(old), -100, os.fsencode(new),
                    flags) != 0:  # SYS_renameat2 on x86_64, AT_FDCWD
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old)


RENAME_EXCHANGE = 2

# --------------------------------------------------------------------------
# the sentinel tree and how it is watched


def make_outside(base):
    """<base>/outside: world-writable dirs, a world-readable secret, victims."""
    out = os.path.join(base, "outside")
    os.mkdir(out)
    os.mkdir(os.path.join(out, "sub"))
    for d in (out, os.path.join(out, "sub")):
        os.chmod(d, 0o777)
    files = {"secret": SECRET, "sub/secret": SECRET}
    for i in range(8):
        files[f"existing-{i}"] = SECRET + b"-%d" % i
        files[f"victim-{i}"] = SECRET + b"-victim-%d" % i
    for rel, data in files.items():
        p = os.path.join(out, rel)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, 0o666)
    os.setxattr(os.path.join(out, "secret"), "user.tag", TAG)
    os.setxattr(os.path.join(out, "secret"), "trusted.tag", TAG)
    os.setxattr(out, "trusted.tag", TAG)
    return out


def snapshot(top):
    """Everything about a tree except atimes (which our own read changes)."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [""] + dirnames + filenames:
            p = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(p)
            rel = os.path.relpath(p, top)
            if rel in snap:
                continue
            ent = (stat.S_IFMT(st.st_mode), st.st_mode, st.st_uid, st.st_gid,
                   st.st_size, st.st_ino, st.st_nlink, st.st_mtime_ns,
                   st.st_ctime_ns)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    ent += (hashlib.sha256(f.read()).hexdigest(),)
            elif stat.S_ISLNK(st.st_mode):
                ent += (os.readlink(p),)
            xa = {}
            if not stat.S_ISLNK(st.st_mode):
                for k in os.listxattr(p):
                    xa[k] = os.getxattr(p, k)
            ent += (tuple(sorted(xa.items())),)
            snap[rel] = ent
    return snap


IN_ALL_EVENTS = 0x00000fff
IN_NAMES = {0x1: "ACCESS", 0x2: "MODIFY", 0x4: "ATTRIB", 0x8: "CLOSE_WRITE",
            0x10: "CLOSE_NOWRITE", 0x20: "OPEN", 0x40: "MOVED_FROM",
            0x80: "MOVED_TO", 0x100: "CREATE", 0x200: "DELETE",
            0x400: "DELETE_SELF", 0x800: "MOVE_SELF", 0x4000: "Q_OVERFLOW"}


class Watch:
    """inotify on every directory of a tree: it sees accesses from every
    mount namespace, so from the daemon too."""

    def __init__(self, top):
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0
        self.paths = {}
        dirs = [dirpath for dirpath, _, _ in os.walk(top)]
        for dirpath in dirs:
            wd = libc.inotify_add_watch(self.fd, os.fsencode(dirpath),
                                        IN_ALL_EVENTS)
            assert wd >= 0, os.strerror(ctypes.get_errno())
            self.paths[wd] = dirpath
        self.events = []

    def drain(self):
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            off = 0
            while off < len(data):
                wd, mask, _cookie, ln = struct.unpack_from("iIII", data, off)
                name = data[off + 16:off + 16 + ln].rstrip(b"\0").decode(
                    errors="replace")
                off += 16 + ln
                what = "|".join(v for k, v in IN_NAMES.items() if mask & k)
                self.events.append(f"{what} {self.paths.get(wd, '?')}/{name}")

    def close(self):
        if self.fd is not None:
            self.drain()
            os.close(self.fd)
            self.fd = None
        return self.events


class Sentinel:
    """Snapshot + watch of <base>/outside around an attack."""

    def __init__(self, base):
        self.top = make_outside(base)
        self.before = snapshot(self.top)
        self.watch = Watch(self.top)

    def check(self):
        events = self.watch.close()
        after = snapshot(self.top)
        assert not events, f"something touched the sentinel: {events[:20]}"
        new = sorted(set(after) - set(self.before))
        gone = sorted(set(self.before) - set(after))
        assert not new, f"new entries outside the upper: {new}"
        assert not gone, f"entries removed outside the upper: {gone}"
        changed = sorted(k for k in after if after[k] != self.before[k])
        assert not changed, f"changed outside the upper: {changed}"


@pytest.fixture
def sentinel(ws):
    s = Sentinel(ws.base)
    yield s
    s.watch.close()


# --------------------------------------------------------------------------
# agents: processes in a private mount namespace, outside/ covered by a decoy

LAUNCHER = r'''
import json, os, subprocess, sys
cfg = json.loads(sys.argv[1])
for d in cfg["shadows"]:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=8m",
                    "wsfs-decoy", d], check=True)
    for name in cfg["decoys"]:
        p = os.path.join(d, name)
        os.makedirs(os.path.dirname(p), mode=0o1777, exist_ok=True)
        with open(p, "wb") as f:
            f.write(cfg["decoy"].encode())
        os.chmod(p, 0o666)
if cfg["uid"] != 0:
    os.setgroups([])
    os.setgid(cfg["gid"])
    os.setuid(cfg["uid"])
sys.argv = ["agent"] + cfg["args"]
exec(compile(cfg["code"], "agent", "exec"), {"__name__": "__main__"})
'''

DECOY_NAMES = ["secret", "sub/secret"] + [f"existing-{i}" for i in range(8)] \
    + [f"victim-{i}" for i in range(8)]


def start_agent(code, args, shadows, uid=NOBODY, gid=NOGROUP):
    cfg = {"shadows": shadows, "decoys": DECOY_NAMES, "decoy": DECOY.decode(),
           "uid": uid, "gid": gid, "code": code, "args": [str(a) for a in args]}
    return subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", sys.executable, "-c",
         LAUNCHER, json.dumps(cfg)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def finish_agent(p, timeout=60):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise AssertionError(f"agent hung; stderr: {err[-3000:]}")
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 0, f"agent failed ({p.returncode}): {err[-3000:]}"
    return json.loads(out.strip().splitlines()[-1])


def run_agent(code, args, shadows, uid=NOBODY, gid=NOGROUP, timeout=60):
    return finish_agent(start_agent(code, args, shadows, uid, gid), timeout)


# Common agent prelude: try(name, fn, *args) records errno names or "ok" and
# remembers every byte string the agent managed to read.
PRELUDE = r'''
import errno, json, os, stat, sys, time
results = {}
seen = []
def attempt(label, fn, *a, **kw):
    try:
        r = fn(*a, **kw)
    except OSError as e:
        results[label] = errno.errorcode.get(e.errno, str(e.errno))
        return None
    results[label] = "ok"
    if isinstance(r, bytes):
        seen.append(r.decode(errors="replace"))
    return r
def read(path, **kw):
    fd = os.open(path, os.O_RDONLY, **kw)
    try:
        return os.read(fd, 1 << 16)
    finally:
        os.close(fd)
def create(path, data=b"AGENT", **kw):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, **kw)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
def trunc(path, n):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, n)
    finally:
        os.close(fd)
def done(**extra):
    extra.update(results=results, seen=seen)
    print(json.dumps(extra))
'''


def leaked(res):
    return [s for s in res["seen"] if SECRET.decode() in s or TAG.decode() in s]


# --------------------------------------------------------------------------
# mount flags, setuid, devices


def test_mount_is_nosuid_nodev(ws):
    opts = mount_options(ws.mnt)
    assert opts is not None, "mount not in /proc/self/mountinfo"
    assert "nosuid" in opts, opts
    assert "nodev" in opts, opts


def test_setuid_root_binary_runs_unprivileged(ws):
    # control: the same setuid copy outside the mount does elevate, so the
    # check below can tell nosuid apart from a binary that never elevates
    ctl_dir = os.path.join(ws.base, "suid-control")
    os.mkdir(ctl_dir)
    os.chmod(ctl_dir, 0o755)
    for d in (ctl_dir, ws.upper):
        shutil.copy("/usr/bin/id", os.path.join(d, "id"))
        os.chown(os.path.join(d, "id"), 0, 0)
        os.chmod(os.path.join(d, "id"), 0o6755)
    ctl = run_as(NOBODY, NOGROUP, [os.path.join(ctl_dir, "id"), "-u"])
    if ctl.stdout.strip() != b"0":
        pytest.skip("setuid binaries do not elevate on this host at all")
    st = os.stat(ws.p("id"))
    assert st.st_mode & 0o7777 == 0o6755 and st.st_uid == 0
    r = run_as(NOBODY, NOGROUP, [ws.p("id"), "-u"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == b"65534", "setuid bit honoured inside the mount"
    r = run_as(NOBODY, NOGROUP, [ws.p("id"), "-g"])
    assert r.stdout.strip() == b"65534", "setgid bit honoured inside the mount"


@pytest.mark.parametrize("kind", [stat.S_IFCHR, stat.S_IFBLK])
def test_mknod_device_through_mount_is_eperm(ws, kind):
    dev = os.makedev(1, 3) if kind == stat.S_IFCHR else os.stat("/").st_dev
    with pytest.raises(OSError) as ei:
        os.mknod(ws.p("dev"), kind | 0o666, dev)
    assert ei.value.errno == errno.EPERM
    assert not os.path.lexists(ws.u("dev"))
    # and as the agent, in a directory it may write: no CAP_MKNOD
    os.mkdir(ws.u("d"))
    os.chown(ws.u("d"), NOBODY, NOGROUP)
    assert as_user(NOBODY, NOGROUP,
                   lambda: os.mknod(ws.p("d", "dev2"), kind | 0o666, dev)) \
        == -errno.EPERM
    assert os.listdir(ws.u("d")) == []


def test_device_planted_in_upper_is_unusable(ws):
    os.mknod(ws.u("null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(ws.u("zero"), stat.S_IFCHR | 0o666, os.makedev(1, 5))
    os.mknod(ws.u("disk"), stat.S_IFBLK | 0o666, os.stat("/").st_dev)
    # they are visible as what they are ...
    assert stat.S_ISCHR(os.lstat(ws.p("null")).st_mode)
    assert stat.S_ISBLK(os.lstat(ws.p("disk")).st_mode)
    # ... but cannot be opened as devices, by root or by the agent
    for name, flags in (("null", os.O_WRONLY), ("zero", os.O_RDONLY),
                        ("disk", os.O_RDONLY)):
        with pytest.raises(OSError) as ei:
            os.close(os.open(ws.p(name), flags))
        assert ei.value.errno == errno.EACCES, name
        assert as_user(NOBODY, NOGROUP,
                       lambda: os.close(os.open(ws.p(name), flags))) \
            == -errno.EACCES, name


def test_agent_cannot_set_privileged_xattrs(ws):
    """File capabilities or trusted.* set through the mount would land on
    the upper, where the host honours them."""
    os.mkdir(ws.u("d"))
    os.chown(ws.u("d"), NOBODY, NOGROUP)
    shutil.copy("/usr/bin/id", ws.u("d", "tool"))
    os.chown(ws.u("d", "tool"), NOBODY, NOGROUP)
    # VFS_CAP_REVISION_2 | EFFECTIVE, all permitted capabilities
    fcap = struct.pack("<IIIII", 0x02000001, 0xffffffff, 0, 0x1ff, 0)
    p = ws.p("d", "tool")
    assert as_user(NOBODY, NOGROUP, lambda: os.setxattr(
        p, "security.capability", fcap)) == -errno.EPERM
    assert as_user(NOBODY, NOGROUP, lambda: os.setxattr(
        p, "trusted.wsfs", b"1")) == -errno.EPERM
    assert as_user(NOBODY, NOGROUP, lambda: os.setxattr(
        p, "user.ok", b"1")) == 0            # the agent's own namespace works
    names = os.listxattr(ws.u("d", "tool"))
    assert "security.capability" not in names and "trusted.wsfs" not in names
    assert os.getxattr(ws.u("d", "tool"), "user.ok") == b"1"


@pytest.mark.parametrize("kind", ["tmpfs", "bind"])
def test_mount_inside_upper_is_not_crossed(ws, sentinel, kind):
    """A filesystem mounted inside the upper by the host is not part of the
    workspace: the daemon refuses to cross into it (it answers EXDEV for a
    different st_dev).  A bind mount of a directory of the SAME filesystem
    has the same st_dev, so only a mount-id check tells it apart."""
    target = ws.u("m")
    os.mkdir(target)
    if kind == "tmpfs":
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0777", "wsfs-inner",
                        target], check=True)
        with open(os.path.join(target, "secret"), "wb") as f:
            f.write(SECRET)
        os.chmod(os.path.join(target, "secret"), 0o666)
    else:
        subprocess.run(["mount", "--bind", sentinel.top, target], check=True)
    try:
        def agent():
            for fn in (lambda: os.listdir(ws.p("m")),
                       lambda: open(ws.p("m", "secret"), "rb").read(),
                       lambda: os.close(os.open(ws.p("m", "new"),
                                                os.O_CREAT | os.O_WRONLY, 0o644)),
                       lambda: os.stat(ws.p("m", "secret"))):
                try:
                    fn()
                    return 1
                except OSError:
                    pass
            return 0
        assert as_user(NOBODY, NOGROUP, agent) == 0, \
            f"the agent reached into a {kind} mount inside the upper"
        with pytest.raises(OSError):
            open(ws.p("m", "secret"), "rb").read()      # nor may root
        if kind == "tmpfs":
            assert os.listdir(target) == ["secret"]
        # for the bind mount, sentinel.check() below proves nothing changed
        # (listing it here would itself trip the sentinel's inotify watch)
    finally:
        subprocess.run(["umount", "-l", target], capture_output=True)
    sentinel.check()


# --------------------------------------------------------------------------
# crossing the mount boundary


def test_link_and_rename_across_mount_are_exdev(ws, sentinel):
    d = ws.u("d")
    os.mkdir(d)
    os.chown(d, NOBODY, NOGROUP)
    code = PRELUDE + r'''
mnt, out = sys.argv[1], sys.argv[2]
create(f"{mnt}/d/own")
attempt("link_in", os.link, f"{out}/secret", f"{mnt}/d/hl")
attempt("link_out", os.link, f"{mnt}/d/own", f"{out}/hl")
attempt("rename_in", os.rename, f"{out}/victim-0", f"{mnt}/d/moved")
attempt("rename_out", os.rename, f"{mnt}/d/own", f"{out}/moved")
attempt("rename_dir_out", os.rename, f"{mnt}/d", f"{out}/moved-dir")
done()
'''
    # this one runs WITHOUT a decoy: the kernel must refuse before touching
    # anything, so the real sentinel is the target
    res = run_agent(code, [ws.mnt, sentinel.top], shadows=[])
    for k in ("link_in", "link_out", "rename_in", "rename_out",
              "rename_dir_out"):
        assert res["results"][k] == "EXDEV", (k, res["results"])
    # root too, and RENAME_EXCHANGE
    for fn, a in ((os.link, (os.path.join(sentinel.top, "secret"), ws.p("hl"))),
                  (os.rename, (ws.p("d", "own"), os.path.join(sentinel.top, "x"))),
                  (renameat2, (ws.p("d", "own"), os.path.join(sentinel.top, "victim-1"),
                               RENAME_EXCHANGE))):
        with pytest.raises(OSError) as ei:
            fn(*a)
        assert ei.value.errno == errno.EXDEV
    assert sorted(os.listdir(ws.u("d"))) == ["own"]
    sentinel.check()


def test_dotdot_at_root_is_the_kernels(ws, sentinel):
    """`..` of the mount root is resolved by the kernel to the mount's
    parent; names made of dots are ordinary names that stay inside."""
    root_fd = os.open(ws.mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        st = os.stat("..", dir_fd=root_fd)
        assert (st.st_dev, st.st_ino) == (os.stat(ws.base).st_dev,
                                          os.stat(ws.base).st_ino)
    finally:
        os.close(root_fd)
    names = ["...", "..x", ". .", "..\\..", "x..", ".\u2024"]
    for n in names:
        with open(ws.p(n), "wb") as f:
            f.write(b"in")
    assert sorted(names) == sorted(os.listdir(ws.upper))
    assert sorted(names) == sorted(os.listdir(ws.mnt))
    sentinel.check()


# --------------------------------------------------------------------------
# symlinks: stored verbatim, never followed by the daemon


def test_symlink_targets_stored_verbatim(ws):
    d = ws.u("d")
    os.mkdir(d)
    os.chown(d, NOBODY, NOGROUP)
    targets = [b"../../../../etc/passwd", b"/etc/shadow", b"../outside/secret",
               b"a//b/../c/", b"..", b"/", b"\xff\xfe/../\x01x",
               b"dangling/../../../..", b"x" * 4095]

    def agent():
        for i, t in enumerate(targets):
            os.symlink(t, os.path.join(ws.p("d").encode(), b"l%d" % i))
        for i, t in enumerate(targets):
            p = os.path.join(ws.p("d").encode(), b"l%d" % i)
            if os.readlink(p) != t:
                return 100 + i
            st = os.lstat(p)
            if not stat.S_ISLNK(st.st_mode) or st.st_size != len(t):
                return 200 + i
        return 0

    assert as_user(NOBODY, NOGROUP, agent) == 0
    for i, t in enumerate(targets):
        p = os.path.join(ws.u("d").encode(), b"l%d" % i)
        assert os.readlink(p) == t
        assert os.lstat(p).st_uid == NOBODY
    # too long a target is the backing fs's ENAMETOOLONG, not a truncation
    assert as_user(NOBODY, NOGROUP, lambda: os.symlink(
        "y" * 4096, ws.p("d", "toolong"))) == -errno.ENAMETOOLONG
    assert not os.path.lexists(ws.u("d", "toolong"))


def test_symlink_loops_are_eloop(ws):
    os.symlink("loop_b", ws.u("loop_a"))     # planted in the upper
    os.symlink("loop_a", ws.u("loop_b"))
    os.symlink("self", ws.u("self"))
    d = ws.u("d")
    os.mkdir(d)
    os.chown(d, NOBODY, NOGROUP)

    def agent():
        os.symlink("s2", ws.p("d", "s1"))   # made through the mount
        os.symlink("s1", ws.p("d", "s2"))
        os.symlink(".", ws.p("d", "dot"))
        for p in (ws.p("loop_a"), ws.p("self"), ws.p("d", "s1")):
            for fn in (lambda: os.close(os.open(p, os.O_RDONLY)), lambda: os.stat(p),
                       lambda: os.close(os.open(p + "/x", os.O_CREAT | os.O_WRONLY))):
                try:
                    fn()
                    return 1
                except OSError as e:
                    if e.errno != errno.ELOOP:
                        return 2
            if not stat.S_ISLNK(os.lstat(p).st_mode):
                return 3
        deep = ws.p("d", *(["dot"] * 41), "x")
        try:
            os.close(os.open(deep, os.O_CREAT | os.O_WRONLY, 0o644))
            return 4
        except OSError as e:
            if e.errno != errno.ELOOP:
                return 5
        return 0

    assert as_user(NOBODY, NOGROUP, agent) == 0
    assert sorted(os.listdir(ws.u("d"))) == ["dot", "s1", "s2"]


def test_daemon_does_not_follow_planted_symlinks(ws, sentinel):
    """Symlinks planted in the upper, pointing at the sentinel: operations
    that act on the link itself reach the daemon with the link's inode and
    must change the link, never its target; operations the kernel resolves
    through the link land in the agent's decoy."""
    out = sentinel.top
    os.symlink(out, ws.u("link"))                          # absolute
    os.symlink(os.path.join(out, "secret"), ws.u("slink"))
    os.symlink("../outside", ws.u("rlink"))                 # relative
    os.symlink("../outside/secret", ws.u("rslink"))
    os.symlink(os.path.join(out, "victim-0"), ws.u("vlink"))
    code = PRELUDE + r'''
mnt, out, uid = sys.argv[1], sys.argv[2], int(sys.argv[3])
L = lambda n: os.path.join(mnt, n)
for n in ("link", "slink", "rlink", "rslink"):
    st = os.lstat(L(n))
    results["lstat_" + n] = "link" if stat.S_ISLNK(st.st_mode) else oct(st.st_mode)
    results["size_" + n] = st.st_size
    results["readlink_" + n] = os.readlink(L(n))
results["dtypes"] = sorted(e.name for e in os.scandir(mnt) if e.is_symlink())
# resolved by the kernel in this namespace: these hit the decoy
attempt("read_via_link", read, L("link") + "/secret")
attempt("read_slink", read, L("slink"))
attempt("read_rslink", read, L("rslink"))
attempt("create_via_link", create, L("link") + "/created")
attempt("mkdir_via_rlink", os.mkdir, L("rlink") + "/newdir")
attempt("rename_via_link", os.rename, L("link") + "/victim-1", L("link") + "/renamed")
attempt("unlink_via_link", os.unlink, L("link") + "/victim-2")
attempt("chmod_via_link", os.chmod, L("link") + "/victim-3", 0o600)
attempt("trunc_via_link", trunc, L("link") + "/victim-4", 1)
attempt("list_via_link", os.listdir, L("link"))
attempt("xattr_via_link", os.setxattr, L("link") + "/victim-5", "user.x", b"1")
# on the links themselves: these reach the daemon
attempt("utime_nofollow", os.utime, L("link"), (1, 1), follow_symlinks=False)
attempt("utime_nofollow_s", os.utime, L("slink"), (2, 2), follow_symlinks=False)
attempt("getxattr_nofollow_user", os.getxattr, L("slink"), "user.tag", follow_symlinks=False)
attempt("setxattr_nofollow_user", os.setxattr, L("slink"), "user.x", b"1", follow_symlinks=False)
attempt("rename_link", os.rename, L("vlink"), L("vlink2"))
attempt("rmdir_link", os.rmdir, L("link"))
# CPython's os.link uses link(2), which does not follow; a real dir fd
# makes it use linkat(AT_SYMLINK_FOLLOW)
rootfd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
attempt("link_follow", os.link, L("slink"), L("hl_follow"), src_dir_fd=rootfd,
        follow_symlinks=True)
if uid == 0:
    attempt("chown_nofollow", os.chown, L("slink"), 65534, 65534, follow_symlinks=False)
    attempt("chown_nofollow_dir", os.chown, L("link"), 65534, 65534, follow_symlinks=False)
    r = attempt("getxattr_nofollow_trusted", os.getxattr, L("slink"), "trusted.tag", follow_symlinks=False)
    if r is not None:
        seen.append(r.decode(errors="replace"))
    r = attempt("listxattr_nofollow", os.listxattr, L("slink"), follow_symlinks=False)
    results["listxattr_names"] = r or []
    r = attempt("getxattr_nofollow_dir", os.getxattr, L("link"), "trusted.tag", follow_symlinks=False)
    if r is not None:
        seen.append(r.decode(errors="replace"))
    attempt("setxattr_nofollow_trusted", os.setxattr, L("slink"), "trusted.x", b"1", follow_symlinks=False)
    attempt("removexattr_nofollow_trusted", os.removexattr, L("link"), "trusted.tag", follow_symlinks=False)
    attempt("link_nofollow", os.link, L("slink"), L("hl"), follow_symlinks=False)
    attempt("unlink_vlink2", os.unlink, L("vlink2"))
done(decoy=sorted(os.listdir(out)))
'''
    for uid in (NOBODY, 0):
        res = run_agent(code, [ws.mnt, out, uid], shadows=[out], uid=uid,
                        gid=NOGROUP if uid else 0)
        r = res["results"]
        assert not leaked(res), res
        for n, tgt in (("link", out), ("slink", out + "/secret"),
                       ("rlink", "../outside"), ("rslink", "../outside/secret")):
            assert r["lstat_" + n] == "link", (n, r)
            assert r["readlink_" + n] == tgt
            assert r["size_" + n] == len(tgt)
        assert {"link", "slink", "rlink", "rslink"} <= set(r["dtypes"])
        # the kernel followed into the decoy: proves the agent's view
        assert r["read_via_link"] == "ok" and r["read_slink"] == "ok"
        assert r["create_via_link"] == "ok"
        assert "created" in res["decoy"]
        # a symlink is not a directory (nobody may not even try in root's dir)
        assert r["rmdir_link"] == ("ENOTDIR" if uid == 0 else "EACCES")
        assert r["link_follow"] == "EXDEV"        # target is in the decoy
        if uid == NOBODY:
            assert r["utime_nofollow"] == "EPERM"  # root's link
            assert r["rename_link"] == "EACCES"    # root's directory
        else:
            assert r["utime_nofollow"] == "ok", r
            assert os.lstat(ws.u("link")).st_mtime == 1
            assert os.lstat(ws.u("slink")).st_mtime == 2
            assert r["chown_nofollow"] == "ok", r
            assert os.lstat(ws.u("slink")).st_uid == NOBODY
            assert r["chown_nofollow_dir"] == "ok", r
            assert os.lstat(ws.u("link")).st_uid == NOBODY
            assert r["rename_link"] == "ok"
            assert "trusted.tag" not in r["listxattr_names"]
            assert r["getxattr_nofollow_trusted"] != "ok"
            assert r["getxattr_nofollow_dir"] != "ok"
            assert r["removexattr_nofollow_trusted"] != "ok"
            if r["link_nofollow"] == "ok":
                st = os.lstat(ws.u("hl"))
                assert stat.S_ISLNK(st.st_mode)
                assert st.st_ino == os.lstat(ws.u("slink")).st_ino
            assert r["unlink_vlink2"] == "ok"
            assert not os.path.lexists(ws.u("vlink2"))
    sentinel.check()


# --------------------------------------------------------------------------
# races: the upper changes under the daemon

RACE_AGENT = PRELUDE + r'''
import random
mnt, tag, secs, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
dirs = sys.argv[5:]
rnd = random.Random(tag)
end = time.time() + secs
n = ok = 0
counts = {}
def note(kind, fn, *a, **kw):
    global ok
    try:
        r = fn(*a, **kw)
    except OSError as e:
        k = kind + ":" + errno.errorcode.get(e.errno, str(e.errno))
        counts[k] = counts.get(k, 0) + 1
        return None
    ok += 1
    counts[kind + ":ok"] = counts.get(kind + ":ok", 0) + 1
    if isinstance(r, bytes):
        seen.append(r.decode(errors="replace"))
    return r
def xattr_get(p):
    return os.getxattr(p, "user.tag")
def dir_ops(d, i):
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(3):
            k = rnd.randrange(8)
            note("at_read", read, f"existing-{k}", dir_fd=fd)
            note("at_create", create, f"at-{tag}-{i}-{_}", dir_fd=fd)
            note("at_unlink", os.unlink, f"victim-{k}", dir_fd=fd)
            note("at_recreate", create, f"victim-{k}", dir_fd=fd)
            note("at_mkdir", os.mkdir, f"atdir-{tag}-{i}-{_}", dir_fd=fd)
            note("at_rename", os.rename, f"existing-{k}", f"existing-{k}.{tag}",
                 src_dir_fd=fd, dst_dir_fd=fd)
            note("at_rename_back", os.rename, f"existing-{k}.{tag}", f"existing-{k}",
                 src_dir_fd=fd, dst_dir_fd=fd)
        return os.listdir(fd)
    finally:
        os.close(fd)
while time.time() < end:
    n += 1
    d = os.path.join(mnt, rnd.choice(dirs))
    k = rnd.randrange(8)
    op = rnd.randrange(18)
    if op >= 14:
        # the file that keeps turning into a symlink to the secret
        f = os.path.join(mnt, "f")
        fop = rnd.randrange(8)
        if fop == 0:
            note("f_read", read, f)
        elif fop == 1:
            note("f_append", lambda: os.close(os.open(f, os.O_WRONLY | os.O_APPEND)))
        elif fop == 2:
            note("f_chmod", os.chmod, f, 0o640 if n % 2 else 0o644)
        elif fop == 3:
            note("f_truncate", trunc, f, 6)
        elif fop == 4:
            note("f_utime", os.utime, f, (9, 9))
        elif fop == 5:
            note("f_setxattr", os.setxattr, f, "user.tag", b"agent")
        elif fop == 6:
            note("f_getxattr", xattr_get, f)
        else:
            note("f_link", os.link, f, os.path.join(mnt, "d", f"fl-{tag}-{n}"))
        continue
    if op == 0:
        note("read", read, f"{d}/existing-{k}")
    elif op == 1:
        note("create", create, f"{d}/new-{tag}-{n}")
    elif op == 2:
        note("mkdir", os.mkdir, f"{d}/dir-{tag}-{n}")
    elif op == 3:
        note("unlink", os.unlink, f"{d}/victim-{k}")
        note("recreate", create, f"{d}/victim-{k}")
    elif op == 4:
        note("rename", os.rename, f"{d}/existing-{k}", f"{d}/existing-{k}.{tag}")
        note("rename_back", os.rename, f"{d}/existing-{k}.{tag}", f"{d}/existing-{k}")
    elif op == 5:
        note("link", os.link, f"{d}/existing-{k}", f"{d}/hl-{tag}-{n}")
    elif op == 6:
        note("setxattr", os.setxattr, f"{d}/existing-{k}", "user.tag", b"agent")
    elif op == 7:
        note("getxattr", xattr_get, f"{d}/existing-{k}")
    elif op == 8:
        note("chmod", os.chmod, f"{d}/existing-{k}", 0o600 if n % 2 else 0o644)
    elif op == 9:
        note("truncate", trunc, f"{d}/existing-{k}", 1)
    elif op == 10:
        note("listdir", os.listdir, d)
    elif op == 11:
        note("symlink", os.symlink, "/etc/passwd", f"{d}/sl-{tag}-{n}")
    elif op == 12:
        note("utime", os.utime, f"{d}/existing-{k}", (5, 5))
    else:
        note("dirfd", dir_ops, d, n)
done(iterations=n, ok=ok, counts=counts,
     decoy_hits=len([x for x in os.listdir(out) if tag in x]))
'''


def make_race_dir(path):
    os.mkdir(path)
    for i in range(8):
        for pre in ("existing", "victim"):
            with open(os.path.join(path, f"{pre}-{i}"), "wb") as f:
                f.write(b"inside-%d" % i)
            os.chown(os.path.join(path, f"{pre}-{i}"), NOBODY, NOGROUP)
    os.chown(path, NOBODY, NOGROUP)
    os.chmod(path, 0o777)


@pytest.mark.parametrize("fd_cache", [16, None])
def test_dir_symlink_swap_race(make_ws, fd_cache):
    """A host-side process keeps exchanging directories in the upper with
    symlinks to the sentinel (absolute and relative), and a file with a
    symlink to the secret, while two agents create, open, unlink, rename,
    link, chmod, truncate and set xattrs through them.  With fd_cache=16 the daemon must also reopen evicted
    nodes all the time while the names under it change type."""
    assert os.access(SWAPPER, os.X_OK), f"{SWAPPER} not built"
    # timeout=0: the kernel looks d and e up again on every path walk, so
    # the daemon keeps meeting them as directories and as symlinks
    opts = "allow_other,timeout=0" + (f",fd_cache={fd_cache}" if fd_cache else "")
    w = make_ws(options=opts)
    s = Sentinel(w.base)
    out = s.top
    try:
        make_race_dir(w.u("d"))
        make_race_dir(w.u("e"))
        os.symlink(out, w.u("d-evil"))                    # absolute
        os.symlink("../outside", w.u("e-evil"))           # relative
        with open(w.u("f"), "wb") as f:
            f.write(b"inside-file")
        os.chown(w.u("f"), NOBODY, NOGROUP)
        os.symlink(os.path.join(out, "secret"), w.u("f-evil"))
        # let the kernel know d and e as directories first
        os.listdir(w.p("d"))
        os.listdir(w.p("e"))
        secs = 6
        swapper = subprocess.Popen(
            [SWAPPER, str(secs + 1), w.u("d"), w.u("d-evil"), w.u("e"),
             w.u("e-evil"), w.u("f"), w.u("f-evil")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        agents = []
        try:
            agents = [start_agent(RACE_AGENT, [w.mnt, f"a{i}", secs, out, "d", "e"],
                                  shadows=[out]) for i in range(2)]
            results = [finish_agent(a, timeout=secs + 60) for a in agents]
            sout, serr = swapper.communicate(timeout=30)
        finally:
            for p in agents + [swapper]:
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait()
        assert swapper.returncode == 0, serr
        assert int(sout) > 1000, "swapper barely ran"
        print(f"\nswaps {int(sout)}; agents: " + "; ".join(
            f"{r['iterations']} iterations, {r['ok']} ok, {r['decoy_hits']} "
            f"entries made in the decoy" for r in results))
        print(sorted(results[0]["counts"].items()))
        for res in results:
            assert not leaked(res), f"agent read the secret: {leaked(res)[:3]}"
            assert res["ok"] > 200, f"agents barely ran: {res['counts']}"
        s.check()
        # both names are directories again and still inside
        assert stat.S_ISDIR(os.lstat(w.u("d")).st_mode)
        assert stat.S_ISLNK(os.lstat(w.u("d-evil")).st_mode)
        assert os.readlink(w.u("d-evil")) == out
        # the daemon is still serving
        assert len(os.listdir(w.p("d"))) > 0
    finally:
        s.watch.close()


OPEN_DIR_AGENT = PRELUDE + r'''
mnt = sys.argv[1]
fd = os.open(os.path.join(mnt, "d"), os.O_RDONLY | os.O_DIRECTORY)
print("READY", flush=True)
sys.stdin.readline()
r = attempt("read", read, "existing-0", dir_fd=fd)
results["read_data"] = r.decode() if r else None
attempt("create", create, "created", dir_fd=fd)
attempt("mkdir", os.mkdir, "newdir", dir_fd=fd)
attempt("unlink", os.unlink, "victim-0", dir_fd=fd)
attempt("rename", os.rename, "existing-1", "renamed", src_dir_fd=fd, dst_dir_fd=fd)
attempt("link", os.link, "existing-2", "linked", src_dir_fd=fd, dst_dir_fd=fd)
attempt("symlink", os.symlink, "/etc/shadow", "sl", dir_fd=fd)
attempt("chmod", os.chmod, "existing-3", 0o600, dir_fd=fd)
attempt("utime", os.utime, "existing-4", (7, 7), dir_fd=fd)
attempt("truncate", lambda: os.truncate(os.open("existing-5", os.O_WRONLY, dir_fd=fd), 1))
attempt("setxattr", os.setxattr, f"/proc/self/fd/{fd}", "user.agent", b"1")
attempt("fchmod_dir", os.chmod, fd, 0o770)
r = attempt("listdir", os.listdir, fd)
results["listing"] = sorted(r) if r else None
st = attempt("fstat", os.fstat, fd)
results["fstat_ino"] = st.st_ino if st else None
os.close(fd)
done()
'''


@pytest.mark.parametrize("how", ["rename", "exchange"])
def test_symlink_swapped_for_open_directory(make_ws, how):
    """The agent holds an O_DIRECTORY fd on mnt/d; host-side, d is moved
    away and a symlink to the sentinel takes its name; the daemon's cache is
    flushed by churn (fd_cache=16).  *at() operations on the held fd must
    act on the real directory (now upper/d-moved) or fail, never outside."""
    w = make_ws(options="allow_other,fd_cache=16")
    s = Sentinel(w.base)
    out = s.top
    try:
        make_race_dir(w.u("d"))
        for i in range(100):
            with open(w.u(f"churn-{i}"), "w") as f:
                f.write("c")
        agent = start_agent(OPEN_DIR_AGENT, [w.mnt], shadows=[out])
        try:
            line = agent.stdout.readline()
            assert line.strip() == "READY", agent.stderr.read()
            if how == "rename":
                os.rename(w.u("d"), w.u("d-moved"))
                os.symlink(out, w.u("d"))
            else:
                os.symlink(out, w.u("d-moved"))
                renameat2(w.u("d"), w.u("d-moved"), RENAME_EXCHANGE)
            for i in range(100):          # evict the daemon's descriptors
                os.stat(w.p(f"churn-{i}"))
            agent.stdin.write("GO\n")
            agent.stdin.flush()
            res = finish_agent(agent)
        finally:
            if agent.poll() is None:
                os.kill(agent.pid, signal.SIGKILL)
                agent.wait()
        r = res["results"]
        assert not leaked(res), res
        moved = w.u("d-moved")
        assert stat.S_ISDIR(os.lstat(moved).st_mode)
        assert r["fstat_ino"] == os.lstat(moved).st_ino
        acceptable = ("ok", "ENOENT", "ESTALE")
        for k, v in r.items():
            if k in ("read_data", "listing", "fstat_ino"):
                continue
            assert v in acceptable, (k, v, r)
        # what succeeded happened in the real directory
        if r["read"] == "ok":
            assert r["read_data"] == "inside-0"
        if r["create"] == "ok":
            with open(os.path.join(moved, "created"), "rb") as f:
                assert f.read() == b"AGENT"
        if r["mkdir"] == "ok":
            assert os.path.isdir(os.path.join(moved, "newdir"))
        if r["unlink"] == "ok":
            assert not os.path.lexists(os.path.join(moved, "victim-0"))
        if r["rename"] == "ok":
            assert os.path.exists(os.path.join(moved, "renamed"))
        if r["link"] == "ok":
            assert os.path.samefile(os.path.join(moved, "linked"),
                                    os.path.join(moved, "existing-2"))
        if r["symlink"] == "ok":
            assert os.readlink(os.path.join(moved, "sl")) == "/etc/shadow"
        if r["chmod"] == "ok":
            assert os.stat(os.path.join(moved, "existing-3")).st_mode & 0o777 == 0o600
        if r["utime"] == "ok":
            assert os.stat(os.path.join(moved, "existing-4")).st_mtime == 7
        if r["truncate"] == "ok":
            assert os.path.getsize(os.path.join(moved, "existing-5")) == 1
        if r["setxattr"] == "ok":
            assert os.getxattr(moved, "user.agent") == b"1"
        if r["listdir"] == "ok":
            assert set(r["listing"]) == set(os.listdir(moved))
        # a well-behaved daemon follows the directory: most of this works
        assert r["create"] == "ok" and r["read"] == "ok", r
        s.check()
    finally:
        s.watch.close()
