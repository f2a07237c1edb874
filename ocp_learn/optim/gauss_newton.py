"""Gauss--Newton--CG: generalized Gauss--Newton with inexact CG and damping (MATH G1).

For ``J(theta) = mean_i l(r_i(theta)) + R(theta)`` with convex ``l``, each
iteration solves the damped Gauss--Newton system

    ``(G + lambda I) d = -grad J``,   ``G = J_r^T (d^2 l) J_r + R''``           (G1)

inexactly by conjugate gradients (matrix-free: every product ``G v`` is one
tangent and one adjoint sweep), then takes ``theta + alpha d`` with an Armijo
backtracking line search on ``J``.  ``lambda`` follows the
Levenberg--Marquardt rule on the ratio ``rho`` of actual to predicted
reduction (``rho > 3/4``: ``lambda *= 2/3``; ``rho < 1/4``: ``lambda *= 3/2``).
"""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from ..errors import NonFiniteError, check_nonneg_int, check_positive_float, check_positive_int
from ..ledger import Ledger
from .checkpoint import resume_from, save_checkpoint
from .history import History, Objective, count_sweeps, make_result

__all__ = ["gauss_newton", "conjugate_gradient"]


def conjugate_gradient(matvec, b, *, rtol=1e-2, maxiter=20, shift=0.0):
    """Solve ``(A + shift I) x = b`` for symmetric positive semidefinite ``A`` by CG from ``x = 0``.

    Stops when ``|r| <= rtol |b|``, after ``maxiter`` products, or on
    non-positive curvature (then returns the last iterate, or ``b`` scaled if
    that happens at the first step).

    Returns
    -------
    x : ndarray
    info : dict
        ``iterations``, ``residual`` (relative), ``xAx`` (``x^T A x`` without
        the shift, used for the predicted reduction), ``negative_curvature``.
    """
    x = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    rr = float(r @ r)
    bnorm = np.sqrt(rr)
    info = {"iterations": 0, "residual": 1.0, "xAx": 0.0, "negative_curvature": False}
    if bnorm == 0.0:
        info["residual"] = 0.0
        return x, info
    Ax = np.zeros_like(b)
    for it in range(maxiter):
        Ap = matvec(p)
        info["iterations"] = it + 1
        pAp = float(p @ Ap) + shift * float(p @ p)
        if pAp <= 0.0 or not np.isfinite(pAp):
            info["negative_curvature"] = True
            if it == 0:
                x = b.copy()
                Ax = Ap
            break
        a = rr / pAp
        x += a * p
        Ax += a * Ap
        r -= a * (Ap + shift * p)
        rr_new = float(r @ r)
        info["residual"] = np.sqrt(rr_new) / bnorm
        if info["residual"] <= rtol:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    info["xAx"] = float(x @ Ax)
    return x, info


