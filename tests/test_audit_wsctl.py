"""`wsctl audit search|report|export|head|key` on logs built by auditgen.

Every filter is checked against a model: the whole log is dumped once as
JSON Lines, the same filter is applied in Python, and the search must
return exactly those records in the same order, so a filter that narrows
wrongly (or not at all) fails, not just one that errors.  Names with
newlines, tabs and bytes that are not UTF-8 (auditgen --weird) must come
back byte for byte from jsonl and, after unescaping, from CSV.  An export
is verified with `audit verify --bundle` in a fresh state directory that
has nothing but the file; a zstd export must decompress to the plain one.
Each query must leave its own record in the host chain, and a bad command
line must exit 2 with one "wsctl:" line and record nothing.

No daemon is mounted: the logs are written by auditgen through the same
store the daemons use, and a few hand-made rows (inserted with sqlite3)
give `report --files` a history whose outcome is known.
"""
import base64
import csv
import fnmatch
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time

import pytest

from conftest import BUILD, WSCTL

AUDITGEN = os.path.join(BUILD, "tests", "tools", "auditgen")
NS = 1_000_000_000
TEXT_FIELDS = ("ws", "host", "layer", "comm", "op", "path", "path2",
               "result", "detail", "fp")
DENIED = {"EACCES", "EPERM", "EROFS", "EDQUOT"}


# ---------------------------------------------------------------- helpers

def wsctl(state, *args, check=False):
    r = subprocess.run([WSCTL, "--state", state] + list(args),
                       capture_output=True, timeout=120)
    if check:
        assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r


