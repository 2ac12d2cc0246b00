"""More misuse of the user-facing API (a second review): each case was a bare error from deep
inside, a silent acceptance storing something else than given, or an error on one rank only;
now a clear error where the input enters, raised alike on every rank, with nothing already
logged lost."""

from __future__ import annotations

import numpy as np
import pytest

import distlog


def _logged_rows(url: str, key: str = "loss") -> list[float]:
    return distlog.open_run(url).metrics.read(key)["value"].tolist()


# ---- get_logger's run settings -------------------------------------------------------------

@pytest.mark.parametrize("option, error, words", [
    ({"chunk_rows": 0}, ValueError, "chunk_rows=0): expected a positive int"),
    ({"chunk_rows": "64"}, TypeError, "chunk_rows='64'): expected a positive int, got str"),
    ({"window": -5}, ValueError, "window=-5): expected a positive int"),
    ({"flush_timeout": "300"}, TypeError, "flush_timeout='300'): expected a number of seconds"),
    ({"flush_timeout": 0}, ValueError, "more than 0"),
    ({"heartbeat_interval": "30"}, TypeError, "heartbeat_interval='30'): expected a number of seconds"),
    ({"heartbeat_interval": -1}, ValueError, "0 or more"),
    ({"commit_interval": float("nan")}, ValueError, "a finite number of seconds"),
    ({"telemetry": "no"}, TypeError, "telemetry='no'): expected True or False"),
    ({"capture_output": "no"}, TypeError, "capture_output='no'): expected True or False"),
    ({"comm": 5}, TypeError, "expected a distlog.comm.Comm"),
    ({"flush_timout": 300}, TypeError, "did you mean flush_timeout=?"),
    ({"heartbeat_intervall": 0}, TypeError, "did you mean heartbeat_interval=?"),
])
def test_run_settings_are_checked_by_get_logger(tmp_path, option, error, words):
    # before: chunk_rows=0 stored no row (a ZeroDivisionError in the writer, a WriterError at
    # close), "64" or heartbeat_interval="30" failed the run with a bare error, a misspelt or
    # string setting was taken silently (telemetry="no" turned telemetry on)
    with pytest.raises(error, match="get_logger") as e:
        distlog.get_logger(str(tmp_path), **option)
    assert words in str(e.value)
    # nothing was created; valid settings still work
    exp = distlog.get_logger(str(tmp_path), chunk_rows=16, heartbeat_interval=0, telemetry=False,
                             flush_timeout=60, commit_interval=0.5)
    with exp.run("r"):
        for step in range(3):
            exp.metrics.log(step=step, loss=float(step))
        url = exp.run_url
    assert _logged_rows(url) == [0.0, 1.0, 2.0]


# ---- run(resume_step=) ---------------------------------------------------------------------

@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "last", [100]])
def test_a_resume_step_that_is_no_step_is_refused_before_the_run_starts(tmp_path, bad):
    # before: the attempt started and failed with "cannot convert float NaN to integer" or a
    # numpy UFuncTypeError from inside the rewind (the run recorded failed by it)
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        for step in range(5):
            exp.metrics.log(step=step, loss=float(step))
        url = exp.run_url
    with pytest.raises(ValueError, match=r"resume_step=.*expected the step of the checkpoint"):
        with exp.run("r", resume_step=bad):
            exp.metrics.log(step=99, loss=99.0)
    run = distlog.open_run(url)
    assert run.info.status == "completed" and len(run.info.attempts) == 1
    assert _logged_rows(url) == [0.0, 1.0, 2.0, 3.0, 4.0]
    with exp.run("r", resume_step=2):  # the next valid call works
        exp.metrics.log(step=3, loss=30.0)
    assert _logged_rows(url) == [0.0, 1.0, 2.0, 30.0]


# ---- params that JSON cannot hold ------------------------------------------------------------

def _cycle():
    d = {"lr": 0.1}
    d["self"] = d
    return d


def _list_cycle():
    items = [1]
    items.append({"again": items})
    return items


def _deep(levels: int):
    d = root = {}
    for _ in range(levels):
        d["x"] = {}
        d = d["x"]
    return root


@pytest.mark.parametrize("value, error, words", [
    (_cycle(), ValueError, "param 'cfg.self' contains itself (a reference cycle)"),
    (_list_cycle(), ValueError, "contains itself (a reference cycle)"),
    (_deep(3000), ValueError, "nests more than 100 levels"),
    ("bf16", TypeError, "param 'cfg' is a torch tensor of dtype torch.bfloat16"),
])
def test_params_json_cannot_hold_are_refused_naming_the_key(tmp_path, value, error, words):
    # before: a RecursionError (cycles, deep nesting), or torch's "Got unsupported ScalarType
    # BFloat16" naming no param
    if value == "bf16":
        import torch

        value = torch.tensor([0.5, 1.5], dtype=torch.bfloat16)
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        exp.params.set(lr=0.1)
        with pytest.raises(error) as e:
            exp.params.set(lr=0.2, cfg=value)
        assert words in str(e.value)
        exp.params.update("seed", 3)  # the next valid call works, from the params before
        url = exp.run_url
    assert distlog.open_run(url).params == {"lr": 0.1, "seed": 3}


def test_params_nesting_up_to_the_limit_are_stored(tmp_path):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    shared = [1, 2]  # one list twice is no cycle
    with exp.run("r"):
        exp.params.set(deep=_deep(98), a=shared, b={"c": shared})
        url = exp.run_url
    params = distlog.open_run(url).params
    assert params["a"] == params["b"]["c"] == [1, 2]
    depth, d = 0, params["deep"]
    while d:
        d, depth = d["x"], depth + 1
    assert depth == 98


@pytest.mark.parametrize("call, error, words", [
    (lambda p: p.update(5, 1), TypeError, "params.update(5, ...): the key must be a str"),
    (lambda p: p.update(None, 1), TypeError, "the key must be a str"),
    (lambda p: p.set([("lr", 0.2)]), TypeError, "params.set() takes a dict of params or keywords, got list"),
    (lambda p: p.set("lr=0.2"), TypeError, "params.set() takes a dict of params or keywords, got str"),
    (lambda p: p.extend(0.2), TypeError, "params.extend() takes a dict of params or keywords, got float"),
])
def test_params_setters_refuse_a_key_or_params_of_the_wrong_type(tmp_path, call, error, words):
    # before: "'int' object has no attribute 'split'", "'list' object is not a mapping"
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        exp.params.set(lr=0.1)
        with pytest.raises(error) as e:
            call(exp.params)
        assert words in str(e.value)
        exp.params.extend({"seed": 3})
        url = exp.run_url
    assert distlog.open_run(url).params == {"lr": 0.1, "seed": 3}


# ---- readme: notes that are no text, on every rank alike -------------------------------------

def _readme_not_text(rank, world, root):
    exp = distlog.get_logger(root, heartbeat_interval=0, flush_timeout=60)
    raised = []
    with exp.run("r"):
        for call in (lambda: exp.readme.write(None), lambda: exp.readme.append(b"more")):
            try:
                call()
            except TypeError as e:
                raised.append(str(e))
        exp.readme.write("# notes")  # the next valid call works
        exp.metrics("t").collect(step=0, loss=float(rank))
        exp.metrics.flush()
    return raised


@pytest.mark.dist
@pytest.mark.timeout(180)
def test_readme_refuses_notes_that_are_no_str_on_every_rank(tmp_path):
    # before: rank 0 alone raised AttributeError ("'NoneType' object has no attribute 'encode'",
    # "can only concatenate str (not "bytes") to str"); rank 1 took the call
    from support.ranks import run_ranks

    root = str(tmp_path / "root")
    res = run_ranks(_readme_not_text, 2, tmp_path, root, timeout=150)
    assert res[0] == res[1]
    assert len(res[0]) == 2
    assert "readme.write() takes Markdown text (a str), got NoneType" in res[0][0]
    assert "readme.append() takes Markdown text (a str), got bytes" in res[0][1]
    run = distlog.open_run(f"{root}/default/r")
    assert run.info.status == "completed"
    assert (tmp_path / "root" / "default" / "r" / "README.md").read_text() == "# notes"


