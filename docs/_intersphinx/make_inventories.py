"""Write the offline intersphinx inventories ``docs/_intersphinx/*.inv``.

``docs/conf.py`` links to Python, NumPy, SciPy, matplotlib and scikit-learn
with :mod:`sphinx.ext.intersphinx`.  Each project's ``objects.inv`` is read
from its website first; where the website cannot be reached (a machine
without network access), the small inventory written here is read instead,
so that the build still resolves every cross-reference.  The links in the
pages point to the websites either way.

The inventories list the external objects the documentation refers to, at
the addresses the projects' documentation uses.  A new reference to an
object that is not listed here builds wherever the websites are reachable;
to build it offline too, add the object to ``OBJECTS`` below and run::

    python docs/_intersphinx/make_inventories.py
"""
from __future__ import annotations

import os
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def _py(kind, names, page):
    return [(n, kind, page) for n in names]


#: project -> (title, [(name, domain:role, uri)]); ``$`` in a uri stands for the name.
OBJECTS = {
    "python": ("Python", [
        *_py("py:function", ["len", "print", "isinstance"], "library/functions.html#$"),
        *_py("py:class", ["int", "float", "str", "bool", "dict", "list", "tuple", "object",
                          "bytes", "type", "slice", "range"], "library/functions.html#$"),
        *_py("py:data", ["None", "True", "False", "Ellipsis"], "library/constants.html#$"),
        *_py("py:exception", ["Exception", "ValueError", "TypeError", "KeyError", "RuntimeError",
                              "ArithmeticError", "FloatingPointError", "FileNotFoundError",
                              "FileExistsError", "OSError", "ImportError", "NotImplementedError",
                              "Warning", "RuntimeWarning", "UserWarning"],
             "library/exceptions.html#$"),
        ("os.replace", "py:function", "library/os.html#$"),
        ("os.fsync", "py:function", "library/os.html#$"),
        ("os.cpu_count", "py:function", "library/os.html#$"),
        ("json.dumps", "py:function", "library/json.html#$"),
        ("json.loads", "py:function", "library/json.html#$"),
        ("json.dump", "py:function", "library/json.html#$"),
        ("json.load", "py:function", "library/json.html#$"),
        ("argparse.ArgumentParser", "py:class", "library/argparse.html#$"),
        ("argparse.ArgumentDefaultsHelpFormatter", "py:class", "library/argparse.html#$"),
        ("argparse.Namespace", "py:class", "library/argparse.html#$"),
        ("pathlib.Path", "py:class", "library/pathlib.html#$"),
        ("typing.Protocol", "py:class", "library/typing.html#$"),
        ("typing.runtime_checkable", "py:function", "library/typing.html#$"),
        ("dataclasses.dataclass", "py:function", "library/dataclasses.html#$"),
        ("warnings.warn", "py:function", "library/warnings.html#$"),
        ("multiprocessing", "py:module", "library/multiprocessing.html#module-$"),
        ("concurrent.futures", "py:module", "library/concurrent.futures.html#module-$"),
    ]),
    "numpy": ("NumPy", [
        *_py("py:class", ["numpy.ndarray", "numpy.dtype"], "reference/generated/$.html#$"),
        *_py("py:function", ["numpy.save", "numpy.load", "numpy.savez", "numpy.savez_compressed",
                             "numpy.asarray", "numpy.einsum", "numpy.isfinite", "numpy.allclose"],
             "reference/generated/$.html#$"),
        ("numpy.random.Generator", "py:class", "reference/random/generator.html#$"),
        ("numpy.random.default_rng", "py:function", "reference/random/generator.html#$"),
        *_py("py:class", ["numpy.float32", "numpy.float64"], "reference/arrays.scalars.html#$"),
    ]),
    "scipy": ("SciPy", [
        *_py("py:class", ["scipy.optimize.OptimizeResult", "scipy.sparse.linalg.LinearOperator"],
             "reference/generated/$.html#$"),
        *_py("py:function", ["scipy.optimize.minimize", "scipy.optimize.brentq",
                             "scipy.sparse.linalg.cg", "scipy.special.logsumexp"],
             "reference/generated/$.html#$"),
    ]),
    "matplotlib": ("Matplotlib", [
        *_py("py:class", ["matplotlib.axes.Axes", "matplotlib.figure.Figure"],
             "api/_as_gen/$.html#$"),
        *_py("py:function", ["matplotlib.pyplot.subplots", "matplotlib.pyplot.savefig"],
             "api/_as_gen/$.html#$"),
    ]),
    "sklearn": ("scikit-learn", [
        *_py("py:class", ["sklearn.base.BaseEstimator", "sklearn.base.ClassifierMixin",
                          "sklearn.pipeline.Pipeline"], "modules/generated/$.html#$"),
        *_py("py:function", ["sklearn.model_selection.cross_val_score"],
             "modules/generated/$.html#$"),
        ("sklearn.datasets", "py:module", "api/sklearn.datasets.html#module-$"),
    ]),
}


def inventory(title: str, objects: list[tuple[str, str, str]]) -> bytes:
    """The bytes of a Sphinx ``objects.inv`` (version 2) listing ``objects``."""
    head = (f"# Sphinx inventory version 2\n# Project: {title}\n# Version: \n"
            "# The remainder of this file is compressed using zlib.\n").encode()
    lines = "".join(f"{name} {role} 1 {uri.replace('$', name)} -\n"
                    for name, role, uri in sorted(objects))
    return head + zlib.compress(lines.encode())


def main() -> None:
    """Write ``<project>.inv`` beside this file for every project of :data:`OBJECTS`."""
    for key, (title, objects) in OBJECTS.items():
        with open(os.path.join(HERE, f"{key}.inv"), "wb") as fh:
            fh.write(inventory(title, objects))


if __name__ == "__main__":
    main()
