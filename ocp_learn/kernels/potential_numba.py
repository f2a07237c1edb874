r"""Numba kernels of the OT-Flow potential (MATH D1--D3, D6), fused per sample.

The same straight-line program and adjoint as the numpy reference
:mod:`ocp_learn.models.potential` (whose module docstring holds the
derivation), written as loops over one sample at a time so that the
``(M + 1)`` Jacobians ``J_i`` (``m x c``, ``c = d`` for the exact trace, ``c = k``
probes for Hutchinson) live in per-thread scratch, never per batch.  They are
stored transposed, ``(c, m)``, so that ``P_i = K_i J_{i-1}`` is a set of
contiguous dot products of length ``m`` (vectorized thanks to ``reassoc``;
5--50x faster than the ``(m, c)`` layout for small ``d``).  Samples
are split into one contiguous block per thread, ``prange`` over blocks; the
parameter cotangents are accumulated per block and summed in Python.

The activation ``(sigma, tanh, 1 - tanh^2)`` of a whole layer is one call of
:func:`_act_row`, written without libm calls (Cody--Waite ``exp``/``expm1`` and
an ``atanh`` series for ``log1p``) so that LLVM vectorizes it: about 10x faster
than two scalar libm calls per neuron (no SVML here), which were a third to a half
of the forward pass at ``d = 2``; accurate to a few ulp (tested).

*float32* (``OCP(dtype=numpy.float32)``, e.g. ``ContinuousNormalizingFlow(...,
backend="numba", dtype=numpy.float32)`` on the fused field of
:mod:`.potential_flow_numba`): the Jacobian-path kernels take float32 samples, probes,
parameters (:func:`_params`, :func:`_W` with a dtype) and ``h``, and allocate their
scratch in ``S.dtype`` (:func:`_fwd_workspace`, :func:`_adj_workspace`); numba compiles
float32 specializations of the same source, so float64 numbers are bit-for-bit
unchanged.  Deliberately kept in float64: the scalar reductions (dot products, sums of
squares start from the float64 literal ``0.0``), the per-block parameter cotangents
(:func:`accumulators`: each sums thousands of per-sample terms) and :func:`_act_row`'s
internal arithmetic (float64 constants: its float32 outputs are correctly rounded, within
0.5 ulp; numpy's float32 ``tanh`` is within 1.4 ulp).  Measured
(``tests/test_float32_kernels.py``, d = 2 and 5, m = 8, M = 1 and 2, exact and
Hutchinson): CNF objective within ``4e-8`` and gradient within ``1.1e-7`` (2-norm)
relative of float64, jvp/vjp dot-product mismatch ``1e-8``; at d = 2, m = 32,
n = 4096 the error is ``1.2e-7`` and the run is no faster than float64 (the mixed
float32/float64 loops; ``benchmarks/results/kernels_float32.md``).  The Gram path
(:mod:`.potential_gram_numba`) casts float32 inputs to float64 and computes there.

Thread count: :func:`set_num_threads` (``numba.set_num_threads``, called from
Python, never inside the kernels).  All kernels use ``cache=True``.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic

__all__ = ["derivatives", "derivatives_vjp", "derivatives_jvp", "set_num_threads"]

# Reassociation lets LLVM vectorize the dot products (reductions) and use FMA; it changes
# the rounding only (no finite-math assumptions: NaN and inf still propagate).
_FM = {"reassoc", "contract"}


#: Width ``m`` and column count ``c`` (``d``, or the probes) from which the Jacobian path's
#: per-sample products ``K_i J_{i-1}`` (m x m times m x c) and their adjoints call BLAS
#: (``np.dot`` inside the kernels, cache-blocked) instead of the loops, which stream ``K_i``
#: from L2 once per column: 1.7x faster at m = 128, d = 64 (42 % of DGEMM against 25 %),
#: 1.3x slower at d = 2 (call overhead), hence the column bound.  Read at compile time.
BLAS_INNER_M = 64
BLAS_INNER_C = 16


def set_num_threads(n):
    """Number of threads used by the kernels (``numba.set_num_threads``, from Python)."""
    numba.set_num_threads(int(n))


def _blocks(n, blocks=None):
    """Edges of contiguous sample blocks, one per thread unless ``blocks`` is given."""
    nb_ = max(1, min(n, numba.get_num_threads() if blocks is None else int(blocks)))
    edges = np.linspace(0, n, nb_ + 1).round().astype(np.int64)
    return edges


@njit(cache=True, fastmath=_FM)
def _log_cosh(a):
    aa = abs(a)
    return aa + np.log1p(np.exp(-2.0 * aa))


@njit(cache=True, fastmath=_FM)
def _act(a):
    """``(sigma(a), sigma'(a))`` of ``sigma(a) = log(e^a + e^-a)`` (D1) from ONE exponential:
    with ``em = expm1(-2|a|)``, ``sigma(a) = |a| + log(2 + em)`` and
    ``tanh a = sign(a) (-em) / (2 + em)`` (no cancellation for small ``|a|``)."""
    aa = abs(a)
    em = np.expm1(-2.0 * aa)
    t = -em / (2.0 + em)
    return aa + np.log(2.0 + em), (t if a >= 0.0 else -t)


@intrinsic
def _bits_to_float(typingctx, x):
    """Reinterpret the bits of an int64 as a float64 (vectorizes; builds ``2^k`` exactly)."""
    if x != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))
    return types.float64(types.int64), codegen


# expm1(r), |r| <= ln2/2: Taylor coefficients 1/k!, k = 2..13 (truncation < 2e-17 relative)
_INV_LN2 = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01   # fdlibm's split of ln 2 (hi has 32 trailing zero bits)
_LN2_LO = 1.90821492927058770002e-10


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def _act_row(a, sg, g, q):
    """Vectorizable ``sigma(a)``, ``sigma'(a) = tanh a`` and ``sigma''(a) = 1 - tanh^2 a``
    (D1) for a row ``a``, written to ``sg``, ``g``, ``q`` (no libm calls, so LLVM
    vectorizes the loop; same formulas as :func:`_act`, with
    ``em = expm1(x)``, ``e = exp(x)``, ``x = -2|a|`` by Cody--Waite reduction
    ``x = k ln 2 + r`` and a degree-13 Taylor polynomial of ``expm1(r)``, and
    ``log(2 + em) = log1p(e) = 2 atanh(e / (2 + e))`` by its odd series,
    ``e / (2 + e) <= 1/3``).  Accurate to a few ulp (tested against numpy).
    ``x`` is clipped at -40 (``exp(-40) < 5e-18``: no change after rounding).
    No ``reassoc`` here: it would undo the two-part reduction; NaN propagates;
    ``error_model="numpy"`` drops the zero-division branch that blocks vectorization."""
    for j in range(a.shape[0]):
        aj = a[j]
        aa = abs(aj)
        x = -2.0 * aa
        x = -40.0 if x < -40.0 else x
        kf = np.floor(x * _INV_LN2 + 0.5)
        r = (x - kf * _LN2_HI) - kf * _LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = r + (r * r) * p                   # expm1(r)
        s2 = _bits_to_float((np.int64(kf) + 1023) << 52)  # 2^k, k in [-58, 0]
        e = s2 + s2 * p                       # exp(x)
        em = (s2 - 1.0) + s2 * p              # expm1(x) (s2 - 1 exact for k >= -53)
        t = e / (2.0 + e)
        t2 = t * t
        c = 1.0 / 35.0
        c = c * t2 + 1.0 / 33.0
        c = c * t2 + 1.0 / 31.0
        c = c * t2 + 1.0 / 29.0
        c = c * t2 + 1.0 / 27.0
        c = c * t2 + 1.0 / 25.0
        c = c * t2 + 1.0 / 23.0
        c = c * t2 + 1.0 / 21.0
        c = c * t2 + 1.0 / 19.0
        c = c * t2 + 1.0 / 17.0
        c = c * t2 + 1.0 / 15.0
        c = c * t2 + 1.0 / 13.0
        c = c * t2 + 1.0 / 11.0
        c = c * t2 + 1.0 / 9.0
        c = c * t2 + 1.0 / 7.0
        c = c * t2 + 1.0 / 5.0
        c = c * t2 + 1.0 / 3.0
        sg[j] = aa + 2.0 * (t + (t * t2) * c)
        th = -em / (1.0 + e)
        gj = th if aj >= 0.0 else -th
        g[j] = gj
        q[j] = 1.0 - gj * gj


# ------------------------------------------------------------------ exact trace by Gram matrices
def use_gram(d, m, M):
    """Whether the exact trace is cheaper through the Gram matrices ``Gamma_i = J_i J_i^T``.

    The Jacobian path costs about ``3 M m^2 d`` flops per sample (forward + adjoint);
    the Gram path about ``4 m^3`` for ``M = 1`` and ``8 M m^3`` otherwise, independent of
    ``d``.  Chosen when ``d > m`` (``M = 1``) or ``d > 2 m`` (``M > 1``).
    """
    return d > (1 if M == 1 else 2) * m


def gram0(K0, d):
    """``G_0 = K_{0,x} K_{0,x}^T`` (m, m), the per-parameter constant of the Gram path."""
    K0x = np.ascontiguousarray(K0[:, :d], dtype=np.float64)
    return K0x @ K0x.T


def gram0_vjp(K0, d, BG0):
    """Add the cotangent of :func:`gram0` to the ``K0`` cotangent: ``(BG0 + BG0^T) K_{0,x}``."""
    return (BG0 + BG0.T) @ K0[:, :d]


@njit(cache=True, fastmath=_FM)
def _gram_trace(h, K, g, q, z, G0, Gam, R):
    r"""Exact Laplacian of the network part by Gram matrices (D3, any ``d``).

    With ``J_0 = D_0 K_{0,x}`` and ``J_i = (I + h D_i K_i) J_{i-1}`` (``D_i = diag
    sigma'(a_i)``), ``tr = sum_j q_{0j} z_{1j} |J_0 row|^2 + h sum_i sum_j q_{ij} z_{i+1,j}
    (K_i Gamma_{i-1} K_i^T)_{jj}`` only needs ``Gamma_i = J_i J_i^T`` (m x m):
    ``Gamma_0 = D_0 G_0 D_0`` and ``Gamma_i = Gamma_{i-1} + h (D_i R_i + R_i^T D_i)
    + h^2 D_i R_i K_i^T D_i`` with ``R_i = K_i Gamma_{i-1}``.  Stores ``Gamma_i`` in
    ``Gam[i]`` (i < M) and ``R_i`` in ``R[i]``; returns the trace.
    """
    M = K.shape[0]
    m = G0.shape[0]
    lap = 0.0
    for j in range(m):
        lap += q[0, j] * z[1, j] * G0[j, j]
        for k in range(m):
            Gam[0, j, k] = g[0, j] * G0[j, k] * g[0, k]
    for i in range(1, M + 1):
        Ki = K[i - 1]
        Gp = Gam[i - 1]
        Ri = R[i]
        for j in range(m):
            for k in range(m):
                Ri[j, k] = 0.0
            for l in range(m):
                kjl = Ki[j, l]
                for k in range(m):
                    Ri[j, k] += kjl * Gp[l, k]
        ti = 0.0
        for j in range(m):
            pj = 0.0
            for k in range(m):
                pj += Ri[j, k] * Ki[j, k]
            ti += q[i, j] * z[i + 1, j] * pj
        lap += h * ti
        if i < M:
            Gi = Gam[i]
            for j in range(m):
                hg = h * g[i, j]
                for k in range(m):
                    sjk = 0.0
                    for l in range(m):
                        sjk += Ri[j, l] * Ki[k, l]
                    Gi[j, k] = Gp[j, k] + hg * Ri[j, k] + h * Ri[k, j] * g[i, k] \
                        + hg * h * sjk * g[i, k]
    return lap


@njit(cache=True, fastmath=_FM)
def _gram_trace_vjp(h, lb, K, g, q, z, G0, Gam, R, gbar, qbar, zbar, Gb, Rb, Sb, BK, BG0):
    """Adjoint of :func:`_gram_trace` for the cotangent ``lb`` of the trace.

    Adds to ``gbar``, ``qbar``, ``zbar`` (as the Jacobian path does), to the ``K_i``
    cotangents ``BK`` and to ``BG0``, the cotangent of ``G_0`` (turned into a ``K_0``
    cotangent once per call by :func:`gram0_vjp`).  ``Gb`` carries the (symmetrized)
    cotangent of ``Gamma_i``; ``Rb``, ``Sb`` those of ``R_i`` and ``S_i = R_i K_i^T``.
    """
    M = K.shape[0]
    m = G0.shape[0]
    for j in range(m):
        for k in range(m):
            Gb[j, k] = 0.0
    for i in range(M, 0, -1):
        Ki = K[i - 1]
        BKi = BK[i - 1]
        Gp = Gam[i - 1]
        Ri = R[i]
        if i == M:
            # only the diagonal of S_M enters (the trace term)
            for j in range(m):
                pj = 0.0
                for k in range(m):
                    pj += Ri[j, k] * Ki[j, k]
                qbar[i, j] += h * lb * z[i + 1, j] * pj
                zbar[i + 1, j] += h * lb * q[i, j] * pj
                sb = h * lb * q[i, j] * z[i + 1, j]
                for k in range(m):
                    Rb[j, k] = sb * Ki[j, k]
                    BKi[j, k] += sb * Ri[j, k]
        else:
            for j in range(m):
                gi = g[i, j]
                acc = 0.0
                for k in range(m):
                    sjk = 0.0
                    for l in range(m):
                        sjk += Ri[j, l] * Ki[k, l]
                    gbv = Gb[j, k]
                    acc += gbv * (Ri[j, k] + h * sjk * g[i, k])
                    Rb[j, k] = 2.0 * h * gi * gbv
                    Sb[j, k] = h * h * gi * g[i, k] * gbv
                gbar[i, j] += 2.0 * h * acc
                pj = 0.0
                for k in range(m):
                    pj += Ri[j, k] * Ki[j, k]
                qbar[i, j] += h * lb * z[i + 1, j] * pj
                zbar[i + 1, j] += h * lb * q[i, j] * pj
                Sb[j, j] += h * lb * q[i, j] * z[i + 1, j]
            # S = R K^T:  Rb += Sb K,  BK += Sb^T R
            for j in range(m):
                for k in range(m):
                    sb = Sb[j, k]
                    for l in range(m):
                        Rb[j, l] += sb * Ki[k, l]
                        BKi[k, l] += sb * Ri[j, l]
        # R = K Gamma_{i-1}:  BK += Rb Gamma_{i-1},  Gb(i-1) = Gb(i) + K^T Rb
        # (two loop nests, each contiguous in its innermost index)
        for j in range(m):
            for k in range(m):
                rb = Rb[j, k]
                for l in range(m):
                    BKi[j, l] += rb * Gp[k, l]
        for j in range(m):
            for l in range(m):
                kjl = Ki[j, l]
                for k in range(m):
                    Gb[l, k] += kjl * Rb[j, k]
        for j in range(m):
            for k in range(j + 1, m):
                v = 0.5 * (Gb[j, k] + Gb[k, j])
                Gb[j, k] = v
                Gb[k, j] = v
    # Gamma_0 = D_0 G_0 D_0 and the level-0 trace term q_0 z_1 diag(G_0)
    for j in range(m):
        acc = 0.0
        for k in range(m):
            gbv = Gb[j, k]
            acc += gbv * G0[j, k] * g[0, k]
            BG0[j, k] += g[0, j] * gbv * g[0, k]
        gbar[0, j] += 2.0 * acc
        qbar[0, j] += lb * z[1, j] * G0[j, j]
        zbar[1, j] += lb * q[0, j] * G0[j, j]
        BG0[j, j] += lb * q[0, j] * z[1, j]


@njit(cache=True)
def _fwd_workspace(M, m, cc, r, dt=np.float64):
    """Per-block scratch of :func:`_fwd_sample` (activations, Jacobians, trace terms), of
    dtype ``dt`` (the kernels pass ``S.dtype``: float32 scratch for float32 samples)."""
    return (np.empty((M + 1, m), dt), np.empty((M + 1, m), dt), np.empty((M + 1, m), dt),
            np.empty((M + 1, m), dt), np.empty((M + 2, m), dt), np.empty((M + 1, m), dt),
            np.empty((M + 1, cc, m), dt), np.empty((M + 1, cc, m), dt), np.empty((cc, m), dt),
            np.empty(r, dt))


@njit(cache=True)
def _adj_workspace(M, m, cc, r, dt=np.float64):
    """Per-block scratch of the adjoint sweep (cotangents of the forward quantities), of
    dtype ``dt``."""
    return (np.empty((M + 1, m), dt), np.empty((M + 1, m), dt), np.empty((M + 2, m), dt),
            np.empty((cc, m), dt), np.empty((cc, m), dt), np.empty((cc, m), dt), np.empty(m, dt),
            np.empty(m, dt), np.empty(m, dt), np.empty(r, dt), np.empty((r, cc), dt),
            np.empty((m, m), dt))


@njit(cache=True, fastmath=_FM)
def _net_forward(h, w, K, bK, a, g, q, u, z, y):
    """The network part of steps 1--2 (D1, D2) from the opening pre-activation ``a[0]``:
    activations ``u_i``, ``g_i = sigma'``, ``q_i = sigma''``, the reverse sweep ``z_i``
    and ``y_i = g_i * z_{i+1}`` (so that ``grad_s N = K_0^T y_0``); returns ``w^T u_M``."""
    M = K.shape[0]
    m = w.shape[0]
    _act_row(a[0], u[0], g[0], q[0])
    for i in range(1, M + 1):
        Ki = K[i - 1]
        for j in range(m):
            acc = bK[i - 1, j]
            for k in range(m):
                acc += Ki[j, k] * u[i - 1, k]
            a[i, j] = acc
        _act_row(a[i], u[i], g[i], q[i])
        for j in range(m):
            u[i, j] = u[i - 1, j] + h * u[i, j]
    phi = 0.0
    for j in range(m):
        phi += w[j] * u[M, j]
    for j in range(m):
        z[M + 1, j] = w[j]
    for i in range(M, 0, -1):
        Ki = K[i - 1]
        for k in range(m):
            z[i, k] = z[i + 1, k]
        for j in range(m):
            yj = g[i, j] * z[i + 1, j]
            y[i, j] = yj
            hy = h * yj
            for k in range(m):
                z[i, k] += Ki[j, k] * hy
    for j in range(m):
        y[0, j] = g[0, j] * z[1, j]
    return phi


@njit(cache=True, fastmath=_FM)
def _fwd_sample(s, Wn, exact, d, h, w, A, b, c, K0, b0, K, bK,
                a, g, q, u, z, y, J, Pm, C0, As, G):
    """Steps 1--3 (D1--D3) for one sample, the trace by the Jacobians ``J_i`` (the Gram
    path is :mod:`.potential_gram_numba`); fills the scratch, returns (phi, lap), writes G."""
    M = K.shape[0]
    m = K0.shape[0]
    D = s.shape[0]
    r = A.shape[0]
    cc = C0.shape[0]
    # (1) forward pass
    for j in range(m):
        acc = b0[j]
        for k in range(D):
            acc += K0[j, k] * s[k]
        a[0, j] = acc
    phi = c[0] + _net_forward(h, w, K, bK, a, g, q, u, z, y)
    for l in range(r):
        acc = 0.0
        for k in range(D):
            acc += A[l, k] * s[k]
        As[l] = acc
        phi += 0.5 * acc * acc
    for k in range(D):
        phi += b[k] * s[k]
    # (2) gradient: G = K0^T y_0 + A^T A s + b (y_0 from the reverse sweep of _net_forward)
    for k in range(D):
        G[k] = b[k]
    for j in range(m):
        yj = y[0, j]
        for k in range(D):
            G[k] += K0[j, k] * yj
    for l in range(r):
        for k in range(D):
            G[k] += A[l, k] * As[l]
    # (3) trace
    for j in range(m):
        for col in range(cc):
            if exact:
                C0[col, j] = K0[j, col]
            else:
                acc = 0.0
                for k in range(d):
                    acc += K0[j, k] * Wn[k, col]
                C0[col, j] = acc
    lap = 0.0
    for j in range(m):
        csq = 0.0
        for col in range(cc):
            csq += C0[col, j] * C0[col, j]
            J[0, col, j] = g[0, j] * C0[col, j]
        lap += q[0, j] * z[1, j] * csq
    for i in range(1, M + 1):
        Ki = K[i - 1]
        Jp = J[i - 1]
        if m >= BLAS_INNER_M and cc >= BLAS_INNER_C:
            np.dot(Jp, Ki.T, Pm[i])
        else:
            for col in range(cc):
                for j in range(m):
                    acc = 0.0
                    for k in range(m):
                        acc += Ki[j, k] * Jp[col, k]
                    Pm[i, col, j] = acc
        ti = 0.0
        for j in range(m):
            psq = 0.0
            hg = h * g[i, j]
            for col in range(cc):
                p = Pm[i, col, j]
                psq += p * p
                J[i, col, j] = J[i - 1, col, j] + hg * p
            ti += q[i, j] * z[i + 1, j] * psq
        lap += h * ti
    for l in range(r):
        if exact:
            for k in range(d):
                lap += A[l, k] * A[l, k]
        else:
            for col in range(cc):
                acc = 0.0
                for k in range(d):
                    acc += A[l, k] * Wn[k, col]
                lap += acc * acc
    return phi, lap


@njit(cache=True, parallel=True, fastmath=_FM)
def _derivatives_kernel(S, W, exact, d, h, w, A, b, c, K0, b0, K, bK, edges, phi, G, lap):
    M = K.shape[0]
    m = K0.shape[0]
    r = A.shape[0]
    cc = d if exact else W.shape[2]
    for blk in prange(edges.size - 1):
        a, g, q, u, z, y, J, Pm, C0, As = _fwd_workspace(M, m, cc, r, S.dtype)
        for n in range(edges[blk], edges[blk + 1]):
            Wn = W[0] if exact else W[n]
            p, lp = _fwd_sample(S[n], Wn, exact, d, h, w, A, b, c, K0, b0, K, bK,
                                a, g, q, u, z, y, J, Pm, C0, As, G[n])
            phi[n] = p
            lap[n] = lp


@njit(cache=True, fastmath=_FM)
def _vjp_sample(s, Wn, exact, d, h, w, A, b, c, K0, b0, K, bK, phib, Gb, lb,
                a, g, q, u, z, y, J, Pm, C0, As,
                gbar, qbar, zbar, Jbar, Pbar, C0bar, ubar, abar, ybar, AG, AW, Tm, sbar,
                Bw, BA, Bb, Bc, BK0, Bb0, BK, BbK):
    """Adjoint of :func:`_fwd_sample` (module docstring of the numpy reference).
    """
    M = K.shape[0]
    m = K0.shape[0]
    r = A.shape[0]
    cc = C0.shape[0]
    for i in range(M + 1):
        for j in range(m):
            gbar[i, j] = 0.0
            qbar[i, j] = 0.0
    for i in range(M + 2):
        for j in range(m):
            zbar[i, j] = 0.0
    # ---- (3) trace
    for l in range(r):
        if exact:
            for k in range(d):
                BA[l, k] += 2.0 * lb * A[l, k]
        else:
            for col in range(cc):
                acc = 0.0
                for k in range(d):
                    acc += A[l, k] * Wn[k, col]
                AW[l, col] = acc
            for k in range(d):
                acc = 0.0
                for col in range(cc):
                    acc += AW[l, col] * Wn[k, col]
                BA[l, k] += 2.0 * lb * acc
    _jac_trace_vjp(exact, d, h, lb, K, g, q, z, J, Pm, C0, Wn, gbar, qbar, zbar, Jbar, Pbar,
                   C0bar, Tm, BK, BK0)
    _vjp_rest(s, Gb, phib, h, w, A, b, K0, K, g, q, u, z, y, As, gbar, qbar, zbar, ubar, abar, AG,
              ybar, sbar, Bw, BA, Bb, Bc, BK0, Bb0, BK, BbK)


@njit(cache=True, fastmath=_FM)
def _jac_trace_vjp(exact, d, h, lb, K, g, q, z, J, Pm, C0, Wn, gbar, qbar, zbar, Jbar, Pbar,
                   C0bar, Tm, BK, BK0):
    """Adjoint of the Jacobian path of the trace (step 3 of :func:`_fwd_sample`).

    From width :data:`BLAS_INNER_M` and :data:`BLAS_INNER_C` columns on, the two products per layer
    (``BK_i += Pbar^T J_{i-1}``, ``Jbar += Pbar K_i``) are BLAS calls into the
    scratch ``Tm`` (m, m) and ``C0bar`` (free until level 0)."""
    M = K.shape[0]
    m = g.shape[1]
    cc = C0.shape[0]
    for j in range(m):
        for col in range(cc):
            Jbar[col, j] = 0.0
    for i in range(M, 0, -1):
        Ki = K[i - 1]
        BKi = BK[i - 1]
        for j in range(m):
            psq = 0.0
            gj = 0.0
            for col in range(cc):
                p = Pm[i, col, j]
                psq += p * p
                gj += Jbar[col, j] * p
            gbar[i, j] += h * gj
            qbar[i, j] += h * lb * z[i + 1, j] * psq
            zbar[i + 1, j] += h * lb * q[i, j] * psq
            coef = 2.0 * h * lb * q[i, j] * z[i + 1, j]
            hg = h * g[i, j]
            for col in range(cc):
                Pbar[col, j] = hg * Jbar[col, j] + coef * Pm[i, col, j]
        Jp = J[i - 1]
        if m >= BLAS_INNER_M and cc >= BLAS_INNER_C:
            np.dot(Pbar.T, Jp, Tm)
            np.dot(Pbar, Ki, C0bar)
            for j in range(m):
                for k in range(m):
                    BKi[j, k] += Tm[j, k]
            for col in range(cc):
                for k in range(m):
                    Jbar[col, k] += C0bar[col, k]
        else:
            for col in range(cc):
                for j in range(m):
                    pb = Pbar[col, j]
                    for k in range(m):
                        BKi[j, k] += pb * Jp[col, k]
                        Jbar[col, k] += pb * Ki[j, k]
    for j in range(m):
        csq = 0.0
        gj = 0.0
        for col in range(cc):
            csq += C0[col, j] * C0[col, j]
            gj += Jbar[col, j] * C0[col, j]
        gbar[0, j] += gj
        qbar[0, j] += lb * z[1, j] * csq
        zbar[1, j] += lb * q[0, j] * csq
        coef = 2.0 * lb * q[0, j] * z[1, j]
        for col in range(cc):
            C0bar[col, j] = coef * C0[col, j] + g[0, j] * Jbar[col, j]
        if exact:
            for col in range(cc):
                BK0[j, col] += C0bar[col, j]
        else:
            for k in range(d):
                acc = 0.0
                for col in range(cc):
                    acc += C0bar[col, j] * Wn[k, col]
                BK0[j, k] += acc


@njit(cache=True, fastmath=_FM)
def _vjp_rest(s, Gb, phib, h, w, A, b, K0, K, g, q, u, z, y, As, gbar, qbar, zbar, ubar, abar, AG,
              ybr, sbar, Bw, BA, Bb, Bc, BK0, Bb0, BK, BbK):
    """Adjoint of steps 2 and 1 of :func:`_fwd_sample` (gradient, forward pass)."""
    m = K0.shape[0]
    D = s.shape[0]
    r = A.shape[0]
    # ---- (2) G = K0^T y_0 + A^T A s + b
    for l in range(r):
        acc = 0.0
        for k in range(D):
            acc += A[l, k] * Gb[k]
        AG[l] = acc
    for k in range(D):
        acc = 0.0
        for l in range(r):
            acc += A[l, k] * AG[l]
        sbar[k] = acc
        Bb[k] += Gb[k]
    for l in range(r):
        for k in range(D):
            BA[l, k] += As[l] * Gb[k] + AG[l] * s[k]
    for j in range(m):
        acc = 0.0
        for k in range(D):
            acc += K0[j, k] * Gb[k]
            BK0[j, k] += y[0, j] * Gb[k]
        ybr[j] = acc
    # ---- (1) the quadratic and linear terms of phi
    for k in range(D):
        acc = b[k]
        for l in range(r):
            acc += A[l, k] * As[l]
        sbar[k] += phib * acc
        Bb[k] += phib * s[k]
    for l in range(r):
        for k in range(D):
            BA[l, k] += phib * As[l] * s[k]
    Bc[0] += phib
    # ---- the network, down to the cotangent abar of the opening pre-activation
    _net_vjp(ybr, phib, h, w, K, g, q, u, z, y, gbar, qbar, zbar, ubar, abar, Bw, BK, BbK)
    for j in range(m):
        aj = abar[j]
        Bb0[j] += aj
        for k in range(D):
            BK0[j, k] += aj * s[k]
            sbar[k] += aj * K0[j, k]


@njit(cache=True, fastmath=_FM)
def _net_vjp(ybr, phib, h, w, K, g, q, u, z, y, gbar, qbar, zbar, ubar, abar, Bw, BK, BbK):
    """Adjoint of :func:`_net_forward` for the cotangents ``ybr`` of ``y_0``, ``phib`` of
    ``w^T u_M`` and ``gbar``, ``qbar``, ``zbar`` already holding the trace's share; adds
    to ``Bw``, ``BK``, ``BbK`` and leaves the cotangent of ``a[0]`` in ``abar``."""
    M = K.shape[0]
    m = w.shape[0]
    for j in range(m):
        gbar[0, j] += ybr[j] * z[1, j]
        zbar[1, j] += ybr[j] * g[0, j]
    for i in range(1, M + 1):
        Ki = K[i - 1]
        BKi = BK[i - 1]
        for j in range(m):
            zbar[i + 1, j] += zbar[i, j]
        for j in range(m):
            acc = 0.0
            hy = h * y[i, j]
            for k in range(m):
                acc += Ki[j, k] * zbar[i, k]
                BKi[j, k] += hy * zbar[i, k]
            acc *= h
            gbar[i, j] += acc * z[i + 1, j]
            zbar[i + 1, j] += acc * g[i, j]
    for j in range(m):
        Bw[j] += zbar[M + 1, j] + phib * u[M, j]
        ubar[j] = phib * w[j]
    for i in range(M, 0, -1):
        Ki = K[i - 1]
        BKi = BK[i - 1]
        for j in range(m):
            abar[j] = h * g[i, j] * ubar[j] + (gbar[i, j] - 2.0 * g[i, j] * qbar[i, j]) * q[i, j]
            BbK[i - 1, j] += abar[j]
        for j in range(m):
            aj = abar[j]
            for k in range(m):
                BKi[j, k] += aj * u[i - 1, k]
                ubar[k] += aj * Ki[j, k]
    for j in range(m):
        abar[j] = g[0, j] * ubar[j] + (gbar[0, j] - 2.0 * g[0, j] * qbar[0, j]) * q[0, j]


@njit(cache=True, parallel=True, fastmath=_FM)
def _vjp_kernel(S, W, exact, d, h, w, A, b, c, K0, b0, K, bK, phib, Gb, lb, edges,
                sbar, Bw, BA, Bb, Bc, BK0, Bb0, BK, BbK):
    M = K.shape[0]
    m = K0.shape[0]
    r = A.shape[0]
    D = S.shape[1]
    cc = d if exact else W.shape[2]
    for blk in prange(edges.size - 1):
        a, g, q, u, z, y, J, Pm, C0, As = _fwd_workspace(M, m, cc, r, S.dtype)
        G = np.empty(D, S.dtype)
        gbar, qbar, zbar, Jbar, Pbar, C0bar, ubar, abar, ybar, AG, AW, Tm = _adj_workspace(
            M, m, cc, r, S.dtype)
        for n in range(edges[blk], edges[blk + 1]):
            Wn = W[0] if exact else W[n]
            _fwd_sample(S[n], Wn, exact, d, h, w, A, b, c, K0, b0, K, bK,
                        a, g, q, u, z, y, J, Pm, C0, As, G)
            _vjp_sample(S[n], Wn, exact, d, h, w, A, b, c, K0, b0, K, bK, phib[n], Gb[n], lb[n],
                        a, g, q, u, z, y, J, Pm, C0, As,
                        gbar, qbar, zbar, Jbar, Pbar, C0bar, ubar, abar, ybar, AG, AW, Tm, sbar[n],
                        Bw[blk], BA[blk], Bb[blk], Bc[blk], BK0[blk], Bb0[blk], BK[blk], BbK[blk])


@njit(cache=True, fastmath=_FM)
def _jvp_sample(s, Wn, exact, d, h, w, A, b, c, K0, b0, K, bK, ds, dw, dA, db, dc, dK0, db0, dK, dbK,
                a, g, q, u, z, y, J, Pm, C0, As,
                dg, dq, du, dz, dJ, dP, dC0, dAs, dG):
    """Tangent of :func:`_fwd_sample`; returns (dphi, dlap), writes dG."""
    M = K.shape[0]
    m = K0.shape[0]
    D = s.shape[0]
    r = A.shape[0]
    cc = C0.shape[0]
    # (1)
    for j in range(m):
        acc = db0[j]
        for k in range(D):
            acc += dK0[j, k] * s[k] + K0[j, k] * ds[k]
        dg[0, j] = q[0, j] * acc
        du[0, j] = g[0, j] * acc
        dq[0, j] = -2.0 * g[0, j] * dg[0, j]
    for i in range(1, M + 1):
        Ki = K[i - 1]
        dKi = dK[i - 1]
        for j in range(m):
            acc = dbK[i - 1, j]
            for k in range(m):
                acc += Ki[j, k] * du[i - 1, k] + dKi[j, k] * u[i - 1, k]
            dg[i, j] = q[i, j] * acc
            du[i, j] = du[i - 1, j] + h * g[i, j] * acc
            dq[i, j] = -2.0 * g[i, j] * dg[i, j]
    dphi = dc[0]
    for j in range(m):
        dphi += dw[j] * u[M, j] + w[j] * du[M, j]
    for l in range(r):
        acc = 0.0
        for k in range(D):
            acc += dA[l, k] * s[k] + A[l, k] * ds[k]
        dAs[l] = acc
        dphi += As[l] * acc
    for k in range(D):
        dphi += db[k] * s[k] + b[k] * ds[k]
    # (2)
    for j in range(m):
        dz[M + 1, j] = dw[j]
    for i in range(M, 0, -1):
        Ki = K[i - 1]
        dKi = dK[i - 1]
        for k in range(m):
            dz[i, k] = dz[i + 1, k]
        for j in range(m):
            dyj = dg[i, j] * z[i + 1, j] + g[i, j] * dz[i + 1, j]
            hy = h * y[i, j]
            hdy = h * dyj
            for k in range(m):
                dz[i, k] += dKi[j, k] * hy + Ki[j, k] * hdy
    for k in range(D):
        dG[k] = db[k]
    for j in range(m):
        dyj = dg[0, j] * z[1, j] + g[0, j] * dz[1, j]
        for k in range(D):
            dG[k] += dK0[j, k] * y[0, j] + K0[j, k] * dyj
    for l in range(r):
        for k in range(D):
            dG[k] += dA[l, k] * As[l] + A[l, k] * dAs[l]
    # (3)
    for j in range(m):
        for col in range(cc):
            if exact:
                dC0[col, j] = dK0[j, col]
            else:
                acc = 0.0
                for k in range(d):
                    acc += dK0[j, k] * Wn[k, col]
                dC0[col, j] = acc
    dlap = 0.0
    for j in range(m):
        csq = 0.0
        cdc = 0.0
        for col in range(cc):
            csq += C0[col, j] * C0[col, j]
            cdc += C0[col, j] * dC0[col, j]
            dJ[col, j] = dg[0, j] * C0[col, j] + g[0, j] * dC0[col, j]
        dlap += (dq[0, j] * z[1, j] + q[0, j] * dz[1, j]) * csq + 2.0 * q[0, j] * z[1, j] * cdc
    for i in range(1, M + 1):
        Ki = K[i - 1]
        dKi = dK[i - 1]
        Jp = J[i - 1]
        for col in range(cc):
            for j in range(m):
                acc = 0.0
                for k in range(m):
                    acc += dKi[j, k] * Jp[col, k] + Ki[j, k] * dJ[col, k]
                dP[col, j] = acc
        ti = 0.0
        for j in range(m):
            psq = 0.0
            pdp = 0.0
            for col in range(cc):
                p = Pm[i, col, j]
                psq += p * p
                pdp += p * dP[col, j]
            ti += (dq[i, j] * z[i + 1, j] + q[i, j] * dz[i + 1, j]) * psq + 2.0 * q[i, j] * z[i + 1, j] * pdp
        dlap += h * ti
        for j in range(m):
            hdg = h * dg[i, j]
            hg = h * g[i, j]
            for col in range(cc):
                dJ[col, j] += hdg * Pm[i, col, j] + hg * dP[col, j]
    for l in range(r):
        if exact:
            for k in range(d):
                dlap += 2.0 * A[l, k] * dA[l, k]
        else:
            for col in range(cc):
                acc = 0.0
                dacc = 0.0
                for k in range(d):
                    acc += A[l, k] * Wn[k, col]
                    dacc += dA[l, k] * Wn[k, col]
                dlap += 2.0 * acc * dacc
    return dphi, dlap


@njit(cache=True, parallel=True, fastmath=_FM)
def _jvp_kernel(S, W, exact, d, h, w, A, b, c, K0, b0, K, bK, dS, dw, dA, db, dc, dK0, db0, dK, dbK,
                edges, dphi, dG, dlap):
    M = K.shape[0]
    m = K0.shape[0]
    r = A.shape[0]
    D = S.shape[1]
    cc = d if exact else W.shape[2]
    for blk in prange(edges.size - 1):
        dt = S.dtype
        a, g, q, u, z, y, J, Pm, C0, As = _fwd_workspace(M, m, cc, r, dt)
        G = np.empty(D, dt)
        dg = np.empty((M + 1, m), dt)
        dq = np.empty((M + 1, m), dt)
        du = np.empty((M + 1, m), dt)
        dz = np.empty((M + 2, m), dt)
        dJ = np.empty((cc, m), dt)
        dP = np.empty((cc, m), dt)
        dC0 = np.empty((cc, m), dt)
        dAs = np.empty(r, dt)
        for n in range(edges[blk], edges[blk + 1]):
            Wn = W[0] if exact else W[n]
            _fwd_sample(S[n], Wn, exact, d, h, w, A, b, c, K0, b0, K, bK,
                        a, g, q, u, z, y, J, Pm, C0, As, G)
            p, lp = _jvp_sample(S[n], Wn, exact, d, h, w, A, b, c, K0, b0, K, bK, dS[n],
                                dw, dA, db, dc, dK0, db0, dK, dbK,
                                a, g, q, u, z, y, J, Pm, C0, As,
                                dg, dq, du, dz, dJ, dP, dC0, dAs, dG[n])
            dphi[n] = p
            dlap[n] = lp


# ------------------------------------------------------------------------------ Python entry points
_NAMES = ("w", "A", "b", "c", "K0", "b0", "K", "bK")

#: ``G0`` argument that selects the Jacobian path of the trace
_NO_GRAM = np.zeros((0, 0))


def _params(P, dtype=np.float64):
    """The parameter blocks of ``P`` as contiguous arrays of ``dtype`` (kernel arguments)."""
    return tuple(np.ascontiguousarray(P[k], dtype=dtype) for k in _NAMES)


def _W(W, d, dtype=np.float64):
    """``(exact, W)`` for the kernels: exact trace (a dummy ``W``) or the probes, in ``dtype``."""
    if W is None:
        return True, np.zeros((1, d, d), dtype)
    return False, np.ascontiguousarray(W, dtype=dtype)


def trace_gram(P, d, exact, trace_path="auto"):
    """``G0`` for the kernels: ``gram0(K0)`` on the Gram path, else the empty marker.

    ``trace_path`` is ``"auto"`` (:func:`use_gram`), ``"gram"`` or ``"jacobian"``;
    Hutchinson estimates always take the Jacobian (probe) path.
    """
    if trace_path not in ("auto", "gram", "jacobian"):
        raise ValueError(f"trace_path must be 'auto', 'gram' or 'jacobian', got {trace_path!r}")
    m, M = P["K0"].shape[0], P["K"].shape[0]
    if exact and (trace_path == "gram" or (trace_path == "auto" and use_gram(d, m, M))):
        return gram0(P["K0"], d)
    return _NO_GRAM


def derivatives(P, S, W, h, blocks=None, trace_path="auto"):
    """``(phi (n,), G = grad_s Phi (n, d+1), lap (n,))`` -- see the numpy reference ``_forward``."""
    n, D = S.shape
    d = D - 1
    exact, Wa = _W(W, d)
    G0 = trace_gram(P, d, exact, trace_path)
    if G0.size:  # Gram path: the d-dimensional products as GEMMs (potential_gram_numba)
        from . import potential_gram_numba as gram
        return gram.forward(P, S, h, G0, _blocks(n, blocks))[:3]
    phi, lap, G = np.empty(n), np.empty(n), np.empty((n, D))
    _derivatives_kernel(np.ascontiguousarray(S), Wa, exact, d, float(h), *_params(P),
                        _blocks(n, blocks), phi, G, lap)
    return phi, G, lap


def derivatives_vjp(P, S, W, h, phibar, Gbar, lapbar, blocks=None, trace_path="auto"):
    """``(sbar (n, d+1), dict of parameter cotangents summed over samples)``."""
    n, D = S.shape
    d = D - 1
    exact, Wa = _W(W, d)
    edges = _blocks(n, blocks)
    prm = _params(P)
    G0 = trace_gram(P, d, exact, trace_path)
    if G0.size:
        from . import potential_gram_numba as gram
        return gram.vjp(P, S, h, G0, edges, phibar, Gbar, lapbar)
    acc = accumulators(prm, edges.size - 1)
    sbar = np.empty((n, D))
    _vjp_kernel(np.ascontiguousarray(S), Wa, exact, d, float(h), *prm,
                np.ascontiguousarray(phibar, dtype=np.float64), np.ascontiguousarray(Gbar, dtype=np.float64),
                np.ascontiguousarray(lapbar, dtype=np.float64), edges, sbar, *acc)
    return sbar, cotangents(acc)


def accumulators(prm, nblocks):
    """Per-block parameter cotangent accumulators, float64 for any kernel dtype (float32
    kernels sum thousands of per-sample cotangents into them: float64 keeps that sum's
    rounding below the float32 rounding of each term, at ``8 x n_params`` bytes per block)."""
    return [np.zeros((nblocks,) + p.shape) for p in prm]


def cotangents(acc):
    """Sum the per-block accumulators of :func:`accumulators` into a cotangent dict."""
    return {k: v.sum(axis=0) for k, v in zip(_NAMES, acc)}


def derivatives_jvp(P, T, S, dS, W, h, blocks=None):
    """``(dphi (n,), dG (n, d+1), dlap (n,))`` -- tangents along ``dS`` and parameter tangents ``T``."""
    n, D = S.shape
    d = D - 1
    exact, Wa = _W(W, d)
    dphi, dlap, dG = np.empty(n), np.empty(n), np.empty((n, D))
    _jvp_kernel(np.ascontiguousarray(S), Wa, exact, d, float(h), *_params(P),
                np.ascontiguousarray(dS, dtype=np.float64), *_params(T), _blocks(n, blocks), dphi, dG, dlap)
    return dphi, dG, dlap
