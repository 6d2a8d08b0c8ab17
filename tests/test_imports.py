"""The tuner package's modules import one way: no module reaches back to one that imports it."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tuner"


def _imports(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tuner."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("tuner."))
    return names


def test_no_import_cycle_among_the_tuner_modules():
    graph = {path.stem: _imports(path) for path in PACKAGE.glob("*.py")}

    def reaches(start, target, seen):
        return any(name == target or (name not in seen and reaches(name, target, seen | {name}))
                   for name in graph.get(start, ()))

    cycles = sorted(module for module in graph if reaches(module, module, {module}))
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_ranking_confirming_and_the_winner_import_one_way():
    assert "winner" not in _imports(PACKAGE / "report.py") and "report" not in _imports(PACKAGE / "winner.py")
    assert "report" not in _imports(PACKAGE / "confirm.py") and "winner" not in _imports(PACKAGE / "confirm.py")
