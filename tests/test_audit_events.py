"""The audit log's records, produced by a real mounted workspace.

Each operation runs in a real process: an "agent", a small script whose file
name is its process name (helpers.make_agent), run as root or as uid 1000,
so every record's uid, gid, pid and comm can be checked against the
process that made the request.  Records are read from <state>/audit.db with
Python's sqlite3 after the workspace is unmounted (unmount drains the
writer's queue), except where a test says otherwise.  Fingerprints are
checked against Debian's xxhsum (-H2: XXH3-128), never against the daemon's
own code.

Every workspace comes from conftest's make_ws, which unmounts it and ends
its daemon by pid whatever the test did.
"""
import errno
import os
import random
import re
import sqlite3
import stat
import subprocess
import time

import pytest

from conftest import WSCTL, is_mounted
from helpers import (audit_checkpoints, audit_records, make_agent, run_agent,
                     write_file, xxh128)

K = 1024
M = 1 << 20
U1, G1 = 1000, 1000


# ================================================================ helpers

def records(w, **match):
    """W's chain after unmount, optionally only records whose fields equal
    MATCH."""
    w.umount()
    assert not is_mounted(w.mnt)
    return select(audit_records(w.state, w.name), **match)


def select(recs, **match):
    return [r for r in recs if all(r[k] == v for k, v in match.items())]


def one(recs, **match):
    found = select(recs, **match)
    assert len(found) == 1, f"expected one record {match}, found {found}"
    return found[0]


def assert_chain(recs):
    """seq runs 1..N without a gap or a repeat."""
    seqs = [r["seq"] for r in recs]
    assert seqs == list(range(1, len(seqs) + 1)), seqs


def assert_caller(rec, out, comm):
    assert (rec["uid"], rec["gid"], rec["pid"], rec["comm"]) == \
        (out["uid"], out["gid"], out["pid"], comm), rec


