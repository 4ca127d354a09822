"""The operator's view of `wsfs`: mounting, refusing to mount, defaults,
the mount.fuse3/fstab convention, forced and ignored options, read-only
workspaces, recovery after SIGKILL, and --help/--version.

Every test either goes through conftest's make_ws (which unmounts and ends
the daemon) or through the `sweep` fixture below, which unmounts whatever is
left under the test's directory and ends, by pid, the daemons the test's
state directories recorded.  The mount(8) tests run `mount` in a private
mount namespace (see ns_mount) and end their daemon themselves.
"""
import errno
import glob
import json
import os
import re
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import BUILD, WSCTL, WSFS, is_mounted, pid_alive

MiB = 1 << 20


# ---------------------------------------------------------------- helpers

def _unescape(s):
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mountinfo(pid="self"):
    """Every entry of /proc/PID/mountinfo as a dict."""
    entries = []
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            entries.append({
                "mnt": _unescape(fields[4]),
                "mnt_opts": fields[5].split(","),
                "fstype": fields[sep + 1],
                "source": _unescape(fields[sep + 2]),
                "super_opts": fields[sep + 3].split(","),
            })
    return entries


def entries_at(path, pid="self"):
    path = os.path.realpath(path)
    return [e for e in mountinfo(pid) if e["mnt"] == path]


def mounts_under(base, pid="self"):
    base = os.path.realpath(base)
    return [e["mnt"] for e in mountinfo(pid)
            if e["mnt"] == base or e["mnt"].startswith(base + "/")]


def db_rows(state):
    """The registry's rows, {name: row dict}; {} if there is no state.db."""
    path = os.path.join(state, "state.db")
    if not os.path.exists(path):
        return {}
    db = sqlite3.connect(path, timeout=5)
    try:
        cur = db.execute("SELECT name, mountpoint, upper, pid, start_time, "
                         "socket FROM mounts")
        cols = [c[0] for c in cur.description]
        return {r[0]: dict(zip(cols, r)) for r in cur.fetchall()}
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()


