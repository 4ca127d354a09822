"""`wsctl quota set|show|ls` against real daemons.

A change on a mounted workspace must act on the very next operation (proved
by writes that fail with EDQUOT or succeed) and be saved in state.db (proved
by reading the `quotas` row after unmount and by a remount without quota
options).  A change on an unmounted workspace must be saved and enforced by
the next mount.  `show` and `ls` must report the figures the ledger charges
(a file of 10000 bytes is 12288 bytes, 4 KiB rounding, and 1 inode).  Every
bad command line must exit 2 with one "wsctl: " line and change nothing,
checked against both `show --json` and the raw row, mounted and unmounted.

Every workspace comes from conftest's make_ws, which unmounts it and ends its
daemon by pid whatever the test did.
"""
import errno
import json
import os
import signal
import sqlite3
import time

import pytest

from conftest import Workspace, pid_alive

KiB = 1024
MiB = 1 << 20
FILE_SIZE = 10000
FILE_CHARGE = 12288
COLUMNS = ("name, bytes, inodes, soft_bytes, soft_inodes, grace, warn, "
           "used_bytes, used_inodes, soft_bytes_since, soft_inodes_since, "
           "clean, upper, updated")


# ---------------------------------------------------------------- helpers

def write_file(path, size):
    """Writes SIZE bytes to a new file: 0, or the errno that stopped it."""
    data = b"x" * size
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as e:
        return e.errno
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    except OSError as e:
        return e.errno
    finally:
        os.close(fd)
    return 0


def db_row(w, name=None):
    db = sqlite3.connect(os.path.join(w.state, "state.db"), timeout=5)
    try:
        row = db.execute(f"SELECT {COLUMNS} FROM quotas WHERE name=?",
                         (name or w.name,)).fetchone()
    finally:
        db.close()
    return row


def row_dict(row):
    return dict(zip([c.strip() for c in COLUMNS.split(",")], row))


def wait_flushed(w, used_bytes, timeout=10.0):
    """Waits for the daemon's flusher (every 2 s) to save USED_BYTES, so
    the row stops changing by itself."""
    deadline = time.time() + timeout
    while row_dict(db_row(w))["used_bytes"] != used_bytes:
        assert time.time() < deadline, "usage never flushed"
        time.sleep(0.1)


def show(w, name=None):
    r = w.wsctl("quota", "show", name or w.name, "--json")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return json.loads(r.stdout)


def show_human(w):
    r = w.wsctl("quota", "show", w.name)
    assert r.returncode == 0, r.stderr
    return r.stdout