def auditgen(state, ws, n, *extra):
    os.makedirs(state, exist_ok=True)
    r = subprocess.run([AUDITGEN, "--state", state, "--ws", ws, "-n",
                        str(n)] + list(extra), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def decode(obj):
    """A jsonl record with every text field as bytes (name_b64 undone)."""
    rec = dict(obj)
    for f in TEXT_FIELDS:
        if f + "_b64" in rec:
            rec[f] = base64.b64decode(rec.pop(f + "_b64"))
        else:
            rec[f] = rec[f].encode()
    return rec


def records(out):
    return [decode(json.loads(line)) for line in out.splitlines() if line]


def keys(recs):
    return [(r["ws"], r["seq"]) for r in recs]


def unescape(s):
    """Undoes the table/CSV escaping: \\\\ and \\xNN."""
    out, i, b = bytearray(), 0, s.encode()
    while i < len(b):
        if b[i:i + 1] != b"\\":
            out.append(b[i])
            i += 1
        elif b[i + 1:i + 2] == b"\\":
            out.append(0x5C)
            i += 2
        else:
            assert b[i + 1:i + 2] == b"x", s
            out.append(int(b[i + 2:i + 4], 16))
            i += 4
    return bytes(out)


def host_records(state):
    return [r for r in records(search(state, "--ws", ""))]


def search(state, *args):
    r = wsctl(state, "audit", "search", "--format", "jsonl", *args)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout.decode()


@pytest.fixture
def state():
    d = tempfile.mkdtemp(prefix="wsfs-audit-",
                         dir=os.environ.get("WSFS_TEST_DIR", "/tmp"))
    st = os.path.join(d, "state")
    auditgen(st, "agent1", 2000, "--checkpoint-every", "500", "--weird")
    auditgen(st, "agent2", 500, "--checkpoint-every", "100")
    yield st
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def everything(state):
    """The whole log (agent chains only), in search order."""
    recs = records(search(state))
    return [r for r in recs if r["ws"] != b""]


# ---------------------------------------------------------------- search

def test_search_returns_every_record_in_time_order(state, everything):
    assert len(everything) == 2500
    assert {r["ws"] for r in everything} == {b"agent1", b"agent2"}
    order = [(r["time_ns"], r["ws"], r["seq"]) for r in everything]
    assert order == sorted(order)
    for ws, n in ((b"agent1", 2000), (b"agent2", 500)):
        assert sorted(r["seq"] for r in everything if r["ws"] == ws) == \
            list(range(1, n + 1))


def model(everything, pred, limit=None):
    out = [(r["ws"].decode(), r["seq"]) for r in everything if pred(r)]
    return out[:limit] if limit else out


def got(state, *args):
    """The agent records a search returns (the host chain's queries are
    left out: they come after every agent record in time)."""
    return [(ws.decode(), seq) for ws, seq in
            keys(records(search(state, *args))) if ws]


def test_each_filter_narrows_exactly(state, everything):
    mid = everything[len(everything) // 2]["time_ns"]
    late = everything[3 * len(everything) // 4]["time_ns"]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(mid // NS))
    iso_ns = (mid // NS) * NS
    cases = [
        (("--ws", "agent2"), lambda r: r["ws"] == b"agent2"),
        (("--op", "rename"), lambda r: r["op"] == b"rename"),
        (("--op", "create,unlink,mkdir"),
         lambda r: r["op"] in (b"create", b"unlink", b"mkdir")),
        (("--path", "/src/*"), lambda r: fnmatch.fnmatchcase(
            r["path"].decode("latin1"), "/src/*") or fnmatch.fnmatchcase(
            r["path2"].decode("latin1"), "/src/*")),
        (("--path", "*.py"), lambda r: r["path"].endswith(b".py") or
         r["path2"].endswith(b".py")),
        (("--uid", "1002"), lambda r: r["uid"] == 1002),
        (("--pid", "2007"), lambda r: r["pid"] == 2007),
        (("--comm", "cargo"), lambda r: r["comm"] == b"cargo"),
        (("--result", "ok"), lambda r: r["result"] == b"0"),
        (("--result", "denied"), lambda r: r["result"].decode() in DENIED),
        (("--result", "failed"), lambda r: r["result"] != b"0"),
        (("--result", "ENOENT"), lambda r: r["result"] == b"ENOENT"),
        (("--result", "erofs"), lambda r: r["result"] == b"EROFS"),
        (("--since", f"{iso}Z"), lambda r: r["time_ns"] >= iso_ns),
        (("--until", f"{iso}Z"), lambda r: r["time_ns"] < iso_ns),
        (("--ws", "agent1", "--since", f"{iso}Z", "--until",
          time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime(late // NS))),
         lambda r: r["ws"] == b"agent1" and iso_ns <= r["time_ns"] <
         (late // NS) * NS),
        (("--op", "open", "--uid", "1001", "--result", "denied"),
         lambda r: r["op"] == b"open" and r["uid"] == 1001 and
         r["result"].decode() in DENIED),
    ]
    for args, pred in cases:
        want = model(everything, pred)
        assert 0 < len(want) < len(everything), args
        assert got(state, *args) == want, args
        assert got(state, *args, "--limit", "7") == want[:7], args


def test_relative_and_named_times(state, everything):
    now = time.time_ns()
    for spec, delta in (("-2h", 7200), ("-30m", 1800), ("-45s", 45),
                        ("recent", 600), ("-1d", 86400), ("-1w", 604800)):
        want = model(everything, lambda r: r["time_ns"] >= now - delta * NS)
        res = got(state, "--since", spec)
        # A record exactly at the boundary may fall either side of "now".
        assert abs(len(res) - len(want)) <= 2, spec
        assert set(res) <= set(model(
            everything, lambda r: r["time_ns"] >= now - (delta + 5) * NS))
    assert got(state, "--since", "now") == []
    assert got(state, "--until", "-2d") == []
    midnight = time.mktime(time.localtime()[:3] + (0, 0, 0, 0, 0, -1))
    want = model(everything, lambda r: r["time_ns"] >= midnight * NS)
    assert got(state, "--since", "today") == want
    want = model(everything, lambda r: r["time_ns"] < midnight * NS)
    assert got(state, "--since", "yesterday", "--until", "today") == want


def test_after_seq(state):
    recs = records(search(state, "--ws", "agent1", "--after-seq", "1990"))
    assert keys(recs) == [(b"agent1", s) for s in range(1991, 2001)]
    recs = records(search(state, "--ws", "agent2", "--after-seq", "10",
                          "--op", "open", "--limit", "3"))
    assert len(recs) == 3 and all(r["op"] == b"open" for r in recs)
    assert [r["seq"] for r in recs] == sorted(r["seq"] for r in recs)
    assert recs[0]["seq"] > 10


def test_checkpoint_incremental_pulls(state, tmp_path):
    cur = str(tmp_path / "cursor")
    first = records(search(state, "--ws", "agent1", "--checkpoint", cur,
                           "--limit", "100"))
    assert keys(first) == [(b"agent1", s) for s in range(1, 101)]
    assert open(cur).read() == "6167656e7431 100\n"
    rest = records(search(state, "--ws", "agent1", "--checkpoint", cur))
    assert keys(rest) == [(b"agent1", s) for s in range(101, 2001)]
    assert records(search(state, "--ws", "agent1", "--checkpoint", cur)) == []
    auditgen(state, "agent1", 25)
    new = records(search(state, "--ws", "agent1", "--checkpoint", cur))
    assert keys(new) == [(b"agent1", s) for s in range(2001, 2026)]
    # Across every chain: a filter's non-matches are passed over for good.
    cur2 = str(tmp_path / "all")
    a = records(search(state, "--checkpoint", cur2, "--op", "rename"))
    assert a and all(r["op"] == b"rename" for r in a)
    lines = dict(line.split() for line in open(cur2))
    assert lines["6167656e7431"] == "2025" and lines["6167656e7432"] == "500"
    assert "-" in lines         # the host chain
    auditgen(state, "agent2", 400)
    b = records(search(state, "--checkpoint", cur2, "--op", "rename"))
    assert b and {r["ws"] for r in b} == {b"agent2"}
    assert all(r["seq"] > 500 for r in b)


def test_bad_checkpoint_file(state, tmp_path):
    bad = tmp_path / "bad"
    for content in ("garbage\n", "6167656e7431 x\n", "6167656e7431 5",
                    "zz 5\n", "6167656e7431 5\n6167656e7431 6\n"):
        bad.write_text(content)
        r = wsctl(state, "audit", "search", "--checkpoint", str(bad))
        assert r.returncode == 2, content
        err = r.stderr.decode()
        assert err.startswith("wsctl: bad checkpoint file") and \
            err.count("\n") == 1, err
        assert bad.read_text() == content


@pytest.mark.parametrize("args, message", [
    (("--since", "yesterdayish"), "bad time 'yesterdayish'"),
    (("--since", "2026-13-01"), "bad time '2026-13-01'"),
    (("--until", "2026-02-30T10:00"), "bad time '2026-02-30T10:00'"),
    (("--since", "17:00"), "bad time '17:00'"),
    (("--since", "-2"), "bad time '-2'"),
    (("--since", "2h"), "bad time '2h'"),
    (("--since", "now", "--until", "-1h"), "is after --until"),
    (("--op", "frobnicate"), "unknown op 'frobnicate'; ops are: open"),
    (("--op", "open,,create"), "unknown op ''"),
    (("--result", "EBOGUS"), "--result 'EBOGUS'"),
    (("--uid", "no-such-user-here"), "no such user"),
    (("--pid", "-5"), "--pid '-5'"),
    (("--limit", "0"), "--limit '0'"),
    (("--limit", "ten"), "--limit 'ten'"),
    (("--after-seq", "5"), "--after-seq needs --ws"),
    (("--ws", "agent1", "--after-seq", "5", "--checkpoint", "/tmp/x"),
     "give one"),
    (("--format", "xml"), "--format 'xml'"),
    (("--ws", "../etc"), "invalid workspace name"),
    (("--since",), "needs a value"),
    (("--since", "-1h", "--since", "-2h"), "given twice"),
    (("--files",), "unknown option '--files'"),
    (("stray",), "unexpected argument 'stray'"),
])
def test_bad_search_command_lines(state, args, message):
    before = len(host_records(state))
    r = wsctl(state, "audit", "search", *args)
    err = r.stderr.decode()
    assert r.returncode == 2, (args, err)
    assert r.stdout == b""
    assert err.startswith("wsctl: ") and err.count("\n") == 1, err
    assert message in err, err
    # Nothing was queried, so nothing is recorded (the check itself is).
    assert len(host_records(state)) == before + 1


def test_bad_other_command_lines(state):
    for args in (("report", "--op", "open"), ("report", "--since", "x"),
                 ("export",), ("export", "-o", "/dev/null", "--format",
                                "table"), ("head", "--since", "-1h"),
                 ("key", "--ws", "a"), ("frob",), ()):
        r = wsctl(state, "audit", *args)
        assert r.returncode == 2, args
        assert r.stderr.decode().count("\n") == 1, args


# ---------------------------------------------------------------- formats

def test_table_is_escaped_and_aligned(state):
    r = wsctl(state, "audit", "search", "--ws", "agent1", check=True)
    lines = r.stdout.decode("utf-8").split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    assert lines[0].split() == ["TIME", "WS", "SEQ", "UID", "PID", "COMM",
                                "OP", "RESULT", "PATH"]
    assert len(lines) == 2001
    assert all(ord(c) >= 0x20 for line in lines for c in line)
    assert any("\\x0a" in line for line in lines)      # a newline in a name
    assert any("\\xff\\xfe" in line for line in lines)  # not UTF-8
    assert any("caf\u00e9" in line for line in lines)   # UTF-8 as it is
    assert any(" \u2192 " in line for line in lines)    # rename targets
    col = lines[0].index("PATH")
    assert all(line[col - 1] == " " for line in lines[1:])
    host = wsctl(state, "audit", "search", "--ws", "", check=True)
    assert "(host)" in host.stdout.decode()


def test_csv_round_trips_every_byte(state):
    r = wsctl(state, "audit", "search", "--ws", "agent1", "--format", "csv",
              check=True)
    assert r.stdout.count(b"\r\n") == 2001
    rows = list(csv.reader(io.StringIO(r.stdout.decode("utf-8"),
                                       newline="")))
    header = rows[0]
    assert header == ["ws", "seq", "time", "time_ns", "host", "layer", "uid",
                      "gid", "pid", "comm", "op", "path", "path2", "ino",
                      "bytes", "result", "detail", "fp", "leaf", "head"]
    exact = {r["seq"]: r for r in records(search(state, "--ws", "agent1"))}
    assert len(rows) == 2001
    weird = 0
    for row in rows[1:]:
        d = dict(zip(header, row))
        rec = exact[int(d["seq"])]
        for f in TEXT_FIELDS:
            assert unescape(d[f]) == rec[f], (f, d[f])
        for f in ("time_ns", "uid", "gid", "pid", "ino", "bytes"):
            assert int(d[f]) == rec[f]
        assert d["leaf"] == rec["leaf"] and d["head"] == rec["head"]
        assert d["time"].endswith("Z")
        weird += any(b < 0x20 or b >= 0x80 for b in rec["path"])
    assert weird > 10


def test_ocsf_fields_and_types(state):
    r = wsctl(state, "audit", "search", "--format", "ocsf", check=True)
    exact = records(search(state))
    lines = r.stdout.decode("utf-8").splitlines()
    assert len(lines) >= 2500
    kinds = set()
    for line, rec in zip(lines, exact):
        e = json.loads(line)
        assert e["class_uid"] == 1001 and e["category_uid"] == 1
        assert isinstance(e["activity_id"], int)
        assert e["type_uid"] == 100100 + e["activity_id"]
        assert isinstance(e["activity_name"], str)
        assert isinstance(e["time"], int) and e["time"] == \
            rec["time_ns"] // 1_000_000
        denied = rec["result"].decode() in DENIED
        assert e["severity_id"] == (3 if denied else 1)
        assert e["status_id"] == (1 if rec["result"] == b"0" else 2)
        assert e["status_code"] == rec["result"].decode()
        assert isinstance(e["message"], str)
        assert isinstance(e["actor"]["user"]["uid"], str)
        assert e["actor"]["user"]["uid"] == str(rec["uid"])
        assert isinstance(e["actor"]["process"]["pid"], int)
        assert isinstance(e["device"]["hostname"], str)
        assert e["device"]["type_id"] == 0
        assert isinstance(e["file"]["name"], str)
        assert isinstance(e["file"]["type_id"], int)
        md = e["metadata"]
        assert md["version"] == "1.1.0" and md["product"]["name"] == "wsfs"
        assert md["sequence"] == rec["seq"] and md["log_name"] == "audit.db"
        u = decode(e["unmapped"])
        for f in TEXT_FIELDS:
            assert u[f] == rec[f]
        assert u["leaf"] == rec["leaf"] and u["head"] == rec["head"]
        kinds.add((rec["op"], e["activity_id"]))
    mapping = dict(kinds)
    assert mapping[b"create"] == 1 and mapping[b"read"] == 2
    assert mapping[b"write"] == 3 and mapping[b"unlink"] == 4
    assert mapping[b"rename"] == 5 and mapping[b"setattr"] == 6
    assert mapping[b"open"] == 14 and mapping[b"mkdir"] == 1


# ---------------------------------------------------------------- report

def test_report_counts(state, everything):
    r = wsctl(state, "audit", "report", "--json", check=True)
    rep = {c["ws"]: c for c in json.loads(r.stdout)}
    for ws in ("agent1", "agent2"):
        recs = [x for x in everything if x["ws"] == ws.encode()]
        c = rep[ws]
        assert c["records"] == len(recs)
        ops = {}
        for x in recs:
            ops[x["op"].decode()] = ops.get(x["op"].decode(), 0) + 1
        assert c["ops"] == ops
        den = {}
        for x in recs:
            if x["result"].decode() in DENIED:
                den[x["result"].decode()] = den.get(
                    x["result"].decode(), 0) + 1
        assert c["denials"] == den
        ok = [x for x in recs if x["result"] == b"0"]
        f = c["files"]
        assert f["created"] == sum(x["op"] in (b"create", b"mknod",
                                               b"symlink", b"link", b"mkdir")
                                   for x in ok)
        assert f["deleted"] == sum(x["op"] in (b"unlink", b"rmdir")
                                   for x in ok)
        assert f["renamed"] == sum(x["op"] == b"rename" for x in ok)
        assert f["modified"] == len({x["path"] for x in ok
                                     if x["op"] == b"setattr"})
        assert c["first_ns"] == min(x["time_ns"] for x in recs)
    assert "" in rep            # the host chain (the dump above)
    text = wsctl(state, "audit", "report", "--ws", "agent2", check=True)
    out = text.stdout.decode()
    assert out.startswith("== agent2\n")
    assert "records:        500\n" in out and "== agent1" not in out
    half = wsctl(state, "audit", "report", "--ws", "agent2", "--since",
                 "-12h", "--json", check=True)
    assert 0 < json.loads(half.stdout)[0]["records"] < 500
    empty = wsctl(state, "audit", "report", "--ws", "agent2", "--since",
                  "now", check=True)
    assert "records:        0" in empty.stdout.decode()


def add_rows(state, rows):
    """Hand-made records of chain "hand" (no valid hashes: report only)."""
    db = sqlite3.connect(os.path.join(state, "audit.db"))
    t = time.time_ns() - 3600 * NS
    for seq, (op, path, path2, bytes_, fp, result) in enumerate(rows, 1):
        db.execute("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,"
                   "?,?,?,?,?,?)", ("hand", seq, t + seq, "h", "upper",
                                    1000, 1000, 42, "agent", op, path,
                                    path2, 0, bytes_, result, "", fp,
                                    b"\0" * 32, b"\0" * 32))
    db.commit()
    db.close()


def test_report_files_replays_renames(state):
    fa, fb, fc = "a" * 32, "b" * 32, "c" * 32
    add_rows(state, [
        ("create", "/new.c", "", 0, "", "0"),
        ("release", "/new.c", "", 10, fa, "0"),
        ("rename", "/new.c", "/src/new.c", 0, "", "0"),
        ("mkdir", "/d", "", 0, "", "0"),
        ("create", "/d/f", "", 0, "", "0"),
        ("release", "/d/f", "", 5, fb, "0"),
        ("rename", "/d", "/e", 0, "", "0"),
        ("unlink", "/old.txt", "", 0, "", "0"),
        ("setattr", "/attr", "", 0, "", "0"),
        ("release", "/kept", "", 3, fc, "0"),
        ("rename", "/kept", "/moved", 0, "", "0"),
        ("create", "/tmp1", "", 0, "", "0"),
        ("unlink", "/tmp1", "", 0, "", "0"),
        ("release", "/read-only", "", 0, "", "0"),
        ("unlink", "/denied", "", 0, "", "EACCES"),
        ("create", "/bad\nname", "", 0, "", "0"),
    ])
    r = wsctl(state, "audit", "report", "--ws", "hand", "--files", "--json",
              check=True)
    rep = json.loads(r.stdout)[0]
    ch = {c["path"]: c for c in rep["changes"]}
    assert ch["/src/new.c"]["state"] == "created"
    assert ch["/src/new.c"]["fp"] == fa
    assert ch["/src/new.c"]["last_op"] == "rename"
    assert ch["/e"]["state"] == "created"
    assert ch["/e/f"]["fp"] == fb and ch["/e/f"]["state"] == "created"
    assert ch["/old.txt"]["state"] == "deleted"
    assert ch["/attr"]["state"] == "modified"
    assert ch["/moved"]["from"] == "/kept" and ch["/moved"]["fp"] == fc
    assert ch["/tmp1"]["state"] == "deleted"
    for gone in ("/new.c", "/d", "/d/f", "/kept", "/read-only", "/denied"):
        assert gone not in ch, gone
    assert ch["/bad\nname"]["state"] == "created"
    assert len(ch) == 8
    assert rep["files"] == {"created": 5, "modified": 4, "deleted": 2,
                            "renamed": 3}
    text = wsctl(state, "audit", "report", "--ws", "hand", "--files",
                 check=True).stdout.decode()
    assert "changed files:  8\n" in text
    assert "/kept \u2192 /moved" in text
    assert "/bad\\x0aname" in text


# ---------------------------------------------------------------- export

def verify_bundle(path, tmp_path):
    fresh = tmp_path / "elsewhere"
    fresh.mkdir(exist_ok=True)
    copy = fresh / os.path.basename(path)
    shutil.copy(path, copy)
    return subprocess.run([WSCTL, "--state", str(fresh / "state"), "audit",
                           "verify", "--bundle", str(copy)],
                          capture_output=True, text=True, timeout=120)


def test_export_bundle_verifies_offline(state, tmp_path):
    out = str(tmp_path / "all.jsonl")
    db = sqlite3.connect(os.path.join(state, "audit.db"))
    ncp = db.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
    db.close()
    r = wsctl(state, "audit", "export", "-o", out)
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert err.startswith("exported ") and err.endswith(
        f" checkpoints to {out}\n")
    lines = [json.loads(x) for x in open(out)]
    assert lines[0]["type"] == "bundle"
    assert lines[0]["key"] == wsctl(state, "audit", "key").stdout.decode()\
        .strip()
    assert sum(x["type"] == "record" for x in lines) >= 2500
    assert ncp >= 3
    assert sum(x["type"] == "checkpoint" for x in lines) == ncp
    assert f"exported 2500 records, {ncp} checkpoints" in err
    v = verify_bundle(out, tmp_path)
    assert v.returncode == 0 and v.stdout.startswith("OK: "), v.stdout
    # One changed byte in one record is found.
    text = open(out).read().replace('"op":"rename"', '"op":"renamE"', 1)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(text)
    v = verify_bundle(str(bad), tmp_path)
    assert v.returncode == 1 and v.stdout.startswith("FAILED: "), v.stdout


def test_export_time_range_keeps_chains_whole(state, tmp_path):
    out = str(tmp_path / "part.jsonl")
    wsctl(state, "audit", "export", "--since", "-6h", "--until", "-1h",
          "-o", out, check=True)
    lines = [json.loads(x) for x in open(out)]
    starts = {x["ws"]: x["seq"] for x in lines if x["type"] == "start"}
    assert starts["agent1"] > 0 and starts["agent2"] > 0
    for ws in ("agent1", "agent2"):
        seqs = [x["seq"] for x in lines
                if x["type"] == "record" and x["ws"] == ws]
        assert seqs == list(range(starts[ws] + 1, starts[ws] + 1 +
                                  len(seqs)))
        cps = [x["size"] for x in lines
               if x["type"] == "checkpoint" and x["ws"] == ws]
        assert all(seqs[0] <= s <= seqs[-1] for s in cps)
    v = verify_bundle(out, tmp_path)
    assert v.returncode == 0, v.stdout + v.stderr


def test_export_zstd_round_trip(state, tmp_path):
    plain, packed = str(tmp_path / "a.jsonl"), str(tmp_path / "a.jsonl.zst")
    wsctl(state, "audit", "export", "--ws", "agent1", "-o", plain,
          check=True)
    wsctl(state, "audit", "export", "--ws", "agent1", "--zstd", "-o",
          packed, check=True)
    raw = open(packed, "rb").read()
    assert raw[:4] == b"\x28\xb5\x2f\xfd"
    assert len(raw) < os.path.getsize(plain) / 2
    # Debian's zstd (tools/setup.sh installs it) reads it as any .zst.
    d = subprocess.run(["zstd", "-dc", packed], capture_output=True,
                       check=True)
    assert d.stdout == open(plain, "rb").read()
    v = verify_bundle(packed, tmp_path)
    assert v.returncode == 0 and v.stdout.startswith("OK: 2000 records"), \
        v.stdout
    # To standard output as well.
    r = wsctl(state, "audit", "export", "--ws", "agent1", "-o", "-",
              check=True)
    assert r.stdout == open(plain, "rb").read()


def test_export_csv_and_ocsf(state, tmp_path):
    out = str(tmp_path / "x.csv")
    wsctl(state, "audit", "export", "--ws", "agent2", "--format", "csv",
          "-o", out, check=True)
    rows = list(csv.reader(open(out, newline="")))
    assert len(rows) == 501 and rows[0][0] == "ws"
    out = str(tmp_path / "x.ocsf")
    r = wsctl(state, "audit", "export", "--ws", "agent2", "--format", "ocsf",
              "-o", out, check=True)
    assert r.stderr == f"exported 500 records, 0 checkpoints to {out}\n"\
        .encode()
    assert all(json.loads(x)["class_uid"] == 1001 for x in open(out))


# ---------------------------------------------------------------- head, key

def test_head_and_key(state):
    r = wsctl(state, "audit", "head", "--ws", "agent1", check=True)
    note = r.stdout.decode().split("\n")
    assert note[0].endswith("/wsfs/agent1") and note[1] == "2000"
    assert note[4] == "" and note[5].startswith("\u2014 ")
    r = wsctl(state, "audit", "head", check=True)
    out = r.stdout.decode()
    assert "== agent1\n" in out and "== agent2\n" in out
    assert out.index("== agent1") < out.index("== agent2")
    r = wsctl(state, "audit", "head", "--ws", "nosuch")
    assert r.returncode == 1 and r.stderr.decode().count("\n") == 1
    key = wsctl(state, "audit", "key", check=True).stdout.decode()
    assert key == open(os.path.join(state, "keys", "audit.pub")).read()
    assert key.count("+") >= 2 and key.endswith("\n")


def test_missing_log(tmp_path):
    st = str(tmp_path / "nothing")
    os.makedirs(st)
    for args in (("search",), ("report",), ("export", "-o",
                                            str(tmp_path / "x")),
                 ("head",)):
        r = wsctl(st, "audit", *args)
        assert r.returncode == 1, args
        assert r.stderr.decode() == (f"wsctl: no audit log in {st} (no "
                                     "workspace has been mounted with "
                                     "auditing)\n")
    r = wsctl(st, "audit", "key")
    assert r.returncode == 1 and "no audit key" in r.stderr.decode()
    assert os.listdir(st) == []     # nothing created by asking


# ---------------------------------------------------------------- self-audit

def test_every_query_is_recorded(state, tmp_path):
    assert host_records(state) == []
    assert host_records(state)[-1]["op"] == b"audit-search"
    wsctl(state, "audit", "search", "--ws", "agent1", "--op", "open",
          "--path", "/src/a b*", "--limit", "3", check=True)
    wsctl(state, "audit", "report", "--ws", "agent2", "--files",
          check=True)
    wsctl(state, "audit", "export", "-o", str(tmp_path / "e"), check=True)
    wsctl(state, "audit", "head", check=True)
    wsctl(state, "audit", "key", check=True)
    wsctl(state, "audit", "head", "--ws", "nosuch")            # fails: 1
    wsctl(state, "audit", "search", "--since", "bogus")        # usage: 2
    recs = host_records(state)
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    tail = recs[-7:]
    assert [r["op"] for r in tail] == [
        b"audit-search", b"audit-search", b"audit-report", b"audit-export",
        b"audit-head", b"audit-key", b"audit-head"]
    q = tail[1]
    assert q["path"] == b"agent1"
    assert q["detail"] == b"--ws agent1 --op open --path '/src/a b*' " \
        b"--limit 3"
    assert q["result"] == b"0" and q["comm"] == b"wsctl"
    assert q["pid"] > 0 and q["uid"] == os.getuid()
    assert tail[2]["path"] == b"agent2"
    assert tail[3]["path"] == b""
    assert tail[6]["result"] == b"ENOENT"
    # Each record is anchored by a checkpoint of the host chain.
    head = wsctl(state, "audit", "head", "--ws", "", check=True)
    # (host_records' own search is the latest record.)
    assert head.stdout.decode().split("\n")[1] == str(len(recs) + 1)
    v = wsctl(state, "audit", "verify")
    assert v.returncode == 0, v.stdout
