"""One generic explicit Runge--Kutta step with its tangent and adjoint (MATH B1, B2).

The step is written once for every tableau.  An integrator step receives a
*step control* ``ctrl`` (see :mod:`ocp_learn.controls`) that gives the local
parameters at stage time ``t + c_i h`` (``ctrl.theta(c)``), their tangent
(``ctrl.dtheta(c)``) and accumulates parameter gradients (``ctrl.add_grad(c, g)``).

Arrays are created in the namespace of the state (:mod:`ocp_learn.arrays`); the stage sums
go through :mod:`ocp_learn.kernels.axpy_numba`.  Stage states of steps that keep no tape,
the adjoint's stage cotangents ``Kbar_i`` and the tangent's stage states are written into
the sweep's :class:`~ocp_learn.arrays.Workspace`, allocated once per sweep; the states a
kept step stores are arrays of their own.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from ..arrays import Workspace, copy, namespace
from ..kernels.axpy_numba import add_scaled, axpy, product_dtype, scaled
from .tableau import ButcherTableau

__all__ = ["ExplicitRK", "StageTape"]


class StageTape(NamedTuple):
    """The tape of one kept step: what :meth:`ExplicitRK.step_adjoint` reads.

    Parameters
    ----------
    Y : list of arrays
        The stage states ``Y_i``.
    aux : list or None
        The field's residuals at each stage (``rhs_tape``, entries may be ``None``), or
        ``None`` when the step did not ask the field for them.
    """

    Y: list
    aux: list | None


class ExplicitRK:
    """Explicit Runge--Kutta integrator defined by a :class:`ButcherTableau`.

    Follows the :class:`~ocp_learn.integrators.base.Integrator` contract.  A field with
    residuals (:class:`~ocp_learn.protocols.FieldWithResiduals`) returns, with the
    right-hand side, intermediate values its ``vjp(y, t, theta, ybar, aux=aux)`` would
    otherwise recompute; when the sweep asks for them (``residuals=True``) a kept step
    calls ``rhs_tape`` and stores ``aux`` next to the stage states (:class:`StageTape`),
    and the adjoint hands it back to ``vjp``.

    Parameters
    ----------
    tableau : ButcherTableau
        The coefficients of the method.
    """

    reversible = False
    #: kept steps store the field's residuals, counted by ``Sweep.tape_floats``
    uses_residuals = True

    def __init__(self, tableau: ButcherTableau) -> None:
        if not isinstance(tableau, ButcherTableau):
            raise TypeError(f"tableau must be a ButcherTableau, got {type(tableau).__name__}")
        self.tableau = tableau
        self.name = tableau.name
        self.order = tableau.order
        self.stages = tableau.stages
        a = tableau.a
        # nonzero couplings, used to skip zero terms
        self._a_rows = [[(j, a[i, j]) for j in range(i) if a[i, j] != 0.0] for i in range(self.stages)]
        self._a_cols = [[(i, a[i, j]) for i in range(j + 1, self.stages) if a[i, j] != 0.0]
                        for j in range(self.stages)]

    def __repr__(self) -> str:
        return f"ExplicitRK({self.name!r}, order={self.order})"

    def tape_floats(self, n: int, D: int) -> int:
        """Floats of one kept step: the ``s`` stage states.

        Parameters
        ----------
        n : int
            Number of samples.
        D : int
            Width of the state.

        Returns
        -------
        int
            The number of floats.
        """
        return self.stages * n * D

    def step(self, field: Any, y: Any, t: float, h: float, ctrl: Any, keep: bool = True, *,
             work: Workspace | None = None, residuals: bool = False) -> tuple[Any, StageTape | None]:
        """``(y_{k+1}, tape)``: one step ``y_{k+1} = y + h sum_i b_i K_i`` (MATH B1).

        Parameters
        ----------
        field : Field
            The vector field.
        y : array
            The state at the start of the step, shape ``(n, D)``.
        t : float
            Time at the start of the step.
        h : float
            Step size.
        ctrl : StepControl
            The parameters over the step (:mod:`ocp_learn.controls`); the adjoint
            accumulates their gradient in it.
        keep : bool, optional
            Whether to return the tape the step's adjoint reads.
        work : Workspace, optional
            Scratch arrays reused from step to step.
        residuals : bool, optional
            Keep the field's residuals on the tape (``rhs_tape``), for fields that have them.

        Returns
        -------
        y1 : array
            The state at the end of the step.
        tape : object or None
            What the adjoint reads (None unless ``keep``).
        """
        tab = self.tableau
        work = Workspace() if work is None else work
        K: list = []
        Y: list | None = [] if keep else None
        aux: list | None = [] if keep and residuals else None
        acc = copy(y)
        for i in range(self.stages):
            # a kept stage state is stored: it gets its own array
            Yi = self._stage_state(y, K, i, h, None if keep else work, "Y")
            ti, th = t + tab.c[i] * h, ctrl.theta(tab.c[i])
            if aux is None:
                Ki = field.rhs(Yi, ti, th)
            else:
                Ki, a_i = field.rhs_tape(Yi, ti, th)
                aux.append(a_i)
            K.append(Ki)
            if Y is not None:
                Y.append(Yi)
            if tab.b[i] != 0.0:
                axpy(h * tab.b[i], Ki, acc)
        return acc, (StageTape(Y, aux) if keep else None)

    def _stage_state(self, y, K, i, h, work, slot):
        """``Y_i = y + h sum_j a_ij K_j`` (``y`` itself when the row is zero), in ``work``'s
        ``(slot, i)`` array, or a new one when ``work`` is ``None``."""
        rows = self._a_rows[i]
        if not rows:
            return y
        j0, a0 = rows[0]
        Yi = add_scaled(y, h * a0, K[j0], None if work is None else work.empty((slot, i), y))
        for j, aij in rows[1:]:
            axpy(h * aij, K[j], Yi)
        return Yi

    def step_adjoint(self, field: Any, tape: StageTape, t: float, h: float, ctrl: Any, lam: Any,
                     *, work: Workspace | None = None) -> Any:
        """``dJ/dy_k`` from ``lam = dJ/dy_{k+1}``; parameter gradients go to ``ctrl`` (MATH B2).

        Parameters
        ----------
        field : Field
            The vector field.
        tape : StageTape
            The step's tape (from :meth:`step` with ``keep``).
        t : float
            Time at the start of the step.
        h : float
            Step size.
        ctrl : StepControl
            The parameters over the step (:mod:`ocp_learn.controls`); the adjoint
            accumulates their gradient in it.
        lam : array
            The adjoint at the end of the step.
        work : Workspace, optional
            Scratch arrays reused from step to step.

        Returns
        -------
        array
            The adjoint at the start of the step.
        """
        tab = self.tableau
        work = Workspace() if work is None else work
        Y, aux = tape
        s = self.stages
        Ybar: list = [None] * s
        out = copy(lam)
        for i in range(s - 1, -1, -1):
            Kbar = None
            if tab.b[i] != 0.0:
                c = h * tab.b[i]
                Kbar = scaled(c, lam, work.empty(("Kbar", i), lam, product_dtype(c, lam)))
            for j, aji in self._a_cols[i]:
                if Kbar is None:
                    c = h * aji
                    Kbar = scaled(c, Ybar[j], work.empty(("Kbar", i), Ybar[j],
                                                         product_dtype(c, Ybar[j])))
                else:
                    axpy(h * aji, Ybar[j], Kbar)
            if Kbar is None:
                Ybar[i] = namespace(lam).zeros_like(lam)
                continue
            ti, th = t + tab.c[i] * h, ctrl.theta(tab.c[i])
            if aux is None or aux[i] is None:
                Ybar[i], gth = field.vjp(Y[i], ti, th, Kbar)
            else:
                Ybar[i], gth = field.vjp(Y[i], ti, th, Kbar, aux=aux[i])
            ctrl.add_grad(tab.c[i], gth)
            out += Ybar[i]
        return out

    def step_tangent(self, field: Any, y: Any, dy: Any, t: float, h: float, ctrl: Any, *,
                     work: Workspace | None = None) -> tuple[Any, Any]:
        """``(y_{k+1}, dy_{k+1})``: the step and its tangent (MATH B1 with ``jvp``).

        Parameters
        ----------
        field : Field
            The vector field.
        y : array
            The state at the start of the step, shape ``(n, D)``.
        dy : array
            Its tangent.
        t : float
            Time at the start of the step.
        h : float
            Step size.
        ctrl : StepControl
            The parameters over the step (:mod:`ocp_learn.controls`); the adjoint
            accumulates their gradient in it.
        work : Workspace, optional
            Scratch arrays reused from step to step.

        Returns
        -------
        y1, dy1 : array
            The state and its tangent at the end of the step.
        """
        tab = self.tableau
        work = Workspace() if work is None else work
        K: list = []
        dK: list = []
        acc, dacc = copy(y), copy(dy)
        for i in range(self.stages):
            Yi = self._stage_state(y, K, i, h, work, "Y")
            dYi = self._stage_state(dy, dK, i, h, work, "dY")
            ti, th = t + tab.c[i] * h, ctrl.theta(tab.c[i])
            K.append(field.rhs(Yi, ti, th))
            dK.append(field.jvp(Yi, ti, th, dYi, ctrl.dtheta(tab.c[i])))
            if tab.b[i] != 0.0:
                axpy(h * tab.b[i], K[i], acc)
                axpy(h * tab.b[i], dK[i], dacc)
        return acc, dacc
