"""`wsctl` against real daemons: `ls` (table and JSON, mounted, stale,
gone, empty), `status` (fields, and counters that follow real activity
through the mount), its error and usage-error contract, and WSFS_STATE.

Every workspace comes from conftest's make_ws, which unmounts it and ends its
daemon by pid whatever the test did.
"""
import json
import os
import re
import signal
import stat
import subprocess
import time

from conftest import WSCTL, pid_alive

MiB = 1 << 20
LS_KEYS = {"name", "mountpoint", "upper", "pid", "start_time", "socket",
           "state"}


# ---------------------------------------------------------------- helpers

def wsctl(*args, state=None, env=None):
    argv = [WSCTL] + (["--state", state] if state is not None else [])
    return subprocess.run(argv + list(args), capture_output=True, text=True,
                          timeout=30, env=env)


def err_lines(r):
    return [l for l in r.stderr.splitlines() if l.strip()]


def one_error_line(r, status):
    """R failed with STATUS and said why on exactly one 'wsctl: ' line."""
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    lines = err_lines(r)
    assert len(lines) == 1, f"expected one stderr line, got {lines}"
    assert lines[0].startswith("wsctl: "), lines[0]
    assert r.stdout == "", r.stdout
    return lines[0]


def ls_rows(w):
    r = w.wsctl("ls")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "MOUNTPOINT", "PID", "STATE", "BYTES",
                                "INODES"], lines
    return [l.split()[:4] for l in lines[1:]]


