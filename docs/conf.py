"""Sphinx configuration of the ocp_learn documentation.

Build (warnings are errors, as in CI)::

    pip install -e ".[docs]"
    sphinx-build -W --keep-going -j 1 -b html docs docs/_build/html

The gallery runs ``examples/plot_*.py`` (several minutes); for a quick build of the
other pages set ``OCP_LEARN_DOCS_NO_GALLERY=1``.  Every cross-reference must
resolve (``nitpicky``); links to Python, NumPy, SciPy, matplotlib and scikit-learn
use their websites' inventories, or the copies in ``_intersphinx/`` offline.

Parts of pages are generated at build time so that they never go stale:
``_generated/cli.rst`` from the ``ocp-learn`` argument parser, and
``_generated/bench/KEY.rst`` from each ``benchmarks/results/KEY.md`` (its first
table, included with myst-parser) and the command of ``benchmarks/manifest.py``
that reproduces it; ``benchmarks.rst`` includes the key tables.
"""
import os
import sys

import matplotlib

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import ocp_learn  # noqa: E402

project = "ocp_learn"
author = "ocp_learn developers"
copyright = "ocp_learn developers, BSD-3-Clause"
version = release = ocp_learn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
# _generated/ holds files that pages include; verify_table.md is included by
# verifying.rst (it is written by the verification suite, not a page of its own).
exclude_patterns = ["_build", "_generated", "_intersphinx", "verify_table.md", "sg_execution_times.rst"]
suppress_warnings = ["myst.header"]
# Every cross-reference must resolve (``-W`` turns a dangling one into an error).
nitpicky = True

# --- links to other projects ------------------------------------------------------
# Each inventory is read from the project's website; where that cannot be reached
# (no network), from the small copy in _intersphinx/ (written by
# _intersphinx/make_inventories.py), so the build never depends on the network.
def _inventory(key):
    return (None, os.path.join("_intersphinx", key + ".inv"))


intersphinx_mapping = {
    "python": ("https://docs.python.org/3", _inventory("python")),
    "numpy": ("https://numpy.org/doc/stable", _inventory("numpy")),
    "scipy": ("https://docs.scipy.org/doc/scipy", _inventory("scipy")),
    "matplotlib": ("https://matplotlib.org/stable", _inventory("matplotlib")),
    "sklearn": ("https://scikit-learn.org/stable", _inventory("sklearn")),
}
intersphinx_timeout = 10

# --- API reference ------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "none"
# Optional back ends: the reference pages must build without them.
autodoc_mock_imports = ["cupy", "mpi4py", "dask", "distributed", "torch", "torchdiffeq",
                        "numba_cuda"]
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = False
# The docstrings are validated by tests/test_docstrings.py (numpydoc's validator on the
# public API, run by pytest), not during the build.
numpydoc_validation_checks = set()

# --- gallery --------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": os.path.join(ROOT, "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    # OCP_LEARN_DOCS_NO_GALLERY=1 builds the gallery pages without running the
    # examples (a quick check of the rest of the documentation).
    "plot_gallery": "False" if os.environ.get("OCP_LEARN_DOCS_NO_GALLERY") == "1" else "True",
    "write_computation_times": False,
    # every gallery figure also at twice the resolution (200 dpi) for high-density screens
    "image_srcset": ["2x"],
}

# --- HTML -----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "ocp_learn"
html_static_path = []
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}
mathjax3_config = {"tex": {"tags": "none"}}


