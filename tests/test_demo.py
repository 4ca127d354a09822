"""The README's first command must keep working: run the demo end to end."""
import os
import re
import subprocess

from conftest import ROOT, is_mounted


def test_demo_runs_and_persists_outputs():
    r = subprocess.run([os.path.join(ROOT, "tools", "demo.sh")],
                       capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "hello from inside the workspace: sum=" in out
    assert "model.bin: OK" in out          # checksum verified in the upper
    assert re.search(r"cached_inodes:\s+\d+", out)
    # The inputs are read, and every attempt to change them is refused.
    assert "Build hello, run it, keep the result." in out
    assert len(re.findall(r"agent: .* -> Read-only file system", out)) == 4
    assert "documents: unchanged" in out
    # Scratch at /tmp held the build, and the unmount wiped it.
    m = re.search(r"ephemeral scratch wiped: (\d+) files", out)
    assert m and int(m.group(1)) == 4, out[-3000:]   # build/ (3) + cache.bin
    assert "nothing of /tmp is left: 0 scratch trees" in out
    # Two workspaces share a directory and serialise on flock.
    assert "counter: 200 (agent 1 and agent 2" in out, out[-3000:]
    held = re.search(r"^demo-\d+\s+/shared/report\.txt\s+flock\s+exclusive"
                     r".*\bheld$", out, re.M)
    waiting = re.search(r"^demo-\d+-b\s+/shared/report\.txt\s+flock\s+"
                        r"exclusive.*\bwaiting$", out, re.M)
    assert held and waiting, out[-3000:]
    assert "agent 1: section 1\nagent 2: section 2" in out
    # The agent hits its quota at the write, then the operator raises it.
    assert "Disk quota exceeded" in out
    assert "agent: the write failed with EDQUOT" in out
    assert re.search(r"wsfs:demo-\d+\s+16M", out)      # df shows the limit
    assert "agent: checkpoint written: 12M" in out
    assert re.search(r"wsfs:demo-\d+\s+64M", out)
    # The auditor sees the refusals and an intact, signed chain.
    assert re.search(r"EROFS", out) and re.search(r"EDQUOT", out)
    m = re.search(r"OK: (\d+) records, (\d+) checkpoints", out)
    assert m and int(m.group(1)) > 100 and int(m.group(2)) >= 1, out[-3000:]
    assert re.search(r"^/?\S+/wsfs/demo-\d+$", out, re.M)   # the signed head
    upper = re.search(r"the workspace's files are in (\S+)", out).group(1)
    try:
        assert os.path.isfile(os.path.join(upper, "hello-1.0", "hello"))
        assert os.readlink(os.path.join(upper, "latest")) == "outputs/model.bin"
        assert len(os.listdir(os.path.join(upper, "outputs", "logs"))) == 50
        for m in ("output", "output-b"):
            assert not is_mounted(os.path.join(os.path.dirname(upper), m))
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", os.path.dirname(upper)])
