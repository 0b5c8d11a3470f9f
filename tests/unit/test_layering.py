"""The house's layering (docs/architecture.md): imports flow downward only, no import circles, and the
torch-free layers never import torch. Read from the source with ``ast`` (function-level imports count;
imports under ``if TYPE_CHECKING:`` do not), so the rule holds for lazy imports too."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

#: package prefix -> layer; a module may import only from its own layer or below
LAYERS: tuple[tuple[str, int], ...] = (
    ("volseg.errors", 1), ("volseg.volume", 1), ("volseg.parallel", 1), ("volseg.labels", 1), ("volseg.strict", 1), ("volseg.phantom", 1),
    ("volseg.io", 2), ("volseg.postprocess", 3), ("volseg.segmenters", 4), ("volseg.reports", 5),
    ("volseg.options", 6), ("volseg.pipeline", 7), ("volseg.compare", 7), ("volseg.batch", 8), ("volseg.api", 9),
    ("volseg.cli", 10),
)
TORCH_FREE = ("volseg.io", "volseg.postprocess", "volseg.reports")


def layer_of(module: str) -> int | None:
    for prefix, level in LAYERS:
        if module == prefix or module.startswith(prefix + ".") or (prefix == "volseg.api" and module.startswith("volseg.api_")):
            return level
    return None


def source_modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(module: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported module, line) for every import executed at some point (not under TYPE_CHECKING)."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit_node(other)
            else:
                visit_node(child)

    def visit_node(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((full if full in known else base, node.lineno))
        visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    """Edges between volseg modules, and the rule breaches found while reading them."""
    known = source_modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    breaches = []
    for module, path in sorted(known.items()):
        for target, line in runtime_imports(module, path, known):
            if target.split(".")[0] == "torch" and module.startswith(TORCH_FREE):
                breaches.append(f"{module}:{line} imports torch (a torch-free layer)")
            if not target.startswith("volseg"):
                continue
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target == module:
                continue
            edges[module].add(target)
            here, there = layer_of(module), layer_of(target)
            if here is not None and there is not None and there > here:
                breaches.append(f"{module}:{line} imports {target} (layer {there} above {here})")
    return edges, breaches


def import_circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return circles


def test_every_module_has_a_layer():
    unplaced = [m for m in source_modules() if m != "volseg" and layer_of(m) is None]
    assert not unplaced, f"modules outside the layering (add them to LAYERS and docs/architecture.md): {unplaced}"


def test_imports_flow_downward_and_torch_stays_out_of_torch_free_layers():
    _, breaches = import_graph()
    assert not breaches, "\n".join(breaches)


def test_no_import_circles():
    edges, _ = import_graph()
    circles = import_circles(edges)
    assert not circles, "\n".join(" <-> ".join(c) for c in circles)


def test_the_checker_finds_a_circle_and_an_upward_import(tmp_path, monkeypatch):
    """The rules can fail: a planted circle and an upward import are both found."""
    package = tmp_path / "volseg"
    (package / "io").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "io" / "__init__.py").write_text("from volseg.io import b\n")
    (package / "io" / "b.py").write_text("def f():\n    import volseg.io\n    from volseg.api import x\n    import torch\n")
    (package / "api.py").write_text("x = 1\n")
    import sys

    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    edges, breaches = import_graph()
    assert import_circles(edges) == [["volseg.io", "volseg.io.b"]]
    assert any("volseg.io.b:3 imports volseg.api" in b for b in breaches)
    assert any("volseg.io.b:4 imports torch" in b for b in breaches)


@pytest.mark.parametrize("module, level", [("volseg.api_models", 9), ("volseg.segmenters.engine.infer", 4),
                                           ("volseg.cli.main", 10)])
def test_layers_are_looked_up_by_prefix(module, level):
    assert layer_of(module) == level