# --- generated pages ----------------------------------------------------------------
def _write_if_changed(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                return
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def _indent(text, n=3):
    return "\n".join((" " * n + line) if line.strip() else "" for line in text.splitlines())


def generate_cli_reference():
    """``_generated/cli.rst``: the help of ``ocp-learn`` and of every subcommand."""
    from ocp_learn.cli import build_parser

    parser = build_parser()
    parser.prog = "ocp-learn"
    os.environ["COLUMNS"] = "88"
    out = [".. This file is generated by docs/conf.py from the argument parser; do not edit.", "",
           "``ocp-learn``", "-" * 14, "", ".. code-block:: text", "", _indent(parser.format_help()), ""]
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in sorted(sub.choices):
        title = f"``ocp-learn {name}``"
        out += [title, "-" * len(title), "", ".. code-block:: text", "",
                _indent(sub.choices[name].format_help()), ""]
    _write_if_changed(os.path.join(HERE, "_generated", "cli.rst"), "\n".join(out))


def _first_table(text):
    """The first markdown table of ``text`` (its contiguous ``|`` lines)."""
    lines, table = text.splitlines(), []
    for line in lines:
        if line.lstrip().startswith("|"):
            table.append(line)
        elif table:
            break
    return "\n".join(table) + "\n"


def generate_benchmark_tables():
    """``_generated/bench/KEY.rst`` for every ``benchmarks/results/KEY.md``.

    Each holds the command that reproduces the result (``ocp-learn bench ID`` and
    the command it runs, from ``benchmarks/manifest.py``), the first table of the
    result file and its figure, if any.  :doc:`benchmarks` includes the key ones
    under captions of its own; ``benchmarks/results/INDEX.md`` lists them all.
    """
    from benchmarks.manifest import BENCHMARKS

    res = os.path.join(ROOT, "benchmarks", "results")
    files = sorted(f[:-3] for f in os.listdir(res) if f.endswith(".md") and f != "INDEX.md")
    for key in files:
        out = [".. This file is generated by docs/conf.py from benchmarks/results/; do not edit.", ""]
        ids = [i for i, b in BENCHMARKS.items() if f"results/{key}.md" in b.outputs]
        if ids:
            bench = BENCHMARKS[ids[0]]
            out += [f"Reproduce with ``ocp-learn bench {ids[0]}``, which runs "
                    f"(from the repository root):", "", ".. code-block:: bash", "",
                    "   " + bench.command(), ""]
        with open(os.path.join(res, key + ".md"), encoding="utf-8") as fh:
            table = _first_table(fh.read())
        _write_if_changed(os.path.join(HERE, "_generated", "bench", key + ".md"), table)
        out += [f".. include:: /_generated/bench/{key}.md", "   :parser: myst_parser.sphinx_", ""]
        out += [f"*Table:* ``benchmarks/results/{key}.md``.", ""]
        for ext in ("png",):
            if os.path.exists(os.path.join(res, f"{key}.{ext}")):
                out += [f".. image:: /../benchmarks/results/{key}.{ext}",
                        f"   :alt: figure of benchmarks/results/{key}.md", ""]
        _write_if_changed(os.path.join(HERE, "_generated", "bench", key + ".rst"), "\n".join(out))


def generate_optional_pages():
    """``_generated/extra_toc.rst`` and ``_generated/verify_table.rst``: pages and
    tables written by other parts of the project, linked when they exist."""
    extra = [p for p in ("distributed",) if os.path.exists(os.path.join(HERE, p + ".rst"))]
    toc = [".. This file is generated by docs/conf.py; do not edit.", ""]
    if extra:
        toc += [".. toctree::", "   :maxdepth: 1", "", *("   " + p for p in extra), ""]
    _write_if_changed(os.path.join(HERE, "_generated", "extra_toc.rst"), "\n".join(toc))
    vt = [".. This file is generated by docs/conf.py; do not edit.", ""]
    if os.path.exists(os.path.join(HERE, "verify_table.md")):
        vt += [".. include:: /verify_table.md", "   :parser: myst_parser.sphinx_", ""]
    else:
        vt += ["*The table is written by* ``ocp-learn verify`` *into* ``docs/verify_table.md``; "
               "*run it to see the current results here.*", ""]
    _write_if_changed(os.path.join(HERE, "_generated", "verify_table.rst"), "\n".join(vt))


generate_cli_reference()
generate_benchmark_tables()
generate_optional_pages()


def _skip_sklearn_routing(app, what, name, obj, skip, options):
    """scikit-learn adds metadata-routing methods (``set_fit_request``, ...) to estimators;
    their docstrings point into scikit-learn's own glossary, so they are left out here."""
    if name == "get_metadata_routing" or (name.startswith("set_") and name.endswith("_request")):
        return True
    return skip


def _lookup(path):
    """The object named by the dotted ``path``, or None.

    Read as Python reads it: attributes of the top-level package first (so
    ``ocp_learn.optim.lbfgs`` is the function the package exports, not the module
    of the same name), then the longest importable module and its attributes.
    """
    import importlib

    parts = path.split(".")
    try:
        obj = importlib.import_module(parts[0])
        for name in parts[1:]:
            obj = getattr(obj, name)
        return obj
    except Exception:  # not an attribute chain: a module that is not imported yet
        pass
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except Exception:  # any import failure: not a module
            continue
        try:
            for name in parts[i:]:
                obj = getattr(obj, name)
        except AttributeError:
            return None
        return obj
    return None


def _canonical_name(obj):
    """``module.qualname`` where ``obj`` is defined (its documented name), or None."""
    if isinstance(obj, property):
        obj = obj.fget
    obj = getattr(obj, "__func__", obj)
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if isinstance(mod, str) and isinstance(qual, str) and "<" not in qual:
        return f"{mod}.{qual}"
    return None


def _resolve_reexport(app, env, node, contnode):
    """Resolve a Python reference to a name re-exported by a package.

    The API pages document each object once, in the module that defines it
    (``ocp_learn.ocp.OCP``); docstrings may name it where users import it from
    (``ocp_learn.OCP``).  The name is imported and its defining module and
    qualified name are looked up instead.
    """
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    mod, cls = node.get("py:module"), node.get("py:class")
    candidates = [target]
    if mod:
        candidates = ([f"{mod}.{cls}.{target}"] if cls else []) + [f"{mod}.{target}", target]
    domain = env.get_domain("py")
    if node["refdoc"] == "api" and not mod:
        # The summary lines of the API page come from docstrings whose short references
        # (``:func:`load```) were written in the module of the object; the page has no
        # current module, so a name is resolved where it is unique in the package.
        ends = [n for n in domain.objects if n.endswith("." + target)
                and domain.objects[n].objtype != "module"]
        if len(ends) == 1:
            candidates = ends
    for cand in candidates:
        if cand != target and cand in domain.objects:
            new = node.deepcopy()
            new["reftarget"] = cand
            return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], cand,
                                       new, contnode)
        obj = _lookup(cand)
        if obj is None:
            continue
        name = obj.__name__ if isinstance(obj, type(sys)) else _canonical_name(obj)
        if name is not None and name in domain.objects:
            new = node.deepcopy()
            new["reftarget"] = name
            return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], name,
                                       new, contnode)
    return None


