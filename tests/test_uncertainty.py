"""Every Monte Carlo figure of the `flow` and `mfg` commands carries its standard error and
sample count; objectives are reported on fresh samples; the selection figure is labeled; the
finer-grid check of the MFG."""
import json
import warnings

import numpy as np
import pytest

from ocp_learn.cli import main
from ocp_learn.metrics import batch_means, combine_batches, mean_se, mmd, mmd_se

FLOW_FIGURES = ("test_nll", "test_nll_fine", "test_nll_fine_diff", "inverse_error", "mmd",
                "transport_cost", "hjb_penalty")
MFG_FIGURES = ("objective", "L", "F", "G", "hjb", "hjb_terminal", "objective_fine",
               "objective_fine_diff")


def _companions(m, keys):
    for k in keys:
        assert k in m, k
        assert f"{k}_se" in m and f"{k}_n" in m, k
        assert m[f"{k}_n"] >= 2 and np.isfinite(m[f"{k}_se"]) and m[f"{k}_se"] >= 0, k
    # every objective/NLL figure written has them
    for k, v in m.items():
        if isinstance(v, float) and (k.startswith(("objective", "test_nll")) or k in
                                     ("L", "F", "G", "hjb", "hjb_terminal", "mmd")) \
                and not k.endswith(("_se", "_tol")):
            assert f"{k}_se" in m and f"{k}_n" in m, k


def test_flow_metrics_carry_standard_errors(tmp_path, capsys):
    out = tmp_path / "flow"
    assert main(["flow", "--data", "8gaussians", "--out", str(out), "--n", "96", "--n-test",
                 "200", "--iters", "2", "--width", "4", "--nt", "2", "--backend", "numpy",
                 "-q"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    _companions(m, FLOW_FIGURES)
    assert m["test_nll_n"] == 200 and m["mmd_n"] == 200
    assert m["test_nll_fine_diff"] == pytest.approx(m["test_nll"] - m["test_nll_fine"], abs=1e-12)
    assert "se_note" in m
    printed = capsys.readouterr().out
    assert "test_nll: " in printed and "(n = 200)" in printed and "test_nll_se:" not in printed
    # ocp-learn evaluate: the recomputed figures with their standard errors
    assert main(["evaluate", "--model", str(out)]) == 0
    table = capsys.readouterr().out
    assert "std. error" in table and "samples" in table
    line = next(r for r in table.splitlines() if r.startswith("| test_nll "))
    assert f"{m['test_nll_se']:.2g}" in line and "200" in line


def test_mfg_metrics_carry_standard_errors_and_label_the_selection(tmp_path):
    out = tmp_path / "mfg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # the finer-grid check may warn
        assert main(["mfg", "--problem", "crowd", "--dim", "2", "--out", str(out), "--samples",
                     "48", "--iters", "2", "--backend", "numpy", "-q"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    _companions(m, MFG_FIGURES)
    assert m["objective_n"] == m["n_eval"] == 48
    # the selection figure is labeled as such, never as the objective reached
    assert "validation" not in m and "validation_best_selected" in m
    assert "biased low" in m["validation_note"]
    assert m["nt_fine"] % 4 == 0 and m["objective_fine_tol"] > 0


def test_batch_standard_errors_match_per_sample_ones():
    rng = np.random.default_rng(0)
    v = rng.standard_normal(4000) * 2.0 + 1.0
    sizes, bm = batch_means(lambda b: {"v": float(np.mean(b))}, v[:, None], 40)
    m, se, n = combine_batches(sizes, bm["v"])
    m0, se0, n0 = mean_se(v)
    assert n == n0 == 4000 and m == pytest.approx(m0, rel=1e-12)
    assert se == pytest.approx(se0, rel=0.35) and se0 == pytest.approx(2.0 / np.sqrt(4000), rel=0.1)
    # the split MMD error is of the size of the spread of the estimator
    a, b = rng.standard_normal((400, 2)), rng.standard_normal((400, 2))
    assert 0 < mmd_se(a, b) < 0.05 and abs(mmd(a, b)) < 4 * mmd_se(a, b) + 1e-3
    with pytest.raises(ValueError, match="n_blocks"):
        mmd_se(a[:5], b[:5], n_blocks=4)


def test_mfg_finer_grid_check_warns_when_the_grid_does_not_resolve_the_game():
    from ocp_learn.problems.mfg import mfg_preset
    from ocp_learn.recipes.mfg import mfg_estimates

    prob = mfg_preset("crowd", 2, n_samples=16, backend="numpy", seed=0, nt=1)
    x = prob.rho0.sample(200, 5)
    rough = prob.init_params(0) + 1.5 * np.random.default_rng(1).standard_normal(prob.n_params)
    with pytest.warns(RuntimeWarning, match="finer time grid") as rec:
        m = mfg_estimates(prob, rough, x)
    d, se = m["objective_fine_diff"], m["objective_fine_diff_se"]
    assert abs(d) > max(3 * se, m["objective_fine_tol"])
    assert f"{d:.3g}" in str(rec[0].message)
    fine = prob.with_steps(4)
    assert m["objective_fine"] == pytest.approx(fine.evaluate_on(rough, x)["objective"], rel=1e-10)
    assert m["objective"] == pytest.approx(prob.evaluate_on(rough, x)["objective"], rel=1e-10)
    # resolved: a game on a fine grid at small parameters does not warn
    calm = mfg_preset("crowd", 2, n_samples=16, backend="numpy", seed=0, nt=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        m = mfg_estimates(calm, calm.init_params(0), x)
    assert abs(m["objective_fine_diff"]) <= max(3 * m["objective_fine_diff_se"],
                                                m["objective_fine_tol"])
