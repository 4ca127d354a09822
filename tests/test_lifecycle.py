"""The operator's workspace lifecycle through wsctl: create, mount, ls, set,
umount, rm, for several workspaces at once, and every failure path with its
documented exit status (wsctl(8), EXIT STATUS):

  0 ok, 1 runtime error, 2 bad command line or value, 3 no such workspace,
  4 already declared, 5 mounted (or busy), 6 not mounted, 7 daemon failed.

Each error is exactly one "wsctl: " line, and a refused command changes
nothing in state.db.
"""
import errno
import json
import os
import pty
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import is_mounted, pid_alive

OK, ERR, USAGE, NOENT, EXISTS, MOUNTED, NOTMOUNTED, DAEMON = range(8)


def dump(op):
    """Every row of the tables a definition lives in, for 'nothing
    changed' checks."""
    path = os.path.join(op.state, "state.db")
    if not os.path.exists(path):
        return None
    db = sqlite3.connect(path, timeout=5)
    try:
        out = {}
        for t in ("workspaces", "layers", "quotas", "mounts"):
            try:
                out[t] = sorted(db.execute(f"SELECT * FROM {t}").fetchall(),
                                key=repr)
            except sqlite3.OperationalError:
                out[t] = None
        return out
    finally:
        db.close()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def write_errno(path, data):
    try:
        write(path, data)
    except OSError as e:
        return e.errno
    return 0


def declare(op, name, *extra, upper=True, inp=True):
    args = ["create", name]
    if upper:
        args += ["--upper", op.path(name, "upper")]
    if inp:
        src = op.path(name, "input")
        os.makedirs(src, exist_ok=True)
        write(os.path.join(src, "doc.txt"), b"input of " + name.encode())
        args += ["--layer", f"{src}:/input"]
    return op.ok(*args, *extra)


# ------------------------------------------------------------ the happy path

def test_three_workspaces_full_lifecycle(operator):
    op = operator
    team = op.path("team")
    os.makedirs(team)
    names = ["agent-1", "agent-2", "agent-3"]
    for n in names:
        out = declare(op, n, "--shared", f"{team}:/shared", "--ephemeral",
                      "/tmp", "--bytes", "1M", "--inodes", "100")
        assert out.splitlines()[0] == f"create {n}", out
        assert "  bytes 1 MiB" in out and "  layer /tmp ephemeral" in out
    ls = op.ls()
    assert sorted(ls) == names
    for n in names:
        assert ls[n]["state"] == "stopped" and ls[n]["declared"] is True
        assert ls[n]["pid"] is None
        assert ls[n]["mountpoint"] == os.path.join(op.state, "run", "mnt", n)
        assert ls[n]["bytes"] == {"used": 0, "limit": 1 << 20}
        assert ls[n]["inodes"] == {"used": 0, "limit": 100}

    for n in names:
        out = op.ok("mount", n)
        mnt = os.path.join(op.state, "run", "mnt", n)
        assert out == f"mounted {n} at {mnt}\n"
        assert is_mounted(mnt)
    ls = op.ls()
    mnts = {n: ls[n]["mountpoint"] for n in names}
    for n in names:
        assert ls[n]["state"] == "mounted" and pid_alive(ls[n]["pid"])
        m = mnts[n]
        with open(os.path.join(m, "input", "doc.txt"), "rb") as f:
            assert f.read() == b"input of " + n.encode()
        assert write_errno(os.path.join(m, "input", "doc.txt"), b"x") == \
            errno.EROFS
        write(os.path.join(m, "out.bin"), b"a" * 300_000)
        assert write_errno(os.path.join(m, "big.bin"), b"b" * 900_000) == \
            errno.EDQUOT
        write(os.path.join(m, "tmp", "scratch"), b"s" * 1000)
        write(os.path.join(m, "shared", n), n.encode())
    # each sees the others' shared files
    for n in names:
        assert sorted(os.listdir(os.path.join(mnts[n], "shared"))) == names
    # the table shows usage bars from the daemons
    table = op.ok("ls").splitlines()
    assert table[0].split() == ["NAME", "MOUNTPOINT", "PID", "STATE", "BYTES",
                                "INODES"]
    for line in table[1:]:
        cells = line.split()
        assert cells[3] == "mounted"
        assert cells[4].startswith("[") and cells[4].endswith("/1.0M"), cells
        assert "%:" in cells[5] and cells[5].endswith("/100"), cells
    assert op.ls()["agent-1"]["usage_from"] == "daemon"

    for n in names:
        pid = op.ls()[n]["pid"]
        out = op.ok("umount", n)
        assert out == f"unmounted {n} from {mnts[n]}\n"
        # umount returns only once the daemon is gone and scratch wiped
        assert not pid_alive(pid)
        assert not is_mounted(mnts[n])
    ls = op.ls()
    for n in names:
        assert ls[n]["state"] == "stopped"
        upper = op.path(n, "upper")
        # outputs persist (big.bin empty: its write failed with EDQUOT);
        # the graft points hold nothing of the scratch or shared data
        assert os.path.getsize(os.path.join(upper, "out.bin")) == 300_000
        assert os.path.getsize(os.path.join(upper, "big.bin")) == 0
        for graft in ("tmp", "shared", "input"):
            d = os.path.join(upper, graft)
            assert not os.path.exists(d) or os.listdir(d) == [], d
        assert ls[n]["bytes"]["used"] >= 300_000
    assert not os.listdir(os.path.join(op.state, "scratch")) \
        if os.path.isdir(os.path.join(op.state, "scratch")) else True
    # a second mount finds the outputs and an empty scratch
    op.ok("mount", "agent-2")
    m = mnts["agent-2"]
    with open(os.path.join(m, "out.bin"), "rb") as f:
        assert f.read() == b"a" * 300_000
    assert os.listdir(os.path.join(m, "tmp")) == []
    op.ok("umount", "agent-2")
    for n in names:
        assert op.ok("rm", n) == f"removed {n}\n"
    assert op.ls() == {}
    # rm keeps the upper unless asked to purge
    assert os.path.isfile(op.path("agent-1", "upper", "out.bin"))
    # every step is on the audit chain, which verifies
    out = op.ok("audit", "search", "--ws", "agent-1", "--format", "jsonl")
    ops = [json.loads(l)["op"] for l in out.splitlines()]
    assert ops.count("define") == 1 and ops.count("undefine") == 1
    assert "mount" in ops and "unmount" in ops
    assert op.ok("audit", "verify").startswith("OK")


