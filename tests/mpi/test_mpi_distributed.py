"""ocp_learn.distributed on the ranks of COMM_WORLD.

Run under MPI (the CI step): ``mpiexec -n 2 python -m pytest -q -p no:cacheprovider tests/mpi``.
Without a launcher (the default ``python -m pytest``) the same tests run on one
rank with :class:`SerialComm` and still compare against the single-process
problem.  Every assertion is agreed on by all ranks (``allgather``) so that a
failure on one rank fails all of them instead of leaving the others waiting
in a collective.
"""
import numpy as np
import pytest

from ocp_learn.distributed import DistributedProblem, Parallel, SerialComm, auto_comm
from ocp_learn.errors import NonFiniteError
from ocp_learn.optim import adam, gauss_newton, lbfgs

from toy_problems import BareToy

from .problems import PROBLEMS, classifier, mfg, point, rel

pytestmark = pytest.mark.mpi

COMM = auto_comm()
RANK, SIZE = COMM.Get_rank(), COMM.Get_size()


def agree(ok, what=""):
    """Assert ``ok`` on every rank (collective)."""
    oks = COMM.allgather((bool(ok), RANK, what))
    bad = [(r, w) for o, r, w in oks if not o]
    assert not bad, f"failed on ranks: {bad}"


def same_everywhere(arr):
    """True if ``arr`` is bitwise equal on all ranks."""
    arrs = COMM.allgather(np.asarray(arr, dtype=float))
    return all(np.array_equal(arrs[0], a) for a in arrs[1:])


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_gradient_equals_single_process(name):
    prob = PROBLEMS[name]()
    theta = point(prob, scale=0.1)
    f, g = prob.objective_and_gradient(theta)  # single process, full data, on every rank
    dist = DistributedProblem(prob, COMM)
    fd, gd = dist.objective_and_gradient(theta)
    virt = DistributedProblem(prob, SerialComm(), virtual_ranks=SIZE)
    fv, gv = virt.objective_and_gradient(theta)
    agree(abs(fd - f) <= 1e-12 * abs(f) and rel(gd, g) <= 1e-12,
          f"{name}: |df|={abs(fd - f):.2e} rel dg={rel(gd, g):.2e}")
    # the fixed-order reduction: the MPI result is bitwise the serial K-shard result
    agree(fd == fv and np.array_equal(gd, gv), f"{name}: MPI != virtual shards")
    agree(same_everywhere(np.r_[fd, gd]), f"{name}: ranks disagree")
    # objective without gradient and the reported terms
    agree(dist.objective(theta) == virt.objective(theta))
    agree(abs(dist.evaluate(theta).terms["regularization"]
              - prob.evaluate(theta).terms["regularization"]) == 0.0)


def test_minibatch_gradient_with_rows_on_one_rank():
    prob = classifier()
    theta = point(prob)
    dist = DistributedProblem(prob, COMM)
    for batch in (np.arange(0, 7), np.array([prob.n_samples - 1, 3, 40, 12]),
                  np.arange(prob.n_samples) % 3 == 0):
        f, g = prob.objective_and_gradient(theta, batch)
        fd, gd = dist.objective_and_gradient(theta, batch)
        agree(abs(fd - f) <= 1e-12 * abs(f) and rel(gd, g) <= 1e-12, f"batch {batch}")


def test_gauss_newton_product():
    prob = classifier()
    theta = point(prob)
    dist = DistributedProblem(prob, COMM)
    v = np.random.default_rng(3).standard_normal(prob.n_params)
    op, opd = prob.gauss_newton_operator(theta), dist.gauss_newton_operator(theta)
    agree(abs(opd.value - op.value) <= 1e-12 * abs(op.value) and rel(opd.gradient, op.gradient) <= 1e-12)
    Gv, Gvd = op.matvec(v), opd.matvec(v)
    agree(rel(Gvd, Gv) <= 1e-12, f"rel {rel(Gvd, Gv):.2e}")
    agree(same_everywhere(Gvd))


@pytest.mark.parametrize("method", ["lbfgs", "gauss_newton", "adam"])
def test_root_driven_optimizer_same_iterates(method):
    prob = classifier()
    kw = {"lbfgs": dict(maxiter=8), "gauss_newton": dict(maxiter=4),
          "adam": dict(maxiter=12, lr=5e-2, batch_size=16, seed=4)}[method]
    opt = {"lbfgs": lbfgs, "gauss_newton": gauss_newton, "adam": adam}[method]
    seen = []
    dist = DistributedProblem(prob, COMM)
    res = dist.minimize(opt, progress=False, callback=lambda k, x, f, g: seen.append(x.copy()), **kw)
    agree(same_everywhere(res.x) and same_everywhere(res.history["objective"]), "ranks' results")
    virt = DistributedProblem(prob, SerialComm(), virtual_ranks=SIZE)
    rv = opt(virt, progress=False, **kw)
    agree(np.array_equal(res.x, rv.x) and res.history["objective"] == rv.history["objective"],
          f"{method}: MPI iterates != virtual-shard iterates")
    rs = opt(prob, progress=False, **kw)
    agree(rel(res.x, rs.x) <= 1e-9, f"{method}: rel dx vs single process {rel(res.x, rs.x):.2e}")
    agree(res.nit == rs.nit)
    if RANK == 0:
        assert len(seen) == res.nit  # the callback ran on the root only
    else:
        assert not seen


