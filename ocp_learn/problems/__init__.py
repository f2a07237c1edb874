"""The article's three problem families as OCPs (MATH C, D, E/F).

* :mod:`.classification` -- :class:`NeuralODEClassifier` (and the Gauss--Newton operator);
* :mod:`.viscous` -- :class:`ViscousClassifier` (Euler--Maruyama, Feynman--Kac prediction);
* :mod:`.cnf` -- :class:`~ocp_learn.problems.cnf.ContinuousNormalizingFlow` (OT-Flow);
* :mod:`.mfg` -- :class:`~ocp_learn.problems.mfg.PotentialMFG` and the Table 1 presets;
* :mod:`.potential_flow` -- the field and terminal cost shared by flows and MFGs;
* :mod:`.persistence` -- ``problem.save(path, theta)`` and :func:`load`;
* :mod:`.estimator` -- a scikit-learn estimator around :class:`NeuralODEClassifier`.
"""
from .classification import NeuralODEClassifier, GaussNewtonOperator
from .viscous import ViscousClassifier
from .cnf import ContinuousNormalizingFlow
from .mfg import PotentialMFG, mfg_preset
from .persistence import Loaded, load

__all__ = ["NeuralODEClassifier", "GaussNewtonOperator", "ViscousClassifier",
           "ContinuousNormalizingFlow", "PotentialMFG", "mfg_preset", "Loaded", "load"]