def test_mount_at_a_given_mountpoint_and_the_declared_one(operator):
    op = operator
    declare(op, "w1", "--mountpoint", op.path("declared-mnt"))
    declare(op, "w2")
    op.ok("mount", "w1")
    assert is_mounted(op.path("declared-mnt"))
    here = op.path("elsewhere")
    assert op.ok("mount", "w2", here) == f"mounted w2 at {here}\n"
    assert op.ls()["w2"]["mountpoint"] == here
    op.ok("umount", "w1")
    op.ok("umount", "w2")
    assert not is_mounted(here) and not is_mounted(op.path("declared-mnt"))
    # after unmounting, ls shows the declared mountpoint again
    assert op.ls()["w2"]["mountpoint"] == os.path.join(op.state, "run",
                                                       "mnt", "w2")


def test_whole_ephemeral_workspace_leaves_nothing(operator):
    op = operator
    out = op.ok("create", "scratch-only", "--ephemeral")
    assert "upper (none: all ephemeral)" in out
    op.ok("mount", "scratch-only")
    m = op.ls()["scratch-only"]["mountpoint"]
    write(os.path.join(m, "f"), b"x" * 1000)
    op.ok("umount", "scratch-only")
    op.ok("mount", "scratch-only")
    assert os.listdir(m) == []
    op.ok("umount", "scratch-only")


# ------------------------------------------------------------ failure paths

def test_failure_paths_have_distinct_statuses(operator):
    op = operator
    declare(op, "alpha")
    before = dump(op)
    assert "no workspace named 'ghost'" in op.fails(NOENT, "mount", "ghost")
    assert "no workspace named 'ghost'" in op.fails(NOENT, "umount", "ghost")
    assert "no workspace named 'ghost'" in op.fails(NOENT, "rm", "ghost")
    assert "no workspace named 'ghost'" in op.fails(NOENT, "set", "ghost",
                                                    "--bytes", "1M")
    assert "not mounted" in op.fails(NOTMOUNTED, "umount", "alpha")
    assert "not mounted" in op.fails(NOTMOUNTED, "status", "alpha")
    assert "already exists" in op.fails(EXISTS, "create", "alpha", "--upper",
                                        op.path("other"))
    assert not os.path.exists(op.path("other"))
    assert dump(op) == before

    op.ok("mount", "alpha")
    pid = op.ls()["alpha"]["pid"]
    line = op.fails(MOUNTED, "mount", "alpha")
    assert "already mounted" in line and str(pid) in line
    line = op.fails(MOUNTED, "rm", "alpha")
    assert "is mounted" in line and "wsctl umount alpha" in line
    line = op.fails(MOUNTED, "rm", "alpha", "--purge", "--yes")
    assert op.ls()["alpha"]["state"] == "mounted"
    assert os.path.isdir(op.path("alpha", "upper"))
    op.ok("umount", "alpha")


def test_umount_of_a_busy_workspace_needs_force(operator):
    op = operator
    declare(op, "busy")
    op.ok("mount", "busy")
    m = op.ls()["busy"]["mountpoint"]
    f = open(os.path.join(m, "held"), "wb")
    try:
        line = op.fails(MOUNTED, "umount", "busy")
        assert "busy" in line and "--force" in line
        assert is_mounted(m) and op.ls()["busy"]["state"] == "mounted"
        f.write(b"still works")
        f.flush()
        pid = op.ls()["busy"]["pid"]
        op.ok("umount", "busy", "--force")
        assert not pid_alive(pid) and not is_mounted(m)
    finally:
        try:
            f.close()
        except OSError:
            pass
    assert op.ls()["busy"]["state"] == "stopped"


def test_a_dead_daemon_shows_and_mount_recovers(operator):
    op = operator
    declare(op, "crashy", "--bytes", "1M")
    op.ok("mount", "crashy")
    info = op.ls()["crashy"]
    m = info["mountpoint"]
    write(os.path.join(m, "kept"), b"before the crash")
    os.kill(info["pid"], signal.SIGKILL)
    deadline = time.time() + 10
    while pid_alive(info["pid"]) and time.time() < deadline:
        time.sleep(0.02)
    assert op.ls()["crashy"]["state"] == "stale"
    assert op.ok("ls").splitlines()[1].split()[3] == "stale"
    line = op.fails(NOTMOUNTED, "status", "crashy")
    assert "not running" in line
    with pytest.raises(OSError) as e:
        os.stat(os.path.join(m, "kept"))
    assert e.value.errno == errno.ENOTCONN
    # mount clears the dead mount and mounts again, with the data
    r = op.wsctl("mount", "crashy")
    assert r.returncode == 0, r.stderr
    assert "cleared the mount a dead daemon left" in r.stderr
    with open(os.path.join(m, "kept"), "rb") as f:
        assert f.read() == b"before the crash"
    with open("/proc/self/mountinfo") as f:
        assert sum(1 for l in f if l.split()[4] == m) == 1
    # the quota still holds after the recovery scan
    assert write_errno(os.path.join(m, "big"), b"x" * (2 << 20)) == \
        errno.EDQUOT
    op.ok("umount", "crashy")


def test_umount_clears_what_a_dead_daemon_left(operator):
    op = operator
    declare(op, "gone")
    op.ok("mount", "gone")
    info = op.ls()["gone"]
    os.kill(info["pid"], signal.SIGKILL)
    while pid_alive(info["pid"]):
        time.sleep(0.02)
    out = op.ok("umount", "gone")
    assert "cleared the mount the dead daemon" in out
    assert not is_mounted(info["mountpoint"])
    assert "not mounted" in op.fails(NOTMOUNTED, "umount", "gone")


def test_mount_refuses_a_foreign_mount_at_the_mountpoint(operator):
    op = operator
    declare(op, "w")
    target = op.path("taken")
    os.makedirs(target)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", target], check=True)
    try:
        line = op.fails(MOUNTED, "mount", "w", target)
        assert "already has a tmpfs mount" in line
    finally:
        subprocess.run(["umount", target], check=True)
    assert op.ls()["w"]["state"] == "stopped"


def test_a_daemon_that_fails_to_start_is_reported(operator):
    op = operator
    declare(op, "w", "--option", "no_such_fuse_option")
    line = op.fails(DAEMON, "mount", "w")
    assert "cannot mount workspace 'w'" in line
    assert op.ls()["w"]["state"] == "stopped"
    # and a layer source removed since the definition was made
    declare(op, "w2")
    os.rename(op.path("w2", "input"), op.path("w2", "input-moved"))
    line = op.fails(DAEMON, "mount", "w2")
    assert "input" in line
    assert not is_mounted(op.ls()["w2"]["mountpoint"])


