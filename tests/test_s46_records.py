"""Session 46: resuming a run whose commit record is torn (a write cut short, a killed copy).
The start failed with a raw ``JSONDecodeError``; on two ranks, a rank's own torn record made
that rank fail alone, and rank 0 went on to fail later in a collective, "connection closed by
peer", never naming the cause (or waited for it, where the failing rank stayed alive)."""

from __future__ import annotations

import json

import pytest

import distlog
from distlog.query.errors import DamagedRecord

from support.ranks import run_ranks


def _first_attempt(root, key="loss"):
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    exp.start_run("r")
    for s in range(5):
        exp.metrics.log(step=s, **{key: float(s)})
    exp.close()


@pytest.mark.parametrize("torn", [b'{"format": 1, "lengths": {"lo', b'["not", "a", "record"]',
                                  b'{"lengths": {"loss": "many"}}'])
def test_resuming_from_a_torn_commit_record_says_which_file_and_what_to_do(tmp_path, torn):
    root = str(tmp_path)
    _first_attempt(root)
    (tmp_path / "default/r/scalars.commit.json").write_bytes(torn)
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with pytest.raises(DamagedRecord) as info:
        exp.start_run("r", resume="must")
    msg = str(info.value)
    assert "default/r/scalars.commit.json is damaged" in msg
    assert "start the run under a new id" in msg and "Restore it from a copy of the run" in msg
    meta = json.loads((tmp_path / "default/r/run.json").read_text())
    assert [a["status"] for a in meta["attempts"]] == ["completed", "failed"]
    assert "scalars.commit.json is damaged" in meta["attempts"][1]["error"]["message"]
    # (a new id starts at once, in the same root)
    exp.start_run("r2")
    exp.metrics.log(step=0, loss=1.0)
    exp.close()
    assert distlog.open_run(f"{root}/default/r2").metrics.frame("loss")["value"].tolist() == [1.0]


def _resume_worker(rank, world, root, phase, telemetry):
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=telemetry)
    if phase == "first":
        exp.start_run("r", params={"lr": 0.1})
        for s in range(3):
            exp.metrics.log(step=s, mine=float(rank))  # each rank's own series
            exp.metrics.collect(step=s, loss=1.0)
            exp.metrics.flush()
        exp.close()
        return None
    try:
        exp.start_run("r", resume="must")
    except DamagedRecord as e:
        return str(e)
    exp.close()
    return "started"


@pytest.mark.timeout(180)
@pytest.mark.parametrize("torn, telemetry, by", [("ranks/rank-00001/scalars.commit.json", False, 1),
                                                 ("telemetry.commit.json", True, 0), ("params.json", False, None)])
def test_a_record_one_rank_reads_torn_fails_the_resume_on_every_rank_naming_it(tmp_path, torn, telemetry, by):
    """Rank 1's own commit record, or one only rank 0 reads (its telemetry table's, opened by
    its writer at the first flush; the params): that rank failed alone, the other went on into
    a collective ("connection closed by peer", or a wait for ever where the first stayed alive)."""
    root = str(tmp_path / "root")
    run_ranks(_resume_worker, 2, tmp_path, root, "first", telemetry, timeout=60)
    path = tmp_path / "root/default/r" / torn
    assert path.exists()
    path.write_bytes(path.read_bytes()[:12])
    said = run_ranks(_resume_worker, 2, tmp_path, root, "second", telemetry, timeout=60)
    if by is None:  # (every rank reads the params: each says so itself)
        assert all(m.startswith("file://") and f"{torn} is damaged" in m for m in said), said
        return
    assert said[by].startswith("file://") and f"{torn} is damaged" in said[by]
    other = said[1 - by]
    assert other.startswith(f"starting the run failed on rank {by}: ") and f"{torn} is damaged" in other


def test_show_of_a_run_with_a_torn_commit_record_shows_the_rest_and_names_the_file(tmp_path, capsys):
    from support.cli_tree import cli

    root = str(tmp_path)
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    exp.start_run("r", params={"lr": 0.1})
    exp.metrics.log(step=0, loss=1.0)
    exp.logs.info("hello")
    exp.close()
    (tmp_path / "default/r/scalars.commit.json").write_bytes(b'{"format": 1, "lengths": {"lo')
    code, out, err = cli(capsys, "show", f"{root}/default/r")
    assert code == 2  # (it printed only the error before)
    assert "status      completed" in out and "lr = 0.1" in out
    assert "metrics\n  (cannot be read: see below)" in out and "logs        " in out
    assert "scalars.commit.json is damaged" in err


