"""``exp.params``: the run's configuration, one JSON document written by rank 0."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable

from . import report
from .errors import damaged
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
    """``d`` with the param ``dotted`` names set to ``value``: a key stored with its dots
    (``{"optim.lr": 0.1}``) is that key; a new key nests (``{"optim": {"lr": ...}}``)."""
    out = copy.deepcopy(d)
    parts = dotted.split(".")
    if not all(parts):
        raise ValueError(f"param key {dotted!r} has an empty part; use keys like 'optim.lr'")
    node, path = out, []
    while True:
        key, parts = _stored_key(node, parts)
        path.append(key)
        if not parts:
            node[key] = value
            return out
        if key not in node:
            node[key] = {}
        elif not isinstance(node[key], dict):  # replaced by a group, it would be lost unsaid
            where = ".".join(path)
            raise ValueError(
                f"params.update({dotted!r}, ...): param {where!r} is {node[key]!r:.60}, not a group "
                f"of params, so it has no {'.'.join(parts)!r} inside; to replace it by a group, "
                f"update({where!r}, {{{parts[0]!r}: ...}}), or pick another name")
        node = node[key]


def _stored_key(node: dict, parts: list[str]) -> tuple[str, list[str]]:
    """The key of ``node`` that starts ``parts``, and the parts left: the longest key stored
    with dots, else the first part (``{"optim.lr": 0.1}``: ``optim.lr.decay`` is under the
    param ``optim.lr``, which ``set_dotted`` then refuses as no group, as it does for
    ``{"optim": {"lr": 0.1}}``)."""
    for n in range(len(parts), 1, -1):
        key = ".".join(parts[:n])
        if key in node:
            return key, parts[n:]
    return parts[0], parts[1:]


def _lookup(node: Any, parts: list[Any]) -> Any:
    """The param at ``parts`` below ``node``: a key stored with dots (``{"a.b": {...}}``) or
    nested, longest first, the shorter ones when that finds nothing (``{"a.b": {"c": 1},
    "a": {"b": {"d": 2}}}`` holds ``a.b.c`` and ``a.b.d``); ``_NO_VALUE`` if none."""
    if not parts:
        return node
    if not isinstance(node, dict):
        return _NO_VALUE
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n]) if n > 1 else parts[0]
        if key in node:
            found = _lookup(node[key], parts[n:])
            if found is not _NO_VALUE:
                return found
    return _NO_VALUE


def _given(method: str, params: Any) -> Mapping:
    """The params dict ``set``/``extend`` got (None: none), else a ``TypeError`` saying how."""
    if params is None:
        return {}
    if isinstance(params, Mapping):  # a dict, or a mapping such as an OmegaConf DictConfig
        return params
    raise TypeError(f"params.{method}() takes a dict of params or keywords, got "
                    f"{type(params).__name__} ({params!r:.60}); e.g. params.{method}({{'lr': 0.1}}) "
                    f"or params.{method}(lr=0.1) (an object with fields: vars(obj) or "
                    "dataclasses.asdict(obj))")


def _flat_json(encoded: dict) -> dict[str, str]:
    """Each param of a ``params.json`` document (``serialize``'s output; a dotted key for a
    nested one) as its JSON text; an encoded value (``{"$t": ...}``) is one param."""
    out: dict[str, str] = {}

    def walk(node: dict, prefix: str) -> None:
        for k, v in node.items():
            if isinstance(v, dict) and v and "$t" not in v:
                walk(v, f"{prefix}{k}.")
            else:
                out[f"{prefix}{k}"] = json.dumps(v, sort_keys=True)

    walk(encoded, "")
    return out


def _now_of(key: str, now: dict[str, str]) -> str:
    """What took the place of the earlier param ``key`` in the flat params ``now``: its value,
    a plain value at a level above it, or the params nested under it now."""
    if key in now:
        return _short(now[key])
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:i])
        if head in now:
            return f"(removed: {head} is now {_short(now[head])})"
    under = [k for k in now if k.startswith(key + ".")]
    if under:
        return f"(now nested: {', '.join(under[:4])}{', ...' if len(under) > 4 else ''})"
    return "(removed)"


_DIFFER_SHOWN = 8  # params named in the warning of a rank whose params differ from rank 0's


def _short(text: str, limit: int = 80) -> str:
    """A param's JSON text (``_flat_json``) as a message shows it: the value as Python writes
    it (``(1, 2)``, not the stored ``{"$t": "tuple", ...}``), on one line, cut at ``limit``."""
    try:
        text = " ".join(repr(deserialize(json.loads(text))).split("\n"))
    except (ValueError, TypeError, KeyError, AttributeError):  # (as stored, then)
        pass
    return text if len(text) <= limit else text[: limit - 3] + "..."


_NO_VALUE = object()  # update(key) given no value; get(key) found none


class ParameterIndex:
    """Set, merge and read params. Every rank may call the setters (their values are checked
    everywhere, so bad input fails on every rank alike); only rank 0 writes the file, without
    a collective: params set on another rank only are not stored (at close, a rank whose
    params differ from the stored ones says so: ``check_stored``), so set them on every rank
    alike, or on rank 0."""

    def __init__(self, ctx: "RunContext", note: Callable[[str], None] | None = None) -> None:
        self._ctx = ctx
        self._params: dict[str, Any] = {}
        self._set_here = False  # a rank > 0 set params in this attempt
        self._note = note  # a warning for the run's own log (rank 0: a param an attempt changed)
        self._earlier: dict[str, str] = {}  # the stored params an earlier attempt left, flat, as JSON
        self._earlier_doc = ""  # ... and as one JSON text (the same config again: one comparison)
        self._changed: set[str] = set()  # those this attempt changed (each said once)
        #: rank 0: each param this attempt changed from what an earlier attempt stored, as
        #: ``[earlier, now]`` texts (``run.json``'s attempt record keeps them: ``distlog show``)
        self.changes: dict[str, list[str]] = {}
        self._unsettled: Any = None  # rank 0: the params stored since the last ``settle()``
        # set/extend/update from several threads: each merge sees the one before, and the
        # file is written in the order the params changed (two extends at once kept one's keys)
        self._lock = threading.RLock()
        self._said_keyword = False  # set/extend(params={...}) was said to make a group

    def _store(self, params: dict) -> None:
        encoded = serialize(params, "")  # TypeError names the bad key, on every rank
        check_flat(params)  # ValueError naming the two keys, on every rank
        # what is stored, read back: no reference to the caller's dicts (a script that edits
        # its config after set() changes nothing here until it sets it again), and values as
        # a reader of the file gets them (a StrEnum member as its str, a tensor as an array)
        self._params = deserialize(encoded)
        if self._ctx.rank == 0:
            if self._earlier:  # (a value changed: said at once, durable with the file)
                self._unsettled = encoded if self._note_changes(encoded, removed=False) else None
            # (in the order the params were given: a config's own order, not sorted)
            self._ctx.storage.write_json(PARAMS_FILE, encoded, sort_keys=False)
        else:
            self._set_here = True

    def settle(self) -> None:
        """Rank 0, after a flush and at close: say which params an earlier attempt stored that
        this attempt dropped. Not at the setter that dropped it: ``set(...)`` then
        ``update("optim.lr", ...)`` drops ``optim.lr`` for a moment, which is no change."""
        encoded, self._unsettled = self._unsettled, None
        if encoded is not None:
            self._note_changes(encoded)

    def _note_changes(self, encoded: Any, removed: bool = True) -> bool:
        """A resumed attempt that sets a param to another value than an earlier attempt stored
        (or drops it) replaces it in ``params.json``: the run's log says so, with both values,
        so the rows the earlier attempt wrote are not read as made with the new value. A value
        changed is said as it is stored; a param dropped only with ``removed`` (``settle``).
        Returns whether a dropped param is left unsaid."""
        if not self._earlier or self._note is None or self._changed.issuperset(self._earlier):
            return False
        if json.dumps(encoded, sort_keys=True) == self._earlier_doc:  # (params set every step)
            return False
        now = _flat_json(encoded)
        left = [key for key in self._earlier if key not in self._changed]
        dropped = False
        if not removed:
            dropped = any(key not in now for key in left)
            left = [key for key in left if key in now]
        changed = [key for key in left if now.get(key) != self._earlier[key]]
        if changed:
            self._changed.update(changed)
            self.changes.update({key: [_short(self._earlier[key]), _now_of(key, now)] for key in changed})
            self._note(f"params changed in attempt {self._ctx.attempt} (params.json keeps the newest; "
                       "the rows of earlier attempts were written with the earlier values): " + "; ".join(
                           f"{key} {_short(self._earlier[key])} -> {_now_of(key, now)}" for key in changed))
        return dropped

    def check_stored(self) -> None:
        """A rank > 0 that set params, at close (after the closing flush: rank 0 has set its
        own): warn when some of them are not in the params rank 0 stored, or differ there
        (they are not stored anywhere). One read; nothing when every rank set the same params,
        the usual way, or rank 0 only added some (results it put in the params at the end)."""
        if not self._set_here:
            return
        try:
            stored = self._ctx.storage.read_json(PARAMS_FILE)
        except FileNotFoundError:
            stored = None
        mine = serialize(self._params, "")  # (JSON writes its tuples as lists, as stored)
        if json.dumps(stored, sort_keys=True) == json.dumps(mine, sort_keys=True):
            return
        theirs, here = _flat_json(stored if isinstance(stored, dict) else {}), _flat_json(mine)
        differ = sorted(k for k in here if k not in theirs or theirs[k] != here[k])
        if not differ:
            return
        shown = "; ".join(f"{k}: rank 0 {_short(theirs[k]) if k in theirs else '(none)'}, here "
                          f"{_short(here[k]) if k in here else '(none)'}" for k in differ[:_DIFFER_SHOWN])
        more = f"; and {len(differ) - _DIFFER_SHOWN} more" if len(differ) > _DIFFER_SHOWN else ""
        message = (f"rank {self._ctx.rank} set params that are not the ones rank 0 stored "
                   f"({self._ctx.url}/{PARAMS_FILE}): {shown}{more}. Only rank 0's params are stored, so "
                   "this rank's were dropped; set the same params on every rank, or on rank 0")
        if self._note is not None:  # in this rank's log (a WARNING: on stderr too)
            self._note(message)
        else:
            report.warn(message, key=f"params on rank {self._ctx.rank}: {self._ctx.url} {self._ctx.attempt}")

    def set(self, params: dict | None = None, /, **kw: Any) -> None:
        """Replace all params (rank 0's are the ones stored: set them on every rank or rank 0)."""
        self._check_keyword("set", params, kw)
        with self._lock:
            self._store({**_given("set", params), **kw})

    def extend(self, params: dict | None = None, /, **kw: Any) -> None:
        """Deep-merge into the params."""
        self._check_keyword("extend", params, kw)
        with self._lock:
            self._store(deep_merge(self._params, {**_given("extend", params), **kw}))

    def _check_keyword(self, method: str, params: Any, kw: dict[str, Any]) -> None:
        """``set(params={...})`` alone: a group named ``params`` now (the mapping is taken by
        position only: a config with a ``params`` group was unwrapped), said once."""
        if params is None and len(kw) == 1 and isinstance(kw.get("params"), Mapping) and not self._said_keyword:
            self._said_keyword = True
            message = (f"params.{method}(params={{...}}) stores a group named 'params'; to {method} the "
                       f"whole config, pass it by position: params.{method}(cfg)")
            if self._note is not None:
                self._note(message)
            else:
                report.warn(message)

    def update(self, key: str, value: Any = _NO_VALUE) -> None:
        """Set one param by dotted key: ``update("optim.lr", 3e-4)``."""
        if isinstance(key, dict) and value is _NO_VALUE:  # (wandb.config.update({...}))
            raise TypeError(f"params.update({key!r:.60}): update(key, value) sets one param; a dict is "
                            "merged with params.extend({...}) (replaced with params.set({...}))")
        if value is _NO_VALUE:
            raise TypeError(f"params.update({key!r}): the value is missing; update('optim.lr', 3e-4)")
        if not isinstance(key, str):
            raise TypeError(f"params.update({key!r}, ...): the key must be a str (dotted for a nested "
                            f"param), got {type(key).__name__}; e.g. update('optim.lr', 3e-4)")
        with self._lock:
            self._store(set_dotted(self._params, key, value))

    def __getitem__(self, key: str) -> Any:
        """This rank's value of one param, by name or dotted key (``params["optim.lr"]``; a
        key stored with dots is found as ``update`` finds it)."""
        parts = key.split(".") if isinstance(key, str) else [key]
        found = _lookup(self._params, parts)
        if found is _NO_VALUE:
            raise KeyError(f"no param {key!r}; params: {', '.join(map(str, self._params)) or 'none'}")
        return copy.deepcopy(found)

    def get(self, key: str, default: Any = None) -> Any:
        """``params[key]``, or ``default`` when there is no such param."""
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        try:
            return self.get(key, _NO_VALUE) is not _NO_VALUE  # type: ignore[arg-type]
        except TypeError:  # (an unhashable key)
            return False

    def keys(self) -> list[str]:
        """The top-level param names (``dict(exp.params)`` copies the params)."""
        return list(self._params)

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._params)

    def read(self) -> dict[str, Any]:
        """The params as stored (any rank reads the file; falls back to this rank's copy)."""
        try:
            return deserialize(self._ctx.storage.read_json(PARAMS_FILE))
        except FileNotFoundError:
            return copy.deepcopy(self._params)

    def load_existing(self) -> None:
        try:
            stored = self._ctx.storage.read_json(PARAMS_FILE)
        except FileNotFoundError:
            return
        except ValueError as e:  # (torn: the start fails naming the file, not a JSONDecodeError)
            raise damaged(self._ctx.storage, PARAMS_FILE, f"not valid JSON: {e}") from None
        self._params = deserialize(stored)
        if not isinstance(self._params, dict):  # (adopted, it failed later in the script's own
            # params.update() with a raw TypeError)
            raise damaged(self._ctx.storage, PARAMS_FILE, f"a {type(self._params).__name__}, not the JSON "
                          "object of a run's params")
        if self._ctx.attempt > 0 and isinstance(self._params, dict):
            again = serialize(self._params, "")  # (as a later store encodes them)
            self._earlier = _flat_json(again)
            self._earlier_doc = json.dumps(again, sort_keys=True)
