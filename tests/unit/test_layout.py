"""The package's shape: chalicelib's modules import each other without a
cycle (function-level imports included), and only the edge (chalicelib/web/)
knows HTTP."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

PACKAGE = Path(__file__).resolve().parents[2] / "chalicelib"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> Dict[str, Set[str]]:
    """chalicelib module -> the chalicelib modules it imports, anywhere in it."""
    graph: Dict[str, Set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name, package = _module(path), _module(path if path.name == "__init__.py" else path.parent / "__init__.py")
        found: Set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")
                base = base[: len(base) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    candidate = f"{target}.{alias.name}"
                    found.add(candidate if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists()
                              else target)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[name] = {m for m in found if m.startswith("chalicelib") and m != name}
    return graph


def test_chalicelib_has_no_import_cycle():
    graph = _imports()
    state: Dict[str, str] = {}

    def visit(module: str, trail: List[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            assert state.get(target) != "open", "import cycle: " + " -> ".join(trail + [module, target])
            if target not in state:
                visit(target, trail + [module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def _imports_chalice(path: Path) -> bool:
    """Any import of chalice or a submodule of it (`from chalice.app import`,
    `import chalice as c` too), anywhere in the file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        if any(name.split(".")[0] == "chalice" for name in names):
            return True
    return False


def test_only_the_edge_imports_chalice():
    users = {_module(p) for p in PACKAGE.rglob("*.py") if _imports_chalice(p)}
    assert users and all(u.startswith("chalicelib.web.") for u in users), users
