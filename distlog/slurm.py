"""SLURM helpers: render the sbatch templates in ``slurm/`` and build parameter grids.

Stdlib only. A template carries its site options in two forms, both at the top:

* shell variables ``NAME=${NAME:-default}`` (runtime knobs such as ``NPROC``, ``SCRIPT``);
* ``#SBATCH`` directives tagged with a trailing ``# NAME`` (``PARTITION``, ``TIME`` ...).
  The value after the directive's last ``=`` or ``@`` is the variable; an empty value
  disables the directive (written ``##SBATCH``, which sbatch ignores).

``render_template`` replaces the defaults of both; a name may appear in both forms.

Grid files hold one configuration per line, ``key=value key=value``; blank lines and
``#`` comments are skipped, so line *i* is the *i*-th configuration (``SLURM_ARRAY_TASK_ID``).
``run_name`` mirrors the naming in ``slurm/array_sweep.sbatch`` for files written by
``write_grid_file`` (of a line read back: ``read_grid_line(..., as_text=True)``)::

    python -m distlog.slurm grid --param lr=0.1,0.01 --param seed=0,1,2 -o grid.txt
    python -m distlog.slurm render torchrun_single_node PARTITION=gpu NPROC=4 > job.sbatch
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import re
import sys
from pathlib import Path
from typing import Any, Sequence

from .query.errors import did_you_mean

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "slurm"
_VAR_LINE = re.compile(
    r'^(?P<name>[A-Z_][A-Z0-9_]*)=\$\{(?P=name):-(?P<default>"[^"]*"|[^}"]*)\}(?P<rest>\s*(#.*)?)$'
)
_SBATCH_LINE = re.compile(r"^##?SBATCH\s+(?P<arg>\S+)(?P<pad>\s+)#\s*(?P<name>[A-Z_][A-Z0-9_]*)\s*$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_SHELL_SAFE = re.compile(r"^[A-Za-z0-9_./:@%+,=-]*$")
_NAME_MAX = 120


def template_path(name: str | os.PathLike[str]) -> Path:
    """Path of a template: an existing file path, or a name in the repo's ``slurm/`` folder."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (TEMPLATE_DIR / str(name), TEMPLATE_DIR / f"{name}.sbatch"):
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in TEMPLATE_DIR.glob("*.sbatch")) if TEMPLATE_DIR.is_dir() else []
    raise FileNotFoundError(
        f"no SLURM template {str(name)!r}: expected a file path or one of {known} in {TEMPLATE_DIR}; "
        "pass the template's path if distlog is installed without the repository"
    )


def template_variables(name: str | os.PathLike[str]) -> dict[str, str]:
    """The variables of a template and their defaults, in order of first appearance."""
    found: dict[str, str] = {}
    for line in template_path(name).read_text().splitlines():
        if m := _VAR_LINE.match(line):
            found.setdefault(m["name"], _unquote(m["default"]))
        elif m := _SBATCH_LINE.match(line):
            found.setdefault(m["name"], _split_option(m["arg"])[1])
    return found


def render_template(name: str | os.PathLike[str], **values: Any) -> str:
    """Return the template's text with the defaults of the given variables replaced.

    Unknown names raise ``ValueError`` listing the known ones. Values are written as in
    ``format_value`` (``True`` → ``true``); shell variables are quoted when needed.
    """
    path = template_path(name)
    known = template_variables(path)
    unknown = sorted(set(values) - set(known))
    if unknown:
        near = "".join(did_you_mean(u, known) for u in unknown)
        raise ValueError(
            f"unknown variable(s) {unknown} for template {path.name}{near}; known: {sorted(known)}"
        )
    text = {key: format_value(value) for key, value in values.items()}
    lines = [_render_line(line, text) for line in path.read_text().splitlines(keepends=True)]
    return "".join(lines)


def _render_line(line: str, values: dict[str, str]) -> str:
    body, newline = (line[:-1], "\n") if line.endswith("\n") else (line, "")
    if (m := _VAR_LINE.match(body)) and m["name"] in values:
        default = _shell_quote(values[m["name"]], m["name"])
        head = f"{m['name']}=${{{m['name']}:-{default}}}"
        comment = m["rest"].strip()
        return (_align(head, comment, m.start("rest") + len(m["rest"]) - len(comment)) if comment else head) + newline
    if (m := _SBATCH_LINE.match(body)) and m["name"] in values:
        value = values[m["name"]]
        if re.search(r"[\s#\"']", value):
            raise ValueError(
                f"{m['name']}={value!r}: an #SBATCH value cannot hold spaces, quotes or '#'; "
                "give a single token such as 'gpu' or '01:00:00'"
            )
        head = f"{'#' if value else '##'}SBATCH {_split_option(m['arg'])[0]}{value}"
        return _align(head, f"# {m['name']}", m.end("pad")) + newline
    return line


