"""``python -m distlog ...``: the ``distlog`` command (``distlog.cli``), where the console
script is not on PATH (a venv not activated, a cluster's module system)."""

from .cli import main

if __name__ == "__main__":  # (imported by a tool that walks the package: nothing runs)
    raise SystemExit(main())
