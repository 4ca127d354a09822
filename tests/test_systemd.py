"""systemd integration: readiness notification and the wsfs@.service unit.

No systemd runs here (and none in CI), so the manager is played by the
test: a datagram socket named in $NOTIFY_SOCKET receives what the daemon
sends, with the sender's pid from SCM_CREDENTIALS, as systemd checks it for
NotifyAccess=main.  The unit file is checked offline by systemd-analyze,
and its ExecStart= and ExecStop= are run as systemd would run them.
"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import BUILD, ROOT, WSCTL, WSFS, Workspace, is_mounted, pid_alive

UNIT_IN = os.path.join(ROOT, "tools", "wsfs@.service.in")


# ---- the manager's side of $NOTIFY_SOCKET ---------------------------------

class Manager:
    """A notification socket: a path, or an abstract name ("@...")."""

    def __init__(self, address):
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind("\0" + address[1:] if address[0] == "@" else address)

    def env(self, **extra):
        e = dict(os.environ, NOTIFY_SOCKET=self.address)
        e.update(extra)
        return e

    def receive(self, timeout=30):
        """One message: (dict of assignments, sender pid)."""
        self.sock.settimeout(timeout)
        data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        text = data.decode()
        assert text.endswith("\n") or "\n" not in text
        fields = dict(line.split("=", 1) for line in text.splitlines() if line)
        return fields, pid

    def nothing_pending(self, wait=0.5):
        self.sock.settimeout(wait)
        try:
            self.sock.recv(4096)
        except socket.timeout:
            return True
        return False

    def close(self):
        self.sock.close()
        if self.address[0] == "/" and os.path.exists(self.address):
            os.unlink(self.address)


@pytest.fixture
def manager(tmpbase):
    m = Manager(os.path.join(tmpbase, "notify.sock"))
    yield m
    m.close()


@pytest.fixture
def abstract_manager():
    m = Manager(f"@wsfs-test-notify-{os.getpid()}-{time.monotonic_ns()}")
    yield m
    m.close()


@pytest.fixture
def procs():
    """Processes a test starts; any still running at the end are killed."""
    started = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)


def foreground(w, manager, procs):
    cmd = [WSFS, "-f", "-o", w.opts(), w.mnt]
    p = subprocess.Popen(cmd, env=manager.env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    procs.append(p)
    w.pid = p.pid
    return p


def check_ready(fields, sender, w, main_pid):
    # Only now may the mount be live, and it must be: the manager starts
    # units ordered after this one as soon as READY=1 arrives.
    assert fields.get("READY") == "1", fields
    assert is_mounted(w.mnt), "READY=1 before the mount was live"
    assert fields.get("MAINPID") == str(main_pid)
    assert w.name in fields.get("STATUS", "")
    return sender


def test_foreground_ready_and_stopping(make_ws, manager, procs):
    w = make_ws(mount=False, name="notify-fg")
    p = foreground(w, manager, procs)
    fields, sender = manager.receive()
    check_ready(fields, sender, w, p.pid)
    assert sender == p.pid      # NotifyAccess=main: the main process speaks
    assert manager.nothing_pending()
    subprocess.run(["fusermount3", "-u", w.mnt], check=True, timeout=30)
    fields, sender = manager.receive()
    assert fields.get("STOPPING") == "1", fields
    assert sender == p.pid
    assert p.wait(timeout=30) == 0
    assert not is_mounted(w.mnt)


def test_abstract_socket_and_sigterm(make_ws, abstract_manager, procs):
    w = make_ws(mount=False, name="notify-abs")
    p = foreground(w, abstract_manager, procs)
    fields, sender = abstract_manager.receive()
    check_ready(fields, sender, w, p.pid)
    p.send_signal(signal.SIGTERM)           # systemd's KillSignal=
    fields, _ = abstract_manager.receive()
    assert fields.get("STOPPING") == "1"
    assert p.wait(timeout=30) == 0
    assert not is_mounted(w.mnt)


def test_detached_parent_hands_over_mainpid(make_ws, manager):
    w = make_ws(mount=False, name="notify-bg")
    p = subprocess.Popen([WSFS, "-o", w.opts(), w.mnt], env=manager.env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        fields, sender = manager.receive()
        assert p.wait(timeout=30) == 0
        w.pid = w.daemon_pid()
        # The process the manager started sends it, naming the daemon.
        assert sender == p.pid
        check_ready(fields, sender, w, w.pid)
        assert w.pid != p.pid
        os.kill(w.pid, signal.SIGTERM)
        fields, sender = manager.receive()
        assert fields.get("STOPPING") == "1"
        assert sender == w.pid
        assert w.wait_exit(30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_no_ready_when_the_mount_fails(tmpbase, manager):
    w = Workspace(os.path.join(tmpbase, "bad"), name="notify-bad")
    shutil.rmtree(w.upper)
    r = subprocess.run([WSFS, "-f", "-o", w.opts(), w.mnt],
                       env=manager.env(), capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0
    assert manager.nothing_pending()
    assert not is_mounted(w.mnt)


def test_unusable_address_is_ignored(make_ws):
    w = make_ws(mount=False, name="notify-rel")
    r = subprocess.run([WSFS, "-o", w.opts(), w.mnt],
                       env=dict(os.environ, NOTIFY_SOCKET="relative/sock"),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    w.pid = w.daemon_pid()
    assert "NOTIFY_SOCKET ignored" in r.stderr
    assert is_mounted(w.mnt)


def test_children_do_not_inherit_the_socket(make_ws, manager, procs,
                                            tmpbase):
    # The audit anchor command is a child of the daemon; with a checkpoint
    # after every record it runs right after the mount record.
    out = os.path.join(tmpbase, "anchor-env")
    w = make_ws(mount=False, name="notify-env",
                options=f"audit_checkpoint=1,audit_anchor=|echo "
                        f"\"[${{NOTIFY_SOCKET-unset}}]\" >> {out}")
    p = foreground(w, manager, procs)
    fields, _ = manager.receive()
    assert fields.get("READY") == "1"
    deadline = time.time() + 20
    while time.time() < deadline and not os.path.exists(out):
        time.sleep(0.05)
    with open(out) as f:
        assert f.readline().strip() == "[unset]"
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0


# ---- the unit file --------------------------------------------------------

def unit_settings(path):
    """[(section, key, value)] of a unit file, comments dropped."""
    out, section = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            k, v = line.split("=", 1)
            out.append((section, k.strip(), v.strip()))
    return out


def setting(settings, key):
    vals = [v for _, k, v in settings if k == key]
    assert len(vals) == 1, f"{key}: {vals}"
    return vals[0]


@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    """The unit as meson configures it for a prefix whose sbin holds this
    build's wsctl and wsfs: an installed tree, without installing."""
    base = tmp_path_factory.mktemp("unit")
    prefix = base / "prefix"
    (prefix / "sbin").mkdir(parents=True)
    r = subprocess.run(["meson", "setup", f"--prefix={prefix}",
                        str(base / "build"), ROOT],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    for exe in (WSCTL, WSFS):
        shutil.copy2(exe, prefix / "sbin")
    unit = base / "build" / "tools" / "wsfs@.service"
    assert unit.exists()
    man8 = base / "man" / "man8"
    man8.mkdir(parents=True)
    for page in ("wsfs.8", "wsctl.8"):
        shutil.copy(os.path.join(ROOT, "man", page), man8)
    return {"prefix": str(prefix), "unit": str(unit), "base": str(base),
            "man": str(base / "man")}


def analyze(configured, args, unit_dir):
    # Documentation=man:... is checked with man(1) when it is installed;
    # point it at our pages.
    env = dict(os.environ, MANPATH=configured["man"] + ":")
    man = [] if shutil.which("man") else ["--man=no"]
    return subprocess.run(["systemd-analyze"] + args[:1] + man + args[1:],
                          capture_output=True, text=True, timeout=60,
                          cwd=unit_dir, env=env)


def instance(configured, name="demo", text=None):
    d = os.path.join(configured["base"], f"units-{name}")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "wsfs@.service")
    if text is None:
        shutil.copy(configured["unit"], path)
    else:
        with open(path, "w") as f:
            f.write(text)
    return d, os.path.join(d, f"wsfs@{name}.service")