def _align(head: str, comment: str, column: int) -> str:
    """``head`` then ``comment`` at ``column`` (or one space after ``head`` if it is longer)."""
    return head + " " * max(1, column - len(head)) + comment


def _split_option(arg: str) -> tuple[str, str]:
    """``--signal=B:USR1@60`` → (``--signal=B:USR1@``, ``60``); the value follows the last ``=``/``@``."""
    cut = max(arg.rfind("="), arg.rfind("@")) + 1
    return arg[:cut], arg[cut:]


def _unquote(default: str) -> str:
    """Inverse of ``_shell_quote``."""
    if len(default) >= 2 and default[0] == default[-1] == '"':
        return re.sub(r"\\([\\$`])", r"\1", default[1:-1])
    return default


def _shell_quote(value: str, name: str) -> str:
    if re.search(r'[\n\0"]', value):
        raise ValueError(f"{name}: value {value!r} has a newline, NUL or '\"'; give one line without double quotes")
    if _SHELL_SAFE.match(value):
        return value
    return '"' + re.sub(r"([\\$`])", r"\\\1", value) + '"'


def format_value(value: Any) -> str:
    """Text of a value in grid files and templates: ``True`` → ``true``, ``0.1`` → ``0.1``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_value(text: str) -> bool | int | float | str:
    """Inverse of ``format_value``: ints, floats and ``true``/``false`` become Python values."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def expand_grid(spec: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Cartesian product of ``spec`` in sorted key order (the last key varies fastest)."""
    for key, options in spec.items():
        if isinstance(options, (str, bytes)) or not isinstance(options, Sequence) or not options:
            raise ValueError(f"grid key {key!r}: expected a non-empty list of values, got {options!r}")
    keys = sorted(spec)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(spec[k] for k in keys))]


def write_grid_file(path: str | os.PathLike[str], configs: Sequence[dict[str, Any]]) -> Path:
    """Write one ``key=value ...`` line per configuration; returns the path."""
    lines = [_grid_line(config, i) for i, config in enumerate(configs)]
    out = Path(path)
    out.write_text("".join(line + "\n" for line in lines))
    return out


def _grid_line(config: dict[str, Any], index: int) -> str:
    if not config:
        raise ValueError(f"configuration {index} is empty; every grid line needs at least one key=value")
    tokens = []
    for key, value in config.items():
        text = format_value(value)
        if not _KEY.match(key):
            raise ValueError(f"configuration {index}: key {key!r} must match {_KEY.pattern} (it becomes --{key})")
        if not text or re.search(r"\s", text):
            raise ValueError(f"configuration {index}: {key}={text!r} must be one non-empty token without spaces")
        tokens.append(f"{key}={text}")
    return " ".join(tokens)


