"""ocp_learn.distributed in one process (virtual shards), plus the MPI suite under mpiexec -n 2.

The MPI suite (tests/mpi) also runs here on one rank; ``test_mpi_suite_on_two_ranks``
launches it under ``mpiexec -n 2`` when mpi4py and mpiexec are installed
(``pip install -e ".[mpi]"``) and is skipped otherwise -- unless
``OCP_LEARN_REQUIRE_MPI=1``, which turns the skip into a failure.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import ocp_learn.distributed as D
from ocp_learn.distributed import (DistributedProblem, SerialComm, auto_comm, distribute, local_rows,
                                   partition, shard_rng)
from ocp_learn.errors import NonFiniteError
from ocp_learn.optim import adam, gauss_newton, lbfgs
from ocp_learn.verify import check_gradient

from mpi.problems import PROBLEMS, classifier, cnf, mfg, point, rel
from toy_problems import BareToy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- shards, seeds, communicators ------------------------------------------------------
@pytest.mark.parametrize("n,k", [(10, 3), (7, 7), (2 ** 18, 2), (5, 1)])
def test_partition_is_contiguous_and_balanced(n, k):
    shards = partition(n, k)
    assert [s.index for s in shards] == list(range(k))
    assert shards[0].start == 0 and shards[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(shards, shards[1:]))
    sizes = [s.size for s in shards]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == n
    assert sizes == [len(a) for a in np.array_split(np.arange(n), k)]
    assert abs(sum(s.weight for s in shards) - 1.0) <= 1e-15


def test_partition_rejects_more_ranks_than_samples():
    with pytest.raises(ValueError, match="at least one sample per rank"):
        partition(3, 4)
    with pytest.raises(ValueError, match="count"):
        partition(3, 0)


def test_local_rows_split_a_batch():
    shards = partition(10, 3)  # [0,4) [4,7) [7,10)
    batch = np.array([9, 0, 5, 3, 8])
    parts = [local_rows(s, batch) for s in shards]
    assert [p[0].tolist() for p in parts] == [[0, 3], [1], [2, 1]]
    assert [p[1] for p in parts] == [2 / 5, 1 / 5, 2 / 5]
    assert local_rows(shards[1], None) == (None, 3 / 10)


def test_shard_rng_is_per_shard_reproducible_and_independent_of_rank_count():
    a = shard_rng(5, 1).standard_normal(4)
    assert np.array_equal(a, shard_rng(5, 1).standard_normal(4))
    assert np.array_equal(a, partition(20, 4)[1].rng(5).standard_normal(4))
    assert np.array_equal(a, partition(20, 2)[1].rng(5).standard_normal(4))
    assert not np.array_equal(a, shard_rng(5, 0).standard_normal(4))
    assert not np.array_equal(a, shard_rng(6, 1).standard_normal(4))
    # it is the spawn tree of SeedSequence
    child = np.random.SeedSequence(5).spawn(2)[1]
    assert np.array_equal(a, np.random.default_rng(child).standard_normal(4))
    with pytest.raises(ValueError, match="seed"):
        shard_rng(-1, 0)


def test_serial_comm_collectives():
    c = SerialComm()
    assert (c.Get_rank(), c.Get_size()) == (0, 1)
    assert c.bcast({"a": 1}) == {"a": 1} and c.gather(3) == [3] and c.allgather(2) == [2]
    recv = np.empty((1, 3))
    c.Gather(np.array([1.0, 2.0, 3.0]), recv)
    assert recv.tolist() == [[1.0, 2.0, 3.0]]


def _clear_launch_env(monkeypatch):
    for var in D.comm._RANK_VARS + D.comm._SIZE_VARS + ("OCP_LEARN_MPI",):
        monkeypatch.delenv(var, raising=False)


def test_auto_comm_is_serial_without_a_launcher(monkeypatch):
    _clear_launch_env(monkeypatch)
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # importing it would fail: it must not be tried
    assert not D.mpi_launched()
    assert isinstance(auto_comm(), SerialComm)
    assert D.is_root()
    assert distribute(classifier()).__class__.__name__ == "NeuralODEClassifier"


def test_auto_comm_under_a_launcher_without_mpi4py_raises(monkeypatch):
    _clear_launch_env(monkeypatch)
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setenv("PMI_SIZE", "2")
    assert D.mpi_launched() and D.launch_size() == 2
    with pytest.raises(ImportError, match=r"\.\[mpi\]"):
        auto_comm()
    monkeypatch.setenv("PMI_SIZE", "1")  # one rank: serial is the same computation
    assert isinstance(auto_comm(), SerialComm)
    monkeypatch.setenv("OCP_LEARN_MPI", "0")
    monkeypatch.setenv("PMI_SIZE", "2")
    assert not D.mpi_launched() and isinstance(auto_comm(), SerialComm)


# --- exact sums: virtual shards against the single-process problem -----------------------
@pytest.mark.parametrize("name", list(PROBLEMS))
@pytest.mark.parametrize("k", [1, 2, 3])
def test_sharded_gradient_equals_single_process(name, k):
    prob = PROBLEMS[name]()
    theta = point(prob, scale=0.1)
    ev = prob.evaluate(theta)
    dist = DistributedProblem(prob, SerialComm(), virtual_ranks=k)
    evd = dist.evaluate(theta)
    assert abs(evd.value - ev.value) <= 1e-12 * abs(ev.value)
    assert rel(evd.gradient, ev.gradient) <= 1e-12
    assert evd.terms.keys() == ev.terms.keys()
    for key, v in ev.terms.items():
        assert np.allclose(evd.terms[key], v, rtol=1e-12, atol=0), key
    if k == 1:  # one shard: the same floating-point operations as the problem itself
        assert evd.value == ev.value and np.array_equal(evd.gradient, ev.gradient)
    assert dist.objective(theta) == evd.value
    # per-rank ledger: the sweeps of one shard are those of the serial problem
    assert evd.ledger.steps == ev.ledger.steps and evd.ledger.vjp_evals == ev.ledger.vjp_evals


def test_hutchinson_probes_are_sharded_with_their_samples():
    prob = cnf(trace="hutchinson")
    theta = point(prob, scale=0.1)
    f, g = prob.objective_and_gradient(theta)
    fd, gd = DistributedProblem(prob, SerialComm(), virtual_ranks=3).objective_and_gradient(theta)
    assert abs(fd - f) <= 1e-12 * abs(f) and rel(gd, g) <= 1e-12


@pytest.mark.parametrize("name", ["classifier", "mfg-ot"])
def test_distributed_gradient_taylor(name):
    prob = PROBLEMS[name]()
    dist = DistributedProblem(prob, SerialComm(), virtual_ranks=2)
    res = check_gradient(dist.objective_and_gradient, point(prob, scale=0.1), seed=3)
    assert res.passed and res.usable >= 4, str(res)


def test_minibatches_match_single_process_including_empty_shards():
    prob = classifier()
    theta = point(prob)
    dist = DistributedProblem(prob, SerialComm(), virtual_ranks=3)
    mask = np.zeros(prob.n_samples, bool)
    mask[[2, 50]] = True
    for batch in (np.arange(5), np.array([60, 1, 30, 31]), mask):  # arange(5): shards 1, 2 empty
        f, g = prob.objective_and_gradient(theta, batch)
        fd, gd = dist.objective_and_gradient(theta, batch)
        assert abs(fd - f) <= 1e-12 * abs(f) and rel(gd, g) <= 1e-12


def test_gauss_newton_products_match_and_are_symmetric():
    prob = classifier()
    theta = point(prob)
    dist = DistributedProblem(prob, SerialComm(), virtual_ranks=3)
    op, opd = prob.gauss_newton_operator(theta), dist.gauss_newton_operator(theta)
    assert abs(opd.value - op.value) <= 1e-12 * abs(op.value)
    assert rel(opd.gradient, op.gradient) <= 1e-12
    rng = np.random.default_rng(0)
    v, w = rng.standard_normal((2, prob.n_params))
    assert rel(opd.matvec(v), op.matvec(v)) <= 1e-12
    assert abs(w @ opd.matvec(v) - v @ opd.matvec(w)) <= 1e-12 * abs(w @ opd.matvec(v))
    assert opd.ledger.jvp_evals > 0
    with pytest.raises(ValueError, match="shape"):
        opd.matvec(np.ones(3))
    dist.gauss_newton_operator(theta)
    with pytest.raises(RuntimeError, match="stale"):
        opd.matvec(v)  # an operator from an older point


@pytest.mark.parametrize("method", ["lbfgs", "gauss_newton", "adam"])
def test_optimizers_run_unchanged(method):
    prob = classifier()
    kw = {"lbfgs": dict(maxiter=10), "gauss_newton": dict(maxiter=4),
          "adam": dict(maxiter=15, lr=5e-2, batch_size=16, seed=4)}[method]
    opt = {"lbfgs": lbfgs, "gauss_newton": gauss_newton, "adam": adam}[method]
    rs = opt(prob, progress=False, **kw)
    dist = DistributedProblem(prob, SerialComm(), virtual_ranks=2)
    rd = dist.minimize(method, progress=False, **kw)
    assert rd.nit == rs.nit and rel(rd.x, rs.x) <= 1e-9
    assert np.allclose(rd.history["objective"], rs.history["objective"], rtol=1e-10, atol=0)
    assert rd.sweeps == pytest.approx(rs.sweeps)
    # same shards: bitwise the same run again
    rd2 = opt(DistributedProblem(prob, SerialComm(), virtual_ranks=2), progress=False, **kw)
    assert np.array_equal(rd.x, rd2.x)


# --- the checks catch a wrong reduction ------------------------------------------------
class _RegularizerPerShard(DistributedProblem):
    """Deliberately wrong: keeps the regularizers in every shard (added K times)."""

    def __init__(self, problem, **kw):
        super().__init__(problem, **kw)
        for loc in self.locals:
            loc.regularizers = list(self.regularizers)


class _UnweightedShards(DistributedProblem):
    """Deliberately wrong: every shard's mean gets weight 1/K instead of n_r / n."""

    def _local_part(self, local, shard, *args, **kwargs):
        meta, vec, op = super()._local_part(local, shard, *args, **kwargs)
        f = (1.0 / shard.count) / shard.weight
        meta["value"] *= f
        return meta, vec * f, op


