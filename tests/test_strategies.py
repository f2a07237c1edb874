"""Gradient strategies (MATH B3, B4): every discretize-then-optimize strategy returns the
store-all gradient; checkpointing recomputes exactly Griewank's t(N, s) steps; the
reversible strategy stores O(1) floats; the continuous adjoint converges at the order."""
from functools import cache
from math import comb

import numpy as np
import pytest

import ocp_learn as ol
from ocp_learn.gradients import (Checkpoint, get_strategy, repetition_number, revolve_cost,
                                 revolve_split)
from ocp_learn.models import HamiltonianNet


def make_problem(strategy="store_all", integrator="rk4", model="mlp", nt=10, n=8, d=2,
                 time_param=("piecewise_linear", 3), running=True, seed=0, T=1.5):
    rng = np.random.default_rng(seed)
    m = ol.SingleLayerNet(d, width=5) if model == "mlp" else HamiltonianNet(d)
    x = rng.standard_normal((n, d))
    y = rng.integers(0, 2, n)
    D = d if model == "mlp" else 2 * d
    run = [ol.KineticEnergy(m, 0.5)] if running and model == "mlp" else []
    prob = ol.OCP(m, x, ol.LinearHeadLoss(y, D, "logistic"), T=T, nt=nt, integrator=integrator,
                  time_param=time_param, running=run, regularizers=[ol.Tikhonov(1e-2)],
                  strategy=strategy)
    theta = prob.init_params(seed) + 0.3 * rng.standard_normal(prob.n_params)
    return prob, theta


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


DTO = ["store_states", ("checkpoint", 1), ("checkpoint", 2), ("checkpoint", 3), ("checkpoint", 50)]


@pytest.mark.parametrize("integrator", ["euler", "heun", "rk4"])
@pytest.mark.parametrize("strategy", DTO, ids=str)
def test_dto_strategies_equal_store_all_rk(integrator, strategy):
    p0, theta = make_problem(integrator=integrator)
    ev0 = p0.evaluate(theta)
    p1, _ = make_problem(strategy, integrator=integrator)
    ev1 = p1.evaluate(theta)
    assert rel(ev1.gradient, ev0.gradient) <= 1e-12
    assert rel(ev1.lam0, ev0.lam0) <= 1e-12
    assert ev1.value == ev0.value


@pytest.mark.parametrize("strategy", DTO + ["reversible"], ids=str)
@pytest.mark.parametrize("nt", [8, 64])
def test_dto_strategies_equal_store_all_leapfrog(strategy, nt):
    p0, theta = make_problem(integrator="leapfrog", model="ham", nt=nt)
    g0 = p0.objective_and_gradient(theta)[1]
    p1, _ = make_problem(strategy, integrator="leapfrog", model="ham", nt=nt)
    assert rel(p1.objective_and_gradient(theta)[1], g0) <= 1e-12


def test_revolve_formula_against_brute_force():
    """t(N, s) (MATH B4) is the minimum of the checkpointing recursion, found by brute force."""

    @cache
    def best(l, s):
        if l == 1:
            return 0
        if s == 1:
            return l * (l - 1) // 2
        return min(m + best(l - m, s - 1) + best(m, s) for m in range(1, l))

    for s in range(1, 6):
        for N in range(1, 60):
            assert revolve_cost(N, s) == best(N, s), (N, s)
            if N >= 2 and s >= 2:
                m = revolve_split(N, s)
                assert m + best(N - m, s - 1) + best(m, s) == best(N, s)
    assert repetition_number(10, 2) == 3 and comb(2 + 3, 2) >= 10 > comb(2 + 2, 2)


def _linear_problem(N, s):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 1))
    return ol.OCP(ol.LinearModel(1), x, ol.LinearHeadLoss(np.array([0.3, -0.2]), 1, "squares"),
                  nt=N, integrator="euler", strategy=("checkpoint", s))