def ls_json(w):
    r = w.wsctl("quota", "ls", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert isinstance(data, list)
    return data


def quota_set(w, *args):
    r = w.wsctl("quota", "set", w.name, *args, "--json")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stderr == ""
    return json.loads(r.stdout)


def one_error_line(r, status):
    """R failed with STATUS and said why on exactly one 'wsctl: ' line."""
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one stderr line, got {lines}"
    assert lines[0].startswith("wsctl: "), lines[0]
    assert r.stdout == "", r.stdout
    return lines[0]


def remount(w, options="allow_other"):
    w.umount()
    assert w.pid is None
    w.options = options
    w.mount()


def share_state(make_ws, first, **kw):
    """A second workspace registered in FIRST's state directory."""
    w = make_ws(mount=False, **kw)
    w.state = first.state
    w.mount()
    return w


# ---------------------------------------------------------------- set, live

def test_set_live_takes_effect_at_once_and_is_saved(make_ws):
    w = make_ws(options="allow_other,quota_bytes=1M")
    assert show(w)["bytes"]["limit"] == MiB

    out = quota_set(w, "--bytes", "64K")
    assert out["mounted"] is True and out["source"] == "daemon"
    assert out["bytes"]["limit"] == 64 * KiB
    assert write_file(w.p("big"), 100 * KiB) == errno.EDQUOT
    os.unlink(w.p("big"))

    out = quota_set(w, "--bytes=none")
    assert out["bytes"]["limit"] is None
    assert write_file(w.p("big"), 100 * KiB) == 0
    assert os.path.getsize(w.p("big")) == 100 * KiB

    out = quota_set(w, "--bytes", "2M", "--inodes=100k", "--soft-bytes",
                    "1536K", "--soft-inodes", "50", "--grace", "2d",
                    "--warn", "50,75,90")
    assert out["bytes"]["limit"] == 2 * MiB
    assert out["bytes"]["soft"] == 1536 * KiB
    assert out["inodes"]["limit"] == 102400
    assert out["inodes"]["soft"] == 50
    assert out["grace_s"] == 2 * 86400
    assert out["warn"] == [50, 75, 90]
    # A 2 MiB file does not fit beside the 100 KiB one.
    assert write_file(w.p("huge"), 2 * MiB) == errno.EDQUOT

    w.umount()
    row = row_dict(db_row(w))
    assert row["bytes"] == 2 * MiB and row["inodes"] == 102400
    assert row["soft_bytes"] == 1536 * KiB and row["soft_inodes"] == 50
    assert row["grace"] == 2 * 86400 and row["warn"] == "50,75,90"

    remount(w, "allow_other")
    s = show(w)
    assert s["source"] == "daemon"
    assert s["bytes"]["limit"] == 2 * MiB and s["inodes"]["limit"] == 102400
    assert s["grace_s"] == 2 * 86400 and s["warn"] == [50, 75, 90]
    assert write_file(w.p("huge2"), 2 * MiB) == errno.EDQUOT


def test_set_live_only_given_fields_change(make_ws):
    w = make_ws(options="allow_other,quota_bytes=1M,quota_inodes=10,"
                "quota_warn=60:70")
    out = quota_set(w, "--inodes", "20")
    assert out["inodes"]["limit"] == 20
    assert out["bytes"]["limit"] == MiB
    assert out["warn"] == [60, 70]
    assert out["grace_s"] == 3600


# ---------------------------------------------------------------- set, unmounted

def test_set_unmounted_is_saved_for_next_mount(make_ws):
    w = make_ws()
    assert write_file(w.p("f"), FILE_SIZE) == 0
    w.umount()

    out = quota_set(w, "--bytes", "16K", "--inodes", "2")
    assert out["mounted"] is False and out["source"] == "state.db"
    assert out["bytes"] == {"used": FILE_CHARGE, "limit": 16 * KiB,
                            "soft": None, "soft_since": None,
                            "percent": 75.0, "warn_level": 0,
                            "warned_at": None}
    assert out["inodes"]["used"] == 1 and out["inodes"]["limit"] == 2
    assert out["inodes"]["percent"] == 50.0
    row = row_dict(db_row(w))
    assert row["bytes"] == 16 * KiB and row["inodes"] == 2
    assert show(w)["bytes"]["limit"] == 16 * KiB

    w.mount()
    s = show(w)
    assert s["source"] == "daemon"
    assert s["bytes"]["limit"] == 16 * KiB and s["inodes"]["limit"] == 2
    assert s["bytes"]["used"] == FILE_CHARGE and s["inodes"]["used"] == 1
    # 12 KiB + 8 KiB > 16 KiB; 12 KiB + 4 KiB fits exactly.
    assert write_file(w.p("g"), 8 * KiB) == errno.EDQUOT
    assert write_file(w.p("g"), 4 * KiB) == 0
    # Two inodes used of two: a third file is refused.
    with pytest.raises(OSError) as e:
        open(w.p("h"), "w").close()
    assert e.value.errno == errno.EDQUOT


def test_set_unmounted_keeps_other_fields(make_ws):
    w = make_ws(options="allow_other,quota_bytes=1M,quota_grace=5m")
    w.umount()
    before = row_dict(db_row(w))
    quota_set(w, "--warn", "none")
    after = row_dict(db_row(w))
    assert after["warn"] == "none"
    for k in ("bytes", "inodes", "soft_bytes", "soft_inodes", "grace",
              "used_bytes", "used_inodes", "clean", "upper"):
        assert after[k] == before[k], k
    assert after["grace"] == 300


def test_set_on_name_whose_daemon_died_before_its_quota_row(make_ws):
    """A stale mounts row with no quotas row: `show` says so (exit 1), `set`
    creates the row, and the next mount counts usage and enforces it."""
    w = make_ws()
    assert write_file(w.p("f"), FILE_SIZE) == 0
    w.kill(signal.SIGKILL)
    assert w.wait_exit()
    db = sqlite3.connect(os.path.join(w.state, "state.db"), timeout=5)
    with db:
        db.execute("DELETE FROM quotas WHERE name=?", (w.name,))
    db.close()

    msg = one_error_line(w.wsctl("quota", "show", w.name), 1)
    assert w.name in msg and "no quota record" in msg
    out = quota_set(w, "--bytes", "16K")
    assert out["bytes"]["limit"] == 16 * KiB
    row = row_dict(db_row(w))
    assert row["bytes"] == 16 * KiB and row["clean"] == 0

    w.mount()
    s = show(w)
    assert s["bytes"]["limit"] == 16 * KiB
    assert s["bytes"]["used"] == FILE_CHARGE
    assert write_file(w.p("g"), 8 * KiB) == errno.EDQUOT


# ---------------------------------------------------------------- show and ls

def test_show_figures(make_ws):
    w = make_ws(options="allow_other,quota_bytes=1M,quota_inodes=100")
    assert write_file(w.p("f"), FILE_SIZE) == 0
    s = show(w)
    assert s["name"] == w.name and s["mounted"] is True
    assert s["bytes"] == {"used": FILE_CHARGE, "limit": MiB, "soft": None,
                          "soft_since": None, "percent": 1.2,
                          "warn_level": 0, "warned_at": None}
    assert s["inodes"]["used"] == 1 and s["inodes"]["limit"] == 100
    assert s["inodes"]["percent"] == 1.0
    assert s["grace_s"] == 3600 and s["warn"] == [85, 95]

    text = show_human(w)
    lines = text.splitlines()
    assert lines[0].split() == ["workspace:", w.name, "(mounted)"]
    byte_line = next(l for l in lines if l.startswith("bytes:"))
    assert "12 KiB of 1 MiB" in byte_line and byte_line.endswith(" 1.2%")
    assert "[" + "-" * 20 + "]" in byte_line
    inode_line = next(l for l in lines if l.startswith("inodes:"))
    assert "1 of 100" in inode_line and inode_line.endswith(" 1.0%")
    assert any(l.startswith("grace period:") and l.endswith("1h")
               for l in lines)
    assert any(l.startswith("warnings at:") and l.endswith("85%, 95%")
               for l in lines)
    assert "warning" not in text.replace("warnings at:", "")

    # Unmounted: the same figures, from the saved row.
    w.umount()
    s2 = show(w)
    assert s2["mounted"] is False and s2["source"] == "state.db"
    assert s2["bytes"] == s["bytes"] and s2["inodes"] == s["inodes"]
    assert "(not mounted)" in show_human(w).splitlines()[0]


def test_show_no_limit_and_bar(make_ws):
    w = make_ws(options="allow_other,quota_bytes=16K")
    assert write_file(w.p("f"), FILE_SIZE) == 0
    text = show_human(w)
    byte_line = next(l for l in text.splitlines() if l.startswith("bytes:"))
    # 12 KiB of 16 KiB: 75%, 15 of 20 bar cells.
    assert "[" + "#" * 15 + "-" * 5 + "] 75.0%" in byte_line
    inode_line = next(l for l in text.splitlines() if l.startswith("inodes:"))
    assert inode_line.split(None, 1)[1] == "1, no limit"
    assert show(w)["inodes"]["percent"] is None


def test_show_warning_state(make_ws):
    w = make_ws(options="allow_other,quota_bytes=16K")
    assert write_file(w.p("f"), FILE_SIZE) == 0
    assert show(w)["bytes"]["warn_level"] == 0
    t0 = int(time.time())
    # 16 KiB of 16 KiB: crosses 85% and 95%.
    assert write_file(w.p("g"), 2000) == 0
    s = show(w)
    assert s["bytes"]["percent"] == 100.0
    assert s["bytes"]["warn_level"] == 95
    assert t0 - 1 <= s["bytes"]["warned_at"] <= time.time() + 1
    text = show_human(w)
    assert "bytes at or above 95% since " in text
    assert "[" + "#" * 20 + "]" in text


def test_show_soft_limit_grace(make_ws):
    w = make_ws(options="allow_other,quota_soft_bytes=8K,quota_grace=1h")
    t0 = int(time.time())
    assert write_file(w.p("f"), FILE_SIZE) == 0
    s = show(w)
    since = s["bytes"]["soft_since"]
    assert s["bytes"]["soft"] == 8 * KiB
    assert t0 - 1 <= since <= time.time() + 1
    text = show_human(w)
    assert "over the soft limit since" in text and "grace ends" in text
    end = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since + 3600))
    assert f"grace ends {end}" in text
    # Still within grace: more growth is allowed.
    assert write_file(w.p("g"), 4 * KiB) == 0

    quota_set(w, "--grace", "0")
    text = show_human(w)
    assert "grace expired: soft limit now enforced" in text
    assert write_file(w.p("h"), 4 * KiB) == errno.EDQUOT