def is_wsfs_process(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0")[0]
    except OSError:
        return False
    return os.path.basename(argv0) == b"wsfs"


def wait_dead(pid, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)


def end_daemon(pid):
    """End a wsfs daemon the test started: SIGTERM, then SIGKILL."""
    if pid is None or not pid_alive(pid) or not is_wsfs_process(pid):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_dead(pid, 5):
            return


def run_wsfs(*args, env=None, cwd=None):
    return subprocess.run([WSFS] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=30, env=env, cwd=cwd)


def err_lines(r):
    return [l for l in r.stderr.splitlines() if l.strip()]


def wait_for(pred, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


class Dirs:
    """A fresh upper, mountpoint and (not yet created) state directory."""

    def __init__(self, base, mnt_name="mnt"):
        os.makedirs(base, exist_ok=True)
        os.chmod(base, 0o755)
        self.base = base
        self.upper = os.path.join(base, "upper")
        self.mnt = os.path.join(base, mnt_name)
        self.state = os.path.join(base, "state")
        os.makedirs(self.upper, exist_ok=True)
        os.makedirs(self.mnt, exist_ok=True)


@pytest.fixture
def sweep(tmpbase):
    """Yields TMPBASE; afterwards unmounts everything under it and ends the
    daemons that the state directories under it recorded."""
    yield tmpbase
    pids = set()
    for db in (glob.glob(os.path.join(tmpbase, "*", "state.db")) +
               glob.glob(os.path.join(tmpbase, "*", "*", "state.db"))):
        pids |= {r["pid"] for r in db_rows(os.path.dirname(db)).values()}
    for _ in range(10):
        left = mounts_under(tmpbase)
        if not left:
            break
        for m in sorted(left, key=len, reverse=True):
            r = subprocess.run(["fusermount3", "-u", m], capture_output=True,
                               timeout=30)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", m], capture_output=True,
                               timeout=30)
    for pid in pids:
        if not wait_dead(pid, 5):
            end_daemon(pid)
    for m in mounts_under(tmpbase):
        subprocess.run(["umount", "-l", m], capture_output=True, timeout=30)


def check_live_mount(mnt, upper, name):
    """What `wsfs` returning 0 promises: a live, usable wsfs mount."""
    es = entries_at(mnt)
    assert len(es) == 1, f"expected one mount at {mnt}, got {es}"
    e = es[0]
    assert e["fstype"] == "fuse.wsfs"
    assert e["source"] == f"wsfs:{name}"
    assert "nosuid" in e["mnt_opts"] and "nodev" in e["mnt_opts"], e
    assert "default_permissions" in e["super_opts"], e
    st = os.stat(mnt)
    assert st.st_dev != os.stat(os.path.dirname(os.path.realpath(mnt))).st_dev
    probe = os.path.join(mnt, "probe.txt")
    with open(probe, "w") as f:
        f.write("hello")
    with open(os.path.join(upper, "probe.txt")) as f:
        assert f.read() == "hello"
    os.unlink(probe)
    return e


# ------------------------------------------------------------ mounting works

def test_zero_means_mounted_and_usable(make_ws):
    w = make_ws(mount=False, options="")
    r = w.mount(check=False)
    # Everything below runs right after wsfs returned: no waiting, no retry.
    if is_mounted(w.mnt):
        w.pid = w.daemon_pid()
    assert r.returncode == 0, r.stderr
    check_live_mount(w.mnt, w.upper, w.name)
    assert r.stderr == "", r.stderr
    os.mkdir(w.p("d"))
    assert os.path.isdir(w.u("d"))


def test_daemon_detaches_and_logs_to_state_dir(make_ws):
    w = make_ws(mount=False, options="")
    proc = subprocess.Popen([WSFS, "-o", w.opts(), w.mnt],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    out, err = proc.communicate(timeout=30)
    if is_mounted(w.mnt):
        w.pid = w.daemon_pid()
    assert proc.returncode == 0, err
    assert w.pid is not None
    pid = w.pid
    assert pid != proc.pid, "the process that ran wsfs is the daemon"
    assert pid_alive(pid), "wsfs returned but the daemon is gone"
    with open(f"/proc/{pid}/stat") as f:
        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    assert ppid != os.getpid(), "the daemon is still the test's child"
    assert ppid != proc.pid
    log = os.path.join(w.state, "log", f"{w.name}.log")
    assert os.path.isfile(log)
    for fd in (1, 2):
        assert os.readlink(f"/proc/{pid}/fd/{fd}") == os.path.realpath(log), fd
    assert os.readlink(f"/proc/{pid}/cwd") == "/"
    with open(log) as f:
        text = f.read()
    assert w.name in text and "mounted" in text, text
    assert out == "" and err == ""


# ------------------------------------------------------------------ errors

def _err_cases():
    long_name = "a" * 65

    def opts(d, extra="", upper=None, name="errws"):
        o = f"upper={upper or d.upper},state={d.state}"
        if name is not None:
            o += f",name={name}"
        return o + extra

    return [
        # id, argv builder, exit status, words the one-line reason must hold
        ("missing-upper",
         lambda d: ["-o", opts(d, upper=d.base + "/nope"), d.mnt], 1,
         ["upper", "nope"]),
        ("upper-is-file",
         lambda d: ["-o", opts(d, upper=d.base + "/afile"), d.mnt], 2,
         ["upper", "afile"]),
        ("missing-mountpoint",
         lambda d: ["-o", opts(d), d.base + "/nomnt"], 1,
         ["mountpoint", "nomnt"]),
        ("no-mountpoint",
         lambda d: ["-o", opts(d)], 1, ["mountpoint"]),
        ("too-many-args",
         lambda d: ["-o", opts(d), d.upper, d.mnt, d.base + "/third"], 1,
         ["third"]),
        ("name-dotdot",
         lambda d: ["-o", opts(d, name="../x"), d.mnt], 1, ["name", "../x"]),
        ("name-empty",
         lambda d: ["-o", opts(d, name=""), d.mnt], 1, ["name"]),
        ("name-65-bytes",
         lambda d: ["-o", opts(d, name=long_name), d.mnt], 1,
         ["name", long_name]),
        ("mountpoint-basename-invalid",
         lambda d: ["-o", opts(d, name=None), d.base + "/bad name"], 1,
         ["name", "bad name"]),
        ("mountpoint-basename-dot",
         lambda d: ["-o", opts(d, name=None), d.base + "/.hidden"], 1,
         ["name", ".hidden"]),
        ("fd-cache-too-small",
         lambda d: ["-o", opts(d, ",fd_cache=3"), d.mnt], 1, ["fd_cache"]),
        ("timeout-negative",
         lambda d: ["-o", opts(d, ",timeout=-5"), d.mnt], 1, ["timeout"]),
        ("timeout-garbage",
         lambda d: ["-o", opts(d, ",timeout=soon"), d.mnt], 1, ["timeout"]),
        ("timeout-nan",
         lambda d: ["-o", opts(d, ",timeout=nan"), d.mnt], 1, ["timeout"]),
        ("timeout-too-large",
         lambda d: ["-o", opts(d, ",timeout=1e9"), d.mnt], 1, ["timeout"]),
    ]


@pytest.mark.parametrize("case", _err_cases(), ids=[c[0] for c in _err_cases()])
def test_refused_with_status_and_one_line_reason(sweep, case):
    _id, argv, status, words = case
    d = Dirs(os.path.join(sweep, "e"))
    with open(os.path.join(d.base, "afile"), "w") as f:
        f.write("x")
    os.makedirs(os.path.join(d.base, "bad name"))
    os.makedirs(os.path.join(d.base, ".hidden"))
    r = run_wsfs(*argv(d))
    left = mounts_under(d.base)
    assert left == [], f"something was mounted: {left}"
    assert r.returncode == status, (r.returncode, r.stderr)
    lines = err_lines(r)
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    assert lines[0].startswith("wsfs: "), lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert r.stdout == ""
    assert db_rows(d.state) == {}
    if status == 1:
        # a usage error is found before the daemon forks and touches state
        assert not os.path.exists(d.state), "usage error created the state dir"


def test_unknown_libfuse_option_is_exit_1(sweep):
    d = Dirs(os.path.join(sweep, "e"))
    r = run_wsfs("-o", f"upper={d.upper},state={d.state},name=u1,frobnicate",
                 d.mnt)
    assert mounts_under(d.base) == []
    assert r.returncode == 1, r.stderr
    assert "fuse: unknown option(s)" in r.stderr and "frobnicate" in r.stderr
    assert "wsfs: invalid libfuse options" in r.stderr
    # reported before the daemon detaches: no state was created
    assert not os.path.exists(d.state)


def test_name_already_mounted_elsewhere_is_exit_2(make_ws, sweep):
    w = make_ws(name=f"dup{os.getpid()}")
    d = Dirs(os.path.join(sweep, "second"))
    r = run_wsfs("-o", f"upper={d.upper},state={w.state},name={w.name}", d.mnt)
    assert mounts_under(d.base) == [], "the second daemon mounted"
    assert r.returncode == 2, r.stderr
    lines = err_lines(r)
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    assert lines[0].startswith("wsfs: ")
    assert os.path.realpath(w.mnt) in lines[0], lines[0]
    assert str(w.pid) in lines[0], lines[0]
    # the first workspace is untouched
    rows = db_rows(w.state)
    assert rows[w.name]["pid"] == w.pid
    assert rows[w.name]["mountpoint"] == os.path.realpath(w.mnt)
    check_live_mount(w.mnt, w.upper, w.name)


def test_mountpoint_in_use_by_other_workspace_is_refused(make_ws, sweep):
    a = make_ws(name=f"occupant{os.getpid()}")
    with open(a.u("mine"), "w") as f:
        f.write("a")
    other = Dirs(os.path.join(sweep, "intruder"))
    r = run_wsfs("-o", f"upper={other.upper},state={a.state},"
                 f"name=intruder{os.getpid()}", a.mnt)
    es = entries_at(a.mnt)
    assert [e["source"] for e in es] == [f"wsfs:{a.name}"], (
        f"wsfs exit {r.returncode} and stacked a second workspace on a live "
        f"one: {[e['source'] for e in es]}")
    assert r.returncode != 0
    lines = err_lines(r)
    assert len(lines) == 1 and lines[0].startswith("wsfs: "), lines
    assert os.path.exists(a.p("mine"))


# ---------------------------------------------------------------- defaults

def test_name_defaults_to_mountpoint_basename(sweep):
    name = f"agent-{os.getpid()}.x_1"
    d = Dirs(os.path.join(sweep, "n"), mnt_name=name)
    r = run_wsfs("-o", f"upper={d.upper},state={d.state}", d.mnt)
    assert r.returncode == 0, r.stderr
    rows = db_rows(d.state)
    assert list(rows) == [name], rows
    check_live_mount(d.mnt, d.upper, name)


def test_state_dir_from_environment(sweep):
    d = Dirs(os.path.join(sweep, "env"))
    envstate = os.path.join(d.base, "envstate")
    env = dict(os.environ, WSFS_STATE=envstate)
    r = run_wsfs("-o", f"upper={d.upper},name=envws", d.mnt, env=env)
    assert r.returncode == 0, r.stderr
    rows = db_rows(envstate)
    assert "envws" in rows and rows["envws"]["mountpoint"] == d.mnt
    assert os.path.isfile(os.path.join(envstate, "log", "envws.log"))
    check_live_mount(d.mnt, d.upper, "envws")


def test_state_option_wins_over_environment(sweep):
    d = Dirs(os.path.join(sweep, "env"))
    envstate = os.path.join(d.base, "envstate")
    env = dict(os.environ, WSFS_STATE=envstate)
    r = run_wsfs("-o", f"upper={d.upper},name=optws,state={d.state}", d.mnt,
                 env=env)
    assert r.returncode == 0, r.stderr
    assert "optws" in db_rows(d.state)
    assert not os.path.exists(envstate), "WSFS_STATE was used despite -o state"
    check_live_mount(d.mnt, d.upper, "optws")


def test_relative_state_dir_is_anchored_to_cwd(sweep):
    d = Dirs(os.path.join(sweep, "rel"))
    r = run_wsfs("-o", "upper=upper,name=relws,state=relstate", "mnt",
                 cwd=d.base)
    assert r.returncode == 0, r.stderr
    rows = db_rows(os.path.join(d.base, "relstate"))
    assert rows["relws"]["upper"] == d.upper
    assert rows["relws"]["mountpoint"] == d.mnt
    check_live_mount(d.mnt, d.upper, "relws")


# ------------------------------------------------- mount.fuse3 conventions

def test_positional_upper(sweep):
    d = Dirs(os.path.join(sweep, "p"))
    r = run_wsfs(d.upper, d.mnt, "-o", f"name=posws,state={d.state}")
    assert r.returncode == 0, r.stderr
    assert db_rows(d.state)["posws"]["upper"] == d.upper
    check_live_mount(d.mnt, d.upper, "posws")


@pytest.mark.parametrize("source", ["none", "wsfs"])
def test_placeholder_source_with_upper_option(sweep, source):
    d = Dirs(os.path.join(sweep, "p"))
    r = run_wsfs(source, d.mnt, "-o",
                 f"upper={d.upper},name=nonews,state={d.state}")
    assert r.returncode == 0, r.stderr
    assert db_rows(d.state)["nonews"]["upper"] == d.upper
    check_live_mount(d.mnt, d.upper, "nonews")


def ns_mount(d, mount_argv):
    """Run mount(8) in a private mount namespace whose /usr/local/sbin holds
    a `wsfs` link to the binary under test.

    mount(8) (util-linux 2.38) drops PATH from the environment it gives its
    helpers, so mount.fuse3's `/bin/sh -c 'wsfs ...'` searches the shell's
    default path only; a PATH that includes the build directory is passed
    as well but is not enough.  The namespace keeps the host untouched: the
    workspace is mounted there, and the daemon keeps the namespace alive."""
    bindir = os.path.join(d.base, "bin")
    os.makedirs(bindir, exist_ok=True)
    os.symlink(WSFS, os.path.join(bindir, "wsfs"))
    env = dict(os.environ)
    env["PATH"] = os.path.join(BUILD, "fs") + ":" + env.get("PATH", "/usr/bin:/bin")
    script = 'mount --bind "$1" /usr/local/sbin || exit 99; shift; exec "$@"'
    return subprocess.run(["unshare", "-m", "--propagation", "private",
                           "sh", "-c", script, "sh", bindir] + mount_argv,
                          capture_output=True, text=True, timeout=30, env=env)


def ns_path(pid, path):
    """PATH as seen in daemon PID's mount namespace."""
    return f"/proc/{pid}/root{path}"


def check_ns_mount_then_umount(d, name, r):
    pid = None
    try:
        rows = db_rows(d.state)
        if name in rows:
            pid = rows[name]["pid"]
        assert r.returncode == 0, r.stderr
        assert pid is not None and pid_alive(pid)
        es = entries_at(d.mnt, pid)
        assert len(es) == 1, es
        e = es[0]
        assert e["fstype"] == "fuse.wsfs" and e["source"] == f"wsfs:{name}"
        assert "nosuid" in e["mnt_opts"] and "nodev" in e["mnt_opts"], e
        assert "default_permissions" in e["super_opts"]
        # mount.fuse3 added suid,dev; wsfs said it ignored them
        assert "ignoring 'suid'" in r.stderr and "ignoring 'dev'" in r.stderr
        with open(ns_path(pid, d.mnt + "/via-mount"), "w") as f:
            f.write("m")
        with open(os.path.join(d.upper, "via-mount")) as f:
            assert f.read() == "m"
        u = subprocess.run(["nsenter", "-t", str(pid), "-m", "umount", d.mnt],
                           capture_output=True, text=True, timeout=30)
        assert u.returncode == 0, u.stderr
        assert wait_dead(pid, 5), "umount did not end the daemon within 5 s"
        assert name not in db_rows(d.state), "registry row left after umount"
    finally:
        if pid is not None and pid_alive(pid):
            subprocess.run(["nsenter", "-t", str(pid), "-m", "fusermount3",
                            "-u", d.mnt], capture_output=True, timeout=30)
            if not wait_dead(pid, 5):
                end_daemon(pid)
        if is_mounted(d.mnt):
            subprocess.run(["fusermount3", "-u", d.mnt], capture_output=True)
            subprocess.run(["umount", "-l", d.mnt], capture_output=True)


def test_mount_t_fuse_wsfs(sweep):
    d = Dirs(os.path.join(sweep, "mt"))
    name = f"mt{os.getpid()}"
    r = ns_mount(d, ["mount", "-t", "fuse.wsfs", d.upper, d.mnt,
                     "-o", f"name={name},state={d.state}"])
    check_ns_mount_then_umount(d, name, r)


def test_mount_from_private_fstab(sweep):
    d = Dirs(os.path.join(sweep, "fstab"))
    name = f"fs{os.getpid()}"
    fstab = os.path.join(d.base, "fstab")
    with open(fstab, "w") as f:
        f.write(f"# private fstab\n{d.upper} {d.mnt} fuse.wsfs "
                f"name={name},state={d.state} 0 0\n")
    r = ns_mount(d, ["mount", "-T", fstab, d.mnt])
    check_ns_mount_then_umount(d, name, r)


# ------------------------------------------------------------------ options

def test_suid_and_dev_are_ignored_with_a_warning(make_ws):
    w = make_ws(mount=False, options="suid,dev")
    r = w.mount()
    lines = err_lines(r)
    assert ("wsfs: ignoring 'suid': workspaces are always mounted "
            "nosuid,nodev") in lines, lines
    assert ("wsfs: ignoring 'dev': workspaces are always mounted "
            "nosuid,nodev") in lines, lines
    e = check_live_mount(w.mnt, w.upper, w.name)
    assert "suid" not in e["mnt_opts"] and "dev" not in e["mnt_opts"]


def _snapshot(top):
    snap = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            data = None
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    data = f.read()
            xattrs = {x: os.getxattr(p, x, follow_symlinks=False)
                      for x in os.listxattr(p, follow_symlinks=False)}
            snap[os.path.relpath(p, top)] = (st.st_mode, st.st_size,
                                             st.st_mtime_ns, data, xattrs)
    return snap


def test_read_only_refuses_every_change(make_ws):
    w = make_ws(mount=False, options="ro")
    with open(w.u("f"), "wb") as f:
        f.write(b"original")
    os.mkdir(w.u("d"))
    os.setxattr(w.u("f"), "user.k", b"v")
    before = _snapshot(w.upper)
    w.mount()
    e = entries_at(w.mnt)[0]
    assert "ro" in e["mnt_opts"], e
    with open(w.p("f"), "rb") as f:            # reading still works
        assert f.read() == b"original"

    def erofs(fn, *args):
        with pytest.raises(OSError) as ei:
            fn(*args)
        assert ei.value.errno == errno.EROFS, (fn.__name__, args, ei.value)

    erofs(os.open, w.p("new"), os.O_WRONLY | os.O_CREAT, 0o644)
    erofs(os.open, w.p("f"), os.O_WRONLY)
    erofs(os.open, w.p("f"), os.O_RDWR | os.O_TRUNC)
    erofs(os.chmod, w.p("f"), 0o600)
    erofs(os.mkdir, w.p("newdir"))
    erofs(os.unlink, w.p("f"))
    erofs(os.rmdir, w.p("d"))
    erofs(os.rename, w.p("f"), w.p("g"))
    erofs(os.symlink, "f", w.p("link"))
    erofs(os.truncate, w.p("f"), 0)
    erofs(os.setxattr, w.p("f"), "user.other", b"x")
    erofs(os.removexattr, w.p("f"), "user.k")
    assert _snapshot(w.upper) == before


# -------------------------------------------------------- life and recovery

def test_remount_after_sigkill_leaves_one_mount(make_ws):
    w = make_ws()
    with open(w.p("kept"), "w") as f:
        f.write("kept")
    old = w.pid
    w.kill(signal.SIGKILL)
    assert wait_dead(old, 5)
    w.pid = None
    r = w.mount(check=False)
    if r.returncode == 0:
        w.pid = w.daemon_pid()
    assert r.returncode == 0, r.stderr
    es = entries_at(w.mnt)
    assert len(es) == 1, f"{len(es)} mounts at the mountpoint: {es}"
    assert w.pid != old
    with open(w.p("kept")) as f:
        assert f.read() == "kept"
    check_live_mount(w.mnt, w.upper, w.name)


def test_two_workspaces_share_a_state_dir(make_ws):
    a = make_ws(mount=False, sub="a")
    b = make_ws(mount=False, sub="b")
    b.state = a.state
    a.mount()
    b.mount()
    assert a.pid != b.pid
    r = subprocess.run([WSCTL, "--state", a.state, "ls", "--json"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    got = {m["name"]: m for m in json.loads(r.stdout)}
    assert set(got) == {a.name, b.name}
    for w in (a, b):
        assert got[w.name]["state"] == "mounted"
        assert got[w.name]["pid"] == w.pid
        assert got[w.name]["mountpoint"] == os.path.realpath(w.mnt)
        check_live_mount(w.mnt, w.upper, w.name)


def test_timeout_zero_sees_upper_changes(make_ws):
    w = make_ws(options="timeout=0")
    with pytest.raises(FileNotFoundError):
        os.stat(w.p("late"))                  # a negative lookup
    with open(w.u("late"), "w") as f:
        f.write("abc")
    assert os.stat(w.p("late")).st_size == 3
    os.chmod(w.u("late"), 0o600)
    with open(w.u("late"), "a") as f:
        f.write("defg")
    st = os.stat(w.p("late"))
    assert (st.st_mode & 0o777, st.st_size) == (0o600, 7)
    with open(w.p("late")) as f:              # first read through the mount
        assert f.read() == "abcdefg"
    os.unlink(w.u("late"))
    assert not os.path.exists(w.p("late"))


# ----------------------------------------------------------- help, version

@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(flag):
    r = run_wsfs(flag)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: ")
    assert "MOUNTPOINT" in r.stdout
    for opt in ("upper=", "name=", "state=", "timeout=", "fd_cache=", "ro"):
        assert opt in r.stdout, opt


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag):
    r = run_wsfs(flag)
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"wsfs \d+\.\d+\.\d+ \(libfuse \d+\.\d+(\.\d+)?\)\n",
                        r.stdout), r.stdout
