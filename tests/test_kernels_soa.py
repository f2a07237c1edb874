"""The tiled (structure-of-arrays) flow kernels equal the per-sample kernels.

:mod:`ocp_learn.kernels.potential_soa_numba` runs the Jacobian path of the exact trace in
tiles of samples with the weight products as GEMMs; its right-hand side, samples'
cotangent, HJB weights and parameter cotangents must equal the per-sample kernels'
(``layout="samples"``) to 1e-12, for partial tiles, several layers, several thread blocks
and float32.  A negative control drops the first layer's trace term and is caught.
"""
import numpy as np
import pytest

from ocp_learn.kernels import potential_flow_numba as pf
from ocp_learn.kernels import potential_soa_numba as soa
from ocp_learn.kernels.potential_net_numba import accumulators, cotangents, params
from ocp_learn.models.potential import PotentialResNet as Potential


def _case(n, d, m, M, seed=0):
    rng = np.random.default_rng(seed)
    pot = Potential(d, width=m, n_layers=M)
    theta = pot.init_params(seed) + 0.3 * rng.standard_normal(pot.n_params)
    P = pot.unpack(theta)
    x = rng.standard_normal((n, d + 3))[:, :d]  # a strided view, as the field passes it
    extra = 0.1 * rng.standard_normal(n)
    ybar = rng.standard_normal((n, d + 3))
    return P, pot.h, x, extra, ybar


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - b)) / max(np.max(np.abs(b)), 1e-300))


def _both(P, h, x, extra, ybar, c_R, layout, dtype=np.float64):
    n, d = x.shape
    x = x.astype(dtype)
    out = np.zeros((n, d + 3), dtype)
    pf.flow_rhs(P, x, 0.4, None, h, 1.5, c_R, extra, out, False, "jacobian", layout)
    sbar = np.zeros((n, d + 3), dtype)
    wR = np.zeros(n)
    B = pf.flow_vjp(P, x, 0.4, None, h, 1.5, c_R, extra, ybar.astype(dtype), sbar, wR, None,
                    "jacobian", layout=layout)
    return out, sbar[:, :d], wR, B


@pytest.mark.parametrize("n,d,m,M", [(1, 2, 8, 1), (63, 2, 8, 1), (65, 3, 8, 2), (200, 5, 16, 1),
                                     (130, 2, 4, 3), (70, 40, 16, 1)])
@pytest.mark.parametrize("c_R", [-1, "hjb"])
def test_tiles_equal_the_per_sample_kernels(n, d, m, M, c_R):
    P, h, x, extra, ybar = _case(n, d, m, M)
    c_R = d + 2 if c_R == "hjb" else c_R
    ref = _both(P, h, x, extra, ybar, c_R, "samples")
    got = _both(P, h, x, extra, ybar, c_R, "tiles")
    assert _rel(got[0], ref[0]) < 1e-12   # right-hand side
    assert _rel(got[1], ref[1]) < 1e-12   # samples' cotangent
    assert np.array_equal(got[2], ref[2])  # HJB weights (signs)
    for k in ref[3]:
        assert _rel(got[3][k], ref[3][k]) < 1e-12, k


def test_tiles_are_the_auto_layout_for_the_exact_trace_and_bad_layout_is_rejected():
    P, h, x, extra, ybar = _case(70, 2, 8, 1)
    auto = _both(P, h, x, extra, ybar, 4, "auto")
    tiles = _both(P, h, x, extra, ybar, 4, "tiles")
    assert all(np.array_equal(a, b) for a, b in zip(auto[:3], tiles[:3]))
    with pytest.raises(ValueError, match="layout"):
        _both(P, h, x, extra, ybar, 4, "soa")


@pytest.mark.parametrize("nblk", [2, 3])
def test_tiles_independent_of_the_block_split(nblk):
    P, h, x, extra, ybar = _case(300, 2, 8, 1)
    n, d = x.shape
    Ps = soa.soa_params(P, d)
    res = []
    for nb in (1, nblk):
        out = np.zeros((n, d + 3))
        wR = np.zeros(n)
        acc = accumulators(params(P), nb)
        pf._vjp_soa(x, 0.4, h, Ps, 1.5, d + 2, extra, ybar, nb, soa.tile_size(d, 8), out, wR, acc)
        res.append((out, cotangents(acc)))
    assert _rel(res[1][0], res[0][0]) < 1e-14
    for k in res[0][1]:
        assert _rel(res[1][1][k], res[0][1][k]) < 1e-12, k


def test_float32_tiles_are_float32_and_close_to_float64():
    P, h, x, extra, ybar = _case(200, 2, 16, 1)
    r64 = _both(P, h, x, extra, ybar, 4, "tiles")
    r32 = _both(P, h, x, extra, ybar, 4, "tiles", np.float32)
    assert r32[0].dtype == np.float32 and r32[1].dtype == np.float32
    assert _rel(r32[0], r64[0]) < 1e-5
    assert _rel(r32[1], r64[1]) < 1e-5
    for k in r64[3]:
        assert _rel(r32[3][k], r64[3][k]) < 1e-5, k


def test_a_dropped_trace_term_is_caught():
    """Negative control: without the first layer's trace term (``csq = 0``) the tiles no
    longer equal the per-sample kernels, in the right-hand side and in the cotangents."""
    P, h, x, extra, ybar = _case(100, 2, 8, 1)
    n, d = x.shape
    ref = _both(P, h, x, extra, ybar, -1, "samples")
    Ps = soa.soa_params(P, d)._replace(csq=np.zeros(8))
    out = np.zeros((n, d + 3))
    pf._rhs_soa(x, 0.4, h, Ps, 1.5, -1, extra, 1, soa.tile_size(d, 8), out)
    assert _rel(out, ref[0]) > 1e-3
    sbar = np.zeros((n, d + 3))
    acc = accumulators(params(P), 1)
    pf._vjp_soa(x, 0.4, h, Ps, 1.5, -1, extra, ybar, 1, soa.tile_size(d, 8), sbar, np.zeros(n), acc)
    assert _rel(cotangents(acc)["K0"], ref[3]["K0"]) > 1e-3


@pytest.mark.parametrize("M", [1, 2])
def test_cnf_gradient_through_the_tiles_equals_casadi(M, monkeypatch):
    """The CasADi twin: the CNF objective + gradient with the tiled kernels (two tiles, the
    second partial; OT and HJB terms on) equal CasADi's AD of the same discrete problem,
    and a dropped trace term (``csq = 0``) is caught by the same comparison."""
    from ocp_learn.problems.cnf import ContinuousNormalizingFlow
    from ocp_learn.reference import compare_gradient
    x = np.random.default_rng(M).standard_normal((70, 2))
    p = ContinuousNormalizingFlow(x, width=6, n_layers=M, nt=2, backend="numba", alpha_L=0.3,
                                  alpha_R=0.5)
    theta = p.init_params(0) + 0.2 * np.random.default_rng(1).standard_normal(p.n_params)
    r = compare_gradient(p, theta)
    assert r["rel_diff"] < 1e-12 and r["value_rel_diff"] < 1e-12, r
    real = soa.soa_params
    monkeypatch.setattr(soa, "soa_params",
                        lambda *a, **k: real(*a, **k)._replace(csq=np.zeros(6)))
    assert compare_gradient(p, theta)["rel_diff"] > 1e-6
