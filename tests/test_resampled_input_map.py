"""A resampled flow with a fixed input map trains on each draw mapped once."""
import numpy as np

from ocp_learn.problems.cnf import ContinuousNormalizingFlow
from ocp_learn.recipes.flow import flow_data, train_flow


def test_resampled_flow_maps_each_draw_once(monkeypatch):
    seen = []
    original = ContinuousNormalizingFlow.set_samples

    def spy(self, x):
        original(self, x)
        seen.append((np.array(x), self.x0.copy(), self.input_map(x)))

    monkeypatch.setattr(ContinuousNormalizingFlow, "set_samples", spy)
    x, _ = flow_data("gmm", 40, 0, 3)
    shift, scale = x.mean(0), 0.55

    drawn = []

    def draw(n, rng):
        drawn.append(flow_data("gmm", n, int(rng.integers(1 << 30)), 3)[0])
        return drawn[-1]

    train_flow(x, maxiter=2, resample_every=1, draw=draw, n_val=30, width=4, nt=2,
               shift=shift, scale=scale)
    assert seen
    for raw, x0, mapped in seen:  # the problem gets the draws themselves, in data coordinates
        assert any(d.shape == raw.shape and np.array_equal(d, raw) for d in drawn)
        np.testing.assert_array_equal(x0, mapped)
        np.testing.assert_allclose(x0, (raw - shift) / scale, rtol=1e-15)
