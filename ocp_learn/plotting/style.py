"""One way to write a figure: labelled axes, colorbars and PNG beside a vector PDF.

Every figure function of :mod:`ocp_learn.plotting` (and the benchmark and gallery
scripts) saves through :func:`save_figure`, so each figure exists as a raster PNG of at
least :data:`DPI` dots per inch and, where a file stem is given, as a PDF (vector) beside
it.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

__all__ = ["DPI", "FORMATS", "pyplot", "save_figure", "label_axes", "add_colorbar"]

#: Resolution of the raster (PNG) output, dots per inch.
DPI = 200
#: Formats written for a file stem: a raster and a vector file.
FORMATS = ("png", "pdf")
_KNOWN = ("png", "pdf", "svg")
# no creation date in the files: the same figure gives the same bytes
_STABLE = {"png": None, "pdf": {"CreationDate": None}, "svg": {"Date": None}}


def pyplot() -> Any:
    """``matplotlib.pyplot`` on a non-interactive backend (Agg unless a file backend is
    already selected).

    Returns
    -------
    module
        ``matplotlib.pyplot``.
    """
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike, *, dpi: int = DPI,
                formats: Sequence[str] | None = None, close: bool = False) -> list[str]:
    """Write ``fig`` as PNG (raster, ``dpi``) and PDF (vector).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : str or os.PathLike
        A file stem (``"out/figure"``: writes ``out/figure.png`` and ``out/figure.pdf``),
        or a file name ending in ``.png``, ``.pdf`` or ``.svg`` (writes that file, and the
        other ``formats`` beside it when they are given).
    dpi : int
        Resolution of the raster output; at least 200.
    formats : sequence of {"png", "pdf", "svg"}, optional
        Formats to write; default :data:`FORMATS` for a stem, the suffix's format for a
        file name.
    close : bool
        Close the figure after writing it.

    Returns
    -------
    list of str
        The files written.

    Raises
    ------
    ValueError
        If ``dpi`` is below 200 or a format is not one of ``png``, ``pdf``, ``svg``.
    """
    if dpi < 200:
        raise ValueError(f"dpi must be at least 200 for a figure fit for print, got {dpi}")
    path = os.fspath(path)
    root, ext = os.path.splitext(path)
    ext = ext[1:].lower()
    if ext in _KNOWN:
        fmts = [ext] + [f for f in (formats or ()) if f != ext]
    else:
        root, fmts = path, list(formats or FORMATS)
    bad = [f for f in fmts if f not in _KNOWN]
    if bad:
        raise ValueError(f"formats must be among {_KNOWN}, got {bad}")
    written = []
    for f in fmts:
        out = path if f == ext else f"{root}.{f}"
        fig.savefig(out, dpi=dpi, format=f, bbox_inches="tight", metadata=_STABLE[f])
        written.append(out)
    if close:
        pyplot().close(fig)
    return written


def label_axes(ax: Any, xlabel: str, ylabel: str, title: str | None = None, *,
               zlabel: str | None = None) -> Any:
    """Name the axes of one panel (and its title).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The panel.
    xlabel, ylabel : str
        Axis labels with their units where there are any (``"time t"``, ``"x1"``).
    title : str, optional
        Panel title.
    zlabel : str, optional
        Third axis label of a 3-D panel.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``.
    """
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if zlabel is not None:
        ax.set_zlabel(zlabel)
    if title is not None:
        ax.set_title(title)
    return ax


def add_colorbar(fig: Any, mappable: Any, ax: Any, label: str) -> Any:
    """A colorbar beside ``ax`` saying what the colors of ``mappable`` measure.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure that holds ``ax``.
    mappable : matplotlib.cm.ScalarMappable
        The image, mesh or contour set whose colors the bar explains.
    ax : matplotlib.axes.Axes
        The panel the bar belongs to.
    label : str
        What the colors measure (``"density"``, ``"obstacle Q(x)"``).

    Returns
    -------
    matplotlib.colorbar.Colorbar
        The colorbar, labelled.
    """
    cb = fig.colorbar(mappable, ax=ax, fraction=0.046, pad=0.03)
    cb.set_label(label)
    return cb
