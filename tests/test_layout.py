"""The shape of the package: no import cycles (function-level imports and imports for type hints only
included: neither must hide one), and no module so long that a newcomer has to page through it."""
import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"
MAX_LINES = 400
GENERATED = {"app.protos"}  # protoc's output and its loader


def modules() -> dict[str, Path]:
    out = {}
    for p in APP.rglob("*.py"):
        rel = p.relative_to(APP.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        if not any(name == g or name.startswith(g + ".") for g in GENERATED):
            out[name] = p
    return out


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The app modules a module imports anywhere in its body, `if TYPE_CHECKING:` blocks included: a cycle
    through type hints only (types → regions.planner → regions.motion → annotate → types, once) still ties
    the modules together, it merely does not fail at import time."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in known else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in known}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    return out


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function():
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_type_checking_imports_count(tmp_path):
    hinted = tmp_path / "hinted.py"
    hinted.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.regions.planner import Plan\n")
    assert imports_of(hinted, {"app.regions.planner"}) == {"app.regions.planner"}


def test_the_values_every_stage_shares_import_no_stage():
    mods = modules()
    # app.events (the event values a FrameResult carries) is the one exception: a leaf importing nothing
    assert imports_of(mods["app.types"], set(mods)) <= {"app.events"}
    assert imports_of(mods["app.events"], set(mods)) == set()


def test_no_import_cycles_in_app():
    mods = modules()
    graph = {name: imports_of(path, set(mods)) - {name} for name, path in mods.items()}
    assert cycles(graph) == []


def test_no_module_in_app_is_longer_than_400_lines():
    long = {name: n for name, p in modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
