"""capture_output=True tees each rank's stdout/stderr into its text log; the console is unchanged."""

import sys

import pytest

import distlog
from support.ranks import run_ranks


def _records(root, exp_name="default"):
    (run_dir,) = [p for p in (root / exp_name).iterdir() if p.is_dir()]
    run = distlog.open_run(run_dir)
    return [(r.rank, r.fields.get("stream"), r.message) for r in run.logs.query() if "stream" in r.fields]


def test_lines_become_records_and_the_console_is_unchanged(tmp_path, capsys, caplog):
    caplog.set_level(20, logger="distlog.echo")
    exp = distlog.get_logger(str(tmp_path), capture_output=True)
    with exp.run():
        print("hello", 42)
        print("to stderr", file=sys.stderr)
        sys.stdout.write("no newline yet")
        exp.logs.echo_level = 20  # INFO records are also echoed (logging "distlog.echo"): no loop back
        exp.info("an INFO record")
    print("after close")
    out, err = capsys.readouterr()
    assert out == "hello 42\nno newline yet" + "after close\n"
    assert err.startswith("to stderr\n")
    assert any("an INFO record" in r.getMessage() for r in caplog.records if r.name == "distlog.echo")
    assert _records(tmp_path) == [(0, "stdout", "hello 42"), (0, "stderr", "to stderr"),
                                  (0, "stdout", "no newline yet")]
    assert not hasattr(sys.stdout, "_emit") and not hasattr(sys.stderr, "_emit")  # restored


def test_off_by_default(tmp_path, capsys):
    exp = distlog.get_logger(str(tmp_path))
    with exp.run():
        print("not captured")
    assert capsys.readouterr().out == "not captured\n"
    assert _records(tmp_path) == []


def _print_on_each_rank(rank, world, root):
    exp = distlog.get_logger(root, capture_output=True)
    with exp.run():
        print(f"rank {rank} says hi")
    return True


def test_each_rank_captures_into_its_own_log(tmp_path):
    run_ranks(_print_on_each_rank, 2, tmp_path, str(tmp_path / "root"))
    assert sorted(_records(tmp_path / "root")) == [(0, "stdout", "rank 0 says hi"), (1, "stdout", "rank 1 says hi")]


def _stderr_records(root):
    run = distlog.open_run(root / "default" / "r")
    return [r.message for r in run.logs.query(source="text") if r.fields.get("stream") == "stderr"]


def test_a_carriage_return_progress_bar_is_one_record_of_its_final_state(tmp_path, capsys):
    exp = distlog.get_logger(str(tmp_path), capture_output=True)
    with exp.run("r"):
        for i in range(1, 5001):
            sys.stderr.write(f"\r{i:>5}/5000 [{'#' * (i // 500):<10}]")
        sys.stderr.write("\n")
        sys.stderr.write("abc\r")  # a redraw split across writes, a CRLF end
        sys.stderr.write("de\r\n")
        sys.stderr.write("a\rb\rlast\r")  # no newline before the run closes
    assert capsys.readouterr().err.startswith("\r    1/5000 [          ]\r    2/5000")  # unchanged
    assert _stderr_records(tmp_path) == [" 5000/5000 [##########]", "de", "last"]


@pytest.mark.timeout(60)
def test_a_line_that_never_ends_is_recorded_in_bounded_pieces(tmp_path, capsys):
    exp = distlog.get_logger(str(tmp_path), capture_output=True)
    with exp.run("r"):
        for _ in range(300):  # 300,000 dots, no newline
            sys.stderr.write("." * 1000)
    sizes = [len(m) for m in _stderr_records(tmp_path)]
    assert sum(sizes) == 300_000 and len(sizes) > 1 and max(sizes) <= 1 << 17


def test_a_multi_line_warning_is_not_recorded_again_and_lines_like_its_echo_are_kept(tmp_path, capsys):
    """A record's echo on stderr was recognised by its first line's prefix only: the other
    lines of a multi-line warning came back as INFO stderr records, and a line the program
    printed that began like an echo ("[distlog ready]") was dropped."""
    exp = distlog.get_logger(str(tmp_path), capture_output=True, heartbeat_interval=0)
    with exp.run("r"):
        exp.warning("first line\nsecond line\nthird line")
        print("[distlog ready] user line")
        print("[distlog r0] printed by the program")
    assert _stderr_records(tmp_path) == []
    run = distlog.open_run(tmp_path / "default" / "r")
    stdout = [r.message for r in run.logs.query(source="text") if r.fields.get("stream") == "stdout"]
    assert stdout == ["[distlog ready] user line", "[distlog r0] printed by the program"]
    assert [r.message for r in run.logs.query(source="text", level="WARNING")] == [
        "first line\nsecond line\nthird line"]


WARNS = r"""
import sys, warnings, distlog
exp = distlog.get_logger(sys.argv[1], capture_output=True, heartbeat_interval=0)
with exp.run("r"):
    warnings.warn("the learning rate looks high", UserWarning)
    print("a line that mentions Warning: as text", file=sys.stderr)
"""


@pytest.mark.timeout(60)
def test_a_python_warning_printed_on_stderr_is_a_warning_record_shown_once(tmp_path):
    """``warnings.warn`` prints "<file>:<line>: UserWarning: ..." on stderr: captured, it was
    an INFO record (``distlog logs --level WARNING`` did not find it). It is a WARNING record
    now, not echoed again on the console (it is there already)."""
    import subprocess

    err = subprocess.run([sys.executable, "-c", WARNS, str(tmp_path)], capture_output=True, text=True,
                         timeout=50, check=True).stderr
    assert err.count("the learning rate looks high") == 1, err  # shown once: no echo of it
    run = distlog.open_run(tmp_path / "default" / "r")
    warned = [r.message for r in run.logs.query(source="text", level="WARNING")]
    assert len(warned) == 1 and warned[0].endswith("UserWarning: the learning rate looks high"), warned
    info = [r.message for r in run.logs.query(source="text")
            if r.level == "INFO" and r.fields.get("stream") == "stderr"]
    assert "a line that mentions Warning: as text" in info, info


