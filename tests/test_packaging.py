"""Packaging: license metadata, citation file, typing marker, docstring examples, static checks.

The docstring examples run here with :mod:`doctest` so that the default ``python -m pytest``
covers them; ``python -m pytest --doctest-modules ocp_learn`` runs the same examples through
pytest.  Tests marked ``lint`` run ``ruff`` and ``lint-imports`` when those tools are installed
(the ``test`` extra installs both).
"""
import doctest
import importlib
import importlib.metadata
import importlib.resources
import importlib.util
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "ocp_learn"
PACKAGE_DIR = ROOT / PACKAGE
DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None


def _load_root_conftest():
    """The repository-level ``conftest.py`` (it decides which modules need a missing extra)."""
    spec = importlib.util.spec_from_file_location("_ocp_learn_root_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ROOT_CONFTEST = _load_root_conftest()


def _module_files(path=PACKAGE_DIR, prefix=PACKAGE + "."):
    """``(module name, source file)`` of every module of the package, without importing it."""
    out = [(PACKAGE, PACKAGE_DIR / "__init__.py")] if path == PACKAGE_DIR else []
    for info in pkgutil.iter_modules([str(path)]):
        name = prefix + info.name
        if info.ispkg:
            out.append((name, path / info.name / "__init__.py"))
            out.extend(_module_files(path / info.name, name + "."))
        else:
            out.append((name, path / f"{info.name}.py"))
    return out


def _modules_with_examples():
    found = []
    for name, source in _module_files():
        if ">>>" not in source.read_text(encoding="utf-8"):
            continue
        skip = ROOT_CONFTEST.needs_missing_extra(name)
        marks = [pytest.mark.skip(reason="needs CuPy with a CUDA device, or mpi4py")] if skip else []
        found.append(pytest.param(name, marks=marks, id=name))
    return found


EXAMPLE_MODULES = _modules_with_examples()


def test_examples_are_found():
    assert len(EXAMPLE_MODULES) >= 1, "no docstring with an example (>>>) found in the package"


@pytest.mark.parametrize("module_name", EXAMPLE_MODULES)
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, module_name)
    report = []
    for test in sorted(tests, key=lambda t: t.name):
        runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 1, f"{module_name}: examples found in the source but none collected"
    assert result.failed == 0, "".join(report)


def _pyproject():
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def test_license_file_is_bsd_3_clause():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("BSD 3-Clause License")
    assert "ocp_learn developers" in text


def test_pyproject_license_metadata():
    project = _pyproject()["project"]
    assert project["license"] == "BSD-3-Clause"
    assert project["license-files"] == ["LICENSE"]
    assert not [c for c in project["classifiers"] if c.startswith("License ::")], \
        "the SPDX expression replaces license classifiers"
    assert _pyproject()["tool"]["setuptools"]["package-data"][PACKAGE] == ["py.typed"]


def test_installed_metadata_says_bsd_3_clause():
    meta = importlib.metadata.metadata(PACKAGE)
    # License-Expression (metadata 2.4); an install made before it carries the text in License.
    assert (meta.get("License-Expression") or meta.get("License")) == "BSD-3-Clause"


def test_py_typed_is_installed():
    assert importlib.resources.files(PACKAGE).joinpath("py.typed").is_file()


def test_citation_file_parses():
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0"
    for key in ("authors", "message", "title"):
        assert cff[key], key
    assert cff["license"] == "BSD-3-Clause"
    titles = [ref["title"] for ref in cff["references"]]
    assert any("Continuous-Time Deep Learning" in t for t in titles)
    assert any(t.startswith("OT-Flow") for t in titles)
    assert any("mean field game" in t for t in titles)
    for ref in cff["references"]:
        assert ref["type"] and ref["authors"], ref["title"]


def test_changelog_has_unreleased_section():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in text


def _tool(command):
    """The path of ``command`` in this interpreter's environment (or on PATH), or None."""
    script = Path(sys.executable).parent / command
    return str(script) if script.exists() else shutil.which(command)


@pytest.mark.lint
def test_ruff_check_is_clean():
    ruff = _tool("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    proc = subprocess.run([ruff, "check", "--output-format=concise", PACKAGE], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.lint
def test_import_layers_hold():
    lint_imports = _tool("lint-imports")
    if lint_imports is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    proc = subprocess.run([lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