# ---- log_histogram values and names --------------------------------------------------------

@pytest.mark.parametrize("name, values, words", [
    ("h", None, "log_histogram('h'): values must be real numbers, got NoneType"),
    ("h", ["a", "b"], "values must be real numbers, got list of <U1"),
    ("h", "12", "values must be real numbers, got str"),
    ("h", [1 + 2j, 3 + 4j], "values must be real numbers, got list of complex128"),
    ("h", np.array([1 + 2j, 3 + 4j]), "values must be real numbers, got ndarray of complex128"),
    ("h", [[1.0], [2.0, 3.0]], "values must be an array of numbers"),
    (5, [1.0, 2.0], "histogram name must be a str, got int"),
])
def test_log_histogram_refuses_values_that_are_no_real_numbers(tmp_path, name, values, words):
    # before: None and "12" were stored as a histogram of nothing (or of 12), complex values lost
    # their imaginary part, strings raised numpy's "could not convert string to float", an int
    # name "can only concatenate str (not "int") to str"
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        exp.metrics.log_histogram("h", [0.0, 1.0], bins=4, step=0)
        with pytest.raises(TypeError) as e:
            exp.metrics.log_histogram(name, values, bins=4, step=1)
        assert words in str(e.value)
        exp.metrics.log_histogram("h", [2.0, 3.0], bins=4, step=1)  # the next valid call works
        url = exp.run_url
    hist = distlog.open_run(url).metrics.histogram("h")
    assert hist.step.tolist() == [0, 1]
    assert [int(c.sum()) for c in hist.counts] == [2, 2]


def test_log_histogram_of_a_bfloat16_tensor_is_binned(tmp_path):
    import torch

    # before: torch's "Got unsupported ScalarType BFloat16" (weights of a bf16 model)
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        exp.metrics.log_histogram("w", torch.tensor([0.5, 1.5, 1.5], dtype=torch.bfloat16), bins=2,
                                  step=0)
        url = exp.run_url
    hist = distlog.open_run(url).metrics.histogram("w")
    assert hist.counts[0].tolist() == [1, 2]


# ---- media rates ----------------------------------------------------------------------------

@pytest.mark.parametrize("call, words", [
    (lambda f, v: f.save_video("v.gif", v, fps=0), "video 'v.gif': fps must be a positive number"),
    (lambda f, v: f.save_video("v.gif", v, fps=-5), "fps must be a positive number of frames per second, got -5"),
    (lambda f, v: f.save_video("v.gif", v, fps=float("nan")), "fps must be a positive number"),
    (lambda f, v: f.save_video("v.gif", v, fps="20"), "fps must be a positive number"),
    (lambda f, v: f.save_audio("a.wav", np.zeros(8), sample_rate=8000.5), "sample_rate must be a positive int, got 8000.5"),
    (lambda f, v: f.save_audio("a.wav", np.zeros(8), sample_rate="16000"), "sample_rate must be a positive int"),
])
def test_media_rates_that_are_no_rate_are_refused(tmp_path, call, words):
    # before: fps=0 raised ZeroDivisionError, fps=-5 was stored (a GIF at its shortest delay),
    # sample_rate=8000.5 was stored as 8000 Hz
    pytest.importorskip("PIL")
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    frames = np.zeros((2, 4, 4, 3), np.uint8)
    with exp.run("r"):
        f = exp.files
        with pytest.raises(ValueError) as e:
            call(f, frames)
        assert words in str(e.value)
        assert f.list() == []  # nothing stored under the name
        f.save_video("v.gif", frames, fps=10)  # the next valid calls work
        f.save_audio("a.wav", np.zeros(8), sample_rate=16000.0)
        assert f.load("a.wav")[1] == 16000
        assert sorted(r.name for r in f.list()) == ["a.wav", "v.gif"]


# ---- metric names and statistics queries ----------------------------------------------------

