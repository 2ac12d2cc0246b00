"""`distlog compare RUN_A RUN_B ...` compares the runs named; `distlog ls` shows `-` as the
last step of a run without metrics (run.json: null), never a made-up 0."""

from __future__ import annotations

import json
import os
import signal
import time

import distlog
from distlog.cli import main
from distlog.layout import RUN_FILE
from support.cli_tree import build_tree, cli


def test_compare_named_runs(tmp_path, capsys):
    tree = build_tree(tmp_path / "root")
    a, c = tree / "mnist/sweep/run-a", tree / "mnist/other/run-c"
    code, out, err = cli(capsys, "compare", a, c, "--format", "json", "--all-params")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["experiment"], r["run_id"]) for r in rows] == [("mnist/sweep", "run-a"),
                                                             ("mnist/other", "run-c")]
    assert [r["lr"] for r in rows] == [0.1, 0.1] and rows[0]["train/loss"] == 0.25
    # a folder of runs next to a run: all of its runs
    code, out, _ = cli(capsys, "compare", tree / "mnist/sweep", c, "--format", "json")
    assert sorted(r["run_id"] for r in json.loads(out)) == ["run-a", "run-b", "run-c"]
    code, out, _ = cli(capsys, "compare", tree / "mnist/sweep", c, "--status", "failed",
                       "--format", "json")
    assert [r["run_id"] for r in json.loads(out)] == ["run-b"]
    code, _, err = cli(capsys, "compare", a, c, "--where", "lr=0.1")
    assert code == 2 and "name only the runs to compare" in err
    code, _, err = cli(capsys, "compare", a, tmp_path / "nothing-here")
    assert code == 2 and "nothing-here" in err


def test_ls_shows_a_dash_for_a_run_without_metrics(tmp_path, capsys):
    root = tmp_path / "root"
    exp = distlog.get_logger(str(root))
    with exp.run("text-only"):
        exp.info("no metrics in this run")
    with exp.run("with-metrics"):
        exp.metrics.collect(loss=1.0)
        exp.metrics.flush()  # step 0 by the flush count: a real step 0
    meta = json.loads((root / "default/text-only" / RUN_FILE).read_text())
    assert meta["last_step"] is None
    code, out, err = cli(capsys, "ls", root)
    assert code == 0, err
    last = {line.split()[1]: line.split()[-1] for line in out.splitlines()[2:]}
    assert last == {"text-only": "-", "with-metrics": "0"}
    code, out, _ = cli(capsys, "ls", root, "--format", "json")
    assert {r["run_id"]: r["last_step"] for r in json.loads(out)} == {"text-only": None,
                                                                       "with-metrics": 0}


def test_compare_help_names_both_forms(capsys):
    assert main(["compare", "--help"]) == 0
    assert "RUN RUN" in capsys.readouterr().out


def test_logs_says_how_to_show_structured_fields(tmp_path, capsys):
    tree = build_tree(tmp_path / "root")
    a = tree / "mnist/sweep/run-a"
    code, out, err = cli(capsys, "logs", a)
    assert code == 0 and '"batch": 7' not in out
    assert "2 record(s) have structured fields or a traceback; add --fields" in err
    code, out, err = cli(capsys, "logs", a, "--fields")
    assert '"batch": 7' in out and "--fields" not in err


def test_where_selects_a_str_param_that_looks_like_json_and_the_json_value(tmp_path, capsys):
    root = tmp_path / "root"
    exp = distlog.get_logger(str(root))
    with exp.experiment("e"):
        for rid, ver in [("a", "42"), ("b", 42), ("c", "7"), ("d", True), ("t", "true"), ("x", 1)]:
            with exp.run(rid, params={"version": ver}):
                exp.metrics.log(step=0, loss=1.0)
    exp.close()

    def ids(where):
        code, out, err = cli(capsys, "compare", root / "e", "--where", where, "--format", "json")
        assert code == 0, err
        return sorted(r["run_id"] for r in json.loads(out))

    assert ids("version=42") == ["a", "b"]
    assert ids('version="42"') == ["a"]
    assert ids("version=7,true") == ["c", "d", "t"]
    assert ids("version=1") == ["x"]  # True is not 1


