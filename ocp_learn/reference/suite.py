"""The reference suite behind ``ocp-learn verify``: every gradient and optimum against a witness.

Five parts, each a list of row dicts:

* ``gradients`` -- for each (problem, model, integrator, theta(t), strategy)
  the relative difference of ocp_learn's gradient to CasADi's AD of the same
  discrete objective (:func:`.discrete.compare_gradient`); strategies are read
  from :data:`ocp_learn.gradients.STRATEGIES` (those that do not apply to an
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
from typing import Any

import numpy as np

from ..costs import KineticEnergy, LinearHeadLoss, QuadraticState, Tikhonov, TimeSmoothness
from ..gradients import STRATEGIES, get_strategy
from ..models import LinearModel, SingleLayerNet
from ..models.controlled_linear import ControlEnergy, ControlledLinearModel
from ..ocp import OCP
from .discrete import build_reference, compare_gradient

__all__ = ["GRAD_TOL", "OPT_TOL", "INTEGRATORS", "TIME_PARAMS", "APPROXIMATE_STRATEGIES",
           "gradient_problems", "strategy_variants", "run_gradients", "continuous_adjoint_summary",
           "run_potential", "run_optima", "run_analytic", "run_suite"]

GRAD_TOL = 1e-10
OPT_TOL = 1e-6
INTEGRATORS = ("euler", "heun", "rk4")
TIME_PARAMS = {"constant": None, "piecewise constant": ("piecewise_constant", 2),
               "piecewise linear": ("piecewise_linear", 3)}
APPROXIMATE_STRATEGIES = {"continuous"}   # optimize-then-discretize (MATH B3)
MESSAGE_WIDTH = 160


def _message(text: str, width: int = MESSAGE_WIDTH) -> str:
    """The first line of ``text``, shortened at a word boundary (never mid-word) to ``width``."""
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return textwrap.shorten(line, width=width, placeholder=" ...")


def _classifier(integrator, tp, strategy, n=12, d=3, seed=0):
    rng = np.random.default_rng(seed)
    m = SingleLayerNet(d, width=5)
    x = rng.standard_normal((n, d))
    y = rng.integers(0, 3, n)
    return OCP(m, x, LinearHeadLoss(y, d, "softmax"), T=1.3, nt=5, integrator=integrator,
               time_param=tp, running=[KineticEnergy(m, 0.5)],
               regularizers=[Tikhonov(1e-2), TimeSmoothness(1e-2)], strategy=strategy)


def _regression(integrator, tp, strategy, n=12, d=3, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = np.stack([np.sin(x[:, 0]), x[:, 1] * x[:, 2]], 1)
    return OCP(LinearModel(d), x, LinearHeadLoss(y, d, "squares"), T=1.0, nt=5,
               integrator=integrator, time_param=tp, running=[QuadraticState(0.3 * np.eye(d))],
               regularizers=[Tikhonov(1e-2)], strategy=strategy)


def _logistic(integrator, tp, strategy, n=12, d=2, seed=2):
    rng = np.random.default_rng(seed)
    m = SingleLayerNet(d, width=4)
    x = rng.standard_normal((n, d))
    y = (np.sum(x * x, 1) > 1.0).astype(int)
    return OCP(m, x, LinearHeadLoss(y, d, "logistic"), T=1.0, nt=4, integrator=integrator,
               time_param=tp, regularizers=[TimeSmoothness(1e-1)], strategy=strategy)


def _lq(integrator, tp, strategy, n=3, seed=3):
    rng = np.random.default_rng(seed)
    A = np.array([[0.0, 1.0], [-1.0, -0.2]])
    B = np.array([[0.0], [1.0]])
    return OCP(ControlledLinearModel(A, B), rng.standard_normal((n, 2)),
               LinearHeadLoss(np.zeros((n, 2)), 2, "squares", fit_head=False), T=2.0, nt=6,
               integrator=integrator, time_param=tp,
               running=[QuadraticState(np.eye(2)), ControlEnergy(np.eye(1))], strategy=strategy)


def _otflow(integrator, tp, strategy, n=8, d=2, seed=4, backend="numpy"):
    from ..models.potential import PotentialResNet
    from ..problems.potential_flow import PotentialFlowField, PotentialTerminal

    rng = np.random.default_rng(seed)
    pot = PotentialResNet(d, width=5, n_layers=2, backend=backend)
    field = PotentialFlowField(pot, a1=1.0, hjb=True)
    term = PotentialTerminal(field, "nll", weights={"L": 10.0, "G": 1.0, "R": 5.0})
    return OCP(field, rng.standard_normal((n, d)), term, T=1.0, nt=4, integrator=integrator,
               time_param=tp, regularizers=[Tikhonov(1e-2)], strategy=strategy)


def _crowd(integrator, tp, strategy, n=6, d=3, seed=6):
    """Crowd-motion MFG: obstacle and entropy terms, log rho_0, KL terminal with its HJB penalty."""
    from ..problems.mfg import mfg_preset

    p = mfg_preset("crowd", d, n_samples=n, backend="numpy", seed=seed)
    return OCP(p.field, p.x0, p.terminal, T=1.0, nt=p.nt, integrator=integrator, time_param=tp,
               regularizers=[Tikhonov(1e-2)], strategy=strategy)


def _hamiltonian(integrator, tp, strategy, n=12, d=2, seed=5):
    from ..models.hamiltonian import HamiltonianNet

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = (x[:, 0] * x[:, 1] > 0).astype(int)
    return OCP(HamiltonianNet(d), x, LinearHeadLoss(y, 2 * d, "softmax"), T=1.0, nt=5,
               integrator=integrator, time_param=tp, regularizers=[Tikhonov(1e-2)],
               strategy=strategy)


def gradient_problems():
    """``name -> (model label, builder(integrator, time_param, strategy, n=...), integrators)``."""
    probs = {"classifier (softmax, kinetic energy)": ("SingleLayerNet", _classifier, INTEGRATORS),
             "classifier (logistic)": ("SingleLayerNet", _logistic, INTEGRATORS),
             "regression (squares, quadratic state)": ("LinearModel", _regression, INTEGRATORS),
             "linear-quadratic control": ("ControlledLinearModel", _lq, INTEGRATORS)}
    try:
        import ocp_learn.problems.potential_flow
        probs["OT-Flow (NLL, transport, HJB; exact Laplacian)"] = ("PotentialResNet", _otflow,
                                                                   INTEGRATORS)
        probs["crowd-motion MFG (obstacle, entropy, KL, terminal HJB)"] = ("PotentialResNet",
                                                                          _crowd, INTEGRATORS)
    except ImportError:  # pragma: no cover - optional family
        pass
    try:
        import ocp_learn.models.hamiltonian  # noqa: F401
        from ..integrators import INTEGRATORS as _REG
        integ = INTEGRATORS + (("leapfrog",) if "leapfrog" in _REG else ())
        probs["Hamiltonian classifier (A4)"] = ("HamiltonianNet", _hamiltonian, integ)
    except ImportError:  # pragma: no cover - optional family
        pass
    return probs


def strategy_variants():
    """``label -> spec`` for every registered strategy (checkpointing with 2 checkpoints)."""
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


def run_gradients(quick=True, seed=0, problems=None, time_params=None):
    """Gradient rows (see module docstring)."""
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


def run_potential(seed=0, quick=True):
    """Potential-model rows: one per backend available, every derivative quantity."""
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


def _opt_problems():
    from ..problems.classification import NeuralODEClassifier
    from .analytic import lq_problem

    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 2))
    y = (np.sum(x ** 2, 1) > 1.2).astype(int)
    flip = rng.random(16) < 0.2
    y[flip] = 1 - y[flip]
    yr = np.sin(x[:, 0]) + 0.5 * x[:, 1]
    A = np.array([[0.0, 1.0], [-1.0, -0.2]])
    B = np.array([[0.0], [1.0]])
    return {
        "LQ control (RK4, 8 steps)": lambda: lq_problem(A, B, np.eye(2), np.eye(1),
                                                        np.array([[1.0, 0.5]]), 2.0, 8),
        "tiny classifier (logistic, m=3, RK4)": lambda: NeuralODEClassifier(
            x, y, loss="logistic", width=3, nt=4, integrator="rk4", tikhonov=1e-2),
        "tiny regression (linear ODE, Heun)": lambda: NeuralODEClassifier(
            x, yr, loss="squares", model=LinearModel(2), nt=4, integrator="heun", tikhonov=1e-2),
    }


def run_optima(seed=0):
    """IPOPT vs ocp_learn's optimizers rows."""
    from .ipopt import compare_optimizers

    rows = []
    for name, mk in _opt_problems().items():
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


def run_analytic(quick=True):
    """Riccati, Gaussian OT and single-agent rows."""
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
    rows += _oracle_rows()
    return rows


def _oracle_rows():
    """The closed-form MFG oracle and the Hutchinson rows (``n/a`` where a part is missing)."""
    from .hutchinson import HUTCHINSON_CHECK, hutchinson_rows
    from .mfg_oracle import ORACLE_CHECK, oracle_rows

    rows = []
    for check, fn in ((ORACLE_CHECK, oracle_rows),
                      (HUTCHINSON_CHECK, hutchinson_rows)):
        try:
            rows += fn()
        except ImportError as exc:  # pragma: no cover - numba missing
            rows.append({"check": check, "case": "-", "status": f"n/a: {_message(exc)}"})
    return rows


def run_suite(quick=True, seed=0, progress=None):
    """All parts (module docstring); returns the dict written to ``verify.json``."""
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