def test_show_soft_limit_lifted_while_unmounted(make_ws):
    w = make_ws(options="allow_other,quota_soft_bytes=8K")
    assert write_file(w.p("f"), FILE_SIZE) == 0
    w.umount()
    since = row_dict(db_row(w))["soft_bytes_since"]
    assert since > 0
    assert show(w)["bytes"]["soft_since"] == since
    assert "over the soft limit since" in show_human(w)

    # Soft limit gone: the saved timer no longer means anything.
    out = quota_set(w, "--soft-bytes", "none")
    assert out["bytes"]["soft"] is None and out["bytes"]["soft_since"] is None
    assert "grace" not in show_human(w).replace("grace period:", "")


def test_show_soft_limit_set_while_unmounted(make_ws):
    w = make_ws()
    assert write_file(w.p("f"), FILE_SIZE) == 0
    w.umount()
    out = quota_set(w, "--soft-bytes", "4K", "--soft-inodes", "0")
    assert out["bytes"]["soft_since"] is None
    assert out["inodes"]["soft_since"] is None
    text = show_human(w)
    assert text.count("over the soft limit; the grace period starts at "
                      "the next mount") == 2
    t0 = int(time.time())
    w.mount()
    s = show(w)
    assert t0 - 1 <= s["bytes"]["soft_since"] <= time.time() + 1
    assert t0 - 1 <= s["inodes"]["soft_since"] <= time.time() + 1
    assert "grace ends" in show_human(w)


