"""Table of bad inputs at every public entry point.

Each row calls one public entry point (problem, model, integrator, optimizer,
data set, cost, CLI option) with one bad argument and expects a ``ValueError``
or ``TypeError`` whose message names that argument.  CLI rows call
``ocp_learn.cli.main([...])`` and expect exit status 2 and a one-line
``error:`` message on stderr naming the option -- never a traceback.
"""
# ruff: noqa: E501  -- one row per bad input: the table reads best unwrapped
import numpy as np
import pytest

import ocp_learn as ol
from ocp_learn.cli import main
from ocp_learn.datasets import get_dataset, rings, train_test_split
from ocp_learn.integrators import ButcherTableau, get_integrator
from ocp_learn.models.hamiltonian import HamiltonianNet
from ocp_learn.optim import adam, gauss_newton, lbfgs
from ocp_learn.problems import NeuralODEClassifier

X, Y = rings(16, seed=0)
NAN_X = X.copy()
NAN_X[3, 1] = np.nan


def clf(**kw):
    args = dict(augment=1, width=3, nt=2)
    args.update(kw)
    x = args.pop("x", X)
    y = args.pop("labels", Y)
    return NeuralODEClassifier(x, y, **args)


def ocp(**kw):
    args = dict(dynamics=ol.LinearModel(2), x0=X, terminal=ol.LinearHeadLoss(Y, 2, "logistic"))
    args.update(kw)
    return ol.OCP(args.pop("dynamics"), args.pop("x0"), args.pop("terminal"), **args)


_P = clf()
_TH = _P.init_params(0)


def _theta_with_nan():
    th = _TH.copy()
    th[0] = np.nan
    return th


class _NoGradient:
    n_samples = 4

    def init_params(self, seed=0):
        return np.zeros(3)


def _implicit_tableau():
    return ButcherTableau(np.array([[0.5]]), np.array([1.0]), np.array([0.5]), "bad", 1)


def _nonfinite_tableau():
    return ButcherTableau(np.array([[0.0]]), np.array([np.nan]), np.array([0.0]), "bad", 1)


def _inconsistent_tableau():
    return ButcherTableau(np.array([[0.0]]), np.array([0.5]), np.array([0.0]), "bad", None)


