"""ocp_learn: continuous-time deep learning posed as optimal control.

Discretize-then-optimize: every gradient is the exact gradient of the discrete
objective, derived by hand (no autodiff framework).  See ``MATH.md`` equation
numbers quoted in the docstrings.
"""
from importlib.metadata import PackageNotFoundError, version as _version

from .errors import NonFiniteError
from .params import ParamLayout
from .ledger import Ledger
from .controls import ConstantInTime, PiecewiseConstant, PiecewiseLinear
from .integrators import ButcherTableau, ExplicitRK, get_integrator
from .gradients import get_strategy
from .models import Model, LinearModel, SingleLayerNet
from .costs import (LinearHeadLoss, KineticEnergy, QuadraticState, Tikhonov, TimeSmoothness,
                    AugmentedDynamics)
from .protocols import (Field, FieldWithResiduals, PartitionedField, TerminalCost, TerminalResult,
                        PerSampleTerminal, RunningCost, Regularizer, Loss, Interaction, Density,
                        ScoredDensity, Problem, GaussNewtonProblem, ResamplableProblem,
                        ShardableProblem, check_protocol)
from .ocp import OCP, Evaluation
from . import verify, datasets, optim

try:
    __version__ = _version("ocp_learn")
except PackageNotFoundError:  # pragma: no cover - not installed
    __version__ = "0.0.0"

__all__ = ["NonFiniteError", "ParamLayout", "Ledger", "ConstantInTime", "PiecewiseConstant",
           "PiecewiseLinear", "ButcherTableau", "ExplicitRK", "get_integrator", "get_strategy",
           "Model", "LinearModel", "SingleLayerNet", "LinearHeadLoss", "KineticEnergy",
           "QuadraticState", "Tikhonov", "TimeSmoothness", "AugmentedDynamics", "OCP",
           "Evaluation", "verify", "datasets", "optim", "__version__",
           # the contracts (ocp_learn.protocols)
           "Field", "FieldWithResiduals", "PartitionedField", "TerminalCost", "TerminalResult",
           "PerSampleTerminal", "RunningCost", "Regularizer", "Loss", "Interaction", "Density",
           "ScoredDensity", "Problem", "GaussNewtonProblem", "ResamplableProblem",
           "ShardableProblem", "check_protocol"]
