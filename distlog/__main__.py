"""``python -m distlog ...``: the ``distlog`` command (``distlog.cli``), where the console
script is not on PATH (a venv not activated, a cluster's module system)."""

from .cli import main

raise SystemExit(main())
