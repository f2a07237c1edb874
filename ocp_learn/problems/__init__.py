from .classification import NeuralODEClassifier, GaussNewtonOperator  # noqa: E402,F401
from .viscous import ViscousClassifier  # noqa: E402,F401
