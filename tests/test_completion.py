"""Bash completion for wsctl (tools/wsctl.bash-completion).

Each case runs a non-interactive bash that sources the completion file,
sets COMP_LINE/COMP_POINT/COMP_WORDS/COMP_CWORD as readline would, calls
the completion function and prints COMPREPLY.  The commands and options
expected are read from wsctl's own --help and usage lines, so a command or
option added to wsctl without the completion fails here.
"""
import os
import re
import subprocess

import pytest

from conftest import ROOT, WSCTL

COMPLETION = os.path.join(ROOT, "tools", "wsctl.bash-completion")

# What bash does with the line: a fresh bash, no bash-completion loaded, so
# the file must stand on its own.
_DRIVER = r'''
source "$COMPLETION" || exit 90
complete -p wsctl >/dev/null || exit 91
COMP_LINE=$LINE
COMP_POINT=${#LINE}
read -r -a COMP_WORDS <<<"$LINE"
[[ $LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_wsctl
printf '%s\n' "${COMPREPLY[@]}"
'''


def complete(line, cwd=None, env_extra=None):
    """The candidates bash would offer for LINE (cursor at its end)."""
    env = {k: v for k, v in os.environ.items() if k != "WSFS_STATE"}
    env.update({"COMPLETION": COMPLETION, "LINE": line})
    if env_extra:
        env.update(env_extra)
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", _DRIVER],
                       capture_output=True, text=True, env=env, cwd=cwd,
                       timeout=30)
    assert r.returncode == 0, f"driver failed ({r.returncode}): {r.stderr}"
    assert r.stderr == "", f"completion wrote to stderr: {r.stderr}"
    return [w for w in r.stdout.split("\n") if w]


def wsctl_out(*args):
    r = subprocess.run([WSCTL] + list(args), capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def help_commands():
    """The command words listed under "Commands:" in `wsctl --help`."""
    cmds, inside = [], False
    for line in wsctl_out("--help").splitlines():
        if line.startswith("Commands:"):
            inside = True
        elif inside and not line.strip():
            break
        elif inside:
            cmds.append(line.split()[0])
    assert len(cmds) >= 10, cmds
    return cmds


def usage_options(cmd):
    """The long and short options in the usage line of `wsctl help CMD`."""
    usage = wsctl_out("help", cmd).splitlines()[0]
    usage = usage.split(f"] {cmd} ", 1)[1]     # past "[--state DIR]"
    return set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", usage))


def test_subcommands_are_exactly_those_of_wsctl_help():
    assert sorted(complete(f"{WSCTL} ")) == sorted(help_commands())


def test_prefix_picks_one_command():
    assert complete(f"{WSCTL} st") == ["status"]
    assert sorted(complete(f"{WSCTL} u")) == ["umount"]
    assert complete(f"{WSCTL} nosuch") == []


def test_global_options():
    assert sorted(complete(f"{WSCTL} -")) == sorted(
        ["--state", "-h", "--help", "-V", "--version"])
    # After a global option the command is still to come.
    assert sorted(complete(f"{WSCTL} --state /tmp ")) == sorted(help_commands())


@pytest.mark.parametrize("cmd", ["create", "set", "apply", "mount", "rm",
                                 "ls", "top", "status", "locks", "edit",
                                 "umount"])
def test_every_option_in_the_usage_line_is_offered(cmd):
    words = complete(f"{WSCTL} {cmd} agent1 -")
    want = usage_options(cmd)
    assert want <= set(words), f"missing: {sorted(want - set(words))}"
    assert {"-h", "--help"} <= set(words)
    # Nothing offered that the command's help does not mention.
    documented = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)",
                                wsctl_out("help", cmd)))
    assert set(words) - documented <= {"-h", "--help"}


def test_create_options_and_values():
    words = complete(f"{WSCTL} create agent1 --")
    for opt in ("--upper", "--mountpoint", "--layer", "--shared",
                "--ephemeral", "--bytes", "--inodes", "--audit", "--option",
                "--allow-other"):
        assert opt in words
    assert complete(f"{WSCTL} create agent1 --a") == ["--audit", "--allow-other"]
    assert "--no-layers" in complete(f"{WSCTL} set agent1 --no")
    assert "--no-layers" not in complete(f"{WSCTL} create agent1 --no")
    assert complete(f"{WSCTL} create agent1 --audit ") == ["off", "meta", "full"]
    assert complete(f"{WSCTL} set agent1 --audit m") == ["meta"]
    # "--audit=": readline replaces only what follows the '='.
    assert complete(f"{WSCTL} create agent1 --audit=") == ["off", "meta", "full"]
    assert complete(f"{WSCTL} create agent1 --audit=f") == ["full"]
    # A free-form value gets nothing, and the word after it is an option.
    assert complete(f"{WSCTL} create agent1 --bytes ") == []
    assert "--inodes" in complete(f"{WSCTL} create agent1 --bytes 1G --")


