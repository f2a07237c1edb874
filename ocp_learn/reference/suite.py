"""The reference suite behind ``ocp-learn verify``: every gradient and optimum against a witness.

Five parts, each a list of row dicts:

* ``gradients`` -- for each (problem, model, integrator, theta(t), strategy)
  the relative difference of ocp_learn's gradient to CasADi's AD of the same
  discrete objective (:func:`.discrete.compare_gradient`); strategies are read
  from ``ocp_learn.gradients.STRATEGIES`` (those that do not apply to an
  integrator are listed as ``n/a`` with the reason).  The continuous adjoint
  (optimize-then-discretize, MATH B3) differs from the discrete gradient by its
  discretization error: its rows give that relative error (``rel_grad_diff``,
  against CasADi, and ``rel_to_discrete_adjoint``, against ``store_all``), and
  ``continuous_adjoint`` summarizes them;
* ``continuous_adjoint`` -- min / median / max of the continuous adjoint's relative
  gradient error over the cases, per integrator and over all;
* ``potential`` -- the potential model's ``Phi``, ``grad``, ``d_t``,
  Laplacian and their vjp/jvp against CasADi's AD (MATH D1--D3, D6);
* ``optima`` -- IPOPT against ocp_learn's L-BFGS (and Gauss--Newton) from the
  same start (:func:`.ipopt.compare_optimizers`);
* ``analytic`` -- Riccati gaps with their observed order, Gaussian OT
  identities, the MFG single-agent check, the Gaussian OT-MFG trained against its
  closed-form optimum (:func:`.mfg_oracle.oracle_rows`) and the Hutchinson Laplacian
  against its exact mean and variance (:func:`.hutchinson.hutchinson_rows`), each with
  a negative control.
"""
from __future__ import annotations

import textwrap
import time
from typing import Any, Callable

import numpy as np

from ..gradients import STRATEGIES, get_strategy
from .discrete import build_reference, compare_gradient
from .suite_problems import INTEGRATORS, TIME_PARAMS, gradient_problems, optimum_problems

__all__ = ["GRAD_TOL", "OPT_TOL", "INTEGRATORS", "TIME_PARAMS", "APPROXIMATE_STRATEGIES",
           "gradient_problems", "strategy_variants", "run_gradients", "continuous_adjoint_summary",
           "run_potential", "run_optima", "run_analytic", "run_suite"]

GRAD_TOL = 1e-10
OPT_TOL = 1e-6
APPROXIMATE_STRATEGIES = {"continuous"}   # optimize-then-discretize (MATH B3)
MESSAGE_WIDTH = 160


def _message(text: str, width: int = MESSAGE_WIDTH) -> str:
    """The first line of ``text``, shortened at a word boundary (never mid-word) to ``width``."""
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return textwrap.shorten(line, width=width, placeholder=" ...")


def strategy_variants() -> dict[str, Any]:
    """The memory strategies of the gradient part.

    Returns
    -------
    dict
        ``label -> spec`` for every registered strategy (checkpointing with 2 checkpoints).
    """
    out = {}
    for name in STRATEGIES:
        spec = name
        try:
            get_strategy(name)
        except TypeError:
            spec = (name, 2)
        if name == "checkpoint":
            spec = ("checkpoint", 2)
        out[name if isinstance(spec, str) else f"{spec[0]}({spec[1]})"] = spec
    return out


def _status(rel, approximate):
    if approximate:
        return f"B3: {rel:.2e} vs discrete adjoint"
    return "ok" if rel <= GRAD_TOL else "FAIL"


