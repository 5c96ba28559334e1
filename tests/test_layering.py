"""The import rules of docs/architecture.md, read from the source of every module.

``violations(root)`` is a pure function of a checkout, so the rules can be
checked against any tree (``python -c "from tests.test_layering import
violations; print(*violations(Path('OTHER_CHECKOUT')), sep='\\n')"``).
Every import counts, including those inside functions: a lazy import is still
a dependency.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cvrkd", "annotations", "space", "bench", "scripts")
ALLOWED_CIRCLES = [{"cvrkd.bulk", "cvrkd.bulk_ray"}]
"""The optional Ray engine and the bulk scorer call each other; nothing else may."""
SCORING_ENTRY = "cvrkd.scorer"


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path) -> dict[str, Path]:
    """Every Python module of the project's packages, and ``app``, by dotted name."""
    found = {module_name(root, path): path for package in PACKAGES if (root / package).is_dir()
             for path in sorted((root / package).rglob("*.py"))}
    if (root / "app.py").is_file():
        found["app"] = root / "app.py"
    return found


def imports_of(name: str, path: Path, *, named_members: bool = True) -> set[str]:
    """Dotted names a module imports, relative ones resolved; ``from a import b`` counts as ``a``, and also as
    ``a.b`` with ``named_members`` (``b`` may be a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            if named_members:
                names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the project modules it imports (a package's import counts as its ``__init__``)."""
    modules = project_modules(root)
    return {name: {target for target in imports_of(name, path) if target in modules and target != name}
            for name, path in modules.items()}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(group)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def violations(root: Path) -> list[str]:
    """Every broken import rule in the checkout at ``root``, one line each (empty: the layers hold)."""
    modules = project_modules(root)
    graph = import_graph(root)
    problems = []
    for name, path in modules.items():
        imported = imports_of(name, path)
        if _within(name, "space.services"):
            for banned in ("gradio", "fastapi", "starlette", "space.ui", "space.web"):
                problems += [f"{name} imports {target} (services import no front door)"
                             for target in sorted(imported) if _within(target, banned)]
        if _within(name, "annotations"):
            problems += [f"{name} imports {target} (annotations/ stays torch-free and apart from cvrkd)"
                         for target in sorted(imported) if _within(target, "torch") or _within(target, "cvrkd")]
        if _within(name, "cvrkd") or _within(name, "annotations"):
            problems += [f"{name} imports {target} (nothing imports the app from below)"
                         for target in sorted(imported) if _within(target, "space") or target == "app"]
        if _within(name, "space"):
            problems += [f"{name} imports {target} (the app uses the public cvrkd surface, and cvrkd.train for the "
                         "trainer)" for target in sorted(imports_of(name, path, named_members=False))
                         if _within(target, "cvrkd") and target != "cvrkd" and not _within(target, "cvrkd.train")]
        if _within(name, "scripts") or _within(name, "bench"):
            problems += [f"{name} imports {target} (scripts and benches never import tests)"
                         for target in sorted(imported) if _within(target, "tests")]
    if SCORING_ENTRY in graph:
        problems += [f"the scoring path ({SCORING_ENTRY}) reaches {name}"
                     for name in sorted(reachable(graph, SCORING_ENTRY)) if _within(name, "cvrkd.train")]
    problems += [f"import circle: {' -> '.join(sorted(group))}"
                 for group in circles(graph) if group not in ALLOWED_CIRCLES]
    return problems


def test_the_layers_hold():
    assert violations(ROOT) == []


def test_the_checker_sees_a_broken_rule(tmp_path):
    """The checker is not vacuous: a services module importing gradio, a circle and a lazy import are caught."""
    (tmp_path / "space" / "services").mkdir(parents=True)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "space" / "__init__.py").write_text("")
    (tmp_path / "space" / "services" / "__init__.py").write_text("")
    (tmp_path / "space" / "services" / "tab.py").write_text("import gradio as gr\n")
    (tmp_path / "annotations" / "__init__.py").write_text("")
    (tmp_path / "annotations" / "a.py").write_text("from annotations import b\n")
    (tmp_path / "annotations" / "b.py").write_text("def f():\n    from . import a\n    import torch\n")
    found = violations(tmp_path)
    assert any("space.services.tab imports gradio" in line for line in found)
    assert any("annotations.b imports torch" in line for line in found)
    assert any(line.startswith("import circle: annotations.a -> annotations.b") for line in found)
