"""User-facing text speaks to users: no development history.

The pages in ``docs/``, the docstrings and comments of ``ocp_learn/``, the
gallery scripts in ``examples/`` and the benchmark tables in
``benchmarks/results/`` say what a thing is and how to run it. Words that
narrate how the code came to be ("issue 12", "session 4", "previously", "no
longer", ...) are reported as ``file:line: text`` so they can be rewritten.
"""
from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Phrases that tell the history of the code rather than describe it. Each is
#: matched case-insensitively with word boundaries; the list avoids words with
#: ordinary meanings in this library ("old" and "new" samples, "now" in prose).
HISTORY_PATTERNS = [
    r"issue\s*#\s*\d*",
    r"issue\s+\d+",
    r"sessions?",
    r"tickets?",
    r"TODO:\s*from",
    r"previously",
    r"formerly",
    r"used to be",
    r"old code",
    r"new code",
    r"this VM",
    r"the VM",
    r"was changed",
    r"were changed",
    r"now uses",
    r"no longer",
    r"before the redesign",
    r"after the redesign",
    r"the issue's",
    r"earlier code",
    r"what changed",
]
HISTORY = re.compile(r"\b(?:" + "|".join(HISTORY_PATTERNS) + r")\b", re.IGNORECASE)


def history_hits(text: str, name: str, lines: list[int] | None = None) -> list[str]:
    """``name:line: text`` for every line of ``text`` that narrates history.

    Parameters
    ----------
    text : str
        The text to scan, one entry per line.
    name : str
        The file name reported with each hit.
    lines : list of int, optional
        The line number in the file of each line of ``text`` (default: 1, 2, ...).
    """
    hits = []
    for i, line in enumerate(text.splitlines()):
        if HISTORY.search(line):
            lineno = lines[i] if lines is not None else i + 1
            hits.append(f"{name}:{lineno}: {line.strip()}")
    return hits


def python_text_hits(path: Path, name: str | None = None) -> list[str]:
    """History words in the comments and string literals (docstrings included) of a module."""
    src = path.read_text(encoding="utf-8")
    name = name or str(path.relative_to(ROOT))
    hits = []
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type not in (tokenize.COMMENT, tokenize.STRING):
            continue
        first = tok.start[0]
        n = tok.string.count("\n") + 1
        hits += history_hits(tok.string, name, list(range(first, first + n)))
    return hits


def _rel(paths):
    return sorted(p for p in paths if p.is_file())


DOC_FILES = _rel([*ROOT.glob("docs/*.rst"), *ROOT.glob("docs/*.md")])
RESULT_FILES = _rel(ROOT.glob("benchmarks/results/*.md"))
PACKAGE_FILES = _rel(ROOT.glob("ocp_learn/**/*.py"))
EXAMPLE_FILES = _rel(ROOT.glob("examples/*.py"))
BENCH_FILES = _rel(ROOT.glob("benchmarks/*.py"))


def _report(hits: list[str]) -> str:
    return ("development history in user-facing text (say what it is and how to run it):\n  "
            + "\n  ".join(hits))


def test_negative_control_is_caught(tmp_path):
    text = "Fast path.\nThis was previously slow (issue 12); session 4 fixed it.\nRun it."
    hits = history_hits(text, "x.rst")
    assert hits == ["x.rst:2: This was previously slow (issue 12); session 4 fixed it."]
    for phrase in ("see issue #7", "TODO: from the old code", "timed on this VM",
                   "the solver no longer copies", "it now uses BLAS", "ticket 3",
                   "within the issue's 15 minutes", "faster than the earlier code"):
        assert HISTORY.search(phrase), phrase
    src = '"""Module.\n\nThe kernel used to be slower.\n"""\nx = 1  # formerly y\n'
    mod = tmp_path / "probe.py"
    mod.write_text(src, encoding="utf-8")
    assert [h.split(": ")[0] for h in python_text_hits(mod, "probe.py")] == [
        "probe.py:3", "probe.py:5"]


def test_ordinary_prose_is_not_caught():
    for phrase in ("the old samples are replaced by new ones", "issues a RuntimeWarning",
                   "now the gradient", "previous iterate", "a new draw of the samples"):
        assert not HISTORY.search(phrase), phrase


def test_docs_pages():
    hits = [h for p in DOC_FILES for h in history_hits(p.read_text(encoding="utf-8"),
                                                       str(p.relative_to(ROOT)))]
    assert not hits, _report(hits)


def test_package_docstrings_and_comments():
    hits = [h for p in PACKAGE_FILES for h in python_text_hits(p)]
    assert not hits, _report(hits)


def test_examples():
    hits = [h for p in EXAMPLE_FILES for h in python_text_hits(p)]
    assert not hits, _report(hits)


def test_benchmark_scripts():
    hits = [h for p in BENCH_FILES for h in python_text_hits(p)]
    assert not hits, _report(hits)


@pytest.mark.parametrize("path", RESULT_FILES, ids=lambda p: p.name)
def test_benchmark_tables(path):
    hits = history_hits(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not hits, _report(hits)
