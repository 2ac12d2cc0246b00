"""The `distlog` CLI, in process, against a fixed run tree: outputs equal golden files.

The tree is written with the format's own writers (``RowTable``, ``format_line``, the run
and params JSON files, the CAS) and fixed times and host names, so every output is
deterministic. Regenerate after an intended change with ``DISTLOG_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from distlog.cli import main
from support.cli_tree import build_tree

GOLDEN = Path(__file__).parent / "golden" / "cli"


@pytest.fixture
def tree(tmp_path):
    return build_tree(tmp_path / "root")


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


A = "{root}/mnist/sweep/run-a"
CASES = {
    "ls": ["ls", "{root}"],
    "ls_json": ["ls", "{root}", "--format", "json", "--experiment", "mnist/sweep"],
    "ls_failed": ["ls", "{root}", "--status", "failed"],
    "show": ["show", A],
    "show_failed": ["show", "{root}/mnist/sweep/run-b"],
    "params": ["params", A],
    "params_json": ["params", A, "--format", "json"],
    "metrics_summary": ["metrics", A],
    "metrics_series": ["metrics", A, "train/loss", "val/acc"],
    "metrics_min_csv": ["metrics", A, "train/loss", "--stat", "min", "--format", "csv"],
    "metrics_json": ["metrics", A, "val/acc", "--format", "json"],
    "metrics_rank1": ["metrics", A, "grad_norm", "--rank", "1"],
    "logs": ["logs", A],
    "logs_rank1": ["logs", A, "--rank", "1"],
    "logs_warning": ["logs", A, "--level", "WARNING", "--fields"],
    "logs_grep": ["logs", A, "--grep", r"loss=0\.[0-9]"],
    "logs_steps_raw": ["logs", A, "--step", "10:20", "--raw"],
    "logs_since": ["logs", A, "--since", "2026-01-02T03:04:26", "--until", "2026-01-02T03:04:34.5"],
    "logs_tail": ["logs", A, "--tail", "3"],
    "files": ["files", A],
    "compare": ["compare", "{root}/mnist/sweep"],
    "compare_all": ["compare", "{root}", "--metric", "train/loss", "--final", "min", "--sort", "lr"],
    "compare_where": ["compare", "{root}", "--where", "lr=0.1", "--format", "csv"],
    "export": ["export", A],
    "last": ["show", "{root}/mnist/other", "--last"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_output_matches_golden(tree, capsys, case):
    args = [a.format(root=tree) for a in CASES[case]]
    code, out, err = run_cli(args, capsys)
    shown = " ".join(shlex.quote(a.replace(str(tree), "ROOT")) for a in args)
    text = f"$ distlog {shown}\n{out.replace(str(tree), 'ROOT')}[exit {code}]\n"
    path = GOLDEN / f"{case}.txt"
    if os.environ.get("DISTLOG_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path}; run with DISTLOG_UPDATE_GOLDEN=1"
    assert text == path.read_text(), err
