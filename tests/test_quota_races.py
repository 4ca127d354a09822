"""Concurrent growth can never pass a quota.

Threads and processes, on their own files and on one O_APPEND file, race to
fill a workspace; creators race for the last inodes; size changes and
namespace changes race on the same files. Usage stays within the limit and
the ledger equals an independent scan of the upper afterwards.
"""
import errno
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from helpers import fallocate
from quota_util import (BLOCK, K, M, assert_ledger_matches_scan, charge_data,
                        fsize, ledger, make_file, qmount, read_upper, touch,
                        used, writer_loop)

EDQUOT = errno.EDQUOT
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


# ======================================================= concurrency

NWRITERS = 8
RACE_LIMIT = 16 * M
MAX_DELTA = 64 * K + BLOCK       # the most one refused write can have needed


def _run_threads(jobs):
    results = [None] * len(jobs)
    errors = []
    barrier = threading.Barrier(len(jobs))

    def run(i, job):
        try:
            barrier.wait()
            results[i] = job()
        except BaseException as e:          # noqa: BLE001 - reported below
            errors.append(repr(e))

    ts = [threading.Thread(target=run, args=(i, j)) for i, j in enumerate(jobs)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not any(t.is_alive() for t in ts), "a writer thread hung"
    assert not errors, errors
    return results


PROC_SRC = """
import json, sys
sys.path.insert(0, sys.argv[1])
from quota_util import writer_loop
path, flags, seed, tag = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print("ready", flush=True)
sys.stdin.read(1)
print(json.dumps(writer_loop(path, flags, seed, tag)))
"""


def _run_processes(args):
    procs = []
    try:
        for path, flags, seed, tag in args:
            procs.append(subprocess.Popen(
                [sys.executable, "-c", PROC_SRC, TESTS_DIR, path, str(flags),
                 str(seed), str(tag)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE))
        for p in procs:                      # all ready, then all go
            assert p.stdout.readline() == b"ready\n"
        for p in procs:
            p.stdin.write(b"g")
            p.stdin.flush()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err.decode()
            results.append(json.loads(out))
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _check_race(w, results, sizes):
    total_refused = sum(r[1] for r in results)
    others = [o for r in results for o in r[2]]
    assert not others, f"unexpected outcomes: {others}"
    assert total_refused > 0, "no writer was ever refused"
    assert sum(1 for r in results if r[0] > 0) >= NWRITERS // 2, (
        f"the writers did not overlap: {[r[0] for r in results]}")
    q = ledger(w)
    assert q["bytes_used"] <= RACE_LIMIT, q
    assert RACE_LIMIT - q["bytes_used"] < MAX_DELTA, (
        f"{RACE_LIMIT - q['bytes_used']} bytes left unused after every "
        f"writer was refused: reservations leaked?")
    assert sum(charge_data(s) for s in sizes) == q["bytes_used"]
    b, _ = assert_ledger_matches_scan(w)
    assert b <= RACE_LIMIT


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_concurrent_writers_own_files(make_ws, mode):
    w = qmount(make_ws, f"quota_bytes={RACE_LIMIT}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    args = [(w.p(f"w{i}"), flags, 1000 + i, 65 + i) for i in range(NWRITERS)]
    if mode == "threads":
        results = _run_threads([lambda a=a: writer_loop(*a) for a in args])
    else:
        results = _run_processes(args)
    sizes = [fsize(w.u(f"w{i}")) for i in range(NWRITERS)]
    for i, r in enumerate(results):
        assert sizes[i] == r[0], (
            f"writer {i} wrote {r[0]} bytes but its file has {sizes[i]}")
    _check_race(w, results, sizes)


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_concurrent_appenders_one_file(make_ws, mode):
    w = qmount(make_ws, f"quota_bytes={RACE_LIMIT}")
    touch(w.p("shared"))
    flags = os.O_WRONLY | os.O_APPEND
    args = [(w.p("shared"), flags, 2000 + i, 65 + i) for i in range(NWRITERS)]
    if mode == "threads":
        results = _run_threads([lambda a=a: writer_loop(*a) for a in args])
    else:
        results = _run_processes(args)
    data = read_upper(w.u("shared"))
    assert len(data) == sum(r[0] for r in results)
    for i, r in enumerate(results):
        assert data.count(bytes([65 + i])) == r[0], f"writer {i}"
    _check_race(w, results, [len(data)])


def test_concurrent_creators_fill_inode_limit_exactly(make_ws):
    limit = 400
    w = qmount(make_ws, f"quota_inodes={limit}")

    def creator(t):
        made = refused = 0
        i = 0
        while refused < 3:
            try:
                touch(w.p(f"f{t}_{i}"))
                made += 1
            except OSError as e:
                if e.errno != EDQUOT:
                    raise
                refused += 1
            i += 1
        return made

    made = _run_threads([lambda t=t: creator(t) for t in range(NWRITERS)])
    assert sum(made) == limit
    assert len(os.listdir(w.upper)) == limit
    assert used(w)[1] == limit
    assert_ledger_matches_scan(w)


def _churn(seconds, jobs):
    """Runs each of JOBS (callables taking a random.Random and returning
    None) in a loop in its own thread for SECONDS.  Expected outcomes of
    racing on a few names: EDQUOT, ENOENT, EEXIST, ENOTEMPTY, and ESTALE
    from an open whose file was unlinked under it (ARCHITECTURE.md: a
    stale node fails with ESTALE).  ENOMEM is tolerated too: ext4's
    open_by_handle_at returns it for an inode being deleted, and the daemon
    passes it on (reported separately; not a quota matter).  Anything else
    fails the test."""
    import random
    stop = time.monotonic() + seconds
    errors = []
    counts = [0] * len(jobs)

    def run(i, job):
        rng = random.Random(i)
        try:
            while time.monotonic() < stop:
                try:
                    job(rng)
                except OSError as e:
                    if e.errno not in (EDQUOT, errno.ENOENT, errno.EEXIST, errno.ESTALE, errno.ENOMEM,
                                       errno.ENOTEMPTY):
                        raise
                counts[i] += 1
        except BaseException as e:          # noqa: BLE001 - reported below
            errors.append(f"job {i}: {e!r}")

    ts = [threading.Thread(target=run, args=(i, j)) for i, j in enumerate(jobs)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 30)
    assert not any(t.is_alive() for t in ts), "a job hung"
    assert not errors, errors
    assert all(counts), counts
    return counts


def test_size_changes_racing_on_one_file(make_ws):
    # appends, pwrites, truncates and fallocates on one file at once, at
    # the edge of a 1 MiB limit: the per-file size lock must keep the
    # charge equal to the size whatever the interleaving
    w = qmount(make_ws, "quota_bytes=1M")
    touch(w.p("f"))

    def appender(rng):
        fd = os.open(w.p("f"), os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b"a" * rng.randint(1, 64 * K))
        finally:
            os.close(fd)

    def pwriter(rng):
        fd = os.open(w.p("f"), os.O_WRONLY)
        try:
            os.pwrite(fd, b"p" * rng.randint(1, 16 * K),
                      rng.randint(0, 1100 * K))
        finally:
            os.close(fd)

    def truncater(rng):
        os.truncate(w.p("f"), rng.randint(0, 1100 * K))

    def fallocater(rng):
        fd = os.open(w.p("f"), os.O_RDWR)
        try:
            fallocate(fd, 0, rng.randint(0, 900 * K), rng.randint(1, 200 * K))
        finally:
            os.close(fd)

    _churn(1.0, [appender, appender, pwriter, truncater, fallocater])
    assert fsize(w.u("f")) <= 1 * M
    assert used(w) == (charge_data(fsize(w.u("f"))), 1)
    assert_ledger_matches_scan(w)


def test_open_racing_unlink_keeps_the_ledger_true(make_ws):
    # OPEN of an existing file is not serialized with UNLINK by any
    # directory lock: an unlink landing between the daemon's backing open
    # and its pin of the node must still leave the charge to the last close
    w = qmount(make_ws, "quota_bytes=2M")
    names = [f"n{i}" for i in range(4)]

    def toucher(rng):
        try:
            touch(w.p(rng.choice(names)))
        except FileExistsError:
            pass

    def holder(rng):
        fd = os.open(w.p(rng.choice(names)), os.O_RDWR)
        try:
            os.pwrite(fd, b"h" * (8 * K), 0)
        finally:
            os.close(fd)

    def unlinker(rng):
        os.unlink(w.p(rng.choice(names)))

    _churn(1.5, [toucher, toucher, holder, holder, holder, unlinker,
                 unlinker])
    assert_ledger_matches_scan(w)


def test_unlink_racing_a_create_that_reuses_its_number(make_ws):
    # ext4 gives a freed inode number to the next new file at once, so
    # between an unlink's syscall and its bookkeeping another directory's
    # create can receive the victim's number: the unlink must retire the
    # victim's node, not the new file's (which would charge or free the
    # new file twice later)
    w = qmount(make_ws, "quota_bytes=8M,quota_inodes=200")
    dirs = [f"d{i}" for i in range(4)]
    for d in dirs:
        os.mkdir(w.p(d))
    seen = {d: set() for d in dirs}

    def cycler(d):
        def job(rng):
            p = w.p(d, "f")
            make_file(p, rng.randint(0, 32 * K))
            seen[d].add(os.stat(p).st_ino)
            if rng.random() < 0.5:
                with open(p, "r+b") as f:
                    f.write(b"y" * rng.randint(1, 8 * K))
            os.unlink(p)
        return job

    def subdirs(rng):
        d = w.p(rng.choice(dirs), "sub")
        (os.mkdir if rng.random() < 0.5 else os.rmdir)(d)

    _churn(1.5, [cycler(d) for d in dirs] + [subdirs])
    # the race was really there: some number served files in two
    # directories, which different threads created
    shared = set.union(*[seen[a] & seen[b] for a in dirs for b in dirs
                         if a < b])
    assert shared, "no inode number was reused across threads"
    for d in dirs:
        assert not os.path.exists(w.p(d, "f"))
    assert_ledger_matches_scan(w)


def test_namespace_churn_keeps_the_ledger_true(make_ws):
    # creates (O_TRUNC), hard links, renames over, unlinks, mkdir/rmdir and
    # writes through open files on a small set of names, all at once
    w = qmount(make_ws, "quota_bytes=2M,quota_inodes=60")
    names = [f"n{i}" for i in range(24)]
    os.mkdir(w.p("dir"))

    def creator(rng):
        make_file(w.p(rng.choice(names)), rng.randint(0, 40 * K))

    def linker(rng):
        os.link(w.p(rng.choice(names)), w.p(rng.choice(names)))

    def renamer(rng):
        a, b = rng.choice(names), rng.choice(names)
        os.rename(w.p(a), w.p(b) if rng.random() < 0.7 else w.p("dir", b))

    def unlinker(rng):
        os.unlink(w.p(rng.choice(names)))
        try:
            os.unlink(w.p("dir", rng.choice(names)))
        except FileNotFoundError:
            pass

    def holder(rng):
        fd = os.open(w.p(rng.choice(names)), os.O_RDWR)
        try:
            os.write(fd, b"h" * rng.randint(1, 8 * K))
            time.sleep(0.002)
        finally:
            os.close(fd)

    def dirs(rng):
        d = w.p(f"sub{rng.randint(0, 3)}")
        if rng.random() < 0.5:
            os.mkdir(d)
        else:
            os.rmdir(d)

    _churn(1.0, [creator, creator, linker, renamer, unlinker, holder,
                 dirs])
    assert_ledger_matches_scan(w)
    q = ledger(w)
    assert q["bytes_used"] <= 2 * M and q["inodes_used"] <= 60
    shutil.rmtree(w.p("dir"))
    for n in os.listdir(w.mnt):
        p = w.p(n)
        (os.rmdir if os.path.isdir(p) else os.unlink)(p)
    assert_ledger_matches_scan(w)
    assert used(w) == (0, 0)
