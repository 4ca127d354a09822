"""Fifty workspaces mounted at once on one host, as an operator running a
fleet of agents would have them: each declared and mounted with wsctl, each
running a small agent workload at the same time as the others, every quota
holding exactly, the audit chain verifying, and every daemon unmounting
cleanly and exiting.
"""
import concurrent.futures
import errno
import json
import os
import time

from conftest import is_mounted, pid_alive

N = 50
BYTES = 256 * 1024
INODES = 24


def workload(mnt, name):
    """An agent's small job: outputs, a failed write past the byte quota,
    files until the inode quota stops it.  Returns what it observed."""
    seen = {}
    os.makedirs(os.path.join(mnt, "out"))
    with open(os.path.join(mnt, "out", "result.txt"), "wb") as f:
        f.write(name.encode() * 1000)
    try:
        with open(os.path.join(mnt, "big"), "wb") as f:
            f.write(b"x" * BYTES)
        seen["bytes"] = 0
    except OSError as e:
        seen["bytes"] = e.errno
    made = 0
    try:
        while made < 100:
            open(os.path.join(mnt, "out", f"f{made}"), "wb").close()
            made += 1
        seen["inodes"] = 0
    except OSError as e:
        seen["inodes"] = e.errno
    seen["made"] = made
    try:
        open(os.path.join(mnt, "input", "data"), "ab").close()
        seen["input"] = 0
    except OSError as e:
        seen["input"] = e.errno
    with open(os.path.join(mnt, "input", "data"), "rb") as f:
        seen["read"] = f.read()
    return seen


def test_fifty_workspaces_at_once(operator):
    op = operator
    src = op.path("input")
    os.makedirs(src)
    with open(os.path.join(src, "data"), "wb") as f:
        f.write(b"shared input")
    names = [f"agent-{i:02d}" for i in range(N)]
    os.makedirs(op.path("uppers"))
    for n in names:
        op.ok("create", n, "--upper", op.path("uppers", n), "--layer",
              f"{src}:/input", "--ephemeral", "/tmp", "--bytes", str(BYTES),
              "--inodes", str(INODES))
    t0 = time.monotonic()
    for n in names:
        op.ok("mount", n)
    mount_s = time.monotonic() - t0
    ls = op.ls()
    assert sorted(ls) == names
    assert all(ls[n]["state"] == "mounted" for n in names)
    pids = {n: ls[n]["pid"] for n in names}
    assert len(set(pids.values())) == N
    mnts = {n: ls[n]["mountpoint"] for n in names}

    with concurrent.futures.ThreadPoolExecutor(max_workers=N) as pool:
        seen = dict(zip(names, pool.map(lambda n: workload(mnts[n], n),
                                        names)))
    for n in names:
        s = seen[n]
        assert s["bytes"] == errno.EDQUOT, (n, s)
        assert s["inodes"] == errno.EDQUOT, (n, s)
        assert s["input"] == errno.EROFS, (n, s)
        assert s["read"] == b"shared input"
    # every quota held exactly, per workspace, whatever the others did
    ls = op.ls()
    for n in names:
        assert ls[n]["bytes"]["used"] <= BYTES, (n, ls[n])
        assert ls[n]["inodes"]["used"] == INODES, (n, ls[n])
        status = json.loads(op.ok("status", n, "--json"))
        assert status["name"] == n and status["pid"] == pids[n]
    # each made the same number of files before the limit: the root, out/,
    # result.txt, big and the graft points count too, identically for all
    assert len({seen[n]["made"] for n in names}) == 1

    for n in names:
        op.ok("umount", n)
    for n in names:
        assert not pid_alive(pids[n]), n
        assert not is_mounted(mnts[n]), n
    ls = op.ls()
    assert all(ls[n]["state"] == "stopped" for n in names)
    # outputs persisted in each upper; scratch is gone
    for n in names:
        with open(op.path("uppers", n, "out", "result.txt"), "rb") as f:
            assert f.read() == n.encode() * 1000
    assert op.ok("audit", "verify").startswith("OK")
    out = op.ok("audit", "search", "--op", "unmount", "--format", "jsonl")
    ended = {json.loads(l)["ws"] for l in out.splitlines()}
    assert ended == set(names)
    # the whole fleet mounted in reasonable time (not a benchmark: a hang
    # or a serialising lock would show as minutes)
    assert mount_s < 120, mount_s
