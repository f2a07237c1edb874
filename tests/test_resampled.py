"""L-BFGS on redrawn samples (:func:`ocp_learn.optim.lbfgs_resampled`): the MFG schedule,
shared with the CNF (``ocp-learn flow --resample-every K``)."""
import numpy as np
import pytest

from ocp_learn.recipes.flow import flow_data, train_flow
from ocp_learn.optim import lbfgs_resampled
from ocp_learn.optim.checkpoint import load_checkpoint
from ocp_learn.problems.cnf import ContinuousNormalizingFlow


def _draw(n, rng):
    return flow_data("8gaussians", n, rng)[0]


def _flow(n=64):
    return ContinuousNormalizingFlow(_draw(n, 0), width=4, nt=2, backend="numpy")


def test_resampled_run_redraws_selects_on_validation_and_resumes_exactly(tmp_path):
    stages = ((64, 6), (96, 3))
    full = lbfgs_resampled(_flow(), _draw, stages=stages, resample_every=3, n_val=80, seed=1)
    h = full["history"]
    assert h["stage"] == [1, 1, 2] and full["iterations"] == h["iteration"][-1] >= 3
    assert full["validation"] == min(h["validation"])     # the returned iterate is the best one
    prob = _flow()
    assert np.isclose(full["validation"], _validation(prob, full["theta"], 80, seed=1))
    # stop after the first chunk (the callback raises), then resume from the checkpoint
    ck = str(tmp_path / "ck.npz")

    def stop(it, theta, f, val):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lbfgs_resampled(_flow(), _draw, stages=stages, resample_every=3, n_val=80, seed=1,
                        checkpoint=ck, callback=stop)
    assert load_checkpoint(ck)[1]["nit"] == h["iteration"][0]
    resumed = lbfgs_resampled(_flow(), _draw, stages=stages, resample_every=3, n_val=80, seed=1,
                              checkpoint=ck, resume=True)
    assert all(resumed["history"][k] == h[k] for k in h if k != "seconds")
    assert np.array_equal(resumed["theta"], full["theta"])
    # a finished run: resuming with the same schedule trains nothing, a longer last stage continues
    again = lbfgs_resampled(_flow(), _draw, stages=stages, resample_every=3, n_val=80, seed=1,
                            checkpoint=ck, resume=True)
    assert again["iterations"] == full["iterations"]
    assert np.array_equal(again.x, full.x) and again.fun == full.fun   # its own best
    longer = lbfgs_resampled(_flow(), _draw, stages=((64, 6), (96, 6)), resample_every=3,
                             n_val=80, seed=1, checkpoint=ck, resume=True)
    assert longer["history"]["stage"] == [1, 1, 2, 2] and longer["iterations"] > full["iterations"]


def _validation(prob, theta, n_val, seed):
    from ocp_learn.errors import check_rng
    from ocp_learn.optim.resampled import objective_on
    return objective_on(prob, theta, _draw(n_val, check_rng(seed)))


def test_train_flow_resampled_warm_starts_from_a_fixed_batch_checkpoint(tmp_path):
    x = _draw(64, 0)
    ck = str(tmp_path / "ck.npz")
    kw = dict(width=4, nt=2, backend="numpy", checkpoint=ck, checkpoint_every=2)
    _, res0, _ = train_flow(x, maxiter=4, **kw)
    _, res, _ = train_flow(x, maxiter=7, resample_every=3, draw=_draw, resume=True, **kw)
    assert res0.nit == 4 and 4 < res.nit <= 7 and res.method == "L-BFGS-B, resampled"
    with pytest.raises(ValueError, match="resample_every"):
        train_flow(x, maxiter=2, resample_every=3, **kw)          # no sampler
    with pytest.raises(ValueError, match="resample_every"):
        lbfgs_resampled(_flow(), _draw, resample_every=0)


def test_resume_with_more_samples_per_draw_keeps_the_validation_sample(tmp_path):
    """The checkpoint records ``n_val``: a resume with larger draws (``--n``) selects on the
    same validation sample as before; a different ``n_val`` is refused."""
    ck = str(tmp_path / "ck.npz")
    first = lbfgs_resampled(_flow(), _draw, stages=((64, 3),), resample_every=3, n_val=50,
                            seed=2, checkpoint=ck)
    assert load_checkpoint(ck)[1]["resampled"]["n_val"] == 50
    more = lbfgs_resampled(_flow(), _draw, stages=((128, 6),), resample_every=3, seed=2,
                           checkpoint=ck, resume=True)
    prob = _flow()
    # both chunks' validation values are on the 50-sample validation set of the first run
    assert all(np.isfinite(more["history"]["validation"]))
    assert more["history"]["validation"][0] == first["history"]["validation"][0]
    assert np.isclose(more["validation"], _validation(prob, more["theta"], 50, seed=2))
    with pytest.raises(ValueError, match="n_val"):
        lbfgs_resampled(_flow(), _draw, stages=((128, 9),), resample_every=3, n_val=128,
                        seed=2, checkpoint=ck, resume=True)