def test_a_run_folder_missing_only_its_run_json_is_named_by_resume_and_kept_by_gc(tmp_path, caplog):
    """Resume called it "an experiment folder" and gc refused the whole root ("manifest ... is
    not in a run's files/ folder"), so no blob anywhere could be collected."""
    from distlog.gc import collect_garbage

    root = str(tmp_path)
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    for run_id, data in (("a", b"kept: a damaged run's"), ("b", b"swept: its run deleted")):
        exp.start_run(run_id)
        exp.metrics.log(step=0, loss=1.0)
        exp.files.save(data, "f.bin")
        exp.close()
    (tmp_path / "default/a/run.json").unlink()
    import shutil
    shutil.rmtree(tmp_path / "default/b")
    with pytest.raises(ValueError, match=r"'default/a' is a run folder whose run.json is missing .*Restore its "
                                         r"run.json from a copy of the run, or choose another run id"):
        exp.start_run("a", resume="must")
    report = collect_garbage(root, grace_seconds=0)
    assert (report.removed, report.referenced, report.damaged_runs) == (1, 1, ("default/a",))
    assert "gc found 1 run folder(s) with no run.json ('default/a'): the blobs" in caplog.text
    blobs = [p for p in (tmp_path / ".distlog/cas").rglob("*") if p.is_file() and p.stat().st_size == len(b"kept: a damaged run's")]
    assert blobs and blobs[0].read_bytes() == b"kept: a damaged run's"


def test_gc_keeps_its_layout_rules_for_a_run_folder_missing_its_run_json(tmp_path):
    """A review: the damaged-run rule let a damaged folder inside a healthy run, or under a
    hidden folder, pass where such a layout is refused (gc cannot know what else is there)."""
    import shutil

    from distlog.errors import LayoutError
    from distlog.gc import collect_garbage

    root = str(tmp_path)
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    exp.start_run("a", params={"lr": 0.1})
    exp.metrics.log(step=0, loss=1.0)
    exp.files.save(b"bytes", "f.bin")
    exp.close()
    inner = tmp_path / "default/a/inner"  # a copy of the run, without its run.json, inside it
    shutil.copytree(tmp_path / "default/a", inner, ignore=shutil.ignore_patterns("run.json"))
    with pytest.raises(LayoutError, match="is inside another run"):
        collect_garbage(root, grace_seconds=0)
    shutil.rmtree(inner)
    hidden = tmp_path / "default/.old/b"
    shutil.copytree(tmp_path / "default/a", hidden, ignore=shutil.ignore_patterns("run.json"))
    with pytest.raises(LayoutError, match="sits in a folder named '.old'"):
        collect_garbage(root, grace_seconds=0)


def test_a_foreign_commit_record_or_params_that_parse_are_refused_at_resume_not_adopted(tmp_path):
    """An S3 review: a commit record that was a JSON object without lengths was taken as
    "nothing committed" (the resume dropped every stored row, unsaid); params that were a JSON
    list were adopted, and the script's own params.update() failed later with a raw TypeError."""
    root = str(tmp_path)
    for run_id, name, doc in (("c", "scalars.commit.json", b"{}"), ("v", "scalars.commit.json", b'{"version": 1}'),
                              ("p", "params.json", b"[1, 2]")):
        exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
        exp.start_run(run_id, params={"lr": 0.1})
        for s in range(5):
            exp.metrics.log(step=s, loss=float(s))
        exp.close()
        (tmp_path / "default" / run_id / name).write_bytes(doc)
        with pytest.raises(DamagedRecord, match=rf"default/{run_id}/{name} is damaged \((not a commit record|a list, not the "
                                                 r"JSON object of a run's params)"):
            exp.start_run(run_id, resume="must")
        if name.startswith("scalars"):  # (the rows are all still there, for a restored record)
            assert len(list((tmp_path / "default" / run_id / "scalars.zarr" / "loss").glob("c.*"))) == 1