@pytest.mark.parametrize("wrong", [_RegularizerPerShard, _UnweightedShards])
def test_a_wrong_reduction_is_caught(wrong):
    prob = classifier(n=61)  # 61 = 21 + 20 + 20 rows: unequal shards
    theta = point(prob)
    f, g = prob.objective_and_gradient(theta)
    fw, gw = wrong(prob, comm=SerialComm(), virtual_ranks=3).objective_and_gradient(theta)
    assert abs(fw - f) > 1e-8 * abs(f) and rel(gw, g) > 1e-8


# --- factories, resampling, errors -----------------------------------------------------
def test_factory_with_per_shard_agents_and_resampling():
    def factory(shard):
        return mfg("crowd", n=shard.size, seed=shard.rng(3))

    dist = DistributedProblem(factory, SerialComm(), n_samples=30, virtual_ranks=3)
    x = [loc.x0.copy() for loc in dist.locals]
    assert [len(a) for a in x] == [10, 10, 10]
    assert not np.array_equal(x[0], x[1])
    theta = point(dist.local, scale=0.1)
    # the sharded objective is the mean over the union of the shards' agents
    whole = mfg("crowd", n=30)
    whole.x0 = np.vstack(x)
    f, g = whole.objective_and_gradient(theta)
    fd, gd = dist.objective_and_gradient(theta)
    assert abs(fd - f) <= 1e-12 * abs(f) and rel(gd, g) <= 1e-12
    # new samples: split into shards again (31 rows: unequal shards), same objective
    y = whole.rho0.sample(31, 5)
    dist.set_samples(y)
    whole.set_samples(y)
    assert dist.n_samples == 31 and [loc.n_samples for loc in dist.locals] == [11, 10, 10]
    f, g = whole.objective_and_gradient(theta)
    fd, gd = dist.objective_and_gradient(theta)
    assert abs(fd - f) <= 1e-12 * abs(f) and rel(gd, g) <= 1e-12


