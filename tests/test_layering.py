"""The layering rules of simgate's parts, checked on the source with :mod:`ast` (nothing is imported).

Every ``import`` statement of ``simgate/**/*.py`` counts, at the top of a module or inside a
function, except those under ``if TYPE_CHECKING:``. Relative imports are resolved;
``from package import name`` counts as an import of ``package.name`` where that is a module.
Dynamic imports (``importlib.import_module``) are not seen.

Four checks:

1. :data:`RULES`: a part never imports the parts listed against it;
2. no import circle among simgate's modules;
3. :mod:`simgate.cli` is a leaf: nothing outside ``simgate/cli/`` imports it (but the entry point
   ``simgate/__main__.py``, which nothing imports);
4. a module's header shows what it depends on: an import inside a function only where it keeps a
   heavy dependency (:data:`HEAVY`) out of collection and of the commands.
"""

from __future__ import annotations

import ast
import fnmatch
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "simgate"

#: part → the modules in it (``fnmatch`` patterns on dotted names; ``x.*`` is every module under x)
PARTS: dict[str, tuple[str, ...]] = {
    "statistics": ("simgate.verdict", "simgate.stats", "simgate.sequential", "simgate.paired", "simgate.distributions",
                   "simgate.groupseq", "simgate.pairedseq"),
    "runner": ("simgate.runner",),
    "engine": ("simgate.engine", "simgate.engine.*"),
    "plugin host": ("simgate.plugin_manager", "simgate.registry"),
    "reporting": ("simgate.reporting", "simgate.reporting.*"),
    "cli": ("simgate.cli", "simgate.cli.*"),
    "Ray": ("simgate.scaleout", "ray", "ray.*"),
    "search": ("simgate.search", "simgate.search.*"),
    "pytest plugin": ("simgate.pytest_plugin", "simgate.controller"),
    "envs": ("simgate.envs", "simgate.envs.*"),
    "perturbations": ("simgate.perturbations", "simgate.perturbations.*"),
    "scenarios": ("simgate.scenarios", "simgate.scenarios.*"),
    "policies": ("simgate.policies", "simgate.policies.*"),
    "robots": ("simgate.robots", "simgate.robots.*"),
}

#: (part, the parts it never imports): the architecture's table
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("statistics", ("runner", "engine", "plugin host")),
    ("engine", ("runner", "reporting")),
    ("runner", ("reporting", "cli", "Ray")),
    ("search", ("runner",)),
    ("reporting", ("cli",)),
    ("pytest plugin", ("cli",)),
    ("cli", ("pytest plugin",)),
    ("envs", ("engine", "runner")),
    ("perturbations", ("engine", "runner")),
    ("scenarios", ("engine",)),
    ("policies", ("scenarios",)),  # the shared YAML helpers are a leaf of their own
    ("robots", ("scenarios",)),
]

