"""Neural-ODE classifier (MATH C1, C2, G1): optimizers side by side and robustness.

1. L-BFGS vs Gauss--Newton--CG from the same start on the same problem:
   iterations, sweeps (full-horizon forward/tangent/adjoint passes) and seconds
   until each first reaches the *same* objective (the worse of the two final
   values), plus the totals of each run.  -> results/classifier_optimizers.{json,md}
2. Robustness (C2): test accuracy under Gaussian input perturbations
   ``x + s N(0, I)`` of growing size ``s``, deterministic (Euler) model vs the
   viscous model (Euler--Maruyama, Feynman--Kac ensemble prediction), same
   network, data and optimizer.  -> results/classifier_robustness.{json,md}

    python -m benchmarks.bench_classifier [--n 1000] [--out DIR] [--nu 0.05]
"""
import argparse
import time


from benchmarks._common import write

from ocp_learn.datasets import get_dataset, train_test_split
from ocp_learn.optim import gauss_newton, lbfgs
from ocp_learn.problems import NeuralODEClassifier, ViscousClassifier
from ocp_learn.problems.viscous import robustness_curve

COMMAND = "NUMBA_NUM_THREADS=1 python -m benchmarks.bench_classifier"


def first_reach(hist, target):
    """(iteration, sweeps, seconds) of the first history row with objective <= target."""
    for i, f in enumerate(hist["objective"]):
        if f <= target:
            return hist["iteration"][i], hist["sweeps"][i], hist["time"][i]
    return None, None, None


def optimizers(a):
    rows = []
    cases = [("rings", "logistic", a.n), ("spirals", "softmax", a.n // 2)]
    for data, loss, n in cases:
        x, y = get_dataset(data, 2 * n, seed=a.seed)
        xtr, ytr, xte, yte = train_test_split(x, y, 0.5, seed=a.seed)
        prob = NeuralODEClassifier(xtr, ytr, augment=1, loss=loss, width=a.width, nt=a.nt)
        th0 = prob.init_params(a.seed)
        runs = {"L-BFGS": lbfgs(prob, th0, maxiter=a.lbfgs_iter, progress=False, gtol=0.0),
                "Gauss-Newton-CG": gauss_newton(prob, th0, maxiter=a.gn_iter, cg_maxiter=a.cg_iter,
                                                progress=False, gtol=0.0)}
        target = max(r.fun for r in runs.values())
        for name, r in runs.items():
            it, sw, sec = first_reach(r.history, target)
            rows.append([data, loss, int(len(ytr)), name, target, it, sw, sec, r.nit, r.sweeps,
                         r.seconds, r.fun, prob.accuracy(r.x, xte, yte)])
    headers = ["data", "loss", "n_train", "optimizer", "target objective", "iterations to target",
               "sweeps to target", "seconds to target", "iterations (run)", "sweeps (run)",
               "seconds (run)", "final objective", "test accuracy"]
    meta = {"command": COMMAND, "width": a.width, "nt": a.nt, "integrator": "rk4", "augment": 1,
            "lbfgs_maxiter": a.lbfgs_iter, "gn_maxiter": a.gn_iter, "cg_maxiter": a.cg_iter,
            "note": "target = the worse final objective of the two runs; sweeps = forward + "
                    "tangent + adjoint full-horizon passes (ledger steps/nt + vjp_evals/(stages nt))"}
    return write("classifier_optimizers", rows, headers, meta, a.out)


def robustness(a):
    x, y = get_dataset("rings", 2 * a.n, seed=a.seed)
    xtr, ytr, xte, yte = train_test_split(x, y, 0.5, seed=a.seed)
    common = dict(augment=1, width=a.width, nt=a.nt, integrator="euler")
    det = NeuralODEClassifier(xtr, ytr, **common)
    vis = ViscousClassifier(xtr, ytr, nu=a.nu, n_paths=a.paths, n_predict=a.predict,
                            noise_seed=a.seed + 1, **common)
    radii = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
    curves, info = {}, {}
    for name, prob in [("deterministic", det), (f"viscous nu={a.nu}", vis)]:
        t0 = time.perf_counter()
        res = lbfgs(prob, prob.init_params(a.seed), maxiter=a.lbfgs_iter, progress=False)
        info[name] = {"seconds": time.perf_counter() - t0, "objective": res.fun, "nit": res.nit}
        curves[name] = robustness_curve(prob, res.x, xte, yte, radii=radii, n_draws=3, seed=a.seed)
    names = list(curves)
    rows = [[r] + [curves[nm]["accuracy"][i] for nm in names] for i, r in enumerate(radii)]
    headers = ["perturbation std"] + [f"test accuracy ({nm})" for nm in names]
    meta = {"command": COMMAND, "n_train": int(len(ytr)), "n_test": int(len(yte)), "nu": a.nu,
            "n_paths": a.paths, "n_predict": a.predict, "train": info, "augment": 1,
            "integrator": "euler (Euler-Maruyama for the viscous model)", "nt": a.nt,
            "width": a.width, "draws per radius": 3}
    return write("classifier_robustness", rows, headers, meta, a.out)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000, help="training points (same number for testing)")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--nt", type=int, default=8)
    ap.add_argument("--lbfgs-iter", type=int, default=300)
    ap.add_argument("--gn-iter", type=int, default=60)
    ap.add_argument("--cg-iter", type=int, default=20)
    ap.add_argument("--nu", type=float, default=0.05)
    ap.add_argument("--paths", type=int, default=2)
    ap.add_argument("--predict", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=["optimizers", "robustness"], default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    for part in (optimizers, robustness):
        if a.only in (None, part.__name__):
            for p in part(a):
                print(p)
                if p.endswith(".md"):
                    print(open(p).read())


if __name__ == "__main__":
    main()