THREADS = r"""
import sys, threading, distlog
exp = distlog.get_logger(sys.argv[1], capture_output=True, heartbeat_interval=0)
with exp.run("r"):
    def lines(i):
        for k in range(300):
            print(f"thread {i} line {k}")
    ts = [threading.Thread(target=lines, args=(i,)) for i in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
"""


@pytest.mark.timeout(60)
def test_lines_printed_from_threads_are_recorded_as_the_console_shows_them(tmp_path):
    import collections
    import os
    import re
    import subprocess

    out = subprocess.run([sys.executable, "-c", THREADS, str(tmp_path)], capture_output=True, text=True,
                         timeout=50, env={**os.environ, "PYTHONUNBUFFERED": "1"}, check=True).stdout
    console = [line for line in out.split("\n") if line]
    run = distlog.open_run(tmp_path / "default" / "r")
    recorded = [r.message for r in run.logs.query(source="text") if r.fields.get("stream") == "stdout"]
    assert collections.Counter(recorded) == collections.Counter(console)  # (print's two writes
    assert sum(len(re.findall(r"thread \d+ line \d+", line)) for line in console) == 1200  # interleave)


def test_terminal_escape_sequences_reach_the_console_and_not_the_records(tmp_path, capsys):
    """Colours and a nested tqdm bar's cursor moves ("\\x1b[A") were stored raw: `distlog logs`
    printed them back into the terminal (a garbled screen) and the dashboard showed them."""
    exp = distlog.get_logger(str(tmp_path), capture_output=True)
    with exp.run():
        print("\x1b[1m\x1b[31mERROR\x1b[0m in red")
        print("Validation:  50%|#####     | 1/2 [00:00<00:00]\x1b[A", file=sys.stderr)
        print("\x1b]8;;https://example.org\x1b\\a link\x1b]8;;\x1b\\ and \x1b(Bcharset")
        print("\x1b[2K\x1b[A")  # only escapes: no record
    out, err = capsys.readouterr()
    assert "\x1b[31mERROR" in out and err.endswith("\x1b[A\n")  # the console has them all
    # (the Validation line moves the cursor back up: a nested bar's redraw, not a line of output)
    assert _records(tmp_path) == [(0, "stdout", "ERROR in red"), (0, "stdout", "a link and charset")]


def test_nested_tqdm_bars_are_recorded_as_they_end_not_at_every_redraw(tmp_path, capsys):
    """An inner bar (tqdm position 1) writes "\\n", redraws on the line below and moves the
    cursor back up: each redraw was a record (about ten a second of the epoch)."""
    tqdm = pytest.importorskip("tqdm").tqdm
    exp = distlog.get_logger(str(tmp_path), capture_output=True, heartbeat_interval=0)
    with exp.run("r"):
        for _ in tqdm(range(2), desc="epoch", mininterval=0):
            for _ in tqdm(range(50), desc="batch", leave=False, mininterval=0):
                pass
        for _ in tqdm(range(20), desc="single", mininterval=0):
            pass
        print("done")
    err = capsys.readouterr().err
    assert err.count("batch") >= 100 and "\x1b[A" in err  # (the console got every redraw)
    got = _stderr_records(tmp_path)
    assert not [m for m in got if m.startswith("batch")], got
    assert [m.split("|")[0] for m in got] == ["epoch:   0%", "epoch:  50%", "epoch: 100%", "single: 100%"], got


def test_text_after_a_cursor_move_up_is_kept(tmp_path, capsys):
    """Moving up, clearing the line and printing a status (Keras-style) lost the status with the
    nested-bar redraws."""
    exp = distlog.get_logger(str(tmp_path), capture_output=True, heartbeat_interval=0)
    with exp.run("r"):
        print("\x1b[1A\x1b[2KEpoch 1/3 done: loss 0.5")
        print("inner 40%|####\x1b[A")  # a nested bar's redraw: no record
        print("plain line")
    run = distlog.open_run(tmp_path / "default" / "r")
    assert [r.message for r in run.logs.query(source="text") if "stream" in r.fields] == [
        "Epoch 1/3 done: loss 0.5", "plain line"]


def test_bytes_written_to_the_streams_buffer_are_recorded_in_their_line(tmp_path):
    """``sys.stdout.buffer.write`` went to the console only, and the text printed before it
    was joined with the next printed line into a record the console never showed."""
    import io

    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    real, sys.stdout = sys.stdout, out
    try:
        exp = distlog.get_logger(str(tmp_path), capture_output=True, heartbeat_interval=0)
        with exp.run("r"):
            sys.stdout.write("partial ")
            sys.stdout.buffer.write(b"raw bytes \xff r0\n")
            print("next line")
            sys.stdout.buffer.write("caf\u00e9 ".encode()[:4])  # (a character split across writes)
            sys.stdout.buffer.write("caf\u00e9 \n".encode()[4:])
    finally:
        sys.stdout = real
    assert out.buffer.getvalue() == b"partial raw bytes \xff r0\nnext line\ncaf\xc3\xa9 \n"
    run = distlog.open_run(tmp_path / "default" / "r")
    assert [r.message for r in run.logs.query(source="text") if "stream" in r.fields] == [
        "partial raw bytes \ufffd r0", "next line", "caf\u00e9 "]
