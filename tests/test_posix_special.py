"""Special files through wsfs: FIFOs, UNIX sockets, device nodes (refused
with EPERM by design), mknod of regular files, and the nosuid/nodev mount."""
import errno
import os
import socket
import stat
import threading
import time

import pytest

from helpers import NATIVE, expect_errno, read_file, wsp  # noqa: F401


# ------------------------------------------------------------------ FIFOs

def test_fifo_create_and_pass_data(wsp):
    os.mkfifo(wsp.p("fifo"), 0o640)
    st = os.stat(wsp.p("fifo"))
    assert stat.S_ISFIFO(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert st.st_size == 0
    ust = os.lstat(wsp.u("fifo"))
    assert stat.S_ISFIFO(ust.st_mode) and stat.S_IMODE(ust.st_mode) == 0o640

    payload = os.urandom(200000)           # larger than the pipe buffer
    received = []
    errors = []

    def reader():
        try:
            fd = os.open(wsp.p("fifo"), os.O_RDONLY)
            try:
                chunks = []
                while True:
                    b = os.read(fd, 65536)
                    if not b:
                        break
                    chunks.append(b)
                received.append(b"".join(chunks))
            finally:
                os.close(fd)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    fd = os.open(wsp.p("fifo"), os.O_WRONLY)  # blocks until the reader opens
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    t.join(30)
    assert not t.is_alive()
    assert not errors
    assert received == [payload]
    # a FIFO stores nothing
    assert os.stat(wsp.p("fifo")).st_size == 0


def test_fifo_nonblocking_open_rules(wsp):
    os.mkfifo(wsp.p("fifo"))
    # no reader: a non-blocking writer gets ENXIO
    expect_errno(errno.ENXIO, os.open, wsp.p("fifo"),
                 os.O_WRONLY | os.O_NONBLOCK)
    r = os.open(wsp.p("fifo"), os.O_RDONLY | os.O_NONBLOCK)
    try:
        w = os.open(wsp.p("fifo"), os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(w, b"ping")
            assert os.read(r, 10) == b"ping"
            expect_errno(errno.EAGAIN, os.read, r, 10)
        finally:
            os.close(w)
        assert os.read(r, 10) == b""              # writer gone: EOF
    finally:
        os.close(r)


def test_mkfifo_errors(wsp):
    os.mkfifo(wsp.p("fifo"))
    expect_errno(errno.EEXIST, os.mkfifo, wsp.p("fifo"))
    expect_errno(errno.ENOENT, os.mkfifo, wsp.p("missing", "fifo"))
    assert os.listdir(wsp.u("")) == ["fifo"]


def test_mknod_fifo_and_regular(wsp):
    os.mknod(wsp.p("nodfifo"), stat.S_IFIFO | 0o600)
    os.mknod(wsp.p("nodreg"), stat.S_IFREG | 0o640)
    os.mknod(wsp.p("nodzero"), 0o600)              # type 0 means regular
    assert stat.S_ISFIFO(os.lstat(wsp.u("nodfifo")).st_mode)
    st = os.lstat(wsp.p("nodreg"))
    assert st.st_mode == stat.S_IFREG | 0o640 and st.st_size == 0
    assert os.lstat(wsp.u("nodreg")).st_mode == stat.S_IFREG | 0o640
    assert os.lstat(wsp.u("nodzero")).st_mode == stat.S_IFREG | 0o600
    with open(wsp.p("nodreg"), "wb") as f:
        f.write(b"regular")
    assert read_file(wsp.u("nodreg")) == b"regular"
    # a directory cannot be made with mknod
    expect_errno(errno.EPERM, os.mknod, wsp.p("noddir"), stat.S_IFDIR | 0o755)
    assert not os.path.lexists(wsp.u("noddir"))


# ------------------------------------------------------------------ sockets

def test_unix_socket_bind_connect_exchange(wsp):
    path = wsp.p("sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        srv.bind(path)
        srv.listen(1)
        st = os.lstat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_ISSOCK(os.lstat(wsp.u("sock")).st_mode)
        cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            cli.settimeout(10)
            cli.connect(path)
            conn, _ = srv.accept()
            try:
                conn.settimeout(10)
                cli.sendall(b"hello over wsfs")
                assert conn.recv(100) == b"hello over wsfs"
                conn.sendall(b"reply")
                assert cli.recv(100) == b"reply"
            finally:
                conn.close()
        finally:
            cli.close()
        # binding an existing name fails
        other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            expect_errno(errno.EADDRINUSE, other.bind, path)
        finally:
            other.close()
    finally:
        srv.close()
    # the socket file outlives the socket; a connect now is refused
    cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        expect_errno(errno.ECONNREFUSED, cli.connect, path)
    finally:
        cli.close()
    os.unlink(path)
    assert not os.path.lexists(wsp.u("sock"))


def test_unix_datagram_socket(wsp):
    a = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        a.bind(wsp.p("a.sock"))
        b.bind(wsp.p("b.sock"))
        b.settimeout(10)
        a.sendto(b"datagram", wsp.p("b.sock"))
        data, addr = b.recvfrom(100)
        assert data == b"datagram"
        assert addr == wsp.p("a.sock")
    finally:
        a.close()
        b.close()
    assert sorted(os.listdir(wsp.u(""))) == ["a.sock", "b.sock"]


# ------------------------------------------------------------------ devices

@pytest.mark.skipif(NATIVE, reason="wsfs-specific: ext4 lets root mknod devices")
@pytest.mark.parametrize("kind,dev", [
    (stat.S_IFCHR, (1, 3)),      # /dev/null
    (stat.S_IFCHR, (1, 5)),      # /dev/zero
    (stat.S_IFBLK, (7, 0)),      # loop0
    (stat.S_IFCHR, (0, 0)),      # even a 0:0 char device (overlayfs whiteout)
])
def test_device_nodes_refused(wsp, kind, dev):
    expect_errno(errno.EPERM, os.mknod, wsp.p("dev"), kind | 0o666,
                 os.makedev(*dev))
    assert not os.path.lexists(wsp.p("dev"))
    assert not os.path.lexists(wsp.u("dev"))


@pytest.mark.skipif(NATIVE, reason="wsfs-specific mount options")
def test_mount_is_nosuid_nodev(wsp):
    from conftest import mount_options
    opts = mount_options(wsp.mnt)
    assert opts is not None, "mount not found in mountinfo"
    assert "nosuid" in opts
    assert "nodev" in opts


@pytest.mark.skipif(NATIVE, reason="wsfs-specific: device nodes in the upper")
def test_device_node_planted_in_upper_is_not_usable(wsp):
    # Something created behind the daemon's back: even if listed, nodev
    # means it cannot be opened as a device.
    os.mknod(wsp.u("planted"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    try:
        st = os.lstat(wsp.p("planted"))
    except OSError:
        return                    # hiding it is acceptable too
    assert stat.S_ISCHR(st.st_mode)
    expect_errno(errno.EACCES, os.open, wsp.p("planted"), os.O_RDONLY)



# ------------------------------------------------------------------ locks

def _child(fn):
    """Run FN in a forked child; returns its exit code (FN returns an int)."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = fn()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_posix_record_locks_between_processes(wsp):
    import fcntl
    with open(wsp.p("f"), "wb") as f:
        f.write(b"x" * 100)
    fd = os.open(wsp.p("f"), os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)        # bytes [0, 10)

        def contender():
            cfd = os.open(wsp.p("f"), os.O_RDWR)
            try:
                fcntl.lockf(cfd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
                return 0
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    return 3
            # a disjoint range is free
            fcntl.lockf(cfd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 50)
            return 1

        assert _child(contender) == 1
        fcntl.lockf(fd, fcntl.LOCK_UN, 10, 0)
        assert _child(contender) == 0
    finally:
        os.close(fd)


def test_flock_between_processes(wsp):
    import fcntl
    with open(wsp.p("f"), "wb"):
        pass
    fd = os.open(wsp.p("f"), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)

        def contender():
            cfd = os.open(wsp.p("f"), os.O_RDONLY)
            try:
                fcntl.flock(cfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return 0
            except OSError as e:
                return 1 if e.errno == errno.EWOULDBLOCK else 3

        assert _child(contender) == 1
        fcntl.flock(fd, fcntl.LOCK_UN)
        assert _child(contender) == 0
    finally:
        os.close(fd)


def test_o_append_from_concurrent_processes(wsp):
    with open(wsp.p("log"), "wb"):
        pass
    lines = 300

    def appender(tag):
        def run():
            fd = os.open(wsp.p("log"), os.O_WRONLY | os.O_APPEND)
            try:
                for i in range(lines):
                    os.write(fd, f"{tag}{i:05d}".encode().ljust(63, b".")
                             + b"\n")
            finally:
                os.close(fd)
            return 0
        return run

    pids = []
    for tag in "AB":
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = appender(tag)()
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    data = read_file(wsp.u("log"))
    assert len(data) == 2 * lines * 64
    got = data.split(b"\n")[:-1]
    assert all(len(line) == 63 for line in got)
    assert sorted(got) == sorted(
        f"{t}{i:05d}".encode().ljust(63, b".") for t in "AB"
        for i in range(lines))
    assert read_file(wsp.p("log")) == data


# ------------------------------------------------------------------ exec

def test_exec_from_mount_and_etxtbsy(wsp):
    import shutil
    import subprocess
    shutil.copy("/bin/sleep", wsp.p("mysleep"))
    os.chmod(wsp.p("mysleep"), 0o755)
    r = subprocess.run([wsp.p("mysleep"), "0"], timeout=30)
    assert r.returncode == 0
    proc = subprocess.Popen([wsp.p("mysleep"), "30"])
    try:
        # bounded poll until the child has exec'd the file
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if os.readlink(f"/proc/{proc.pid}/exe").endswith("mysleep"):
                    break
            except OSError:
                pass
            time.sleep(0.01)
        expect_errno(errno.ETXTBSY, os.open, wsp.p("mysleep"), os.O_WRONLY)
    finally:
        proc.kill()
        proc.wait(10)
    os.close(os.open(wsp.p("mysleep"), os.O_WRONLY))
    # without exec permission
    os.chmod(wsp.p("mysleep"), 0o644)
    expect_errno(errno.EACCES, subprocess.run, [wsp.p("mysleep"), "0"])


@pytest.mark.skipif(NATIVE, reason="wsfs-specific: the mount is nosuid")
def test_setuid_binary_does_not_elevate(wsp):
    import shutil
    from conftest import run_as
    shutil.copy("/usr/bin/id", wsp.p("id"))
    os.chmod(wsp.p("id"), 0o4755)              # root-owned, setuid
    assert os.stat(wsp.u("id")).st_mode & stat.S_ISUID
    r = run_as(1000, 1000, [wsp.p("id"), "-u"], text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1000"