def ls_json(w):
    r = w.wsctl("ls", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert isinstance(data, list)
    return data


def status(w):
    r = w.wsctl("status", w.name, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def wait_dead(pid, timeout=5.0):
    deadline = time.time() + timeout
    while pid_alive(pid) and time.time() < deadline:
        time.sleep(0.02)
    return not pid_alive(pid)


def poll_status(w, pred, timeout=5.0):
    """The first status for which PRED holds, or the last one seen."""
    deadline = time.time() + timeout
    s = status(w)
    while not pred(s) and time.time() < deadline:
        time.sleep(0.02)
        s = status(w)
    return s


def op(s, name):
    return s["ops"].get(name, 0)


def write_file(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view[:128 << 10]):]
    finally:
        os.close(fd)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


# ---------------------------------------------------------------------- ls

def test_ls_lists_a_mounted_workspace(ws):
    rows = ls_rows(ws)
    assert rows == [[ws.name, os.path.realpath(ws.mnt), str(ws.pid),
                     "mounted"]]


def test_ls_json_has_the_documented_keys_and_values(ws):
    before = int(time.time())
    data = ls_json(ws)
    assert len(data) == 1, data
    m = data[0]
    assert LS_KEYS <= set(m), m
    assert m["name"] == ws.name
    assert m["mountpoint"] == os.path.realpath(ws.mnt)
    assert m["upper"] == os.path.realpath(ws.upper)
    assert m["pid"] == ws.pid and isinstance(m["pid"], int)
    assert isinstance(m["start_time"], int)
    assert before - 120 <= m["start_time"] <= before + 1
    assert m["socket"] == os.path.join(ws.state, "run", f"{ws.name}.sock")
    assert stat.S_ISSOCK(os.stat(m["socket"]).st_mode)
    assert m["state"] == "mounted"


def test_ls_shows_stale_after_sigkill(ws):
    pid = ws.pid
    ws.kill(signal.SIGKILL)
    assert wait_dead(pid)
    assert ls_rows(ws) == [[ws.name, os.path.realpath(ws.mnt), str(pid),
                            "stale"]]
    data = ls_json(ws)
    assert [(m["name"], m["pid"], m["state"]) for m in data] == [
        (ws.name, pid, "stale")]


def test_ls_row_gone_after_clean_unmount(ws):
    assert len(ls_rows(ws)) == 1
    ws.umount()
    assert ws.pid is None, "the daemon did not exit after fusermount3 -u"
    assert ls_rows(ws) == []
    r = ws.wsctl("ls", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == [], r.stdout


def test_ls_empty_state_dir(tmpbase):
    empty = os.path.join(tmpbase, "empty-state")
    os.mkdir(empty)
    r = wsctl("ls", state=empty)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split() == [
        "NAME", "MOUNTPOINT", "PID", "STATE", "BYTES", "INODES"], r.stdout
    assert len(r.stdout.splitlines()) == 1, r.stdout
    r = wsctl("ls", "--json", state=empty)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]" and json.loads(r.stdout) == []
    # a reader writes nothing: listing works even where it could not write
    assert os.listdir(empty) == []
    r = wsctl("status", "nope", state=empty)
    assert r.returncode == 3 and "no workspace named 'nope'" in r.stderr
    assert os.listdir(empty) == []


# ------------------------------------------------------------------ status

def test_status_human_output(ws):
    write_file(ws.p("f"), b"hello")
    assert read_file(ws.p("f")) == b"hello"
    r = ws.wsctl("status", ws.name)
    assert r.returncode == 0, r.stderr
    fields, ops = {}, {}
    in_ops = False
    for line in r.stdout.splitlines():
        if line.startswith("  ") and in_ops:
            k, v = line.split()
            ops[k] = int(v)
            continue
        key, sep, val = line.partition(":")
        assert sep, line
        fields[key] = val.strip()
        in_ops = key == "ops"
    for key in ("name", "mountpoint", "upper", "pid", "start_time", "uptime",
                "read_only", "ops", "bytes_read", "bytes_written",
                "open_files", "open_dirs", "cached_inodes", "cached_fds",
                "fd_cache_limit"):
        assert key in fields, (key, r.stdout)
    assert fields["name"] == ws.name
    assert fields["mountpoint"] == os.path.realpath(ws.mnt)
    assert fields["pid"] == str(ws.pid)
    assert re.fullmatch(r"\d+(\.\d)?s|(\d+d )?(\d+h )?\d+m \d\ds",
                        fields["uptime"]), fields["uptime"]
    assert fields["read_only"] == "0"
    assert ops.get("create", 0) >= 1 and ops.get("write", 0) >= 1, ops
    assert int(fields["bytes_written"].split()[0]) >= 5
    assert int(fields["cached_inodes"]) > 0


def test_status_json_counters_follow_activity(ws):
    s0 = status(ws)
    assert s0["name"] == ws.name and s0["pid"] == ws.pid
    assert s0["mountpoint"] == os.path.realpath(ws.mnt)
    assert s0["upper"] == os.path.realpath(ws.upper)
    assert s0["read_only"] == 0
    assert isinstance(s0["uptime_s"], (int, float)) and s0["uptime_s"] >= 0
    assert isinstance(s0["ops"], dict)
    for key in ("bytes_read", "bytes_written", "open_files", "open_dirs",
                "cached_inodes", "cached_fds", "fd_cache_limit"):
        assert isinstance(s0[key], int), (key, s0)

    # creates: exactly one create per new file
    for i in range(5):
        os.close(os.open(ws.p(f"c{i}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o644))
    s1 = status(ws)
    assert op(s1, "create") - op(s0, "create") == 5, (s0["ops"], s1["ops"])

    # writes: 1 MiB through the mount
    data = os.urandom(MiB)
    write_file(ws.p("big"), data)
    s2 = status(ws)
    assert s2["bytes_written"] - s1["bytes_written"] >= MiB, (s1, s2)
    assert op(s2, "write") > op(s1, "write")
    assert os.path.getsize(ws.u("big")) == MiB

    # reads: from the daemon, not the page cache
    drop_caches()
    assert read_file(ws.p("big")) == data
    s3 = status(ws)
    assert s3["bytes_read"] - s2["bytes_read"] >= MiB, (s2, s3)
    assert op(s3, "read") > op(s2, "read")

    # and a file the kernel has never cached at all
    fresh = os.urandom(256 << 10)
    write_file(ws.u("fresh"), fresh)
    assert read_file(ws.p("fresh")) == fresh
    s4 = status(ws)
    assert s4["bytes_read"] - s3["bytes_read"] >= len(fresh), (s3, s4)

    assert s4["cached_inodes"] > 0
    assert s4["uptime_s"] >= s0["uptime_s"]


def test_status_open_files_and_dirs(ws):
    for n in ("a", "b", "c"):
        write_file(ws.p(n), n.encode())
    os.mkdir(ws.p("d"))
    s = poll_status(ws, lambda s: s["open_files"] == 0 and s["open_dirs"] == 0)
    assert (s["open_files"], s["open_dirs"]) == (0, 0), s
    fds = []
    try:
        for n in ("a", "b", "c"):
            fds.append(os.open(ws.p(n), os.O_RDONLY))
        dfd = os.open(ws.p("d"), os.O_RDONLY | os.O_DIRECTORY)
        fds.append(dfd)
        os.listdir(dfd)
        s = status(ws)
        assert s["open_files"] == 3, s
        assert s["open_dirs"] == 1, s
    finally:
        for fd in fds:
            os.close(fd)
    s = poll_status(ws, lambda s: s["open_files"] == 0 and s["open_dirs"] == 0)
    assert (s["open_files"], s["open_dirs"]) == (0, 0), s


# ------------------------------------------------------------------ errors

def test_status_unknown_name(ws):
    line = one_error_line(ws.wsctl("status", "no-such-ws"), 3)
    assert "no-such-ws" in line


def test_status_dead_daemon(ws):
    pid = ws.pid
    ws.kill(signal.SIGKILL)
    assert wait_dead(pid)
    line = one_error_line(ws.wsctl("status", ws.name), 6)
    assert ws.name in line and "not running" in line, line
    line = one_error_line(ws.wsctl("status", ws.name, "--json"), 6)
    assert ws.name in line


def test_missing_state_dir(tmpbase):
    missing = os.path.join(tmpbase, "no-such-state")
    for args in (["ls"], ["ls", "--json"], ["status", "x"]):
        line = one_error_line(wsctl(*args, state=missing), 1)
        assert missing in line, line
    assert not os.path.exists(missing), "wsctl created the state directory"


def test_usage_errors(ws):
    cases = [
        ([], "no command"),
        (["frobnicate"], "frobnicate"),
        (["status"], "name"),
        (["status", "../x"], "../x"),
        (["ls", "--bogus"], "--bogus"),
        (["status", ws.name, "--bogus"], "--bogus"),
        (["ls", "extra"], "extra"),
    ]
    for args, word in cases:
        line = one_error_line(ws.wsctl(*args), 2)
        assert word in line, (args, line)
    line = one_error_line(subprocess.run(
        [WSCTL, "--bogus", "--state", ws.state, "ls"], capture_output=True,
        text=True, timeout=30), 2)
    assert "--bogus" in line


# ------------------------------------------------------------- environment

def test_wsfs_state_env_is_honoured(ws):
    env = dict(os.environ, WSFS_STATE=ws.state)
    r = wsctl("ls", env=env)
    assert r.returncode == 0, r.stderr
    assert [l.split()[:4] for l in r.stdout.splitlines()[1:]] == [
        [ws.name, os.path.realpath(ws.mnt), str(ws.pid), "mounted"]]
    r = wsctl("status", ws.name, "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["pid"] == ws.pid
    # and --state wins over it
    env = dict(os.environ, WSFS_STATE=os.path.join(ws.base, "elsewhere"))
    r = wsctl("ls", "--json", state=ws.state, env=env)
    assert r.returncode == 0, r.stderr
    assert [m["name"] for m in json.loads(r.stdout)] == [ws.name]
    r = wsctl("ls", env=env)
    assert r.returncode == 1 and "elsewhere" in r.stderr, r.stderr
