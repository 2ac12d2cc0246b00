"""``exp.params``: the run's configuration, one JSON document written by rank 0."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .layout import PARAMS_FILE
from .serdes import check_flat, deserialize, serialize

if TYPE_CHECKING:
    from .context import RunContext



def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def set_dotted(d: dict, dotted: str, value: Any) -> dict:
    out = copy.deepcopy(d)
    parts = dotted.split(".")
    if not all(parts):
        raise ValueError(f"param key {dotted!r} has an empty part; use keys like 'optim.lr'")
    node = out
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[parts[-1]] = value
    return out


class ParameterIndex:
    """Set, merge and read params. Every rank may call the setters (their values are checked
    everywhere, so bad input fails on every rank alike); only rank 0 writes the file."""

    def __init__(self, ctx: "RunContext") -> None:
        self._ctx = ctx
        self._params: dict[str, Any] = {}

    def _store(self, params: dict) -> None:
        encoded = serialize(params, "params")  # TypeError names the bad key, on every rank
        check_flat(params)  # ValueError naming the two keys, on every rank
        self._params = params
        if self._ctx.rank == 0:
            self._ctx.storage.write_json(PARAMS_FILE, encoded)

    def set(self, params: dict | None = None, **kw: Any) -> None:
        """Replace all params."""
        self._store({**(params or {}), **kw})

    def extend(self, params: dict | None = None, **kw: Any) -> None:
        """Deep-merge into the params."""
        self._store(deep_merge(self._params, {**(params or {}), **kw}))

    def update(self, key: str, value: Any) -> None:
        """Set one param by dotted key: ``update("optim.lr", 3e-4)``."""
        self._store(set_dotted(self._params, key, value))

    def read(self) -> dict[str, Any]:
        """The params as stored (any rank reads the file; falls back to this rank's copy)."""
        try:
            return deserialize(self._ctx.storage.read_json(PARAMS_FILE))
        except FileNotFoundError:
            return copy.deepcopy(self._params)

    def load_existing(self) -> None:
        try:
            self._params = deserialize(self._ctx.storage.read_json(PARAMS_FILE))
        except FileNotFoundError:
            pass
