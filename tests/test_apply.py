"""`wsctl apply -f FILE` and `wsctl edit NAME`: workspace definitions as
YAML (wsfs.conf(5)).

What is checked: many workspaces declared from one file, as stored in
state.db's workspaces/layers/quotas tables; updates, including a quota
change reaching a mounted daemon live; idempotence; --dry-run leaving
state.db as it was; every malformed file giving one "wsctl: FILE:LINE:COL:"
line, status 8 and no change at all (the first workspace of each bad file
is valid, so an apply that was not all-or-nothing would show); stdin; odd
paths; and `edit` with editors that change, keep, break or rename.

Workspaces mounted here are mounted through `wsctl mount` and are always
unmounted, and their daemons ended by pid, by the `mounted` fixture.
"""
import os
import re
import signal
import sqlite3
import stat
import subprocess
import time

import pytest

from conftest import WSCTL, is_mounted, pid_alive

MiB = 1 << 20
ERR_RE = r"^wsctl: (?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<msg>.*)$"


# ---------------------------------------------------------------- helpers

class Env:
    """A private state directory, an upper and some host directories."""

    def __init__(self, base):
        self.base = base
        self.state = os.path.join(base, "state")
        self.tmp = os.path.join(base, "tmp")
        self.data = os.path.join(base, "data")
        for d in ("u1", "u2", "u3", "tmp", "data/docs", "data/team",
                  "data/base", "data/models"):
            os.makedirs(os.path.join(base, d), exist_ok=True)

    def p(self, *parts):
        return os.path.join(self.base, *parts)

    def run(self, *args, input=None, env=None):
        e = dict(os.environ)
        e.pop("VISUAL", None)
        e["TMPDIR"] = self.tmp
        e.update(env or {})
        return subprocess.run([WSCTL, "--state", self.state] + list(args),
                              capture_output=True, text=True, timeout=60,
                              input=input, env=e)

    def write(self, name, text):
        path = self.p(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def apply(self, text, *extra, check=True):
        r = self.run("apply", "-f", self.write("ws.yaml", text), *extra)
        if check:
            assert r.returncode == 0, (r.stdout, r.stderr)
            assert r.stderr == "", r.stderr
        return r

    def db(self):
        return sqlite3.connect(os.path.join(self.state, "state.db"),
                               timeout=5)

    def query(self, sql, *args):
        db = self.db()
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def dump(self):
        """Every row of state.db, in a stable order ([] if there is none)."""
        if not os.path.exists(os.path.join(self.state, "state.db")):
            return []
        db = self.db()
        try:
            return list(db.iterdump())
        finally:
            db.close()

    def workspace(self, name):
        rows = self.query("SELECT upper, mountpoint, audit, options, "
                          "updated FROM workspaces WHERE name=?", name)
        return rows[0] if rows else None

    def layers(self, name):
        return self.query("SELECT mode, source, target FROM layers "
                          "WHERE name=? ORDER BY position", name)

    def limits(self, name):
        rows = self.query("SELECT bytes, inodes, soft_bytes, grace, warn "
                          "FROM quotas WHERE name=?", name)
        return rows[0] if rows else None


@pytest.fixture
def env(tmpbase):
    return Env(tmpbase)


def one_error(r, status=8):
    """R failed with STATUS and one 'wsctl: FILE:LINE:COL: ' line."""
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one stderr line, got {lines}"
    m = re.match(ERR_RE, lines[0])
    assert m, lines[0]
    assert r.stdout == "", r.stdout
    return m


def yq(s):
    """S as a single-quoted YAML scalar."""
    return "'" + s.replace("'", "''") + "'"


def lines_of(r):
    return r.stdout.splitlines()


# ------------------------------------------------------- create, update

def three(env):
    return f"""\
version: "3.8"
workspaces:
  agent1:
    upper: {env.p('u1')}
    audit: full
    options: [allow_other]
    quota:
      bytes: 10G
      inodes: 100k
    volumes:
      - source: {env.p('data/docs')}
        target: /input
      - source: {env.p('data/team')}
        target: /shared
        read_only: false
      - type: tmpfs
        target: /tmp
      - {env.p('data/models')}:/models:ro
  agent2:
    upper: {env.p('u2')}/
    mountpoint: {env.p('mnt2')}//
    volumes:
      - source: {env.p('data/base')}
        target: /
        mode: cow
      - {env.p('data/team')}:/team:rw
  scratch:
    ephemeral: true
    quota: {{bytes: none, inodes: 1000}}
"""


def test_apply_creates_many_workspaces_from_one_file(env):
    r = env.apply(three(env))
    out = lines_of(r)
    assert [l for l in out if not l.startswith("  ")] == [
        "create agent1", "create agent2", "create scratch"], out
    assert env.workspace("agent1")[:4] == (env.p("u1"), None, "full",
                                           "allow_other")
    # The upper is stored as its real path: a trailing slash is dropped.
    assert env.workspace("agent2")[:4] == (env.p("u2"), env.p("mnt2"), None,
                                           None)
    assert env.workspace("scratch")[0] is None
    assert env.layers("agent1") == [
        ("ro", env.p("data/docs"), "/input"),
        ("shared", env.p("data/team"), "/shared"),
        ("ephemeral", None, "/tmp"),
        ("ro", env.p("data/models"), "/models")]
    assert env.layers("agent2") == [
        ("cow", env.p("data/base"), "/"),
        ("shared", env.p("data/team"), "/team")]
    assert env.layers("scratch") == [("ephemeral", None, "/")]
    assert env.limits("agent1")[:2] == (10 << 30, 100 * 1024)
    assert env.limits("agent2")[:2] == (None, None)
    assert env.limits("scratch")[:2] == (None, 1000)


def test_reapply_changes_nothing_and_says_unchanged(env):
    env.apply(three(env))
    before = env.dump()
    updated = [env.workspace(n)[4] for n in ("agent1", "agent2", "scratch")]
    time.sleep(1.1)     # an update would now show in `updated`
    r = env.apply(three(env))
    assert lines_of(r) == ["unchanged agent1", "unchanged agent2",
                           "unchanged scratch"]
    assert [env.workspace(n)[4] for n in ("agent1", "agent2",
                                          "scratch")] == updated
    assert env.dump() == before


def test_update_reports_each_changed_field(env):
    env.apply(three(env))
    text = three(env).replace("audit: full", "audit: off").replace(
        "inodes: 100k", "inodes: 200k")
    r = env.apply(text)
    out = lines_of(r)
    assert "update agent1: audit full -> off" in out, out
    assert any(l.startswith("update agent1: inodes ") for l in out), out
    assert "unchanged agent2" in out and "unchanged scratch" in out, out
    assert env.workspace("agent1")[2] == "off"
    assert env.limits("agent1")[1] == 200 * 1024


def test_apply_never_deletes_workspaces_missing_from_the_file(env):
    env.apply(three(env))
    r = env.apply(f"workspaces:\n  agent1:\n    upper: {env.p('u1')}\n")
    assert lines_of(r)[0].startswith("update agent1"), r.stdout
    names = [n for (n,) in env.query("SELECT name FROM workspaces "
                                     "ORDER BY name")]
    assert names == ["agent1", "agent2", "scratch"]
    # The file is the whole truth for what it names: its volumes are gone.
    assert env.layers("agent1") == []


def test_dry_run_prints_and_changes_nothing(env):
    env.apply(f"workspaces:\n  agent1:\n    upper: {env.p('u1')}\n")
    before = env.dump()
    r = env.apply(three(env), "--dry-run")
    out = lines_of(r)
    heads = [l for l in out if not l.startswith("  ")]
    assert heads[0].startswith("would update agent1: "), out
    assert "would create agent2" in heads and "would create scratch" in heads
    assert all(l.startswith("would ") for l in heads), out
    assert env.dump() == before


def test_stdin(env):
    r = env.run("apply", "-f", "-", input=three(env))
    assert r.returncode == 0, r.stderr
    assert "create scratch" in lines_of(r)
    r = env.run("apply", "-f", "-", input="workspaces:\n  x:\n    upr: /\n")
    m = one_error(r)
    assert (m["file"], m["line"], m["col"]) == ("<stdin>", "3", "5")


def test_anchors_and_aliases_are_followed(env):
    text = f"""\
x-limits: &limits
  bytes: 1G
  inodes: 5000
workspaces:
  a: &ws
    upper: {env.p('u1')}
    quota: *limits
  b:
    upper: {env.p('u2')}
    quota: *limits
"""
    env.apply(text)
    assert env.limits("a")[:2] == env.limits("b")[:2] == (1 << 30, 5000)


def test_many_workspaces(env):
    n = 150
    text = "workspaces:\n" + "".join(
        f"  w{i:03d}:\n    ephemeral: true\n    quota: {{inodes: {i}}}\n"
        for i in range(n))
    r = env.apply(text)
    heads = [l for l in lines_of(r) if not l.startswith("  ")]
    assert heads == [f"create w{i:03d}" for i in range(n)]
    assert env.query("SELECT count(*) FROM workspaces") == [(n,)]
    assert env.limits("w149")[1] == 149


def test_odd_paths(env, editors):
    odd = env.p("data/we ird # dir, ü 'q' \"dq\"")
    up = env.p("up per #1")
    os.makedirs(odd)
    os.makedirs(up)
    text = f"""\
workspaces:
  odd:
    upper: {yq(up)}
    volumes:
      - source: {yq(odd)}
        target: /in
"""
    env.apply(text)
    assert env.workspace("odd")[0] == up
    assert env.layers("odd") == [("ro", odd, "/in")]
    # The short form cannot hold ':' at all, nor can a layer (the rules of
    # -o layer=): the long form says so at the source.
    colon = env.p("data/a:b")
    os.makedirs(colon)
    bad = text + f"      - source: {colon}\n        target: /c\n"
    m = one_error(env.apply(bad, check=False))
    assert (m["line"], m["col"]) == ("7", "17"), m.group(0)
    assert "contains ':'" in m["msg"]
    # edit round trip: the emitted file reads back to the same definition.
    r = env.run("edit", "odd", env={"EDITOR": editors(
        "addcomment", "echo '# touched' >> \"$1\"\n")})
    assert r.returncode == 0, r.stderr
    assert lines_of(r) == ["unchanged odd"], r.stdout


# ---------------------------------------------------------- bad files

BASE = "workspaces:\n  fresh:\n    upper: {u1}\n"


def bad_cases():
    """(id, text after BASE, line, col, message fragment); line 4 is the
    bad workspace's name."""
    return [
        ("unknown-ws-key", "  bad:\n    upper: {u2}\n    uper: /x\n",
         6, 5, "unknown key 'uper' in workspace 'bad'; allowed: upper"),
        ("unknown-top-key", "extra: 1\n", 4, 1,
         "unknown key 'extra' in the file; allowed: version, workspaces"),
        ("unknown-quota-key",
         "  bad:\n    upper: {u2}\n    quota:\n      byts: 1G\n",
         7, 7, "unknown key 'byts' in quota"),
        ("unknown-volume-key",
         "  bad:\n    upper: {u2}\n    volumes:\n      - source: {docs}\n"
         "        target: /x\n        readonly: true\n",
         9, 9, "unknown key 'readonly' in a volume"),
        ("duplicate-name", "  fresh:\n    upper: {u2}\n", 4, 3,
         "duplicate key 'fresh' in workspaces (first at line 2)"),
        ("duplicate-key", "  bad:\n    upper: {u2}\n    upper: {u3}\n",
         6, 5, "duplicate key 'upper'"),
        ("bad-size", "  bad:\n    upper: {u2}\n    quota: {{bytes: 10GB}}\n",
         6, 20, "invalid size '10GB'"),
        ("negative-count",
         "  bad:\n    upper: {u2}\n    quota: {{inodes: -5}}\n",
         6, 21, "invalid inode count '-5'"),
        ("relative-source",
         "  bad:\n    upper: {u2}\n    volumes:\n      - source: data/docs\n"
         "        target: /x\n",
         7, 17, "source 'data/docs' is not an absolute path"),
        ("missing-source-dir",
         "  bad:\n    upper: {u2}\n    volumes:\n      - source: {nodir}\n"
         "        target: /x\n",
         7, 17, "No such file or directory"),
        ("target-dotdot",
         "  bad:\n    upper: {u2}\n    volumes:\n      - source: {docs}\n"
         "        target: /x/../etc\n",
         8, 17, "has a '..' component"),
        ("read-only-maybe",
         "  bad:\n    upper: {u2}\n    volumes:\n      - source: {docs}\n"
         "        target: /x\n        read_only: maybe\n",
         9, 20, "read_only must be true or false, not 'maybe'"),
        ("read-only-quoted",
         "  bad:\n    upper: {u2}\n    volumes:\n      - source: {docs}\n"
         "        target: /x\n        read_only: \"true\"\n",
         9, 20, "read_only must be true or false"),
        ("mode-bogus",
         "  bad:\n    upper: {u2}\n    volumes:\n      - source: {docs}\n"
         "        target: /x\n        mode: bogus\n",
         9, 15, "unknown volume mode 'bogus'"),
        ("read-only-and-shared",
         "  bad:\n    upper: {u2}\n    volumes:\n      - source: {docs}\n"
         "        target: /x\n        read_only: true\n        mode: shared\n",
         9, 20, "read_only: true conflicts with mode: shared"),
        ("short-mode-bogus",
         "  bad:\n    upper: {u2}\n    volumes: [\"{docs}:/x:rx\"]\n",
         6, 15, "unknown mode 'rx'"),
        ("tmpfs-with-source",
         "  bad:\n    upper: {u2}\n    volumes:\n      - type: tmpfs\n"
         "        target: /t\n        source: {docs}\n",
         9, 9, "a tmpfs volume has no source"),
        ("volume-type",
         "  bad:\n    upper: {u2}\n    volumes:\n      - type: volume\n"
         "        target: /t\n",
         7, 15, "unknown volume type 'volume'"),
        ("no-target",
         "  bad:\n    upper: {u2}\n    volumes:\n      - source: {docs}\n",
         7, 9, "a volume needs 'target'"),
        ("overlapping-targets",
         "  bad:\n    upper: {u2}\n    volumes:\n      - {docs}:/x\n"
         "      - {team}:/x/y:rw\n",
         6, 5, "layers overlap: '/x' and '/x/y'"),
        ("source-is-upper",
         "  bad:\n    upper: {u2}\n    volumes: [\"{u2}:/x\"]\n",
         6, 5, "is the upper"),
        ("upper-and-ephemeral",
         "  bad:\n    ephemeral: true\n    upper: {u2}\n", 6, 5,
         "'upper' conflicts with 'ephemeral: true'"),
        ("neither-upper-nor-ephemeral", "  bad:\n    audit: meta\n", 4, 3,
         "workspace 'bad' needs 'upper'"),
        ("empty-workspace", "  bad:\n", 4, 3, "workspace 'bad' is empty"),
        ("workspace-not-mapping", "  bad: [1, 2]\n", 4, 8,
         "workspace 'bad' must be a mapping, not a list"),
        ("upper-not-string", "  bad:\n    upper: [/a]\n", 5, 12,
         "upper must be a single value, not a list"),
        ("upper-relative", "  bad:\n    upper: u2\n", 5, 12,
         "upper 'u2' is not an absolute path"),
        ("upper-shared-with-fresh", "  bad:\n    upper: {u1}/\n", 5, 12,
         "overlaps the upper of workspace 'fresh'"),
        ("ephemeral-string", "  bad:\n    ephemeral: yes\n", 5, 16,
         "ephemeral must be true or false, not 'yes'"),
        ("audit-level", "  bad:\n    upper: {u2}\n    audit: all\n", 6, 12,
         "audit 'all': use off, meta or full"),
        ("options-string",
         "  bad:\n    upper: {u2}\n    options: allow_other\n", 6, 14,
         "options must be a list"),
        ("option-reserved",
         "  bad:\n    upper: {u2}\n    options: [ro, quota_bytes=1]\n", 6, 19,
         "mount option 'quota_bytes=1' has a setting of its own"),
        ("slash-in-name", "  a/b:\n    upper: {u2}\n", 4, 3,
         "invalid workspace name 'a/b'"),
        ("long-name", "  " + "n" * 65 + ":\n    upper: {u2}\n", 4, 3,
         "longer than 64 bytes"),
        ("bad-indentation", "  bad:\n    upper: {u2}\n   audit: off\n",
         6, 4, "did not find expected key"),
        ("tab-indentation", "  bad:\n\tupper: {u2}\n", 5, 1,
         "found character that cannot start any token"),
        ("nul-escape", "  bad:\n    upper: \"/x\\0y\"\n", 5, 12,
         "upper contains a NUL byte"),
        ("second-document", "---\nworkspaces: {{}}\n", 4, 1,
         "a second YAML document"),
        ("mountpoint-in-upper",
         "  bad:\n    upper: {u2}\n    mountpoint: {u2}/mnt\n", 6, 17,
         "lies inside the upper"),
    ]


@pytest.mark.parametrize("case", bad_cases(), ids=lambda c: c[0])
def test_bad_file_is_refused_whole_with_its_position(env, case):
    _, tail, line, col, frag = case
    env.apply(f"workspaces:\n  before:\n    upper: {env.p('u3')}\n")
    before = env.dump()
    subs = {k: env.p(v) for k, v in (("u1", "u1"), ("u2", "u2"),
                                      ("u3", "u3"), ("docs", "data/docs"),
                                      ("team", "data/team"),
                                      ("nodir", "data/nope"))}
    text = BASE.format(**subs) + tail.format(**subs)
    path = env.write("bad.yaml", text)
    r = env.run("apply", "-f", path)
    m = one_error(r)
    assert m["file"] == path
    assert (int(m["line"]), int(m["col"])) == (line, col), m.group(0)
    assert frag in m["msg"], m.group(0)
    assert env.dump() == before
    assert env.workspace("fresh") is None


def whole_file_cases(env):
    return [
        (b"", 1, 1, "the file is empty"),
        (b"# only a comment\n", 1, 1, "the file is empty"),
        (b"workspaces:\n  a:\n    upper: /x\x00\n", 3, 14,
         "control characters are not allowed"),
        (b"workspaces:\n  a:\n    upper: \xff\xfe\n", 3, 12,
         "invalid"),
        (b"- a\n- b\n", 1, 1, "the file must be a mapping, not a list"),
        (b"version: 3\n", 1, 1, "no 'workspaces' key"),
        (b"version: {a: 1}\nworkspaces: {}\n", 1, 10,
         "version must be a single value"),
        (b"workspaces:\n", 1, 12, "workspaces must be a mapping, not empty"),
        (b"workspaces: [a]\n", 1, 13, "workspaces must be a mapping"),
        (b"workspaces:\n  a: {upper: /x\n", 3, 1, "did not find expected"),
        # An alias to its own anchor must end in an error, not a loop.
        (b"x-a: &a [*a]\nworkspaces:\n  w:\n    ephemeral: true\n"
         b"    volumes: *a\n", 1, 6, "a volume must be a single value"),
        (b"workspaces: &r\n  w: *r\n", 2, 3, "unknown key 'w' in workspace"),
    ]


def test_whole_file_errors(env):
    env.apply(f"workspaces:\n  before:\n    upper: {env.p('u3')}\n")
    before = env.dump()
    for data, line, col, frag in whole_file_cases(env):
        path = env.p("w.yaml")
        with open(path, "wb") as f:
            f.write(data)
        m = one_error(env.run("apply", "-f", path))
        assert (int(m["line"]), int(m["col"])) == (line, col), (data, m[0])
        assert frag in m["msg"], (data, m.group(0))
        assert env.dump() == before


def test_huge_file_is_refused(env):
    path = env.p("huge.yaml")
    with open(path, "w") as f:
        f.write("workspaces: {}\n" + "#" * 80 + "\n")
        f.write(("# " + "x" * 1000 + "\n") * (17 * 1024))
    r = env.run("apply", "-f", path)
    assert r.returncode == 8, r.stderr
    assert r.stderr.count("\n") == 1 and "larger than 16 MiB" in r.stderr


def test_usage_errors(env):
    r = env.run("apply")
    assert r.returncode == 2 and "missing -f FILE" in r.stderr
    r = env.run("apply", "-f", env.p("nope.yaml"))
    assert r.returncode == 1 and "No such file" in r.stderr
    r = env.run("apply", "-f", "a", "-f", "b")
    assert r.returncode == 2 and "given twice" in r.stderr
    r = env.run("apply", "-f", "--dry-run")
    assert r.returncode == 2 and "needs a file" in r.stderr
    r = env.run("apply", "-f", env.p("x.yaml"), "extra")
    assert r.returncode == 2 and "unexpected argument" in r.stderr
    r = env.run("apply", "--help")
    assert r.returncode == 0 and "apply -f FILE" in r.stdout


def test_empty_workspaces_mapping_is_fine(env):
    r = env.apply("version: 1\nworkspaces: {}\n")
    assert r.stdout == ""


def test_state_directory_inside_an_upper_is_refused_before_any_change(env):
    env.apply(f"workspaces:\n  before:\n    upper: {env.p('u3')}\n")
    before = env.dump()
    text = ("workspaces:\n  ok:\n    ephemeral: true\n"
            f"  bad:\n    upper: {env.base}\n")
    r = env.run("apply", "-f", env.write("s.yaml", text))
    assert r.returncode == 8, (r.stdout, r.stderr)
    assert "state directory" in r.stderr and r.stdout == ""
    assert r.stderr.count("\n") == 1
    assert env.dump() == before


# ---------------------------------------------------------------- edit

def editor(env, name, body):
    return env.write(name, "#!/bin/sh\n" + body)


@pytest.fixture
def editors(env):
    def make(name, body):
        path = editor(env, name, body)
        os.chmod(path, 0o755)
        return path
    return make


def one_ws(env, extra=""):
    env.apply(f"workspaces:\n  e1:\n    upper: {env.p('u1')}\n"
              f"    quota:\n      bytes: 1M\n{extra}")


def tmp_files(env):
    return sorted(os.listdir(env.tmp))


def test_edit_changes_a_field(env):
    one_ws(env)
    r = env.run("edit", "e1", env={"EDITOR": "sed -i s/1048576/8M/"})
    assert r.returncode == 0, r.stderr
    assert lines_of(r) == ["update e1: bytes 1 MiB -> 8 MiB"], r.stdout
    assert env.limits("e1")[0] == 8 * MiB
    assert tmp_files(env) == []


def test_edit_shows_the_apply_format(env, editors):
    one_ws(env, "    audit: meta\n    volumes: [\"" + env.p("data/docs") +
           ":/in\"]\n")
    copy = env.p("shown.yaml")
    r = env.run("edit", "e1", env={"EDITOR": editors(
        "copy", f"cp \"$1\" '{copy}'\nstat -c %a \"$1\" > '{copy}.mode'\n")})
    assert r.returncode == 0 and lines_of(r) == ["unchanged e1"], r.stderr
    text = open(copy).read()
    assert open(copy + ".mode").read().strip() == "600"
    assert "workspaces:\n  e1:\n" in text
    assert f"upper: {env.p('u1')}\n" in text
    assert "bytes: 1048576\n" in text and "inodes: none\n" in text
    # The same file applies back to the same definition.
    r = env.run("apply", "-f", copy)
    assert r.returncode == 0 and lines_of(r) == ["unchanged e1"], r.stdout


def test_edit_unchanged(env):
    one_ws(env)
    before = env.dump()
    r = env.run("edit", "e1", env={"EDITOR": "true"})
    assert r.returncode == 0, r.stderr
    assert r.stdout == "unchanged e1\n"
    assert env.dump() == before and tmp_files(env) == []


def test_edit_round_trip_keeps_every_setting(env, editors):
    odd = env.p("data/sp ace: #x é")
    os.makedirs(odd.replace(":", "_"))
    src = odd.replace(":", "_")
    one_ws(env, "      inodes: 7\n      soft_bytes: 512K\n      grace: 2h\n"
                "      warn: [50, 90]\n    options: [allow_other, acl]\n"
                "    mountpoint: /run/wsfs test/e1\n    volumes:\n"
                f"      - source: \"{src}\"\n        target: /in\n"
                f"      - source: {env.p('data/base')}\n        target: /\n"
                "        mode: cow\n      - type: tmpfs\n        target: /t\n")
    before = env.dump()
    r = env.run("edit", "e1", env={"EDITOR": editors(
        "touch", "echo '# reread' >> \"$1\"\n")})
    assert r.returncode == 0, r.stderr
    assert lines_of(r) == ["unchanged e1"], r.stdout
    assert env.dump() == before


def test_edit_ephemeral_round_trip(env, editors):
    env.apply("workspaces:\n  s:\n    ephemeral: true\n    volumes:\n"
              "      - type: tmpfs\n        target: /tmp\n")
    r = env.run("edit", "s", env={"EDITOR": editors(
        "touch2", "echo '# reread' >> \"$1\"\n")})
    assert r.returncode == 0 and lines_of(r) == ["unchanged s"], r.stderr


def test_edit_invalid_yaml_keeps_the_file(env, editors):
    one_ws(env)
    before = env.dump()
    r = env.run("edit", "e1", env={"EDITOR": editors(
        "break", "sed -i 's/bytes: 1048576/bytes: [1/' \"$1\"\n")})
    m = one_error(r)
    kept = m["file"]
    assert os.path.dirname(kept) == env.tmp and os.path.exists(kept)
    assert "the edit is kept in " + kept in m["msg"]
    text = open(kept).read()
    assert "bytes: [1" in text
    line = [i for i, l in enumerate(text.splitlines(), 1) if "bytes: [1" in l]
    assert int(m["line"]) >= line[0], m.group(0)
    assert env.dump() == before
    os.unlink(kept)


def test_edit_bad_value_names_its_line(env, editors):
    one_ws(env)
    r = env.run("edit", "e1", env={"EDITOR": "sed -i s/1048576/1.5G/"})
    m = one_error(r)
    text = open(m["file"]).read().splitlines()
    assert "bytes: 1.5G" in text[int(m["line"]) - 1]
    assert text[int(m["line"]) - 1].index("1.5G") + 1 == int(m["col"])
    os.unlink(m["file"])


def test_edit_editor_failure_changes_nothing(env, editors):
    one_ws(env)
    before = env.dump()
    r = env.run("edit", "e1", env={"EDITOR": editors(
        "fail", "sed -i s/1048576/8M/ \"$1\"\nexit 3\n")})
    assert r.returncode == 1, r.stderr
    assert "exited with status 3" in r.stderr and r.stderr.count("\n") == 1
    assert env.dump() == before and tmp_files(env) == []


def test_edit_cannot_rename(env):
    one_ws(env)
    before = env.dump()
    r = env.run("edit", "e1", env={"EDITOR": "sed -i s/e1:/e2:/"})
    m = one_error(r)
    assert (m["line"], m["col"]) == ("5", "3"), m.group(0)
    assert "must stay named 'e1'" in m["msg"]
    assert env.dump() == before
    os.unlink(m["file"])


def test_edit_needs_exactly_one_workspace(env, editors):
    one_ws(env)
    r = env.run("edit", "e1", env={"EDITOR": editors(
        "add", f"printf '  e9:\\n    upper: {env.p('u2')}\\n' >> \"$1\"\n")})
    m = one_error(r)
    assert "exactly one workspace" in m["msg"], m.group(0)
    assert env.workspace("e9") is None
    os.unlink(m["file"])


def test_edit_unknown_name(env):
    one_ws(env)
    r = env.run("edit", "nope", env={"EDITOR": "true"})
    assert r.returncode == 3 and "no workspace named 'nope'" in r.stderr


def test_edit_prefers_visual_and_passes_editor_arguments(env, editors):
    one_ws(env)
    r = env.run("edit", "e1", env={"VISUAL": "sed -i -e s/1048576/2M/",
                                   "EDITOR": "false"})
    assert r.returncode == 0, r.stderr
    assert env.limits("e1")[0] == 2 * MiB


# ------------------------------------------------- live quota on a mount

def mount_pid(env, name):
    rows = env.query("SELECT pid FROM mounts WHERE name=?", name)
    return rows[0][0] if rows else None


@pytest.fixture
def mounted(env):
    """mount(name) -> mountpoint, through `wsctl mount`; all unmounted and
    their daemons ended by pid at teardown."""
    started = []

    def mount(name):
        r = env.run("mount", name)
        assert r.returncode == 0, (r.stdout, r.stderr)
        mnt = env.query("SELECT mountpoint FROM mounts WHERE name=?",
                        name)[0][0]
        started.append((name, mnt, mount_pid(env, name)))
        return mnt

    yield mount
    for name, mnt, pid in started:
        env.run("umount", name)
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-u", mnt], capture_output=True)
        if is_mounted(mnt):
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        deadline = time.time() + 5
        while pid and pid_alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def write_mib(path, n):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for _ in range(n):
            os.write(fd, b"x" * MiB)
    finally:
        os.close(fd)


def ws_file(env, bytes_):
    return (f"workspaces:\n  live:\n    upper: {env.p('u1')}\n"
            f"    mountpoint: {env.p('mnt')}\n    quota:\n"
            f"      bytes: {bytes_}\n")


def test_quota_change_reaches_a_mounted_workspace_live(env, mounted):
    os.makedirs(env.p("mnt"))
    env.apply(ws_file(env, "1M"))
    mnt = mounted("live")
    assert os.path.realpath(mnt) == env.p("mnt")
    with pytest.raises(OSError) as e:
        write_mib(os.path.join(mnt, "big"), 2)
    assert e.value.errno == 122     # EDQUOT
    r = env.apply(ws_file(env, "8M"))
    assert lines_of(r) == ["update live: bytes 1 MiB -> 8 MiB (live)"], \
        r.stdout
    write_mib(os.path.join(mnt, "big"), 2)
    assert os.path.getsize(os.path.join(mnt, "big")) == 2 * MiB
    # And through edit, back down: the next write past it fails again.
    r = env.run("edit", "live", env={"EDITOR": "sed -i s/8388608/3M/"})
    assert r.returncode == 0, r.stderr
    assert lines_of(r) == ["update live: bytes 8 MiB -> 3 MiB (live)"]
    with pytest.raises(OSError) as e:
        write_mib(os.path.join(mnt, "more"), 2)
    assert e.value.errno == 122
