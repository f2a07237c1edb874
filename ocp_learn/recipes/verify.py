"""The CasADi reference suite written to a folder (``ocp-learn verify``).

:func:`run_verify` writes ``out/verify.json`` (every row) and ``out/verify.md`` (the tables):
for each (problem, model, integrator, theta(t), strategy) the relative gradient difference to
CasADi's AD of the same discrete objective; the potential model's derivatives against AD;
each IPOPT reference solve's objective gap to ocp_learn's optimizers; the continuous adjoint's
relative gradient error against the discrete adjoint (min / median / max per integrator); the
analytic checks (Riccati, Gaussian OT, MFG single agent, the Gaussian OT-MFG trained against its
closed-form optimum, the Hutchinson Laplacian against its exact mean and variance).
"""
from __future__ import annotations

from typing import Any, Callable

from .rundir import RunFolder

__all__ = ["run_verify", "render_markdown", "suite_failed", "format_value"]


def format_value(v: Any) -> str:
    """A table cell: floats to 6 significant digits (scientific when tiny or huge), lists
    joined by commas, None as ``-``."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.2e}" if (v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4)) or v == 0 else f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(format_value(x) for x in v)
    return str(v)


def _table(rows, cols):
    head = "| " + " | ".join(c for c, _ in cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    body = ["| " + " | ".join(format_value(r.get(k)) for _, k in cols) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def render_markdown(res: dict[str, Any]) -> str:
    """The markdown report of :func:`ocp_learn.reference.suite.run_suite`'s result.

    Parameters
    ----------
    res : dict
        The suite's result.

    Returns
    -------
    str
        Markdown: a summary table, then the gradient table, the continuous adjoint's error
        distribution, the potential, IPOPT and analytic tables (Riccati, Gaussian OT,
        single agent, the Gaussian OT-MFG oracle, Hutchinson).
    """
    from ..reference.hutchinson import HUTCHINSON_CHECK
    from ..reference.mfg_oracle import ORACLE_CHECK

    s = res["summary"]
    oracle = [r for r in res["analytic"] if r["check"] == ORACLE_CHECK]
    out = ["# ocp-learn verify: CasADi reference suite", "",
           f"Mode: {'quick' if res['quick'] else 'full'}; {res['seconds']:.1f} s. "
           f"Gradient tolerance {res['grad_tol']:.0e} (relative, 2-norm), optimum tolerance "
           f"{res['opt_tol']:.0e} (objective gap relative to max(1, |J|)).", "",
           "## Summary", "",
           _table([s], [("gradient rows", "gradient_rows"),
                        ("max rel. grad. diff (discrete strategies)", "max_rel_grad_diff_exact_strategies"),
                        ("gradient failures", "gradient_failures"),
                        ("potential max rel. diff", "potential_max_rel_diff"),
                        ("IPOPT agreements", "ipopt_agreements"), ("IPOPT rows", "ipopt_rows"),
                        ("analytic failures", "analytic_failures"),
                        ("continuous adjoint cases", "continuous_adjoint_cases"),
                        ("continuous adjoint min rel. err", "continuous_adjoint_min_rel_err"),
                        ("median", "continuous_adjoint_median_rel_err"),
                        ("max", "continuous_adjoint_max_rel_err")]), "",
           "## Gradients against CasADi's AD of the same discrete objective", "",
           "`rel_grad_diff = |g - g_casadi| / |g_casadi|`. `continuous` is the optimize-then-"
           "discretize adjoint (MATH B3): its difference is its discretization error, by design. "
           "`n/a`: the strategy does not apply to that integrator.", "",
           _table(res["gradients"], [("problem", "problem"), ("model", "model"),
                                     ("integrator", "integrator"), ("theta(t)", "theta(t)"),
                                     ("strategy", "strategy"), ("rel_grad_diff", "rel_grad_diff"),
                                     ("rel. to discrete adjoint", "rel_to_discrete_adjoint"),
                                     ("rel. value diff", "rel_value_diff"),
                                     ("params", "n_params"), ("CasADi", "casadi"),
                                     ("status", "status")]), "",
           "## Continuous adjoint (optimize-then-discretize) against the discrete adjoint", "",
           "Relative gradient error `|g_continuous - g_discrete| / |g_discrete|` of the continuous "
           "adjoint (MATH B3) over the gradient cases above, per integrator and over all; it "
           "shrinks with the time step at the integrator's order.", "",
           _table(res.get("continuous_adjoint", []),
                  [("integrator", "integrator"), ("cases", "cases"), ("min", "min"),
                   ("median", "median"), ("max", "max"), ("worst case", "worst case")]), "",
           "## Potential model (MATH D1-D3, D6) against CasADi's AD", "",
           _table(res["potential"], [("model", "model"), ("backend", "backend"), ("Phi", "phi"),
                                     ("grad_x", "grad"), ("d_t", "dt"), ("Laplacian", "lap"),
                                     ("vjp x", "vjp_x"), ("vjp t", "vjp_t"),
                                     ("vjp theta", "vjp_theta"), ("jvp", "jvp"),
                                     ("status", "status")]), "",
           "## IPOPT reference solves against ocp_learn's optimizers (same start)", "",
           _table(res["optima"], [("problem", "problem"), ("params", "n_params"),
                                  ("optimizer", "optimizer"), ("J ipopt", "ipopt_fun"),
                                  ("J ocp_learn", "fun"), ("objective gap", "objective_gap"),
                                  ("|grad| ocp_learn", "grad_norm"),
                                  ("|grad| CasADi there", "grad_norm_casadi"),
                                  ("|grad| at IPOPT", "ipopt_grad_norm"),
                                  ("|x - x_ipopt|/|x_ipopt|", "step_to_ipopt"), ("iterations", "nit"),
                                  ("IPOPT status", "ipopt_status"), ("status", "status")]), "",
           "## Analytic references", "",
           _table([r for r in res["analytic"] if r["check"] == "LQ vs Riccati"],
                  [("check", "check"), ("case", "case"), ("J* (Riccati)", "reference"),
                   ("J_h (finest)", "value"), ("gaps |J_h - J*| (nt = 8, 16, ...)", "gaps"),
                   ("observed order", "observed order")]), "",
           _table([r for r in res["analytic"] if r["check"].startswith("Gaussian")],
                  [("check", "check"), ("case", "case"), ("W2^2", "reference"),
                   ("cost of the map", "value"), ("pushforward residual", "pushforward residual"),
                   ("map cost vs W2^2", "map cost vs W2^2"), ("POT vs closed form", "POT vs closed form"),
                   ("min eig(M)", "min eig(M)"), ("status", "status")]), "",
           _table([r for r in res["analytic"] if r["check"].startswith("MFG")],
                  [("check", "check"), ("case", "case"), ("J optimal (collocation)", "reference"),
                   ("J feedback", "value"), ("improvement", "improvement"), ("tol", "tol"),
                   ("status", "status")]), "",
           "Gaussian OT-MFG trained against its closed-form optimum `J*` on `agents` fresh "
           "agents: `gap = J_hat - J*` with its standard error `se`, `bound = 3 se + disc_tol`, "
           "`disc` the same parameters on a finer time grid, `excess` the paired mean of "
           "`J_i - J*_i` with its standard error, `floor` the excess of the best flow whose "
           "linear part is constant in time (the model's quadratic term; not part of the "
           "check).", "",
           *[f"{r['case']}: largest relative difference {format_value(r.get('value'))} "
             f"({r['status']})." for r in oracle if "gap" not in r], "",
           _table([r for r in oracle if "gap" in r],
                  [("case", "case"), ("J*", "reference"), ("J_hat", "value"), ("gap", "gap"),
                   ("se", "se"), ("bound", "bound"), ("disc", "disc"), ("excess", "excess"),
                   ("excess se", "excess_se"), ("agents", "n_eval"), ("floor", "floor"),
                   ("seconds", "seconds"), ("status", "status")]), "",
           "Hutchinson Laplacian (MATH D3) against its exact mean `tr H` and variance: "
           "`z_mean`, `z_var` are the standardized errors of the sample mean and variance.", "",
           _table([r for r in res["analytic"] if r["check"] == HUTCHINSON_CHECK],
                  [("case", "case"), ("tr H", "reference"), ("mean of draws", "value"),
                   ("z_mean", "z_mean"), ("variance", "variance"), ("var_hat", "var_hat"),
                   ("z_var", "z_var"), ("draws", "n_draws"), ("status", "status")]), ""]
    return "\n".join(out)


def suite_failed(res: dict[str, Any]) -> bool:
    """Whether a check of the suite's result ``res`` failed."""
    s = res["summary"]
    return bool(s["gradient_failures"] or s["analytic_failures"]
                or (s["potential_max_rel_diff"] or 0.0) > res["grad_tol"]
                or s["ipopt_agreements"] < min(3, s["ipopt_rows"]))


def run_verify(out: str, *, quick: bool = False, seed: int = 0,
               progress: Callable[[str], Any] | None = None,
               info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the CasADi reference suite and write ``out/verify.json`` and ``out/verify.md``.

    Parameters
    ----------
    out : str
        Output folder (created).
    quick : bool
        Small sizes (CI).
    seed : int
        Seed of the suite.
    progress : callable, optional
        ``progress(message)`` for each step of the suite.
    info : dict, optional
        The run's description (:func:`~.rundir.run_info`), written to ``out/run.json``;
        ``out`` is a :class:`~.rundir.RunFolder`.

    Returns
    -------
    dict
        The suite's result (:func:`ocp_learn.reference.suite.run_suite`); ``suite_failed``
        tells whether a check failed.
    """
    from ..reference import suite

    with RunFolder(out, info) as folder:
        res = suite.run_suite(quick=quick, seed=seed, progress=progress)
        folder.write_json("verify.json", res)
        with folder.writing("verify.md") as tmp, open(tmp, "w") as fh:
            fh.write(render_markdown(res))
    return res
