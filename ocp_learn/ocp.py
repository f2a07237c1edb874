"""The optimal control problem object (discretize-then-optimize, MATH B1--B2, C1).

An :class:`OCP` composes a dynamics model (or any field), an integrator, a
time grid, a time parameterization of ``theta(t)``, running costs, a terminal
cost and regularizers into one objective of a flat float64 vector ``theta``:

    ``J(theta) = mean_i [ G(y_i(T); p) + sum_j c_ij(T) ] + sum_k R_k(theta)``

where ``y`` solves the *discrete* dynamics (the RK scheme) and the running
costs ``c_j`` are integrated as state components.  ``objective_and_gradient``
returns the exact gradient of that discrete objective by the discrete adjoint.
"""
from __future__ import annotations

import copy
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .controls import StepControl, get_time_param
from .costs.running import AugmentedDynamics
from .costs.terminal import MeanOfColumns
from .evaluation import Evaluation
from .errors import NonFiniteError, as_array, check_positive_float, check_positive_int, check_rng
from .arrays import Workspace, astype, to_host, to_namespace
from .gradients import Sweep, get_strategy
from .integrators import get_integrator
from .ledger import Ledger
from .params import ParamLayout
from .state_maps import StateMaps
from .protocols import (Field, PerSampleTerminal, Regularizer, RunningCost, TerminalCost,
                        TerminalResult, check_field_shapes, check_initial_state, check_protocol)

__all__ = ["OCP", "Evaluation"]


