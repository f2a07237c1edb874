import numpy as np
import pytest

from ocp_learn.kernels import axpy_numba
from ocp_learn.kernels.axpy_numba import add_scaled, axpy


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_updates_round_exactly_as_numpy(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 37)).astype(dtype)
    y = rng.standard_normal((300, 37)).astype(dtype)
    a = 0.1234567
    assert axpy_numba._fused(x, y)
    ref = y.copy()
    ref += dtype(a) * x
    out = axpy(a, x, y.copy())
    assert out.dtype == dtype and np.array_equal(out, ref)
    s = add_scaled(y, a, x)
    assert s.dtype == dtype and np.array_equal(s, ref) and s is not y


def test_views_small_arrays_and_mixed_dtypes_take_numpy_and_keep_the_dtype():
    rng = np.random.default_rng(1)
    y = rng.standard_normal((200, 40))
    x = rng.standard_normal((200, 40))
    v = y[:, :30]                                   # a view: not contiguous
    assert not axpy_numba._fused(x[:, :30], v)
    ref = v + 2.0 * x[:, :30]
    axpy(2.0, x[:, :30], v)
    assert np.array_equal(y[:, :30], ref)
    small = np.ones((3, 2))
    assert not axpy_numba._fused(small, small)
    assert np.array_equal(add_scaled(small, 0.5, small), np.full((3, 2), 1.5))
    y32 = np.ones((100, 50), np.float32)             # float64 update of a float32 state
    out = add_scaled(y32, 0.5, np.ones((100, 50)))
    assert out.dtype == np.float32 and np.all(out == 1.5)