# (id, callable, expected exception type(s), regex the message must match: the argument's name)
LIBRARY = [
    # --- problems: data ------------------------------------------------------------------
    ("x-1d", lambda: clf(x=X[:, 0]), ValueError, r"\bx must be 2-dimensional"),
    ("x-nan", lambda: clf(x=NAN_X), ValueError, r"\bx contains non-finite"),
    ("x-inf", lambda: clf(x=np.where(X > 1.5, np.inf, X)), ValueError, r"\bx contains non-finite"),
    ("x-empty", lambda: clf(x=np.zeros((0, 2)), labels=np.zeros(0)), ValueError, r"\bx must have at least 1 row"),
    ("x-string", lambda: clf(x="data.csv"), TypeError, r"\bx must be an array"),
    ("x-complex", lambda: clf(x=X + 1j), TypeError, r"\bx must be real"),
    ("x-object", lambda: clf(x=[[1.0, "a"], [2.0, 3.0]], labels=[0, 1]), TypeError, r"\bx must hold real numbers"),
    ("labels-length", lambda: clf(labels=Y[:-1]), ValueError, r"labels must have one entry per row"),
    ("labels-logistic-2", lambda: clf(labels=np.full(16, 2)), ValueError, r"labels must be"),
    ("labels-strings", lambda: clf(labels=Y.astype(int).astype(str)), TypeError, r"labels must be numbers"),
    ("labels-softmax-huge", lambda: clf(labels=np.r_[Y[:-1], 10 ** 7].astype(int), loss="softmax"), ValueError, r"labels must be class indices 0..K-1: label 10000000"),
    ("labels-softmax-nan", lambda: clf(labels=np.r_[Y[:-1], np.nan], loss="softmax"), ValueError, r"labels must be non-negative integer class indices, got nan"),
    ("x-no-columns", lambda: clf(x=np.zeros((16, 0))), ValueError, r"\bx must have at least one column"),
    ("labels-nan-squares", lambda: clf(labels=np.full(16, np.nan), loss="squares"), ValueError, r"labels must be"),
    ("augment-negative", lambda: clf(augment=-1), ValueError, r"augment must be a non-negative integer"),
    ("augment-float", lambda: clf(augment=1.5), TypeError, r"augment must be a non-negative integer"),
    ("loss-unknown", lambda: clf(loss="hinge"), ValueError, r"loss must be one of"),
    ("width-zero", lambda: clf(width=0), ValueError, r"width must be a positive integer"),
    ("nt-zero", lambda: clf(nt=0), ValueError, r"nt must be a positive integer"),
    ("nt-float", lambda: clf(nt=2.5), TypeError, r"nt must be a positive integer"),
    ("nt-bool", lambda: clf(nt=True), TypeError, r"nt must be a positive integer"),
    ("T-zero", lambda: clf(T=0.0), ValueError, r"\bT must be a finite positive"),
    ("T-negative", lambda: clf(T=-1.0), ValueError, r"\bT must be a finite positive"),
    ("T-nan", lambda: clf(T=float("nan")), ValueError, r"\bT must be a finite positive"),
    ("T-string", lambda: clf(T="1"), TypeError, r"\bT must be a real number"),
    ("integrator-unknown", lambda: clf(integrator="rk5"), ValueError, r"integrator must be one of"),
    ("time-param-unknown", lambda: clf(time_param="spline"), ValueError, r"time_param must be"),
    ("time-param-pwl-1", lambda: clf(time_param=("piecewise_linear", 1)), ValueError, r"\bn must be at least 2"),
    ("time-param-pwc-0", lambda: clf(time_param=("piecewise_constant", 0)), ValueError, r"\bn must be a positive"),
    ("strategy-unknown", lambda: clf(strategy="magic"), ValueError, r"strategy must be one of"),
    ("tikhonov-negative", lambda: clf(tikhonov=-1.0), ValueError, r"tikhonov must be a finite non-negative"),
    ("smoothness-nan", lambda: clf(smoothness=float("nan")), ValueError, r"smoothness must be a finite"),
    ("model-state-dim", lambda: clf(model=ol.LinearModel(5)), ValueError, r"model must have state_dim"),
    ("init-scale-nan", lambda: clf(init_scale=float("nan")), ValueError, r"init_scale must be a finite"),
    ("n-outputs-zero", lambda: clf(n_outputs=0), ValueError, r"n_outputs must be a positive"),
    ("viscous-nu-negative", lambda: __import__("ocp_learn.problems.viscous", fromlist=["x"])
     .ViscousClassifier(X, Y, nu=-0.1, width=3, nt=2), ValueError, r"\bnu must be"),
    ("viscous-n-paths-zero", lambda: __import__("ocp_learn.problems.viscous", fromlist=["x"])
     .ViscousClassifier(X, Y, n_paths=0, width=3, nt=2), ValueError, r"n_paths must be a positive"),
    # --- the OCP object ------------------------------------------------------------------
    ("dynamics-not-model", lambda: ocp(dynamics=np.eye(2)), TypeError, r"dynamics must follow the Field contract.*lacks 'state_dim'"),
    ("terminal-not-cost", lambda: ocp(terminal="softmax"), TypeError, r"terminal must follow the TerminalCost contract.*lacks.*'value_and_grad'"),
    ("x0-columns", lambda: ocp(x0=np.zeros((4, 3))), ValueError, r"\bx must have 2 columns"),
    ("x0-nan", lambda: ocp(x0=NAN_X), ValueError, r"x0 contains non-finite"),
    ("t0-nan", lambda: ocp(t0=float("nan")), ValueError, r"t0 must be a finite"),
    ("t0-string", lambda: ocp(t0="0"), TypeError, r"t0 must be a real number"),
    ("dtype-int", lambda: ocp(dtype=np.int32), ValueError, r"dtype must be"),
    ("theta-length", lambda: _P.objective(_TH[:-1]), ValueError, r"theta must have shape"),
    ("theta-nan", lambda: _P.objective(_theta_with_nan()), ValueError, r"theta contains non-finite"),
    ("theta-2d", lambda: _P.objective(_TH[None]), ValueError, r"theta must be 1-dimensional"),
    ("batch-range", lambda: _P.objective(_TH, batch=np.array([0, 99])), ValueError, r"batch indices must lie in"),
    ("batch-empty", lambda: _P.objective(_TH, batch=np.array([], dtype=int)), ValueError, r"batch must be a non-empty"),
    ("batch-float", lambda: _P.objective(_TH, batch=np.array([0.5])), ValueError, r"batch must be a non-empty 1-D array"),
    ("batch-mask-shape", lambda: _P.objective(_TH, batch=np.ones(3, bool)), ValueError, r"batch mask must have shape"),
    ("trajectory-times-nan", lambda: _P.trajectory(_TH, times=[0.0, np.nan]), ValueError, r"times contains non-finite"),
    ("predict-x-columns", lambda: _P.predict(_TH, np.zeros((3, 5))), ValueError, r"\bx must have 2 columns"),
    ("accuracy-labels-only", lambda: _P.accuracy(_TH, labels=Y), ValueError, r"give both x and labels"),
    # --- models --------------------------------------------------------------------------
    ("mlp-dim-zero", lambda: ol.SingleLayerNet(0), ValueError, r"dim must be a positive integer"),
    ("mlp-width-string", lambda: ol.SingleLayerNet(2, width="8"), TypeError, r"width must be a positive integer"),
    ("mlp-activation", lambda: ol.SingleLayerNet(2, activation="relu"), ValueError, r"activation must be one of"),
    ("mlp-backend", lambda: ol.SingleLayerNet(2, backend="cuda"), ValueError, r"backend must be one of"),
    ("mlp-init-scale-inf", lambda: ol.SingleLayerNet(2, init_scale=np.inf), ValueError, r"init_scale must be a finite"),
    ("linear-dim-negative", lambda: ol.LinearModel(-1), ValueError, r"dim must be a positive integer"),
    ("hamiltonian-init-scale", lambda: HamiltonianNet(2, init_scale=0.0), ValueError, r"init_scale must be a finite positive"),
    ("potential-trace", lambda: __import__("ocp_learn.models.potential", fromlist=["x"])
     .PotentialResNet(2, trace="approx"), ValueError, r"trace must be one of"),
    ("potential-layers", lambda: __import__("ocp_learn.models.potential", fromlist=["x"])
     .PotentialResNet(2, n_layers=0), ValueError, r"n_layers must be a positive"),
    ("model-seed-negative", lambda: ol.LinearModel(2).init_params(-3), TypeError, r"rng must be a non-negative int"),
    # --- integrators ---------------------------------------------------------------------
    ("integrator-name", lambda: get_integrator("rk5"), ValueError, r"integrator must be one of"),
    ("integrator-type", lambda: get_integrator(3), TypeError, r"integrator must be a name"),
    ("tableau-implicit", _implicit_tableau, ValueError, r"strictly lower triangular"),
    ("tableau-nonfinite", _nonfinite_tableau, ValueError, r"tableau entries must be finite"),
    ("tableau-inconsistent", _inconsistent_tableau, ValueError, r"weights b must sum to 1"),
    # --- optimizers ----------------------------------------------------------------------
    ("lbfgs-maxiter-zero", lambda: lbfgs(clf(), maxiter=0, progress=False), ValueError, r"(maxiter|iters) must be a positive"),
    ("lbfgs-gtol-negative", lambda: lbfgs(clf(), gtol=-1.0, progress=False), ValueError, r"gtol must be a finite non-negative"),
    ("lbfgs-ftol-negative", lambda: lbfgs(clf(), ftol=-1.0, progress=False), ValueError, r"ftol must be a finite non-negative"),
    ("lbfgs-memory-zero", lambda: lbfgs(clf(), memory=0, progress=False), ValueError, r"memory must be a positive"),
    ("lbfgs-theta0-shape", lambda: lbfgs(_P, _TH[:3], progress=False), ValueError, r"theta0 must have shape"),
    ("lbfgs-theta0-nan", lambda: lbfgs(_P, _theta_with_nan(), progress=False), ValueError, r"theta0 contains non-finite"),
    ("lbfgs-no-gradient", lambda: lbfgs(_NoGradient(), progress=False), TypeError, r"problem must (provide|follow the Problem contract.*lacks.*)objective_and_gradient"),
    ("lbfgs-checkpoint-every", lambda: lbfgs(_P, checkpoint_every=0, progress=False), ValueError, r"checkpoint_every must be a positive"),
    ("adam-lr-zero", lambda: adam(_P, lr=0.0, progress=False), ValueError, r"\blr must be a finite positive"),
    ("adam-betas", lambda: adam(_P, betas=(1.0, 0.9), progress=False), ValueError, r"betas must lie in"),
    ("adam-betas-type", lambda: adam(_P, betas=0.9, progress=False), TypeError, r"betas must be a pair"),
    ("adam-batch-size-zero", lambda: adam(_P, batch_size=0, progress=False), ValueError, r"batch_size must be a positive"),
    ("adam-eps-zero", lambda: adam(_P, eps=0.0, progress=False), ValueError, r"eps must be a finite positive"),
    ("adam-schedule", lambda: adam(_P, schedule="linear", progress=False), ValueError, r"schedule must be"),
    ("adam-seed-negative", lambda: adam(_P, seed=-1, progress=False), TypeError, r"seed must be a non-negative int"),
    ("adam-theta0-nan", lambda: adam(_P, _theta_with_nan(), progress=False), ValueError, r"theta0 contains non-finite"),
    ("adam-no-gradient", lambda: adam(_NoGradient(), progress=False), TypeError, r"problem must (provide|follow the Problem contract.*lacks.*)objective_and_gradient"),
    ("gn-damping-negative", lambda: gauss_newton(_P, damping=-1.0, progress=False), ValueError, r"damping must be a finite non-negative"),
    ("gn-cg-maxiter-zero", lambda: gauss_newton(_P, cg_maxiter=0, progress=False), ValueError, r"cg_maxiter must be a positive"),
    ("gn-c1-one", lambda: gauss_newton(_P, c1=1.0, progress=False), ValueError, r"\bc1 must lie in \(0, 1\)"),
    ("gn-max-backtracks", lambda: gauss_newton(_P, max_backtracks=-1, progress=False), ValueError, r"max_backtracks must be a non-negative"),
    ("gn-no-operator", lambda: gauss_newton(ocp(), progress=False), TypeError, r"problem must (provide|follow the GaussNewtonProblem contract.*lacks.*)gauss_newton_operator"),
    ("gn-theta0-shape", lambda: gauss_newton(_P, _TH[:2], progress=False), ValueError, r"theta0 must have shape"),
    # --- data sets and costs -------------------------------------------------------------
    ("rings-n-zero", lambda: rings(0), ValueError, r"\bn must be a positive"),
    ("dataset-unknown", lambda: get_dataset("mnist", 10), ValueError, r"data must be one of"),
    ("split-fraction", lambda: train_test_split(X, Y, 1.5), ValueError, r"test_fraction must lie in"),
    ("split-length", lambda: train_test_split(X, Y[:-1]), ValueError, r"\by must have"),
    ("tikhonov-alpha", lambda: ol.Tikhonov(-1.0), ValueError, r"alpha must be a finite non-negative"),
    ("kinetic-alpha-nan", lambda: ol.KineticEnergy(ol.LinearModel(2), float("nan")), ValueError, r"alpha must be a finite"),
    ("quadratic-state-Q", lambda: ol.QuadraticState(np.array([[1.0, 2.0], [0.0, 1.0]])), ValueError, r"\bQ must be a symmetric"),
    ("head-n-outputs", lambda: ol.LinearHeadLoss(Y, 2, "logistic", n_outputs=0), ValueError, r"n_outputs must be a positive"),
    ("head-dim", lambda: ol.LinearHeadLoss(Y, 0, "logistic"), ValueError, r"\bdim must be a positive"),
]


