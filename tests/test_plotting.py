"""Figure writers: PNG (>= 200 dpi) beside a PDF, every panel with labelled axes."""
import os

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from ocp_learn.plotting.flows import flow_figure  # noqa: E402
from ocp_learn.plotting.mfg import crowd_2d_figure, trajectories_1d_figure  # noqa: E402
from ocp_learn.plotting.style import DPI, label_axes, pyplot, save_figure  # noqa: E402


def _png_dpi(path):
    """Dots per inch from the PNG ``pHYs`` chunk (pixels per metre)."""
    with open(path, "rb") as fh:
        data = fh.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i = data.index(b"pHYs")
    ppm = int.from_bytes(data[i + 4:i + 8], "big")
    return ppm * 0.0254


def _labelled(fig):
    panels = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    return panels and all(a.get_xlabel() and a.get_ylabel() for a in panels)


def _obstacle(z):
    return 10.0 * np.exp(-0.5 * np.sum(z[:, :2] ** 2, axis=1))


def test_save_figure_writes_png_and_pdf(tmp_path):
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    label_axes(ax, "time t", "x", "a line")
    written = save_figure(fig, str(tmp_path / "line"), close=True)
    assert sorted(os.path.basename(p) for p in written) == ["line.pdf", "line.png"]
    assert _png_dpi(tmp_path / "line.png") == pytest.approx(DPI, abs=1)
    with open(tmp_path / "line.pdf", "rb") as fh:
        assert fh.read(5) == b"%PDF-"


def test_save_figure_file_name_and_checks(tmp_path):
    plt = pyplot()
    fig, _ = plt.subplots()
    assert save_figure(fig, str(tmp_path / "a.png")) == [str(tmp_path / "a.png")]
    assert not (tmp_path / "a.pdf").exists()
    out = save_figure(fig, str(tmp_path / "b.png"), formats=("pdf", "svg"))
    assert [os.path.basename(p) for p in out] == ["b.png", "b.pdf", "b.svg"]
    with pytest.raises(ValueError, match="dpi"):
        save_figure(fig, str(tmp_path / "c"), dpi=100)
    with pytest.raises(ValueError, match="formats"):
        save_figure(fig, str(tmp_path / "c"), formats=("jpg",))
    plt.close(fig)


def test_crowd_2d_figure_png_pdf_labels(tmp_path):
    t = np.linspace(0, 1, 5)[:, None, None]
    x0 = np.array([[0.0, 3.0, 0.5], [0.5, 3.0, -0.5]])
    paths = x0 + t * np.array([0.0, -6.0, 0.0])
    fig = crowd_2d_figure(paths, None, _obstacle, title="tiny")
    assert _labelled(fig)
    assert any(a.get_label() == "<colorbar>" for a in fig.axes)  # the obstacle's scale
    pyplot().close(fig)
    stem = str(tmp_path / "crowd")
    assert crowd_2d_figure(paths, stem, _obstacle, title="tiny") == stem
    assert (tmp_path / "crowd.png").exists() and (tmp_path / "crowd.pdf").exists()


def test_trajectories_1d_obstacle_only_where_given(tmp_path):
    times = np.linspace(0, 1, 5)
    paths = np.outer(1 - times, [2.0, -2.0])
    panels = [("OT", times, paths, None), ("crowd motion", times, paths, _obstacle)]
    fig = trajectories_1d_figure(panels, None)
    assert _labelled(fig)
    ot, crowd = fig.axes[0], fig.axes[1]
    assert not ot.collections and crowd.collections  # no obstacle drawn in the OT panel
    pyplot().close(fig)
    trajectories_1d_figure(panels, str(tmp_path / "fig3"))
    assert (tmp_path / "fig3.png").exists() and (tmp_path / "fig3.pdf").exists()


