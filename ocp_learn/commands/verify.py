"""``ocp-learn verify --out DIR [--quick]``: the CasADi reference suite.

Writes ``DIR/verify.json`` (every row) and ``DIR/verify.md`` (the tables):
for each (problem, model, integrator, theta(t), strategy) the relative
gradient difference to CasADi's AD of the same discrete objective; the
potential model's derivatives against AD; each IPOPT reference solve's
objective gap to ocp_learn's optimizers; the analytic checks (Riccati,
Gaussian OT, MFG single agent).  Exits with status 1 if a check fails.
"""
from __future__ import annotations

import json
import os
import sys

from ..cli import subcommand

__all__ = ["cmd_verify", "render_markdown"]


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.2e}" if (v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4)) or v == 0 else f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def _table(rows, cols):
    head = "| " + " | ".join(c for c, _ in cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    body = ["| " + " | ".join(_fmt(r.get(k)) for _, k in cols) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def render_markdown(res):
    """The markdown report of :func:`ocp_learn.reference.suite.run_suite`'s result."""
    s = res["summary"]
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
                        ("analytic failures", "analytic_failures")]), "",
           "## Gradients against CasADi's AD of the same discrete objective", "",
           "`rel_grad_diff = |g - g_casadi| / |g_casadi|`. `continuous` is the optimize-then-"
           "discretize adjoint (MATH B3): its difference is its discretization error, by design. "
           "`n/a`: the strategy does not apply to that integrator.", "",
           _table(res["gradients"], [("problem", "problem"), ("model", "model"),
                                     ("integrator", "integrator"), ("theta(t)", "theta(t)"),
                                     ("strategy", "strategy"), ("rel_grad_diff", "rel_grad_diff"),
                                     ("rel. value diff", "rel_value_diff"),
                                     ("params", "n_params"), ("CasADi", "casadi"),
                                     ("status", "status")]), "",
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
                   ("status", "status")]), ""]
    return "\n".join(out)


def _failed(res):
    s = res["summary"]
    return bool(s["gradient_failures"] or s["analytic_failures"]
                or (s["potential_max_rel_diff"] or 0.0) > res["grad_tol"]
                or s["ipopt_agreements"] < min(3, s["ipopt_rows"]))


@subcommand("verify", "run the CasADi reference suite: gradients, IPOPT optima, analytic checks")
def cmd_verify(args):
    from ..reference.suite import run_suite

    os.makedirs(args.out, exist_ok=True)
    res = run_suite(quick=args.quick, seed=args.seed,
                    progress=(lambda m: print(m, file=sys.stderr)))
    with open(os.path.join(args.out, "verify.json"), "w") as fh:
        json.dump(res, fh, indent=1, default=float)
    md = render_markdown(res)
    with open(os.path.join(args.out, "verify.md"), "w") as fh:
        fh.write(md)
    s = res["summary"]
    print(f"gradients: {s['gradient_rows']} rows, max rel. diff (discrete strategies) "
          f"{_fmt(s['max_rel_grad_diff_exact_strategies'])}, failures {s['gradient_failures']}")
    print(f"potential: max rel. diff {_fmt(s['potential_max_rel_diff'])}")
    print(f"IPOPT: {s['ipopt_agreements']} of {s['ipopt_rows']} solves agree to {res['opt_tol']:.0e}")
    print(f"analytic failures: {s['analytic_failures']}")
    print(f"written {os.path.abspath(os.path.join(args.out, 'verify.json'))} and verify.md")
    return 1 if _failed(res) else 0


def _configure(p):
    p.add_argument("--out", default="ocp_learn_verify", help="output folder (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="small sizes (CI)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")


cmd_verify.configure = _configure
