"""The package layout holds: one-way imports (the import contract), no reads of another package's
private or fitted attributes, and files small enough to read."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "shopformer"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
MAX_LINES = 400
#: Fitted attributes of other libraries' objects that share a name with one of ours: (module, name).
EXTERNAL_READS = {("evaluate/calibration.py", "coef_"), ("evaluate/calibration.py", "intercept_")}  # scikit-learn


def _package_of(path: Path) -> str:
    """`predict` for src/shopformer/predict/estimator.py; the module's own name for top-level modules."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _is_hidden(name: str) -> bool:
    """Private (`_name`, not dunder) or a fitted attribute (`name_`, scikit-learn style)."""
    private = name.startswith("_") and not name.startswith("__")
    return private or (name.endswith("_") and not name.endswith("__") and not name.startswith("_"))


def _attributes(tree: ast.AST) -> tuple[set[str], list[tuple[str, int]]]:
    """Hidden names a module defines (functions, methods, class attributes, attributes it assigns) and
    the hidden attributes it reads of objects other than `self`/`cls`, with their line numbers."""
    defined, read = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and _is_hidden(node.name):
            defined.add(node.name)
        elif isinstance(node, ast.AnnAssign | ast.Assign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for part in ast.walk(target):
                    if isinstance(part, ast.Attribute) and _is_hidden(part.attr):
                        defined.add(part.attr)
                    elif isinstance(part, ast.Name) and _is_hidden(part.id):
                        defined.add(part.id)
        elif isinstance(node, ast.Attribute) and _is_hidden(node.attr) and isinstance(node.ctx, ast.Load):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                read.append((node.attr, node.lineno))
    return defined, read


def test_no_module_reads_another_packages_private_or_fitted_attributes():
    modules = {path: _attributes(ast.parse(path.read_text(encoding="utf-8"))) for path in PACKAGE.rglob("*.py")}
    defined_in: dict[str, set[str]] = defaultdict(set)
    for path, (defined, _) in modules.items():
        for name in defined:
            defined_in[name].add(_package_of(path))
    crossings = [
        f"{path.relative_to(ROOT)}:{line} reads .{name} (defined in {', '.join(sorted(defined_in[name]))})"
        for path, (_, read) in modules.items()
        for name, line in read
        if defined_in[name] and _package_of(path) not in defined_in[name]
        and (path.relative_to(PACKAGE).as_posix(), name) not in EXTERNAL_READS
    ]
    assert not crossings, "use the owning package's public methods instead:\n" + "\n".join(crossings)


def test_a_planted_read_of_a_fitted_attribute_is_found(tmp_path):
    tree = ast.parse("class A:\n    def fit(self):\n        self.model_ = 1\n\n\ndef peek(estimator):\n    return estimator.model_\n")
    defined, read = _attributes(tree)
    assert "model_" in defined and read == [("model_", 7)]


def _project_files() -> list[Path]:
    """The project's own Python files: peers' virtual environments and benchmark work folders excluded."""
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    return [path for path in files if not any(part.startswith(".") or part == "work" for part in path.relative_to(ROOT).parts)]


def test_every_source_file_is_under_400_lines():
    files = _project_files()
    long = [f"{path.relative_to(ROOT)}: {n} lines" for path in files if (n := len(path.read_text().splitlines())) >= MAX_LINES]
    assert not long, "\n".join(long)


def _lint_imports(source_root: Path, config_dir: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the `shopformer` package found under `source_root`, with the project's contract."""
    env = {"PYTHONPATH": str(source_root), "PATH": str(LINT_IMPORTS.parent)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=config_dir, env=env, capture_output=True, text=True)


def test_the_import_contract_holds():
    result = _lint_imports(ROOT / "src", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout


@pytest.mark.parametrize(("module", "upward"), [
    ("data/codes.py", "shopformer.models.transformer"),   # data reaching up to models
    ("tasks/base.py", "shopformer.predict.estimator"),    # tasks reaching for the estimator
])
def test_the_import_contract_fails_on_a_planted_upward_import(tmp_path, module, upward):
    copy = tmp_path / "src"
    shutil.copytree(PACKAGE, copy / "shopformer", ignore=shutil.ignore_patterns("__pycache__"))
    planted = copy / "shopformer" / module
    planted.write_text(planted.read_text() + f"\nimport {upward}  # planted\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    result = _lint_imports(copy, tmp_path)
    assert result.returncode != 0 and "BROKEN" in result.stdout
    assert upward.split(".")[1] in result.stdout