def test_unit_verifies_cleanly(configured):
    d, inst = instance(configured)
    r = analyze(configured, ["verify", inst], d)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and r.stdout == "", r.stdout + r.stderr


def test_verify_would_catch_a_mistake(configured):
    # The check above means something only if systemd-analyze reports
    # problems here: an unknown directive and a missing binary.
    with open(configured["unit"]) as f:
        text = f.read()
    bad = text.replace("Type=notify", "Type=notify\nNotifyAcess=main")
    d, inst = instance(configured, "typo", bad)
    r = analyze(configured, ["verify", inst], d)
    assert "NotifyAcess" in r.stderr
    gone = text.replace(configured["prefix"] + "/sbin/wsctl", "/nonexistent/wsctl")
    d, inst = instance(configured, "gone", gone)
    r = analyze(configured, ["verify", inst], d)
    assert r.returncode != 0 and "/nonexistent/wsctl" in r.stderr


MOUNT_NAMESPACE_DIRECTIVES = (
    "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
    "PrivateMounts", "PrivateNetwork", "PrivateIPC", "PrivateUsers",
    "MountFlags", "ReadOnlyPaths", "ReadWritePaths", "InaccessiblePaths",
    "ExecPaths", "NoExecPaths", "BindPaths", "BindReadOnlyPaths",
    "TemporaryFileSystem", "ProtectKernelTunables", "ProtectKernelModules",
    "ProtectKernelLogs", "ProtectControlGroups", "ProtectProc", "ProcSubset",
    "RootDirectory", "RootImage", "MountImages", "ExtensionImages",
    "LogNamespace", "NetworkNamespacePath", "IPCNamespacePath")