class OCP(StateMaps):
    """A discrete optimal control problem with exact hand-derived gradients.

    Parameters
    ----------
    dynamics : Field
        The field ``F(y, t; theta)`` (:class:`ocp_learn.protocols.Field`, e.g. a
        :class:`~ocp_learn.models.base.Model`).
    x0 : array_like, shape (n, d)
        Initial states (data, samples in rows).
    terminal : TerminalCost
        ``G(y(T); p)``, with its own parameters ``p`` (e.g. a classifier head;
        :class:`ocp_learn.protocols.TerminalCost`).
    T : float
        Horizon length; time runs over ``[t0, t0 + T]``.
    nt : int
        Number of time steps (uniform, ``h = T / nt``).
    t0 : float
        Start time (0 by default).
    integrator : str, ButcherTableau or integrator object
        ``"euler"``, ``"heun"``, ``"rk4"``, ... (MATH B1).
    time_param : see :func:`ocp_learn.controls.get_time_param`
        How ``theta`` depends on time (constant by default).
    running : sequence of RunningCost
        Integrated as extra state columns (MATH B1).
    regularizers : sequence of Regularizer
        Quadratic regularizers of the dynamics parameters.
    strategy : str, tuple or GradientStrategy
        Memory strategy of the adjoint (``"store_all"``, ``"store_states"``, ...).
    dtype : {numpy.float64, numpy.float32}
        Floating type of the data ``x0``, of the parameters inside the sweeps
        and of the states, stages, adjoints and the returned gradient (default
        float64).  ``theta`` is still passed and validated as a float64 vector
        (what scipy's optimizers use) and cast to ``dtype`` for the sweeps.

    Attributes
    ----------
    xp : module
        The array namespace the sweeps run in: ``dynamics.array_namespace`` (NumPy for
        the CPU backends, CuPy for a model on the ``cupy`` backend).  The samples are
        copied to it once and kept there; per evaluation only ``theta`` goes in and the
        gradient and a few scalars come out.  :class:`Evaluation`'s ``state`` and
        ``lam0`` are arrays of this namespace.

    Raises
    ------
    TypeError
        If an argument does not follow its contract (:mod:`ocp_learn.protocols`): the
        message names the argument (e.g. ``regularizers[1]``) and the members it lacks.
    ValueError
        If ``dynamics.initial_state(x0)`` does not have ``state_dim`` columns, or a
        setting is out of range.

    Notes
    -----
    *float32 mode* (``dtype=numpy.float32``) halves the memory of the stored
    states and stages, at single precision (unit roundoff ``u = 6e-8``).  The
    discrete objective and its gradient are those of the same scheme, computed
    with rounding error ``~ nt * s * u`` relative.  Measured on the test
    problems of ``tests/test_float32.py`` (n = 12, d = 3, nt = 6, Euler and
    RK4, constant and piecewise-linear ``theta(t)``): objective within
    ``1e-7`` and gradient within ``2e-7`` (2-norm) relative of the float64
    ones, jvp/vjp dot-product mismatch ``2e-8``; the tests allow ``1e-5``,
    ``1e-4`` and ``1e-4`` (longer horizons and larger data grow the error
    like ``nt * u``).  A Taylor test is only meaningful for steps
    ``eps >~ 1e-2``: below that the remainder ``O(eps^2)`` sinks under the
    float32 noise ``|J| u / eps``; the tests check order ``>= 1.8`` on
    ``eps = 0.5 / 2^k``, ``k <= 6``, with a noise floor ``1e-5 |J|``.  Models
    compute in the dtype of their inputs; a model that allocates a float64
    buffer (e.g. a parameter-gradient vector) has it accumulated into the
    float32 arrays.
    """

    def __init__(self, dynamics: Field, x0: Any, terminal: TerminalCost, *, T: float = 1.0,
                 nt: int = 8, t0: float = 0.0, integrator: Any = "rk4", time_param: Any = None,
                 running: Sequence[RunningCost] = (), regularizers: Sequence[Regularizer] = (),
                 strategy: Any = "store_all", dtype: Any = np.float64) -> None:
        check_protocol(dynamics, Field, "dynamics")
        check_protocol(terminal, TerminalCost, "terminal")
        self.running = list(running)
        for j, rc in enumerate(self.running):
            check_protocol(rc, RunningCost, f"running[{j}]")
        self.regularizers = list(regularizers)
        for j, reg in enumerate(self.regularizers):
            check_protocol(reg, Regularizer, f"regularizers[{j}]")
        for name, obj in (("dynamics", dynamics), ("terminal", terminal)):
            if not isinstance(obj.layout, ParamLayout):
                raise TypeError(f"{name}.layout must be a ParamLayout, got "
                                f"{type(obj.layout).__name__}")
        if not isinstance(terminal.reads_theta_T, bool):
            raise TypeError(f"terminal.reads_theta_T must be a bool, got {terminal.reads_theta_T!r}")
        self.model = dynamics
        # user fields that are not Models run on the host (NumPy)
        self.xp = getattr(dynamics, "array_namespace", np)
        self.field = AugmentedDynamics(dynamics, self.running) if self.running else dynamics
        self.terminal = terminal
        self._running_cost = MeanOfColumns(self.field.cost_columns) if self.running else None
        self.T = check_positive_float("T", T)
        if isinstance(t0, bool) or not isinstance(t0, numbers.Real):
            raise TypeError(f"t0 must be a real number, got {t0!r}")
        if not np.isfinite(t0):
            raise ValueError(f"t0 must be a finite number, got {t0}")
        self.t0 = float(t0)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype must be numpy.float64 or numpy.float32, got {dtype!r}") from None
        if self.dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
            raise ValueError(f"dtype must be numpy.float64 or numpy.float32, got {self.dtype}")
        self.nt = check_positive_int("nt", nt)
        self.integrator = get_integrator(integrator)
        self.time_param = get_time_param(time_param)
        self.strategy = get_strategy(strategy)
        self.x0 = as_array("x0", x0, ndim=2, min_rows=1, dtype=self.dtype)
        self._x0_device = (None, None)  # (x0, its copy in xp): see _device_rows
        check_initial_state(self.field, self._on_device(self.x0[:1]), "x0")
        field = self._field_on(self.x0[:1])
        check_field_shapes(field, self._initial_state(self.x0[:1], field), self.t0,
                           self._on_device(np.zeros(dynamics.layout.size, dtype=self.dtype)),
                           running=self.running, point_dim=self.model.state_dim)
        self.times = self.t0 + self.T * np.arange(self.nt + 1) / self.nt
        p = dynamics.layout.size
        self.layout = ParamLayout([("dynamics", (self.time_param.n_nodes, p)),
                                   ("terminal", (terminal.layout.size,))])
        self.ledger = Ledger()
        self._work = Workspace()  # the sweeps' scratch arrays, kept from one evaluation to the next

    # --- parameters -----------------------------------------------------
    @property
    def n_params(self) -> int:
        """Length of the flat parameter vector ``theta``."""
        return self.layout.size

    @property
    def n_samples(self) -> int:
        """Number of training samples (rows of ``x0``)."""
        return self.x0.shape[0]

    def init_params(self, seed: Any = None) -> np.ndarray:
        """Initial parameters: the model's draw at every time node (same draw
        repeated, so ``theta(t)`` starts constant) and the terminal's draw.

        Parameters
        ----------
        seed : int, numpy.random.Generator or None
            ``None`` draws from fresh entropy (a different start on every call).

        Returns
        -------
        ndarray, shape (n_params,)
            The initial ``theta``.
        """
        rng = check_rng(seed)
        local = self.model.init_params(rng)
        theta = np.empty(self.n_params)
        P = self.layout.unpack(theta)
        P["dynamics"][...] = local
        P["terminal"][...] = self.terminal.init_params(rng)
        return theta

    def unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Named views of ``theta`` (no copies).

        Keys: ``"dynamics"`` (``(n_nodes, p)``), each model block with a leading
        node axis (e.g. ``"K1"`` of shape ``(n_nodes, m, d)``), ``"terminal"``
        and each terminal block (prefixed ``"terminal."`` if a name clashes).

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.

        Returns
        -------
        dict of str to ndarray
            Views of ``theta``.
        """
        theta = self.check_theta(theta)
        P = self.layout.unpack(theta)
        out = {"dynamics": P["dynamics"], "terminal": P["terminal"]}
        out.update(self.model.layout.unpack(P["dynamics"]))
        for k, v in self.terminal.layout.unpack(P["terminal"]).items():
            out[k if k not in out else "terminal." + k] = v
        return out

    def check_theta(self, theta: Any, name: str = "theta") -> np.ndarray:
        """``theta`` as a finite float64 vector of :attr:`n_params` entries.

        Parameters
        ----------
        theta : array_like
            The parameters.
        name : str
            The name the error messages use.

        Returns
        -------
        ndarray, shape (n_params,)
            ``theta``, checked (a float64 copy when it was not one).

        Raises
        ------
        ValueError, TypeError
            A wrong shape, type or a non-finite entry, naming ``name``.
        """
        if not isinstance(theta, np.ndarray) or theta.dtype != np.float64 or theta.ndim != 1:
            theta = as_array(name, theta, ndim=1, finite=False)
        if theta.shape != (self.n_params,):
            raise ValueError(f"{name} must have shape ({self.n_params},), got {theta.shape}")
        if not np.all(np.isfinite(theta)):
            raise ValueError(f"{name} contains non-finite values (inf or NaN)")
        return theta

    def _split(self, theta):
        P = self.layout.unpack(theta)
        if self.dtype == np.float64:
            return P["dynamics"], P["terminal"]
        return P["dynamics"].astype(self.dtype), P["terminal"].astype(self.dtype)

    def _initial_state(self, x, field=None):
        """``y(0)`` of the field for the samples ``x`` (host or :attr:`xp` arrays), in the
        problem's dtype and namespace."""
        y0 = (self.field if field is None else field).initial_state(self._on_device(x))
        if self.xp is np:
            return y0 if y0.dtype == self.dtype else y0.astype(self.dtype)
        return astype(y0, getattr(self.xp, self.dtype.name))

    def _on_device(self, a):
        """``a`` as an array of :attr:`xp` in the problem's dtype (NumPy: ``a`` itself)."""
        if self.xp is np or a is None:
            return a
        return to_namespace(a, self.xp, getattr(self.xp, self.dtype.name))

    def _device_rows(self, idx, x):
        """The samples ``x`` (``x0`` or its rows ``idx``) in :attr:`xp`: ``x0`` is copied to
        the device once and kept; rows are taken from that copy on the device."""
        if self.xp is np:
            return x
        ref, dev = self._x0_device
        if ref is not self.x0:
            dev = self._on_device(self.x0)
            self._x0_device = (self.x0, dev)
        if idx is None:
            return dev
        return self.xp.take(dev, self.xp.asarray(idx), axis=0)

    def _batch(self, batch, name="batch"):
        if self.n_samples == 0:
            raise ValueError("this problem holds no samples (a problem for inference, e.g. "
                             "one loaded from a file): give the samples as x, or set them "
                             "with set_samples(x) where the problem offers it")
        if batch is None:
            return None, self.x0
        idx = np.asarray(batch)
        if idx.dtype == bool:
            if idx.shape != (self.n_samples,):
                raise ValueError(f"{name} mask must have shape ({self.n_samples},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"{name} must be a non-empty 1-D array of sample indices or a "
                             "boolean mask")
        if idx.min() < 0 or idx.max() >= self.n_samples:
            raise ValueError(f"{name} indices must lie in [0, {self.n_samples}), got range "
                             f"[{idx.min()}, {idx.max()}]")
        return idx, self.x0[idx]

    # --- samples: other samples, subsets --------------------------------------
    def _samples(self, x: Any, name: str = "x") -> np.ndarray:
        """Outside samples ``x`` as the problem holds its own (validated, in ``dtype``)."""
        x = as_array(name, x, ndim=2, min_rows=1, dtype=self.dtype)
        if x.shape[1] != self.x0.shape[1]:
            raise ValueError(f"{name} must have {self.x0.shape[1]} columns (as the problem's "
                             f"samples), got shape {x.shape}")
        return x

    def _field(self, rows):
        """The field that sweeps the training rows ``rows`` (``None``: all).

        Problems with per-sample data inside the field (Hutchinson probes, noise paths)
        return a copy of the field that holds the data of these rows.
        """
        return self.field

    def _field_on(self, x):
        """The field that sweeps outside samples ``x`` (see :meth:`_field`)."""
        return self.field

    def take(self, rows: Any) -> OCP:
        """The same problem on the sample rows ``rows`` (ShardableProblem).

        Parameters
        ----------
        rows : array_like of int or boolean mask
            Rows of ``x0``.

        Returns
        -------
        OCP
            A shallow copy of this problem (of the same class) whose samples, and the
            per-sample data of its terminal cost (e.g. labels,
            :class:`~ocp_learn.protocols.PerSampleTerminal`), are those of ``rows``; the
            settings (field, time grid, costs, regularizers) are shared, the ledger is its
            own.  The mean objective of disjoint parts, weighted by their sizes, is the
            objective of the whole (plus the regularizers once).
        """
        idx, _ = self._batch(rows, "rows")
        if idx is None:
            raise ValueError("rows must be a non-empty 1-D array of sample indices or a "
                             "boolean mask, got None")
        return self._part(idx)

    def without_samples(self) -> OCP:
        """The same problem holding no samples: a problem for inference.

        Returns
        -------
        OCP
            A shallow copy of this problem (of the same class) with the settings (field,
            time grid, costs) and zero sample rows.  It pushes new points forward
            (:meth:`push_forward`), evaluates the objective of samples given as ``x``
            (:meth:`evaluate`) and predicts; asking it for its own samples' objective
            raises a ``ValueError``.  :func:`ocp_learn.problems.load` returns such problems.
        """
        return self._part(np.zeros(0, dtype=np.intp))

    def with_steps(self, nt: int) -> OCP:
        """The same problem on a uniform grid of ``nt`` steps (same horizon, samples and
        parameter layout), e.g. to measure the discretization error of trained parameters on
        a finer grid.

        Parameters
        ----------
        nt : int
            Time steps.

        Returns
        -------
        OCP
            A shallow copy with its own ledger.
        """
        fine = copy.copy(self)
        fine.nt = check_positive_int("nt", nt)
        fine.times = self.time_grid(fine.nt)
        fine.ledger = Ledger()
        return fine

    def with_strategy(self, strategy: Any) -> OCP:
        """The same problem with another memory strategy.

        Parameters
        ----------
        strategy : str, tuple or GradientStrategy
            See :func:`ocp_learn.gradients.get_strategy`.

        Returns
        -------
        OCP
            A shallow copy with its own ledger.
        """
        other = copy.copy(self)
        other.strategy = get_strategy(strategy)
        other.ledger = Ledger()
        return other

    @property
    def exact_gradient(self) -> bool:
        """Whether the gradient is that of the discrete objective (MATH B2), as the memory
        strategy declares in its ``exact`` attribute; False for the continuous adjoint (B3),
        whose gradient carries its own discretization error (:meth:`gradient_error`)."""
        return bool(self.strategy.exact)

    def gradient_error(self, theta: np.ndarray, reference: Any = "store_all",
                       batch: Any = None) -> float:
        """Relative error ``|g - g_ref| / |g_ref|`` (2-norm) of this problem's gradient
        against that of the same problem with the strategy ``reference``.

        Zero up to rounding for every discrete-adjoint strategy; the optimize-then-discretize
        error of the continuous adjoint (MATH B3).

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        reference : str or GradientStrategy
            The reference strategy (the discrete adjoint ``"store_all"``, MATH B2).
        batch : index array or boolean mask, optional
            Training rows (all by default).

        Returns
        -------
        float
            The relative error.
        """
        g = self.evaluate(theta, batch).gradient
        g_ref = self.with_strategy(reference).evaluate(theta, batch).gradient
        return float(np.linalg.norm(g - g_ref) / max(float(np.linalg.norm(g_ref)), 1e-300))

    def _part(self, idx):
        part = copy.copy(self)
        part.x0 = self.x0[idx]
        if isinstance(self.terminal, PerSampleTerminal):
            part.terminal = self.terminal.take(idx)
        part.regularizers = list(self.regularizers)
        part.ledger = Ledger()
        self._take_rows(part, idx)
        return part

    def _take_rows(self, part, rows):
        """Hook of :meth:`take`: slice the subclass's own per-sample data into ``part``."""

    # --- sweeps -----------------------------------------------------------
    def _sweep(self, nodes, ledger, grad=None, dnodes=None, times=None, field=None):
        times = self.times if times is None else times
        ctrls = [StepControl(self.time_param, nodes, times[k], times[k + 1] - times[k], self.t0,
                             self.T, grad, dnodes) for k in range(len(times) - 1)]
        return Sweep(self.field if field is None else field, self.integrator, times, ctrls,
                     ledger, self._work)

    def evaluate(self, theta: np.ndarray, batch: Any = None, gradient: bool = True, *,
                 x: Any = None) -> Evaluation:
        """Objective (and its exact discrete gradient) with the ledger and parts.

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        batch : index array or boolean mask, optional
            Training rows (all by default).
        gradient : bool
            Also run the adjoint sweep (MATH B2).
        x : array_like, shape (m, d), optional
            Samples in place of the problem's own (e.g. held-out data): the objective
            is that of a problem built on ``x`` with the same settings, and this problem
            is left unchanged.  ``batch`` must then be ``None``; a terminal cost with
            per-sample data (labels) cannot be evaluated on other samples.

        Returns
        -------
        Evaluation
            The objective, its gradient (with ``gradient``), its parts and the ledger.
        """
        theta = self.check_theta(theta)
        if x is None:
            idx, xs = self._batch(batch)
            field = self._field(idx)
        else:
            if batch is not None:
                raise ValueError("give batch (rows of the problem's samples) or x (other "
                                 "samples), not both")
            if isinstance(self.terminal, PerSampleTerminal):
                raise ValueError(f"the terminal cost ({type(self.terminal).__name__}) holds "
                                 "per-sample data (e.g. labels) of the problem's own samples; "
                                 "evaluate other samples with a problem built on them")
            idx, xs = None, self._samples(x)
            field = self._field_on(xs)
        ev = self._evaluate(theta, idx, xs, gradient, field, own=x is None)
        self.ledger += ev.ledger
        return ev

    def _evaluate(self, theta, idx, x, gradient, field, own=True):
        xp = self.xp
        nodes_host, p = self._split(theta)
        nodes, p = self._on_device(nodes_host), self._on_device(p)
        ledger = Ledger()
        gnodes = xp.zeros_like(nodes) if gradient else None
        sweep = self._sweep(nodes, ledger, gnodes, field=field)
        y0 = self._initial_state(self._device_rows(idx, x) if own else x, field)
        if gradient:
            yN, tape = self.strategy.forward(sweep, y0)
        else:
            yN = y0
            for k in range(self.nt):
                yN, _ = sweep.step(k, yN, keep=False)
        if self.terminal.reads_theta_T:
            # G(y(T); p, theta(T)): e.g. a terminal HJB penalty on Phi(., T)
            last = sweep.controls[-1]
            res = self.terminal.value_and_grad(yN, p, idx, theta_T=last.theta(1.0),
                                               t_T=self.times[-1])
            if gradient and res.theta_T_bar is not None:
                last.add_grad(1.0, res.theta_T_bar)
        else:
            res = self.terminal.value_and_grad(yN, p, idx)
        if not isinstance(res, TerminalResult):
            raise TypeError(f"terminal.value_and_grad must return a TerminalResult "
                            f"(ocp_learn.protocols.TerminalResult), got {type(res).__name__}")
        ybar, pbar = res.ybar, res.pbar
        terms = {"terminal": res.value}
        terms.update(res.terms)
        J = res.value
        if self._running_cost is not None:
            run = self._running_cost.value_and_grad(yN, None)
            ybar = ybar + run.ybar
            terms["running"] = [float(xp.mean(yN[:, c])) for c in self.field.cost_columns]
            J += run.value
        Jreg, greg = 0.0, 0.0
        for reg in self.regularizers:  # on the host: the parameters are small
            v, g = reg.value_grad(nodes_host)
            Jreg += v
            greg = greg + g
        terms["regularization"] = Jreg
        J += Jreg
        ybar = self._on_device(ybar) if xp is not np else (
            ybar if ybar.dtype == self.dtype else ybar.astype(self.dtype))
        if not np.isfinite(J):
            raise NonFiniteError(f"objective is not finite ({J}) although the ODE solution is; "
                                 f"terms: {terms}")
        grad = lam0 = None
        if gradient:
            lam0 = self.strategy.backward(sweep, tape, ybar)
            grad = np.empty(self.n_params, dtype=self.dtype)
            G = self.layout.unpack(grad)
            G["dynamics"][...] = to_host(gnodes) + greg
            G["terminal"][...] = to_host(pbar)
            if not np.all(np.isfinite(grad)):
                raise NonFiniteError("gradient is not finite although the objective is "
                                     f"({J}); the adjoint sweep overflowed")
        return Evaluation(float(J), grad, ledger, terms, yN, lam0)

    def objective(self, theta: np.ndarray, batch: Any = None) -> float:
        """``J(theta)`` of the discrete problem (no gradient work).

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        batch : index array or boolean mask, optional
            Training rows (all by default).

        Returns
        -------
        float
            The objective.
        """
        return self.evaluate(theta, batch, gradient=False).value

    def objective_and_gradient(self, theta: np.ndarray,
                               batch: Any = None) -> tuple[float, np.ndarray]:
        """``(J, dJ/dtheta)``: the objective and the exact gradient of the discrete objective.

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        batch : index array or boolean mask, optional
            Training rows (all by default).

        Returns
        -------
        J : float
            The objective.
        gradient : ndarray, shape (n_params,)
            Its gradient (MATH B2).
        """
        ev = self.evaluate(theta, batch, gradient=True)
        return ev.value, ev.gradient

    def __repr__(self) -> str:
        return (f"OCP(model={type(self.model).__name__}, n={self.n_samples}, "
                f"n_params={self.n_params}, integrator={self.integrator.name}, nt={self.nt}, "
                f"T={self.T}, time_param={self.time_param!r}, strategy={self.strategy.name})")
