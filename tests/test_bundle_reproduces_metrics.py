"""For each family: train with the command line, then in a fresh process load the run's bundle
(without the training data) and reproduce the metrics it saved to 1e-12."""
import json
import os
import subprocess
import sys

import pytest

from ocp_learn.cli import main

RUNS = {
    "classify": ["classify", "--n-train", "40", "--n-test", "30", "--iters", "3", "--width", "4",
                 "--nt", "2", "--no-baseline", "-q"],
    "flow": ["flow", "--n-train", "64", "--n-test", "200", "--iters", "3", "--width", "4",
             "--nt", "2", "--backend", "numpy", "-q"],
    "mfg": ["mfg", "--problem", "crowd", "--dim", "2", "--samples", "48", "--iters", "3",
            "--backend", "numpy", "-q"],
}

CHILD = """
import json, sys
from ocp_learn.recipes.bundle import evaluate_model
print(json.dumps(evaluate_model(sys.argv[1])))
"""


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # coarse grids in tiny runs
@pytest.mark.parametrize("family", sorted(RUNS))
def test_a_fresh_process_reproduces_the_saved_metrics_from_the_bundle(family, tmp_path):
    out = tmp_path / family
    assert main(RUNS[family] + ["--out", str(out)]) == 0
    assert (out / "model.npz").exists()
    env = dict(os.environ, NUMBA_NUM_THREADS="1", MPLBACKEND="Agg")
    res = subprocess.run([sys.executable, "-c", CHILD, str(out)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    table = json.loads(res.stdout.strip().splitlines()[-1])
    assert table, "no metric was recomputed"
    saved = json.loads((out / "metrics.json").read_text())
    for key, row in table.items():
        assert row["saved"] == saved[key]
        rel = abs(row["recomputed"] - row["saved"]) / max(abs(row["saved"]), 1e-300)
        assert rel <= 1e-12, (key, row)
