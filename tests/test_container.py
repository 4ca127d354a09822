"""The container recipe of wsfs(8), CONTAINERS, played without a runtime.

The host declares and mounts a workspace with wsctl; the "container" is a
child in its own mount namespace (unshare --mount --propagation private)
that bind-mounts the workspace at a directory standing for /output, as
docker -v or a Kubernetes hostPath volume does, and runs the agent as
uid/gid 1000 with no capabilities (setpriv).  A last case adds a user
namespace mapping container uids 0-65535 to host 100000-165535, as rootless
podman or a userns-remapped docker does.
"""
import json
import os
import subprocess
import textwrap

import pytest

from conftest import WSCTL, is_mounted, pid_alive

AGENT = 1000
QUOTA = 1024 * 1024

# Runs in the container as the agent; prints one JSON object of outcomes
# (an errno name, or a value).
AGENT_SCRIPT = textwrap.dedent(r'''
    import errno, json, os, sys
    out = sys.argv[1]
    res = {}
    def attempt(key, fn):
        try:
            res[key] = fn()
            if res[key] is None:
                res[key] = "ok"
        except OSError as e:
            res[key] = errno.errorcode[e.errno]
    def create():
        os.makedirs(out + "/work", exist_ok=True)
        with open(out + "/work/result.txt", "w") as f:
            f.write("agent output\n")
    attempt("create", create)
    attempt("owner", lambda: os.stat(out + "/work/result.txt").st_uid)
    attempt("read_input", lambda: open(out + "/input/doc.txt").read())
    attempt("write_input", lambda: open(out + "/input/doc.txt", "a").close())
    attempt("new_in_input", lambda: open(out + "/input/new", "w").close())
    def fill():
        with open(out + "/big", "wb") as f:
            for _ in range(4):
                f.write(b"x" * (512 * 1024))
    attempt("over_quota", fill)
    def df():
        st = os.statvfs(out)
        return st.f_blocks * st.f_frsize
    attempt("df_total", df)
    attempt("chown_root", lambda: os.chown(out + "/work/result.txt", 0, 0))
    # Escape attempts: a symlink and '..' are resolved in the container's
    # view, never by the daemon in the host's.
    attempt("symlink", lambda: os.symlink("../secret", out + "/esc"))
    attempt("via_symlink", lambda: open(out + "/esc").read())
    attempt("via_dotdot", lambda: open(out + "/work/../../secret").read())
    attempt("root_list", lambda: sorted(os.listdir(out)))
    print(json.dumps(res))
''')


# The user-namespace container: util-linux's --map-users needs newuidmap
# (package uidmap), so the maps are written by the parent, which as root
# may map any range.  The child then makes its mount namespace, binds the
# workspace and becomes the agent, all inside the user namespace.
USERNS_HELPER = textwrap.dedent(r'''
    import ctypes, os, sys
    mnt, out, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x00020000
    MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
    def check(r, what):
        if r != 0:
            e = ctypes.get_errno()
            sys.exit(f"{what}: {os.strerror(e)}")
    go_r, go_w = os.pipe()
    up_r, up_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_w); os.close(up_r)
        check(libc.unshare(CLONE_NEWUSER), "unshare(user)")
        os.write(up_w, b"u"); os.close(up_w)
        if os.read(go_r, 1) != b"g":
            os._exit(92)
        os.setresgid(0, 0, 0); os.setresuid(0, 0, 0)
        check(libc.unshare(CLONE_NEWNS), "unshare(mnt)")
        check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None),
              "make / private")
        check(libc.mount(mnt.encode(), out.encode(), None, MS_BIND, None),
              "bind")
        os.setgroups([])
        os.setresgid(1000, 1000, 1000); os.setresuid(1000, 1000, 1000)
        os.execvp(argv[0], argv)
    os.close(go_r); os.close(up_w)
    if os.read(up_r, 1) != b"u":
        os.waitpid(pid, 0)
        sys.exit("the child could not make its user namespace")
    for m in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{m}", "w") as f:
            f.write("0 100000 65536\n")
    os.write(go_w, b"g")
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
''')


def container(mnt, out, argv, uid=AGENT, userns=False):
    """Runs ARGV as the agent in a fresh mount namespace where MNT is
    bind-mounted at OUT.  The namespace, and the bind, end with it."""
    if userns:
        cmd = ["/usr/bin/python3", "-c", USERNS_HELPER, mnt, out] + argv
    else:
        inner = ("mount --bind \"$0\" \"$1\" && shift && exec setpriv "
                 f"--reuid {uid} --regid {uid} --clear-groups "
                 "--inh-caps=-all -- \"$@\"")
        cmd = ["unshare", "--mount", "--propagation", "private",
               "sh", "-c", inner, mnt, out] + argv
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


