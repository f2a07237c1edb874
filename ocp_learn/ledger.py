"""The per-solve ledger: work and memory counters users and benchmarks read."""
from __future__ import annotations

from dataclasses import dataclass, asdict

__all__ = ["Ledger"]


@dataclass
class Ledger:
    """Counters of one objective (and gradient) evaluation.

    The parameters are kept as attributes of the same names.

    Parameters
    ----------
    rhs_evals : int
        Right-hand-side evaluations ``F(Y_i)`` (one per stage per step).
    jvp_evals, vjp_evals : int
        Tangent and adjoint evaluations of ``F``.
    steps : int
        Forward time steps taken (first pass).
    recomputed_steps : int
        Forward steps repeated by a memory strategy (checkpointing, store_states).
    stored_floats : int
        Peak number of floats the gradient strategy held at once (exact count
        of the arrays it keeps: states, stages, checkpoints).
    reconstruction_error : float
        ``max |y_0(rebuilt) - y_0|`` over the backward sweeps that rebuild the states
        instead of reading them (the reversible strategy's inversion, the continuous
        adjoint's backsolve); 0 for strategies that keep what they need.
    """

    rhs_evals: int = 0
    jvp_evals: int = 0
    vjp_evals: int = 0
    steps: int = 0
    recomputed_steps: int = 0
    stored_floats: int = 0
    reconstruction_error: float = 0.0
    _held: int = 0

    def hold(self, n: int) -> None:
        """Record that ``n`` more floats are kept; update the peak.

        Parameters
        ----------
        n : int
            Number of floats.
        """
        self._held += int(n)
        self.stored_floats = max(self.stored_floats, self._held)

    def release(self, n: int) -> None:
        """Record that ``n`` floats were freed.

        Parameters
        ----------
        n : int
            Number of floats.
        """
        self._held -= int(n)

    def as_dict(self) -> dict:
        """The counters by name.

        Returns
        -------
        dict
            Counter name -> value.
        """
        d = asdict(self)
        d.pop("_held")
        return d

    def __iadd__(self, other: Ledger) -> Ledger:
        """Add ``other``'s work counters; the peak is the larger of the two peaks."""
        self.rhs_evals += other.rhs_evals
        self.jvp_evals += other.jvp_evals
        self.vjp_evals += other.vjp_evals
        self.steps += other.steps
        self.recomputed_steps += other.recomputed_steps
        self.stored_floats = max(self.stored_floats, other.stored_floats)
        self.reconstruction_error = max(self.reconstruction_error, other.reconstruction_error)
        return self