def test_a_torn_logs_table_record_is_named_and_the_logs_read_from_the_ranks_text_logs(tmp_path, caplog):
    root = str(tmp_path)
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    exp.start_run("r")
    exp.logs.info("hello one")
    exp.close()
    path = tmp_path / "default/r/logs.commit.json"
    path.write_bytes(path.read_bytes()[:20])
    frame = distlog.open_run(f"{root}/default/r").logs.to_frame()
    assert "hello one" in frame["message"].tolist()  # (a bare JSON error before)
    assert "logs.commit.json is damaged" in caplog.text and "the run's merged logs table cannot be read" in caplog.text


def test_a_damaged_message_says_what_that_record_makes_unreadable():
    from distlog.errors import damaged

    tel = str(damaged("file:///r", "telemetry.commit.json", "not valid JSON"))
    assert "the run's telemetry (`distlog ranks`, the dashboard's Ranks tab) cannot be read; its series" in tel
    class RankStorage:  # (a rank's own records: read through its rank folder's storage)
        url = "file:///root/e/r/ranks/rank-00001"

    own = str(damaged(RankStorage(), "scalars.commit.json", "not valid JSON"))
    assert "this rank's series cannot be read; the run's params, logs, files and its other series still can" in own
    main = str(damaged("file:///r", "scalars.commit.json", "not valid JSON"))
    assert "so the run's series cannot be read" in main


def test_a_run_that_only_saved_files_is_known_as_a_run_when_its_run_json_is_missing(tmp_path):
    """An S3 review: with no params and no series, nothing marked the folder as a run's: ls
    left it out, a resume called it an experiment folder and gc refused the whole root."""
    from distlog.gc import collect_garbage

    root = str(tmp_path)
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    exp.start_run("fo")
    exp.files.save(b"only a file", "f.bin")
    exp.close()
    (tmp_path / "default/fo/run.json").unlink()
    listed = {r.info.path: r.info.status for r in distlog.open_root(root).runs()}
    assert listed == {"default/fo": "damaged"}
    with pytest.raises(ValueError, match="is a run folder whose run.json is missing"):
        exp.start_run("fo", resume="must")
    assert collect_garbage(root, grace_seconds=0).damaged_runs == ("default/fo",)


def test_an_experiment_named_like_a_run_folders_part_still_lists_its_runs(tmp_path):
    """A code review: with ``heartbeats`` among the names only a run folder holds, the
    experiment ``cardio/heartbeats`` was taken for a damaged run and its runs left out."""
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.experiment("cardio/heartbeats"), exp.run("r1"):
        exp.metrics.log(step=0, loss=1.0)
    assert [(r.info.path, r.info.status) for r in distlog.open_root(str(tmp_path)).runs()] == [
        ("cardio/heartbeats/r1", "completed")]


def test_a_logs_table_record_that_is_not_an_object_falls_back_to_the_text_logs(tmp_path, caplog):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        exp.logs.info("hello two")
    (tmp_path / "default/r/logs.commit.json").write_text("[1, 2]")
    assert "hello two" in distlog.open_run(f"{tmp_path}/default/r").logs.to_frame()["message"].tolist()
    assert "logs.commit.json is damaged (a list, not a commit record" in caplog.text


def test_a_checkpoint_commit_raises_rows_refused_and_says_only_a_store_failure(tmp_path, caplog):
    """A code review: the checkpoint's commit turned every writer error into a warning, and
    the commit had consumed it: rows refused (already lost) were never reported again."""
    from distlog.errors import RowsRefused, WriterError
    from distlog.integrations._session import commit_for_checkpoint

    class Metrics:
        def __init__(self, error):
            self.error = error

        def commit(self):
            raise self.error

    class Run:
        def __init__(self, error):
            self.metrics = Metrics(error)

    with pytest.raises(RowsRefused):
        commit_for_checkpoint(Run(RowsRefused("rows refused by the writer: ...")), "test checkpoint")
    commit_for_checkpoint(Run(WriterError("writing to the store failed: down")), "test checkpoint")
    assert "test checkpoint: the run's rows could not be committed before this checkpoint" in caplog.text
