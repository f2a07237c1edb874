"""The written contracts (ocp_learn.protocols) at work: checked at construction, results as
objects, evaluation on other samples, subsets of the samples."""
import numpy as np
import pytest

import ocp_learn as ol
from ocp_learn.costs import MeanOfColumns, QuadraticState
from ocp_learn.datasets import rings
from ocp_learn.datasets.densities import gaussian
from ocp_learn.problems import NeuralODEClassifier, ViscousClassifier
from ocp_learn.problems.cnf import ContinuousNormalizingFlow
from ocp_learn.problems.mfg import PotentialMFG, mfg_preset
from ocp_learn.protocols import (PerSampleTerminal, ResamplableProblem, ShardableProblem,
                                 TerminalResult)

X, Y = rings(16, seed=0)


def ocp(**kw):
    args = dict(dynamics=ol.LinearModel(2), x0=X, terminal=ol.LinearHeadLoss(Y, 2, "logistic"))
    args.update(kw)
    return ol.OCP(args.pop("dynamics"), args.pop("x0"), args.pop("terminal"), **args)


def point(prob, seed=1, scale=0.3):
    rng = np.random.default_rng(seed)
    return prob.init_params(0) + scale * rng.standard_normal(prob.n_params)


# --- contracts checked when the OCP is built ------------------------------------------------
class _NoVjp:
    state_dim = 2
    layout = ol.ParamLayout([("A", (2, 2))])

    def init_params(self, rng=None):
        return np.zeros(4)

    def initial_state(self, x):
        return x

    def rhs(self, y, t, theta):
        return y

    def jvp(self, y, t, theta, dy, dtheta):
        return dy


class _TupleTerminal(ol.costs.TerminalCost):
    def value_and_grad(self, y, p, idx=None, theta_T=None, t_T=None):
        return 0.0, np.zeros_like(y), np.zeros(0)


class _ValueOnly:
    def value(self, z, t, theta):
        return np.zeros(z.shape[0])


class _NoHvp:
    def value_grad(self, nodes):
        return 0.0, np.zeros_like(nodes)


class _WrongColumns(ol.LinearModel):
    def initial_state(self, x):
        return np.hstack([x, x])


@pytest.mark.parametrize("kw, pattern", [
    (dict(dynamics=_NoVjp()), r"dynamics must follow the Field contract.*_NoVjp lacks 'vjp'"),
    (dict(terminal=object()), r"terminal must follow the TerminalCost contract.*lacks 'layout', "
                              r"'reads_theta_T', 'init_params', 'value_and_grad'"),
    (dict(running=[QuadraticState(np.eye(2)), _ValueOnly()]),
     r"running\[1\] must follow the RunningCost contract.*lacks 'jvp', 'vjp'"),
    (dict(regularizers=[ol.Tikhonov(1.0), _NoHvp()]),
     r"regularizers\[1\] must follow the Regularizer contract.*_NoHvp lacks 'hvp'"),
])
def test_wrong_objects_fail_at_construction_naming_argument_and_method(kw, pattern):
    with pytest.raises(TypeError, match=pattern):
        ocp(**kw)


def test_shape_checks_at_construction():
    lin = ol.LinearModel(2)
    lin.layout = None
    with pytest.raises(TypeError, match=r"dynamics.layout must be a ParamLayout"):
        ocp(dynamics=lin)
    with pytest.raises(ValueError, match=r"initial_state\(x0\) must have shape \(1, state_dim = 2\)"):
        ocp(dynamics=_WrongColumns(2))


def test_terminal_must_return_a_terminal_result():
    prob = ocp(terminal=_TupleTerminal())
    with pytest.raises(TypeError, match="TerminalResult"):
        prob.objective(prob.init_params(0))


def test_terminal_result_and_terms():
    prob = ocp(running=[QuadraticState(np.eye(2))])
    ev = prob.evaluate(point(prob))
    assert list(ev.terms) == ["terminal", "running", "regularization"]
    res = MeanOfColumns([0]).value_and_grad(X, None)
    assert isinstance(res, TerminalResult) and res.theta_T_bar is None and res.terms == {}
    assert not hasattr(prob, "last_evaluation") and not hasattr(prob.terminal, "last_terms")


