"""The CLI's tables say what is stored: a step a key has no row at is not shown as a NaN the
run logged, and a param's newline does not break a table's rows."""

from __future__ import annotations

import json

import distlog
from support.cli_tree import cli


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
    # CSV and JSON alike (they showed both as an empty cell / null): no row is empty / null,
    # the logged NaN is "nan", as inf is "inf"
    code, out, err = cli(capsys, "metrics", run, "a", "b", "--format", "json")
    rows = json.loads(out)
    assert [(r["step"], r["a"], r["b"]) for r in rows] == [(0, 0.0, None), (1, 1.0, "nan"), (2, 2.0, None), (3, None, 2.0)]
    code, out, err = cli(capsys, "metrics", run, "a", "b", "--format", "csv")
    assert out.splitlines() == ["step,a,b", "0,0.0,", "1,1.0,nan", "2,2.0,", "3,,2.0"]
    stored = distlog.open_run(run).metrics.read("b")
    assert list(stored.step) == [1, 3]


def test_a_metric_named_step_is_a_column_of_its_own(tmp_path, capsys):
    """A tracker may log a metric named ``step`` (Accelerate's ``log({"step": ...})``, as the
    README says): ``metrics RUN loss step`` crashed (IndexError) and ``metrics RUN step``
    showed its values in place of the rows' steps."""
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"), exp.run("r"):
        for i in range(3):
            # (as the integrations pass a tracker's values: a key "step" is a metric there)
            exp.metrics._log({"step": 10.0 * i + 3, "loss": 1.0 / (i + 1)}, i)
    run = tmp_path / "e" / "r"
    code, out, err = cli(capsys, "metrics", run, "loss", "step", "--format", "csv")
    assert code == 0, err
    assert out.splitlines() == ["step,loss,step (metric)", "0,1.0,3.0", "1,0.5,13.0", "2,0.3333333333333333,23.0"]
    code, out, err = cli(capsys, "metrics", run, "step", "--format", "csv")
    assert out.splitlines() == ["step,step (metric)", "0,3.0", "1,13.0", "2,23.0"], out


def test_a_param_with_a_newline_or_tab_keeps_one_line_per_row(tmp_path, capsys):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"):
        for rid, note in (("r1", "two\nlines"), ("r2", "tab\there\r")):
            with exp.run(rid):
                exp.params.set(note=note, seed=int(rid[1]))
    exp.close()
    code, out, err = cli(capsys, "compare", tmp_path / "e")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 4, out  # header, rule, one line per run
    assert lines[0].split()[-1] == "seed" and [line.split()[-1] for line in lines[2:]] == ["1", "2"]
    assert "two\\nlines" in lines[2] and "tab\\there\\r" in lines[3]
    code, out, err = cli(capsys, "params", tmp_path / "e" / "r1")
    assert out.splitlines() == ["note  two\\nlines", "seed  1"]
    code, out, err = cli(capsys, "show", tmp_path / "e" / "r1")
    assert "  note = two\\nlines\n  seed = 1\n" in out
    # CSV and JSON keep the value as stored
    code, out, err = cli(capsys, "compare", tmp_path / "e", "--format", "json")
    assert [r["note"] for r in json.loads(out)] == ["two\nlines", "tab\there\r"]


def test_metrics_stat_time_shows_each_row_time_in_full(tmp_path, capsys):
    """``--stat time`` is seconds since the epoch: ``%.6g`` printed every row of a run as
    ``1.79e+09``-like text, rows 0.1 s or 10 minutes apart alike."""
    run = _run(tmp_path)
    times = [float(t) for t in distlog.open_run(run).metrics.read("a")["time"]]
    code, out, err = cli(capsys, "metrics", run, "a", "--stat", "time")
    assert code == 0, err
    assert [float(line.split()[1]) for line in out.splitlines()[2:]] == times
    code, out, err = cli(capsys, "metrics", run, "--stat", "time")
    row = next(line.split() for line in out.splitlines()[2:] if line.split()[0] == "a")
    assert [float(x) for x in row[4:7]] == [times[-1], min(times), max(times)]


