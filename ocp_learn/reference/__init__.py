"""CasADi reference layer: an independent witness for every gradient and optimum.

* :mod:`.symbolic` -- symbolic twins of models, costs and regularizers, in
  registries keyed by type (how to extend: see that module's docstring);
* :mod:`.discrete` -- an OCP's discrete objective rebuilt in CasADi, its AD
  gradient, :func:`compare_gradient`;
* :mod:`.ipopt` -- IPOPT solves of the same discrete problem compared with
  ocp_learn's optimizers;
* :mod:`.analytic` -- closed-form references: Riccati (linear--quadratic),
  Gaussian-to-Gaussian optimal transport, the MFG single-agent check;
* :mod:`.potential` -- the potential model's ``grad``, ``d_t``, Laplacian and
  their vjp/jvp against CasADi's AD;
* :mod:`.mfg_checks` -- Pontryagin consistency of a learned MFG value function;
* :mod:`.gaussian_mfg` -- the closed-form optimum of the Gaussian OT mean field game;
* :mod:`.mfg_oracle` -- a trained Gaussian OT-MFG against that optimum, on fresh samples;
* :mod:`.hutchinson` -- the Hutchinson Laplacian against its exact mean and variance;
* :mod:`.suite` -- the whole suite behind ``ocp-learn verify``.

CasADi is imported only inside this package.
"""
from .symbolic import (SYMBOLIC_RHS, SYMBOLIC_RUNNING, SYMBOLIC_TERMINAL, SYMBOLIC_REGULARIZER,
                       SYMBOLIC_POTENTIAL, register_rhs, register_running, register_terminal,
                       register_regularizer, register_potential, unpack_sym, potential_derivatives)
from .discrete import (ReferenceProblem, build_reference, reference_objective_and_gradient,
                       compare_gradient)
from .potential import potential_function, compare_potential
from .ipopt import ipopt_solve, compare_optimizers
from . import analytic

__all__ = ["SYMBOLIC_RHS", "SYMBOLIC_RUNNING", "SYMBOLIC_TERMINAL", "SYMBOLIC_REGULARIZER",
           "SYMBOLIC_POTENTIAL", "register_rhs", "register_running", "register_terminal",
           "register_regularizer", "register_potential", "unpack_sym", "potential_derivatives",
           "ReferenceProblem", "build_reference", "reference_objective_and_gradient",
           "compare_gradient", "potential_function", "compare_potential", "ipopt_solve",
           "compare_optimizers", "analytic"]