def test_ls_mounted_and_stopped(make_ws):
    base = os.getpid()
    a = make_ws(name=f"qa{base}-a",
                options="allow_other,quota_bytes=1M,quota_inodes=100")
    b = share_state(make_ws, a, name=f"qa{base}-b",
                    options="allow_other,quota_inodes=10")
    assert write_file(a.p("f"), FILE_SIZE) == 0
    assert write_file(b.p("f1"), FILE_SIZE) == 0
    assert write_file(b.p("f2"), 2 * FILE_SIZE) == 0
    b.umount()

    data = ls_json(a)
    assert [o["name"] for o in data] == [a.name, b.name]
    oa, ob = data
    assert oa["mounted"] is True and oa["source"] == "daemon"
    assert oa["bytes"]["used"] == FILE_CHARGE and oa["bytes"]["limit"] == MiB
    assert oa["bytes"]["percent"] == 1.2
    assert oa["inodes"]["used"] == 1 and oa["inodes"]["percent"] == 1.0
    assert ob["mounted"] is False and ob["source"] == "state.db"
    assert ob["bytes"]["used"] == FILE_CHARGE + 20480
    assert ob["bytes"]["limit"] is None and ob["bytes"]["percent"] is None
    assert ob["inodes"] == {"used": 2, "limit": 10, "soft": None,
                            "soft_since": None, "percent": 20.0,
                            "warn_level": 0, "warned_at": None}
    assert ls_json(a) == [show(a), show(b)]

    r = a.wsctl("quota", "ls")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "BYTES", "INODES"]
    assert len(lines) == 3
    ra, rb = lines[1].split(), lines[2].split()
    assert ra[:3] == [a.name, "mounted", "12"]
    assert "KiB/1" in lines[1] and "1.2%" in lines[1]
    assert ra[-2:] == ["1/100", "1.0%"]
    assert rb[:2] == [b.name, "stopped"]
    assert "32 KiB/none" in lines[2]
    assert rb[-2:] == ["2/10", "20.0%"]
    # Columns line up: STATE, BYTES and INODES start where the header says.
    for col in ("STATE", "BYTES", "INODES"):
        i = lines[0].index(col)
        for l in lines[1:]:
            assert l[i - 2:i] == "  " and l[i] != " ", (col, l)


