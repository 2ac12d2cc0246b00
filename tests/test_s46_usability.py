"""Session 46: small things a person trips over, each said plainly."""

from __future__ import annotations

import numpy as np
import pytest

import distlog


@pytest.mark.parametrize("method, data", [("save_image", np.zeros((4, 4, 3), np.uint8)),
                                          ("save_video", np.zeros((2, 4, 4, 3), np.uint8)),
                                          ("save_audio", np.zeros(100, np.float32))])
def test_a_media_saver_given_the_data_before_the_name_says_the_order(tmp_path, method, data):
    """``save(data, filename)`` takes the data first, the media savers the name: the other
    order raised an AttributeError from inside (``'numpy.ndarray' object has no attribute
    'rsplit'``), and nothing was saved."""
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    exp.start_run("r")
    with pytest.raises(TypeError, match=rf"{method}\(name, \w+\): got the \w+ \(ndarray\) first and the name "
                                        rf"\('x'\) second; the name comes first: {method}\('x', \w+\)"):
        getattr(exp.files, method)(data, "x")
    rec = exp.files.save_image("ok", np.zeros((4, 4, 3), np.uint8))  # (the right order still works)
    exp.close()
    assert rec.name == "ok.png"


def test_distlog_ranks_names_each_ranks_host(tmp_path, capsys):
    """The dashboard's Ranks tab had a host column; `distlog ranks` had none (a slow rank's
    node is the first thing a person asks)."""
    import json
    import socket

    from support.cli_tree import cli

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        for s in range(3):
            exp.metrics.collect(step=s, loss=1.0)
            exp.metrics.flush()
    path = tmp_path / "default" / "r"
    code, out, err = cli(capsys, "ranks", path, "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["host"] == socket.gethostname()
    code, out, err = cli(capsys, "ranks", path)
    assert code == 0 and "host" in out.splitlines()[0] and socket.gethostname() in out
