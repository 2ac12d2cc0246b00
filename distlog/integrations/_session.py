"""What the framework integrations share: one distlog run opened and closed on every rank.

A framework calls its logger at its own moments (often on rank 0 only); a distlog run must be
opened on every rank at one symmetric point (starting a run is a collective), and its final
flush must run on every rank too. ``RunSession`` owns that lifecycle, so each integration only
maps framework hooks onto ``open`` / ``collect`` / ``flush`` / ``close``.
"""

from __future__ import annotations

import enum
import importlib
import math
import re
from types import ModuleType
from typing import Any, Mapping, Sequence

import numpy as np

from ..comm import dist_state
from ..experiment import Experiment, get_logger
from ..metrics import as_number
from ..params import deep_merge
from ..serdes import _is_torch_tensor

_BAD_KEY_CHARS = re.compile(r"[\x00-\x1f\\]")
_key_cache: dict[tuple[str, str], str] = {}  # (prefix, framework name) -> clean key


def require(extra: str, *modules: str) -> ModuleType:
    """The first of ``modules`` that imports, or an ``ImportError`` with the install hint."""
    for name in modules:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(
        f"distlog.integrations.{extra} needs the {' or '.join(repr(m) for m in modules)} package, "
        f"which is not installed; install it with `pip install distlog[{extra}]`"
    )


