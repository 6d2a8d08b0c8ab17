"""The tuner package's modules import one way, and only the KerasTuner adapter touches KerasTuner's private API."""

import ast
import io
import re
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tuner"
ADAPTER = PACKAGE / "kerastuner_internals.py"


def _imports(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tuner."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("tuner."))
    return names


def _modules():
    """Each top-level module of tuner/ (a file, or a subpackage as one) with the files it is made of."""
    modules = {path.stem: [path] for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    for package in (path.parent for path in PACKAGE.glob("*/__init__.py")):
        modules[package.name] = sorted(package.rglob("*.py"))
    return modules


def test_no_import_cycle_among_the_tuner_modules():
    graph = {name: set().union(*(_imports(path) for path in files)) - {name} for name, files in _modules().items()}

    def reaches(start, target, seen):
        return any(name == target or (name not in seen and reaches(name, target, seen | {name}))
                   for name in graph.get(start, ()))

    cycles = sorted(module for module in graph if reaches(module, module, {module}))
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_ranking_confirming_and_the_winner_import_one_way():
    assert "winner" not in _imports(PACKAGE / "report.py") and "report" not in _imports(PACKAGE / "winner.py")
    assert "report" not in _imports(PACKAGE / "confirm.py") and "winner" not in _imports(PACKAGE / "confirm.py")


# KerasTuner's private modules, and the private names of its objects this tool relies on.
PRIVATE_KERASTUNER = re.compile(
    r"keras_tuner\.src|\._retry_queue|\._record_values|\._duplicate|\._get_(size|num_brackets|num_rounds)\b"
    r"|_populate_initial_space|stop_triggered|\.stub\b|oracle_client|oracle_chief|KERASTUNER_"
)


def _code_lines(path):
    """(line number, text) of each line of a module, its comment cut off (a comment may quote a message)."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, column = token.start
            lines[row - 1] = lines[row - 1][:column]
    return enumerate(lines, 1)


def test_only_the_adapter_uses_keras_tuners_private_api():
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{number}: {text.strip()}"
                 for path in sorted(PACKAGE.rglob("*.py")) if path != ADAPTER
                 for number, text in _code_lines(path) if PRIVATE_KERASTUNER.search(text)]
    assert not offenders, "KerasTuner's private API outside tuner/kerastuner_internals.py:\n" + "\n".join(offenders)