@pytest.mark.parametrize("s", [1, 2, 3, 4, 6, 10])
def test_checkpoint_recomputations_equal_griewank(s):
    Ns = list(range(1, 41)) + [63, 100, 128, 200] + ([513] if s >= 3 else [])
    for N in Ns:
        prob = _linear_problem(N, s)
        led = prob.evaluate(np.array([0.2, 0.5, -0.1])).ledger
        assert led.recomputed_steps == revolve_cost(N, s), (N, s)
        assert led.steps == N and led.vjp_evals == N
        # stored floats: min(s, N) checkpoints of n D = 2 floats plus one Euler tape (2 floats)
        assert led.stored_floats == min(s, N) * 2 + 2, (N, s, led.stored_floats)
        assert led.stored_floats == Checkpoint.analytic_stored_floats(N, s, 2, 2)


def test_checkpoint_ledger_on_rk4():
    n, d, N, s = 8, 2, 37, 4
    prob, theta = make_problem(("checkpoint", s), nt=N, n=n, d=d, running=False)
    led = prob.evaluate(theta).ledger
    t = revolve_cost(N, s)
    assert led.recomputed_steps == t
    assert led.rhs_evals == 4 * (N + t) and led.vjp_evals == 4 * N
    assert led.stored_floats == s * n * d + 4 * n * d


def test_reversible_storage_flat_and_gradient_exact():
    stored, errs = [], []
    for N in (8, 128, 2048):
        p0, theta = make_problem(integrator="leapfrog", model="ham", nt=N, T=4.0, n=6)
        p1, _ = make_problem("reversible", integrator="leapfrog", model="ham", nt=N, T=4.0, n=6)
        g0 = p0.objective_and_gradient(theta)[1]
        ev = p1.evaluate(theta)
        stored.append(ev.ledger.stored_floats)
        errs.append(rel(ev.gradient, g0))
        assert ev.ledger.recomputed_steps == N
        assert ev.ledger.reconstruction_error <= 1e-12
        assert p0.evaluate(theta).ledger.reconstruction_error == 0.0  # store_all rebuilds nothing
    assert max(stored) <= 1.10 * min(stored)
    assert stored[0] == 6 * 4 + 3 * 6 * 2  # one state (n D) + one leapfrog tape (3 n d)
    assert max(errs) <= 1e-12, errs
    # store_all grows linearly in N
    p8 = make_problem(integrator="leapfrog", model="ham", nt=8)[0]
    p64 = make_problem(integrator="leapfrog", model="ham", nt=64)[0]
    th = p8.init_params(0)
    assert p64.evaluate(th).ledger.stored_floats == 8 * p8.evaluate(th).ledger.stored_floats


@pytest.mark.parametrize("integrator,order", [("euler", 1), ("heun", 2), ("rk4", 4)])
@pytest.mark.parametrize("variant", ["backsolve", "interpolate"])
def test_continuous_adjoint_converges_at_the_order(integrator, order, variant):
    errs = []
    Ns = (16, 32, 64) if order < 4 else (8, 16, 32)
    for N in Ns:
        p0, theta = make_problem(integrator=integrator, nt=N, time_param=("piecewise_constant", 2),
                                 running=False)
        p1, _ = make_problem(("continuous", variant), integrator=integrator, nt=N,
                             time_param=("piecewise_constant", 2), running=False)
        errs.append(rel(p1.objective_and_gradient(theta)[1], p0.objective_and_gradient(theta)[1]))
    errs = np.array(errs)
    assert errs[0] > 1e-10  # it is not the discrete gradient
    orders = np.log2(errs[:-1] / errs[1:])
    # at least the order of the tableau (Heun's backsolve difference is observed at order 3)
    assert np.all(orders > order - 0.35), (errs, orders)
    assert np.all(orders < order + 1.35), (errs, orders)


def test_continuous_adjoint_with_running_cost_converges():
    errs = []
    for N in (8, 16, 32):
        p0, theta = make_problem(nt=N, time_param=None, running=True)
        p1, _ = make_problem(("continuous", "interpolate"), nt=N, time_param=None, running=True)
        errs.append(rel(p1.objective_and_gradient(theta)[1], p0.objective_and_gradient(theta)[1]))
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(orders > 3.6), (errs, orders)


