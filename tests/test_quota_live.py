"""Quotas over time: live limit changes, soft limits with grace, warning
thresholds, persistence over a clean remount, statfs and df."""
import errno
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

from helpers import expect_errno
from quota_util import (quota_row, BLOCK, K, M, assert_ledger_matches_scan, count_log,
                        ctl, CtlError, fsize, ledger, log_text, make_file,
                        qmount, scan, set_quota, touch, used, wait_ledger,
                        wait_log_count, write_all)

EDQUOT = errno.EDQUOT
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


# ======================================================= live changes

def test_lowering_the_limit_under_a_running_writer(make_ws):
    w = qmount(make_ws, "quota_bytes=64M")
    make_file(w.p("junk"), 256 * K)
    log = []                                  # (start, end, errno or 0)
    stop = threading.Event()
    failure = []

    def writer():
        fd = os.open(w.p("stream"), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                     0o644)
        try:
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    os.write(fd, b"w" * BLOCK)
                    e = 0
                except OSError as ex:
                    e = ex.errno
                log.append((t0, time.monotonic(), e))
                if e not in (0, EDQUOT):
                    failure.append(e)
                    return
                time.sleep(0.002)
        finally:
            os.close(fd)

    t = threading.Thread(target=writer)
    t.start()
    try:
        wait_ledger(w, lambda q: q["bytes_used"] >= 512 * K, timeout=10)
        u = ledger(w)["bytes_used"]
        q = set_quota(w, bytes=u - 512 * K)
        t_low = time.monotonic()
        assert q["bytes_limit"] == u - 512 * K
        time.sleep(0.3)
        after = [e for (t0, _, e) in list(log) if t0 > t_low]
        assert len(after) >= 3, "the writer stalled"
        assert all(e == EDQUOT for e in after), (
            f"writes after the limit was lowered: {after}")
        # deletes still work (not enough to get back under)
        os.unlink(w.p("junk"))
        assert not os.path.exists(w.u("junk"))
        t_del = time.monotonic()
        time.sleep(0.2)
        after = [e for (t0, _, e) in list(log) if t0 > t_del]
        assert after and all(e == EDQUOT for e in after), after
        size_while_low = fsize(w.u("stream"))
        set_quota(w, bytes="64M")
        t_high = time.monotonic()
        time.sleep(0.3)
        after = [e for (t0, _, e) in list(log) if t0 > t_high]
        assert len(after) >= 3 and all(e == 0 for e in after), after
        assert fsize(w.u("stream")) > size_while_low
    finally:
        stop.set()
        t.join(10)
    assert not failure, failure
    ok = sum(1 for (_, _, e) in log if e == 0)
    assert fsize(w.u("stream")) == ok * BLOCK
    assert_ledger_matches_scan(w)


def test_quota_set_errors_change_nothing(make_ws):
    w = qmount(make_ws, "quota_bytes=1M,quota_inodes=10")
    for bad in ("bytes=2M inodes=abc", "bytes=12Q", "nonsense=1", "bytes",
                "warn=200", "grace=-1", "warn=10,20,30,40,50",
                "bytes=99999999999999999999", "inodes=1M bytes=-5"):
        lines = ctl(w, "quota-set " + bad)
        assert lines[0].startswith("error "), (bad, lines)
        q = ledger(w)
        assert (q["bytes_limit"], q["inodes_limit"]) == (1 * M, 10), bad
    q = set_quota(w, bytes=None, inodes="none")
    assert q["bytes_limit"] is None and q["inodes_limit"] is None
    make_file(w.p("big"), 2 * M)
    for i in range(12):
        touch(w.p(f"i{i}"))
    q = set_quota(w, bytes="2M", inodes=13)
    assert (q["bytes_limit"], q["inodes_limit"]) == (2 * M, 13)
    expect_errno(EDQUOT, os.mkdir, w.p("no"))
    with pytest.raises(CtlError):
        set_quota(w, bytes="1X")


# ======================================================= soft limits

