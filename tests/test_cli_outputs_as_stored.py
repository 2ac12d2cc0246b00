"""The CLI's tables say what is stored: a step a key has no row at is not shown as a NaN the
run logged, and a param's newline does not break a table's rows."""

from __future__ import annotations

import json

import distlog
from distlog.cli import main


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _run(root):
    exp = distlog.get_logger(str(root), heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"), exp.run("r"):
        for step in range(3):
            exp.metrics.log(step=step, a=float(step))
        exp.metrics.log(step=1, b=float("nan"))  # logged NaN at step 1, no row at steps 0 and 2
        exp.metrics.log(step=3, b=2.0)
    exp.close()
    return root / "e" / "r"


def test_metrics_of_several_keys_show_a_step_without_a_row_as_absent_not_nan(tmp_path, capsys):
    run = _run(tmp_path)
    code, out, err = cli(capsys, "metrics", run, "a", "b")
    assert code == 0, err
    cells = {int(line.split()[0]): line.split()[1:] for line in out.splitlines()[2:]}
    # step 1: b was logged as NaN ("nan"); steps 0 and 2: b has no row ("-", as compare shows
    # a metric a run lacks), step 3: a has none
    assert cells == {0: ["0", "-"], 1: ["1", "nan"], 2: ["2", "-"], 3: ["-", "2"]}
    code, out, err = cli(capsys, "metrics", run, "a", "b", "--format", "json")
    rows = json.loads(out)
    assert [r["step"] for r in rows] == [0, 1, 2, 3] and rows[3]["a"] is None and rows[1]["b"] is None
    stored = distlog.open_run(run).metrics.read("b")
    assert list(stored.step) == [1, 3]
