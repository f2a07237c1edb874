"""Sphinx configuration of the ocp_learn documentation.

Build (warnings are errors, as in CI)::

    pip install -e ".[docs]"
    sphinx-build -W --keep-going -j 1 -b html docs docs/_build/html

The gallery runs ``examples/plot_*.py`` (several minutes); for a quick build of the
other pages set ``OCP_LEARN_DOCS_NO_GALLERY=1``.  Every cross-reference must
resolve (``nitpicky``); links to Python, NumPy, SciPy, matplotlib and scikit-learn
use their websites' inventories, or the copies in ``_intersphinx/`` offline.

Two pages are generated at build time so that they never go stale:
``_generated/cli.rst`` from the ``ocp-learn`` argument parser, and
``_generated/benchmarks.rst`` from the markdown tables in
``benchmarks/results/`` (included with myst-parser).
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


BENCHMARKS = [
    ("core", "Objective and gradient of the core problem",
     "``python -m benchmarks.bench_core``"),
    ("memory", "Gradient strategies: memory (exact ledger and measured) and time",
     "``python -m benchmarks.bench_memory``"),
    ("integrators", "Integrators: accuracy against cost",
     "``python -m benchmarks.bench_integrators``"),
    ("classifier_optimizers", "Optimizers on the classifier (L-BFGS against Gauss--Newton--CG)",
     "``python -m benchmarks.bench_classifier``"),
    ("classifier_robustness", "Viscous against deterministic classifier under input noise",
     "``python -m benchmarks.bench_classifier``"),
    ("potential", "Potential-model kernels: numpy against numba",
     "``python -m benchmarks.bench_potential``"),
    ("potential_phi_vjp", "Value-only pullback of Phi against the full derivative adjoint",
     "``python -m benchmarks.bench_potential --dims 100 2 --widths 16 32 --n 4232 --ops phi_vjp "
     "vjp_phi --repeat 5 --name potential_phi_vjp``"),
    ("keep_pairs", "L-BFGS on redrawn samples: restarted against correction pairs kept",
     "``python -m benchmarks.bench_keep_pairs --n 512 --iters 100 --seeds 0 1``"),
    ("kernels_fused_vs_blas", "Fused per-sample kernels against the batched-GEMM program",
     "``python -m benchmarks.bench_fused_vs_blas``"),
    ("kernels_grid", "CNF objective + gradient against the PyTorch peers, n = 1024, one thread",
     "``python -m benchmarks.bench_kernels --ns 1024 --threads 1 --no-compile --name kernels_grid``"),
    ("kernels_grid_m128_fused", "The grid's m = 128 cells on the fused kernels (the default)",
     "``python -m benchmarks.bench_kernels --ns 1024 --widths 128 --threads 1 --dtypes float64 "
     "--impls ocp_numba_fused torch_otflow --no-compile --name kernels_grid_m128_fused``"),
    ("kernels_inner_blas", "m = 128 with BLAS inside the fused kernels (d >= 16)",
     "``python -m benchmarks.bench_kernels --ns 1024 --dims 8 16 64 --widths 128 --threads 1 "
     "--dtypes float64 --impls ocp_numba_fused torch_otflow --no-compile --name kernels_inner_blas``"),
    ("kernels_float32", "float32 kernels (the Jacobian path) against float64 and torch",
     "``python -m benchmarks.bench_kernels --ns 4096 --dims 2 --widths 32 --threads 1 "
     "--impls ocp_numba_fused torch_otflow --no-compile --name kernels_float32``"),
    ("trace_path", "Exact trace by Jacobians or by Gram matrices (high dimension)",
     "``python -m benchmarks.bench_trace_path``"),
    ("gpu", "GPU (CuPy, numba-cuda) against numba on the CPU, one H200",
     "``OUT=DIR bash benchmarks/gpu_check.sh`` on a GPU machine"),
    ("gpu_numba_cuda", "GPU rerun with the numba-cuda activation kernel",
     "``python -m benchmarks.bench_gpu --sizes 65536 1048576 --widths 32``"),
    ("mfg_table_full", "Potential MFGs (article Table 1): OT and crowd motion at d = 2, 10, 50, 100 "
     "on the full MATH F schedule",
     "``mpiexec -n 2 ocp-learn mfg --problem ot|crowd --dim D --out DIR`` for each cell, then "
     "``python -m benchmarks.bench_mfg --only collect --from DIR ... --tag _full``"),
    ("flows_eval", "Trained flows on a million fresh test samples (NLL with its standard error)",
     "``python -m benchmarks.bench_flow_eval --run LABEL DATA DIM WIDTH LAYERS THETA``"),
    ("flows_eval_gmm16", "The d = 16 mixture within 0.20 nats (input map, 16 RK4 steps)",
     "``ocp-learn flow --data gmm --dim 16 --scale 0.5477 --center 2048 --nt 16 --keep-pairs "
     "--resample-every 50|25 --n 2048|8192 ...``, then ``python -m benchmarks.bench_flow_eval "
     "--run gmm16 gmm 16 32 1 DIR/theta.npy --name flows_eval_gmm16``"),
]


def generate_benchmark_tables():
    """``_generated/benchmarks.rst``: every table in ``benchmarks/results/*.md``.

    Known tables come first, in the order of :data:`BENCHMARKS`; any other
    result file is appended, so new benchmarks appear without editing the docs.
    """
    res = os.path.join(ROOT, "benchmarks", "results")
    # INDEX.md lists the result files with links relative to that folder: it is the
    # folder's own table of contents, not a result, and is left out here.
    files = (sorted(f[:-3] for f in os.listdir(res) if f.endswith(".md") and f != "INDEX.md")
             if os.path.isdir(res) else [])
    known = {k: (t, c) for k, t, c in BENCHMARKS}
    order = [k for k, _, _ in BENCHMARKS if k in files] + [f for f in files if f not in known]
    out = [".. This file is generated by docs/conf.py from benchmarks/results/*.md; do not edit.", ""]
    if not order:
        out += ["No benchmark results are present in ``benchmarks/results/``.", ""]
    for key in order:
        title, cmd = known.get(key, (key.replace("_", " ").capitalize(), "see ``benchmarks/``"))
        out += [title, "~" * len(title), "",
                f"From ``benchmarks/results/{key}.md`` (regenerate with {cmd}).", "",
                f".. include:: /../benchmarks/results/{key}.md", "   :parser: myst_parser.sphinx_", ""]
        png = os.path.join(res, key + ".png")
        if os.path.exists(png):
            out += [f".. image:: /../benchmarks/results/{key}.png", f"   :alt: {title}", ""]
    _write_if_changed(os.path.join(HERE, "_generated", "benchmarks.rst"), "\n".join(out))


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
    """The object named by the dotted ``path`` (a module, then attributes), or None."""
    import importlib

    parts = path.split(".")
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
    for cand in candidates:
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


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_routing)
    app.connect("autodoc-skip-member", _skip_reexport, priority=400)  # before the one above
    app.connect("missing-reference", _resolve_reexport)
