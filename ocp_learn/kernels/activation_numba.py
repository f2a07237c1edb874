r"""The activation of the potential's network in Numba: ``sigma(a) = log(e^a + e^-a)``,
``sigma' = tanh`` and ``sigma'' = 1 - tanh^2`` of a whole layer in one call (MATH D1).

:func:`act_row` is written without libm calls (Cody--Waite ``exp``/``expm1`` and an
``atanh`` series for ``log1p``) so that LLVM vectorizes it: about 10x faster than two
scalar libm calls per neuron, which were a third to a half of the forward pass at
``d = 2``; accurate to a few ulp (``tests/test_kernels.py``).  On float32 rows it computes
in float64 (its constants are float64) and rounds once: within 0.5 ulp.

:func:`act_row32` is the same program in float32 arithmetic with float32 constants and
shorter series (degree 7 for ``expm1``, ``t^15`` for ``atanh``: truncation below 2e-8
relative), so that a vector holds twice as many lanes and each lane does about half the
work; accurate to a few float32 ulp.  :func:`act` picks :func:`act_row32` for float32
rows and :func:`act_row` otherwise, at compile time.
"""
from __future__ import annotations

import numpy as np
from numba import njit
from numba.core import types
from numba.extending import intrinsic, overload

__all__ = ["act_row", "act_row32", "act"]


@intrinsic
def _bits_to_float(typingctx, x):
    """Reinterpret the bits of an int64 as a float64 (vectorizes; builds ``2^k`` exactly)."""
    if x != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))
    return types.float64(types.int64), codegen


@intrinsic
def _bits_to_float32(typingctx, x):
    """Reinterpret the low 32 bits of an integer as a float32."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        v = args[0]
        if x.bitwidth > 32:
            v = builder.trunc(v, context.get_value_type(types.int32))
        return builder.bitcast(v, context.get_value_type(types.float32))
    return types.float32(x), codegen


# expm1(r), |r| <= ln2/2: Taylor coefficients 1/k!, k = 2..13 (truncation < 2e-17 relative)
_INV_LN2 = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01   # fdlibm's split of ln 2 (hi has 32 trailing zero bits)
_LN2_LO = 1.90821492927058770002e-10


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def act_row(a, sg, g, q):
    """Vectorizable ``sigma(a)``, ``sigma'(a) = tanh a`` and ``sigma''(a) = 1 - tanh^2 a``
    (D1) for a row ``a``, written to ``sg``, ``g``, ``q`` (no libm calls, so LLVM
    vectorizes the loop; ``sigma(a) = |a| + log(2 + em)`` and
    ``tanh a = sign(a) (-em) / (2 + em)``, with
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


_F = np.float32
_INV_LN2_32 = _F(1.4426950408889634)
_LN2_HI_32 = _F(0.693359375)          # 8 significant bits: k * hi is exact for |k| < 2^15
_LN2_LO_32 = _F(-2.12194440e-4)
_EXPM1_32 = tuple(_F(1.0 / f) for f in (5040.0, 720.0, 120.0, 24.0, 6.0, 2.0))
_ATANH_32 = tuple(_F(1.0 / k) for k in (15.0, 13.0, 11.0, 9.0, 7.0, 5.0, 3.0))
_ONE, _TWO, _HALF = _F(1.0), _F(2.0), _F(0.5)
_CLIP_32 = _F(-20.0)  # exp(-20) < 3e-9: below float32 rounding of sigma, tanh


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def act_row32(a, sg, g, q):
    """:func:`act_row` in float32 arithmetic for float32 rows ``a``, ``sg``, ``g``, ``q``:
    ``x = -2|a|`` clipped at -20, ``expm1(r)`` by its Taylor polynomial of degree 7
    (``|r| <= ln2/2``, truncation below 2e-8 relative), ``2^k`` from its bits,
    ``log1p(e) = 2 atanh(e / (2 + e))`` by the odd series up to ``t^15`` (``t <= 1/3``)."""
    c7, c6, c5, c4, c3, c2 = _EXPM1_32
    s15, s13, s11, s9, s7, s5, s3 = _ATANH_32
    for j in range(a.shape[0]):
        aj = a[j]
        aa = abs(aj)
        x = -_TWO * aa
        x = _CLIP_32 if x < _CLIP_32 else x
        kf = np.floor(x * _INV_LN2_32 + _HALF)
        r = (x - kf * _LN2_HI_32) - kf * _LN2_LO_32
        p = c7
        p = p * r + c6
        p = p * r + c5
        p = p * r + c4
        p = p * r + c3
        p = p * r + c2
        p = r + (r * r) * p                    # expm1(r)
        s2 = _bits_to_float32((np.int64(kf) + 127) << 23)  # 2^k, k in [-29, 0]
        e = s2 + s2 * p                        # exp(x)
        em = (s2 - _ONE) + s2 * p              # expm1(x)
        t = e / (_TWO + e)
        t2 = t * t
        c = s15
        c = c * t2 + s13
        c = c * t2 + s11
        c = c * t2 + s9
        c = c * t2 + s7
        c = c * t2 + s5
        c = c * t2 + s3
        sg[j] = aa + _TWO * (t + (t * t2) * c)
        th = -em / (_ONE + e)
        gj = th if aj >= 0 else -th
        g[j] = gj
        q[j] = _ONE - gj * gj


def act(a, sg, g, q):
    """:func:`act_row32` for float32 rows, :func:`act_row` otherwise (chosen when a
    kernel calling it is compiled; call it from jitted code)."""
    if a.dtype == np.float32:
        act_row32(a, sg, g, q)
    else:
        act_row(a, sg, g, q)


@overload(act, jit_options={"cache": True})
def _act_overload(a, sg, g, q):
    if a.dtype == types.float32:
        return lambda a, sg, g, q: act_row32(a, sg, g, q)
    return lambda a, sg, g, q: act_row(a, sg, g, q)