def _skip_reexport(app, what, name, obj, skip, options):
    """A module's ``__all__`` may re-export an object of another ``ocp_learn`` module; the
    API pages document each object once, where it is defined, so it is left out here."""
    if what != "module" or skip:
        return None
    documenting = app.env.temp_data.get("autodoc:module")
    defined = getattr(obj, "__module__", None)
    if (isinstance(defined, str) and documenting and defined != documenting
            and defined.startswith("ocp_learn.") and (callable(obj) or isinstance(obj, type))):
        return True
    return None


def _prefer_modules():
    """Let the reference's recursive autosummary document a module whose package
    exports a function of the same name (``ocp_learn.optim.lbfgs`` and the function
    ``lbfgs``): autosummary reads a dotted name as ``MODULE.ATTRIBUTE`` first and would
    document the function in place of the module; a name that is a module of this
    package is imported as that module."""
    import importlib
    import importlib.util

    from sphinx.ext import autosummary

    original = autosummary._import_by_name

    def import_by_name(name, grouped_exception=True):
        if name.startswith("ocp_learn."):
            try:
                found = importlib.util.find_spec(name) is not None
            except (ImportError, ValueError, AttributeError):
                found = False
            if found:
                return importlib.import_module(name), None, name
        return original(name, grouped_exception)

    autosummary._import_by_name = import_by_name


_prefer_modules()


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_routing)
    app.connect("autodoc-skip-member", _skip_reexport, priority=400)  # before the one above
    app.connect("missing-reference", _resolve_reexport)