def test_params_print_in_full_and_metrics_stay_compact(tmp_path, capsys):
    """Params that differ (shown by compare *because* they differ) print differently; 1.0 is
    not printed like the int 1; metric columns keep their compact form."""
    root = tmp_path / "root"
    exp = distlog.get_logger(str(root))
    with exp.experiment("e"):
        for rid, lr in [("a", 1.0000001e-3), ("b", 1.0000002e-3)]:
            with exp.run(rid, params={"lr": lr, "scale": 1.0, "depth": 3}):
                exp.metrics.log(step=0, loss=0.123456789)
    exp.close()
    code, out, err = cli(capsys, "compare", root / "e", "--all-params")
    assert code == 0, err
    head, _, *rows = out.splitlines()
    assert head.split()[-4:] == ["depth", "lr", "scale", "loss"]
    assert [r.split()[-4:] for r in rows] == [["3", "0.0010000001", "1.0", "0.123457"],
                                              ["3", "0.0010000002", "1.0", "0.123457"]]
    code, out, _ = cli(capsys, "params", root / "e" / "a")
    assert out.split() == ["lr", "0.0010000001", "scale", "1.0", "depth", "3"]  # (as given)
    code, out, _ = cli(capsys, "show", root / "e" / "b")
    assert "  lr = 0.0010000002\n  scale = 1.0\n  depth = 3\n" in out
    import numpy as np

    from distlog.query.render import fmt_exact, fmt_value

    assert fmt_exact(1.0000001e-3) == "0.0010000001" and fmt_exact(1.0) == "1.0" and fmt_exact(1) == "1"
    assert fmt_exact(np.float32(0.1)) == "0.1" and fmt_exact(float("nan")) == "nan" and fmt_exact(None) == "-"
    assert fmt_value(0.123456789) == "0.123457"


def test_compare_sorts_a_column_of_mixed_types(tmp_path, capsys):
    """--sort on a param that is 1 in one run and "one" in another raised a TypeError traceback:
    numbers now sort first by value, then text, then runs without the param."""
    root = tmp_path / "root"
    exp = distlog.get_logger(str(root), heartbeat_interval=0, telemetry=False)
    for rid, x in (("a", "one"), ("b", 2.5), ("c", 1), ("d", None), ("e", "abc"), ("f", -3)):
        with exp.run(rid, params={} if x is None else {"x": x}):
            exp.metrics.log(step=0, loss=1.0)
    code, out, err = cli(capsys, "compare", root, "--sort", "x", "--format", "json")
    assert code == 0, err
    assert [r["run_id"] for r in json.loads(out)] == ["f", "c", "b", "e", "a", "d"]
    code, out, err = cli(capsys, "compare", root, "--sort", "x")
    assert code == 0 and "Traceback" not in err
    assert [ln.split()[0] for ln in out.splitlines()[2:]] == ["f", "c", "b", "e", "a", "d"]
    code, out, _ = cli(capsys, "compare", root, "--sort", "run_id", "--format", "json")
    assert [r["run_id"] for r in json.loads(out)] == list("abcdef")


def test_where_takes_true_false_and_none_as_printed(tmp_path, capsys):
    """compare/params print a bool as True/False and None as '-' (show: None), yet only the
    JSON spellings true/false/null selected them."""
    root = tmp_path / "root"
    exp = distlog.get_logger(str(root), heartbeat_interval=0, telemetry=False)
    for rid, amp in (("a", True), ("b", False), ("n", None), ("s", "True"), ("one", 1)):
        with exp.run(rid, params={"amp": amp}):
            exp.metrics.log(step=0, loss=1.0)

    def ids(where):
        code, out, err = cli(capsys, "compare", root, "--where", where, "--format", "json")
        assert code in (0, 1), err
        return sorted(r["run_id"] for r in json.loads(out)) if code == 0 else []

    assert ids("amp=True") == ["a", "s"]  # the bool, and the str param "True" itself
    assert ids("amp=true") == ["a"] and ids("amp=False") == ["b"] == ids("amp=false")
    assert ids("amp=None") == ["n"] == ids("amp=null")
    assert ids("amp=True,False") == ["a", "b", "s"]


def test_an_interrupted_run_is_listed_and_selected_by_its_status(tmp_path, capsys):
    """A run stopped by a SIGTERM that was no agreed stop reads ``interrupted``:
    ``--status interrupted`` and ``runs(status="interrupted")`` refused that status (exit 2,
    "expected one of running, completed, ...") though ``ls`` showed it."""
    root = tmp_path / "root"
    exp = distlog.get_logger(str(root), heartbeat_interval=0)
    try:
        with exp.run("stopped"):
            exp.metrics.log(step=0, loss=1.0)
            os.kill(os.getpid(), signal.SIGTERM)  # distlog's handler raises in the run
            time.sleep(5)
    except BaseException as e:  # noqa: BLE001
        assert "SIGTERM" in str(e) or type(e).__name__ == "Terminated", repr(e)
    with exp.run("done"):
        exp.metrics.log(step=0, loss=0.5)
    exp.close()
    runs = distlog.open_root(str(root)).runs(status="interrupted")
    assert [r.info.run_id for r in runs] == ["stopped"]
    code, out, err = cli(capsys, "ls", root, "--status", "interrupted")
    assert code == 0, err
    assert "stopped" in out and "done" not in out
