"""JSON-safe serialisation with ``$t`` (type) and ``$s`` (shape) keys.

``serialize`` turns params into plain JSON values; ``deserialize`` restores them:

    numpy array   {"$t": "ndarray", "$s": [2, 2], "dtype": "int64", "data": [[1, 2], [3, 4]]}
    numpy scalar  {"$t": "np.float32", "data": 0.5}
    datetime64    {"$t": "np.datetime64", "dtype": "<M8[ns]", "data": "<ISO 8601 in its unit>"}
    float NaN/inf {"$t": "float", "data": "nan"}   (at any depth: in numpy scalars and arrays too)
    datetime      {"$t": "datetime", "data": "2026-11-28T07:00:00+00:00"}
    Path          {"$t": "Path", "data": "/tmp/x"}
    bytes         {"$t": "bytes", "data": "<base64>"}
    tuple / set   {"$t": "tuple" | "set", "data": [...]}
    dict with a "$t" key of its own   {"$t": "dict", "data": {...}}

A user dict is written as is unless it has a ``$t`` key: then it is wrapped (``$t: dict``) so
that it is never read as one of the types above. Files written before the wrapper existed are
read as before.

Everything else must be None, bool, int, float, str, list or a dict with str keys; anything
else is a ``TypeError`` naming the key, and so are numpy values JSON cannot hold (complex,
longdouble, structured; a torch tensor NumPy cannot hold, such as bfloat16). A value that
contains itself or nests more than ``MAX_DEPTH`` levels is a ``ValueError`` naming the key.
``serialize`` returns strict JSON (no bare NaN/Infinity), so a value it
accepts on every rank is one rank 0 can write.
"""

from __future__ import annotations

import base64
import datetime as _dt
import enum
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

import numpy as np


#: how deep params may nest (dicts, lists, tuples, sets): JSON readers and Python's own
#: recursion give out not far beyond; no configuration comes near it
MAX_DEPTH = 100