def test_ls_falls_back_when_daemon_does_not_answer(make_ws):
    w = make_ws(options="allow_other,quota_bytes=1M")
    assert write_file(w.p("f"), FILE_SIZE) == 0
    w.umount()
    w.mount()  # the row now holds the counted usage
    os.unlink(os.path.join(w.state, "run", f"{w.name}.sock"))
    msg = one_error_line(w.wsctl("quota", "show", w.name), 1)
    assert w.name + ".sock" in msg
    (o,) = ls_json(w)
    assert o["mounted"] is True and o["source"] == "state.db"
    assert o["bytes"]["used"] == FILE_CHARGE and o["bytes"]["limit"] == MiB
    r = w.wsctl("quota", "ls")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.splitlines()[1].split()[1] == "mounted*"
    assert "did not answer" in r.stdout.splitlines()[-1]
    # A live change is impossible, so nothing may change.
    before = db_row(w)
    one_error_line(w.wsctl("quota", "set", w.name, "--bytes", "64K"), 1)
    assert db_row(w) == before


def test_ls_hostile_name(make_ws):
    w = make_ws()
    evil = "evil\x1b[2J\nfake  mounted  0 B"
    db = sqlite3.connect(os.path.join(w.state, "state.db"), timeout=5)
    with db:
        db.execute("INSERT INTO quotas(name, grace, warn) VALUES(?, 60, "
                   "'85,95')", (evil,))
    db.close()
    r = w.wsctl("quota", "ls")
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout
    assert len(r.stdout.splitlines()) == 3
    assert "evil?[2J?fake" in r.stdout
    names = [o["name"] for o in ls_json(w)]
    assert evil in names and w.name in names


def test_ls_empty_and_missing_state(tmpbase):
    empty = os.path.join(tmpbase, "empty")
    os.makedirs(empty)
    w = Workspace(tmpbase)
    w.state = empty
    r = w.wsctl("quota", "ls")
    assert r.returncode == 0 and r.stdout.split() == ["NAME", "STATE",
                                                      "BYTES", "INODES"]
    assert ls_json(w) == []
    # No state.db: every name is unknown (exit 3).
    one_error_line(w.wsctl("quota", "show", "x"), 3)
    one_error_line(w.wsctl("quota", "set", "x", "--bytes", "1M"), 3)
    assert os.listdir(empty) == []
    # No state directory at all: a runtime error.
    w.state = os.path.join(tmpbase, "missing")
    one_error_line(w.wsctl("quota", "ls"), 1)
    one_error_line(w.wsctl("quota", "show", "x"), 1)


def test_help_lists_subcommands(ws):
    for argv in (("help", "quota"), ("quota", "--help")):
        r = ws.wsctl(*argv)
        assert r.returncode == 0, r.stderr
        for sub in ("quota set NAME", "quota show NAME", "quota ls"):
            assert sub in r.stdout, (argv, r.stdout)
        assert "--soft-inodes" in r.stdout and "1024-based" in r.stdout
    r = ws.wsctl("--help")
    assert "\n  quota " in r.stdout
    assert "quota set|show|ls" in ws.wsctl("help", "quota").stdout


# ---------------------------------------------------------------- bad input

SIZE_BAD = ["", "-1", "1.5G", "10KB", "10 G", "G", "0x10",
            "18446744073709551616", "9999999999T", "abc"]
COUNT_BAD = ["", "-1", "1.5k", "10B", "k", "0x10", "18446744073709551616",
             "9999999999T", "abc"]
GRACE_BAD = ["", "-1", "none", "1y", "1.5h", "h", "abc",
             "99999999999999999999"]
WARN_BAD = ["", "95,85", "0", "101", "1,2,3,4,5", "85,", "abc", "85:95"]

VALUE_CASES = (
    [("--bytes", v) for v in SIZE_BAD] +
    [("--soft-bytes", v) for v in SIZE_BAD] +
    [("--inodes", v) for v in COUNT_BAD] +
    [("--soft-inodes", v) for v in COUNT_BAD] +
    [("--grace", v) for v in GRACE_BAD] +
    [("--warn", v) for v in WARN_BAD])