def test_files_show_a_save_without_a_step_as_absent_and_steps_as_saved(tmp_path, capsys):
    """``distlog files``: a save without a step beside one with a step was shown as step
    ``nan`` (pandas' fill for None), and the steps as floats: ``3.0``, and 2**53 + 1 as
    2**53, another step."""
    steps = {"a.json": 3, "b.json": None, "c.json": 2.75, "d.json": 2**53 + 1}
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"), exp.run("r"):
        for name, step in steps.items():
            exp.files.save(b"x" + name.encode(), name, step=step)
    exp.close()
    run = tmp_path / "e" / "r"
    assert {r.name: r.step for r in distlog.open_run(run).files.records()} == steps
    code, out, err = cli(capsys, "files", run, "--format", "json")
    assert code == 0, err
    got = {r["name"]: r["step"] for r in json.loads(out)}
    assert got == steps and [type(got[n]) for n in steps] == [type(s) for s in steps.values()]
    code, out, err = cli(capsys, "files", run)
    shown = {line.split()[0]: line.split()[-1] for line in out.splitlines()[2:]}
    assert shown == {"a.json": "3", "b.json": "-", "c.json": "2.75", "d.json": str(2**53 + 1)}
    code, out, err = cli(capsys, "files", run, "--format", "csv")
    assert [line.split(",")[8] for line in out.splitlines()[1:]] == ["3", "", "2.75", str(2**53 + 1)]