@pytest.mark.parametrize("call, error, words", [
    (lambda m: m.collector(5), TypeError, "metrics.collector(5): the metric name must be a str, got int"),
    (lambda m: m.collector(None), TypeError, "metrics.collector(None): the metric name must be a str, got NoneType"),
    (lambda m: m.get_stats(5), TypeError, "metrics.get_stats(5): the metric name must be a str, got int"),
    (lambda m: m.get_summary(5), TypeError, "metrics.get_summary(5): the metric name must be a str"),
    (lambda m: m.get_percentile(5, 50), TypeError, "metrics.get_percentile(5): the metric name must be a str"),
    (lambda m: m.get_percentile("loss", "50"), TypeError,
     "get_percentile('loss', p='50'): p must be a number from 0 to 100, got str; e.g. p=50"),
    (lambda m: m.get_percentile("loss", None), TypeError, "p must be a number from 0 to 100, got NoneType"),
    (lambda m: m.get_percentile("loss", True), TypeError, "p must be a number from 0 to 100, got bool"),
    (lambda m: m.get_percentile("loss", 150), ValueError,
     "get_percentile('loss', p=150): p must be a number from 0 to 100 (50: the median)"),
    (lambda m: m.get_percentile("loss", float("nan")), ValueError, "p must be a number from 0 to 100"),
    (lambda m: m.get_percentile("loss", 0.5), None, None),  # a fraction is a valid percentile
    (lambda m: m.get_summary("loss", "100"), TypeError,
     "get_summary('loss', frequency='100'): frequency must be an int, got str; e.g. frequency=100"),
])
def test_metric_queries_refuse_a_name_or_percentile_of_the_wrong_type(tmp_path, call, error, words):
    # before: "can only concatenate str (not "int") to str", "'<=' not supported between
    # instances of 'int' and 'str'", "'>' not supported ...", "percentile must be within 0..100"
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        for step in range(5):
            exp.metrics.log(step=step, loss=float(step))
        if error is None:
            assert call(exp.metrics) == pytest.approx(0.02)
        else:
            with pytest.raises(error) as e:
                call(exp.metrics)
            assert words in str(e.value)
        # the next valid calls work, and nothing logged is lost
        assert exp.metrics.get_stats("loss").count == 5
        assert exp.metrics.get_percentile("loss", 50) == 2.0
        add = exp.metrics.collector("acc")
        add(0.5, 5)
        exp.metrics.flush()
        url = exp.run_url
    assert _logged_rows(url) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert _logged_rows(url, "acc") == [0.5]


# ---- files: a version or rank that is no int --------------------------------------------------

@pytest.mark.parametrize("kw, error, words", [
    ({"version": "1"}, TypeError, "('a.json', version='1'): version must be an int (1, 2, ...; "
                                  "-1 the newest, -2 the one before), got str; e.g. version=1"),
    ({"version": 1.0}, TypeError, "version must be an int (1, 2, ...; -1 the newest, -2 the one before), got float"),
    ({"version": True}, TypeError, "version must be an int"),
    ({"rank": "0"}, TypeError, "('a.json', rank='0'): rank must be an int (the rank that saved "
                               "the file, 0 or more), got str; e.g. rank=0"),
    ({"rank": 0.0}, TypeError, "rank must be an int"),
    ({"rank": -1}, ValueError, "rank=-1): rank must be an int (the rank that saved the file, 0 or more)"),
])
def test_files_refuse_a_version_or_rank_that_is_no_int(tmp_path, kw, error, words):
    # before: version="1" raised "'<' not supported between instances of 'str' and 'int'",
    # rank="0" said "no file 'a.json' from rank 0" (rank 0 had saved it), version=True
    # loaded version 1 and rank=0.0 rank 0's
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        f = exp.files
        f.save({"a": 1}, "a.json")
        f.save({"a": 2}, "a.json")
        for call in (f.load, f.info, f.read_bytes):
            with pytest.raises(error) as e:
                call("a.json", **kw)
            assert words in str(e.value)
        assert f.load("a.json", version=1, rank=0) == {"a": 1}  # the next valid calls work
        assert f.load("a.json", version=np.int64(-1)) == {"a": 2}
        url = exp.run_url
    files = distlog.open_run(url).files
    for call in (files.load, files.find, files.read_bytes):
        with pytest.raises(error) as e:
            call("a.json", **kw)
        assert words in str(e.value)
    assert files.load("a.json", version=1, rank=0) == {"a": 1}
    assert files.find("a.json").version == 2


