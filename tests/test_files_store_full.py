"""A save the store has no room for says which file it refused and what to do.

Before: ``OSError: [Errno 28] No space left on device`` from deep in the local backend, naming
no file and no fix. The store is made "full" for one process by a file-size limit
(``RLIMIT_FSIZE``: a write past it fails with ``EFBIG``, as ``ENOSPC`` fails on a full disk)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import distlog

SCRIPT = textwrap.dedent("""
    import resource, signal, sys
    import distlog
    root = sys.argv[1]
    exp = distlog.get_logger(root, heartbeat_interval=0)
    with exp.run("r"):
        exp.metrics.log(step=0, loss=1.0)
        exp.files.save(b"small", "small.bin")
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # (the write fails with EFBIG instead)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))
        try:
            exp.files.save(b"x" * 1_000_000, "ckpt/model.bin")
        except OSError as e:
            print("SAID:", e)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        exp.files.save(b"y" * 1_000, "ckpt/model.bin")  # room again: saved
""")


def test_a_save_the_store_has_no_room_for_names_the_file_and_the_fix(tmp_path):
    root = str(tmp_path / "root")
    out = subprocess.run([sys.executable, "-c", SCRIPT, root], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    said = [line for line in out.stdout.splitlines() if line.startswith("SAID:")]
    assert len(said) == 1, out.stdout
    assert "save('ckpt/model.bin', 1,000,000 bytes): File too large" in said[0]
    assert "Nothing of this file was recorded" in said[0] and "Free space on the store" in said[0]
    run = distlog.open_run(f"{root}/default/r")
    assert run.files.read_bytes("small.bin") == b"small"
    assert run.files.read_bytes("ckpt/model.bin") == b"y" * 1_000
    assert [r.version for r in run.files.versions("ckpt/model.bin")] == [1]  # (the refused save used none)