@pytest.mark.parametrize("name", ["cnf", "mfg-crowd"])
def test_objective_on_given_samples_and_set_samples_match_single_process(name):
    prob = PROBLEMS[name]()
    theta = point(prob, scale=0.1)
    x = np.random.default_rng(4).standard_normal((23, 2))
    dist = DistributedProblem(PROBLEMS[name](), SerialComm(), virtual_ranks=3)
    ev, evd = prob.evaluate(theta, gradient=False, x=x), dist.evaluate(theta, gradient=False, x=x)
    assert abs(evd.value - ev.value) <= 1e-12 * abs(ev.value) and evd.gradient is None
    assert dist.n_samples == prob.n_samples  # nothing was swapped
    with pytest.raises(ValueError, match="batch"):
        dist.evaluate(theta, np.arange(3), x=x)
    prob.set_samples(x)
    dist.set_samples(x)
    f, g = prob.objective_and_gradient(theta)
    fd, gd = dist.objective_and_gradient(theta)
    assert abs(fd - f) <= 1e-12 * abs(f) and rel(gd, g) <= 1e-12


class _Bare(BareToy):
    def __init__(self, shard):
        super().__init__(2)
        self.n_samples = shard.size

    def _value_grad(self, theta):
        return 1.0, np.ones(2)