def _rel(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def run_gradients(quick: bool = True, seed: int = 0, problems: dict | None = None,
                  time_params: dict | None = None) -> list[dict[str, Any]]:
    """Gradient rows (see the module docstring).

    Parameters
    ----------
    quick : bool
        Without the larger ``n = 200`` MX-map rows.
    seed : int
        Of the parameters.
    problems : dict, optional
        In the form of :func:`gradient_problems` (all by default).
    time_params : dict, optional
        ``label -> time_param`` (``TIME_PARAMS`` by default).

    Returns
    -------
    list of dict
        ``problem``, ``model``, ``integrator``, ``theta(t)``, ``strategy``,
        ``rel_grad_diff`` (to CasADi), ``rel_value_diff``, ``n_params``, ``casadi``, ``status``
        (``ok``, ``FAIL``, ``n/a: <reason>`` or, for the continuous adjoint,
        ``B3: <error> vs discrete adjoint``); continuous-adjoint rows add
        ``rel_to_discrete_adjoint`` (against the ``store_all`` gradient).
    """
    rows = []
    problems = gradient_problems() if problems is None else problems
    time_params = TIME_PARAMS if time_params is None else time_params
    strategies = strategy_variants()
    for pname, (mname, build, integrators) in problems.items():
        for integ in integrators:
            for tlabel, tp in time_params.items():
                base = build(integ, tp, "store_all")
                ref = build_reference(base)
                rng = np.random.default_rng(seed)
                theta = base.init_params(seed) + 0.2 * rng.standard_normal(base.n_params)
                for slabel, spec in strategies.items():
                    row = {"problem": pname, "model": mname, "integrator": integ,
                           "theta(t)": tlabel, "strategy": slabel}
                    try:
                        prob = build(integ, tp, spec)
                        r = compare_gradient(prob, theta, reference=ref)
                    except (TypeError, NotImplementedError, ValueError) as exc:
                        row.update(rel_grad_diff=None, status=f"n/a: {_message(exc)}")
                    else:
                        approx = slabel in APPROXIMATE_STRATEGIES
                        row.update(rel_grad_diff=r["rel_diff"], rel_value_diff=r["value_rel_diff"],
                                   n_params=r["n_params"], casadi=r["mode"],
                                   status=_status(r["rel_diff"], approx))
                        if approx:
                            g_discrete = base.objective_and_gradient(theta)[1]
                            g_cont = prob.objective_and_gradient(theta)[1]
                            row["rel_to_discrete_adjoint"] = _rel(g_cont, g_discrete)
                    rows.append(row)
    if not quick:   # larger batches through casadi's map (MX graph)
        for pname, (mname, build, _) in problems.items():
            prob = build("rk4", TIME_PARAMS["piecewise linear"], "store_all", n=200)
            rng = np.random.default_rng(seed + 1)
            theta = prob.init_params(seed) + 0.2 * rng.standard_normal(prob.n_params)
            r = compare_gradient(prob, theta, mode="mx")
            rows.append({"problem": pname + " [n=200, MX map]", "model": mname, "integrator": "rk4",
                         "theta(t)": "piecewise linear", "strategy": "store_all",
                         "rel_grad_diff": r["rel_diff"], "rel_value_diff": r["value_rel_diff"],
                         "n_params": r["n_params"], "casadi": r["mode"],
                         "status": _status(r["rel_diff"], False)})
    return rows


def continuous_adjoint_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Distribution of the continuous adjoint's relative gradient error (MATH B3).

    Parameters
    ----------
    rows : list of dict
        Gradient rows (:func:`run_gradients`).

    Returns
    -------
    list of dict
        One row per integrator and one for all cases: ``integrator``, ``cases``,
        ``min``, ``median``, ``max`` of ``rel_grad_diff`` over the continuous-adjoint rows,
        and ``worst case`` (problem, integrator, theta(t) of the maximum).
    """
    cont = [r for r in rows if r["strategy"] in APPROXIMATE_STRATEGIES
            and r.get("rel_grad_diff") is not None]
    out = []
    groups = sorted({r["integrator"] for r in cont})
    for label in groups + ["all"]:
        sel = [r for r in cont if label in ("all", r["integrator"])]
        if not sel:
            continue
        errs = np.array([r["rel_grad_diff"] for r in sel])
        worst = sel[int(np.argmax(errs))]
        out.append({"integrator": label, "cases": len(sel), "min": float(errs.min()),
                    "median": float(np.median(errs)), "max": float(errs.max()),
                    "worst case": f"{worst['problem']}, {worst['integrator']}, "
                                  f"{worst['theta(t)']}"})
    return out


def run_potential(seed: int = 0, quick: bool = True) -> list[dict[str, Any]]:
    """Potential-model rows: one per backend available, every derivative quantity.

    Parameters
    ----------
    seed : int
    quick : bool
        The numpy backend only (numba too otherwise).

    Returns
    -------
    list of dict
        The fields of :func:`.potential.compare_potential` plus ``model``, ``backend``,
        ``max``, ``status``.
    """
    from ..models.potential import PotentialResNet
    from .potential import compare_potential

    rows = []
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((9, 3))
    for backend in ("numpy",) if quick else ("numpy", "numba"):
        for M in (1, 2):
            m = PotentialResNet(3, width=6, n_layers=M, backend=backend)
            th = m.init_params(seed) + 0.3 * rng.standard_normal(m.n_params)
            try:
                r = compare_potential(m, x, 0.37, th, seed=seed)
            except ImportError as exc:  # pragma: no cover - numba missing
                rows.append({"model": f"PotentialResNet(M={M})", "backend": backend,
                             "status": f"n/a: {_message(exc)}"})
                continue
            worst = max(r.values())
            rows.append({"model": f"PotentialResNet(d=3, m=6, M={M})", "backend": backend, **r,
                         "max": worst, "status": "ok" if worst <= GRAD_TOL else "FAIL"})
    return rows


def run_optima(seed: int = 0) -> list[dict[str, Any]]:
    """IPOPT against ocp_learn's optimizers (:func:`.ipopt.compare_optimizers`).

    Parameters
    ----------
    seed : int
        Of the common start.

    Returns
    -------
    list of dict
        One row per (problem, optimizer).
    """
    from .ipopt import compare_optimizers

    rows = []
    for name, mk in optimum_problems().items():
        prob = mk()
        r = compare_optimizers(prob, prob.init_params(seed))
        ip = r["ipopt"]
        for opt, v in r.items():
            if opt in ("ipopt", "n_params"):
                continue
            row = {"problem": name, "n_params": r["n_params"], "optimizer": opt,
                   "ipopt_fun": ip["fun"], "ipopt_status": ip["status"],
                   "ipopt_grad_norm": ip["grad_norm"], "ipopt_hessian": ip["hessian"]}
            if "error" in v:
                row.update(status=f"error: {_message(v['error'])}")
            else:
                row.update(fun=v["fun"], objective_gap=v["objective_gap"],
                           relative_gap=v["relative_gap"], grad_norm=v["grad_norm"],
                           grad_norm_casadi=v["grad_norm_casadi"], nit=v["nit"],
                           step_to_ipopt=v["step_to_ipopt"],
                           status="ok" if v["relative_gap"] <= OPT_TOL else "different optimum")
            rows.append(row)
    return rows


def run_analytic(quick: bool = True) -> list[dict[str, Any]]:
    """Closed-form references: Riccati, Gaussian OT, the MFG single-agent check, the Gaussian
    OT-MFG oracle (:func:`.mfg_oracle.oracle_rows`) and the Hutchinson check
    (:func:`.hutchinson.hutchinson_rows`).

    Parameters
    ----------
    quick : bool
        Fewer Riccati grids and cases.

    Returns
    -------
    list of dict
        Rows with ``check``, ``case``, ``reference``, ``value``, ``status`` and the check's own
        figures; ``status`` is ``ok``/``FAIL``, or ``caught``/``NOT CAUGHT`` for negative
        controls (``improvable`` for the single-agent check).
    """
    import casadi as ca

    from . import analytic as an

    rows = []
    A = np.array([[0.0, 1.0], [-1.0, -0.2]])
    B = np.array([[0.0], [1.0]])
    x0 = np.array([1.0, 0.5])
    nts = (8, 16, 32) if quick else (8, 16, 32, 64)
    cases = [("euler", "piecewise_constant"), ("rk4", "piecewise_constant"),
             ("rk4", "piecewise_linear")]
    if not quick:
        cases += [("heun", "piecewise_constant"), ("heun", "piecewise_linear")]
    for integ, tp in cases:
        r = an.riccati_gap(A, B, np.eye(2), np.eye(1), x0, 2.0, nts=nts, integrator=integ,
                           time_param=tp)
        rows.append({"check": "LQ vs Riccati", "case": f"{integ}, u {tp.replace('_', ' ')}",
                     "reference": r["J_riccati"], "value": r["J_discrete"][-1],
                     "gaps": r["gap"], "observed order": r["orders"][-1], "status": "ok"})
    # Gaussian OT: closed form vs POT (if installed) and the map's defining identities
    rng = np.random.default_rng(0)
    d = 3
    L0, L1 = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    S0, S1 = L0 @ L0.T + 0.5 * np.eye(d), L1 @ L1.T + 0.5 * np.eye(d)
    m0, m1 = rng.standard_normal(d), rng.standard_normal(d)
    w2 = an.gaussian_w2(m0, S0, m1, S1, squared=True)
    M, b = an.gaussian_ot_map(m0, S0, m1, S1)
    push = np.linalg.norm(M @ S0 @ M - S1) / np.linalg.norm(S1)
    cost = float(np.sum((m1 - m0) ** 2) + np.trace((M - np.eye(d)) @ S0 @ (M - np.eye(d))))
    row = {"check": "Gaussian OT (d=3)", "case": "W2^2 closed form", "reference": w2,
           "value": cost, "pushforward residual": push,
           "map cost vs W2^2": abs(cost - w2) / w2, "min eig(M)": float(np.linalg.eigvalsh(M).min())}
    try:
        import ot
        w2_pot = float(ot.gaussian.bures_wasserstein_distance(m0, m1, S0, S1)) ** 2
        row["POT vs closed form"] = abs(w2_pot - w2) / w2
    except Exception:  # POT is optional (test extra)
        pass
    ok = push < 1e-10 and row["map cost vs W2^2"] < 1e-10 and row["min eig(M)"] > 0 and \
        row.get("POT vs closed form", 0.0) < 1e-8
    row["status"] = "ok" if ok else "FAIL"
    rows.append(row)
    # MFG single-agent check on an LQ problem with the exact value function
    d = 2
    Q = 0.5 * np.eye(d)
    P = an.riccati(np.zeros((d, d)), np.eye(d), Q, np.eye(d), 1.0)

    def phi(x, t):
        return 0.5 * np.sum((x @ P(t)) * x, 1)

    def run(x, t):
        return 0.5 * ca.mtimes(x.T, ca.mtimes(ca.DM(Q), x))

    def term(x):
        return 0.5 * ca.sumsqr(x)

    xs = np.array([[1.0, -0.5], [0.3, 0.8]])
    for label, scale in (("exact value function", 1.0), ("perturbed (0.7 grad Phi)", 0.7)):
        r = an.single_agent_check(phi, lambda x, t, s=scale: s * (x @ P(t)), xs, 1.0, 10, run, term)
        rows.append({"check": "MFG single-agent (LQ)", "case": label,
                     "reference": r["J_optimal"][0], "value": r["J_feedback"][0],
                     "improvement": r["max_improvement"], "tol": r["tol"],
                     "status": ("ok" if r["passed"] else "improvable") if scale == 1.0 else
                     ("caught" if not r["passed"] else "NOT CAUGHT")})
    rows += _oracle_rows(quick)
    return rows


def _oracle_rows(quick=True):
    """The closed-form MFG oracle (d = 100 too unless ``quick``) and the Hutchinson rows
    (``n/a`` where a part is missing)."""
    from .hutchinson import HUTCHINSON_CHECK, hutchinson_rows
    from .mfg_oracle import ORACLE_CHECK, oracle_rows

    rows = []
    for check, fn in ((ORACLE_CHECK, lambda: oracle_rows(full=not quick)),
                      (HUTCHINSON_CHECK, hutchinson_rows)):
        try:
            rows += fn()
        except ImportError as exc:  # pragma: no cover - numba missing
            rows.append({"check": check, "case": "-", "status": f"n/a: {_message(exc)}"})
    return rows


def run_suite(quick: bool = True, seed: int = 0,
              progress: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """All parts (see the module docstring).

    Parameters
    ----------
    quick : bool
        Small sizes (CI).
    seed : int
    progress : callable, optional
        ``progress(message)`` after each part.

    Returns
    -------
    dict
        The dict written to ``verify.json``: ``quick``, ``grad_tol``, ``opt_tol``, the parts
        ``gradients``, ``potential``, ``optima``, ``analytic``, ``continuous_adjoint``,
        ``seconds`` and ``summary`` (counts, worst figures, and the continuous adjoint's
        ``continuous_adjoint_cases`` and ``..._min/median/max_rel_err``).
    """
    out = {"quick": bool(quick), "grad_tol": GRAD_TOL, "opt_tol": OPT_TOL}
    t0 = time.perf_counter()
    for key, fn in (("gradients", lambda: run_gradients(quick, seed)),
                    ("potential", lambda: run_potential(seed, quick)),
                    ("optima", lambda: run_optima(seed)),
                    ("analytic", lambda: run_analytic(quick))):
        t = time.perf_counter()
        out[key] = fn()
        if progress:
            progress(f"{key}: {len(out[key])} rows in {time.perf_counter() - t:.1f} s")
    out["continuous_adjoint"] = continuous_adjoint_summary(out["gradients"])
    out["seconds"] = time.perf_counter() - t0
    g = [r for r in out["gradients"] if r.get("rel_grad_diff") is not None
         and r["strategy"] not in APPROXIMATE_STRATEGIES]
    cont = {r["integrator"]: r for r in out["continuous_adjoint"]}.get("all", {})
    out["summary"] = {
        "gradient_rows": len(out["gradients"]),
        "max_rel_grad_diff_exact_strategies": max((r["rel_grad_diff"] for r in g), default=None),
        "gradient_failures": sum(r["status"] == "FAIL" for r in out["gradients"]),
        "potential_max_rel_diff": max((r.get("max", 0.0) for r in out["potential"]), default=None),
        "ipopt_agreements": sum(r.get("status") == "ok" for r in out["optima"]),
        "ipopt_rows": len(out["optima"]),
        "analytic_failures": sum(r["status"] in ("FAIL", "NOT CAUGHT", "improvable")
                                 for r in out["analytic"]),
        "continuous_adjoint_cases": cont.get("cases", 0),
        "continuous_adjoint_min_rel_err": cont.get("min"),
        "continuous_adjoint_median_rel_err": cont.get("median"),
        "continuous_adjoint_max_rel_err": cont.get("max"),
    }
    return out
