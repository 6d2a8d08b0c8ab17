"""The project explains its own shape: docs/ARCHITECTURE.md lists every module, and no file points outside the project."""

import ast
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
# Past this a module is no longer read in one sitting; split it by what a reader looks for.
MAX_MODULE_LINES = 330
# Documents the tool itself writes into a run directory: named in the code, not part of the project.
WRITTEN_BY_THE_TOOL = {"results.md"}


def _modules():
    return {path.relative_to(ROOT).as_posix() for path in (ROOT / "tuner").rglob("*.py") if path.name != "__init__.py"}


def _project_files():
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def test_the_architecture_page_lists_every_module_and_no_module_that_is_gone():
    listed = set(re.findall(r"^- `(tuner/[\w/]+\.py)`:", ARCHITECTURE.read_text(encoding="utf-8"), flags=re.M))
    modules = _modules()
    assert not modules - listed, f"modules missing from docs/ARCHITECTURE.md: {sorted(modules - listed)}"
    assert not listed - modules, f"docs/ARCHITECTURE.md lists modules that are gone: {sorted(listed - modules)}"


def test_no_module_is_past_what_a_reader_takes_in_at_once():
    long = {name: lines for name in _modules()
            if (lines := len((ROOT / name).read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_file_of_the_project_points_to_a_document_that_is_not_in_it():
    files = _project_files()
    names = {path.name for path in files}
    dangling = []
    for path in files:
        if path.suffix not in (".py", ".md", ".txt", ".toml", "") or path.name.startswith("."):
            continue
        for document in set(re.findall(r"[\w./-]*\b[\w-]+\.md\b", path.read_text(encoding="utf-8", errors="replace"))):
            name = document.rsplit("/", 1)[-1]
            if name not in names and name not in WRITTEN_BY_THE_TOOL:
                dangling.append(f"{path.relative_to(ROOT)} -> {document}")
    assert not dangling, f"references to documents that are not in the project: {dangling}"


def test_every_folder_of_the_package_says_what_it_owns():
    # A newcomer opens a folder's __init__.py first: one paragraph on what the folder owns.
    silent = []
    for init in sorted((ROOT / "tuner").rglob("__init__.py")):
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        if len(docstring.split()) < 8:
            silent.append(init.relative_to(ROOT).as_posix())
    assert not silent, f"packages without a docstring saying what they own: {silent}"