def test_soft_limit_with_grace(make_ws):
    w = qmount(make_ws, "quota_soft_bytes=64K,quota_bytes=1M,"
                        "quota_soft_inodes=4,quota_grace=2")
    fd = os.open(w.p("a"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        write_all(fd, b"1" * (60 * K))
        q = ledger(w)
        assert q["bytes_soft"] == 64 * K and q["grace_s"] == 2
        assert q["bytes_soft_since"] == 0
        # past the soft limit within grace: allowed, the timer starts
        write_all(fd, b"2" * (68 * K))
        t_cross = time.monotonic()
        q = ledger(w)
        assert q["bytes_used"] == 128 * K
        assert q["bytes_soft_since"] > 0
        assert abs(q["bytes_soft_since"] - q["now"]) <= 1
        assert abs(q["bytes_soft_since"] - time.time()) <= 2
        for i in range(5):                          # 6 inodes > soft 4
            touch(w.p(f"i{i}"))
        q = ledger(w)
        assert q["inodes_used"] == 6 and q["inodes_soft_since"] > 0
        # the grace runs out: growth is refused while over the soft limit
        deadline = time.monotonic() + 5
        while True:
            try:
                os.write(fd, b"3" * BLOCK)
            except OSError as e:
                assert e.errno == EDQUOT
                break
            assert time.monotonic() < deadline, "the grace never ran out"
            time.sleep(0.05)
        elapsed = time.monotonic() - t_cross
        assert 0.9 <= elapsed <= 3.5, elapsed
        expect_errno(EDQUOT, os.write, fd, b"3")
        # the inode timer started a moment later (maybe a second later on
        # the daemon's whole-second clock): it runs out within a second
        late = 0
        while True:
            try:
                touch(w.p(f"late{late}"))
            except OSError as e:
                assert e.errno == EDQUOT
                break
            late += 1
            assert time.monotonic() < deadline + 1.5, "inode grace never ran out"
            time.sleep(0.05)
        assert time.monotonic() - t_cross <= 4.5
        assert not os.path.exists(w.u(f"late{late}"))
        size_over = fsize(w.u("a"))
        # shrinking, still over the soft limit: growth stays refused
        os.ftruncate(fd, 100 * K)
        expect_errno(EDQUOT, os.write, fd, b"4" * BLOCK)
        assert ledger(w)["bytes_soft_since"] > 0
        # back under: the timer clears and growth within soft works
        os.ftruncate(fd, 40 * K)
        q = ledger(w)
        assert q["bytes_used"] == 40 * K and q["bytes_soft_since"] == 0
        assert os.write(fd, b"5" * (24 * K)) == 24 * K      # to the soft limit
        # crossing again starts a new grace period
        assert os.write(fd, b"6" * BLOCK) == BLOCK
        q = ledger(w)
        assert q["bytes_soft_since"] > 0
        assert size_over > 128 * K
    finally:
        os.close(fd)
    for n in os.listdir(w.mnt):
        if n != "a":
            os.unlink(w.p(n))
    q = ledger(w)
    assert q["inodes_used"] == 1 and q["inodes_soft_since"] == 0
    for i in range(3):
        touch(w.p(f"again{i}"))                     # 4: at the soft limit
    assert ledger(w)["inodes_soft_since"] == 0
    touch(w.p("again3"))                            # over it: a new grace
    assert ledger(w)["inodes_soft_since"] > 0
    assert_ledger_matches_scan(w)


# ======================================================= warnings

def test_warnings_once_per_crossing(make_ws):
    w = qmount(make_ws, "quota_bytes=400K,quota_inodes=20")
    n = w.name
    pat85 = rf"quota warning: workspace {re.escape(n)} reached 85% of its byte limit"
    pat95 = rf"quota warning: workspace {re.escape(n)} reached 95% of its byte limit"
    fd = os.open(w.p("f"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def blocks_to(nb):
        size = fsize(w.u("f"))
        assert size <= nb * BLOCK
        while size < nb * BLOCK:
            size += os.write(fd, b"w" * BLOCK)

    try:
        blocks_to(84)
        time.sleep(0.1)
        assert count_log(w, pat85) == 0
        assert ledger(w)["bytes_warn_level"] == 0
        blocks_to(85)                                   # 85% of 100 blocks
        assert wait_log_count(w, pat85, 1) == 1
        q = ledger(w)
        assert q["bytes_warn_level"] == 85 and q["bytes_warned_at"] > 0
        blocks_to(94)
        assert wait_log_count(w, pat95, 1, timeout=0.2) == 0
        assert count_log(w, pat85) == 1
        blocks_to(95)
        assert wait_log_count(w, pat95, 1) == 1
        assert ledger(w)["bytes_warn_level"] == 95
        blocks_to(99)
        # below both again: re-armed, silently
        os.ftruncate(fd, 80 * BLOCK)
        assert ledger(w)["bytes_warn_level"] == 0
        blocks_to(85)
        assert wait_log_count(w, pat85, 2) == 2
        assert ledger(w)["bytes_warn_level"] == 85
        # one write crossing both thresholds reports both
        os.ftruncate(fd, 80 * BLOCK)
        assert os.write(fd, b"x" * (16 * BLOCK)) == 16 * BLOCK   # to 96
        assert wait_log_count(w, pat85, 3) == 3
        assert wait_log_count(w, pat95, 2) == 2
        assert ledger(w)["bytes_warn_level"] == 95
    finally:
        os.close(fd)
    time.sleep(0.1)
    assert count_log(w, pat85) == 3 and count_log(w, pat95) == 2
    # inodes: 85% of 20 is 17, 95% is 19
    ipat85 = rf"workspace {re.escape(n)} reached 85% of its inode limit"
    ipat95 = rf"workspace {re.escape(n)} reached 95% of its inode limit"
    for i in range(15):
        touch(w.p(f"i{i}"))                            # 16 inodes
    assert wait_log_count(w, ipat85, 1, timeout=0.2) == 0
    touch(w.p("i15"))
    assert wait_log_count(w, ipat85, 1) == 1
    assert ledger(w)["inodes_warn_level"] == 85
    touch(w.p("i16"))
    touch(w.p("i17"))
    assert wait_log_count(w, ipat95, 1) == 1
    assert ledger(w)["inodes_warn_level"] == 95
    assert count_log(w, ipat85) == 1


def test_custom_warn_thresholds_from_quota_set(make_ws):
    w = qmount(make_ws, "quota_bytes=100K,quota_warn=50")
    pat = rf"workspace {re.escape(w.name)} reached (\d+)% of its byte limit"
    make_file(w.p("a"), 48 * K)
    assert re.findall(pat, log_text(w)) == []
    make_file(w.p("b"), 4 * K)                            # 52 KiB
    wait_log_count(w, pat, 1)
    assert re.findall(pat, log_text(w)) == ["50"]
    q = set_quota(w, warn="60,70")
    assert q["warn"] == "60,70"
    make_file(w.p("c"), 20 * K)                           # 72 KiB
    assert wait_log_count(w, pat, 3) == 3
    assert re.findall(pat, log_text(w)) == ["50", "60", "70"]


# ======================================================= persistence

def test_limits_and_usage_survive_a_clean_remount(make_ws):
    w = qmount(make_ws, "quota_bytes=1M,quota_inodes=50,quota_soft_bytes=512K,"
                        "quota_grace=1h,quota_warn=80:90")
    make_file(w.p("a"), 100 * K + 1)
    os.mkdir(w.p("d"))
    make_file(w.p("d", "b"), 3000)
    os.link(w.p("d", "b"), w.p("b2"))
    os.symlink("a", w.p("s"))
    os.setxattr(w.p("a"), "user.one", b"1" * 100)
    os.setxattr(w.p("d"), "user.two", b"2" * 200)
    set_quota(w, inodes=60)                         # a live change persists
    before = assert_ledger_matches_scan(w)
    assert quota_row(w)["clean"] == 0
    w.umount()
    row = quota_row(w)
    assert row["clean"] == 1
    assert (row["used_bytes"], row["used_inodes"]) == before
    counted = count_log(w, r"quota: counted ")
    restored = count_log(w, r"restored from a clean unmount")

    w.options = "allow_other"
    w.mount()
    assert count_log(w, r"restored from a clean unmount") == restored + 1
    assert count_log(w, r"quota: counted ") == counted
    q = ledger(w)
    assert (q["bytes_limit"], q["inodes_limit"]) == (1 * M, 60)
    assert (q["bytes_soft"], q["grace_s"], q["warn"]) == (512 * K, 3600, "80,90")
    assert (q["bytes_used"], q["inodes_used"]) == before
    assert q["xattr_inodes"] == 2
    assert quota_row(w)["clean"] == 0
    # the restored xattr charges go with their inodes
    os.unlink(w.p("a"))
    shutil.rmtree(w.p("d"))
    assert_ledger_matches_scan(w)
    assert ledger(w)["xattr_inodes"] == 0
    assert used(w) == (2 * BLOCK, 2)            # b2 and s
    expect_errno(EDQUOT, os.truncate, w.p("b2"), 1 * M + 1)
    # options given at a later mount override the stored limits they name
    w.umount()
    w.options = "allow_other,quota_bytes=2M"
    w.mount()
    q = ledger(w)
    assert (q["bytes_limit"], q["inodes_limit"], q["bytes_soft"]) == (
        2 * M, 60, 512 * K)
    os.truncate(w.p("b2"), 1 * M + 1)
    assert_ledger_matches_scan(w)


def test_grace_timer_survives_a_clean_remount(make_ws):
    # Remounting must not restart a running grace period.
    w = qmount(make_ws, "quota_soft_bytes=64K,quota_grace=1h")
    make_file(w.p("a"), 100 * K)
    since = ledger(w)["bytes_soft_since"]
    assert since > 0
    time.sleep(1.1)
    w.umount()
    w.options = "allow_other"
    w.mount()
    q = ledger(w)
    assert q["bytes_soft_since"] == since
    assert q["now"] > since


def test_writeback_and_a_byte_limit_do_not_mix(make_ws):
    w = make_ws(options="allow_other,writeback,quota_bytes=1M", mount=False)
    r = w.mount(check=False)
    assert r.returncode != 0
    assert "writeback" in r.stderr
    w2 = make_ws(options="allow_other,writeback,quota_inodes=2")
    lines = ctl(w2, "quota-set bytes=1M")
    assert lines[0].startswith("error ") and "writeback" in lines[0]
    assert ledger(w2)["bytes_limit"] is None
    touch(w2.p("a"))
    touch(w2.p("b"))
    expect_errno(EDQUOT, touch, w2.p("c"))


def test_moved_upper_is_rescanned(make_ws):
    w = qmount(make_ws, "quota_bytes=1M")
    make_file(w.p("a"), 10 * K)
    w.umount()
    new = os.path.join(w.base, "upper2")
    os.rename(w.upper, new)
    w.upper = new
    make_file(w.u("b"), 20 * K)                  # while unmounted
    w.mount()
    assert re.search(rf"quota: counted {re.escape(w.name)}: 2 inodes, 32 KiB "
                     r"in 2 entries in [\d.]+ s \(the upper directory "
                     r"changed\)", log_text(w)), log_text(w)
    assert used(w) == (32 * K, 2)
    assert_ledger_matches_scan(w)


def test_clean_remount_trusts_the_ledger_and_rescan_recounts(make_ws):
    w = qmount(make_ws, "quota_bytes=1M")
    make_file(w.p("a"), 64 * K)
    before = used(w)
    w.umount()
    # changed behind the daemon's back (unsupported): proves no scan ran
    with open(w.u("sneaky"), "wb") as f:
        f.write(b"s" * (32 * K))
    w.options = "allow_other"
    w.mount()
    assert used(w) == before
    assert scan(w) == (before[0] + 32 * K, before[1] + 1)
    w.umount()
    w.options = "allow_other,quota_rescan"
    w.mount()
    assert re.search(r"quota: counted \S+: 2 inodes, 96 KiB in 2 entries in "
                     r"[\d.]+ s \(quota_rescan given\)", log_text(w)), log_text(w)
    assert used(w) == (96 * K, 2)
    assert_ledger_matches_scan(w)


# ======================================================= statfs and df

def test_statfs_reports_the_limits(make_ws):
    w = qmount(make_ws, "quota_bytes=10M,quota_inodes=1000")
    make_file(w.p("a"), 1 * M + 1)
    os.mkdir(w.p("d"))
    b, i = used(w)
    assert (b, i) == (1 * M + 2 * BLOCK, 2)
    sv = os.statvfs(w.mnt)
    back = os.statvfs(w.upper)
    unit = sv.f_frsize
    assert sv.f_blocks * unit == -(-10 * M // unit) * unit
    assert (sv.f_blocks - sv.f_bfree) * unit == -(-b // unit) * unit
    assert sv.f_bavail * unit == min(10 * M - b, back.f_bavail * back.f_frsize)
    assert sv.f_files == 1000
    assert sv.f_ffree == min(1000 - i, back.f_ffree)
    set_quota(w, bytes=None, inodes=None)
    sv = os.statvfs(w.mnt)
    assert sv.f_blocks == back.f_blocks and sv.f_files == back.f_files


def test_statfs_without_quota_is_the_backing_filesystem(make_ws):
    w = qmount(make_ws)
    sv, back = os.statvfs(w.mnt), os.statvfs(w.upper)
    assert (sv.f_blocks, sv.f_files) == (back.f_blocks, back.f_files)
    assert sv.f_frsize == back.f_frsize


def _df(path):
    r = subprocess.run(["df", "-B1", "--output=size,used,avail", path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    return tuple(int(x) for x in lines[1].split())


def test_df_shows_limit_and_usage(make_ws):
    w = qmount(make_ws, "quota_bytes=10M")
    make_file(w.p("a"), 3 * M + 10)
    b, _ = used(w)
    size, usedb, avail = _df(w.mnt)
    assert size == 10 * M
    assert usedb == b == 3 * M + BLOCK
    back = os.statvfs(w.upper)
    assert avail == min(10 * M - b, back.f_bavail * back.f_frsize)
    # over the limit: nothing available, never negative
    set_quota(w, bytes="2M")
    size, usedb, avail = _df(w.mnt)
    assert (size, avail) == (2 * M, 0)


def test_df_without_quota_shows_the_backing_filesystem(make_ws):
    w = qmount(make_ws)
    size, _, _ = _df(w.mnt)
    bsize, _, _ = _df(w.upper)
    assert size == bsize