# ---- savefig of something that is no figure ---------------------------------------------------

@pytest.mark.parametrize("call, words", [
    (lambda f, fig: f.savefig(5, "p.png"),
     "files.savefig(5, 'p.png'): expected a matplotlib figure (plt.figure(), plt.gcf(), fig of "
     "plt.subplots()), got int; e.g. files.savefig(fig, 'plot.png')"),
    (lambda f, fig: f.savefig(None, "p.png"), "expected a matplotlib figure"),
    (lambda f, fig: f.savefig(np.zeros((4, 4)), "p.png"),
     "got ndarray; e.g. files.savefig(fig, 'plot.png') (an image array: files.save_image('p.png', array))"),
    (lambda f, fig: f.savefig(5), "files.savefig(5): expected a matplotlib figure"),
    (lambda f, fig: f.savefig("p.png", fig), "the figure comes first: files.savefig(fig, 'p.png')"),
])
def test_savefig_refuses_what_is_no_matplotlib_figure(tmp_path, call, words):
    # before: "'int' object has no attribute 'savefig'" (AttributeError), or with the arguments
    # swapped "file name must be a str, got Figure"
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        f = exp.files
        with pytest.raises(TypeError) as e:
            call(f, fig)
        assert words in str(e.value)
        assert f.list() == []  # nothing stored
        f.savefig(fig, "p.png")  # the next valid call works
        assert f.load("p.png").ndim == 3
        assert [r.name for r in f.list()] == ["p.png"]


# ---- an experiment scope inside an open run ---------------------------------------------------

def test_an_experiment_scope_inside_an_open_run_is_refused(tmp_path):
    # before: `with exp.experiment("inner")` inside the run was taken silently: experiment_name
    # said 'inner' while every value still went to outer/r
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.experiment("outer"):
        with exp.run("r"):
            exp.metrics.log(step=0, loss=0.0)
            with pytest.raises(distlog.errors.RunStateError) as e:
                with exp.experiment("inner"):
                    exp.metrics.log(step=1, loss=99.0)
            assert ("exp.experiment('inner'): run 'r' of experiment 'outer' is open, and a run's "
                    "experiment cannot change") in str(e.value)
            assert "close the run first" in str(e.value)
            assert exp.experiment_name == "outer"
            exp.metrics.log(step=1, loss=1.0)  # the run goes on
            url = exp.run_url
        with exp.experiment("inner"):  # with the run closed, the scope works
            with exp.run("r2"):
                assert exp.experiment_name == "inner"
                exp.metrics.log(step=0, loss=5.0)
                url2 = exp.run_url
    assert url.endswith("/outer/r") and url2.endswith("/inner/r2")
    assert _logged_rows(url) == [0.0, 1.0]
    assert _logged_rows(url2) == [5.0]
    assert not (tmp_path / "inner" / "r").exists()


def test_experiment_name_is_the_open_runs_experiment(tmp_path):
    # before: a run started inside `with exp.experiment("a")` and still open after the block
    # (start_run, or a run started on first use) was reported as experiment 'default'
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.experiment("a"):
        exp.start_run("r")
    assert exp.experiment_name == "a"
    assert "experiment='a'" in repr(exp)
    exp.metrics.log(step=0, loss=1.0)
    url = exp.run_url
    exp.close()
    assert exp.experiment_name == "default"
    assert url.endswith("/a/r") and _logged_rows(url) == [1.0]


# ---- an empty root ------------------------------------------------------------------------------

