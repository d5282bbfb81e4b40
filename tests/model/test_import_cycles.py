"""No module of the inference core imports, directly or through others, itself.

Imports inside functions count too: a lazy import hides a cycle from the
interpreter at load time, not from the reader.
"""

import ast
import os
from typing import Dict, List, Set

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def package_imports(package_dir: str, package: str) -> Dict[str, Set[str]]:
    """For each module of a flat package, the package's modules it imports (anywhere in its body)."""
    modules = {name[:-3] for name in os.listdir(package_dir) if name.endswith(".py") and name != "__init__.py"}
    graph: Dict[str, Set[str]] = {}
    for module in sorted(modules):
        with open(os.path.join(package_dir, module + ".py"), encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        targets: Set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module:
                    names = [node.module.split(".")[0]]
                elif node.level == 1:
                    names = [alias.name for alias in node.names]
                elif node.level == 0 and node.module and node.module.split(".")[0] == package:
                    parts = node.module.split(".")
                    names = [parts[1]] if len(parts) > 1 else [alias.name for alias in node.names]
                else:
                    names = []
            elif isinstance(node, ast.Import):
                names = [alias.name.split(".")[1] for alias in node.names
                         if alias.name.split(".")[0] == package and "." in alias.name]
            else:
                names = []
            targets.update(name for name in names if name in modules and name != module)
        graph[module] = targets
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import cycle as ``[a, b, ..., a]``, or ``[]`` when there is none."""
    state: Dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return []


def test_model_package_has_no_import_cycle():
    graph = package_imports(os.path.join(REPO_ROOT, "model"), "model")
    assert {"card", "session", "grid", "pipeline"} <= set(graph)
    assert find_cycle(graph) == []


def test_the_model_card_imports_no_other_core_module_but_errors():
    graph = package_imports(os.path.join(REPO_ROOT, "model"), "model")
    assert graph["card"] <= {"errors"}


def test_a_lazy_import_cycle_is_found(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import thing\n")
    (package / "b.py").write_text("def thing():\n    from .c import other\n    return other\n")
    (package / "c.py").write_text("import pkg.a\nother = 1\n")
    (package / "d.py").write_text("from . import a\n")
    graph = package_imports(str(package), "pkg")
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []
