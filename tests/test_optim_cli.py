import json
import subprocess
import sys

import numpy as np
import pytest

import ocp_learn as ol
from ocp_learn.cli import main
from ocp_learn.optim import lbfgs


def small_problem(seed=0):
    x, y = ol.datasets.rings(80, seed=seed)
    x = np.hstack([x, np.zeros((len(x), 1))])
    return ol.OCP(ol.SingleLayerNet(3, 6), x, ol.LinearHeadLoss(y, 3, "logistic"), nt=4)


def test_lbfgs_decreases_and_records_history():
    prob = small_problem()
    th0 = prob.init_params(1)
    res = lbfgs(prob, th0, maxiter=30, progress=False)
    h = res.history
    assert len(h["objective"]) == res.nit + 1
    assert h["objective"][-1] < 0.5 * h["objective"][0]
    assert res.fun == pytest.approx(prob.objective(res.x))
    assert res.nfev >= res.nit and res.ledger["steps"] == prob.nt * res.nfev
    assert np.all(np.diff(h["time"]) >= 0)


def test_lbfgs_is_reproducible():
    a = lbfgs(small_problem(), maxiter=10, progress=False, seed=3)
    b = lbfgs(small_problem(), maxiter=10, progress=False, seed=3)
    np.testing.assert_array_equal(a.x, b.x)


def test_cli_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert "ocp-learn" in capsys.readouterr().out
    assert main([]) == 2


def test_cli_demo_writes_figure_and_metrics(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ocp_learn.cli", "demo", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "train_accuracy" in r.stdout
    metrics = json.loads((tmp_path / "demo_metrics.json").read_text())
    assert metrics[0]["test_accuracy"] >= 0.9
    assert (tmp_path / "demo_classifier.png").stat().st_size > 1000
