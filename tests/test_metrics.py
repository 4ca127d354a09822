"""The Prometheus metrics file (-o metrics=FILE) and `wsctl top`.

The metrics file is read with a strict parser of the text exposition
format 0.0.4 written here (there is no prometheus_client on the test
hosts): every sample's family must be declared by HELP and TYPE lines
before it, names and label names must match the format's regular
expressions, label values may hold only the three escapes, values must be
floats, and no series may appear twice.

Every workspace comes from conftest's make_ws, which unmounts it and ends
its daemon by pid whatever the test did; the metrics files live in the
test's temporary directory, which the fixture removes.
"""
import errno
import json
import os
import re
import stat
import subprocess
import threading
import time

import pytest

from conftest import WSCTL, WSFS, as_user, is_mounted

U1, G1 = 1000, 1000
NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
FLOAT_RE = re.compile(
    r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z|[+-]?Inf\Z|NaN\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


# ------------------------------------------------------------------ parser

class PromError(Exception):
    pass


def parse_labels(text, pos):
    """Parses '{a="x",b="y"}' starting at TEXT[POS] == '{'; returns
    (labels dict, position after '}')."""
    labels = {}
    pos += 1
    while True:
        if text[pos] == "}":
            return labels, pos + 1
        m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(text, pos)
        if not m:
            raise PromError(f"bad label name at {text[pos:]!r}")
        name = m.group(0)
        pos = m.end()
        if text[pos:pos + 2] != '="':
            raise PromError(f"expected =\" after {name}")
        pos += 2
        value = []
        while True:
            if pos >= len(text):
                raise PromError("unterminated label value")
            c = text[pos]
            if c == "\\":
                nxt = text[pos + 1:pos + 2]
                if nxt not in ("\\", '"', "n"):
                    raise PromError(f"bad escape \\{nxt}")
                value.append("\n" if nxt == "n" else nxt)
                pos += 2
            elif c == '"':
                pos += 1
                break
            elif c == "\n":
                raise PromError("raw newline in a label value")
            else:
                value.append(c)
                pos += 1
        if name in labels:
            raise PromError(f"label {name} twice")
        labels[name] = "".join(value)
        if text[pos] == ",":
            pos += 1
        elif text[pos] != "}":
            raise PromError(f"expected , or }} at {text[pos:]!r}")


def parse_prom(data):
    """Returns ({(name, frozenset(labels.items())): value}, {name: type})."""
    text = data.decode("utf-8")     # the format is UTF-8; raises if not
    if text and not text.endswith("\n"):
        raise PromError("does not end with a newline")
    helps, types, samples = {}, {}, {}
    for line in text.split("\n")[:-1]:
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME_RE.match(name):
                    raise PromError(f"bad name {name!r}")
                table = helps if parts[1] == "HELP" else types
                if name in table:
                    raise PromError(f"{parts[1]} {name} twice")
                if parts[1] == "TYPE":
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise PromError(f"bad TYPE line {line!r}")
                    if any(k[0] == name for k in samples):
                        raise PromError(f"TYPE {name} after its samples")
                table[name] = parts[3] if len(parts) == 4 else ""
            continue
        if not line.strip():
            raise PromError("blank line")
        m = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").match(line)
        if not m:
            raise PromError(f"bad sample line {line!r}")
        name, pos = m.group(0), m.end()
        labels = {}
        if pos < len(line) and line[pos] == "{":
            labels, pos = parse_labels(line, pos)
        rest = line[pos:]
        if not rest.startswith(" "):
            raise PromError(f"no value in {line!r}")
        fields = rest.split()
        if len(fields) not in (1, 2) or not FLOAT_RE.match(fields[0]):
            raise PromError(f"bad value in {line!r}")
        if name not in types or name not in helps:
            raise PromError(f"{name} has no HELP or TYPE")
        for k in labels:
            if not LABEL_RE.match(k):
                raise PromError(f"bad label name {k!r}")
        key = (name, frozenset(labels.items()))
        if key in samples:
            raise PromError(f"duplicate series {line!r}")
        samples[key] = float(fields[0])
    return samples, types


def parser_rejects(data):
    try:
        parse_prom(data)
    except (PromError, UnicodeDecodeError):
        return True
    return False


def test_the_parser_is_strict():
    ok = (b'# HELP a_total x\n# TYPE a_total counter\n'
          b'a_total{w="q\\"\\\\\\n"} 1.5e3\n')
    s, _ = parse_prom(ok)
    assert s[("a_total", frozenset({"w": 'q"\\\n'}.items()))] == 1500
    for bad in (ok[:-1],                                   # no final newline
                b"a 1\n",                                  # undeclared
                ok + b'a_total{w="q\\"\\\\\\n"} 2\n',       # duplicate
                ok.replace(b"1.5e3", b"1,5"),              # bad float
                ok.replace(b'\\"', b'\\t'),                # bad escape
                ok.replace(b"counter", b"countr"),         # bad type
                ok + b"\n",                                # blank line
                ok.replace(b"{w=", b"{9w=")):              # bad label
        assert parser_rejects(bad), bad


# ----------------------------------------------------------------- helpers

def prom_path(w):
    return os.path.join(os.path.dirname(w.base), f"{w.name}.prom")


def metrics_ws(make_ws, interval=1, extra="", **kw):
    """A workspace whose metrics file is <tmpbase>/<name>.prom."""
    w = make_ws(mount=False, **kw)
    w.options += f",metrics={prom_path(w)},metrics_interval={interval}{extra}"
    w.mount()
    return w


def read_metrics(w):
    with open(prom_path(w), "rb") as f:
        return parse_prom(f.read())[0]


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def wsctl_json(w, *args):
    r = w.wsctl(*args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def status(w):
    return wsctl_json(w, "status", w.name)


def quota(w):
    return wsctl_json(w, "quota", "show", w.name)


def file_id(path):
    st = os.stat(path)
    return (st.st_ino, st.st_mtime_ns)


def wait_rewrite(w, timeout=5.0):
    """Waits until the metrics file has been replaced once more."""
    before = file_id(prom_path(w))
    deadline = time.time() + timeout
    while time.time() < deadline:
        if file_id(prom_path(w)) != before:
            return
        time.sleep(0.02)
    raise AssertionError("the metrics file was not rewritten")


def quiet_snapshot(w):
    """(status, quota, metrics) taken while nothing changes: status and
    quota agree before and after a rewrite of the file."""
    drop = ("uptime_s",)
    for _ in range(10):
        s1, q1 = status(w), quota(w)
        # The second rewrite's snapshot was certainly taken after s1.
        wait_rewrite(w)
        wait_rewrite(w)
        m = read_metrics(w)
        s2, q2 = status(w), quota(w)
        same = ({k: v for k, v in s1.items() if k not in drop} ==
                {k: v for k, v in s2.items() if k not in drop}) and q1 == q2
        if same and s2.get("audit.queued", 0) == 0:
            return s2, q2, m
    raise AssertionError("the workspace never went quiet")


def write_file(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def one_stderr_line(r):
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# ----------------------------------------------------------- metrics file

def test_file_is_written_at_mount_and_every_interval(make_ws):
    w = metrics_ws(make_ws, interval=1)
    # Written before wsfs returned: no wait.
    m = read_metrics(w)
    assert value(m, "wsfs_mounted", workspace=w.name) == 1
    assert os.stat(prom_path(w)).st_mode & 0o777 == 0o644
    first = file_id(prom_path(w))
    time.sleep(2.5)
    assert file_id(prom_path(w)) != first
    # Only the .prom file: no temporary is left next to it.
    assert sorted(os.listdir(os.path.dirname(prom_path(w)))) == \
        sorted(["w0", os.path.basename(prom_path(w))])


def test_every_sample_has_the_workspace_label_and_conventional_names(make_ws):
    w = metrics_ws(make_ws)
    m = read_metrics(w)
    with open(prom_path(w), "rb") as f:
        _, types = parse_prom(f.read())
    for (name, labels), _v in m.items():
        assert dict(labels)["workspace"] == w.name
        assert name.startswith("wsfs_")
        if types[name] == "counter":
            assert name.endswith("_total"), name
    ops = {dict(l)["op"] for n, l in m if n == "wsfs_operations_total"}
    assert {"lookup", "write", "read", "create", "flock"} <= ops
    errnos = {dict(l)["errno"] for n, l in m if n == "wsfs_denials_total"}
    assert {"EACCES", "EPERM", "EROFS", "EDQUOT", "ENOSPC", "EXDEV",
            "other"} <= errnos
    assert "ENOENT" not in errnos
    # No limits were set: the limit families are absent, not +Inf.
    assert not any(n.startswith("wsfs_quota_limit") or
                   n.startswith("wsfs_quota_soft_limit") for n, _ in m)


def test_a_reader_never_sees_a_partial_file(make_ws):
    w = metrics_ws(make_ws, interval=1)
    stop = threading.Event()

    def churn():
        i = 0
        while not stop.is_set():
            write_file(w.p(f"c{i % 50}"), b"x" * (i % 5000))
            i += 1

    t = threading.Thread(target=churn)
    t.start()
    changes, last = 0, None
    try:
        deadline = time.time() + 3.5
        reads = 0
        while reads < 2000 or time.time() < deadline:
            with open(prom_path(w), "rb") as f:
                data = f.read()
                ino = os.fstat(f.fileno()).st_ino
            changes += last is not None and ino != last
            last = ino
            assert data.endswith(b"\n")
            parse_prom(data)
            reads += 1
            time.sleep(0.001)
    finally:
        stop.set()
        t.join()
    # The file was replaced while it was being read, more than once.
    assert changes >= 2, changes


def test_figures_equal_status_and_quota_show(make_ws):
    w = metrics_ws(make_ws, interval=1,
                   extra=",quota_bytes=10M,quota_inodes=1000,"
                         "quota_soft_bytes=5M")
    os.mkdir(w.p("d"))
    for i in range(7):
        write_file(w.p("d", f"f{i}"), b"a" * (100000 + i))
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")        # so that the read reaches the daemon
    with open(w.p("d", "f3"), "rb") as f:
        assert len(f.read()) == 100003
    held = open(w.p("d", "f0"), "rb")        # one open file
    try:
        s, q, m = quiet_snapshot(w)
    finally:
        held.close()
    ws = w.name

    def v(name, **labels):
        return value(m, name, workspace=ws, **labels)

    assert q["bytes"]["used"] >= 7 * 100000
    assert q["inodes"]["used"] == 8
    assert v("wsfs_quota_used_bytes") == q["bytes"]["used"]
    assert v("wsfs_quota_limit_bytes") == q["bytes"]["limit"] == 10 << 20
    assert v("wsfs_quota_soft_limit_bytes") == q["bytes"]["soft"] == 5 << 20
    assert v("wsfs_quota_used_inodes") == q["inodes"]["used"]
    assert v("wsfs_quota_limit_inodes") == q["inodes"]["limit"] == 1000
    assert v("wsfs_quota_soft_limit_inodes") is None    # not set
    assert v("wsfs_written_bytes_total") == s["bytes_written"] == \
        sum(100000 + i for i in range(7))
    assert v("wsfs_read_bytes_total") == s["bytes_read"] >= 100003
    assert v("wsfs_open_files") == s["open_files"] == 1
    assert v("wsfs_open_dirs") == s["open_dirs"]
    assert v("wsfs_locks_held") == s["locks.held"]
    assert v("wsfs_locks_waiting") == s["locks.waiting"]
    assert v("wsfs_shared_bytes") == s["shared.bytes"]
    assert v("wsfs_shared_inodes") == s["shared.inodes"]
    assert v("wsfs_cached_inodes") == s["cached_inodes"]
    assert v("wsfs_cached_fds") == s["cached_fds"]
    assert v("wsfs_fd_cache_limit") == s["fd_cache_limit"]
    assert v("wsfs_start_time_seconds") == s["start_time"]
    assert abs(v("wsfs_uptime_seconds") - s["uptime_s"]) < 3
    assert v("wsfs_audit_queued_records") == s["audit.queued"]
    assert v("wsfs_audit_written_records_total") == s["audit.written"] > 0
    assert v("wsfs_audit_lost_records_total") == s["audit.lost"]
    assert v("wsfs_audit_failing") == s["audit.failing"] == 0
    assert v("wsfs_audit_checkpoints_total") == s["audit.checkpoints"]
    if s["audit.last_checkpoint_ns"]:
        assert v("wsfs_audit_last_checkpoint_timestamp_seconds") == \
            pytest.approx(s["audit.last_checkpoint_ns"] / 1e9, abs=1e-6)
    ops = {dict(l)["op"]: val for (n, l), val in m.items()
           if n == "wsfs_operations_total"}
    assert ops["write"] >= 7
    for op, n in ops.items():
        assert n == s["ops"].get(op, 0), op
    assert set(s["ops"]) <= set(ops)
    denied = {dict(l)["errno"]: val for (n, l), val in m.items()
              if n == "wsfs_denials_total"}
    for e, n in denied.items():
        assert n == s.get(f"denied.{e}", 0), e
    info = v("wsfs_info", mountpoint=s["mountpoint"], upper=s["upper"])
    assert info == 1


def test_counters_grow_with_more_work(make_ws):
    w = metrics_ws(make_ws, interval=1)
    wait_rewrite(w)
    before = read_metrics(w)
    write_file(w.p("big"), b"z" * 300000)
    with open(w.p("big"), "rb") as f:
        f.read()
    wait_rewrite(w)
    wait_rewrite(w)
    after = read_metrics(w)
    ws = w.name
    grew = (value(after, "wsfs_written_bytes_total", workspace=ws) -
            value(before, "wsfs_written_bytes_total", workspace=ws))
    assert grew == 300000
    assert value(after, "wsfs_operations_total", workspace=ws, op="create") \
        == value(before, "wsfs_operations_total", workspace=ws,
                 op="create") + 1
    assert value(after, "wsfs_quota_used_bytes", workspace=ws) > \
        value(before, "wsfs_quota_used_bytes", workspace=ws)
    assert value(after, "wsfs_uptime_seconds", workspace=ws) > \
        value(before, "wsfs_uptime_seconds", workspace=ws)


def test_denials_are_counted_by_errno(make_ws, tmpbase):
    src = os.path.join(tmpbase, "ro-src")
    os.makedirs(src)
    os.chmod(src, 0o777)
    write_file(os.path.join(src, "a.txt"), b"input")
    w = metrics_ws(make_ws, interval=1,
                   extra=f",layer={src}:/input:ro,quota_bytes=64K")
    os.chmod(w.p(), 0o777)
    ws = w.name
    # EROFS: a read-only layer, as root and as an agent.
    with pytest.raises(OSError) as ei:
        write_file(w.p("input", "a.txt"), b"x")
    assert ei.value.errno == errno.EROFS
    assert as_user(U1, G1, lambda: os.mkdir(w.p("input", "new"))) == \
        -errno.EROFS
    # EDQUOT: past the byte limit.
    with pytest.raises(OSError) as ei:
        write_file(w.p("big"), b"b" * (128 << 10))
    assert ei.value.errno == errno.EDQUOT
    # EPERM: the daemon refuses devices.
    with pytest.raises(OSError) as ei:
        os.mknod(w.p("dev"), stat.S_IFCHR | 0o600, os.makedev(1, 3))
    assert ei.value.errno == errno.EPERM
    # Misses are answers, not denials.
    for i in range(5):
        assert not os.path.exists(w.p(f"missing{i}"))
    # EACCES for mode bits is the kernel's (default_permissions): the
    # request never reaches the daemon, so nothing is counted for it.
    write_file(w.p("secret"), b"s")
    os.chmod(w.p("secret"), 0o600)
    assert as_user(U1, G1, lambda: os.open(w.p("secret"), os.O_RDONLY)) == \
        -errno.EACCES
    s, _q, m = quiet_snapshot(w)
    denied = {dict(l)["errno"]: val for (n, l), val in m.items()
              if n == "wsfs_denials_total"}
    assert denied["EROFS"] == s["denied.EROFS"] == 2
    assert denied["EDQUOT"] == s["denied.EDQUOT"] >= 1
    assert denied["EPERM"] == s["denied.EPERM"] == 1
    assert denied["EACCES"] == s.get("denied.EACCES", 0) == 0
    assert "denied.ENOENT" not in s
    for e, n in denied.items():
        assert n == s.get(f"denied.{e}", 0), e
    # wsctl status shows them too, as flat keys.
    r = w.wsctl("status", ws)
    assert re.search(r"^denied\.EROFS:\s+2$", r.stdout, re.M), r.stdout
    assert value(m, "wsfs_quota_limit_bytes", workspace=ws) == 64 << 10


BAD_OPTIONS = [
    ("metrics=relative.prom", "absolute"),
    ("metrics={base}/no-such-dir/x.prom", "No such file"),
    ("metrics={base}/x.prom,metrics_interval=0", "1 to 3600"),
    ("metrics={base}/x.prom,metrics_interval=-1", "1 to 3600"),
    ("metrics={base}/x.prom,metrics_interval=abc", "1 to 3600"),
    ("metrics={base}/x.prom,metrics_interval=3601", "1 to 3600"),
    ("metrics={base}/x.prom,metrics_interval=99999999999999999999",
     "1 to 3600"),
    ("metrics={base}/x.prom,metrics_interval=", "1 to 3600"),
    ("metrics={base}", "directory"),
    ("metrics={base}/,metrics_interval=5", "not a file name"),
    ("metrics_interval=5", "needs metrics="),
]


@pytest.mark.parametrize("opt,why", BAD_OPTIONS)
def test_bad_metrics_options_fail_the_mount(make_ws, tmpbase, opt, why):
    w = make_ws(mount=False)
    w.options += "," + opt.format(base=tmpbase)
    r = w.mount(check=False)
    assert r.returncode != 0
    line = one_stderr_line(r)
    assert line.startswith("wsfs: ") and why in line, line
    assert not is_mounted(w.mnt)
    assert not os.path.exists(os.path.join(tmpbase, "x.prom"))


def test_odd_paths_are_escaped_in_labels(make_ws):
    # Only the mountpoint is odd: it is an argument of its own, while the
    # upper goes through -o, where libfuse takes a backslash as an escape.
    w = make_ws(mount=False)
    w.mnt = os.path.join(w.base, 'odd "quoted" \\back\\ dir')
    os.makedirs(w.mnt)
    w.options += f",metrics={prom_path(w)}"
    w.mount()
    with open(prom_path(w), "rb") as f:
        raw = f.read()
    assert b'\\"quoted\\" \\\\back\\\\ dir' in raw
    m = read_metrics(w)
    mnt = os.path.realpath(w.mnt)
    assert value(m, "wsfs_info", workspace=w.name, mountpoint=mnt,
                 upper=os.path.realpath(w.upper)) == 1
    assert status(w)["mountpoint"] == mnt


def test_unmount_leaves_a_final_file_with_mounted_zero(make_ws):
    w = metrics_ws(make_ws, interval=3600)      # no periodic rewrite
    write_file(w.p("last"), b"L" * 4321)
    s = status(w)
    w.umount()
    assert not is_mounted(w.mnt)
    m = read_metrics(w)
    assert value(m, "wsfs_mounted", workspace=w.name) == 0
    # The work done since the mount-time file is in the final one.
    assert value(m, "wsfs_written_bytes_total", workspace=w.name) == \
        s["bytes_written"] == 4321
    assert sorted(os.listdir(os.path.dirname(prom_path(w)))) == \
        sorted(["w0", os.path.basename(prom_path(w))])


# --------------------------------------------------------------- wsctl top

def top(state, *args, timeout=60):
    return subprocess.run([WSCTL, "--state", state, "top"] + list(args),
                          capture_output=True, timeout=timeout)


def frames(out):
    """Frames of non-tty output: lists of rows, each a dict by heading."""
    result = []
    for block in out.split("\n\n"):
        lines = [l for l in block.split("\n") if l]
        assert lines[0].startswith("wsctl top - "), lines
        head = re.split(r"\s{2,}", lines[1].strip())
        rows = {}
        for line in lines[2:]:
            cells = re.split(r"\s{2,}", line.strip())
            assert len(cells) == len(head), (head, cells)
            rows[cells[0]] = dict(zip(head, cells))
        result.append(rows)
    return result


def qformat_size(v):
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    u, div = 0, 1
    while u + 1 < len(units) and v // div >= 1024:
        div <<= 10
        u += 1
    if v % div == 0:
        return f"{v // div} {units[u]}"
    return f"{v / div:.1f} {units[u]}"


def test_top_shows_every_mounted_workspace(make_ws):
    a = make_ws(options="allow_other,quota_bytes=10M")
    b = make_ws(mount=False)
    b.state = a.state
    b.mount()
    write_file(a.p("f"), b"a" * 300000)
    write_file(b.p("g"), b"b" * 5000)
    r = top(a.state, "--iterations", "2", "--interval", "0.5")
    assert r.returncode == 0, r.stderr
    assert b"\x1b" not in r.stdout
    out = r.stdout.decode()
    fs = frames(out)
    assert len(fs) == 2
    qa, qb = quota(a), quota(b)
    for rows in fs:
        assert set(rows) == {a.name, b.name}
        assert rows[a.name]["USED"] == qformat_size(qa["bytes"]["used"])
        assert rows[b.name]["USED"] == qformat_size(qb["bytes"]["used"])
        assert rows[a.name]["LIMIT"] == "10 MiB"
        assert rows[b.name]["LIMIT"] == "none"
        assert rows[a.name]["INODES"] == str(qa["inodes"]["used"])


def test_top_skips_a_dead_workspace_and_counts_it(make_ws):
    a = make_ws()
    b = make_ws(mount=False)
    b.state = a.state
    b.mount()
    b.kill()
    assert b.wait_exit()
    r = top(a.state, "--iterations", "1")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "1 mounted, 1 stale not shown" in out.splitlines()[0]
    assert set(frames(out)[0]) == {a.name}


def test_top_rates_follow_a_running_writer(make_ws):
    w = make_ws()
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            write_file(w.p(f"f{i % 20}"), b"w" * 65536)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        r = top(w.state, "--iterations", "3", "--interval", "0.5")
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stderr
    fs = frames(r.stdout.decode())
    assert "rates since mount" in r.stdout.decode().splitlines()[0]
    for rows in fs[1:]:
        row = rows[w.name]
        assert float(row["OPS/S"]) > 0, row
        assert row["WRITE/S"] != "0 B", row
    # Once the writer has stopped, the rates fall to zero.
    r = top(w.state, "--iterations", "2", "--interval", "0.3")
    last = frames(r.stdout.decode())[-1][w.name]
    assert float(last["OPS/S"]) == 0 and last["WRITE/S"] == "0 B", last


@pytest.mark.parametrize("args", [
    ["--interval", "0"], ["--interval", "abc"], ["--interval", "-1"],
    ["--interval", "nan"], ["--iterations", "0"], ["--iterations", "-3"],
    ["--iterations", "x"], ["--bogus"], ["extra"], ["--interval"],
    ["--iterations=1.5"],
])
def test_top_bad_arguments_are_usage_errors(tmpbase, args):
    r = subprocess.run([WSCTL, "--state", os.path.join(tmpbase, "state"),
                        "top"] + args, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    line = one_stderr_line(r)
    assert line.startswith("wsctl: ") and "usage: " in line, line