def test_unit_directives(configured):
    s = unit_settings(configured["unit"])
    sbin = os.path.join(configured["prefix"], "sbin")
    assert setting(s, "Type") == "notify"
    assert setting(s, "NotifyAccess") == "main"
    assert setting(s, "ExecStart") == f"{sbin}/wsctl mount --foreground %i"
    assert setting(s, "ExecStop") == f"-{sbin}/wsctl umount %i"
    assert setting(s, "Restart") == "on-failure"
    assert setting(s, "KillSignal") == "SIGTERM"
    assert setting(s, "KillMode") == "mixed"
    assert setting(s, "WantedBy") == "multi-user.target"
    assert "local-fs.target" in setting(s, "After").split()
    assert setting(s, "Documentation").split() == ["man:wsfs(8)", "man:wsctl(8)"]
    assert setting(s, "NoNewPrivileges") == "yes"
    assert setting(s, "DevicePolicy") == "closed"
    assert setting(s, "DeviceAllow") == "/dev/fuse rw"
    assert setting(s, "RestrictAddressFamilies") == "AF_UNIX"
    assert set(setting(s, "CapabilityBoundingSet").split()) == {
        "CAP_SYS_ADMIN", "CAP_DAC_READ_SEARCH", "CAP_DAC_OVERRIDE",
        "CAP_FOWNER", "CAP_CHOWN", "CAP_FSETID", "CAP_SETUID", "CAP_SETGID",
        "CAP_SETPCAP", "CAP_MKNOD"}
    # Any of these gives the service its own mount namespace, and the
    # workspace would be mounted where no container can see it.
    present = [k for _, k, _ in s if k in MOUNT_NAMESPACE_DIRECTIVES]
    assert present == []