def usage_cases(name):
    return [
        ["quota", "set", name, "--frob", "1"],
        ["quota", "set", name, "-b", "1"],
        ["quota", "set", "--bytes", "1M"],
        ["quota", "set"],
        ["quota", "set", "nosuch", "--bytes", "1M"],
        ["quota", "show", "nosuch"],
        ["quota", "set", name],
        ["quota", "set", name, "--json"],
        ["quota", "set", name, "--bytes", "1M", "--bytes", "2M"],
        ["quota", "set", name, "--bytes=1M", "--bytes", "1M"],
        ["quota", "set", name, "--warn", "50", "--warn=60"],
        ["quota", "set", name, "--json", "--json", "--bytes", "1M"],
        ["quota", "set", name, "extra", "--bytes", "1M"],
        ["quota", "set", name, "--bytes", "1M", "extra"],
        ["quota", "set", name, "--bytes"],
        ["quota", "set", name, "--bytes", "--inodes", "5"],
        ["quota", "set", name, "--bytes", "1M", "--inodes", "abc"],
        ["quota", "set", name, "--inodes", "5", "--grace", "1y"],
        ["quota", "set", name, "--json=1", "--bytes", "1M"],
        ["quota", "set", "../x", "--bytes", "1M"],
        ["quota", "show"],
        ["quota", "show", name, "extra"],
        ["quota", "show", name, "--bytes", "1M"],
        ["quota", "show", name, "--frob"],
        ["quota", "ls", "extra"],
        ["quota", "ls", "--bytes", "1M"],
        ["quota", "frob"],
        ["quota"],
    ]


@pytest.mark.parametrize("mounted", [True, False], ids=["mounted", "stopped"])
def test_bad_input_exits_2_and_changes_nothing(make_ws, mounted):
    w = make_ws(options="allow_other,quota_bytes=1M,quota_inodes=100,"
                "quota_soft_bytes=512K,quota_grace=10m,quota_warn=70:80")
    assert write_file(w.p("f"), FILE_SIZE) == 0
    if not mounted:
        w.umount()
    wait_flushed(w, FILE_CHARGE)
    before_json, before_row = show(w), db_row(w)
    assert before_json["mounted"] is mounted

    def unchanged(what):
        assert show(w) == before_json, what
        assert db_row(w) == before_row, what

    for flag, value in VALUE_CASES:
        for argv in ([flag, value], [f"{flag}={value}"]):
            r = w.wsctl("quota", "set", w.name, *argv)
            msg = one_error_line(r, 2)
            assert f"'{value}'" in msg, (argv, msg)
            assert flag in msg, (argv, msg)
        unchanged((flag, value))

    for argv in usage_cases(w.name):
        r = w.wsctl(*argv)
        # an unknown name has its own status, 3; the rest are usage errors
        msg = one_error_line(r, 3 if "nosuch" in argv else 2)
        unchanged(argv)
        if "nosuch" in argv:
            assert "'nosuch'" in msg, msg
        if "extra" in argv:
            assert "'extra'" in msg, msg
        if "--frob" in argv:
            assert "'--frob'" in msg, msg
    if mounted:
        # Nothing reached the daemon either: its log shows no change.
        with open(os.path.join(w.state, "log", f"{w.name}.log")) as f:
            assert "quota of" not in f.read()


# ------------------------------------------------- warnings and grace timers

def test_warning_reported_when_a_limit_change_passes_a_threshold(make_ws):
    w = make_ws()
    assert write_file(w.p("f"), FILE_SIZE) == 0
    # 12 KiB of 13 KiB is 92%: at or above the 85% threshold.
    out = quota_set(w, "--bytes", "13K")
    assert out["bytes"]["warn_level"] == 85
    with open(os.path.join(w.state, "log", f"{w.name}.log")) as f:
        log = f.read()
    assert out["bytes"]["warned_at"] is not None and "reached 85%" in log


def test_grace_of_a_lifted_soft_limit_does_not_come_back(make_ws):
    w = make_ws(options="allow_other,quota_soft_bytes=8K,quota_grace=2s")
    assert write_file(w.p("f"), FILE_SIZE) == 0   # grace starts, 2 s
    w.umount()
    quota_set(w, "--soft-bytes", "none")           # the timer is moot now
    time.sleep(2.5)
    quota_set(w, "--soft-bytes", "8K")             # a fresh soft limit
    t0 = int(time.time())
    w.mount()
    # A soft limit that has just come into force must allow grace_s.
    assert show(w)["bytes"]["soft_since"] >= t0
    assert write_file(w.p("g"), 4 * KiB) == 0
