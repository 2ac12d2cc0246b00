"""The public surface is what ``__all__`` says, and every name in it exists."""

import distlog


def test_all_is_complete_and_importable():
    assert sorted(distlog.__all__) == distlog.__all__
    for name in distlog.__all__:
        assert getattr(distlog, name) is not None, name
    public = {n for n in dir(distlog) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(distlog, n)).__name__ == "module"}
    assert public - modules - {"annotations"} == set(distlog.__all__)


def test_errors_share_one_base():
    from distlog.query.errors import QueryError

    for name in ("StorageError", "FlushError", "FlushTimeout", "WriterError", "RunStateError",
                 "UnknownScheme", "BackendNotInstalled"):
        assert issubclass(getattr(distlog, name), distlog.DistlogError), name
    assert issubclass(QueryError, distlog.DistlogError)


def test_the_errors_the_readme_names_are_distlogs_and_a_torn_run_json_is_a_damaged_record(tmp_path):
    """``except distlog.DamagedRecord`` (and FileChangedError, RunNotFound) raised
    AttributeError: they were only in submodules. A torn run.json raised RunNotFound alone,
    though its message says the file is damaged."""
    import subprocess
    import sys

    for name in ("DamagedRecord", "FileChangedError", "RunNotFound", "KeyNotFound", "QueryError"):
        assert isinstance(getattr(distlog, name), type) and issubclass(getattr(distlog, name), Exception), name
    # still lazy: a script that only writes imports no reader for them
    code = "import sys, distlog; print(sorted(m for m in ('distlog.query', 'distlog.cas') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        exp.metrics.log(step=0, loss=1.0)
    for torn in ('{"run_id": "r", "stat', "[1, 2]"):
        (tmp_path / "default" / "r" / "run.json").write_text(torn)
        try:
            distlog.open_run(tmp_path / "default" / "r")
        except distlog.DamagedRecord as e:
            assert isinstance(e, distlog.RunNotFound)  # (what listings and older callers catch)
            assert "run.json is" in str(e) and "restore it from a copy of the run" in str(e)
        else:
            raise AssertionError("a torn run.json opened")


def test_a_flush_result_reads_as_a_mapping_of_key_to_statistics(tmp_path):
    """``"loss" in red`` and ``list(red)`` raised KeyError '0 was not reduced', ``red.get`` and
    ``red.items()`` AttributeError: only ``red[key]`` worked."""
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        for step in range(3):
            exp.metrics("train").collect(step=step, loss=float(step), acc=0.5)
            red = exp.metrics.flush()  # (the general flush, then the one-process fast path)
            assert "train/loss" in red and "loss" not in red and list(red) == ["train/acc", "train/loss"]
            assert dict(red.items())["train/loss"] == red["train/loss"] == red.get("train/loss")
            assert red["train/loss"]["mean"] == step and red.get("nope", "none") == "none"
            assert [v["count"] for v in red.values()] == [1.0, 1.0] and len(red) == 2