def test_paths(tmp_path):
    (tmp_path / "dir_a").mkdir()
    (tmp_path / "dir_b").mkdir()
    (tmp_path / "file_a.yaml").write_text("x")
    assert sorted(complete(f"{WSCTL} create n --upper ", cwd=tmp_path)) == \
        ["dir_a", "dir_b"]
    assert sorted(complete(f"{WSCTL} create n --upper di", cwd=tmp_path)) == \
        ["dir_a", "dir_b"]
    assert sorted(complete(f"{WSCTL} create n --mountpoint ", cwd=tmp_path)) == \
        ["dir_a", "dir_b"]
    # Directories only: the yaml file is not offered for --upper.
    assert complete(f"{WSCTL} set n --upper fi", cwd=tmp_path) == []
    assert complete(f"{WSCTL} apply -f fi", cwd=tmp_path) == ["file_a.yaml"]
    assert sorted(complete(f"{WSCTL} --state ", cwd=tmp_path)) == \
        ["dir_a", "dir_b"]
    # "--state=": readline replaces what follows the '='.
    assert sorted(complete(f"{WSCTL} --state=dir_", cwd=tmp_path)) == \
        ["dir_a", "dir_b"]
    # mount NAME MOUNTPOINT: the second word is a directory.
    assert sorted(complete(f"{WSCTL} mount n di", cwd=tmp_path)) == \
        ["dir_a", "dir_b"]
    assert complete(f"{WSCTL} audit export -o fi", cwd=tmp_path) == \
        ["file_a.yaml"]


def test_quota_and_help():
    assert complete(f"{WSCTL} quota ") == ["set", "show", "ls"]
    words = complete(f"{WSCTL} quota set agent1 --")
    assert {"--bytes", "--inodes", "--soft-bytes", "--soft-inodes",
            "--grace", "--warn"} <= set(words)
    assert "--json" in complete(f"{WSCTL} quota ls --")
    assert sorted(complete(f"{WSCTL} help ")) == sorted(help_commands())
    assert complete(f"{WSCTL} help q") == ["quota"]


def test_audit_subcommands_and_options():
    syn = wsctl_out("audit", "--help").splitlines()[0]
    subs = re.search(r"audit ([a-z|]+)", syn).group(1).split("|")
    assert sorted(complete(f"{WSCTL} audit ")) == sorted(subs)
    search = complete(f"{WSCTL} audit search --")
    for opt in ("--ws", "--since", "--until", "--op", "--path", "--uid",
                "--pid", "--comm", "--result", "--limit", "--after-seq",
                "--checkpoint", "--format"):
        assert opt in search
    assert "--zstd" not in search
    assert {"--output", "--zstd", "--format"} <= set(
        complete(f"{WSCTL} audit export --"))
    assert {"--pubkey", "--bundle", "--from", "--to", "--json"} <= set(
        complete(f"{WSCTL} audit verify --"))
    assert complete(f"{WSCTL} audit export --format ") == ["jsonl", "csv", "ocsf"]
    assert complete(f"{WSCTL} audit search --format t") == ["table"]
    assert complete(f"{WSCTL} audit search --result d") == ["denied"]
    assert complete(f"{WSCTL} audit search --op cre") == ["create"]
    # A comma list completes its last item.
    assert complete(f"{WSCTL} audit search --op read,wr") == ["read,write"]
    assert "yesterday" in complete(f"{WSCTL} audit report --since ")


def _names_line(state, tail):
    return f"{WSCTL} --state {state} {tail}"


def test_workspace_names_from_the_state_dir_on_the_line(make_ws):
    w = make_ws(name="compl-live", options="")
    other = make_ws(name="compl-other", options="")   # its own state dir
    state = w.state
    assert complete(_names_line(state, "status ")) == ["compl-live"]
    assert complete(_names_line(state, "status compl-")) == ["compl-live"]
    assert complete(f"{WSCTL} --state={state} umount ") == ["compl-live"]
    assert complete(_names_line(other.state, "umount ")) == ["compl-other"]
    assert complete(_names_line(state, "locks ")) == ["compl-live"]
    assert complete(_names_line(state, "quota show ")) == ["compl-live"]
    assert complete(_names_line(state, "audit search --ws ")) == ["compl-live"]
    # Only the first positional word is a name.
    assert complete(_names_line(state, "status compl-live ")) == []
    # $WSFS_STATE is honoured when no --state is given.
    assert complete(f"{WSCTL} status ",
                    env_extra={"WSFS_STATE": state}) == ["compl-live"]
    # A state directory that does not exist: no names, no noise.
    assert complete(_names_line("/nonexistent/wsfs-state", "status ")) == []


def test_declared_workspaces_are_offered(make_ws, tmpbase):
    live = make_ws(name="compl-m", options="")
    upper = os.path.join(tmpbase, "decl-upper")
    os.makedirs(upper)
    r = live.wsctl("create", "compl-declared", "--upper", upper)
    assert r.returncode == 0, r.stderr
    names = complete(_names_line(live.state, "mount "))
    assert sorted(names) == ["compl-declared", "compl-m"]
