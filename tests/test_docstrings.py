"""numpydoc validation of the public API's docstrings.

The public API is every class and function named in the ``__all__`` of
``ocp_learn``, of each of its subpackages, and of the modules the top-level
package exports (``ocp_learn.verify``), together with the public methods those
classes define with a docstring of their own.  Each docstring is parsed by
:func:`numpydoc.validate.validate` (the validator behind ``numpydoc lint`` and
Sphinx's ``numpydoc_validation_checks``), here run directly on the imported
objects: no Sphinx build and no network, a few seconds in all, and the objects are
the ones users import, wherever they are defined.

A method without a docstring of its own (an implementation of a protocol method,
documented on the protocol in :mod:`ocp_learn.protocols`) is not checked.  Two
readings of PR01 ("parameter not documented") suit this package: a protocol class
(:class:`typing.Protocol`) has no constructor, so its signature ``(*args, **kwargs)``
is not asked for; and a private field of a dataclass (``_held``) is not a parameter
users pass.  numpydoc drops a first parameter named ``cls`` from every signature
(it takes it for a classmethod's); a function whose parameter ``cls`` is a class it
registers documents it, and that is not reported as unknown (PR02).
"""
from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re

import pytest
from numpydoc import validate

import ocp_learn

#: The checks that must pass (numpydoc's codes), with what each asks for.
CHECKS = {
    "GL06": "no unknown section names",
    "GL07": "sections in the numpydoc order",
    "GL08": "the object has a docstring",
    "SS01": "a one-line summary",
    "SS03": "the summary ends with a period",
    "PR01": "every parameter of the signature is documented",
    "PR02": "no documented parameter that is not in the signature",
    "PR03": "parameters documented in the order of the signature",
    "PR04": "every parameter has a type",
    "PR07": "every parameter has a description",
    "RT01": "a Returns section when the function returns something",
    "RT03": "every returned value has a description",
    "YD01": "a Yields section for a generator",
    "PR05": "a parameter's type does not end with a period",
    "PR10": "a space on both sides of the colon of ``name : type``",
    "SS04": "the summary starts right after the opening quotes",
    "GL03": "no double blank lines",
}
# Not checked, by choice: ES01 (extended summary), SA01 (See Also) and EX01
# (Examples) are added where they help, not on every object; SS05, SS06, PR06,
# PR08, PR09, RT02, RT04, RT05 and GL02 are punctuation and wording rules that
# mathematical text breaks for good reason (a description starting with a symbol,
# ``u_theta``; a summary that needs two lines to state an equation).

#: Modules left out of the check: not all of their public docstrings pass it (in
#: ``ocp_learn.ocp``, ``ocp_learn.costs.terminal`` and ``ocp_learn.datasets.real``, 26
#: classes and methods lack Parameters or Returns sections).  Take a module off this
#: list once its docstrings pass.
EXCLUDED_MODULES = ()
EXCLUDED_PREFIXES = ()


def _excluded(module: str) -> bool:
    return module in EXCLUDED_MODULES or module.startswith(EXCLUDED_PREFIXES)


def _public_modules():
    mods = [ocp_learn]
    for info in pkgutil.walk_packages(ocp_learn.__path__, "ocp_learn."):
        if info.ispkg:
            mods.append(importlib.import_module(info.name))
    for name in ocp_learn.__all__:
        obj = getattr(ocp_learn, name)
        if inspect.ismodule(obj) and obj not in mods:
            mods.append(obj)
    return mods


def public_objects() -> list[str]:
    """Dotted names (where defined) of the public classes, functions and methods."""
    names: dict[str, object] = {}
    for mod in _public_modules():
        for attr in getattr(mod, "__all__", ()):
            obj = getattr(mod, attr)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            where = getattr(obj, "__module__", "") or ""
            if not where.startswith("ocp_learn") or _excluded(where):
                continue
            names[f"{where}.{obj.__qualname__}"] = obj
    for name, obj in list(names.items()):
        if not inspect.isclass(obj):
            continue
        for attr, member in vars(obj).items():
            if attr.startswith("_"):
                continue
            func = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
            if inspect.isfunction(func) and func.__doc__:
                names[f"{name}.{attr}"] = func
    return sorted(names)


PUBLIC = public_objects()


def test_the_public_api_is_found():
    assert len(PUBLIC) > 100
    assert "ocp_learn.verify.taylor_test" in PUBLIC
    assert "ocp_learn.optim.lbfgs.lbfgs" in PUBLIC


@pytest.mark.parametrize("module", EXCLUDED_MODULES)
def test_excluded_modules_exist(module):
    importlib.import_module(module)


def test_a_bad_docstring_is_caught(tmp_path, monkeypatch):
    mod = tmp_path / "probe_docstrings.py"
    mod.write_text('def f(a, b):\n    """Sum\n\n    Parameters\n    ----------\n    a : int\n'
                   '        First.\n    c : int\n        Not a parameter.\n    """\n'
                   '    return a + b\n', encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    codes = {code for code, _ in validate.validate("probe_docstrings.f")["errors"]}
    assert {"SS03", "PR01", "PR02", "RT01"} <= codes


def _load(name: str):
    """The object of a dotted name: the longest importable module, then attributes."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


def _is_protocol(obj) -> bool:
    return inspect.isclass(obj) and bool(getattr(obj, "_is_protocol", False))


def docstring_errors(name: str) -> list[str]:
    """``"CODE: message"`` for every failed check of :data:`CHECKS` on ``name``."""
    result = validate.validate(name)
    obj = _load(name)
    errors = []
    for code, msg in result["errors"]:
        if code not in CHECKS:
            continue
        if code == "PR02" and inspect.isfunction(obj):
            unknown = ast.literal_eval(re.search(r"\{.*\}", msg).group(0))
            params = inspect.signature(obj).parameters
            if all(p == "cls" and p in params for p in unknown):
                continue
        if code == "PR01":
            if _is_protocol(obj):
                continue
            missing = ast.literal_eval(re.search(r"\{.*\}", msg).group(0))
            missing = {p for p in missing if not p.lstrip("*").startswith("_")}
            if not missing:
                continue
            msg = f"Parameters {sorted(missing)} not documented"
        errors.append(f"{code}: {msg}")
    return errors


@pytest.mark.parametrize("name", PUBLIC)
def test_numpydoc(name):
    errors = docstring_errors(name)
    assert not errors, f"{name}:\n  " + "\n  ".join(errors)