def test_security_review_offline(configured):
    d, inst = instance(configured)
    r = analyze(configured, ["security", "--offline=true", "--no-pager", inst], d)
    if "--offline" in r.stderr and "unrecognized" in r.stderr:
        pytest.skip("systemd-analyze security cannot run offline here")
    m = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    # 9.6 is an unhardened root service; this one keeps what a FUSE
    # daemon acting for other uids needs and drops the rest.
    assert float(m.group(1)) <= 6.0, r.stdout


def test_install_puts_unit_and_completion_in_place(tmp_path):
    dest = tmp_path / "dest"
    r = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild",
                        "--destdir", str(dest)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    units = list(dest.rglob("wsfs@.service"))
    assert len(units) == 1
    assert units[0].parent.match("*/systemd/system")
    comps = [p for p in dest.rglob("wsctl") if p.parent.name == "completions"]
    assert len(comps) == 1
    assert comps[0].parent.parent.name == "bash-completion"
    # The unit's ExecStart names the wsctl that the same install put down.
    start = setting(unit_settings(units[0]), "ExecStart").split()[0]
    assert os.access(str(dest) + start, os.X_OK), start


# ---- a service run without systemd ----------------------------------------

def service_command(configured, key, name):
    argv = setting(unit_settings(configured["unit"]), key).split()
    if argv[0].startswith("-"):
        argv[0] = argv[0][1:]
    return [a.replace("%i", name) for a in argv]


@pytest.fixture
def service_state(tmpbase):
    """A state directory with one declared workspace; unmounts whatever is
    left mounted under it."""
    state = os.path.join(tmpbase, "svc-state")
    upper = os.path.join(tmpbase, "svc-upper")
    os.makedirs(upper)
    env = dict(os.environ, WSFS_STATE=state)
    r = subprocess.run([WSCTL, "create", "svc1", "--upper", upper],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    yield {"state": state, "env": env,
           "mnt": os.path.join(state, "run", "mnt", "svc1")}
    mnt = os.path.join(state, "run", "mnt", "svc1")
    if is_mounted(mnt):
        subprocess.run(["umount", "-l", mnt], capture_output=True)


def test_service_start_and_stop_as_systemd_would(configured, service_state,
                                                 manager, procs):
    env = manager.env(WSFS_STATE=service_state["state"])
    start = service_command(configured, "ExecStart", "svc1")
    stop = service_command(configured, "ExecStop", "svc1")
    p = subprocess.Popen(start, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    procs.append(p)
    fields, sender = manager.receive()
    assert fields.get("READY") == "1", fields
    assert is_mounted(service_state["mnt"])
    # wsctl exec'd the daemon: the main process is the one systemd started.
    assert sender == p.pid and fields["MAINPID"] == str(p.pid)
    with open(f"/proc/{p.pid}/comm") as f:
        assert f.read().strip() == "wsfs"
    r = subprocess.run(stop, env=dict(os.environ, **service_state["env"]),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # ExecStop returned once the daemon had finished, as systemd expects.
    assert p.poll() == 0
    assert manager.receive()[0].get("STOPPING") == "1"
    assert not is_mounted(service_state["mnt"])
    # A second stop (the daemon already gone) fails: hence the '-' prefix
    # in ExecStop=, so a clean stop is not turned into a failure.
    r = subprocess.run(stop, env=dict(os.environ, **service_state["env"]),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 6, (r.returncode, r.stderr)


def test_service_sigterm_is_a_clean_stop(configured, service_state, manager,
                                         procs):
    env = manager.env(WSFS_STATE=service_state["state"])
    p = subprocess.Popen(service_command(configured, "ExecStart", "svc1"),
                         env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    procs.append(p)
    assert manager.receive()[0].get("READY") == "1"
    # Busy: a process has its working directory in the mount, so an
    # unmount by name would fail; SIGTERM still ends it.
    holder = subprocess.Popen(["sleep", "60"], cwd=service_state["mnt"])
    procs.append(holder)
    try:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 0
        assert not is_mounted(service_state["mnt"])
    finally:
        holder.kill()
        holder.wait()
    assert not pid_alive(p.pid)
