"""Bugs the files/params/logs campaign (test_campaign29_files_params_logs.py) found, one
focused test each."""

import distlog


def test_a_log_step_beyond_float64_reads_back_as_written_after_close(tmp_path):
    """The logs table keeps steps as float64: an integer step it cannot hold exactly (beyond
    2**53, or beyond float64's range) came back rounded from ``run.logs.query()`` once the run
    closed (9007199254740993 read 9007199254740992, 10**400 read inf), while the text, the
    source of truth, held the step given. Such a run gets no table: readers read the text."""
    exp = distlog.get_logger(str(tmp_path))
    steps = [5, 2 ** 53 + 1, -(2 ** 63) - 5, 10 ** 400, 2.5]
    with exp.run("r"):
        for s in steps:
            exp.info(f"at {s}", step=s)
    run = distlog.open_run(str(tmp_path / "default" / "r"))
    text = [(r.message, r.step) for r in run.logs.query(source="text") if r.message.startswith("at ")]
    assert text == [(f"at {s}", s) for s in steps]
    got = [(r.message, r.step) for r in run.logs.query() if r.message.startswith("at ")]
    assert got == text
    assert [r.message for r in run.logs.query(steps=f"{2 ** 53 + 1}")] == [f"at {2 ** 53 + 1}"]


def test_a_table_of_exact_steps_is_still_written(tmp_path):
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        exp.info("a", step=2 ** 53)
        exp.info("b", step=1e20)
    run = distlog.open_run(str(tmp_path / "default" / "r"))
    assert [(r.message, r.step) for r in run.logs.query(source="table")][1:3] == [("a", 2 ** 53), ("b", 10 ** 20)]


def test_a_text_file_that_is_not_utf8_is_refused_naming_the_file(tmp_path):
    """``files.save("lone \\ud800", "notes.txt")`` raised a bare ``UnicodeEncodeError`` ("'utf-8'
    codec can't encode character...") that named neither the call nor the file."""
    import pytest

    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        exp.files.save("kept", "notes.txt")
        with pytest.raises(ValueError, match=r"save\('notes.txt'\).*UTF-8.*nothing was stored"):
            exp.files.save("lone \ud800", "notes.txt")
        assert exp.files.load("notes.txt") == "kept"
        assert [r.version for r in exp.files.versions("notes.txt")] == [1]