@pytest.mark.parametrize("make, exc, pattern", [r[1:] for r in LIBRARY], ids=[r[0] for r in LIBRARY])
def test_library_rejects_bad_input(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


# CLI rows: argv, the option named in the message, and whether argparse (not the library)
# rejects it.  Every one must fail before any training starts (fast).
CLI = [
    ("classify-nt-zero", ["classify", "--nt", "0"], r"\bnt must be a positive integer"),
    ("classify-T-negative", ["classify", "--T", "-1"], r"\bT must be a finite positive"),
    ("classify-T-nan", ["classify", "--T", "nan"], r"\bT must be a finite positive"),
    ("classify-integrator", ["classify", "--integrator", "rk5"], r"integrator must be one of"),
    ("classify-time-param", ["classify", "--time-param", "spline"], r"time-param must be"),
    ("classify-width-zero", ["classify", "--width", "0"], r"width must be a positive"),
    ("classify-augment-negative", ["classify", "--augment", "-1"], r"augment must be a non-negative"),
    ("classify-n-train-zero", ["classify", "--n-train", "0"], r"n.train must be a positive"),
    ("classify-n-test-zero", ["classify", "--n-test", "0"], r"n.test must be a positive"),
    ("classify-maxiter-zero", ["classify", "--maxiter", "0"], r"(maxiter|iters) must be a positive"),
    ("classify-tikhonov-negative", ["classify", "--tikhonov", "-1"], r"tikhonov must be a finite non-negative"),
    ("classify-viscosity-negative", ["classify", "--viscosity", "-0.1"], r"viscosity must be a finite non-negative"),
    ("classify-seed-negative", ["classify", "--seed", "-1"], r"seed must be a non-negative"),
    ("demo-seed-negative", ["demo", "--seed", "-2"], r"seed must be a non-negative"),
    ("flow-nt-zero", ["flow", "--nt", "0", "--n", "8", "--n-test", "8"], r"\bnt must be a positive"),
    ("flow-width-zero", ["flow", "--width", "0", "--n", "8", "--n-test", "8"], r"width must be a positive"),
    ("mfg-dim-zero", ["mfg", "--dim", "0"], r"dim must be"),
]
ARGPARSE = [
    ("unknown-command", ["train"]),
    ("classify-optimizer-unknown", ["classify", "--optimizer", "sgd"]),
    ("classify-nt-not-int", ["classify", "--nt", "abc"]),
    ("classify-data-unknown", ["classify", "--data", "mnist"]),
    ("flow-missing-out", ["flow"]),
    ("bench-unknown-target", ["bench", "gpu-magic"]),
    ("flow-data-unknown", ["flow", "--data", "nope", "--out", "o"]),
]


@pytest.mark.parametrize("argv, pattern", [r[1:] for r in CLI], ids=[r[0] for r in CLI])
def test_cli_reports_library_errors_cleanly(argv, pattern, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OCP_LEARN_DEBUG", raising=False)
    if "--out" not in argv and argv[0] != "demo":
        argv = argv + ["--out", str(tmp_path / "out")]
    elif argv[0] == "demo":
        argv = argv + ["--out", str(tmp_path / "out")]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"ocp-learn {argv[0]}: error: "), err
    assert __import__("re").search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize("argv", [r[1] for r in ARGPARSE], ids=[r[0] for r in ARGPARSE])
def test_cli_argparse_rejects_bad_options(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


def test_cli_debug_reraises(tmp_path, monkeypatch):
    monkeypatch.delenv("OCP_LEARN_DEBUG", raising=False)
    with pytest.raises(ValueError, match="nt must be a positive"):
        main(["--debug", "classify", "--nt", "0", "--out", str(tmp_path)])
    monkeypatch.setenv("OCP_LEARN_DEBUG", "1")
    with pytest.raises(ValueError, match="nt must be a positive"):
        main(["classify", "--nt", "0", "--out", str(tmp_path)])


def test_table_is_large_enough():
    assert len(LIBRARY) + len(CLI) + len(ARGPARSE) >= 30