#: the program's entry points: ``python -m simgate`` runs the commands, so it alone may import
#: simgate.cli (and nothing imports it in turn)
ENTRY_POINTS = {"simgate.__main__"}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    path: Path
    line: int
    target: str  # the imported module, dotted (for outside packages: as written)

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(node: ast.AST):
    """Every import statement under ``node``, skipping the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.orelse:
                yield from _statements_of(stmt)
            continue
        yield from _statements_of(child)


def _statements_of(node: ast.AST):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _statements(node)


def _resolve(source: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = source.split(".") if path.name == "__init__.py" else source.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(target: str) -> str:
    """The simgate module a dotted name lands in (the longest existing prefix), else the name."""
    if not target.startswith("simgate"):
        return target
    parts = target.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts) or target


def imports_of(source: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in _statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(source, path, node.lineno, _known(alias.name)))
            continue
        base = _resolve(source, path, node)
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            found.append(Import(source, path, node.lineno, sub if sub in MODULES else _known(base)))
    return found


ALL_IMPORTS = [imp for name, path in MODULES.items() for imp in imports_of(name, path)]


def part_of(module: str) -> str | None:
    for part, patterns in PARTS.items():
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return part
    return None


def in_part(module: str, part: str) -> bool:
    return any(fnmatch.fnmatchcase(module, pattern) for pattern in PARTS[part])


#: packages a function may import locally, each costly to import or optional, so kept out of
#: collection and of ``python -m simgate``: measured here, scipy.stats ~1.0 s, scipy.special 0.3 s,
#: hypothesis 0.17 s, mujoco 0.16 s, matplotlib 0.16 s, pytest 0.10 s (the commands run without
#: it), onnxruntime and gymnasium 0.07 s; torch and Ray several seconds and optional (extras);
#: allure only when reporting; imageio/PIL (videos) and mcap (the MCAP export) optional.
HEAVY = frozenset({
    "torch", "mujoco", "onnxruntime", "onnx", "ray", "matplotlib", "allure", "allure_commons", "scipy",
    "hypothesis", "gymnasium", "imageio", "PIL", "mcap", "pytest", "_pytest",
})


def _local_imports(tree: ast.AST):
    """Import statements inside a function body (at any depth), but under ``if TYPE_CHECKING:``."""
    def walk(node: ast.AST, in_function: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                if in_function:
                    yield child
                continue
            yield from walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))
    yield from walk(tree, False)


def test_an_import_inside_a_function_only_keeps_a_heavy_dependency_out():
    broken = []
    for name, path in MODULES.items():
        for node in _local_imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            else:
                roots = ["simgate" if node.level else (node.module or "").split(".")[0]]
            light = [root for root in roots if root not in HEAVY]
            if light:
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                broken.append(f"{where}: {ast.unparse(node)} inside a function ({', '.join(light)} is not heavy: import it at the top)")
    assert not broken, "function-local imports of light modules:\n" + "\n".join(broken)


def test_the_local_import_rule_can_fail():
    source = "import os\ndef f():\n    import json\n    from simgate import stats\n    import mujoco\n    return json, stats, mujoco\n"
    found = [ast.unparse(node) for node in _local_imports(ast.parse(source))]
    assert found == ["import json", "from simgate import stats", "import mujoco"]


def test_every_part_names_existing_modules():
    """A renamed module must not switch a rule off silently."""
    for part, patterns in PARTS.items():
        for pattern in patterns:
            if pattern.startswith("simgate"):
                assert any(fnmatch.fnmatchcase(name, pattern) for name in MODULES), f"part {part!r}: no module matches {pattern!r}"


@pytest.mark.parametrize(("part", "forbidden"), RULES, ids=[f"{part} never imports {', '.join(f)}" for part, f in RULES])
def test_layering_rule(part, forbidden):
    broken = [
        f"{imp.where()}: {imp.source} imports {imp.target} (rule: {part} never imports {other})"
        for imp in ALL_IMPORTS
        if in_part(imp.source, part)
        for other in forbidden
        if in_part(imp.target, other) and not in_part(imp.target, part)
    ]
    assert not broken, "layering rule broken:\n" + "\n".join(broken)


def test_cli_is_a_leaf():
    broken = [
        f"{imp.where()}: {imp.source} imports {imp.target} (rule: nothing outside simgate/cli imports simgate.cli)"
        for imp in ALL_IMPORTS
        if not in_part(imp.source, "cli") and in_part(imp.target, "cli") and imp.source not in ENTRY_POINTS
    ] + [
        f"{imp.where()}: {imp.source} imports {imp.target} (rule: nothing imports an entry point)"
        for imp in ALL_IMPORTS
        if imp.target in ENTRY_POINTS
    ]
    assert not broken, "simgate.cli is imported from outside:\n" + "\n".join(broken)


def _graph() -> dict[str, dict[str, Import]]:
    """module → {imported simgate module → the first import line}"""
    graph: dict[str, dict[str, Import]] = {name: {} for name in MODULES}
    for imp in ALL_IMPORTS:
        if imp.target in MODULES:
            graph[imp.source].setdefault(imp.target, imp)
    return graph


def _strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's components of more than one module, or one module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _circle(graph: dict[str, dict[str, Import]], component: list[str]) -> list[Import]:
    """One circle through the component's first module: its edges in order (breadth-first, shortest)."""
    members = set(component)
    start = component[0]
    came_from: dict[str, Import] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt, imp in sorted(graph[node].items()):
            if nxt not in members:
                continue
            if nxt == start:
                edges = [imp]
                while edges[0].source != start:
                    edges.insert(0, came_from[edges[0].source])
                return edges
            if nxt not in came_from:
                came_from[nxt] = imp
                queue.append(nxt)
    raise AssertionError(f"no circle through {start}")  # pragma: no cover


def test_no_import_circles():
    graph = _graph()
    messages = []
    for component in _strongly_connected(graph):
        edges = _circle(graph, component)
        lines = "\n".join(f"    {imp.source} -> {imp.target}  ({imp.where()})" for imp in edges)
        messages.append(f"circle among {', '.join(component)}; one circle:\n{lines}")
    assert not messages, "import circles:\n" + "\n".join(messages)