def clean_key(key: Any) -> str | None:
    """A framework's metric name as a distlog key (``a//b`` → ``a/b``, control characters and
    backslashes → ``_``), or None if nothing is left."""
    text = _BAD_KEY_CHARS.sub("_", str(key))
    parts = [p for p in text.split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or None


def numeric(values: Mapping[str, Any], prefix: str = "", dropped: list[str] | None = None) -> dict[str, Any]:
    """The numeric entries of ``values`` under clean keys; a nested mapping is flattened into
    ``outer/inner`` keys (as TensorBoard's ``add_scalars`` groups them).

    0-d tensors stay tensors (``collect`` keeps CUDA ones on their device). The keys of values
    that are left out (strings, lists and the like) are appended to ``dropped`` when given."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        key = _key_cache.get((prefix, k)) if isinstance(k, str) else None
        if key is None:
            key = clean_key(f"{prefix}{k}")
            if key is None:
                if dropped is not None:
                    dropped.append(repr(k))
                continue
            if isinstance(k, str) and len(_key_cache) < 100_000:
                _key_cache[(prefix, k)] = key
        if type(v) is float or type(v) is int:  # what frameworks pass most: nothing to check
            out[key] = v
            continue
        if isinstance(v, Mapping):
            out.update(numeric(v, key + "/", dropped))
            continue
        if not isinstance(v, (str, bytes)):
            try:
                as_number(key, v, keep_device_tensors=True)
            except (TypeError, ValueError):
                pass
            else:
                out[key] = v
                continue
        if dropped is not None:
            dropped.append(f"{key} ({type(v).__name__})")
    return out


def plain_params(obj: Any, _depth: int = 0) -> Any:
    """Framework configuration (Namespaces, dataclasses, enums, dtypes...) as plain JSON-able values."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else repr(obj)
    if _depth > 8:
        return repr(obj)
    if isinstance(obj, Mapping):
        return {str(k): plain_params(v, _depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [plain_params(v, _depth + 1) for v in items]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # NumPy / torch scalars
        return plain_params(obj.item(), _depth + 1)
    array = _numeric_array(obj)
    if array is not None:  # params.json stores arrays whole (their text form is cut with '...')
        return array
    for attr in ("to_dict", "_asdict"):
        fn = getattr(obj, attr, None)
        if callable(fn):
            try:
                return plain_params(fn(), _depth + 1)
            except Exception:  # noqa: BLE001 - fall back to the text form
                break
    if isinstance(obj, type):  # a class (a dataclass too): its qualified name
        return f"{obj.__module__}.{obj.__qualname__}"
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return plain_params(dataclasses.asdict(obj), _depth + 1)
    if type(obj).__name__ == "Namespace":
        return plain_params(vars(obj), _depth + 1)
    if isinstance(obj, enum.Enum):
        return plain_params(obj.value, _depth + 1)
    return str(obj)


def _numeric_array(obj: Any) -> np.ndarray | None:
    """A copy of a NumPy array or tensor of numbers (what params.json stores), else None."""
    if _is_torch_tensor(obj):
        tensor = obj.detach().cpu()
        try:
            obj = tensor.numpy()
        except TypeError:  # a dtype NumPy lacks (bfloat16)
            obj = tensor.float().numpy()
    if isinstance(obj, np.ndarray) and obj.dtype.kind in "biuf" and obj.dtype.itemsize <= 8:
        return obj.copy()
    return None


def commit_for_checkpoint(run: Any, where: str) -> None:
    """A framework saves a checkpoint: the rows it covers go to the store first (this rank's;
    no collective), so a job killed after it loses none of them. A store that fails here is
    said, not raised: the checkpoint matters more than the rows (the writer keeps them, retries,
    and its error comes again at the next flush or at close)."""
    from ..errors import RowsRefused
    from ..report import warn

    try:
        run.metrics.commit()
    except RowsRefused:  # (rows already lost, by a bug or bad input: raised, as at any commit)
        raise
    except Exception as e:  # noqa: BLE001 - said; the checkpoint goes on
        warn(f"{where}: the run's rows could not be committed before this checkpoint ({e}); "
             "rows since the last commit are missing if the job dies before the next one",
             key=f"checkpoint-commit:{where}:{type(e).__name__}")


def world_size() -> int:
    state = dist_state()
    return 1 if state is None else state[1]


class RunSession:
    """One distlog run driven by a framework: opened on every rank, reopened (same run id, a new
    attempt) when the framework starts another stage after closing it."""

    def __init__(self, root: Any = "./runs", experiment: str | None = None, run_id: str | None = None,
                 tags: list[str] | None = None, **options: Any) -> None:
        self.exp: Experiment = root if isinstance(root, Experiment) else get_logger(root, **options)
        self.experiment_name = experiment or self.exp.experiment_name
        self.run_id = run_id
        self.tags = list(tags or [])
        self._pending_params: dict[str, Any] = {}
        self._pending_metrics: list[tuple[int | None, dict[str, Any]]] = []
        self.opened = 0  # how many times this session opened its run
        self.refused = 0  # logs or flushes whose values distlog refused (see ``flush``)
        self._accepted: set[str] = set()  # keys collect() took once: the bulk path is safe for them
        self._unstored: set[str] = set()  # keys of values left out, already reported
        self._warned_closed: set[str] = set()  # kinds of values dropped after the run closed, said so

    @property
    def run(self) -> Any:
        """The open ``distlog.run.Run`` or None."""
        return self.exp._run

    @property
    def is_open(self) -> bool:
        return self.exp._run is not None

    def open(self, resume_step: int | None = None, append: bool = False) -> Any:
        """Open the run on this rank: a collective, every rank calls it at the same point.

        ``append``: an attempt that only adds rows (an evaluation after training): no stored
        row is dropped, a row at or before a series' last stored step is refused (see
        ``set_append``). Otherwise a later attempt rewinds each series at its first new row
        (to ``resume_step`` at once when given): what a restarted training run needs."""
        if self.is_open:
            return self.run
        with self.exp.experiment(self.experiment_name):
            run = self.exp.start_run(self.run_id, tags=self.tags, resume_step=resume_step)
        if append and resume_step is None:
            run.rewind = False
        self.run_id = run.run_id
        self.opened += 1
        if self._pending_params:
            run.params.extend(self._pending_params)
            self._pending_params = {}
        for step, values in self._pending_metrics:
            run.metrics.collect(values, step=step)
        self._pending_metrics = []
        return run

    def close(self, ok: bool = True, reason: str | None = None, exc: BaseException | None = None,
              preempted: bool = False) -> None:
        """Close the run. ``ok``: a final flush on every rank (every rank must call it);
        otherwise a local close marking the run failed (peers may be gone). ``preempted``
        (with ``ok``): the job is stopped to be requeued; the attempt ends ``preempted``."""
        if not self.is_open:
            return
        if ok:
            if preempted:
                self.run.stop_requested = True  # agreed by every rank at the final flush
            try:  # what distlog refuses in the last window is dropped with a warning, as
                self.flush()  # at every flush from a hook: closing never ends the program
            except BaseException as e:
                self.exp._close_run(exc=e, collective=False)
                raise
            self.exp._close_run()
            return
        if exc is None:
            exc = RuntimeError(reason or "the framework reported a failure")
        self.exp._close_run(exc=exc, collective=False)

    def add_params(self, params: Mapping[str, Any]) -> None:
        """Deep-merge ``params`` into the run's params (kept until the run opens)."""
        plain = plain_params(dict(params))
        if self._reopened("params", list(plain)):
            self.run.params.extend(plain)
        elif not self.opened:
            self._pending_params = deep_merge(self._pending_params, plain)

    def collect(self, step: int | None, values: Mapping[str, Any], prefix: str = "",
                tolerant: bool = True) -> None:
        """Collect this rank's numeric ``values`` for the next flush (local, cheap).

        ``tolerant`` (framework hooks): a key distlog refuses is dropped with a record in the
        run's log, the others are still collected."""
        vals = self._numeric(values, prefix)
        if not vals:
            return
        if not self.is_open and not self._reopened("metric values", list(vals)):
            if not self.opened:  # kept until the run opens
                self._pending_metrics.append((step, vals))
            return
        if not tolerant:
            self.run.metrics.collect(vals, step=step)
        elif self._accepted.issuperset(vals):
            self.run.metrics.collect(vals, step=step)  # keys accepted before, numbers: cannot fail
        else:
            metrics = self.run.metrics
            for k, v in vals.items():  # one at a time: a refused key must not take the rest along
                try:
                    metrics.collect({k: v}, step=step)
                    self._accepted.add(k)
                except (TypeError, ValueError) as e:
                    self._dropped(e)

    def _reopened(self, what: str, names: Sequence[str] = ()) -> bool:
        """Whether the run is open for values arriving now. After it closed (the framework's
        end, then more logging), one process reopens it as an attempt that only appends; with
        several ranks reopening is a collective this one rank cannot start: the values are
        dropped, and the first time for each kind (``what``: params, metric values) that is
        said, naming the first call's ``names``."""
        if self.is_open or not self.opened:
            return self.is_open
        if world_size() == 1:
            self.open(append=True)
            return True
        if what not in self._warned_closed:
            self._warned_closed.add(what)
            import warnings

            shown = f" ({', '.join(names[:5])}{' and more' if len(names) > 5 else ''})" if names else ""
            warnings.warn(
                f"distlog: {what}{shown} given after run {self.experiment_name}/{self.run_id} closed were "
                "not stored: with several ranks, reopening the run is a collective. Open it again on every "
                "rank first (Lightning: access logger.experiment; Accelerate: tracker.open()), then "
                "log; close it on every rank when done", stacklevel=3)
        return False

    def log(self, step: int | None, values: Mapping[str, Any], prefix: str = "", tolerant: bool = True) -> None:
        """Write this rank's numeric ``values`` now (no reduction, no communication). A key
        ``"step"`` among them is a metric of that name (as TensorBoard stores it)."""
        vals = self._numeric(values, prefix)
        if not vals:
            return
        metrics = self.run.metrics
        try:
            metrics._log(vals, step)
        except (TypeError, ValueError) as e:
            if not tolerant:
                raise
            if len(vals) == 1:
                self._dropped(e)
                return
            if step is None:  # every key at the one step the call means, as in one call (the
                # largest step so far is not it: under exp.step(n) that is n, maybe below it)
                step = metrics._step_for_log(None)
            for k, v in vals.items():  # one at a time: a refused key must not take the rest along
                try:
                    metrics._log({k: v}, step)
                except (TypeError, ValueError) as e:
                    self._dropped(e)

    def _numeric(self, values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        """``numeric(values)``; the keys it leaves out are named once per key in the run's log
        (a warning) so a value that is not stored never goes unnoticed."""
        dropped: list[str] = []
        vals = numeric(values, prefix, dropped)
        new = [d for d in dropped if d not in self._unstored]
        if new and len(self._unstored) < 10_000:
            self._unstored.update(new)
            msg = (f"values that are not numbers were not stored: {', '.join(new[:10])}"
                   f"{' and more' if len(new) > 10 else ''}; distlog stores numbers, 0-d tensors "
                   "and dicts of them (flattened into 'outer/inner' keys)")
            if self.is_open:
                self.run.logs.warning(msg)
            else:
                import warnings

                warnings.warn(f"distlog: {msg}", stacklevel=3)
        return vals

    def flush(self, tolerant: bool = True) -> Any:
        """Reduce what every rank collected (a collective) and return the reduced statistics.

        ``tolerant`` (for calls made from framework hooks): values distlog refuses (a step
        already written for a key, a key that is also a namespace) are dropped with a record
        in the run's log instead of an exception that would end the framework's training; the
        flush still wrote the valid keys, and every rank takes this path alike. Returns None
        then."""
        try:
            return self.run.metrics.flush()
        except (TypeError, ValueError) as e:
            if not tolerant:
                raise
            self._dropped(e)
            return None

    def _dropped(self, e: Exception) -> None:
        self.refused += 1
        level = "WARNING" if self.refused == 1 else "DEBUG"  # the first one is echoed on stderr
        self.run.logs.log(level, f"distlog refused values from the framework and dropped them: {e}")

    def set_append(self) -> bool:
        """Make this attempt one that only appends (an evaluation stage after training): no
        stored row is dropped, a row at or before a series' last stored step is refused with
        a warning. Only before the attempt's first row and without a resume step."""
        run = self.run
        if run is None or run.writers.opened or run.resume_step is not None:
            return False
        run.rewind = False
        return True

    def set_resume_step(self, step: int | float, since: float | None = None) -> bool:
        """Rewind the stored series to ``step`` if no row was written in this attempt yet
        (``since``: only rows past it written since that wall time, ``Run.resume_since``)."""
        run = self.run
        if run is None or run.writers.opened:
            return False
        run.resume_step = step  # (checked there: a finite number, a fractional step kept)
        run.resume_since = since
        return True
