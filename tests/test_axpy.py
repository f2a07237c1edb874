import numpy as np
import pytest

from ocp_learn.kernels import axpy_numba
from ocp_learn.kernels.axpy_numba import add_scaled, axpy, product_dtype, scaled


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


@pytest.mark.parametrize("shape", [(300, 37), (3, 2)])
def test_writes_into_given_storage_as_the_numpy_expressions(shape):
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal(shape), rng.standard_normal(shape)
    a = np.float64(0.3) * np.float64(1.7)
    out = np.empty_like(y)
    assert add_scaled(y, a, x, out) is out and np.array_equal(out, y + a * x)
    buf = np.empty(shape, product_dtype(a, x))
    assert scaled(a, x, buf) is buf and np.array_equal(buf, a * x)
    # a NumPy float64 coefficient promotes a float32 array, as the NumPy expression does
    x32 = x.astype(np.float32)
    assert product_dtype(a, x32) == np.float64 and product_dtype(0.5, x32) == np.float32
    buf = np.empty(shape, product_dtype(a, x32))
    assert np.array_equal(scaled(a, x32, buf), a * x32)