def test_shard_problems_follow_the_contract():
    dist = DistributedProblem(_Bare, SerialComm(), n_samples=4, virtual_ranks=2)
    with pytest.raises(TypeError, match="set_samples"):
        dist.set_samples(np.zeros((4, 1)))
    with pytest.raises(TypeError, match="gauss_newton_operator"):
        dist.gauss_newton_operator(np.zeros(2))
    with pytest.raises(TypeError, match="evaluate"):
        DistributedProblem(lambda s: object(), SerialComm(), n_samples=4)
    # no time steps: no sweep count; an OCP's shards declare theirs
    assert lbfgs(dist, maxiter=2, progress=False).sweeps is None
    assert DistributedProblem(classifier(), SerialComm()).nt == classifier().nt


class _Fails(BareToy):
    def __init__(self, shard):
        super().__init__(2)
        self.shard, self.n_samples = shard, shard.size

    def _value_grad(self, theta):
        if self.shard.index == 1:
            raise NonFiniteError("shard 1 diverged")
        return 1.0, np.ones(2)


def test_errors_of_a_shard_reach_the_caller_and_optimizers_stop_cleanly():
    dist = DistributedProblem(_Fails, SerialComm(), n_samples=4, virtual_ranks=2)
    with pytest.raises(NonFiniteError, match="shard 1"):
        dist.objective_and_gradient(np.zeros(2))
    # a start whose objective is not finite is bad input, named as such (as lbfgs does)
    with pytest.raises(ValueError, match="theta0.*shard 1"):
        adam(dist, maxiter=3, progress=False, final_objective=False)


def test_bad_input():
    prob = classifier()
    with pytest.raises(TypeError, match="comm"):
        DistributedProblem(prob, comm=object())
    with pytest.raises(ValueError, match="virtual_ranks"):
        DistributedProblem(prob, SerialComm(), virtual_ranks=0)
    with pytest.raises(ValueError, match="at least one sample per rank"):
        DistributedProblem(prob, SerialComm(), virtual_ranks=prob.n_samples + 1)
    with pytest.raises(ValueError, match="n_samples"):
        DistributedProblem(lambda s: prob, SerialComm())
    with pytest.raises(ValueError, match="factory built"):
        DistributedProblem(lambda s: prob, SerialComm(), n_samples=10, virtual_ranks=2)
    with pytest.raises(TypeError, match="problem must be"):
        DistributedProblem(3, SerialComm())
    with pytest.raises(ValueError, match="root"):
        DistributedProblem(prob, SerialComm(), root=1)
    dist = DistributedProblem(prob, SerialComm(), virtual_ranks=2)
    with pytest.raises(ValueError, match="theta"):
        dist.objective(np.ones(3))
    with pytest.raises(ValueError, match="batch"):
        dist.objective(dist.init_params(0), batch=np.array([0, prob.n_samples]))
    with pytest.raises(ValueError, match="optimizer"):
        dist.minimize("newton")
    with pytest.raises(RuntimeError, match="non-root"):
        dist.serve()
    # a problem that cannot take a subset of its samples: refused, a factory is needed
    odd = _Fails(partition(4, 1)[0])
    odd.check_theta = odd.evaluate = lambda *a, **k: None
    with pytest.raises(TypeError, match=r"factory.*lacks 'take'"):
        DistributedProblem(odd, SerialComm(), virtual_ranks=2)


# --- the MPI suite on two ranks ----------------------------------------------------------
def _mpiexec():
    exe = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    return exe


@pytest.mark.mpi
def test_mpi_suite_on_two_ranks():
    exe = _mpiexec()
    if exe is None:
        if os.environ.get("OCP_LEARN_REQUIRE_MPI") == "1":
            pytest.fail("OCP_LEARN_REQUIRE_MPI=1 but mpi4py or mpiexec is missing")
        pytest.skip("mpi4py/mpiexec not installed (pip install -e \".[mpi]\")")
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    for var in D.comm._RANK_VARS + D.comm._SIZE_VARS:
        env.pop(var, None)
    proc = subprocess.run([exe, "-n", "2", sys.executable, "-m", "pytest", "-p",
                           "no:cacheprovider", os.path.join("tests", "mpi")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert out.count(" passed") >= 2 and "failed" not in out, out[-4000:]