def gauss_newton(problem, theta0=None, *, maxiter=50, gtol=1e-6, ftol=1e-12, cg_maxiter=20,
                 cg_rtol=None, damping=1e-3, min_damping=1e-10, line_search=True, c1=1e-4,
                 max_backtracks=20, batch=None, progress=True, callback=None, seed=0,
                 checkpoint=None, checkpoint_every=1, resume=False):
    """Minimize ``problem``'s objective by Gauss--Newton--CG (MATH G1).

    Parameters
    ----------
    problem : object
        Provides ``gauss_newton_operator(theta, batch)`` (returning an object
        with ``value``, ``gradient``, ``matvec(v)`` and ``ledger``, e.g.
        :class:`~ocp_learn.problems.NeuralODEClassifier`), ``objective(theta,
        batch)``, ``objective_and_gradient(theta, batch)``, ``init_params(seed)``
        and ``n_params``.
    theta0 : ndarray, optional
        Start; ``problem.init_params(seed)`` by default.
    maxiter : int
        Outer (Gauss--Newton) iterations.
    gtol : float
        Stop when ``|grad J| <= gtol``.
    ftol : float
        Stop when an accepted step reduces ``J`` by less than ``ftol max(1, |J|)``.
    cg_maxiter : int
        Products ``G v`` per CG solve at most.
    cg_rtol : float, optional
        CG relative residual; by default the forcing term
        ``min(0.5, sqrt(|grad J|))`` (Eisenstat--Walker style: loose far from a
        stationary point, tight near it).
    damping : float
        Initial Levenberg--Marquardt shift ``lambda``.
    min_damping : float
        Lower bound of ``lambda``.
    line_search : bool
        Armijo backtracking on the step (``alpha`` halved up to
        ``max_backtracks`` times); without it a step that does not decrease
        ``J`` is rejected and ``lambda`` increased tenfold.
    c1 : float
        Armijo constant.
    batch : index array, optional
        Fixed training rows (full batch by default).
    progress : bool
        tqdm progress bar.
    callback : callable, optional
        ``callback(iteration, theta, f, g)``; returning True stops the run.
    checkpoint : str, optional
        File to save the state to every ``checkpoint_every`` iterations
        (atomic write, :mod:`ocp_learn.optim.checkpoint`).
    resume : bool
        Continue from ``checkpoint`` if the file exists; the resumed run's
        iterates are bitwise those of an uninterrupted run.

    Returns
    -------
    scipy.optimize.OptimizeResult
        As :func:`~ocp_learn.optim.lbfgs`, plus ``n_products`` (GGN
        products), ``cg_iterations``, ``sweeps`` (full-horizon forward,
        tangent and adjoint passes) and ``damping``.  ``history`` has the
        columns ``sweeps`` and ``damping``.  A trial point whose objective is
        not finite (e.g. the ODE solution overflowed) counts as a failed
        Armijo test (the line search backtracks); three consecutive rejected
        steps that met non-finite values, or a non-finite gradient at an
        accepted iterate, stop the run with ``success=False``, a message
        naming the cause, and ``x`` the last finite iterate.
    """
    maxiter = check_positive_int("maxiter", maxiter)
    check_positive_float("gtol", gtol, allow_zero=True)
    check_positive_float("ftol", ftol, allow_zero=True)
    cg_maxiter = check_positive_int("cg_maxiter", cg_maxiter)
    if cg_rtol is not None:
        check_positive_float("cg_rtol", cg_rtol)
    lam = check_positive_float("damping", damping, allow_zero=True)
    min_damping = check_positive_float("min_damping", min_damping, allow_zero=True)
    checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every)
    c1 = check_positive_float("c1", c1)
    if not c1 < 1.0:
        raise ValueError(f"c1 must lie in (0, 1) (Armijo constant), got {c1}")
    max_backtracks = check_nonneg_int("max_backtracks", max_backtracks)
    if not hasattr(problem, "gauss_newton_operator"):
        raise TypeError(f"problem must provide gauss_newton_operator(theta, batch), "
                        f"got {type(problem).__name__}")
    if theta0 is None:
        x = problem.init_params(seed)
    elif hasattr(problem, "check_theta"):
        x = problem.check_theta(theta0, "theta0").copy()
    else:
        x = np.array(theta0, dtype=np.float64)
    obj = Objective(problem, batch)
    ledger = Ledger()
    hist = History()
    state = {"it": 0, "n_products": 0, "cg_iterations": 0, "nfev": 0, "message": None}
    restored = resume_from(checkpoint, resume, "gauss-newton-cg", np.size(x))
    if restored is not None:
        arrays, meta, hist = restored
        x = arrays["x"]
        lam = float(meta["damping"])
        for k in ("it", "n_products", "cg_iterations", "nfev"):
            state[k] = int(meta[k])
        for k, v in meta["ledger"].items():
            setattr(ledger, k, v)
        state["message"] = meta.get("message")

    def save():
        save_checkpoint(checkpoint, {"x": x},
                        {"method": "gauss-newton-cg", "n_params": int(np.size(x)), "damping": lam,
                         "history": hist.as_dict(), "ledger": ledger.as_dict(),
                         "message": None if state["message"] == "stopped by callback"
                         else state["message"],
                         **{k: state[k] for k in ("it", "n_products", "cg_iterations", "nfev")}})

    def sweeps():
        return count_sweeps(ledger, problem)

    bar = tqdm(total=maxiter, initial=state["it"], disable=not progress, desc="Gauss-Newton-CG",
               leave=False)
    success, message = False, state["message"] or "maximum number of iterations reached"
    if state["message"] is not None:
        success = True
    failure = None        # a non-finite value that stopped the run
    last_nonfinite = None  # message of the last non-finite trial point
    rejected = 0          # consecutive rejected steps that met non-finite values
    try:
        while state["it"] < maxiter and state["message"] is None:
            try:
                op = problem.gauss_newton_operator(x, batch)
            except NonFiniteError as exc:
                if state["it"] == 0 and not hist.iteration:
                    raise ValueError(f"theta0: the objective is not finite at the start ({exc})") \
                        from exc
                failure = f"non-finite objective or gradient at iterate {state['it']}: {exc}"
                break
            state["nfev"] += 1
            ev = getattr(problem, "last_evaluation", None)
            if ev is not None:
                ledger += ev.ledger
            f, g = op.value, op.gradient
            gnorm = float(np.linalg.norm(g))
            if state["it"] == 0 and not np.isfinite(f):
                raise ValueError("theta0: the objective is not finite at the start")
            if not hist.iteration or hist.iteration[-1] != state["it"]:
                hist.record(state["it"], f, g, sweeps=sweeps(), damping=lam)
            if gnorm <= gtol:
                state["message"] = "gradient norm below gtol"
                break
            rtol = min(0.5, np.sqrt(gnorm)) if cg_rtol is None else cg_rtol
            d, info = conjugate_gradient(op.matvec, -g, rtol=rtol, maxiter=cg_maxiter, shift=lam)
            state["n_products"] += info["iterations"]
            state["cg_iterations"] += info["iterations"]
            gd = float(g @ d)
            if gd >= 0.0:  # cannot happen for a positive definite damped model; be safe
                d, gd = -g, -gnorm ** 2
            pred = -(gd + 0.5 * info["xAx"])
            alpha, f_new, accepted, met_nonfinite = 1.0, np.inf, False, False
            for _ in range(max_backtracks + 1 if line_search else 1):
                try:
                    f_new = problem.objective(x + alpha * d, batch)
                except NonFiniteError as exc:
                    f_new = np.inf
                    last_nonfinite, met_nonfinite = str(exc), True
                state["nfev"] += 1
                ev = getattr(problem, "last_evaluation", None)
                if ev is not None:
                    ledger += ev.ledger
                if np.isfinite(f_new) and f_new <= f + c1 * alpha * gd:
                    accepted = True
                    break
                alpha *= 0.5
            ledger += op.ledger
            if accepted:
                rho = (f - f_new) / pred if (alpha == 1.0 and pred > 0) else 0.0
                if rho > 0.75:
                    lam = max(lam * (2.0 / 3.0), min_damping)
                elif rho < 0.25:
                    lam = max(lam * 1.5, min_damping)
                x = x + alpha * d
                rejected = 0
            else:
                lam = max(10.0 * lam, 1e-6)
                f_new = f
                rejected = rejected + 1 if met_nonfinite else 0
            state["it"] += 1
            bar.update(1)
            bar.set_postfix(f=f"{f_new:.4e}", lam=f"{lam:.1e}")
            if accepted and abs(f - f_new) <= ftol * max(1.0, abs(f)):
                state["message"] = "relative reduction of the objective below ftol"
            if callback is not None and callback(state["it"], x, f_new, g):
                state["message"] = "stopped by callback"
            if checkpoint is not None and (state["it"] % checkpoint_every == 0
                                           or state["message"] is not None):
                save()
            if rejected >= 3 and state["message"] is None:
                failure = (f"non-finite objective: {last_nonfinite}; {rejected} consecutive steps "
                           f"rejected (every trial point non-finite or not decreasing)")
                break
    finally:
        bar.close()
    if state["message"] is not None:
        success, message = True, state["message"]
    elif failure is not None:
        success, message = False, f"{failure}; returned the last finite iterate"
    elif last_nonfinite is not None:
        message = f"{message}; cause: non-finite evaluation ({last_nonfinite})"
    obj.nfev = state["nfev"]
    obj.ledger = ledger
    if hist.iteration[-1] != state["it"]:  # the last iterate's row (its gradient costs one evaluation)
        fx, gx = obj(x)
        hist.record(state["it"], fx, gx, sweeps=sweeps(), damping=lam)
    res = make_result(obj, x, success, message, state["it"], hist, "Gauss-Newton-CG",
                      n_products=state["n_products"], cg_iterations=state["cg_iterations"],
                      damping=lam)
    res.sweeps = sweeps()
    return res