class HostWorkspace:
    """A workspace declared and mounted with wsctl, as the recipe does."""

    def __init__(self, base, name, allow_other=True):
        self.base = base
        self.name = name
        self.state = os.path.join(base, "state")
        self.upper = os.path.join(base, "ws", "upper")
        self.mnt = os.path.join(base, "run", name)
        self.input = os.path.join(base, "documents")
        self.pid = None
        for d in (self.upper, self.mnt, self.input):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.base, 0o755)
        with open(os.path.join(self.input, "doc.txt"), "w") as f:
            f.write("input document\n")
        # Writable by anyone on the host: whatever the agent gets writing
        # it through the mount is the layer's doing, not the mode's.
        os.chmod(self.input, 0o777)
        os.chmod(os.path.join(self.input, "doc.txt"), 0o666)
        with open(os.path.join(base, "ws", "secret"), "w") as f:
            f.write("host secret\n")
        args = ["create", name, "--upper", self.upper,
                "--layer", f"{self.input}:/input", "--bytes", str(QUOTA)]
        if allow_other:
            args.append("--allow-other")
        r = self.wsctl(*args)
        assert r.returncode == 0, r.stderr
        os.chmod(self.upper, 0o777)      # the agent's own directory

    def wsctl(self, *args):
        return subprocess.run([WSCTL, "--state", self.state] + list(args),
                              capture_output=True, text=True, timeout=60)

    def mount(self):
        r = self.wsctl("mount", self.name, self.mnt)
        assert r.returncode == 0, r.stderr
        assert is_mounted(self.mnt)
        st = json.loads(self.wsctl("status", self.name, "--json").stdout)
        self.pid = int(st["pid"])

    def cleanup(self):
        if is_mounted(self.mnt):
            self.wsctl("umount", self.name)
        if is_mounted(self.mnt):
            subprocess.run(["umount", "-l", self.mnt], capture_output=True)
        if self.pid is not None and pid_alive(self.pid):
            os.kill(self.pid, 9)


@pytest.fixture
def host(tmpbase):
    made = []

    def factory(name, allow_other=True):
        w = HostWorkspace(os.path.join(tmpbase, name), name, allow_other)
        made.append(w)
        w.mount()
        return w

    yield factory
    for w in made:
        w.cleanup()


def output_dir(tmpbase):
    out = os.path.join(tmpbase, "container", "output")
    os.makedirs(out, exist_ok=True)
    os.chmod(os.path.dirname(out), 0o755)
    return out


def run_agent(w, out, userns=False):
    r = container(w.mnt, out, ["/usr/bin/python3", "-c", AGENT_SCRIPT, out],
                  userns=userns)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_agent_in_a_container(host, tmpbase):
    w = host("agent1")
    out = output_dir(tmpbase)
    res = run_agent(w, out)
    assert res["create"] == "ok"
    assert res["owner"] == AGENT
    # The file is the agent's on the host too, in the upper.
    st = os.stat(os.path.join(w.upper, "work", "result.txt"))
    assert (st.st_uid, st.st_gid) == (AGENT, AGENT)
    assert res["read_input"] == "input document\n"
    assert res["write_input"] == "EROFS"
    assert res["new_in_input"] == "EROFS"
    assert res["over_quota"] == "EDQUOT"
    assert res["df_total"] == QUOTA
    assert res["chown_root"] == "EPERM"
    assert res["symlink"] == "ok"
    # ../secret beside the upper is not reachable from inside.
    assert res["via_symlink"] == "ENOENT"
    assert res["via_dotdot"] == "ENOENT"
    assert res["root_list"] == ["big", "esc", "input", "work"]
    # The symlink is kept as written, not followed on the host's side.
    assert os.readlink(os.path.join(w.upper, "esc")) == "../secret"
    # The container's bind went with its namespace; the host mount stays.
    assert not is_mounted(out)
    assert is_mounted(w.mnt)


def test_without_allow_other_the_agent_is_refused(host, tmpbase):
    w = host("agent2", allow_other=False)
    out = output_dir(tmpbase)
    r = container(w.mnt, out, ["/usr/bin/python3", "-c",
                               "import os, sys; os.listdir(sys.argv[1])", out])
    assert r.returncode != 0
    assert "PermissionError" in r.stderr and "Errno 13" in r.stderr
    # Root on the host still gets in: only other uids are refused.
    assert os.listdir(w.mnt) == ["input"]


def test_user_namespace_maps_the_agent_to_a_host_uid(host, tmpbase):
    w = host("agent3")
    out = output_dir(tmpbase)
    script = textwrap.dedent('''
        import json, os, sys
        out = sys.argv[1]
        with open(out + "/made-in-userns", "w") as f:
            f.write("x")
        st = os.stat(out + "/made-in-userns")
        ls = os.popen("ls -ln " + out + "/made-in-userns").read().split()
        print(json.dumps({"uid": st.st_uid, "ls_owner": ls[2],
                          "getuid": os.getuid()}))
    ''')
    r = container(w.mnt, out, ["/usr/bin/python3", "-c", script, out], userns=True)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    # Inside: the agent is uid 1000 and owns what it made.
    assert res == {"uid": AGENT, "ls_owner": str(AGENT), "getuid": AGENT}
    # On the host (and in the upper) it is uid 101000.
    st = os.stat(os.path.join(w.upper, "made-in-userns"))
    assert (st.st_uid, st.st_gid) == (100000 + AGENT, 100000 + AGENT)
