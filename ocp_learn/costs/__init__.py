"""Costs: running costs (integrated), terminal costs, losses, regularizers."""
from .losses import Logistic, SoftmaxCrossEntropy, SquaredError, get_loss
from .running import AugmentedDynamics, KineticEnergy, QuadraticState
from .terminal import TerminalCost, LinearHeadLoss, MeanOfColumns
from .regularizers import Tikhonov, TimeSmoothness

__all__ = ["Logistic", "SoftmaxCrossEntropy", "SquaredError", "get_loss", "AugmentedDynamics",
           "KineticEnergy", "QuadraticState", "TerminalCost", "LinearHeadLoss", "MeanOfColumns",
           "Tikhonov", "TimeSmoothness"]
