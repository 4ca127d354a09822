"""The man pages agree with the programs: every wsctl command and every
option its help shows is documented in wsctl(8), every wsfs -o option in
wsfs(8), every exit status wsctl.h defines in EXIT STATUS, and each page
renders without groff errors and has an EXAMPLES section.

The programs' own help is the source here, so a new option that is not
documented fails this test.
"""
import os
import re
import subprocess

import pytest

from conftest import ROOT, WSCTL, WSFS

MAN = os.path.join(ROOT, "man")


def page(name):
    with open(os.path.join(MAN, name)) as f:
        return f.read()


def plain(roff):
    """The page's text with roff escapes for '-' and fonts undone."""
    text = roff.replace("\\-", "-").replace("\\e", "\\")
    return re.sub(r"\\f[BIRP]", "", text)


def section(roff, name):
    m = re.search(r"^\.SH " + re.escape(name) + r"\n(.*?)(?=^\.SH |\Z)", roff,
                  re.S | re.M)
    assert m, f"no {name} section"
    return m.group(1)


def help_text(*args):
    r = subprocess.run([WSCTL] + list(args), capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def commands():
    out = help_text("--help")
    block = out.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    return [l.split()[0] for l in block.splitlines()]


def test_every_command_is_in_the_synopsis_and_commands_section():
    roff = page("wsctl.8")
    synopsis = plain(section(roff, "SYNOPSIS"))
    cmds = plain(section(roff, "COMMANDS"))
    names = commands()
    assert {"create", "set", "edit", "apply", "mount", "umount", "rm", "ls",
            "top", "status", "quota", "locks", "audit", "help"} <= set(names)
    for c in names:
        assert re.search(r"\b" + c + r"\b", synopsis), c
        if c not in ("help", "audit", "quota"):
            assert re.search(r"^\.B[IR]? +" + c + r"\b", cmds, re.M), c


@pytest.mark.parametrize("cmd", commands())
def test_every_option_in_help_is_documented(cmd):
    text = plain(page("wsctl.8"))
    shown = help_text("help", cmd)
    opts = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", shown))
    missing = sorted(o for o in opts if o not in text)
    assert not missing, (cmd, missing)
    # and `CMD --help` shows the same text
    assert help_text(cmd, "--help") == shown


def test_every_daemon_option_is_in_wsfs_8():
    r = subprocess.run([WSFS, "--help"], capture_output=True, text=True,
                       timeout=30)
    out = r.stdout + r.stderr
    ours = out.split("wsfs options:", 1)[1].split("libfuse options:", 1)[0]
    opts = set(re.findall(r"-o ([a-z_]+)", ours))
    assert {"upper", "layer", "shared", "ephemeral", "metrics",
            "metrics_interval", "quota_bytes", "audit"} <= opts
    text = plain(page("wsfs.8"))
    missing = sorted(o for o in opts if not re.search(
        r"\b" + o + r"\b", text))
    assert not missing, missing


def test_every_exit_status_is_documented():
    with open(os.path.join(ROOT, "tools", "wsctl.h")) as f:
        codes = {int(v): n for n, v in re.findall(
            r"#define (WSCTL_[A-Z]+)\s+(\d+)", f.read())}
    assert sorted(codes) == list(range(9)), codes
    status = section(page("wsctl.8"), "EXIT STATUS")
    documented = {int(n) for n in re.findall(r"^\.B (\d+)$", status, re.M)}
    assert documented == set(codes), (documented, codes)


@pytest.mark.parametrize("name", ["wsfs.8", "wsctl.8", "wsfs.conf.5"])
def test_pages_render_and_have_examples(name):
    roff = page(name)
    assert "\n.SH EXAMPLES\n" in roff
    assert "\n.SH SEE ALSO\n" in roff
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z",
                        os.path.join(MAN, name)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # tables wider than 80 columns are allowed: they fold in a terminal
    errors = [l for l in r.stderr.splitlines()
              if "table wider than line width" not in l]
    assert not errors, errors


def test_conf_page_documents_every_key_the_parser_knows():
    with open(os.path.join(ROOT, "tools", "wsdef_yaml.c")) as f:
        src = f.read()
    text = plain(page("wsfs.conf.5"))
    keys = {"workspaces", "upper", "ephemeral", "mountpoint", "quota",
            "audit", "options", "volumes", "source", "target", "read_only",
            "mode", "type", "bytes", "inodes", "version"}
    for k in keys:
        assert f'"{k}"' in src, k           # the parser knows it
        assert re.search(r"\b" + k + r"\b", text), k
