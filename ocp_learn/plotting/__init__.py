"""Figure functions (matplotlib, Agg backend)."""
from .classification import plot_classifier_figure, hyperplane_normal

__all__ = ["plot_classifier_figure", "hyperplane_normal"]