@pytest.mark.parametrize("root", ["", "   ", "file://"])
def test_an_empty_root_is_refused_naming_the_fix(tmp_path, monkeypatch, root):
    # before: get_logger("") (an unset environment variable) wrote its runs into the current
    # directory
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as e:
        distlog.get_logger(root)
    assert f"get_logger({root!r}): the root is empty" in str(e.value)
    assert "get_logger('./runs')" in str(e.value) and "get_logger('.')" in str(e.value)
    assert list(tmp_path.iterdir()) == []  # nothing written
    exp = distlog.get_logger(".", heartbeat_interval=0)  # the current directory, on purpose
    with exp.run("r"):
        exp.metrics.log(step=0, loss=1.0)
        url = exp.run_url
    assert (tmp_path / "default" / "r").is_dir() and _logged_rows(url) == [1.0]


# ---- a meta tensor (no value) ---------------------------------------------------------------------

META_WORDS = "metric 'loss' got a Tensor on the meta device, which holds no value"


def test_a_meta_tensor_is_refused_at_the_call_and_nothing_is_lost(tmp_path):
    # before: collect() kept it (not on the CPU: read at the flush), then every later flush and
    # the close failed with "Cannot copy out of meta tensor; no data!", losing the rows; log()
    # raised "Tensor.item() cannot be called on meta tensors", log_histogram torch's error
    import torch

    meta = torch.empty((), device="meta")
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        exp.metrics.collect(step=0, loss=0.0)
        exp.metrics.flush()
        for call in (lambda: exp.metrics.collect(step=1, loss=meta),
                     lambda: exp.metrics.collector("loss")(meta, 1),
                     lambda: exp.metrics.log(step=1, loss=meta)):
            with pytest.raises(TypeError) as e:
                call()
            assert META_WORDS in str(e.value)
        with pytest.raises(TypeError, match="log_histogram\\('w'\\): values are a tensor on the meta device"):
            exp.metrics.log_histogram("w", torch.empty(3, device="meta"), step=1)
        exp.metrics.collect(step=1, loss=1.0)  # the next flushes and the close work
        exp.metrics.flush()
        exp.metrics.collect(step=2, loss=2.0)
        url = exp.run_url
    run = distlog.open_run(url)
    assert run.info.status == "completed"
    assert _logged_rows(url) == [0.0, 1.0, 2.0]


def _meta_on_rank_1(rank, world, root):
    import torch

    exp = distlog.get_logger(root, heartbeat_interval=0, flush_timeout=60)
    raised = None
    with exp.run("r"):
        exp.metrics.collect(step=0, loss=float(rank))
        exp.metrics.flush()
        exp.metrics.collect(step=1, loss=torch.empty((), device="meta") if rank == 1 else 10.0)
        try:
            exp.metrics.flush()
        except TypeError as e:
            raised = str(e)
        exp.metrics.collect(step=2, loss=float(rank) + 2)
        exp.metrics.flush()
        exp.metrics.collect(step=3, loss=float(rank) + 3)  # taken by the closing flush
    return raised


@pytest.mark.dist
@pytest.mark.timeout(180)
def test_a_meta_tensor_on_one_rank_is_refused_at_the_next_flush_on_every_rank(tmp_path):
    # before: rank 1 failed its flush and every later one (and its close) with "Cannot copy out
    # of meta tensor; no data!" before the collective, so rank 0 waited for it
    from support.ranks import run_ranks

    root = str(tmp_path / "root")
    res = run_ranks(_meta_on_rank_1, 2, tmp_path, root, timeout=150)
    assert res[0] == res[1] and res[0] is not None
    assert "rank 1: " + META_WORDS in res[0]
    run = distlog.open_run(f"{root}/default/r")
    assert run.info.status == "completed"
    # every valid value is kept: rank 0's value at step 1, then both ranks' at steps 2 and 3
    assert _logged_rows(f"{root}/default/r") == [0.5, 10.0, 2.5, 3.5]


# ---- get_logs' limit and rank ---------------------------------------------------------------------