def serialize(obj: Any, key: str = "value", _within: tuple[int, ...] = ()) -> Any:
    """``obj`` as plain JSON values (``_within``: the ids of the containers it sits in).
    ``key``: the param's name in errors ("": ``obj`` is the params dict itself, whose keys
    are named alone). Subclasses of str, int and float (a ``StrEnum`` or ``IntEnum`` member)
    are stored as the plain value; any other mapping (an OmegaConf ``DictConfig``) as a dict,
    any other sequence (a ``ListConfig``) as a list."""
    if obj is None or obj.__class__ in (bool, str, int):
        return obj
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, str):  # (a StrEnum member: its value, as JSON writes it)
        return str.__str__(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):  # np.float64 too: stored as the plain float
        return float(obj) if math.isfinite(obj) else {"$t": "float", "data": repr(float(obj))}
    if isinstance(obj, (dict, list, tuple, set, frozenset)):
        within = _container(obj, key, _within)
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                if not isinstance(k, str):
                    raise TypeError(f"{f'param {key!r}' if key else 'params'} has a non-str key {k!r}; "
                                    "use str keys")
                out[k] = serialize(v, f"{key}.{k}" if key else k, within)
            return {"$t": "dict", "data": out} if "$t" in out else out
        if isinstance(obj, list):
            return [serialize(v, f"{key}[{i}]", within) for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {"$t": "tuple", "data": [serialize(v, f"{key}[{i}]", within) for i, v in enumerate(obj)]}
        items = sorted(obj, key=repr)  # deterministic order across processes
        return {"$t": "set", "data": [serialize(v, key, within) for v in items]}
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError(f"param {key!r} is an object-dtype array; use a numeric array")
        _check_dtype(obj.dtype, key, "array")
        return {"$t": "ndarray", "$s": list(obj.shape), "dtype": obj.dtype.str,
                "data": _array_data(obj, key)}
    if isinstance(obj, np.generic):
        _check_dtype(obj.dtype, key, "value")
        t = f"np.{type(obj).__name__}"
        if obj.dtype.kind in "Mm":  # .item() drops the unit (and is an int below µs)
            return {"$t": t, "dtype": obj.dtype.str, "data": _array_data(np.asarray(obj), key)}
        return {"$t": t, "data": serialize(obj.item(), key)}
    if isinstance(obj, _dt.datetime):
        return {"$t": "datetime", "data": obj.isoformat()}
    if isinstance(obj, _dt.date):
        return {"$t": "date", "data": obj.isoformat()}
    if isinstance(obj, PurePath):
        return {"$t": "Path", "data": str(obj)}
    if isinstance(obj, (bytes, bytearray)):
        return {"$t": "bytes", "data": base64.b64encode(bytes(obj)).decode("ascii")}
    if _is_torch_tensor(obj):
        try:
            arr = obj.detach().cpu().numpy()
        except (TypeError, RuntimeError, NotImplementedError) as e:  # bfloat16, meta, ...
            raise TypeError(f"param {key!r} is a torch tensor of dtype {obj.dtype} that NumPy cannot "
                            f"hold ({e}); convert it, e.g. x.float() or x.tolist()") from None
        return serialize(arr, key)
    if isinstance(obj, Mapping) or (isinstance(obj, Sequence) and not isinstance(obj, (bytes, bytearray, memoryview))):
        within = _container(obj, key, _within)  # (the original's id: a mapping holding itself)
        try:  # (an OmegaConf DictConfig: its values resolved; a ListConfig as a list)
            plain = dict(obj.items()) if isinstance(obj, Mapping) else list(obj)
        except Exception as e:  # noqa: BLE001 - named, with the key, as any refused value is
            raise TypeError(f"param {key!r}: reading the {type(obj).__name__} failed ({type(e).__name__}: "
                            f"{e}); store it as a plain dict or list (an OmegaConf config: "
                            "OmegaConf.to_container(cfg, resolve=True))") from e
        return serialize(plain, key, within)
    if isinstance(obj, enum.Enum):
        fix = f"store its value or name ({type(obj).__name__}.{obj.name}.value or .name)"
    else:
        fix = f"store its text (str(x): {str(obj)!r:.40}) or the numbers it holds"
    raise TypeError(
        f"param {key!r} has type {type(obj).__name__}, which cannot be stored; {fix}. Params are "
        "numbers, str, bool, None, lists, dicts, tuples, sets, numpy arrays, datetime, Path or bytes"
    )


def _container(obj: Any, key: str, within: tuple[int, ...]) -> tuple[int, ...]:
    """``within`` and ``obj``; a ``ValueError`` naming the key when ``obj`` is one of the
    containers it sits in (a cycle) or nests past ``MAX_DEPTH`` (both were a RecursionError)."""
    if id(obj) in within:
        raise ValueError(f"param {_short(key)} contains itself (a reference cycle), which JSON cannot "
                         "hold; store a copy without the cycle")
    if len(within) >= MAX_DEPTH:
        raise ValueError(f"param {_short(key)} nests more than {MAX_DEPTH} levels of dicts and lists; "
                         "store it flatter (or save it as a file: exp.files.save(obj, 'x.pkl'))")
    return (*within, id(obj))


def _short(key: str) -> str:
    return repr(key) if len(key) <= 80 else f"{key[:40]!r}...{key[-30:]!r}"


# numpy dtype kinds JSON holds: bool, int, uint, float, str, bytes, datetime64, timedelta64
_JSON_KINDS = "biufUSMm"


def _check_dtype(dtype: np.dtype, key: str, what: str) -> None:
    """Refuse numpy values JSON cannot hold, naming the key and the fix."""
    if dtype.kind == "c":
        fix = "store the real and imaginary parts as two params (x.real, x.imag)"
    elif dtype.kind == "f" and dtype.itemsize > 8:
        fix = "convert it to float64 (float(x) or x.astype(np.float64)), the most JSON holds"
    elif dtype.kind not in _JSON_KINDS:
        fix = "use a bool, int, float, str, bytes or datetime64 dtype"
    else:
        return
    raise TypeError(f"param {key!r} is a numpy {dtype.name} {what}, which cannot be stored; {fix}")


def _array_data(arr: np.ndarray, key: str) -> Any:
    """``arr`` as nested JSON lists that ``np.asarray(data, dtype)`` reads back: datetime64 as
    ISO strings in its unit, timedelta64 as ints in its unit, NaN/inf and bytes with ``$t``."""
    if arr.dtype.kind == "M":
        return np.datetime_as_string(arr).tolist()
    if arr.dtype.kind == "m":
        return arr.astype(np.int64).tolist()
    data = arr.tolist()
    if arr.dtype.kind == "S" or (arr.dtype.kind == "f" and not np.isfinite(arr).all()):
        return serialize(data, key)
    return data


def _float(data: str) -> float:
    """A stored non-finite float; also reads ``np.float64(nan)``, which distlog wrote for
    numpy floats before it stored them as the plain float."""
    numpy_repr = re.fullmatch(r"np\.\w+\((.*)\)", data)
    return float(numpy_repr.group(1) if numpy_repr else data)


def deserialize(obj: Any) -> Any:
    return _load(obj, hashable=False)


def _load(obj: Any, hashable: bool) -> Any:
    """``hashable``: the value is an element of a set, where a set can only be a frozenset."""
    if isinstance(obj, list):
        return [_load(v, hashable) for v in obj]
    if not isinstance(obj, dict):
        return obj
    t = obj.get("$t")
    if t is None:
        return {k: deserialize(v) for k, v in obj.items()}
    data = obj.get("data")
    if t == "dict":
        return {k: deserialize(v) for k, v in data.items()}
    if t == "ndarray":
        return np.asarray(deserialize(data), dtype=np.dtype(obj["dtype"])).reshape(obj["$s"])
    if t.startswith("np.") and "dtype" in obj:  # datetime64, timedelta64
        return np.asarray(data, dtype=np.dtype(obj["dtype"]))[()]
    if t.startswith("np."):
        return getattr(np, t[3:])(deserialize(data))
    if t == "float":
        return _float(data)
    if t == "tuple":
        return tuple(_load(v, hashable) for v in data)
    if t == "set":
        items = {_load(v, True) for v in data}
        return frozenset(items) if hashable else items
    if t == "datetime":
        return _dt.datetime.fromisoformat(data)
    if t == "date":
        return _dt.date.fromisoformat(data)
    if t == "Path":
        return Path(data)
    if t == "bytes":
        return base64.b64decode(data)
    raise ValueError(f"unknown serialised type $t={t!r}; written by a newer distlog?")


def _is_torch_tensor(obj: Any) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "detach")


def flat_keys(d: dict, path: tuple[str, ...] = ()) -> list[tuple[str, tuple[str, ...]]]:
    """``(flattened key, path of keys)`` of every leaf ``flatten`` makes of ``d``."""
    out = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out += flat_keys(v, (*path, k))
        else:
            out.append((".".join((*path, k)), (*path, k)))
    return out


def check_flat(d: dict, what: str = "params") -> None:
    """Refuse params two of which flatten to one key (``{"optim.lr": .1, "optim": {"lr": 1}}``):
    the sweep table and every params filter would show only one of them."""
    seen: dict[str, tuple[str, ...]] = {}
    for flat, path in flat_keys(d):
        if flat in seen:
            a, b = ("".join(f"[{p!r}]" for p in q) for q in (seen[flat], path))
            raise ValueError(
                f"{what}{a} and {what}{b} both flatten to {flat!r}, so queries would show one of "
                "them only; rename one, or write both the same way (nested dicts or dotted keys)")
        seen[flat] = path


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 1}}`` → ``{"optim.lr": 1}`` (used by the sweep table). ``check_flat``
    refuses params two of which flatten to one key; in files written before it the later wins."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
