"""Figure functions (matplotlib, Agg backend): every figure is written as PNG (200 dpi) and
PDF through :func:`~ocp_learn.plotting.style.save_figure`."""
from .classification import hyperplane_normal, plot_classifier_figure
from .style import add_colorbar, label_axes, save_figure

__all__ = ["plot_classifier_figure", "hyperplane_normal", "save_figure", "label_axes",
           "add_colorbar"]