def test_potential_terminal_declares_reads_theta_T():
    ot = mfg_preset("ot", n_samples=8, nt=2)
    nf = mfg_preset("nf", n_samples=8, nt=2)
    assert ot.terminal.reads_theta_T is True and nf.terminal.reads_theta_T is False
    ev = ot.evaluate(point(ot, scale=0.1))
    assert {"G", "L", "hjb", "hjb_terminal"} <= set(ev.terms)


def test_densities_and_interactions_are_checked():
    with pytest.raises(TypeError,
                       match=r"rho0 must follow the Density contract.*lacks 'dim', 'sample', 'logpdf'"):
        PotentialMFG(object())
    rho = gaussian(np.zeros(2))
    with pytest.raises(TypeError, match=r"interactions\[0\] must follow the Interaction contract"):
        PotentialMFG(rho, rho, interactions=[object()], n_samples=4)
    with pytest.raises(ValueError, match=r"rho1 must have the dimension of rho0"):
        PotentialMFG(rho, gaussian(np.zeros(3)), n_samples=4)


# --- evaluation on other samples ----------------------------------------------------------
def _flow(x, trace="exact"):
    return ContinuousNormalizingFlow(x, width=5, nt=2, trace=trace, n_probes=2, seed=4,
                                     alpha_R=0.3, scale=0.8)


def _mfg(x=None):
    prob = mfg_preset("crowd", n_samples=12, nt=2, seed=3)
    if x is not None:
        prob.set_samples(x)
    return prob


@pytest.mark.parametrize("family", ["plain", "cnf-exact", "cnf-hutchinson", "mfg"])
def test_evaluate_on_other_samples_equals_a_problem_built_on_them(family):
    rng = np.random.default_rng(7)
    x2 = rng.standard_normal((9, 2))
    if family == "plain":
        prob, fresh = ocp(terminal=MeanOfColumns([0, 1])), ocp(terminal=MeanOfColumns([0, 1]), x0=x2)
    elif family.startswith("cnf"):
        trace = family.split("-")[1]
        x = rng.standard_normal((14, 2))
        prob, fresh = _flow(x, trace), _flow(x2, trace)
    else:
        prob, fresh = _mfg(), _mfg(x2)
    theta = point(prob, scale=0.1)
    x0 = prob.x0.copy()
    probes = None if family != "cnf-hutchinson" else prob._probes.copy()
    ev = prob.evaluate(theta, x=x2)
    ref = fresh.evaluate(theta)
    assert ev.value == ref.value and np.array_equal(ev.gradient, ref.gradient)
    assert ev.terms == ref.terms
    # the problem is left unchanged
    assert np.array_equal(prob.x0, x0)
    if probes is not None:
        assert np.array_equal(prob._probes, probes)
    assert prob.evaluate(theta).value == prob.evaluate(theta).value


def test_evaluate_on_other_samples_refuses_per_sample_terminal_and_batch():
    prob = NeuralODEClassifier(X, Y, augment=1, width=3, nt=2)
    assert isinstance(prob.terminal, PerSampleTerminal)
    th = prob.init_params(0)
    with pytest.raises(ValueError, match="per-sample data"):
        prob.evaluate(th, x=prob.x0)
    mfg = _mfg()
    with pytest.raises(ValueError, match="batch.*not both"):
        mfg.evaluate(mfg.init_params(0), batch=np.arange(3), x=mfg.x0)
    with pytest.raises(ValueError, match=r"x must have 2 columns"):
        mfg.evaluate(mfg.init_params(0), x=np.zeros((3, 4)))


def test_mfg_evaluate_on_is_evaluate_with_x():
    prob = _mfg()
    th = point(prob, scale=0.1)
    x2 = np.random.default_rng(2).standard_normal((7, 2))
    terms = prob.evaluate_on(th, x2)
    assert terms["objective"] == prob.evaluate(th, gradient=False, x=x2).value


def test_set_samples():
    prob = _mfg()
    assert isinstance(prob, ResamplableProblem)
    x2 = np.random.default_rng(2).standard_normal((5, 2))
    prob.set_samples(x2)
    assert prob.n_samples == 5 and np.array_equal(prob.x0, x2)
    flow = _flow(np.ones((6, 2)), "hutchinson")
    flow.set_samples(x2)
    assert flow.n_samples == 5 and flow._probes.shape[1] == 5


