"""The import graph of ``distlog/``: no import cycle, and the bottom layers import nothing above
them. Parsed from the source (every ``import``: module level, ``TYPE_CHECKING`` blocks and
function bodies alike, because a lazy import is still a dependency).

``ALLOWED_CYCLES`` lists the cycles that exist today (issue 11), each an explicit allowance to
be removed: a cycle outside them fails, and so does an allowance that no longer matches a cycle
(delete it then, so the list only shrinks). Importing a module's own parent package
(``from . import report``, ``from . import __version__``) is not counted: the package is
already being initialised when its modules import.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "distlog"

ALLOWED_CYCLES: list[set[str]] = []

# layer -> what it may import from distlog (besides itself)
LAYERS = {
    "distlog.storage": {"distlog.errors", "distlog.report"},
    "distlog.writers": {"distlog.errors", "distlog.report", "distlog.storage", "distlog.logline",
                        "distlog.layout"},
    # the narrow run context: identity and place, no component, writer or comm
    "distlog.context": {"distlog.launcher", "distlog.storage"},
}
ALLOWED_LAYER_EDGES: set[tuple[str, str]] = set()

# a run's components get the RunContext and only the collaborators they use, never the run:
# dependencies run one way, run → components → context and writers (issue 11)
COMPONENTS = ("distlog.metrics", "distlog.logs", "distlog.params", "distlog.readme", "distlog.files",
              "distlog.monitor", "distlog.heartbeat", "distlog.capture", "distlog.telemetry",
              "distlog.context", "distlog.writers")
ABOVE_COMPONENTS = ("distlog.run", "distlog.experiment", "distlog.integrations", "distlog.cli")


def modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
                targets = subs if len(subs) == len(node.names) else [base, *subs]
            else:
                continue
            for target in targets:
                while target not in mods and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in mods and target != mod and not mod.startswith(target + "."):
                    graph[mod].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_parser_sees_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [{"a", "b", "c"}]
    real = import_graph()
    assert "distlog.storage.base" in real["distlog.writers.rowstore"]  # relative imports resolve
    assert "distlog.errors" in real["distlog.storage.retry"]


def test_no_import_cycle_beyond_the_listed_allowances():
    found = cycles(import_graph())
    new = [sorted(c) for c in found if not any(c <= allowed for allowed in ALLOWED_CYCLES)]
    assert not new, f"import cycles: {new}. Break them (pass what a module needs in, or move the " \
                    "shared piece down a layer); do not add them to ALLOWED_CYCLES"
    stale = [sorted(a) for a in ALLOWED_CYCLES if not any(c <= a and len(c) > 1 for c in found)]
    assert not stale, f"these allowed cycles are gone: {stale}; remove them from ALLOWED_CYCLES"


def test_bottom_layers_import_nothing_above_them():
    bad = []
    for mod, targets in import_graph().items():
        for layer, may in LAYERS.items():
            if mod == layer or mod.startswith(layer + "."):
                for t in targets:
                    ok = t == layer or t.startswith(layer + ".") or any(
                        t == m or t.startswith(m + ".") for m in may)
                    if not ok and (mod, t) not in ALLOWED_LAYER_EDGES:
                        bad.append(f"{mod} -> {t}")
    assert not bad, f"imports from a lower layer to a higher one: {bad}"


def _inside(mod: str, packages: tuple[str, ...]) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in packages)


def test_components_never_import_the_run():
    graph = import_graph()
    assert "distlog.context" in graph["distlog.metrics"]  # the components do see the context
    bad = sorted(f"{mod} -> {t}" for mod, targets in graph.items() if _inside(mod, COMPONENTS)
                 for t in targets if _inside(t, ABOVE_COMPONENTS))
    assert not bad, f"components import the run or what sits above it: {bad}; pass what the " \
                    "component needs to its constructor (the run wires it) instead"