@pytest.mark.parametrize("kw, error, words", [
    ({"limit": "5"}, TypeError, "get_logs(limit='5'): limit must be an int (0 or more) or None (every record), got str"),
    ({"limit": -1}, ValueError, "get_logs(limit=-1): limit must be an int (0 or more) or None"),
    ({"rank": "0"}, TypeError, "get_logs(rank='0'): rank must be an int (0 or more) or None (every rank), got str"),
    ({"rank": -1}, ValueError, "get_logs(rank=-1): rank must be an int (0 or more) or None"),
])
def test_get_logs_refuses_a_limit_or_rank_that_is_no_count(tmp_path, kw, error, words):
    # before: limit="5" raised "bad operand type for unary -: 'str'", limit=-1 dropped the first
    # record, rank="0" found no record at all (rank 0 had written them)
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        for i in range(3):
            exp.info(f"m{i}")
        with pytest.raises(error) as e:
            exp.get_logs(**kw)
        assert words in str(e.value)
        assert [r.message for r in exp.get_logs(level="INFO", limit=2, rank=0)] == ["m1", "m2"]
        assert exp.get_logs(level="INFO", limit=0) == []  # (was every record)
        assert [r.message for r in exp.get_logs(level="INFO", limit=None)] == ["m0", "m1", "m2"]


# ---- the Experiment's shortcuts ---------------------------------------------------------------------

@pytest.mark.parametrize("call, error, words", [
    (lambda e: e.log_model(5, {"w": 1}), TypeError, "log_model(5): the name must be a str, got int; e.g. log_model('model', model)"),
    (lambda e: e.log_metric(5, 1.0), TypeError, "log_metric(5, ...): the metric name must be a str, got int; e.g. log_metric('loss', 0.5)"),
    (lambda e: e.log_metrics([("acc", 1.0)]), TypeError, "log_metrics() takes a dict of values, got list ([('acc', 1.0)]); e.g. log_metrics({'loss': 0.5}, step=10)"),
    (lambda e: e.install_preemption_handler("SIGUSR1"), TypeError,
     "install_preemption_handler('SIGUSR1'): signals must be a tuple of signal names; e.g. signals=('SIGUSR1',)"),
    (lambda e: e.install_preemption_handler(("SIGBOGUS",)), ValueError,
     "install_preemption_handler(): no signal 'SIGBOGUS' here; e.g. signals=('SIGUSR1',)"),
])
def test_experiment_shortcuts_refuse_arguments_of_the_wrong_type(tmp_path, call, error, words):
    # before: log_model(5, ...) "'int' object has no attribute 'rsplit'", log_metric(5, ...)
    # "keywords must be strings", log_metrics([...]) "argument after ** must be a mapping",
    # install_preemption_handler("SIGUSR1") "module 'signal' has no attribute 'S'"
    import signal

    before = signal.getsignal(signal.SIGUSR1)
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    try:
        with exp.run("r"):
            exp.log_metric("loss", 0.0, step=0)
            with pytest.raises(error) as e:
                call(exp)
            assert words in str(e.value)
            assert signal.getsignal(signal.SIGUSR1) is before  # no handler half installed
            exp.log_metrics({"loss": 1.0}, step=1)  # the next valid calls work
            exp.log_model("model", {"w": 1})
            url = exp.run_url
    finally:
        signal.signal(signal.SIGUSR1, before)
    assert _logged_rows(url) == [0.0, 1.0]
    assert distlog.open_run(url).files.paths() == ["model.pt"]


def test_files_list_and_make_video_refuse_a_pattern_that_is_no_str(tmp_path):
    # before: "object of type 'int' has no len()" from fnmatch
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        f = exp.files
        f.save({"a": 1}, "a.json")
        with pytest.raises(TypeError) as e:
            f.list(5)
        assert "files.list(5): the pattern must be a str (fnmatch), got int; e.g. files.list('*.png')" in str(e.value)
        with pytest.raises(TypeError, match=r"files.make_video\(5\): the pattern must be a str"):
            f.make_video(5, "o.gif")
        assert [r.name for r in f.list("*.json")] == ["a.json"]


# ---- log_histogram bins and range, commit's arguments, log_metrics' step --------------------