def read_grid_line(path: str | os.PathLike[str], index: int, *, as_text: bool = False) -> dict[str, Any]:
    """Configuration number ``index`` (0-based, blank and ``#`` lines skipped) of a grid file:
    values as Python values (``parse_value``), or with ``as_text`` as the file spells them —
    what ``array_sweep.sbatch`` passes on and names the run from: ``run_name(read_grid_line(
    grid, i, as_text=True))`` is task i's run name (``"007"`` would read back as 7)."""
    lines = [ln.strip() for ln in Path(path).read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not 0 <= index < len(lines):
        raise IndexError(
            f"grid file {path} has {len(lines)} configurations (0..{len(lines) - 1}), asked for {index}; "
            f"submit with --array=0-{len(lines) - 1}"
        )
    config: dict[str, Any] = {}
    for token in lines[index].split():
        key, sep, value = token.partition("=")
        if not sep or not value or not _KEY.match(key):
            raise ValueError(f"grid file {path}, configuration {index}: expected key=value, got {token!r}")
        if key in config:  # (as array_sweep.sbatch refuses it: the last value would win here
            # while the script got both, and the two would name the run differently)
            raise ValueError(f"grid file {path}, configuration {index}: {key} is given twice; one "
                             "value per key on a line (python -m distlog.slurm grid writes one)")
        config[key] = value if as_text else parse_value(value)
    return config


def run_name(config: dict[str, Any]) -> str:
    """Safe, deterministic run name: ``{"seed": 2, "lr": 0.1}`` → ``lr0.1-seed2``.

    Keys sorted, ``key+value`` joined by ``-``, characters outside ``[A-Za-z0-9._-]`` → ``_``.
    A name so changed (``data=/data/a`` and ``data=/data_a`` would both be ``data_data_a``)
    ends with ``-`` and 8 hex digits of the sha1 of the name before the change, so distinct
    configurations never share a run; one longer than 120 characters is cut and ends so too.
    """
    if not config:
        return "default"
    raw = "-".join(f"{key}{format_value(config[key])}" for key in sorted(config))
    name = re.sub(rb"[^A-Za-z0-9._-]", b"_", raw.encode()).decode()  # per byte, like `tr -c`
    if name != raw or len(name) > _NAME_MAX:
        name = f"{name[:_NAME_MAX - 9]}-{hashlib.sha1(raw.encode()).hexdigest()[:8]}"
    return name


def _parse_param(text: str) -> tuple[str, list[Any]]:
    key, sep, values = text.partition("=")
    if not sep or not _KEY.match(key) or not values:
        raise argparse.ArgumentTypeError(f"expected --param key=v1,v2,..., got {text!r}")
    return key, [parse_value(v) for v in values.split(",")]


def main(argv: Sequence[str] | None = None, prog: str = "python -m distlog.slurm") -> int:
    """Command line: ``grid`` writes a grid file, ``render`` prints a rendered template.
    ``prog``: the command's name in usage and errors (``distlog slurm`` from the CLI)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    grid = sub.add_parser("grid", help="write a grid file (one configuration per line)")
    grid.add_argument("--param", action="append", type=_parse_param, required=True, help="key=v1,v2,...")
    grid.add_argument("-o", "--output", help="grid file to write (default: stdout)")
    render = sub.add_parser("render", help="print a template with its defaults replaced")
    render.add_argument("template", help="name in slurm/ (e.g. array_sweep) or a path")
    render.add_argument("values", nargs="*", help="NAME=VALUE")
    render.add_argument("-o", "--output", help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    try:
        if args.command == "grid":
            return _cmd_grid(_grid_spec(args.param), args.output)
        return _cmd_render(args.template, args.values, args.output)
    except (ValueError, IndexError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # (-o into a folder that does not exist; a template not found)
        if exc.filename is None:  # (a message of distlog's own: the templates there are)
            print(f"{prog}: error: {exc}", file=sys.stderr)
        else:
            print(f"{prog}: error: {exc.strerror}: {exc.filename}"
                  + ("; create its folder first, or pick another -o" if args.output else ""), file=sys.stderr)
        return 2


def _grid_spec(params: list[tuple[str, list[Any]]]) -> dict[str, list[Any]]:
    """The ``--param`` options as ``{key: values}``; a key given twice is refused (the later
    one silently replaced the earlier: a sweep lost configurations)."""
    spec: dict[str, list[Any]] = {}
    for key, values in params:
        if key in spec:
            both = ",".join(map(format_value, spec[key] + values))
            raise ValueError(f"--param {key} is given twice ({','.join(map(format_value, spec[key]))} and "
                             f"{','.join(map(format_value, values))}); give its values once: --param {key}={both}")
        spec[key] = values
    return spec


def _cmd_grid(spec: dict[str, list[Any]], output: str | None) -> int:
    configs = expand_grid(spec)
    if output is None:
        sys.stdout.write("".join(_grid_line(c, i) + "\n" for i, c in enumerate(configs)))
        return 0
    write_grid_file(output, configs)
    print(f"wrote {len(configs)} configurations to {output}; submit with:\n"
          f"  GRID_FILE={output} sbatch --array=0-{len(configs) - 1} slurm/array_sweep.sbatch", file=sys.stderr)
    return 0


def _cmd_render(template: str, pairs: Sequence[str], output: str | None) -> int:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"expected NAME=VALUE, got {pair!r}")
        values[key] = value
    text = render_template(template, **values)
    if output is None:
        sys.stdout.write(text)
    else:
        Path(output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
