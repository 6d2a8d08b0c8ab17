"""The tuner package's modules import one way, and only the KerasTuner adapter touches KerasTuner's private API."""

import ast
import io
import re
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tuner"
ADAPTER = PACKAGE / "kerastuner_internals.py"


def _module(path):
    """A module's name under tuner/: "trials", or "report.ranking"; a package's __init__.py is the package."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """The tuner modules a file imports, by _module name ("from tuner import cache" imports "cache")."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "tuner":
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tuner."):
            names.add(node.module.removeprefix("tuner."))
        elif isinstance(node, ast.Import):
            names.update(alias.name.removeprefix("tuner.") for alias in node.names if alias.name.startswith("tuner."))
    return names


def _graph():
    return {_module(path): _imports(path) for path in PACKAGE.rglob("*.py") if _module(path)}


def test_no_import_cycle_among_the_tuner_modules():
    graph = _graph()

    def reaches(start, target, seen):
        return any(name == target or (name not in seen and reaches(name, target, seen | {name}))
                   for name in graph.get(start, ()))

    # A package's __init__ names what its modules define, so a module importing its own package's
    # __init__ would be a cycle too: the modules of tuner/report import each other, never "report".
    cycles = sorted(module for module in graph if reaches(module, module, {module}))
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_ranking_confirming_and_the_winner_import_one_way():
    graph = _graph()
    report = [module for module in graph if module == "report" or module.startswith("report.")]
    assert "report.ranking" in report and len(report) > 3
    assert not any("winner" in graph[module] for module in report)
    assert not any(name == "report" or name.startswith("report.") for name in graph["winner"])
    assert not any(name == "report" or name.startswith("report.") or name == "winner" for name in graph["confirm"])
    assert "winner" not in graph["rows"] and not any(name.startswith("report") for name in graph["rows"])

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