def test_strategy_input_errors():
    with pytest.raises(ValueError, match="s must"):
        get_strategy(("checkpoint", 0))
    with pytest.raises(ValueError, match="variant"):
        get_strategy(("continuous", "bogus"))
    with pytest.raises(ValueError, match="strategy must be one of"):
        get_strategy("nope")
    p, th = make_problem("reversible", integrator="rk4")
    with pytest.raises(TypeError, match="step_inverse"):
        p.objective_and_gradient(th)
    p, th = make_problem("continuous", integrator="leapfrog", model="ham")
    with pytest.raises(TypeError, match="tableau"):
        p.objective_and_gradient(th)


def test_bench_command_writes_tables_and_plots(tmp_path):
    """`ocp-learn bench integrators` (tiny sizes) writes JSON, markdown, PNG and the index."""
    import json

    from ocp_learn.cli import main

    rc = main(["bench", "integrators", "--out", str(tmp_path),
               "--args", "--n 16 --maxiter 2 --Ns 4,8 --ref-N 128"])
    assert rc == 0
    for f in ("integrators.json", "integrators.md", "integrators.png", "INDEX.md"):
        assert (tmp_path / f).stat().st_size > 0
    rows = json.loads((tmp_path / "integrators.json").read_text())["rows"]
    assert {r["integrator"] for r in rows} == {"euler", "heun", "rk4", "leapfrog"}


@pytest.mark.slow
def test_bench_memory_stored_floats_match_formulas(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "benchmarks.bench_memory", "--n", "8", "--Ns", "4,16",
                    "--no-torch", "--out", str(tmp_path)], check=True, capture_output=True,
                   cwd=str(root))
    rows = json.loads((tmp_path / "memory.json").read_text())["rows"]
    assert len(rows) == 16 and all(r["match"] for r in rows)
    for r in rows:
        if not r["strategy"].startswith("continuous"):
            assert r["grad_rel_err_vs_store_all"] <= 1e-12


REUSE = [("store_all", "rk4"), ("store_states", "rk4"), (("checkpoint", 3), "rk4"),
         ("reversible", "leapfrog"), (("continuous", "backsolve"), "rk4"),
         (("continuous", "interpolate"), "rk4")]


def test_reuse_cases_cover_every_strategy():
    from ocp_learn.gradients import STRATEGIES

    assert {s if isinstance(s, str) else s[0] for s, _ in REUSE} == set(STRATEGIES)


@pytest.mark.parametrize("spec,integrator", REUSE, ids=str)
def test_reusable_tape_is_declared_honestly(spec, integrator):
    """A strategy that declares ``reusable_tape`` gives the same adjoint from its tape a
    second time; one that does not consumes it."""
    from ocp_learn.controls import PiecewiseLinear, StepControl
    from ocp_learn.gradients import Sweep
    from ocp_learn.integrators import get_integrator
    from ocp_learn.ledger import Ledger

    rng = np.random.default_rng(3)
    field = ol.SingleLayerNet(2, width=5) if integrator == "rk4" else HamiltonianNet(2)
    D = field.state_dim
    nodes = 0.5 * rng.standard_normal((3, field.layout.size))
    y0, lamN = rng.standard_normal((7, D)), rng.standard_normal((7, D))
    times = np.linspace(0.0, 1.0, 9)
    strategy = get_strategy(spec)

    def backward(tape=None):
        grad = np.zeros_like(nodes)
        ctrls = [StepControl(PiecewiseLinear(3), nodes, times[k], times[k + 1] - times[k], 0.0,
                             1.0, grad) for k in range(len(times) - 1)]
        sweep = Sweep(field, get_integrator(integrator), times, ctrls, Ledger())
        if tape is None:
            _, tape = strategy.forward(sweep, y0)
        return tape, strategy.backward(sweep, tape, lamN.copy()), grad

    tape, lam0, g = backward()
    if strategy.reusable_tape:
        for _ in range(2):
            _, lam1, g1 = backward(tape)
            assert np.array_equal(lam1, lam0) and np.array_equal(g1, g)
    else:
        with pytest.raises(KeyError):
            backward(tape)