BAD_NAMES = ["", ".hidden", "-dash", "a/b", "a b", "x" * 65, "caf\u00e9",
             "tab\tname", "new\nline", "..", "semi;colon", "star*"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused(operator, name):
    op = operator
    op.ok("create", "keep", "--upper", op.path("keep"))
    before = dump(op)
    line = op.fails(USAGE, "create", "--upper", op.path("u"), "--", name)
    assert "invalid workspace name" in line
    assert dump(op) == before
    assert not os.path.exists(op.path("u"))


def test_a_64_byte_name_is_fine(operator):
    name = "n" * 64
    operator.ok("create", name, "--upper", operator.path("u"))
    assert name in operator.ls()


def bad_values(op):
    src = op.path("src")
    os.makedirs(src, exist_ok=True)
    f = op.path("a-file")
    write(f, b"")
    return [
        (["--bytes", "-1"], "-1"),
        (["--bytes", "1KB"], "1KB"),
        (["--bytes", "lots"], "lots"),
        (["--inodes", "1.5"], "1.5"),
        (["--inodes", "99999999999999999999999"], "9999"),
        (["--audit", "loud"], "loud"),
        (["--layer", "relative:/in"], "relative"),
        (["--layer", f"{op.path('missing')}:/in"], "missing"),
        (["--layer", f"{src}:/../etc"], ".."),
        (["--layer", f"{src}:/in:rw"], "rw"),
        (["--layer", f"{src}:/in:cow"], "cow"),
        (["--layer", f"{src}:/"], "'/'"),
        (["--shared", f"{src}:/"], "'/'"),
        (["--layer", f"{src}:/in", "--layer", f"{src}:/in"], "/in"),
        (["--mountpoint", "relative/mnt"], "relative/mnt"),
        (["--option", "name=x"], "name=x"),
        (["--option", "upper=/etc"], "upper=/etc"),
        (["--option", "a,b"], "a,b"),
        (["--option", "quota_bytes=1G"], "quota_bytes"),
        (["--upper", "relative"], "relative"),
        (["--upper", f], "not a directory"),
        (["--upper", op.state], "state directory"),
        (["--upper", src, "--layer", f"{src}:/in"], "upper"),
        (["--upper", op.path("u"), "--ephemeral"], "ephemeral"),
        (["--bytes"], "--bytes"),
        (["--frobnicate"], "--frobnicate"),
    ]


def test_bad_values_are_refused_and_change_nothing(operator):
    op = operator
    declare(op, "keep", "--bytes", "1M")
    before = dump(op)
    for args, needle in bad_values(op):
        for cmd in ("create", "set"):
            name = "newone" if cmd == "create" else "keep"
            full = [cmd, name] + args
            if cmd == "create" and "--upper" not in args:
                full += ["--upper", op.path("fresh-upper")]
            line = op.fails(USAGE, *full)
            assert needle in line, (full, line)
            assert dump(op) == before, full
    assert not os.path.exists(op.path("fresh-upper"))
    assert op.fails(USAGE, "set", "keep").endswith(
        "nothing to change; usage: wsctl [--state DIR] set NAME "
        + op.ok("help", "set").splitlines()[0].split(" set NAME ", 1)[1])


def test_usage_errors_of_each_command(operator):
    op = operator
    declare(op, "w")
    cases = [
        ("mount",), ("mount", "w", "/a", "/b"), ("mount", "w", "--bogus"),
        ("umount",), ("umount", "w", "x"), ("umount", "--bogus", "w"),
        ("rm",), ("rm", "w", "x"), ("rm", "w", "--yes"), ("rm", "--bogus", "w"),
        ("create",), ("create", "a", "b", "--upper", "/x"),
        ("set",), ("ls", "extra"), ("mount", "w", "relative-mnt"),
    ]
    before = dump(op)
    for argv in cases:
        op.fails(USAGE, *argv)
        assert dump(op) == before, argv
    assert op.ls()["w"]["state"] == "stopped"


# ------------------------------------------------------------ set and rm

def test_set_applies_quota_live_and_layers_at_next_mount(operator):
    op = operator
    declare(op, "live", "--bytes", "1M")
    op.ok("mount", "live")
    m = op.ls()["live"]["mountpoint"]
    write(os.path.join(m, "a"), b"x" * 700_000)
    assert write_errno(os.path.join(m, "b"), b"y" * 700_000) == errno.EDQUOT
    out = op.ok("set", "live", "--bytes", "4M")
    assert out == "update live: bytes 1 MiB -> 4 MiB (live)\n"
    write(os.path.join(m, "b"), b"y" * 700_000)    # no remount needed
    assert json.loads(op.ok("quota", "show", "live", "--json"))[
        "bytes"]["limit"] == 4 << 20
    extra = op.path("extra")
    os.makedirs(extra)
    write(os.path.join(extra, "e"), b"extra")
    out = op.ok("set", "live", "--layer", f"{op.path('live', 'input')}:/input",
                "--layer", f"{extra}:/extra")
    assert out.splitlines()[0] == "update live: layers (at next mount)"
    assert "  + /extra ro " + extra in out.splitlines()
    assert not os.path.exists(os.path.join(m, "extra"))
    assert op.ok("set", "live", "--bytes", "4M") == "unchanged live\n"
    op.ok("umount", "live")
    op.ok("mount", "live")
    with open(os.path.join(m, "extra", "e"), "rb") as f:
        assert f.read() == b"extra"
    op.ok("umount", "live")
    # a stopped workspace takes the change at its next mount
    assert op.ok("set", "live", "--bytes", "1M") == \
        "update live: bytes 4 MiB -> 1 MiB\n"
    op.ok("set", "live", "--no-layers")
    op.ok("mount", "live")
    # the graft point stays in the upper as an empty directory
    assert not os.path.exists(os.path.join(m, "extra", "e"))
    assert not os.path.exists(os.path.join(m, "input", "doc.txt"))
    assert write_errno(os.path.join(m, "c"), b"z" * 10) == errno.EDQUOT
    op.ok("umount", "live")


def test_rm_purge_needs_confirmation_and_never_follows_links(operator):
    op = operator
    declare(op, "doomed")
    outside = op.path("outside")
    os.makedirs(outside)
    write(os.path.join(outside, "precious"), b"host data")
    op.ok("mount", "doomed")
    m = op.ls()["doomed"]["mountpoint"]
    os.makedirs(os.path.join(m, "d", "e"))
    write(os.path.join(m, "d", "e", "f"), b"work")
    os.symlink(outside, os.path.join(m, "link-to-outside"))
    os.symlink(os.path.join(outside, "precious"), os.path.join(m, "d", "l"))
    op.ok("umount", "doomed")
    before = dump(op)
    # no terminal and no --yes: refused, nothing removed
    line = op.fails(USAGE, "rm", "doomed", "--purge", input="y\n")
    assert "--yes" in line
    assert dump(op) == before and os.path.isdir(op.path("doomed", "upper"))
    out = op.ok("rm", "doomed", "--purge", "--yes")
    assert out.splitlines()[0] == "removed doomed"
    assert out.splitlines()[1].startswith(
        f"deleted {op.path('doomed', 'upper')} (")
    assert not os.path.exists(op.path("doomed", "upper"))
    with open(os.path.join(outside, "precious"), "rb") as f:
        assert f.read() == b"host data"
    assert "doomed" not in op.ls()
    # its quota row went with it; the audit records stay and verify
    assert dump(op)["quotas"] == []
    assert op.ok("audit", "verify").startswith("OK")


def test_rm_purge_on_a_terminal_asks(operator):
    """The prompt reads the answer from the terminal; 'n' keeps all."""
    op = operator
    declare(op, "asked")
    upper = op.path("asked", "upper")
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(op.wsctl_bin, [op.wsctl_bin, "--state", op.state, "rm",
                                "asked", "--purge"])
    out = b""
    deadline = time.time() + 10
    while b"[y/N]" not in out and time.time() < deadline:
        try:
            out += os.read(fd, 1024)
        except OSError:
            break
    assert upper.encode() in out
    os.write(fd, b"n\n")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.WEXITSTATUS(status) == ERR
    assert "asked" in op.ls() and os.path.isdir(upper)


def test_edit_reads_back_what_create_stored(operator):
    """A definition made on the command line, shown in the editor and saved
    with only a comment added, converges to 'unchanged': the YAML form and
    the stored one agree field by field, layer order included."""
    op = operator
    team = op.path("team")
    os.makedirs(team)
    declare(op, "round", "--shared", f"{team}:/shared", "--ephemeral", "/tmp",
            "--bytes", "3M", "--inodes", "77", "--audit", "full",
            "--allow-other", "--mountpoint", op.path("m n"))
    op.ok("create", "allscratch", "--layer", f"{team}:/input",
          "--ephemeral", "--bytes", "1G")
    editor = op.path("touch-editor.sh")
    with open(editor, "w") as f:
        f.write('#!/bin/sh\necho "# looked at it" >> "$1"\n')
    os.chmod(editor, 0o755)
    env = dict(os.environ, EDITOR=editor, VISUAL="")
    before = dump(op)
    for name in ("round", "allscratch"):
        assert op.ok("edit", name, env=env) == f"unchanged {name}\n"
    assert dump(op) == before