@pytest.mark.parametrize("kwargs, error, words", [
    ({"bins": "4"}, TypeError, "bins='4'): expected a number of bins (an int >= 1) or the bin edges"),
    ({"bins": "auto"}, TypeError, "a rule like 'auto' would give each step another number of bins"),
    ({"bins": True}, TypeError, "bins=True): expected a number of bins"),
    ({"bins": 0}, ValueError, "bins=0): expected a number of bins >= 1"),
    ({"bins": [0.0, 2.0, 1.0]}, ValueError, "pass a number of bins or increasing edges"),
    ({"range": 5}, TypeError, "range=5): expected (low, high), two numbers"),
    ({"range": (5, 1)}, ValueError, "range=(5, 1)): expected two finite numbers with low < high"),
    ({"range": (0, float("inf"))}, ValueError, "expected two finite numbers"),
])
def test_log_histogram_checks_bins_and_range(tmp_path, kwargs, error, words):
    # before: NumPy's "'4' is not a valid estimator for `bins`", "cannot unpack non-iterable
    # int object", "max must be larger than min in range parameter"; bins="auto" was taken and
    # failed at the next step whose data gave another bin count
    url = str(tmp_path / "default" / "r")
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        exp.metrics.log_histogram("h", [0.0, 1.0], bins=4, step=0)
        with pytest.raises(error) as e:
            exp.metrics.log_histogram("h", np.arange(10.0), step=1, **{"bins": 4, **kwargs})
        assert words in str(e.value) and "log_histogram('h'" in str(e.value)
        exp.metrics.log_histogram("h", [2.0, 3.0], bins=4, step=1)  # the next valid call works
        exp.metrics.log_histogram("e", [0.5, 1.5], bins=[0.0, 1.0, 2.0], step=1)  # edges still work
    hist = distlog.open_run(url).metrics.histogram("h")
    assert hist.step.tolist() == [0, 1] and [int(c.sum()) for c in hist.counts] == [2, 2]
    assert [c.tolist() for c in distlog.open_run(url).metrics.histogram("e").counts] == [[1, 1]]


@pytest.mark.parametrize("kwargs, error, words", [
    ({"timeout": "x"}, TypeError, "commit(timeout='x'): expected a number of seconds > 0, or None"),
    ({"timeout": 0}, ValueError, "commit(timeout=0): expected a number of seconds > 0"),
    ({"timeout": True}, TypeError, "commit(timeout=True)"),
    ({"barrier": "yes"}, TypeError, "commit(barrier='yes'): expected True"),
])
def test_commit_checks_its_arguments(tmp_path, kwargs, error, words):
    # before: commit("x") returned quietly (the timeout reached no wait), barrier="yes" was true
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        exp.metrics.log(loss=1.0, step=0)
        with pytest.raises(error) as e:
            exp.metrics.commit(**kwargs)
        assert words in str(e.value)
        exp.metrics.commit()
    assert _logged_rows(str(tmp_path / "default" / "r")) == [1.0]


def test_log_metrics_takes_the_step_from_the_dict_or_refuses_it_twice(tmp_path):
    # before: both were Python's "got multiple values for keyword argument 'step'"
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        exp.log_metrics({"step": 3, "loss": 0.5})
        with pytest.raises(TypeError, match=r"log_metrics\(\) got the step twice: step=4 in the dict and step=5"):
            exp.log_metrics({"step": 4, "loss": 0.25}, step=5)
        exp.log_metrics({"loss": 0.125}, step=6)
    loss = distlog.open_run(str(tmp_path / "default" / "r")).metrics.read("loss")
    assert loss["step"].tolist() == [3.0, 6.0] and loss["value"].tolist() == [0.5, 0.125]


def test_commit_takes_a_numpy_bool_barrier(tmp_path):
    # a barrier flag computed from a NumPy step (step % 100 == 0) is a np.bool_: refused as
    # "expected True ... or False" by the check that meant to refuse barrier="yes"
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        exp.metrics.log(loss=1.0, step=0)
        exp.metrics.commit(barrier=np.int64(100) % 100 == 0)
        exp.metrics.commit(barrier=np.False_)
    assert _logged_rows(str(tmp_path / "default" / "r")) == [1.0]
