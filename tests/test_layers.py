"""The package's floors (docs/architecture.md): every import, module-level, function-local and
`TYPE_CHECKING` alike, points to a lower floor, and no modules import each other in a circle."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "textmill"

# Bottom up. A unit is a top-level module or subpackage of textmill; it may import from units on
# lower floors only (and from itself, in an order without circles).
FLOORS: dict[int, tuple[str, ...]] = {
    1: ("errors", "progress", "files"),
    2: ("registry", "config"),
    3: ("tokenizers",),
    4: ("data", "models"),
    5: ("rundir", "safety"),
    6: ("decoding",),
    7: ("loading",),
    8: ("exchange", "humaneval", "features"),
    9: ("training", "serve"),
    10: ("evaluation",),
    11: ("synth", "content"),
    12: ("cli", "__init__"),
    13: ("__main__",),
}
FLOOR = {unit: floor for floor, units in FLOORS.items() for unit in units}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted
    where: str  # file:line
    line: str  # the source line

    def __str__(self) -> str:
        return f"{self.where}: {self.line.strip()}"


def modules(src: Path = SRC) -> dict[str, Path]:
    found = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        dotted = ".".join(path.relative_to(src).with_suffix("").parts)
        found[dotted.removesuffix(".__init__")] = path
    return found


def imports(src: Path = SRC) -> list[Import]:
    """Every import of one textmill module by another, wherever it stands in the file. A package's
    `__init__` importing its own submodules is not counted (it only re-exports them)."""
    mods = modules(src)
    out = []
    for module, path in mods.items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                    if node.level else node.module or ""
                names = [f"{base}.{a.name}" for a in node.names] + [base]
            else:
                continue
            targets = set()
            for name in names:
                while name and name not in mods:  # `from .x import f`: the module is x, not x.f
                    name = name.rpartition(".")[0]
                if name and name != module and not (path.name == "__init__.py" and name.startswith(module + ".")):
                    targets.add(name)
            where = f"{path.relative_to(src.parent)}:{node.lineno}"
            out += [Import(module, t, where, lines[node.lineno - 1]) for t in sorted(targets)]
    return out


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def upward(found: list[Import]) -> list[str]:
    """The imports that do not point to a lower floor (or that name a unit the floors do not list)."""
    bad = []
    for imp in found:
        a, b = unit(imp.module), unit(imp.target)
        if a == b:
            continue
        if a not in FLOOR or b not in FLOOR:
            bad.append(f"{imp}  ({(a if a not in FLOOR else b)!r} has no floor: add it to FLOORS and the architecture page)")
        elif FLOOR[b] >= FLOOR[a]:
            bad.append(f"{imp}  ({a}, floor {FLOOR[a]}, imports {b}, floor {FLOOR[b]})")
    return bad


def circles(found: list[Import]) -> list[list[str]]:
    """The strongly connected groups of two or more modules (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {}
    for imp in found:
        graph.setdefault(imp.module, set()).add(imp.target)
        graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

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
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_every_import_points_to_a_lower_floor():
    bad = upward(imports())
    assert not bad, "imports against the floor order (docs/architecture.md):\n" + "\n".join(bad)


def test_no_modules_import_each_other_in_a_circle():
    found = imports()
    groups = circles(found)
    lines = []
    for group in groups:
        members = set(group)
        lines.append("circle: " + ", ".join(group))
        lines += [f"  {imp}" for imp in found if imp.module in members and imp.target in members]
    assert not groups, "\n".join(lines)


def test_the_floors_name_every_unit_and_the_architecture_page_lists_them():
    units = {unit(m) for m in modules()}
    assert units <= set(FLOOR), f"units without a floor: {sorted(units - set(FLOOR))}"
    page = (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for name in units - {"__init__", "__main__"}:
        assert f"{name}/" in page or f"{name}.py" in page, f"docs/architecture.md does not place {name}"


@pytest.mark.parametrize("source, expect", [
    ("from .errors import X", []),  # errors.py is on floor 1, below config
    ("from .models import X", ["models, floor 4"]),  # lazily or not: still an arrow upward
])
def test_the_check_sees_function_local_imports(tmp_path, source, expect):
    pkg = tmp_path / PACKAGE
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("X = 1\n")
    (pkg / "models.py").write_text("X = 1\n")
    (pkg / "config.py").write_text(f"def f():\n    {source}\n    return X\n")
    bad = upward(imports(tmp_path))
    assert len(bad) == len(expect) and all(e in b for e, b in zip(expect, bad)), bad
    assert "config.py:2" in "".join(bad) or not expect