# --- subsets of the samples -----------------------------------------------------------------
_CLF = dict(augment=1, loss="softmax", width=4, nt=3, tikhonov=1e-2, smoothness=1e-2,
            time_param=("piecewise_linear", 2))


def _classifier_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((23, 2))
    return x, (np.sum(x * x, axis=1) > 1.2).astype(int) + (x[:, 0] > 0.8)


def _classifier():
    return NeuralODEClassifier(*_classifier_data(), **_CLF)


def _viscous():
    return ViscousClassifier(X[:12], Y[:12], nu=0.1, n_paths=2, width=3, nt=3)


TAKE = {"classifier": _classifier, "viscous": _viscous,
        "cnf-hutchinson": lambda: _flow(np.random.default_rng(1).standard_normal((21, 2)),
                                        "hutchinson"),
        "mfg": _mfg}


@pytest.mark.parametrize("name", list(TAKE))
def test_take_rows_weighted_objective_equals_the_whole(name):
    prob = TAKE[name]()
    assert isinstance(prob, ShardableProblem)
    theta = point(prob, scale=0.1)
    n = prob.n_samples
    parts = [np.arange(0, n // 3), np.arange(n // 3, n)[::-1]]
    ev = prob.evaluate(theta)
    J = ev.value - ev.terms["regularization"]
    Js = 0.0
    x0 = prob.x0.copy()
    for rows in parts:
        part = prob.take(rows)
        assert type(part) is type(prob) and part.n_samples == rows.size
        assert np.array_equal(part.x0, prob.x0[rows])
        e = part.evaluate(theta)
        Js += rows.size / n * (e.value - e.terms["regularization"])
        # the part on its rows equals the whole on the same batch
        eb = prob.evaluate(theta, batch=rows)
        assert abs(e.value - eb.value) <= 1e-13 * abs(eb.value)
        assert np.allclose(e.gradient, eb.gradient, rtol=1e-12, atol=1e-14)
    assert abs(Js - J) <= 1e-12 * abs(J)
    assert np.array_equal(prob.x0, x0)
    if name in ("classifier", "viscous"):
        part = prob.take(parts[1])
        assert np.array_equal(part.labels, prob.labels[parts[1]])
        assert np.array_equal(part.terminal.labels, prob.labels[parts[1]])


def test_take_gradient_weighted_equals_the_whole_without_regularizers():
    prob = _classifier()
    prob.regularizers = []
    theta = point(prob, scale=0.1)
    n = prob.n_samples
    J, g = prob.objective_and_gradient(theta)
    parts = [np.arange(0, 10), np.arange(10, n)]
    Js = sum(r.size / n * prob.take(r).objective(theta) for r in parts)
    gs = sum(r.size / n * prob.take(r).objective_and_gradient(theta)[1] for r in parts)
    assert abs(Js - J) <= 1e-12 * abs(J) and np.allclose(gs, g, rtol=1e-11, atol=1e-14)


def test_take_rejects_bad_rows():
    prob = _classifier()
    with pytest.raises(ValueError, match="rows indices must lie"):
        prob.take(np.array([0, prob.n_samples]))


# --- declared capabilities ---------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["store_states", ("checkpoint", 2)])
def test_gauss_newton_product_is_the_same_whether_the_tape_is_reused_or_not(strategy):
    ref, prob = _classifier(), NeuralODEClassifier(*_classifier_data(), **_CLF, strategy=strategy)
    assert ref.strategy.reusable_tape is True
    theta = point(ref, scale=0.1)
    v = np.random.default_rng(3).standard_normal(ref.n_params)
    op, op2 = ref.gauss_newton_operator(theta), prob.gauss_newton_operator(theta)
    assert op.evaluation.value == op.value and op2.evaluation.gradient is op2.gradient
    Gv, Gv2 = op.matvec(v), op2.matvec(v)
    assert np.allclose(Gv, Gv2, rtol=1e-12, atol=1e-14)
    assert np.allclose(op.matvec(v), Gv, rtol=0, atol=0)  # the tape serves several products
