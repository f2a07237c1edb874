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

from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult

from ..errors import NonFiniteError, check_nonneg_int, check_positive_float, check_positive_int
from ..protocols import GaussNewtonProblem, check_protocol
from .checkpoint import check_fingerprint, run_fingerprint
from .driver import Callback, Driver

__all__ = ["gauss_newton", "conjugate_gradient"]


def conjugate_gradient(matvec, b, *, rtol=1e-2, maxiter=20, shift=0.0):
    """Solve ``(A + shift I) x = b`` for symmetric positive semidefinite ``A`` by CG from ``x = 0``.

    Stops when ``|r| <= rtol |b|``, after ``maxiter`` products, or on
    non-positive curvature (then returns the last iterate, or ``b`` scaled if
    that happens at the first step).

    Parameters
    ----------
    matvec : callable
        ``matvec(v) -> A v``.
    b : ndarray
        The right-hand side.
    rtol : float, optional
        Relative tolerance on the residual.
    maxiter : int, optional
        Most products with ``A``.
    shift : float, optional
        The shift of ``A`` (a Levenberg--Marquardt damping).

    Returns
    -------
    x : ndarray
        The approximate solution.
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


def gauss_newton(problem: GaussNewtonProblem, theta0: Any = None, *, maxiter: int = 50,
                 gtol: float = 1e-6, ftol: float = 1e-12, cg_maxiter: int = 20,
                 cg_rtol: float | None = None, damping: float = 1e-3, min_damping: float = 1e-10,
                 line_search: bool = True, c1: float = 1e-4, max_backtracks: int = 20,
                 batch: Any = None, progress: bool = True, callback: Callback | None = None,
                 seed: Any = 0, checkpoint: Any = None, checkpoint_every: int = 1,
                 resume: bool = False) -> OptimizeResult:
    """Minimize ``problem``'s objective by Gauss--Newton--CG (MATH G1).

    Parameters
    ----------
    problem : GaussNewtonProblem
        :class:`~ocp_learn.protocols.GaussNewtonProblem`: a problem whose
        ``gauss_newton_operator(theta, batch)`` returns an object with ``value``,
        ``gradient``, ``matvec(v)``, ``ledger`` (work of the products) and ``evaluation``
        (the :class:`~ocp_learn.ocp.Evaluation` at ``theta``), e.g.
        :class:`~ocp_learn.problems.NeuralODEClassifier`.
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
    max_backtracks : int
        Halvings of the step at most.
    batch : index array, optional
        Fixed training rows (full batch by default).
    progress : bool
        tqdm progress bar.
    callback : callable, optional
        ``callback(iteration, theta, f, g)``; returning True stops the run.
    seed : int or Generator
        For ``problem.init_params`` when ``theta0`` is None.
    checkpoint : str, optional
        File to save the state to every ``checkpoint_every`` iterations
        (atomic write, :mod:`ocp_learn.optim.checkpoint`).
    checkpoint_every : int
        Iterations between checkpoints.
    resume : bool
        Continue from ``checkpoint`` if the file exists; the resumed run's
        iterates are bitwise those of an uninterrupted run.

    Returns
    -------
    scipy.optimize.OptimizeResult
        As :func:`~ocp_learn.optim.lbfgs`, plus ``n_products`` (GGN
        products), ``cg_iterations`` and ``damping``.  ``history`` has the
        columns ``sweeps`` and ``damping``.  A trial point whose objective is
        not finite (e.g. the ODE solution overflowed) counts as a failed
        Armijo test (the line search backtracks); three consecutive rejected
        steps that met non-finite values, or a non-finite gradient at an
        accepted iterate, stop the run with ``success=False``, a message
        naming the cause, and ``x`` the last finite iterate.
    """
    check_positive_float("gtol", gtol, allow_zero=True)
    check_positive_float("ftol", ftol, allow_zero=True)
    cg_maxiter = check_positive_int("cg_maxiter", cg_maxiter)
    if cg_rtol is not None:
        check_positive_float("cg_rtol", cg_rtol)
    lam = check_positive_float("damping", damping, allow_zero=True)
    min_damping = check_positive_float("min_damping", min_damping, allow_zero=True)
    c1 = check_positive_float("c1", c1)
    if not c1 < 1.0:
        raise ValueError(f"c1 must lie in (0, 1) (Armijo constant), got {c1}")
    max_backtracks = check_nonneg_int("max_backtracks", max_backtracks)
    check_protocol(problem, GaussNewtonProblem, "problem")
    run = Driver(problem, "gauss-newton-cg", theta0=theta0, seed=seed, maxiter=maxiter,
                 batch=batch, progress=progress, callback=callback, checkpoint=checkpoint,
                 checkpoint_every=checkpoint_every, resume=resume, label="Gauss-Newton-CG")
    obj = run.objective
    x = run.x0
    counts = {"n_products": 0, "cg_iterations": 0}
    done = None  # the message of a converged run
    fp = run_fingerprint(problem, run.method, gtol=gtol, ftol=ftol, cg_maxiter=cg_maxiter,
                         cg_rtol=cg_rtol, min_damping=min_damping, c1=c1,
                         max_backtracks=max_backtracks, line_search=bool(line_search),
                         batch=None if batch is None else np.asarray(batch))
    restored = run.restore()
    if restored is not None:
        arrays, meta = restored
        check_fingerprint(checkpoint, meta, fp)
        x, lam, done = arrays["x"], float(meta["damping"]), meta["message"]
        counts = {k: int(meta[k]) for k in counts}

    def state():
        return {}, {"damping": lam, "message": done, "fingerprint": fp, **counts}

    failure = None        # a non-finite value that stopped the run
    last_nonfinite = None  # message of the last non-finite trial point
    rejected = 0          # consecutive rejected steps that met non-finite values
    with run.progress("Gauss-Newton-CG"):
        while run.nit < run.maxiter and done is None and not run.stopped:
            try:
                op = problem.gauss_newton_operator(x, batch)
            except NonFiniteError as exc:
                if run.nit == 0 and not run.history.iteration:
                    raise ValueError(f"theta0: the objective is not finite at the start ({exc})") \
                        from exc
                failure = f"non-finite objective or gradient at iterate {run.nit}: {exc}"
                break
            obj.count(op.evaluation)
            f, g = op.value, op.gradient
            gnorm = float(np.linalg.norm(g))
            if run.nit == 0 and not np.isfinite(f):
                raise ValueError("theta0: the objective is not finite at the start")
            if not run.history.iteration or run.history.iteration[-1] != run.nit:
                run.record(run.nit, f, g, damping=lam)
            if gnorm <= gtol:
                done = "gradient norm below gtol"
                break
            rtol = min(0.5, np.sqrt(gnorm)) if cg_rtol is None else cg_rtol
            d, info = conjugate_gradient(op.matvec, -g, rtol=rtol, maxiter=cg_maxiter, shift=lam)
            counts["n_products"] += info["iterations"]
            counts["cg_iterations"] += info["iterations"]
            gd = float(g @ d)
            if gd >= 0.0:  # cannot happen for a positive definite damped model; be safe
                d, gd = -g, -gnorm ** 2
            pred = -(gd + 0.5 * info["xAx"])
            alpha, f_new, accepted, met_nonfinite = 1.0, np.inf, False, False
            for _ in range(max_backtracks + 1 if line_search else 1):
                try:
                    f_new = obj.count(problem.evaluate(x + alpha * d, batch, gradient=False)).value
                except NonFiniteError as exc:
                    obj.nfev += 1
                    f_new = np.inf
                    last_nonfinite, met_nonfinite = str(exc), True
                if np.isfinite(f_new) and f_new <= f + c1 * alpha * gd:
                    accepted = True
                    break
                alpha *= 0.5
            obj.ledger += op.ledger
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
            if accepted and abs(f - f_new) <= ftol * max(1.0, abs(f)):
                done = "relative reduction of the objective below ftol"
            run.iteration(run.nit + 1, x, f_new, g, state=state, final=done is not None,
                          postfix={"f": f"{f_new:.4e}", "lam": f"{lam:.1e}"})
            if rejected >= 3 and done is None and not run.stopped:
                failure = (f"non-finite objective: {last_nonfinite}; {rejected} consecutive steps "
                           f"rejected (every trial point non-finite or not decreasing)")
                break
    success, message = False, "maximum number of iterations reached"
    if done is not None:
        success, message = True, done
    elif failure is not None:
        message = f"{failure}; returned the last finite iterate"
    elif last_nonfinite is not None:
        message = f"{message}; cause: non-finite evaluation ({last_nonfinite})"
    if run.history.iteration[-1] != run.nit:  # the last iterate's row (its gradient: one evaluation)
        fx, gx = obj(x)
        run.record(run.nit, fx, gx, damping=lam)
    return run.result(x, success, message, damping=lam, **counts)