def test_python_dash_m_distlog_is_the_cli(tmp_path):
    # before: "'distlog' is a package and cannot be directly executed"
    import subprocess
    import sys

    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        exp.metrics.log(loss=0.5, step=1)
    done = subprocess.run([sys.executable, "-m", "distlog", "ls", str(tmp_path), "--format", "json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [r["run_id"] for r in json.loads(done.stdout)] == ["r"]
    bad = subprocess.run([sys.executable, "-m", "distlog", "ls", str(tmp_path / "nowhere")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr


def test_show_lists_the_histograms_and_a_histogram_key_is_named_as_one(tmp_path, capsys):
    # before: show left histograms out, and `metrics RUN w` / run.metrics.read("w") said
    # "no metric 'w'" with no word that w is a histogram
    import numpy as np
    import pytest

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        exp.metrics.log(loss=0.5, step=0)
        for step in range(3):
            exp.metrics.log_histogram("grad/w", np.arange(10.0) * step, bins=4, step=step)
        exp.metrics.log_histogram("b", [1.0], bins=2, step=5)
    run = tmp_path / "default" / "r"
    code, out, err = cli(capsys, "show", run)
    assert code == 0, err
    assert "\nhistograms  b (1 step), grad/w (3 steps)\n" in out
    code, out, err = cli(capsys, "metrics", run, "grad/w")
    assert code == 2 and "'grad/w' is a histogram (log_histogram): read it with run.metrics.histogram('grad/w')" in err
    with pytest.raises(KeyError, match="'loss' is a metric series: read it with run.metrics.read"):
        distlog.open_run(run).metrics.histogram("loss")
    assert distlog.open_run(run).metrics.histogram_lengths() == {"b": 1, "grad/w": 3}
    code, out, err = cli(capsys, "show", _run(tmp_path / "plain"))  # no histograms: no line
    assert code == 0 and "\nhistograms  " not in out


def test_importing_distlog_main_runs_nothing():
    # tools that import every module of a package (pydoc, sphinx autodoc, doctest-modules,
    # pkgutil.walk_packages) imported distlog.__main__, which ran the CLI on their own argv
    # and raised SystemExit(2) ("the following arguments are required: COMMAND")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import distlog.__main__; print('imported')"],
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "imported\n", "")


def test_csv_and_json_tell_a_value_that_is_not_there_from_a_nan(tmp_path, capsys):
    # a run whose run.json is torn has no start or duration: an empty cell / null (with NaN
    # now "nan", pandas' NaN for them would read as a value); a run that logged NaN: "nan"
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"):
        with exp.run("nan"):
            exp.metrics.log(step=0, loss=float("nan"))
        with exp.run("one"):
            exp.metrics.log(step=0, loss=1.0)
        with exp.run("none"):
            exp.metrics.log(step=0, acc=1.0)
    exp.close()
    (tmp_path / "e" / "torn").mkdir()
    (tmp_path / "e" / "torn" / "run.json").write_text("{bad")
    code, out, err = cli(capsys, "compare", tmp_path / "e", "-m", "loss", "--format", "csv")
    assert code == 0, err
    rows = {line.split(",")[0]: line.split(",") for line in out.splitlines()[1:]}
    assert rows["nan"][-1] == "nan" and rows["one"][-1] == "1.0" and rows["none"][-1] == ""
    assert rows["torn"][2:4] == ["", ""], rows["torn"]  # started, duration
    code, out, err = cli(capsys, "compare", tmp_path / "e", "-m", "loss", "--format", "json")
    got = {r["run_id"]: r for r in json.loads(out)}
    assert (got["nan"]["loss"], got["one"]["loss"], got["none"]["loss"]) == ("nan", 1.0, None)
    assert got["torn"]["started"] is None and got["torn"]["duration"] is None
    code, out, err = cli(capsys, "ls", tmp_path, "--format", "json")
    assert {r["run_id"]: r["duration"] for r in json.loads(out)}["torn"] is None
    code, out, err = cli(capsys, "export", tmp_path / "e" / "nan")  # every stored row, as stored
    header, row = out.splitlines()[0].split(","), out.splitlines()[1].split(",")
    assert row[header.index("value")] == "nan" and row[header.index("nonfinite")] == "1", out


def test_histogram_prints_a_steps_bins_and_counts(tmp_path, capsys):
    # histograms had no CLI reader: `metrics RUN KEY` pointed to the Python API
    import numpy as np

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    values = {s: np.random.default_rng(s).normal(size=500) * (s + 1) for s in (0, 10, 20)}
    with exp.run("r"):
        exp.metrics.log(step=0, loss=1.0)
        for s, v in values.items():
            exp.metrics.log_histogram("grad/w", v, bins=6, step=s)
    run = tmp_path / "default" / "r"
    stored = distlog.open_run(run).metrics.histogram("grad/w")
    code, out, err = cli(capsys, "histogram", run, "grad/w", "--format", "csv")  # the last step
    assert code == 0, err
    rows = [line.split(",") for line in out.splitlines()[1:]]
    assert [float(r[0]) for r in rows] == [20.0] * 6 and [int(r[1]) for r in rows] == list(range(6))
    assert [float(r[2]) for r in rows] == stored.edges[-1][:-1].tolist()  # exact
    assert [float(r[3]) for r in rows] == stored.edges[-1][1:].tolist()
    assert [int(r[4]) for r in rows] == np.histogram(values[20], bins=6)[0].tolist()
    code, out, err = cli(capsys, "histogram", run, "grad/w", "--step", "0", "--step", "10", "--format", "json")
    got = json.loads(out)
    assert [(r["step"], r["bin"]) for r in got] == [(s, b) for s in (0, 10) for b in range(6)]
    assert [r["count"] for r in got[:6]] == np.histogram(values[0], bins=6)[0].tolist()
    code, out, err = cli(capsys, "histogram", run, "grad/w", "--all")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["step", "bin", "from", "to", "count", "bars"] and len(lines) == 2 + 18
    assert "█" * 40 in out  # the largest count is a full bar
    code, out, err = cli(capsys, "histogram", run, "grad/w", "--step", "5")
    assert code == 2 and "has no step 5; its 3 steps are 0, 10, 20 (--all" in err
    code, out, err = cli(capsys, "histogram", run, "loss")
    assert code == 2 and "'loss' is a metric series" in err and "distlog metrics RUN KEY" in err
    code, out, err = cli(capsys, "metrics", run, "grad/w")
    assert code == 2 and "(CLI: distlog histogram RUN KEY)" in err


def test_ranks_csv_and_json_show_a_statistic_without_samples_as_no_value(tmp_path, capsys):
    # one flush: no step time or CPU sample to take a median of (the report's NaN); csv/json
    # wrote it as an empty cell / null until NaN became "nan" there, which would read as a
    # NaN the run measured
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.experiment("e"), exp.run("t"):
        exp.metrics.log(step=0, loss=1.0)
    exp.close()
    run = tmp_path / "e" / "t"
    code, out, err = cli(capsys, "ranks", run, "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["rank"] == 0 and row["step_time_median"] is None and row["wait_total"] is None
    assert "nan" not in row.values(), row
    code, out, err = cli(capsys, "ranks", run, "--format", "csv")
    head, line = out.splitlines()
    cells = dict(zip(head.split(","), line.split(",")))
    assert cells["step_time_median"] == "" and "nan" not in cells.values(), cells


def test_csv_and_json_agree_on_a_missing_str_and_a_float32_nan():
    # pandas 3 holds a str column's None as NaN: JSON wrote it "nan" (CSV an empty cell), a
    # value where there is none; a NumPy float32 NaN among objects was an empty cell in CSV
    # ("nan" in JSON)
    import numpy as np
    import pandas as pd

    from distlog.query.render import render_frame

    df = pd.DataFrame({"name": ["x", None], "v": pd.Series([np.float32("nan"), "a"], dtype=object)})
    assert json.loads(render_frame(df, "json")) == [{"name": "x", "v": "nan"}, {"name": None, "v": "a"}]
    assert render_frame(df, "csv").splitlines() == ["name,v", "x,nan", ",a"]
    both = pd.DataFrame({"a": [1.5, float("nan")], "b": pd.Series([None, 2.0], dtype=object)})
    assert json.loads(render_frame(both, "json")) == [{"a": 1.5, "b": None}, {"a": "nan", "b": 2.0}]
    assert render_frame(both, "csv").splitlines() == ["a,b", "1.5,", "nan,2.0"]


def test_show_says_how_each_attempt_ended(tmp_path, capsys):
    # before: "status completed" and "attempts 2" only: a training attempt that failed before
    # an attempt that completed (an evaluation appended after it) could not be seen
    import pytest

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with pytest.raises(RuntimeError):
        with exp.run("r"):
            exp.metrics.log(step=0, loss=1.0)
            raise RuntimeError("node lost\nat step 0")
    with exp.run("r"):
        exp.metrics.log(step=1, loss=0.5)
    code, out, err = cli(capsys, "show", tmp_path / "default" / "r")
    assert code == 0, err
    assert "\nstatus      completed\n" in out
    assert "\nattempts    2: #0 failed (RuntimeError: node lost" in out and ", #1 completed\n" in out, out
    code, out, err = cli(capsys, "show", _run(tmp_path / "plain"))  # one attempt: its count only
    assert code == 0 and "\nattempts    1\n" in out


def test_show_says_how_much_of_a_resumed_runs_duration_its_attempts_ran(tmp_path, capsys):
    """A requeued job's duration ran from its first start, the time it waited in the queue
    included, with nothing saying so: show now gives the attempts' own time beside it."""
    import re
    import time

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    for step in range(2):
        with exp.experiment("e"), exp.run("r"):
            exp.metrics.log(step=step, a=1.0)
        time.sleep(1.5)  # "in the queue"
    info = distlog.open_run(tmp_path / "e" / "r").info
    ran, whole = info.running_time(), info.duration()
    assert 0 < ran < whole - 1.4, (ran, whole)
    want = sum(info.end_time if i == 1 else distlog.query.run_reader.parse_iso(a["ended"]) for i, a in enumerate(info.attempts)) \
        - sum(distlog.query.run_reader.parse_iso(a["started"]) for a in info.attempts)
    assert abs(ran - want) < 1e-6
    code, out, err = cli(capsys, "show", tmp_path / "e" / "r")
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if ln.startswith("duration"))
    assert re.fullmatch(r"duration +\S+ \(\S+ running in 2 attempts, 1\.\ds between them\)", line), line
    # one attempt: the line as before
    with exp.experiment("e"), exp.run("one"):
        exp.metrics.log(step=0, a=1.0)
    code, out, err = cli(capsys, "show", tmp_path / "e" / "one")
    assert re.search(r"^duration +\S+$", out, re.M), out