def test_lockstep_optimizer():
    prob = classifier()
    dist = DistributedProblem(prob, COMM)
    res = lbfgs(dist, maxiter=6, progress=False)  # every rank runs L-BFGS
    rs = lbfgs(prob, maxiter=6, progress=False)
    agree(same_everywhere(res.x) and rel(res.x, rs.x) <= 1e-9)


class _Quadratic(BareToy):
    """Generic (non-OCP) problem: mean_i 1/2 (a_i . theta - b_i)^2; shard 1 can fail."""

    def __init__(self, shard, fail=False):
        super().__init__(3)
        rng = np.random.default_rng(shard.index)
        self.a = rng.standard_normal((shard.size, 3))
        self.b = rng.standard_normal(shard.size)
        self.fail = fail and shard.index == 1
        self.n_samples = shard.size

    def _value_grad(self, theta):
        if self.fail:
            raise NonFiniteError("shard 1 diverged")
        r = self.a @ theta - self.b
        return 0.5 * np.mean(r * r), self.a.T @ r / r.size


def test_error_on_one_rank_is_raised_on_every_rank():
    n = 5 * max(SIZE, 2)
    comm, virt = (COMM, 1) if SIZE > 1 else (SerialComm(), 2)
    dist = DistributedProblem(lambda s: _Quadratic(s, fail=True), comm, n_samples=n, virtual_ranks=virt)
    with pytest.raises(NonFiniteError, match="shard 1 diverged"):
        dist.objective_and_gradient(np.ones(3))
    ok = DistributedProblem(lambda s: _Quadratic(s), comm, n_samples=n, virtual_ranks=virt)
    f, g = ok.objective_and_gradient(np.ones(3))
    agree(np.isfinite(f) and same_everywhere(g))


def test_per_rank_seeded_agents():
    n = 24

    def factory(shard):
        return mfg("crowd", n=shard.size, seed=shard.rng(7))

    dist = DistributedProblem(factory, COMM, n_samples=n)
    x0 = COMM.allgather(dist.local.x0.copy())
    agree(all(not np.array_equal(x0[0][:3], x[:3]) for x in x0[1:]), "ranks drew the same agents")
    again = DistributedProblem(factory, COMM, n_samples=n)
    agree(np.array_equal(again.local.x0, dist.local.x0), "agents not reproducible")
    virt = DistributedProblem(factory, SerialComm(), n_samples=n, virtual_ranks=SIZE)
    agree(np.array_equal(virt.locals[RANK].x0, dist.local.x0), "MPI agents != virtual-shard agents")
    y = dist.local.rho0.sample(n + 5, 11)  # the same new agents on every rank
    dist.set_samples(y)
    virt.set_samples(y)
    agree(np.array_equal(virt.locals[RANK].x0, dist.local.x0), "new agents differ")
    agree(dist.n_samples == n + 5 and not np.array_equal(again.local.x0, dist.local.x0))
    theta = point(dist.local, scale=0.1)
    agree(dist.objective(theta) == virt.objective(theta), "MPI != virtual shards")


def test_validation_objective_is_sharded_and_agreed():
    """lbfgs_resampled's validation objective: a collective over the ranks' shards, equal to
    the serial value up to rounding and bitwise the same on every rank."""
    from ocp_learn.optim.resampled import objective_on

    prob = mfg("crowd", n=40)
    theta = point(prob, scale=0.1)
    x = prob.rho0.sample(33, 5)
    serial = objective_on(prob, theta, x)
    val = objective_on(prob, theta, x, Parallel(COMM))
    agree(abs(val - serial) <= 1e-12 * abs(serial), f"{val} vs {serial}")
    agree(same_everywhere(val), "ranks disagree on the validation objective")
    agree(prob.x0.shape[0] == 40, "the problem's samples changed")


def test_resampled_lbfgs_with_kept_pairs_agrees_across_ranks(tmp_path):
    """lbfgs_resampled(keep_pairs=True) under MPI: the root drives, every rank ends with the same
    iterate and the same correction pairs (they come back with the root's result)."""
    from ocp_learn.optim import lbfgs_resampled

    draw = lambda n, rng: mfg("crowd", n=8).rho0.sample(n, rng)  # noqa: E731
    r = lbfgs_resampled(mfg("crowd", n=40), draw, stages=((40, 4),), resample_every=2, n_val=30,
                        seed=4, keep_pairs=True, parallel=Parallel(COMM),
                        checkpoint=tmp_path / f"ck{RANK}.npz")
    agree((tmp_path / f"ck{RANK}.npz").exists() == (RANK == 0), "one writer")
    agree(r["iterations"] == 4, f"iterations {r['iterations']}")
    agree(same_everywhere(r["theta"]), "ranks end with different iterates")
    agree(same_everywhere([r["validation"], r["nfev"]]), "ranks disagree on the validation")