def verify(w, *args):
    """wsctl audit verify on W's chain: must pass and count RECORDS."""
    r = subprocess.run([WSCTL, "--state", w.state, "audit", "verify", "--ws",
                        w.name] + list(args), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, f"verify failed: {r.stdout}{r.stderr}"
    m = re.match(r"OK: (\d+) records, (\d+) checkpoints", r.stdout)
    assert m, r.stdout
    return int(m.group(1)), int(m.group(2))


def log_text(w):
    with open(os.path.join(w.state, "log", f"{w.name}.log"), errors="replace") as f:
        return f.read()


@pytest.fixture
def agents(tmpbase):
    """make(name) -> the path of an agent script called NAME."""
    d = os.path.join(tmpbase, "bin")
    return lambda name: make_agent(d, name)


# ================================================================ every op

META_CODE = r'''
os.mkdir(p("d"), 0o750)
out["d"] = os.stat(p("d")).st_ino
fd = os.open(p("d/f"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, b"hello world")
os.close(fd)
out["f"] = os.stat(p("d/f")).st_ino
fd = os.open(p("d/f"), os.O_RDONLY)
os.read(fd, 100)
os.close(fd)
os.chmod(p("d/f"), 0o600)
os.truncate(p("d/f"), 5)
os.setxattr(p("d/f"), "user.k", b"value")
os.removexattr(p("d/f"), "user.k")
os.symlink("f", p("d/s"))
out["s"] = os.lstat(p("d/s")).st_ino
os.link(p("d/f"), p("d/h"))
os.rename(p("d/h"), p("d/h2"))
os.mkfifo(p("d/fifo"), 0o640)
out["fifo"] = os.lstat(p("d/fifo")).st_ino
os.unlink(p("d/h2"))
os.unlink(p("d/s"))
os.mkdir(p("e"))
out["e"] = os.stat(p("e")).st_ino
os.rmdir(p("e"))
'''


def test_every_meta_operation_with_its_caller(make_ws, agents):
    w = make_ws()
    out = run_agent(agents("agent-meta"), w.mnt, META_CODE)
    daemon = w.pid
    recs = records(w)
    assert_chain(recs)
    mine = select(recs, pid=out["pid"])
    for r in mine:
        assert_caller(r, out, "agent-meta")
        assert r["layer"] == "upper", r
        assert r["result"] == "0", r
        assert r["ws"] == w.name and r["host"], r
    # (op, path, path2, ino, bytes, detail) in request order; releases come
    # when the kernel sends them, after close() returned, so separately.
    want = [
        ("mkdir", "/d", "", out["d"], 0, "mode=0750"),
        ("create", "/d/f", "", out["f"], 0, "flags=O_WRONLY|O_CREAT|O_EXCL"),
        ("open", "/d/f", "", out["f"], 0, "flags=O_RDONLY"),
        ("setattr", "/d/f", "", out["f"], 0, "fields=mode=0600"),
        ("setattr", "/d/f", "", out["f"], 0, "fields=size=5"),
        ("setxattr", "/d/f", "", out["f"], 0, "name=user.k size=5"),
        ("removexattr", "/d/f", "", out["f"], 0, "name=user.k size=0"),
        ("symlink", "/d/s", "", out["s"], 0, "target=f"),
        ("link", "/d/f", "/d/h", out["f"], 0, ""),
        ("rename", "/d/h", "/d/h2", None, 0, ""),
        ("mknod", "/d/fifo", "", out["fifo"], 0, "mode=010640 rdev=0"),
        ("unlink", "/d/h2", "", None, 0, ""),
        ("unlink", "/d/s", "", None, 0, ""),
        ("mkdir", "/e", "", out["e"], 0, "mode=0755"),
        ("rmdir", "/e", "", None, 0, ""),
    ]
    calls = [r for r in mine if r["op"] != "release"]
    got = [(r["op"], r["path"], r["path2"],
            None if exp[3] is None else r["ino"], r["bytes"], r["detail"])
           for r, exp in zip(calls, want)]
    assert got == want
    assert len(calls) == len(want), calls
    # One release per open: what went through each handle.
    rel = select(mine, op="release")
    assert len(rel) == 2, rel
    wrote = one(rel, detail="read=0 written=11")
    assert (wrote["path"], wrote["ino"], wrote["bytes"], wrote["fp"]) == \
        ("/d/f", out["f"], 11, xxh128(b"hello world"))
    read = one(rel, detail="read=11 written=0")
    assert (read["path"], read["ino"], read["bytes"], read["fp"]) == \
        ("/d/f", out["f"], 0, "")
    # The daemon's own events: its pid, "wsfs", layer "-".
    ops = [r["op"] for r in recs]
    assert ops[:2] == ["audit-start", "mount"] and \
        ops[-2:] == ["unmount", "audit-stop"], ops
    for r in recs[:2] + recs[-2:]:
        assert (r["layer"], r["uid"], r["gid"], r["pid"], r["comm"]) == \
            ("-", 0, 0, daemon, "wsfs"), r
    mount = recs[1]
    assert mount["path"] == w.mnt
    for part in (f"mountpoint={w.mnt}", f"upper={w.upper}", "audit=meta",
                 "audit_sync=normal", "audit_fail=closed"):
        assert part in mount["detail"].split(), mount["detail"]
    assert recs[-2]["detail"] == "how=clean"
    # nothing from anyone else but this test's own python (none here)
    assert {r["pid"] for r in recs} == {daemon, out["pid"]}


def test_unmount_by_sigterm_says_so(make_ws):
    w = make_ws()
    w.kill(15)
    assert w.wait_exit(10)
    recs = audit_records(w.state, w.name)
    assert recs[-2]["op"] == "unmount" and recs[-2]["detail"] == "how=SIGTERM"
    assert recs[-1]["op"] == "audit-stop"


UNPRIV_CODE = r'''
fd = os.open(p("shared/mine"), os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"abc")
out["mine"] = os.stat(p("shared/mine")).st_ino
os.mkdir(p("shared/dir"))
out["dir"] = os.stat(p("shared/dir")).st_ino
os.rename(p("shared/mine"), p("shared/dir/moved"))
os.close(fd)
os.chmod(p("shared/dir/moved"), 0o600)
out["chmod_root"] = err(os.chmod, p("rootfile"), 0o666)
out["open_root"] = err(os.open, p("rootfile"), os.O_RDONLY)
'''


def test_an_unprivileged_caller_is_named(make_ws, agents):
    w = make_ws()
    os.mkdir(w.p("shared"))
    os.chmod(w.p("shared"), 0o777)
    write_file(w.p("rootfile"), b"secret", 0o600)
    out = run_agent(agents("agent-u1000"), w.mnt, UNPRIV_CODE, uid=U1, gid=G1)
    assert (out["uid"], out["gid"]) == (U1, G1)
    # With default_permissions (implied by allow_other) the KERNEL refuses a
    # non-owner's chmod (EPERM) and an open of a 0600 file it may not read
    # (EACCES) before any request reaches the daemon, so neither can be on
    # the chain: only denials the daemon itself makes are recorded.
    assert out["chmod_root"] == "EPERM" and out["open_root"] == "EACCES"
    recs = records(w)
    assert_chain(recs)
    mine = select(recs, pid=out["pid"])
    for r in mine:
        assert_caller(r, out, "agent-u1000")
        assert r["result"] == "0", r
    assert [(r["op"], r["path"], r["path2"]) for r in mine if r["op"] != "release"] == [
        ("create", "/shared/mine", ""), ("mkdir", "/shared/dir", ""),
        ("rename", "/shared/mine", "/shared/dir/moved"),
        ("setattr", "/shared/dir/moved", "")]
    assert one(mine, op="create")["ino"] == out["mine"]
    assert one(mine, op="mkdir")["ino"] == out["dir"]
    assert one(mine, op="setattr")["ino"] == out["mine"]
    rel = one(mine, op="release")
    # renamed while open: named where it is at release
    assert (rel["path"], rel["bytes"], rel["fp"]) == \
        ("/shared/dir/moved", 3, xxh128(b"abc"))
    assert not select(recs, path="/rootfile", uid=U1)


# ================================================================ release

FP_CODE = r'''
import random
rnd = random.Random(7)
# 1. start to end, 5 MiB in 128 KiB writes: the streaming hash
big = rnd.randbytes(5 << 20)
fd = os.open(p("stream"), os.O_WRONLY | os.O_CREAT, 0o644)
for off in range(0, len(big), 128 << 10):
    os.write(fd, big[off:off + (128 << 10)])
os.close(fd)
# 2. small, written at shuffled offsets: hashed again at release
small = rnd.randbytes(300 << 10)
fd = os.open(p("small"), os.O_WRONLY | os.O_CREAT, 0o644)
offs = list(range(0, len(small), 4096))
rnd.shuffle(offs)
for off in offs:
    os.pwrite(fd, small[off:off + 4096], off)
os.close(fd)
# 3. large, shuffled: no fingerprint
large = rnd.randbytes(3 << 20)
fd = os.open(p("shuffled"), os.O_WRONLY | os.O_CREAT, 0o644)
offs = list(range(0, len(large), 64 << 10))
rnd.shuffle(offs)
for off in offs:
    os.pwrite(fd, large[off:off + (64 << 10)], off)
os.close(fd)
# 4. large with a hole: no fingerprint
fd = os.open(p("holey"), os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"h" * 4096)
os.pwrite(fd, b"t" * 4096, 2 << 20)
os.close(fd)
# 5. read-only: bytes read counted, no fingerprint
fd = os.open(p("ro"), os.O_RDONLY)
got = 0
while True:
    b = os.read(fd, 1 << 20)
    if not b:
        break
    got += len(b)
os.close(fd)
out["read"] = got
# 6. read and write through one handle of an existing small file
fd = os.open(p("rw"), os.O_RDWR)
out["rw_read"] = len(os.read(fd, 40000))
os.pwrite(fd, b"X" * 10, 5)
os.close(fd)
for n in ("stream", "small", "shuffled", "holey", "ro", "rw"):
    out[n] = os.stat(p(n)).st_ino
'''


def test_release_counts_bytes_and_fingerprints_what_was_written(make_ws, agents):
    w = make_ws()
    # Files the kernel has never cached, so their reads reach the daemon (a
    # file written through the mount is read back from the page cache, and
    # those reads are never counted), large enough to be spliced.
    ro = random.Random(8).randbytes(200 << 10)
    write_file(w.u("ro"), ro)
    rw = bytearray(random.Random(9).randbytes(50000))
    write_file(w.u("rw"), bytes(rw))
    out = run_agent(agents("agent-fp"), w.mnt, FP_CODE)
    with open(w.u("stream"), "rb") as f:
        stream = f.read()
    with open(w.u("small"), "rb") as f:
        small_now = f.read()
    with open(w.u("rw"), "rb") as f:
        rw_now = f.read()
    rnd = random.Random(7)
    assert stream == rnd.randbytes(5 << 20)
    small = bytes(rnd.randbytes(300 << 10))
    assert small_now == small
    recs = records(w)
    assert_chain(recs)
    rel = select(recs, op="release", pid=out["pid"])
    for r in rel:
        assert_caller(r, out, "agent-fp")

    def release(path, **kw):
        return one(rel, path=path, **kw)

    streamed = release("/stream", detail=f"read=0 written={5 << 20}")
    assert (streamed["ino"], streamed["bytes"]) == (out["stream"], 5 << 20)
    r = release("/small", detail=f"read=0 written={300 << 10}")
    assert (r["ino"], r["bytes"]) == (out["small"], 300 << 10)
    assert r["fp"] == xxh128(small), "rehashed fingerprint"
    r = release("/shuffled")
    assert (r["bytes"], r["detail"], r["fp"]) == \
        (3 << 20, f"read=0 written={3 << 20}", ""), r
    r = release("/holey")
    assert (r["bytes"], r["detail"], r["fp"]) == (8192, "read=0 written=8192", ""), r
    assert out["read"] == len(ro)
    r = release("/ro")
    assert (r["ino"], r["bytes"], r["detail"], r["fp"]) == \
        (out["ro"], 0, f"read={len(ro)} written=0", ""), r
    # 6: the kernel may read ahead more than the 40000 bytes asked for
    assert out["rw_read"] == 40000
    r = release("/rw")
    m = re.fullmatch(r"read=(\d+) written=10", r["detail"])
    assert m and 40000 <= int(m.group(1)) <= 50000, r
    rw[5:15] = b"X" * 10
    assert rw_now == bytes(rw)
    assert (r["ino"], r["bytes"], r["fp"]) == (out["rw"], 10, xxh128(rw_now))
    # last, so that the checks above run whatever happens here
    assert streamed["fp"] == xxh128(stream), "streaming fingerprint"


# ================================================================ names

def test_names_are_stored_byte_exact(make_ws):
    w = make_ws()
    names = [b"new\nline", b"tab\there", b"latin1-\xe9\xff", b"\x01ctl"]
    mnt = os.fsencode(w.mnt)
    for n in names:
        write_file(mnt + b"/" + n, b"x")
    os.rename(mnt + b"/" + names[0], mnt + b"/moved\n\xfe")
    os.symlink(b"target\t\xff\n", mnt + b"/link\xfd")
    w.umount()
    recs = audit_records(w.state, w.name, raw=True)
    creates = [r["path"] for r in recs if r["op"] == b"create"]
    assert creates == [b"/" + n for n in names]
    assert all(isinstance(x, bytes) for x in creates)
    ren = [r for r in recs if r["op"] == b"rename"]
    assert [(r["path"], r["path2"]) for r in ren] == \
        [(b"/new\nline", b"/moved\n\xfe")]
    sym = [r for r in recs if r["op"] == b"symlink"]
    assert [(r["path"], r["detail"]) for r in sym] == \
        [(b"/link\xfd", b"target=target\t\xff\n")]
    # what was stored is what the hash covers: verify must pass
    verify(w)


# ================================================================ layers

RO_CODE = r'''
fd = os.open(p("input/a.txt"), os.O_RDONLY)
os.read(fd, 100)
os.close(fd)
out["a"] = os.stat(p("input/a.txt")).st_ino
out["w"] = err(os.open, p("input/a.txt"), os.O_WRONLY)
out["c"] = err(os.open, p("input/new"), os.O_WRONLY | os.O_CREAT, 0o644)
out["m"] = err(os.chmod, p("input/a.txt"), 0o777)
out["u"] = err(os.unlink, p("input/a.txt"))
out["r"] = err(os.rename, p("input"), p("elsewhere"))
out["l"] = err(os.link, p("input/a.txt"), p("linked"))
'''


def test_ro_layer_records_and_denials(make_ws, agents, tmpbase):
    src = os.path.join(tmpbase, "src")
    os.makedirs(src)
    write_file(os.path.join(src, "a.txt"), b"alpha\n")
    w = make_ws(options=f"allow_other,layer={src}:/input:ro")
    out = run_agent(agents("agent-ro"), w.mnt, RO_CODE)
    assert (out["w"], out["c"], out["m"], out["u"], out["r"], out["l"]) == \
        ("EROFS", "EROFS", "EROFS", "EROFS", "EBUSY", "EXDEV")
    recs = records(w)
    assert_chain(recs)
    mine = select(recs, pid=out["pid"])
    for r in mine:
        assert_caller(r, out, "agent-ro")
    got = [(r["op"], r["layer"], r["path"], r["path2"], r["result"], r["detail"])
           for r in mine]
    assert got == [
        ("open", "ro", "/input/a.txt", "", "0", "flags=O_RDONLY"),
        ("release", "ro", "/input/a.txt", "", "0", "read=6 written=0"),
        ("open", "ro", "/input/a.txt", "", "EROFS", "flags=O_WRONLY"),
        ("create", "ro", "/input/new", "", "EROFS", "flags=O_WRONLY|O_CREAT"),
        ("setattr", "ro", "/input/a.txt", "", "EROFS", "fields=mode=0777"),
        ("unlink", "ro", "/input/a.txt", "", "EROFS", ""),
        ("rename", "upper", "/input", "/elsewhere", "EBUSY", ""),
        ("link", "upper", "/input/a.txt", "/linked", "EXDEV", ""),
    ], got
    for r in mine:
        if r["op"] in ("open", "release", "setattr", "link"):
            assert r["ino"] == out["a"], r
    # the host's path of the source never shows
    assert not [r for r in recs if src in r["path"] + r["path2"] and r["op"] != "mount"
                and r["op"] != "audit-start"]


def test_cow_copy_up_and_whiteout(make_ws, agents, tmpbase):
    low = os.path.join(tmpbase, "low")
    os.makedirs(low)
    write_file(os.path.join(low, "a"), b"base\n")
    write_file(os.path.join(low, "b"), b"bee\n")
    w = make_ws(options=f"allow_other,layer={low}:/:cow")
    out = run_agent(agents("agent-cow"), w.mnt, r'''
out["a"] = os.stat(p("a")).st_ino
fd = os.open(p("a"), os.O_WRONLY | os.O_APPEND)
os.write(fd, b"more")
os.close(fd)
out["a2"] = os.stat(p("a")).st_ino
os.unlink(p("b"))
''')
    recs = records(w)
    assert_chain(recs)
    mine = select(recs, pid=out["pid"])
    for r in mine:
        assert_caller(r, out, "agent-cow")
        assert r["result"] == "0", r
    assert [(r["op"], r["path"]) for r in mine] == [
        ("copy-up", "/a"), ("open", "/a"), ("release", "/a"),
        ("whiteout", "/b"), ("unlink", "/b")]
    assert out["a"] == out["a2"]
    for r in mine[:3]:
        assert r["ino"] == out["a"], r
    assert mine[1]["detail"] == "flags=O_WRONLY|O_APPEND"
    assert (mine[2]["bytes"], mine[2]["fp"]) == (4, xxh128(b"base\nmore"))
    with open(os.path.join(low, "a"), "rb") as f:
        assert f.read() == b"base\n"


def test_ephemeral_scratch_and_its_wipe(make_ws, agents):
    w = make_ws(options="allow_other,ephemeral=/scratch")
    out = run_agent(agents("agent-eph"), w.mnt, r'''
os.mkdir(p("scratch/d"))
for i in range(3):
    with open(p("scratch/f%d" % i), "wb") as f:
        f.write(b"z" * (1000 * (i + 1)))
with open(p("scratch/d/g"), "wb") as f:
    f.write(b"q" * 10)
os.symlink("f0", p("scratch/l"))
out["g"] = os.stat(p("scratch/d/g")).st_ino
''')
    recs = records(w)
    assert_chain(recs)
    mine = select(recs, pid=out["pid"])
    assert mine and all(r["layer"] == "ephemeral" for r in mine), mine
    assert one(mine, op="create", path="/scratch/d/g")["ino"] == out["g"]
    wipe = one(recs, op="wipe")
    m = re.findall(r"ephemeral scratch wiped: (\d+) files, (\d+) directories, "
                   r"(\d+) bytes", log_text(w))
    assert m, "no wipe line in the daemon log"
    files, dirs, nbytes = (int(x) for x in m[-1])
    assert (files, nbytes) == (5, 6010)
    assert (wipe["bytes"], wipe["detail"], wipe["layer"], wipe["comm"]) == \
        (6010, f"files=5 dirs={dirs}", "-", "wsfs")
    ops = [r["op"] for r in recs]
    assert ops.index("unmount") < ops.index("wipe") < ops.index("audit-stop")


# ================================================================ denials

QUOTA_CODE = r'''
fd = os.open(p("big"), os.O_WRONLY | os.O_CREAT, 0o644)
out["big"] = os.fstat(fd).st_ino
os.write(fd, b"a" * (600 << 10))          # crosses 50%
out["w2"] = err(os.write, fd, b"b" * (350 << 10))    # crosses 90%
out["w3"] = err(os.pwrite, fd, b"c" * (512 << 10), 900 << 10)
out["fa"] = err(os.posix_fallocate, fd, 0, 4 << 20)
os.close(fd)
out["size"] = os.stat(p("big")).st_size
n = 0
while True:
    e = err(os.mknod, p("n%d" % n))
    if e != "0":
        out["mknod"] = e
        break
    n += 1
out["n"] = n
out["c"] = err(os.open, p("over"), os.O_WRONLY | os.O_CREAT, 0o644)
'''


def test_quota_denials_and_thresholds(make_ws, agents):
    w = make_ws(options="allow_other,quota_bytes=1M,quota_inodes=8,"
                        "quota_warn=50:90")
    out = run_agent(agents("agent-quota"), w.mnt, QUOTA_CODE)
    assert (out["w3"], out["fa"], out["mknod"], out["c"]) == \
        ("EDQUOT", "EDQUOT", "EDQUOT", "EDQUOT"), out
    recs = records(w)
    assert_chain(recs)
    mine = select(recs, pid=out["pid"])
    for r in mine:
        assert_caller(r, out, "agent-quota")
    w3 = [r for r in mine if r["op"] == "write"]
    assert w3 and all(r["result"] == "EDQUOT" and r["path"] == "/big" and
                      r["ino"] == out["big"] and r["layer"] == "upper" and
                      r["detail"].startswith("offset=") for r in w3), w3
    assert any(r["detail"] == f"offset={900 << 10}" for r in w3), w3
    fa = one(mine, op="fallocate")
    assert (fa["result"], fa["path"], fa["ino"]) == ("EDQUOT", "/big", out["big"])
    mk = [r for r in mine if r["op"] == "mknod"]
    assert [r["result"] for r in mk] == ["0"] * out["n"] + ["EDQUOT"]
    assert mk[-1]["path"] == f"/n{out['n']}" and mk[-1]["ino"] == 0
    cr = one(mine, op="create", path="/over")
    assert (cr["result"], cr["ino"], cr["detail"]) == \
        ("EDQUOT", 0, "flags=O_WRONLY|O_CREAT")
    th = select(mine, op="quota-threshold")
    kinds = [re.match(r"kind=(\w+) warn=(\d+)% used=(\d+) limit=(\d+)$",
                      r["detail"]) for r in th]
    assert all(kinds), th
    byte = [(int(m.group(2)), int(m.group(3)), int(m.group(4)))
            for m in kinds if m.group(1) == "byte"]
    assert [b[0] for b in byte] == [50, 90], th
    for pct, used, limit in byte:
        assert limit == M and used * 100 >= pct * M, th
    inode = [int(m.group(2)) for m in kinds if m.group(1) == "inode"]
    assert inode == [50, 90], th
    for r in th:
        assert (r["layer"], r["path"], r["bytes"]) == \
            ("-", "", int(r["detail"].split("used=")[1].split()[0])), r


def test_daemon_refusals_are_recorded_with_their_errno(make_ws, agents):
    w = make_ws()
    out = run_agent(agents("agent-deny"), w.mnt, r'''
with open(p("f"), "wb") as f:
    f.write(b"x")
out["f"] = os.stat(p("f")).st_ino
out["x"] = err(os.setxattr, p("f"), "trusted.wsfs.origin", b"forged")
out["b"] = err(os.mknod, p("blk"), 0o600 | 0o060000, os.makedev(7, 0))
out["g"] = err(os.getxattr, p("f"), "trusted.wsfs.origin")
''')
    assert (out["x"], out["b"], out["g"]) == ("EPERM", "EPERM", "ENODATA")
    recs = records(w)
    mine = select(recs, pid=out["pid"])
    x = one(mine, op="setxattr")
    assert (x["path"], x["ino"], x["result"], x["detail"]) == \
        ("/f", out["f"], "EPERM", "name=trusted.wsfs.origin size=6")
    b = one(mine, op="mknod")
    assert (b["path"], b["ino"], b["result"], b["detail"]) == \
        ("/blk", 0, "EPERM", f"mode=060600 rdev={os.makedev(7, 0)}")
    # a hidden attribute reads as absent (ENODATA), which is no denial
    assert not select(mine, op="getxattr")
    assert_caller(x, out, "agent-deny")


def test_quota_set_by_wsctl_is_recorded_with_its_caller(make_ws):
    w = make_ws(options="allow_other,quota_bytes=1M")
    procs = []
    for args in (["--bytes", "2M"], ["--soft-bytes", "1M", "--inodes", "50"]):
        p = subprocess.Popen([WSCTL, "--state", w.state, "quota", "set", w.name]
                             + args, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        so, se = p.communicate(timeout=30)
        assert p.returncode == 0, se
        procs.append(p.pid)
    recs = records(w)
    assert_chain(recs)
    qs = select(recs, op="quota-set")
    assert [(r["pid"], r["uid"], r["gid"], r["comm"], r["layer"], r["result"])
            for r in qs] == [(pid, 0, 0, "wsctl", "-", "0") for pid in procs]
    assert qs[0]["detail"] == f"bytes={2 * M}"
    assert sorted(qs[1]["detail"].split()) == ["inodes=50", f"soft_bytes={M}"]


def test_quota_set_on_an_unmounted_workspace_is_recorded_by_wsctl(make_ws):
    w = make_ws(options="allow_other,quota_bytes=1M")
    before = len(records(w))            # unmounts
    w.wait_exit()
    p = subprocess.Popen([WSCTL, "--state", w.state, "quota", "set", w.name,
                          "--bytes", "3M"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    so, se = p.communicate(timeout=30)
    assert p.returncode == 0, se
    recs = audit_records(w.state, w.name)
    assert_chain(recs)
    assert len(recs) == before + 1
    q = recs[-1]
    assert (q["op"], q["pid"], q["uid"], q["comm"], q["result"]) == \
        ("quota-set", p.pid, 0, "wsctl", "0")
    assert q["detail"] == f"bytes={3 * M} mounted=0"
    assert verify(w)[0] == len(recs)


# ================================================================ levels

LEVEL_CODE = r'''
fd = os.open(p("f"), os.O_WRONLY | os.O_CREAT, 0o644)
for i in range(3):
    os.pwrite(fd, b"w" * 4096, i * 8192)
os.close(fd)
fd = os.open(p("host"), os.O_RDONLY)
out["got"] = len(os.read(fd, 1 << 20))
os.close(fd)
os.listdir(p("."))
os.symlink("target-file", p("s"))
out["link"] = os.readlink(p("s"))
'''


@pytest.mark.parametrize("level", ["off", "meta", "full"])
def test_levels(make_ws, agents, level):
    w = make_ws(options=f"allow_other,audit={level}")
    # made in the upper, so never in the kernel's cache; larger than the
    # daemon's copied reads (32 KiB) so that its replies are spliced
    write_file(w.u("host"), b"r" * 100000)
    out = run_agent(agents("agent-level"), w.mnt, LEVEL_CODE)
    assert out["got"] == 100000 and out["link"] == "target-file"
    w.umount()
    db = os.path.join(w.state, "audit.db")
    if level == "off":
        assert not os.path.exists(db) or audit_records(w.state, w.name) == []
        return
    recs = audit_records(w.state, w.name)
    assert_chain(recs)
    mine = select(recs, pid=out["pid"])
    writes = select(mine, op="write")
    reads = select(mine, op="read")
    if level == "meta":
        assert not writes and not reads
        assert not select(mine, op="opendir") and not select(mine, op="readlink")
        assert "audit=meta" in recs[1]["detail"].split()
        return
    assert "audit=full" in recs[1]["detail"].split()
    assert [(r["path"], r["bytes"], r["detail"], r["result"]) for r in writes] == \
        [("/f", 4096, f"offset={i * 8192}", "0") for i in range(3)]
    assert reads and all(r["path"] == "/host" and r["result"] == "0"
                         for r in reads), reads
    assert reads[0]["detail"] == "offset=0"
    assert sum(r["bytes"] for r in reads) == 100000
    assert select(mine, op="opendir", path="/")
    rl = one(mine, op="readlink")
    assert rl["path"] == "/s" and rl["result"] == "0"
    for r in writes + reads:
        assert_caller(r, out, "agent-level")


def test_a_successful_getxattr_is_no_denial(make_ws):
    """A value's length is no errno: reading a 13-byte value must not be
    recorded as an EACCES denial (nor 1 byte as EPERM, 30 as EROFS...)."""
    w = make_ws()
    write_file(w.p("f"), b"x")
    lengths = (1, 5, 13, 28, 30, 122)
    for n in lengths:
        os.setxattr(w.p("f"), f"user.v{n}", b"v" * n)
    for n in lengths:
        assert os.getxattr(w.p("f"), f"user.v{n}") == b"v" * n
    recs = records(w)
    assert select(recs, op="getxattr") == []


@pytest.mark.parametrize("level", ["meta", "full"])
def test_readlink_is_recorded_at_full_only(make_ws, level):
    w = make_ws(options=f"allow_other,audit={level}")
    lengths = (1, 2, 13, 28, 30, 31, 122)
    for n in lengths:
        os.symlink("t" * n, w.p(f"s{n}"))
    for n in lengths:
        assert os.readlink(w.p(f"s{n}")) == "t" * n
    recs = select(records(w), op="readlink")
    if level == "meta":
        assert recs == []
    else:
        assert sorted((r["path"], r["result"]) for r in recs) == \
            sorted((f"/s{n}", "0") for n in lengths)


@pytest.mark.parametrize("level", ["meta", "full"])
def test_small_reads_are_named_and_counted(make_ws, agents, level):
    """Reads small enough to be copied (not spliced) and closed at once:
    each must still be named (full) and counted in its release."""
    w = make_ws(options=f"allow_other,audit={level}")
    n = 300
    for i in range(n):
        write_file(w.u(f"r{i}"), bytes([65 + i % 26]) * 3000)
    out = run_agent(agents("agent-reader"), w.mnt, f'''
for i in range({n}):
    fd = os.open(p("r%d" % i), os.O_RDONLY)
    assert len(os.read(fd, 65536)) == 3000
    os.close(fd)
''')
    recs = select(records(w), pid=out["pid"])
    rel = select(recs, op="release")
    assert sorted((r["path"], r["detail"]) for r in rel) == \
        sorted((f"/r{i}", "read=3000 written=0") for i in range(n))
    if level == "full":
        reads = select(recs, op="read")
        assert sorted((r["path"], r["bytes"], r["detail"]) for r in reads) == \
            sorted((f"/r{i}", 3000, "offset=0") for i in range(n))


# ================================================================ the chain

def test_two_workspaces_keep_separate_chains(make_ws):
    a = make_ws(name="chain-a", sub="a")
    b = make_ws(name="chain-b", sub="b", mount=False)
    b.state = a.state
    b.mount()
    for i in range(5):
        os.mkdir(a.p(f"a{i}"))
    for i in range(3):
        os.mkdir(b.p(f"b{i}"))
    a.umount()
    b.umount()
    ra = audit_records(a.state, "chain-a")
    rb = audit_records(a.state, "chain-b")
    assert_chain(ra)
    assert_chain(rb)
    assert [r["path"] for r in ra if r["op"] == "mkdir"] == [f"/a{i}" for i in range(5)]
    assert [r["path"] for r in rb if r["op"] == "mkdir"] == [f"/b{i}" for i in range(3)]
    assert {r["ws"] for r in audit_records(a.state)} == {"chain-a", "chain-b"}
    verify(a)
    verify(b)


def test_remount_continues_the_chain(make_ws):
    w = make_ws()
    os.mkdir(w.p("one"))
    w.umount()
    first = audit_records(w.state, w.name)
    w.mount()
    os.mkdir(w.p("two"))
    w.umount()
    recs = audit_records(w.state, w.name)
    assert_chain(recs)
    n = len(first)
    assert recs[:n] == first
    assert first[-1]["op"] == "audit-stop"
    assert recs[n]["op"] == "audit-start" and recs[n]["seq"] == n + 1
    assert one(recs, op="mkdir", path="/two")["seq"] > n
    cps = audit_checkpoints(w.state, w.name)
    assert [c[0] for c in cps] == [n, len(recs)]
    verify(w)


def test_checkpoints_cover_the_chain(make_ws):
    w = make_ws()
    for i in range(10):
        os.mkdir(w.p(f"d{i}"))
    w.umount()
    recs = audit_records(w.state, w.name)
    cps = audit_checkpoints(w.state, w.name)
    assert cps and cps[-1][0] == len(recs) == recs[-1]["seq"]
    con = sqlite3.connect(os.path.join(w.state, "audit.db"))
    try:
        head = con.execute("SELECT head FROM records WHERE ws=? AND seq=?",
                           (w.name, len(recs))).fetchone()[0]
    finally:
        con.close()
    assert cps[-1][1] == head
    lines = cps[-1][2].split("\n")
    assert lines[1] == str(len(recs)), cps[-1][2]
    nrec, ncp = verify(w)
    assert (nrec, ncp) == (len(recs), len(cps))


@pytest.mark.parametrize("kind", ["file", "command"])
def test_checkpoint_every_n_records_and_the_anchor(make_ws, tmpbase, kind):
    anchor = os.path.join(tmpbase, "anchor.txt")
    opt = anchor if kind == "file" else f"|cat >> {anchor}"
    w = make_ws(options=f"allow_other,audit_checkpoint=5,audit_anchor={opt}")
    for i in range(30):
        os.mkdir(w.p(f"d{i}"))
        time.sleep(0.01)   # let the writer commit small batches
    w.umount()
    recs = audit_records(w.state, w.name)
    sizes = [c[0] for c in audit_checkpoints(w.state, w.name)]
    assert sizes[-1] == len(recs)
    assert len(sizes) >= len(recs) // 10, sizes
    steps = [b - a for a, b in zip([0] + sizes, sizes)]
    assert all(s >= 5 for s in steps[:-1]), sizes
    notes = [c[2] for c in audit_checkpoints(w.state, w.name)]
    assert all(n.endswith("\n") for n in notes)
    # the file gets each note and a blank line; a command gets each note
    # alone on its standard input (here cat appends it as it is)
    sep = "\n" if kind == "file" else ""
    with open(anchor) as f:
        assert f.read() == "".join(n + sep for n in notes)
    assert "anchor" not in log_text(w), "the anchor reported a failure"


# ================================================================ files

def test_file_modes_and_the_accident_guard(make_ws):
    w = make_ws()
    os.mkdir(w.p("d"))
    w.umount()
    st = lambda *p: stat.S_IMODE(os.stat(os.path.join(w.state, *p)).st_mode)
    assert st("audit.db") == 0o600
    assert st("keys") == 0o700
    assert st("keys", "audit.key") == 0o600
    db = os.path.join(w.state, "audit.db")
    before = audit_records(w.state, w.name)
    cps = audit_checkpoints(w.state, w.name)
    con = sqlite3.connect(db)
    try:
        for q in ("UPDATE records SET path='/forged' WHERE seq=3",
                  "DELETE FROM records WHERE seq=3",
                  "UPDATE checkpoints SET note='x'",
                  "DELETE FROM checkpoints"):
            with pytest.raises(sqlite3.DatabaseError):
                con.execute(q)
                con.commit()
            con.rollback()
    finally:
        con.close()
    assert audit_records(w.state, w.name) == before
    assert audit_checkpoints(w.state, w.name) == cps


@pytest.mark.parametrize("opt", [
    "audit=loud", "audit_sync=x", "audit_fail=x", "audit_anchor=relative",
    "audit_checkpoint=0", "audit_checkpoint=-1", "audit_checkpoint_secs=abc",
])
def test_bad_audit_options_fail_the_mount(make_ws, opt):
    w = make_ws(options=f"allow_other,{opt}", mount=False)
    r = w.mount(check=False)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wsfs: "), r.stderr
    assert opt in lines[0], r.stderr
    assert not is_mounted(w.mnt)
    assert not os.path.exists(os.path.join(w.state, "audit.db")) or \
        audit_records(w.state, w.name) == []
