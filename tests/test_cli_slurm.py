"""`distlog slurm ...` hands its arguments to distlog.slurm (grid files, rendered templates)."""

from distlog import cli, slurm


def test_distlog_slurm_grid_writes_the_same_grid(tmp_path, capsys):
    out = tmp_path / "grid.txt"
    assert cli.main(["slurm", "grid", "--param", "lr=0.1,0.01", "--param", "seed=0,1,2", "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 6
    assert [slurm.read_grid_line(str(out), i) for i in range(6)] == slurm.expand_grid(
        {"lr": [0.1, 0.01], "seed": [0, 1, 2]})
    assert "sbatch --array=0-5" in capsys.readouterr().err


def test_distlog_slurm_usage_error_is_exit_2(capsys):
    assert cli.main(["slurm", "render", "no_such_template"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "None" not in err and "array_sweep" in err, err  # (names the templates)


def test_a_key_given_twice_is_refused_not_replaced(tmp_path, capsys):
    """`--param lr=0.1 --param lr=0.01` kept only lr=0.01 with exit status 0: a sweep lost half
    its configurations without a word. Refused, naming the way to give both."""
    out = tmp_path / "grid.txt"
    assert cli.main(["slurm", "grid", "--param", "lr=0.1", "--param", "lr=0.01", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "distlog slurm: error: --param lr is given twice" in err and "--param lr=0.1,0.01" in err
    assert not out.exists()


def test_render_and_output_errors_say_what_to_do(tmp_path, capsys):
    assert cli.main(["slurm", "render", "array_sweep", "PARTITON=gpu"]) == 2
    assert "did you mean 'PARTITION'?" in capsys.readouterr().err
    assert cli.main(["slurm", "grid", "--param", "lr=0.1", "-o", str(tmp_path / "no" / "g.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("distlog slurm: error: No such file or directory") and "create its folder" in err
