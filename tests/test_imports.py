"""The tuner package's layers import downwards only, as docs/ARCHITECTURE.md states, and only the KerasTuner adapter
touches KerasTuner's private API or its undocumented state."""

import ast
import importlib.util
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tuner"
ADAPTER = PACKAGE / "search" / "kerastuner.py"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
SHARED = "shared"  # the modules at the top of tuner/ and tuner/config: the bottom layer, usable by every other


def _module(path):
    """A module's name under tuner/: "trials.records", or "report"; a package's __init__.py is the package."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """The tuner modules a file imports, by _module name ("from tuner.data import cache" imports "data.cache")."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and (node.module == "tuner" or node.module.startswith("tuner.")):
            package = node.module.removeprefix("tuner").removeprefix(".")
            for alias in node.names:
                submodule = PACKAGE.joinpath(*package.split("."), alias.name) if package else PACKAGE / alias.name
                is_module = submodule.with_suffix(".py").is_file() or submodule.is_dir()
                names.add(f"{package}.{alias.name}".lstrip(".") if is_module else package)
        elif isinstance(node, ast.Import):
            names.update(alias.name.removeprefix("tuner.") for alias in node.names if alias.name.startswith("tuner."))
    return names - {""}


def _graph():
    return {_module(path): _imports(path) for path in PACKAGE.rglob("*.py") if _module(path)}


def _stated_layers():
    """The layers in the order docs/ARCHITECTURE.md's "Layers" block gives them, top first."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    return [match.group(1) for match in re.finditer(r"^ {4}(\w+)/?\s", block, flags=re.M) if match.group(1) != "scripts"]


def _layer(module, layers):
    folder = module.split(".")[0]
    return folder if folder in layers else SHARED


def test_no_import_cycle_among_the_tuner_modules():
    graph = _graph()

    def reaches(start, target, seen):
        return any(name == target or (name not in seen and reaches(name, target, seen | {name}))
                   for name in graph.get(start, ()))

    cycles = sorted(module for module in graph if reaches(module, module, {module}))
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_every_folder_of_the_package_is_a_stated_layer():
    layers = _stated_layers()
    assert layers[-1] == SHARED and len(set(layers)) == len(layers), layers
    folders = {path.name for path in PACKAGE.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    assert folders - {"config"} <= set(layers), f"folders not in ARCHITECTURE.md's layers: {folders - set(layers)}"


def test_a_module_imports_only_its_own_layer_and_the_layers_below_it():
    layers = _stated_layers()
    height = {layer: len(layers) - index for index, layer in enumerate(layers)}
    upward = sorted(f"tuner.{module} ({_layer(module, layers)}) imports tuner.{name} ({_layer(name, layers)})"
                    for module, names in _graph().items() for name in names
                    if height[_layer(name, layers)] > height[_layer(module, layers)])
    assert not upward, "imports against the order stated in docs/ARCHITECTURE.md:\n" + "\n".join(upward)


def test_the_layer_check_sees_an_upward_import(tmp_path):
    # The check above must be able to fail: a model module importing the search is caught.
    layers = _stated_layers()
    assert _layer("model.training", layers) == "model" and _layer("search.pruning", layers) == "search"
    assert layers.index("search") < layers.index("model")
    probe = tmp_path / "probe.py"
    probe.write_text("from tuner.search import pruning\nfrom tuner.data.cache import PreparedDataset\n")
    assert _imports(probe) == {"search.pruning", "data.cache"}


# KerasTuner 1.4.8's undocumented state: oracle.json's keys and the files and folders it names inside a trial, its
# private modules and the environment variables it reads.
KERASTUNER_STATE = re.compile(
    r"keras_tuner\.src|\b(start_order|end_order|ongoing_trials|tuner_ids|run_times|tried_so_far|id_to_hash|seed_state"
    r"|KERASTUNER_\w+)\b"
    r"|checkpoint\.weights\.h5|execution0|oracle\.json|stop_triggered|oracle_client|oracle_chief"
)


def _kerastuner_private_names():
    """Every underscored method or attribute that KerasTuner's own classes define, read from its installed source."""
    origin = importlib.util.find_spec("keras_tuner").origin  # finds the package without importing it (or TensorFlow)
    names = set()
    for path in Path(origin).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = node.name
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                name = node.attr
            else:
                continue
            if name.startswith("_") and not name.startswith("__"):
                names.add(name)
    return names


def _offenders(paths, private_names):
    offenders = []
    for path in paths:
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in private_names:
                offenders.append(f"{shown}:{node.lineno}: .{node.attr}")
        offenders += [f"{shown}:{number}: {text.strip()}" for number, text in _code_lines(path)
                      if KERASTUNER_STATE.search(text)]
    return offenders


def _code_lines(path):
    """(line number, text) of each line of a module, its comments and docstrings blanked (they may quote a name)."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for index, token in enumerate(tokens):
        docstring = (token.type == tokenize.STRING and token.string.startswith(('"""', "'''"))
                     and (index == 0 or tokens[index - 1].type in (tokenize.INDENT, tokenize.NEWLINE, tokenize.NL,
                                                                    tokenize.DEDENT)))
        if token.type == tokenize.COMMENT or docstring:
            (first, column), (last, end) = token.start, token.end
            for row in range(first, last + 1):
                start = column if row == first else 0
                stop = end if row == last else len(lines[row - 1])
                lines[row - 1] = lines[row - 1][:start] + " " * (stop - start) + lines[row - 1][stop:]
    return enumerate(lines, 1)


def test_only_the_adapter_touches_keras_tuners_private_api_and_state():
    offenders = _offenders([path for path in sorted(PACKAGE.rglob("*.py")) if path != ADAPTER],
                           _kerastuner_private_names())
    assert not offenders, f"KerasTuner's private API or state outside {ADAPTER.relative_to(ROOT)}:\n" + "\n".join(offenders)


def test_the_private_api_check_sees_a_private_name_nobody_listed(tmp_path):
    private_names = _kerastuner_private_names()
    assert {"_compute_values_hash", "_retry_queue", "_populate_initial_space"} <= private_names
    probe = tmp_path / "probe.py"
    probe.write_text('"""oracle.end_order in a docstring is fine"""\n'
                     "value = oracle._compute_values_hash(values)\n"
                     "# oracle.end_order in a comment is fine\n"
                     "done = oracle.end_order\n"
                     "import keras_tuner.src.engine.oracle\n")
    assert [line.split(":")[1] for line in _offenders([probe], private_names)] == ["2", "4", "5"]
