"""Random-operation data-integrity runs (tests/tools/fsx.c) inside wsfs.

fsx drives one file with a seeded random mix of write, read, truncate, mmap
write+msync, mmap read, fallocate (plain, KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE),
copy_file_range, fsync and close+reopen, and checks every byte read and the
size after every operation against an in-memory model.  A failure prints the
last operations and the seed: rerun `fsx -S SEED -N OPS ...` on the printed
file to reproduce.
"""
import os
import re
import signal
import subprocess
import sys
import time

from conftest import HELPERS

FSX = os.environ.get("FSX_BIN", os.path.join(HELPERS, "tools", "fsx"))


def fsx_bin():
    assert os.access(FSX, os.X_OK), (
        f"{FSX} not built: tests/meson.build needs subdir('tools')")
    return FSX


def start_fsx(path, *args, strict=True):
    cmd = [fsx_bin()] + (["-s"] if strict else []) + list(args) + [path]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(procs, timeout, may_disable=()):
    """Wait for every fsx; kill (by pid) the ones still running at the end."""
    deadline = time.time() + timeout
    results = []
    try:
        for p in procs:
            try:
                out, err = p.communicate(timeout=max(1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                results.append((p.args, None, out, err + "\n<<timed out>>"))
                continue
            results.append((p.args, p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for args, rc, out, err in results:
        assert rc == 0, (f"{' '.join(args)} exited {rc}\n--- stdout\n{out[-4000:]}"
                         f"\n--- stderr\n{err[-8000:]}")
        assert "operations passed" in out
        counts = out
        for op in may_disable:
            counts = re.sub(rf"\b{op}=\d+\(disabled\)", "", counts)
        assert "(disabled)" not in counts, f"an operation was unsupported:\n{out}"
    return results


def same_in_upper(ws, name):
    """What the mount shows is what landed in the upper directory."""
    with open(ws.p(name), "rb") as f:
        via_mount = f.read()
    with open(ws.u(name), "rb") as f:
        via_upper = f.read()
    assert len(via_mount) == len(via_upper)
    assert via_mount == via_upper, f"{name}: mount and upper contents differ"


def test_fsx_two_seeds_100k(ws):
    """2 x 50,000 mixed operations, run concurrently on two files."""
    procs = [start_fsx(ws.p("fsx-a"), "-S", "1", "-N", "50000", "-q"),
             start_fsx(ws.p("fsx-b"), "-S", "2", "-N", "50000", "-q")]
    res = finish(procs, timeout=150)
    assert all("50000 operations passed" in r[2] for r in res)
    same_in_upper(ws, "fsx-a")
    same_in_upper(ws, "fsx-a.src")
    same_in_upper(ws, "fsx-b")


def test_fsx_buffered_io_only(ws):
    """Plain buffered read/write/truncate (no mmap, fallocate or copy), on a
    larger file with operations spanning many pages."""
    p = start_fsx(ws.p("fsx-buf"), "-S", "3", "-N", "8000", "-M", "-F", "-C",
                  "-l", "4M", "-o", "512K", "-c", "50")
    finish([p], timeout=90)
    same_in_upper(ws, "fsx-buf")


def test_fsx_odirect(ws):
    """O_DIRECT reads and writes (4 KiB aligned) mixed with mmap and
    buffered access through a second handle."""
    p = start_fsx(ws.p("fsx-dio"), "-S", "4", "-N", "8000", "-Z")
    finish([p], timeout=90)
    same_in_upper(ws, "fsx-dio")


def test_fsx_writeback(make_ws):
    """-o writeback: writes stay in the kernel's page cache and reach the
    daemon later as pages; the data must come out the same, in the mount
    and, after unmounting (which writes everything back), in the upper."""
    w = make_ws(options="allow_other,writeback")
    p = start_fsx(w.p("fsx-wb"), "-S", "6", "-N", "30000", "-q")
    finish([p], timeout=120)
    with open(w.p("fsx-wb"), "rb") as f:
        via_mount = f.read()
    w.umount()
    with open(w.u("fsx-wb"), "rb") as f:
        assert f.read() == via_mount


def test_fsx_small_fd_cache(make_ws):
    """fd_cache=64 while another process keeps touching 500 other files, so
    the daemon keeps evicting and reopening descriptors under fsx."""
    w = make_ws(options="allow_other,fd_cache=64")
    os.mkdir(w.p("churn"))
    for i in range(500):
        with open(w.p("churn", f"f{i}"), "wb") as f:
            f.write(b"%d" % i)
    churn_code = (
        "import os, sys\n"
        "d = sys.argv[1]\n"
        "names = sorted(os.listdir(d))\n"
        "while True:\n"
        "    for n in names:\n"
        "        os.stat(os.path.join(d, n))\n"
        "        with open(os.path.join(d, n), 'rb') as f: f.read()\n")
    churn = subprocess.Popen([sys.executable, "-c", churn_code, w.p("churn")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        p = start_fsx(w.p("fsx-cache"), "-S", "5", "-N", "20000", "-c", "20")
        finish([p], timeout=120)
        assert churn.poll() is None, (
            f"churn process died: {churn.stderr.read().decode()[-2000:]}")
    finally:
        if churn.poll() is None:
            os.kill(churn.pid, signal.SIGKILL)
        churn.wait()
    same_in_upper(w, "fsx-cache")


def test_fsx_catches_corruption(tmpbase):
    """fsx itself must fail when the file changes behind its back (run on a
    plain directory, so this checks the checker, not wsfs)."""
    path = os.path.join(tmpbase, "victim")
    p = subprocess.Popen([fsx_bin(), "-S", "7", "-N", "100000000", "-q", "-M",
                          "-C", "-F", "-c", "0", path],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 5
        while time.time() < deadline and not (
                os.path.exists(path) and os.path.getsize(path) >= 4096):
            time.sleep(0.01)
        with open(path, "r+b") as f:      # what a buggy fs might return
            f.write(b"\xa5" * os.path.getsize(path))
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 1, (p.returncode, out, err[-2000:])
    assert "mismatch" in err and "last 20 operations" in err
    assert "seed 7" in err


def test_fsx_under_quota_keeps_ledger_true(make_ws):
    """30,000 mixed operations (writes, truncates, fallocate, punch, copy,
    mmap) on a workspace with a byte limit large enough never to refuse:
    every size change goes through the ledger, which must equal a fresh
    count of the upper afterwards. Under a limit, fallocate KEEP_SIZE past
    EOF is refused (wsfs(8)), so fsx runs non-strict and disables it."""
    from quota_util import assert_ledger_matches_scan
    w = make_ws(options="allow_other,quota_bytes=1G,quota_inodes=1000")
    p = start_fsx(w.p("fsx-q"), "-S", "7", "-N", "30000", strict=False)
    res = finish([p], timeout=120, may_disable=("falloc_keep",))
    assert "30000 operations passed" in res[0][2]
    assert "falloc_keep not supported" in res[0][3]
    same_in_upper(w, "fsx-q")
    assert_ledger_matches_scan(w)
