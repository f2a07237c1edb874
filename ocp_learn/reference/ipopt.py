"""IPOPT reference solves of small training problems, compared with ocp_learn's optimizers.

The NLP is the *same discrete objective* as the OCP (MATH B1, C1; built by
:mod:`.discrete`), unconstrained in ``theta``.  IPOPT uses CasADi's exact AD
Hessian for small problems (or its L-BFGS approximation), and stops at a
certified first-order point (scaled NLP error below ``tol``).  Started from
the same ``theta0``, ocp_learn's L-BFGS (and Gauss--Newton, where it exists)
should reach the same objective.
"""
from __future__ import annotations

import time

import casadi as ca
import numpy as np

from ..errors import check_choice, check_positive_float, check_positive_int
from ..protocols import GaussNewtonProblem, Problem
from .discrete import build_reference

__all__ = ["ipopt_solve", "compare_optimizers", "EXACT_HESSIAN_MAX_PARAMS"]

EXACT_HESSIAN_MAX_PARAMS = 300
"""``hessian="auto"`` uses the exact AD Hessian up to this many parameters."""


def ipopt_solve(ocp, theta0, *, batch=None, hessian="auto", tol=1e-12, max_iter=1000,
                mode="auto", reference=None):
    """Minimize ``ocp``'s discrete objective with IPOPT from ``theta0``.

    Parameters
    ----------
    ocp : OCP
        The problem (:class:`~ocp_learn.OCP`).
    theta0 : ndarray, shape (n_params,)
        The starting point.
    batch : index array, optional
        The samples (all by default).
    hessian : {"auto", "exact", "limited-memory"}
        IPOPT's ``hessian_approximation``; ``"auto"`` is exact up to
        :data:`EXACT_HESSIAN_MAX_PARAMS` parameters.
    tol : float
        IPOPT's ``tol`` (scaled NLP error).
    max_iter : int
        Most IPOPT iterations.
    mode : {"auto", "sx", "mx"}
        How the CasADi graph is built (see :func:`.discrete.build_reference`).
    reference : ReferenceProblem, optional
        A CasADi twin built before (built here by default).

    Returns
    -------
    dict
        ``x``, ``fun``, ``grad_norm`` (CasADi's gradient at ``x``), ``success``,
        ``status`` (IPOPT's return status), ``iterations``, ``seconds``, ``hessian``.
    """
    check_choice("hessian", hessian, {"auto", "exact", "limited-memory"})
    check_positive_float("tol", tol)
    max_iter = check_positive_int("max_iter", max_iter)
    theta0 = ocp.check_theta(theta0, "theta0")
    ref = build_reference(ocp, batch, mode) if reference is None else reference
    if hessian == "auto":
        hessian = "exact" if ocp.n_params <= EXACT_HESSIAN_MAX_PARAMS else "limited-memory"
    opts = {"ipopt.tol": tol, "ipopt.max_iter": max_iter, "ipopt.print_level": 0,
            "print_time": False, "ipopt.hessian_approximation": hessian,
            "ipopt.sb": "yes"}
    solver = ca.nlpsol("reference_ipopt", "ipopt", {"x": ref.theta, "f": ref.J}, opts)
    t0 = time.perf_counter()
    sol = solver(x0=theta0)
    secs = time.perf_counter() - t0
    st = solver.stats()
    x = np.asarray(sol["x"], dtype=np.float64).ravel()
    _, g = ref.value_and_gradient(x)
    return {"x": x, "fun": float(sol["f"]), "grad_norm": float(np.linalg.norm(g)),
            "success": bool(st.get("success", False)), "status": str(st.get("return_status")),
            "iterations": int(st.get("iter_count", -1)), "seconds": secs, "hessian": hessian}


def _ocp_optimizers():
    """ocp_learn's optimizers to compare: ``name -> (fn(ocp, theta0) -> OptimizeResult,
    the protocol the problem must follow)``."""
    from ..optim import lbfgs

    out = {"lbfgs": (lambda ocp, th0: lbfgs(ocp, th0, maxiter=5000, gtol=1e-11, ftol=1e-16,
                                            memory=20, progress=False), Problem)}
    try:
        from ..optim.gauss_newton import gauss_newton
    except ImportError:  # not written yet
        gauss_newton = None
    if gauss_newton is not None:
        def _gn(ocp, th0):
            return gauss_newton(ocp, th0, maxiter=300, gtol=1e-10, ftol=1e-16, cg_maxiter=200,
                                progress=False)
        out["gauss_newton"] = (_gn, GaussNewtonProblem)
    return out


def compare_optimizers(ocp, theta0, *, batch=None, optimizers=None, tol=1e-12):
    """IPOPT and ocp_learn's optimizers from the same ``theta0``.

    Parameters
    ----------
    ocp : OCP
        The problem (:class:`~ocp_learn.OCP`).
    theta0 : ndarray
        The common starting point.
    batch : index array, optional
        The samples (all by default).
    optimizers : dict, optional
        ``name -> fn(ocp, theta0) -> OptimizeResult``, or ``name -> (fn, protocol)`` for an
        optimizer that needs more than :class:`~ocp_learn.protocols.Problem` (it is skipped
        for a problem that does not follow ``protocol``); L-BFGS and Gauss--Newton by default.
    tol : float
        IPOPT's tolerance.

    Returns
    -------
    dict
        ``ipopt`` (see :func:`ipopt_solve`, without ``x``) and, per optimizer,
        ``fun``, ``grad_norm`` (ocp_learn's gradient at its optimum),
        ``grad_norm_casadi`` (CasADi's gradient there), ``objective_gap =
        |f - f_ipopt|``, ``relative_gap = gap / max(1, |f_ipopt|)``, ``nit``,
        ``success``, ``step_to_ipopt = |x - x_ipopt| / max(1, |x_ipopt|)``.
        Optimizers that fail with an exception report ``error``.
    """
    theta0 = ocp.check_theta(theta0, "theta0")
    ref = build_reference(ocp, batch)
    ip = ipopt_solve(ocp, theta0, batch=batch, tol=tol, reference=ref)
    out = {"ipopt": {k: v for k, v in ip.items() if k != "x"}, "n_params": int(ocp.n_params)}
    opts = _ocp_optimizers() if optimizers is None else optimizers
    for name, entry in opts.items():
        fn, needs = entry if isinstance(entry, tuple) else (entry, Problem)
        if not isinstance(ocp, needs):
            continue  # e.g. Gauss--Newton needs a residual structure the problem lacks
        try:
            t0 = time.perf_counter()
            res = fn(ocp, theta0.copy())
            secs = time.perf_counter() - t0
        except Exception as exc:  # reported, not hidden
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        x = np.asarray(res.x, dtype=np.float64)
        f, g = ocp.objective_and_gradient(x, batch)
        _, gr = ref.value_and_gradient(x)
        gap = abs(f - ip["fun"])
        out[name] = {"fun": float(f), "grad_norm": float(np.linalg.norm(g)),
                     "grad_norm_casadi": float(np.linalg.norm(gr)), "objective_gap": gap,
                     "relative_gap": gap / max(1.0, abs(ip["fun"])),
                     "step_to_ipopt": float(np.linalg.norm(x - ip["x"]) / max(1.0, np.linalg.norm(ip["x"]))),
                     "nit": int(res.get("nit", -1)), "success": bool(res.get("success", False)),
                     "seconds": secs}
    return out
