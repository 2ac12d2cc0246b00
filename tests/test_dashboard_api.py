"""The dashboard's JSON API (ASGI test client) over runs made by the real logger: the runs
table, a run, series equal to the store's rows, live increments, logs filters, files with
MIME types and ranges, compare and bands, errors as JSON, access rules and traversal."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

import distlog  # noqa: E402
from support.dashboard_runs import HOSTILE, STEPS, SWEEP, ema, loss, make_root  # noqa: E402
from distlog.dashboard.app import make_app  # noqa: E402
from distlog.layout import RUN_FILE, STORE_DIR  # noqa: E402

LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_root(str(tmp_path_factory.mktemp("dash") / "root"))


@pytest.fixture(scope="module")
def client(root):
    return TestClient(make_app(distlog.open_root(root)), base_url=LOCAL)


def test_runs_table_lists_every_run_with_flat_params(client):
    data = client.get("/api/runs").json()
    paths = [r["path"] for r in data["runs"]]
    assert paths == ["media/m1", "media/resumed"] + sorted(f"sweep/lr{lr}-s{s}" for lr, s in SWEEP)
    row = {r["path"]: r for r in data["runs"]}["sweep/lr0.01-s1"]
    assert row["params"] == {"optim.lr": 0.01, "seed": 1}
    assert row["status"] == "completed" and sorted(row["tags"]) == ["small", "sweep"]
    assert row["last_step"] is not None and row["attempts"] == 1
    assert data["param_keys"] == ["max_grad_norm", "model.act", "model.depth", "optim.lr", "seed"]


def test_run_detail(client):
    d = client.get("/api/run", params={"run": "media/m1"}).json()
    assert d["info"]["run_id"] == "m1" and d["row"]["status"] == "completed"
    assert d["params"] == {"model": {"depth": 4, "act": "<b>relu</b>"}, "max_grad_norm": 1.0}
    assert d["keys"] == ["spiky"] and d["histograms"] == ["weights"]
    assert d["log_ranks"] == [0] and len(d["attempts"]) == 1
    assert d["attempts"][0]["status"] == "completed" and d["attempts"][0]["started"] > 0


def test_series_equal_the_stored_rows(client, root):
    s = client.get("/api/series", params={"run": "sweep/lr0.1-s1", "key": "train/loss"}).json()
    assert s["rows"] == STEPS and not s["downsampled"]
    assert s["columns"]["step"] == list(range(STEPS))
    np.testing.assert_allclose(s["columns"]["value"], [loss(0.1, 1, i) for i in range(STEPS)])
    stored = distlog.open_run(os.path.join(root, "sweep", "lr0.1-s1")).metrics.read("train/loss")
    assert set(s["columns"]) == {"step", "value"}  # one process: no band, no time unless asked
    t = client.get("/api/series", params={"run": "sweep/lr0.1-s1", "key": "train/loss", "x": "time"}).json()
    np.testing.assert_allclose(t["columns"]["time"], np.round(stored["time"], 3))


def test_downsampled_series_keeps_the_spike_and_zoom_gives_full_rows(client):
    s = client.get("/api/series", params={"run": "media/m1", "key": "spiky", "width": 2}).json()
    assert s["downsampled"] and len(s["columns"]["step"]) <= 8
    assert max(s["columns"]["value"]) == 100.0 and 17 in s["columns"]["step"]
    z = client.get("/api/series", params={"run": "media/m1", "key": "spiky", "width": 2,
                                           "x0": 15, "x1": 19}).json()
    assert z["columns"]["step"] == [14, 15, 16, 17, 18, 19, 20]  # one row either side
    live = client.get("/api/series", params={"run": "media/m1", "key": "spiky", "start": 27}).json()
    assert live["columns"]["step"] == [27, 28, 29] and live["rows"] == STEPS


def test_status_gives_committed_lengths(client):
    st = client.get("/api/status", params={"run": "sweep/lr0.1-s0"}).json()
    assert st["status"] == "completed"
    assert st["lengths"]["0"] == {"train/loss": STEPS, "val/acc": STEPS}


def test_histogram(client):
    h = client.get("/api/histogram", params={"run": "media/m1", "key": "weights"}).json()
    assert h["step"] == [1, 2]
    counts, edges = np.histogram(np.arange(100.0) * 2, bins=10)
    assert h["counts"][1] == counts.tolist()
    np.testing.assert_allclose(h["edges"][1], edges)


def test_logs_filters_and_hostile_text_is_returned_as_data(client):
    base = {"run": "media/m1"}
    recs = client.get("/api/logs", params={**base, "level": "ERROR"}).json()["records"]
    assert [r["message"] for r in recs] == [f"step {s} done" for s in range(2, STEPS, 3)]
    recs = client.get("/api/logs", params={**base, "grep": "^step 1[0-2] "}).json()["records"]
    assert [r["step"] for r in recs] == [10, 11, 12]
    recs = client.get("/api/logs", params={**base, "from_step": 28, "limit": 2}).json()["records"]
    assert [r["step"] for r in recs] == [28, 29]
    page = client.get("/api/logs", params={**base, "tail": 3}).json()
    assert page["more"] and len(page["records"]) == 3
    hostile = client.get("/api/logs", params={**base, "grep": "onerror"}).json()["records"]
    assert [r["message"] for r in hostile] == [HOSTILE]
    later = client.get("/api/logs", params={**base, "since": hostile[0]["t"]}).json()["records"]
    assert later[0]["message"] == HOSTILE and all(r["t"] >= hostile[0]["t"] for r in later)
    bad = client.get("/api/logs", params={**base, "grep": "("})
    assert bad.status_code == 400 and "regular expression" in bad.json()["error"]
    assert client.get("/api/logs", params={**base, "rank": 3}).status_code == 404


def test_files_bytes_mime_types_and_ranges(client, root):
    files = client.get("/api/files", params={"run": "media/m1"}).json()
    assert sorted(files["latest"]) == ["beep.wav", "blob.bin", "config.json", "notes.txt",
                                       "samples/gradient.png"]
    run = distlog.open_run(os.path.join(root, "media", "m1"))
    png = client.get("/api/file", params={"run": "media/m1", "path": "samples/gradient.png"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content == run.files.read_bytes("samples/gradient.png")
    assert png.headers["content-security-policy"].startswith("sandbox")
    wav = client.get("/api/file", params={"run": "media/m1", "path": "beep.wav"})
    assert wav.headers["content-type"] == "audio/wav"
    blob = run.files.read_bytes("blob.bin")
    part = client.get("/api/file", params={"run": "media/m1", "path": "blob.bin"},
                      headers={"Range": "bytes=99990-"})
    assert part.status_code == 206 and part.content == blob[99990:]
    assert part.headers["content-range"] == f"bytes 99990-{len(blob) - 1}/{len(blob)}"
    tail = client.get("/api/file", params={"run": "media/m1", "path": "blob.bin"},
                      headers={"Range": "bytes=-3"})
    assert tail.content == b"end"
    bad = client.get("/api/file", params={"run": "media/m1", "path": "blob.bin"},
                     headers={"Range": "bytes=200000-"})
    assert bad.status_code == 416
    dl = client.get("/api/file", params={"run": "media/m1", "path": "notes.txt", "download": 1})
    assert dl.headers["content-disposition"].startswith("attachment") and dl.text.startswith("plain")


def test_compare_and_bands_match_a_numpy_oracle(client):
    runs = [f"sweep/lr{lr}-s{s}" for lr, s in SWEEP]
    c = client.get("/api/compare", params={"run": runs, "key": "train/loss"}).json()
    assert [s["run"] for s in c["series"]] == runs
    for (lr, seed), s in zip(SWEEP, c["series"]):
        np.testing.assert_allclose(s["columns"]["value"], [loss(lr, seed, i) for i in range(STEPS)])
    b = client.get("/api/bands", params={"run": runs, "key": "train/loss", "group_by": "optim.lr",
                                         "bins": STEPS}).json()
    assert [g["group"] for g in b["groups"]] == [{"optim.lr": 0.01}, {"optim.lr": 0.1}]
    for g in b["groups"]:
        lr = g["group"]["optim.lr"]
        both = np.array([[loss(lr, s, i) for i in range(STEPS)] for s in (0, 1)])
        np.testing.assert_allclose(g["mean"], both.mean(axis=0))
        np.testing.assert_allclose(g["std"], both.std(axis=0), atol=1e-12)
        assert g["runs"] == [2] * STEPS
    missing = client.get("/api/compare", params={"run": runs, "key": "nope"})
    assert missing.status_code == 404


@pytest.mark.parametrize("path", ["../etc", "sweep/../../x", "/etc/passwd", "sweep\\lr0.1-s0",
                                  STORE_DIR, "sweep/%2e%2e", "a\x00b", "C:/x", "file:///etc"])
def test_traversal_attempts_are_refused(client, path):
    r = client.get("/api/run", params={"run": path})
    assert r.status_code in (400, 404), r.text
    assert "error" in r.json()


def test_encoded_dotdot_in_raw_url_and_unknown_things_are_json_404(client):
    r = client.get("/api/run?run=%2e%2e%2f%2e%2e%2fetc")
    assert r.status_code == 400 and ".." in r.json()["error"]
    assert client.get("/api/run", params={"run": "sweep/nope"}).status_code == 404
    r = client.get("/api/file", params={"run": "media/m1", "path": f"../../{RUN_FILE}"})
    assert r.status_code == 404 and "files:" in r.json()["error"]
    r = client.get("/api/series", params={"run": "media/m1", "key": "spiky2"})
    assert r.status_code == 404 and "spiky" in r.json()["error"]
    assert client.get("/api/nope").status_code == 404
    assert client.get("/api/series", params={"run": "media/m1", "key": "spiky", "width": "w"}).status_code == 400
    for x0 in ("nan", "inf", "-inf"):  # no window of steps: refused, not one row or none
        r = client.get("/api/series", params={"run": "media/m1", "key": "spiky", "x0": x0, "x1": 19})
        assert r.status_code == 400 and "finite" in r.json()["error"], (x0, r.text)


def test_symlink_pointing_out_of_the_root_is_not_served(tmp_path):
    outside = tmp_path / "outside"
    make_outside = distlog.get_logger(str(outside))
    with make_outside.experiment("secret"), make_outside.run("s1"):
        make_outside.metrics.log(step=0, x=1.0)
    root = tmp_path / "root"
    exp = distlog.get_logger(str(root))
    with exp.experiment("ok"), exp.run("r1"):
        exp.metrics.log(step=0, x=1.0)
    os.symlink(outside / "secret", root / "linked")
    client = TestClient(make_app(distlog.open_root(str(root))), base_url=LOCAL)
    assert [r["path"] for r in client.get("/api/runs").json()["runs"]] == ["ok/r1"]
    assert client.get("/api/run", params={"run": "linked/s1"}).status_code == 404


def test_read_only_and_host_check_and_token(root):
    app = make_app(distlog.open_root(root))
    c = TestClient(app, base_url=LOCAL)
    assert c.post("/api/runs").status_code == 405
    assert TestClient(app, base_url="http://evil.example").get("/api/runs").status_code == 403
    guarded = make_app(distlog.open_root(root), token="s3cret", loopback_only=False)
    g = TestClient(guarded, base_url="http://10.0.0.5:8765")
    r = g.get("/api/runs")
    assert r.status_code == 401 and "token" in r.json()["error"]
    assert g.get("/", params={"token": "wrong"}).status_code == 401
    ok = g.get("/", params={"token": "s3cret"})
    assert ok.status_code == 200 and "distlog_token_8765=s3cret" in ok.headers["set-cookie"]
    assert g.get("/api/runs").status_code == 200  # the cookie now carries it
    h = TestClient(guarded, base_url="http://10.0.0.5:8765")
    assert h.get("/api/meta", headers={"X-Distlog-Token": "s3cret"}).status_code == 200
    assert h.get("/static/js/main.js").status_code == 401


def test_page_and_static_files_with_security_headers(client):
    page = client.get("/")
    assert page.status_code == 200 and "uPlot.iife.min.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    js = client.get("/static/vendor/uplot/uPlot.iife.min.js")
    assert js.status_code == 200 and len(js.content) > 40_000


def test_every_static_file_ships_in_the_wheel():
    import fnmatch
    import tomllib

    here = os.path.dirname(__file__)
    with open(os.path.join(here, "..", "pyproject.toml"), "rb") as f:
        globs = tomllib.load(f)["tool"]["setuptools"]["package-data"]["distlog.dashboard"]
    pkg = os.path.join(here, "..", "distlog", "dashboard")
    static = [os.path.relpath(os.path.join(d, n), pkg).replace(os.sep, "/")
              for d, _, names in os.walk(os.path.join(pkg, "static")) for n in names]
    assert "static/vendor/uplot/uPlot.iife.min.js" in static and "static/vendor/uplot/LICENSE" in static
    assert [s for s in static if not any(fnmatch.fnmatchcase(s, g) for g in globs)] == []


def test_loopback_names():
    from distlog.dashboard.server import is_loopback

    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "10.0.0.5", "::", "example.org"]))


# ---- a resumed attempt that rewound a cached series ---------------------------------------
def _log(root, steps, value, **run_kw):
    exp = distlog.get_logger(root)
    with exp.experiment("e"), exp.run("r", **run_kw):
        for s in steps:
            exp.metrics.log(step=s, loss=value)
    exp.close()


def _api_values(client, **extra):
    s = client.get("/api/series", params={"run": "e/r", "key": "loss", **extra}).json()
    return s, np.array(s["columns"]["value"], dtype=float)


@pytest.mark.parametrize("resume", [dict(resume_step=49), {}], ids=["resume_step", "rewound-on-write"])
def test_series_cache_reads_a_rewound_series_again(tmp_path, resume):
    """Attempt 1 rewinds loss to step 49 and writes other rows there; the cache (holding the
    first attempt's rows) must not keep them and append only the tail, whether the series
    grew past the cached rows or came back to exactly as many; the reply's generation changes
    so that a page drops the rows it holds."""
    root = str(tmp_path)
    _log(root, range(100), 1.0)
    client = TestClient(make_app(distlog.open_root(root)), base_url=LOCAL)
    before, vals = _api_values(client)
    assert before["rows"] == 100 and set(vals) == {1.0}
    _log(root, range(50, 100), 2.0, **resume)  # as many rows as before
    stored = distlog.open_run(tmp_path / "e" / "r").metrics.read("loss")["value"]
    same, vals = _api_values(client)
    np.testing.assert_array_equal(vals, stored)
    assert same["generation"] != before["generation"]
    _log(root, range(100, 200), 3.0)  # grows: an append, read as such
    stored = distlog.open_run(tmp_path / "e" / "r").metrics.read("loss")["value"]
    grown, tail = _api_values(client, start=100)
    assert grown["generation"] == same["generation"] and grown["lo"] == 100
    np.testing.assert_array_equal(tail, stored[100:])
    _log(root, range(150, 300), 4.0, resume_step=149)  # rewound again, then grew
    stored = distlog.open_run(tmp_path / "e" / "r").metrics.read("loss")["value"]
    last, vals = _api_values(client)
    np.testing.assert_array_equal(vals, stored)
    assert last["generation"] != grown["generation"]


def test_bands_group_by_list_nan_and_bool_params_as_read_metrics_does(tmp_path):
    """pandas cannot group list cells (a 500 before) and merges True with 1; bands group
    through read_metrics' own param key: one group per distinct value, NaNs together."""
    exp = distlog.get_logger(str(tmp_path))
    configs = [("a", [64, 64], True, 1.0), ("b", [128], True, 3.0), ("c", [64, 64], True, 5.0),
               ("d", [64, 64], 1, 7.0), ("n1", float("nan"), True, 9.0), ("n2", float("nan"), True, 11.0)]
    with exp.experiment("e"):
        for rid, layers, warm, v in configs:
            with exp.run(rid, params={"layers": layers, "warmup": warm}):
                for s in range(3):
                    exp.metrics.log(step=s, loss=v + s)
    exp.close()
    client = TestClient(make_app(distlog.open_root(str(tmp_path))), base_url=LOCAL)
    r = client.get("/api/bands", params=[*(("run", f"e/{c[0]}") for c in configs), ("key", "loss"),
                                         ("group_by", "layers"), ("group_by", "warmup")])
    assert r.status_code == 200, r.text
    got = [(g["group"]["layers"], g["group"]["warmup"], g["runs"][0], g["mean"][0]) for g in r.json()["groups"]]
    assert sorted(got, key=repr) == sorted([([64, 64], True, 2, 3.0), ([128], True, 1, 3.0), ([64, 64], 1, 1, 7.0),
                                            ("nan", True, 2, 10.0)], key=repr)


@pytest.mark.timeout(180)
def test_file_saved_by_two_ranks_under_one_name_is_served_per_rank(tmp_path):
    from support.dashboard_runs import rank_worker
    from support.ranks import run_ranks

    root = str(tmp_path / "root")
    run_ranks(rank_worker, 2, tmp_path, root, timeout=150)
    c = TestClient(make_app(distlog.open_root(root)), base_url=LOCAL)
    recs = [f for f in c.get("/api/files", params={"run": "ddp/two"}).json()["files"] if f["path"] == "out.txt"]
    # saved at once, each rank's own bytes: two versions (claimed with an exclusive create)
    assert sorted(f["rank"] for f in recs) == [0, 1] and sorted(f["version"] for f in recs) == [1, 2]
    version = {f["rank"]: f["version"] for f in recs}
    for rank in (0, 1):
        r = c.get("/api/file", params={"run": "ddp/two", "path": "out.txt", "version": version[rank], "rank": rank})
        assert r.status_code == 200 and r.text == f"rank {rank} text\n"
        r = c.get("/api/file", params={"run": "ddp/two", "path": "out.txt", "rank": rank})
        assert r.status_code == 200 and r.text == f"rank {rank} text\n"
    newest = next(r for r, v in version.items() if v == 2)
    assert c.get("/api/file", params={"run": "ddp/two", "path": "out.txt"}).text == f"rank {newest} text\n"
    bad = c.get("/api/file", params={"run": "ddp/two", "path": "out.txt", "rank": 5})
    assert bad.status_code == 404 and "rank 5" in bad.json()["error"]
    run = distlog.open_run(os.path.join(root, "ddp", "two"))
    assert run.files.read_bytes("out.txt") == f"rank {newest} text\n".encode()
    assert run.files.find("out.txt", rank=1).rank == 1


def test_head_with_a_range_says_which_range(client):
    part = client.head("/api/file", params={"run": "media/m1", "path": "blob.bin"},
                       headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.headers["content-range"].startswith("bytes 10-19/")
    assert part.headers["content-length"] == "10"


def test_grep_that_backtracks_without_end_is_a_400_and_bad_patterns_are_400s(tmp_path, monkeypatch):
    """A pattern that backtracks without end on some log line was matched with no limit
    (Python's re holds the interpreter: the whole server stalled); patterns re.compile cannot
    take with re.error (a huge repeat, deep nesting) were a 500."""
    from distlog.dashboard import logs_api

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        exp.log("INFO", "a" * 40 + "b")
    monkeypatch.setattr(logs_api, "GREP_SECONDS", 0.5)
    c = TestClient(make_app(distlog.open_root(str(tmp_path))), base_url=LOCAL)
    r = c.get("/api/logs", params={"run": "default/r", "grep": "(a|aa)+$"})
    assert r.status_code == 400 and "took too long" in r.json()["error"]
    for bad in ("a{99999999999}", "(" * 2000 + "a" + ")" * 2000, "(unclosed"):
        r = c.get("/api/logs", params={"run": "default/r", "grep": bad})
        assert r.status_code == 400 and "bad regular expression" in r.json()["error"], (bad[:20], r.text[:200])
    assert c.get("/api/logs", params={"run": "default/r", "grep": "a+b"}).json()["records"]


def test_any_loopback_address_is_a_loopback_host_and_token_cookies_are_per_port(root):
    app = make_app(distlog.open_root(root))
    for base in ("http://127.0.0.2:8000", "http://[0:0:0:0:0:0:0:1]:8000", "http://[::1]:8000"):
        assert TestClient(app, base_url=base).get("/api/meta").status_code == 200, base
    assert TestClient(app, base_url="http://127.0.0.1.evil.example").get("/api/meta").status_code == 403
    guarded = make_app(distlog.open_root(root), token="t", loopback_only=False)
    names = {TestClient(guarded, base_url=f"http://10.0.0.5:{port}").get("/", params={"token": "t"})
             .headers["set-cookie"].split("=")[0] for port in (8001, 8002)}
    assert names == {"distlog_token_8001", "distlog_token_8002"}  # a second dashboard on the
    # host no longer overwrites the first's cookie


def test_a_run_with_unreadable_params_does_not_take_the_runs_table_down(tmp_path):
    from distlog.layout import PARAMS_FILE

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    for rid in ("good", "torn", "list"):
        with exp.run(rid):
            exp.params.set(lr=0.1)
    (tmp_path / "default" / "torn" / PARAMS_FILE).write_text('{"lr": 0.1')
    (tmp_path / "default" / "list" / PARAMS_FILE).write_text("[1, 2]")
    c = TestClient(make_app(distlog.open_root(str(tmp_path))), base_url=LOCAL)
    rows = {r["path"]: r for r in c.get("/api/runs").json()["runs"]}
    assert rows["default/good"]["params"] == {"lr": 0.1} and "error" not in rows["default/good"]
    assert rows["default/torn"]["params"] == {} and "params" in rows["default/torn"]["error"]
    assert "not the JSON object" in rows["default/list"]["error"]
    r = c.get("/api/run", params={"run": "default/list"})  # the page says so, shows the rest
    assert r.status_code == 200 and "not the JSON object" in r.json()["damaged"][0]


def test_smoothing_is_the_ema_of_every_row_at_the_downsampled_points(tmp_path):
    """smooth=w: the EMA over the whole stored series (not over the M4-kept points), sent at
    the kept rows; a zoomed window and a live poll's new rows carry the same values."""
    rng = np.random.default_rng(0)
    vals = 1.0 + rng.exponential(1.0, 6000) ** 3  # skewed: the kept points' EMA is far off
    vals[777] = np.nan
    exp = distlog.get_logger(str(tmp_path))
    with exp.experiment("e"), exp.run("r"):
        for step, v in enumerate(vals):
            exp.metrics.log(step=step, loss=float(v))
    exp.close()
    client = TestClient(make_app(distlog.open_root(str(tmp_path))), base_url=LOCAL)
    stored = distlog.open_run(tmp_path / "e" / "r").metrics.read("loss")
    want = ema(np.asarray(stored["value"]), 0.9)
    q = {"run": "e/r", "key": "loss", "width": 200, "smooth": 0.9}
    s = client.get("/api/series", params=q).json()
    assert s["downsampled"] and len(s["columns"]["step"]) <= 5 * 200
    got = np.array([np.nan if v is None else v for v in s["columns"]["smooth"]])
    np.testing.assert_allclose(got, want[s["columns"]["step"]], rtol=1e-9)
    assert 777 in s["columns"]["step"] and np.isnan(got[s["columns"]["step"].index(777)])
    z = client.get("/api/series", params={**q, "x0": 3000, "x1": 3100}).json()
    np.testing.assert_allclose(z["columns"]["smooth"], want[z["columns"]["step"]], rtol=1e-9)
    tail = client.get("/api/series", params={**q, "start": 5990}).json()
    np.testing.assert_allclose(tail["columns"]["smooth"], want[5990:], rtol=1e-9)
    assert "smooth" not in client.get("/api/series", params={**q, "smooth": 0}).json()["columns"]
    assert client.get("/api/series", params={**q, "smooth": 1}).status_code == 400


def test_one_process_series_with_an_inf_value_has_no_band(tmp_path):
    """One process logs inf once: the store keeps NaN min/max at that row, which is no spread
    across ranks, so no band (min/max columns) is sent; NaN values alike."""
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"), exp.run("r"):
        for step in range(50):
            v = float("inf") if step == 10 else float("-inf") if step == 11 else float("nan") if step == 12 else 1 / (step + 1)
            exp.metrics.log(step=step, loss=v)
    exp.close()
    client = TestClient(make_app(distlog.open_root(str(tmp_path))), base_url=LOCAL)
    s = client.get("/api/series", params={"run": "e/r", "key": "loss"}).json()
    assert set(s["columns"]) == {"step", "value", "nonfinite"}  # (which value: for the legend)
    assert s["columns"]["value"][10:13] == [None, None, None]
    assert s["columns"]["nonfinite"][9:14] == [None, "inf", "-inf", "NaN", None]


def test_bands_smooth_each_run_over_every_row_as_a_single_run_is_smoothed(tmp_path):
    """bands?smooth=w: each run's series is smoothed as /api/series smooths it (the EMA over
    every stored row, NaN skipped) before it is binned and averaged, so a one-run group at
    the same setting is the run's own smoothed curve (binned), not an EMA of the bin means
    (which smooths over bins instead of rows: a longer window). Without smooth: unchanged."""
    rng = np.random.default_rng(1)
    n = 2000
    exp = distlog.get_logger(str(tmp_path))
    with exp.experiment("e"):
        for seed in (0, 1):
            with exp.run(f"s{seed}", params={"seed": seed, "lr": 0.1 if seed == 0 else 0.2}):
                vals = 1.0 + rng.exponential(1.0, n) ** 2
                vals[100] = np.nan
                for step, v in enumerate(vals):
                    exp.metrics.log(step=step, loss=float(v))
    exp.close()
    client = TestClient(make_app(distlog.open_root(str(tmp_path))), base_url=LOCAL)
    stored = {s: np.asarray(distlog.open_run(tmp_path / "e" / f"s{s}").metrics.read("loss")["value"]) for s in (0, 1)}
    q = {"run": ["e/s0", "e/s1"], "key": "loss", "group_by": "lr", "bins": 300, "smooth": 0.9}
    b = client.get("/api/bands", params=q).json()
    assert [g["group"] for g in b["groups"]] == [{"lr": 0.1}, {"lr": 0.2}]
    size = int(np.ceil(n / 300))  # steps per bin, as read_metrics cuts them
    for seed, g in zip((0, 1), b["groups"]):
        sm = ema(stored[seed], 0.9)
        want = [np.nanmean(sm[i:i + size]) for i in range(0, n, size)]
        assert g["step"] == list(range(0, n, size)) and g["runs"] == [1] * len(want)
        np.testing.assert_allclose(g["mean"], want, rtol=1e-9)
        assert g["std"] == [0.0] * len(want)
    # one bin per step: the group's line is the run's own smoothed series, step for step
    one = client.get("/api/bands", params={**q, "run": "e/s0", "bins": n}).json()["groups"][0]
    alone = client.get("/api/series", params={"run": "e/s0", "key": "loss", "smooth": 0.9, "width": n}).json()
    by_step = dict(zip(alone["columns"]["step"], alone["columns"]["smooth"]))
    # (the NaN row's step: a row of 0 runs, its NaN counted, no mean: a gap in the line)
    assert one["step"] == list(range(n)) and one["runs"][100] == 0 and one["nonfinite"][100] == 1
    assert one["mean"][100] is None and sum(one["nonfinite"]) == 1
    fin = [s for s in one["step"] if s != 100]
    np.testing.assert_allclose([m for s, m in zip(one["step"], one["mean"]) if s != 100],
                               [by_step[s] for s in fin], rtol=1e-12)
    # two runs in a group: mean and std across the runs' smoothed series
    both = client.get("/api/bands", params={**q, "group_by": None, "bins": n}).json()["groups"][0]
    sm = np.vstack([ema(stored[s], 0.9) for s in (0, 1)])
    keep = ~np.isnan(sm).all(axis=0)
    assert both["step"] == list(range(n)) and both["nonfinite"] == (~keep * 2).tolist()
    assert both["runs"] == (keep * 2).tolist()  # (the step where both went NaN: 0 runs)
    at = np.flatnonzero(keep)
    np.testing.assert_allclose(np.array(both["mean"])[at].astype(float), np.nanmean(sm[:, keep], axis=0), rtol=1e-9)
    np.testing.assert_allclose(np.array(both["std"])[at].astype(float), np.nanstd(sm[:, keep], axis=0),
                               rtol=1e-9, atol=1e-12)
    raw = client.get("/api/bands", params={**q, "smooth": 0}).json()["groups"][0]
    np.testing.assert_allclose(raw["mean"], [np.nanmean(stored[0][i:i + size]) for i in range(0, n, size)], rtol=1e-9)
    assert client.get("/api/bands", params={**q, "smooth": 1}).status_code == 400


def test_a_run_with_a_torn_commit_record_or_params_is_a_damaged_row_not_a_500(tmp_path):
    """A running run whose commit record is torn (its last step is read from its series), and
    finished runs with a torn commit record or params.json: each a row with status damaged and
    an error naming the file; the healthy runs' rows as before; the run page's error names the
    file too, and what is readable (the page was a 400 showing nothing)."""
    from distlog.layout import PARAMS_FILE, SCALARS_TABLE, table_commit

    root = tmp_path / "root"
    exp = distlog.get_logger(str(root), heartbeat_interval=0, commit_interval=3600)
    for rid in ("good", "torn_commit", "torn_params"):
        with exp.run(rid, params={"lr": 0.1}):
            exp.metrics.log(step=7, loss=1.0)
    (root / "default" / "torn_commit" / table_commit(SCALARS_TABLE)).write_text('{"lengths": {"lo')
    (root / "default" / "torn_params" / PARAMS_FILE).write_text('{"lr": 0.')
    with exp.run("live", params={"lr": 0.2}):
        exp.metrics.log(step=5, loss=2.0)
        exp.metrics.commit()  # committed; run.json has no last step yet: read from the series
        (root / "default" / "live" / table_commit(SCALARS_TABLE)).write_text('{"lengths": {"lo')
        c = TestClient(make_app(distlog.open_root(str(root))), base_url=LOCAL)
        r = c.get("/api/runs")
        assert r.status_code == 200, r.text
        rows = {x["path"]: x for x in r.json()["runs"]}
        assert rows["default/good"]["status"] == "completed" and "error" not in rows["default/good"]
        assert rows["default/good"]["last_step"] == 7 and rows["default/good"]["params"] == {"lr": 0.1}
        for rid, file in (("live", "scalars.commit.json"), ("torn_commit", "scalars.commit.json"),
                          ("torn_params", "params.json")):
            row = rows[f"default/{rid}"]
            assert row["status"] == "damaged", (rid, row)
            assert f"default/{rid}/{file} is damaged" in row["error"], (rid, row["error"])
        assert rows["default/torn_commit"]["params"] == {"lr": 0.1}  # what is readable is shown
        assert rows["default/live"]["last_step"] is None  # unknown: its series are unreadable
        for rid, file in (("live", "scalars.commit.json"), ("torn_params", "params.json")):
            r = c.get("/api/run", params={"run": f"default/{rid}"})  # the page names it, shows the rest
            assert r.status_code == 200, r.text
            d = r.json()
            assert d["row"]["status"] == "damaged" and len(d["damaged"]) == 1, d
            assert f"default/{rid}/{file} is damaged" in d["damaged"][0], d["damaged"]
            st = c.get("/api/status", params={"run": f"default/{rid}"}).json()
            assert st["status"] == "damaged" and st["damaged"] == d["damaged"]
        d = c.get("/api/run", params={"run": "default/torn_params"}).json()
        assert d["keys"] == ["loss"] and d["params"] == {}  # its series are intact
        d = c.get("/api/run", params={"run": "default/live"}).json()
        assert d["keys"] == [] and d["params"] == {"lr": 0.2}


def test_bands_keep_runs_without_a_param_apart_from_runs_that_set_it_to_none(tmp_path):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    params = {"a": {"warmup": None}, "b": {"warmup": None}, "c": {}}
    for i, (rid, p) in enumerate(params.items()):
        with exp.run(rid, params=p):
            exp.metrics.log(step=0, loss=float(i))
    c = TestClient(make_app(distlog.open_root(str(tmp_path))), base_url=LOCAL)
    for smooth in ("0", "0.5"):
        r = c.get("/api/bands", params={"key": "loss", "group_by": "warmup", "smooth": smooth,
                                         "run": [f"default/{rid}" for rid in params]})
        assert r.status_code == 200, r.text
        groups = {tuple(g.get("missing", ())): (g["group"], g["runs"], g["mean"]) for g in r.json()["groups"]}
        # oracle: a and b set warmup=None (values 0, 1); c lacks it (value 2)
        assert groups == {(): ({"warmup": None}, [2], [0.5]), ("warmup",): ({"warmup": None}, [1], [2.0])}


def test_an_old_record_of_a_compressed_file_is_served_as_its_compression(tmp_path, monkeypatch):
    """distlog before ad072c2 recorded table.csv.gz as text/csv (its content's type): the
    dashboard served the gzip bytes as text/csv; charset=utf-8 and listed it as text/csv
    (the files tab previewed it as text). It is served and listed as media_type_of names a
    new record's: application/gzip; a plain file keeps its recorded type."""
    import gzip
    import mimetypes

    from distlog.files import logger as files_logger
    from distlog.files.kinds import media_type_of

    def old_media_type_of(name: str, default: str = "application/octet-stream") -> str:
        return mimetypes.guess_type(name.rsplit("/", 1)[-1])[0] or default

    data = gzip.compress(b"a,b\n1,2\n")
    exp = distlog.get_logger(str(tmp_path / "root"), heartbeat_interval=0, telemetry=False)
    with monkeypatch.context() as m:
        m.setattr(files_logger, "media_type_of", old_media_type_of)
        with exp.experiment("e"), exp.run("r"):
            (tmp_path / "table.csv.gz").write_bytes(data)
            assert exp.files.log_file("table.csv.gz", tmp_path / "table.csv.gz").media_type == "text/csv"
            (tmp_path / "t.csv").write_text("a\n1\n")
            exp.files.log_file("t.csv", tmp_path / "t.csv")
    c = TestClient(make_app(distlog.open_root(str(tmp_path / "root"))), base_url=LOCAL)
    r = c.get("/api/file", params={"run": "e/r", "path": "table.csv.gz"})
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == media_type_of("table.csv.gz") == "application/gzip"
    assert c.head("/api/file", params={"run": "e/r", "path": "table.csv.gz"}).headers["content-type"] == "application/gzip"
    listed = {f["path"]: f["media_type"] for f in c.get("/api/files", params={"run": "e/r"}).json()["files"]}
    assert listed == {"table.csv.gz": "application/gzip", "t.csv": "text/csv"}
    assert c.get("/api/file", params={"run": "e/r", "path": "t.csv"}).headers["content-type"] == "text/csv; charset=utf-8"


def test_a_series_names_its_values_that_are_no_number_in_the_rows_that_have_them(tmp_path):
    """``columns.value`` holds null for NaN, inf and -inf alike (a gap); ``columns.nonfinite``
    names each, for the legend, and comes only with rows that have one (a live poll of finite
    rows carries none), also after downsampling (M4 keeps a window's first non-finite row)."""
    root = str(tmp_path)
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    odd = {3: float("nan"), 5: float("inf"), 7: float("-inf"), 5003: float("nan")}
    with exp.experiment("e"), exp.run("r"):
        for s in range(6000):
            exp.metrics.log(step=s, loss=odd.get(s, 1.0))
    exp.close()
    client = TestClient(make_app(distlog.open_root(root)), base_url=LOCAL)
    whole = client.get("/api/series", params={"run": "e/r", "key": "loss", "width": 2000, "x0": 0, "x1": 20}).json()
    cols = whole["columns"]
    assert [cols["value"][i] for i in (2, 3, 5, 7)] == [1, None, None, None]
    assert {cols["step"][i]: m for i, m in enumerate(cols["nonfinite"]) if m} == {3: "NaN", 5: "inf", 7: "-inf"}
    down = client.get("/api/series", params={"run": "e/r", "key": "loss", "width": 100}).json()
    assert down["downsampled"]
    marks = {down["columns"]["step"][i]: m for i, m in enumerate(down["columns"]["nonfinite"]) if m}
    assert marks == {3: "NaN", 5003: "NaN"}, marks  # (one per pixel column: its first)
    tail = client.get("/api/series", params={"run": "e/r", "key": "loss", "start": 5500}).json()["columns"]
    assert "nonfinite" not in tail and set(tail["value"]) == {1}


def test_compare_and_bands_of_a_zoomed_range_hold_every_step_of_it(tmp_path):
    """A compare chart's zoom (x0/x1): /api/compare sends each run's every row of the range
    (and one either side) undownsampled, a spike included; /api/bands bins the range alone,
    a bin per step while it has no more steps than bins, of the raw or the smoothed series
    (the EMA still of every row), the same groups in the same order; a range of no finite
    number is refused."""
    n, spike = 5000, 2345
    vals = {(lr, s): np.array([lr + ((i * 7919 + 104729 * s) % 1000) / 500.0 for i in range(n)]) for lr in (1, 2) for s in (0, 1)}
    vals[(1, 0)][spike] = 50.0
    exp = distlog.get_logger(str(tmp_path))
    with exp.experiment("e"):
        for (lr, s), v in vals.items():
            with exp.run(f"lr{lr}-s{s}", params={"lr": lr, "seed": s}):
                for step in range(n):
                    exp.metrics.log(step=step, loss=float(v[step]))
    exp.close()
    client = TestClient(make_app(distlog.open_root(str(tmp_path))), base_url=LOCAL)
    runs = [f"e/lr{lr}-s{s}" for lr, s in vals]
    whole = client.get("/api/compare", params={"run": runs, "key": "loss", "width": 300}).json()
    assert all(s["downsampled"] and spike in s["columns"]["step"] for s in whole["series"][:1])
    assert whole["series"][0]["columns"]["value"][whole["series"][0]["columns"]["step"].index(spike)] == 50.0  # M4: kept
    steps = list(range(2299, 2402))  # x0..x1 and one row either side
    z = client.get("/api/compare", params={"run": runs, "key": "loss", "width": 300, "x0": 2300, "x1": 2400.5}).json()
    for s, v in zip(z["series"], vals.values()):
        assert not s["downsampled"] and s["columns"]["step"] == steps
        assert s["columns"]["value"] == v[steps[0]:steps[-1] + 1].tolist()

    steps = list(range(2300, 2401))  # bands: the rows inside the range only
    q = {"run": runs, "key": "loss", "group_by": "lr", "bins": 1200, "x0": 2300, "x1": 2400.5}
    b = client.get("/api/bands", params=q).json()
    assert [g["group"] for g in b["groups"]] == [{"lr": 1}, {"lr": 2}]
    for g, lr in zip(b["groups"], (1, 2)):
        m = np.vstack([vals[(lr, s)][steps[0]:steps[-1] + 1] for s in (0, 1)])
        assert g["step"] == steps and g["runs"] == [2] * len(steps)
        np.testing.assert_allclose(g["mean"], m.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(g["std"], m.std(axis=0), rtol=1e-9, atol=1e-12)
    assert b["groups"][0]["max"][steps.index(spike)] == 50.0
    few = client.get("/api/bands", params={**q, "bins": 10}).json()["groups"][0]  # 101 steps in 10 bins of 11
    assert few["step"] == steps[::11]
    sm = client.get("/api/bands", params={**q, "smooth": 0.9, "group_by": None, "run": runs[0]}).json()["groups"][0]
    np.testing.assert_allclose(sm["mean"], ema(vals[(1, 0)], 0.9)[steps[0]:steps[-1] + 1], rtol=1e-9)
    # a range beside the rows: no group (no run has a row there)
    assert client.get("/api/bands", params={**q, "x0": 7000, "x1": 8000}).json()["groups"] == []
    assert client.get("/api/bands", params={**q, "x0": -50, "x1": -10}).json()["groups"] == []
    assert client.get("/api/bands", params={**q, "x0": 2400, "x1": 2300}).json()["groups"] == []  # (as /api/series: no rows)
    r = client.get("/api/bands", params={**q, "x0": "nan"})
    assert r.status_code == 400 and "finite" in r.json()["error"]
    # no range: the bands of read_metrics, as before
    assert client.get("/api/bands", params={**q, "x0": None, "x1": None}).json()["groups"][0]["step"][:2] == [0, 5]


def test_zoomed_bands_bin_the_rows_inside_the_range_whatever_lies_beside_it(tmp_path):
    """/api/bands?x0=5000&x1=5010 of a run with steps 0, 4000, 5000..5010, 6000 gave bins at
    4000, 4994, 5001, 5008, 5995: the rows either side of the range widened the grid, and 11
    steps fell into bins of 7; a run with no row in the range added its last row before it."""
    exp = distlog.get_logger(str(tmp_path))
    with exp.experiment("e"):
        with exp.run("sparse", params={"g": 1}):
            for step in [0, 4000, *range(5000, 5011), 6000]:
                exp.metrics.log(step=step, loss=float(step % 97))
        with exp.run("early", params={"g": 1}):
            for step in range(0, 100):
                exp.metrics.log(step=step, loss=1000.0)
    exp.close()
    client = TestClient(make_app(distlog.open_root(str(tmp_path))), base_url=LOCAL)
    b = client.get("/api/bands", params={"run": ["e/sparse", "e/early"], "key": "loss", "group_by": "g",
                                         "bins": 300, "x0": 5000, "x1": 5010}).json()["groups"]
    assert len(b) == 1 and b[0]["step"] == list(range(5000, 5011))
    assert b[0]["runs"] == [1] * 11 and b[0]["mean"] == [float(s % 97) for s in range(5000, 5011)]


def test_jump_to_step_keeps_the_records_after_it_that_carry_no_step(tmp_path):
    """A browser review: "Jump to step 450" on a resumed run went from the last record before
    the step straight to the next record with a step, leaving out the attempt's start and a
    WARNING in between (the jump was a step filter). It now starts at the first record at or
    after the step and shows every record after it."""
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        exp.logs.info("at 5", step=5)
        exp.logs.info("at 10", step=10)
        exp.logs.warning("no step here")
        exp.logs.info("at 12", step=12)
    with TestClient(make_app(distlog.open_root(str(tmp_path))), base_url=LOCAL) as c:
        recs = c.get("/api/logs", params={"run": "default/r", "from_step": 10}).json()["records"]
        msgs = [r["message"] for r in recs]
        assert msgs[:3] == ["at 10", "no step here", "at 12"], msgs
        assert "at 5" not in msgs
        assert c.get("/api/logs", params={"run": "default/r", "from_step": 99}).json()["records"] == []