class _GaussianFlow:
    """A stand-in flow: the identity map, standard normal density."""

    def __init__(self, dim):
        self.dim, self.nt = dim, 2
        self.shift, self.scale = np.zeros(dim), np.ones(dim)

    def log_density(self, theta, x):
        return -0.5 * np.sum(x * x, 1) - 0.5 * self.dim * np.log(2 * np.pi)

    def transport(self, theta, x, nt=None):
        s = np.linspace(1, 0.5, (nt or self.nt) + 1)[:, None, None]
        return s * x[None]

    def sample(self, theta, n, seed=None):
        return np.random.default_rng(seed).standard_normal((n, self.dim))


@pytest.mark.parametrize("dim", [2, 3])
def test_flow_figure_no_blank_panel(tmp_path, dim):
    prob = _GaussianFlow(dim)
    x = np.random.default_rng(0).standard_normal((200, dim))
    fig = flow_figure(prob, None, x, None, n_traj=20, n_gen=200, grid_n=20, n_marginal=500)
    assert _labelled(fig)
    panels = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert len(panels) == 4 and all(a.axison and (a.images or a.collections or a.lines)
                                    for a in panels)
    if dim > 2:
        assert "marginal" in panels[1].get_title()
    pyplot().close(fig)
    flow_figure(prob, None, x, str(tmp_path / "flow"), n_traj=20, n_gen=200, grid_n=20,
                n_marginal=500)
    assert (tmp_path / "flow.png").exists() and (tmp_path / "flow.pdf").exists()


def test_classifier_figure_png_pdf_labels(tmp_path):
    from ocp_learn.plotting.classification import plot_classifier_figure

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 2))
    y = (x[:, 0] > 0).astype(int)
    g = np.linspace(-2, 2, 5)
    row = {"name": "tiny", "x": x, "y": y, "z": x, "W": np.array([[1.0, 0.0]]),
           "mu": np.array([0.0]), "grid": (g, (g[None, :] > 0).repeat(5, 0).astype(int)),
           "x_test": x, "y_test": y, "pred_test": 1 - y, "test_accuracy": 0.0}
    fig = plot_classifier_figure([row], str(tmp_path / "cls"))
    assert _labelled(fig)
    pyplot().close(fig)
    assert (tmp_path / "cls.png").exists() and (tmp_path / "cls.pdf").exists()


def test_crowd_avoid_preset_only_heavier_obstacle():
    from ocp_learn.costs.interactions import ObstacleCost
    from ocp_learn.problems.mfg import PRESETS, mfg_preset

    crowd, avoid = mfg_preset("crowd", 2), mfg_preset("crowd-avoid", 2)
    assert PRESETS["crowd"]["obstacle_scale"] == 50.0
    assert {k: v for k, v in PRESETS["crowd-avoid"].items() if k != "obstacle_scale"} == \
        {k: v for k, v in PRESETS["crowd"].items() if k != "obstacle_scale"}
    np.testing.assert_array_equal(crowd.alpha, avoid.alpha)
    z = np.array([[0.0, 0.0], [0.5, -1.0]])
    qc, qa = ([F.Q(z) for F in p.field.interactions if isinstance(F, ObstacleCost)][0]
              for p in (crowd, avoid))
    np.testing.assert_allclose(qa, 10.0 * qc, rtol=1e-14)


def test_single_agent_goes_through_light_obstacle_around_heavy_one():
    from benchmarks.bench_crowd_avoidance import sideways_deviation, single_agent_path

    light, heavy = single_agent_path(50.0, 0.0, n=60), single_agent_path(500.0, 0.0, n=60)
    assert light["deviation"] < 1e-6 < 1.0 < heavy["deviation"]
    assert heavy["objective"] > light["objective"]
    paths = np.stack([light["path"], heavy["path"]], axis=1)  # (n + 1, 2 agents, 2)
    dev = sideways_deviation(paths, 50.0)
    assert dev["crossed_x2_0"] == 1.0 and dev["through_core"] == 0.5
