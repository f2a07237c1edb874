"""``ocp-learn flow --data digits`` and ``ocp-learn classify --data digits|breast_cancer|wine``
end to end at tiny sizes: the run folder, the numbers in it, ``ocp-learn evaluate`` on it, and
the options that do not apply to the real data sets (one-line errors naming them, before any
folder is made)."""
import json

import numpy as np
import pytest

from ocp_learn.cli import main
from ocp_learn.datasets.real import digits_density_data, load_real, standardize
from ocp_learn.recipes.bundle import evaluate_model, load_bundle

FLOW_DIGITS = ["flow", "--data", "digits", "--iters", "4", "--width", "6", "--nt", "2",
               "--resample-every", "2", "--patience", "1", "--backend", "numpy", "--quiet"]


from test_cli_reliability import _no_debug, one_line_error  # noqa: E402,F401  (autouse fixture)


def test_flow_digits_writes_the_pixel_scale_nll_and_the_baselines(tmp_path, capsys):
    out = tmp_path / "digits"
    assert main(FLOW_DIGITS + ["--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["figure.png", "metrics.json", "model.npz",
                                                      "run.json", "theta.npy"]
    assert (out / "figure.png").stat().st_size > 5000
    m = json.loads((out / "metrics.json").read_text())
    assert m["data"] == "digits" and m["dim"] == 64
    assert (m["n_train"], m["n_val"], m["n_test"], m["test_nll_n"]) == (1077, 360, 360, 360)
    assert m["width"] == 6 and m["nt"] == 2 and m["rank"] == 64 and m["resample_every"] == 2
    assert 1 <= m["iterations"] <= 4 and m["run"]["command"][:2] == ["ocp-learn", "flow"]
    # the NLL of the dequantized test digits in the pixel scale: the flow's log-density of the
    # preprocessed digits plus the preprocessing's log-determinant
    data = digits_density_data(0, alpha=0.01)
    model = load_bundle(str(out))
    assert np.array_equal(model.theta, np.load(out / "theta.npy"))
    lp = model.problem.log_density(model.theta, data.y_test) + data.log_det_test
    assert np.isclose(m["test_nll"], -lp.mean(), rtol=1e-12)
    assert np.isclose(m["test_nll_se"], lp.std() / np.sqrt(360), rtol=1e-12)
    assert np.isclose(m["test_bits_per_dim"], m["test_nll"] / (64 * np.log(2)), rtol=1e-14)
    assert abs(m["test_nll_fine_diff"]) < 0.05 and np.isfinite(m["val_nll"])
    # the baselines on the same split, in the same units
    b = m["baselines"]
    assert set(b) == {"gaussian", "gmm", "kde", "gmm (logit only)", "kde (logit only)"}
    for row in b.values():
        assert 80 < row["test_nll"] < 120 and np.isfinite(row["val_nll"])
    assert b["gmm"]["val_nll"] < b["gaussian"]["val_nll"]
    assert abs(m["test_nll"] - b["gaussian"]["test_nll"]) < 10  # a few steps from a Gaussian
    assert m["best_baseline"] == min(b, key=lambda k: b[k]["val_nll"])
    gap = m["test_nll"] - b[m["best_baseline"]]["test_nll"]
    assert np.isclose(m["gap_to_best_baseline"], gap, rtol=1e-9)
    assert m["gap_to_best_baseline_se"] > 0
    shown = capsys.readouterr().out
    assert "test_bits_per_dim" in shown and "| gmm " in shown and "val_curve" not in shown


def test_classify_breast_cancer_beats_chance_with_logistic_regression_alongside(tmp_path,
                                                                              capsys):
    out = tmp_path / "bc"
    assert main(["classify", "--data", "breast_cancer", "--out", str(out), "--iters", "40",
                 "--width", "8", "--nt", "4", "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.npz", "run.json",
                                                      "theta.npy"]
    m = json.loads((out / "metrics.json").read_text())
    split, mean, std = standardize(load_real("breast_cancer", 0))
    majority = np.bincount(split.y_test).max() / len(split.y_test)  # about 0.63
    assert m["test_accuracy_n"] == len(split.y_test) == 114 and m["n_train"] == 341
    assert m["test_accuracy"] > max(0.85, majority) and m["val_accuracy"] > majority
    assert m["loss"] == "logistic" and m["n_classes"] == 2 and m["head_decay"] == 1e-3
    assert np.allclose(m["input_mean"], mean) and np.allclose(m["input_std"], std)
    assert np.sum(m["confusion_test"]) == 114
    assert np.trace(m["confusion_test"]) == round(m["test_accuracy"] * 114)
    lr = m["logistic_regression"]
    assert lr["test_accuracy"] > 0.9 and lr["C"] in (0.01, 0.1, 1.0, 10.0, 100.0)
    # the bundle predicts standardized inputs with the run's accuracy
    model = load_bundle(str(out))
    pred = model.problem.predict(model.theta, split.x_test)
    assert np.isclose(np.mean(pred == split.y_test), m["test_accuracy"], rtol=1e-14)
    assert "logistic regression: C=" in capsys.readouterr().out


@pytest.mark.parametrize("data,classes", [("wine", 3), ("digits", 10)])
def test_classify_multiclass_sets_use_softmax(data, classes, tmp_path):
    out = tmp_path / data
    assert main(["classify", "--data", data, "--out", str(out), "--iters", "15", "--width",
                 "4", "--nt", "2", "--no-baseline", "--seed", "1", "--quiet"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["loss"] == "softmax" and m["n_classes"] == classes and m["seed"] == 1
    assert "logistic_regression" not in m
    assert np.isfinite(m["objective"]) and m["test_accuracy"] > 1.5 / classes
    assert np.shape(m["confusion_test"]) == (classes, classes)


@pytest.mark.parametrize("argv,needle", [
    (["flow", "--data", "digits", "--dim", "64"], "--dim"),
    (["flow", "--data", "digits", "--n-train", "100"], "--n-train"),
    (["flow", "--data", "digits", "--n-test", "100"], "--n-test"),
    (["flow", "--data", "digits", "--optimizer", "adam"], "--optimizer adam"),
    (["flow", "--data", "digits", "--resume"], "--resume"),
    (["flow", "--data", "digits", "--center"], "--center"),
    (["flow", "--data", "digits", "--patience", "0"], "--patience"),
    (["flow", "--data", "digits", "--rank", "0"], "--rank"),
    (["flow", "--patience", "3"], "--patience"),
    (["classify", "--data", "wine", "--loss", "logistic"], "--loss logistic"),
    (["classify", "--data", "digits", "--n-test", "10"], "--n-test"),
    (["classify", "--data", "breast_cancer", "--n-train", "10"], "--n-train"),
    (["classify", "--data", "breast_cancer", "--viscosity", "0.1", "--head-decay", "0.01"],
     "--head-decay"),
    (["classify", "--data", "wine", "--head-decay", "-1"], "--head-decay"),
    (["classify", "--data", "wine", "--kinetic", "-0.1"], "--kinetic"),
    (["classify", "--data", "wine", "--viscosity", "0.1", "--kinetic", "0.1"], "--kinetic"),
])
def test_options_that_do_not_apply_to_real_data_are_named(argv, needle, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(argv + ["--out", str(out)]) == 2
    assert needle in one_line_error(capsys, argv[0])
    assert not out.exists()


def test_a_head_penalty_trains_a_toy_classifier_saved_as_a_plain_one(tmp_path):
    out = tmp_path / "rings"
    assert main(["classify", "--out", str(out), "--n-train", "40", "--n-test", "20", "--iters",
                 "3", "--width", "4", "--nt", "2", "--no-baseline", "--head-decay", "0.01",
                 "--quiet"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    model = load_bundle(str(out))
    assert type(model.problem).__name__ == "NeuralODEClassifier" and "skipped" not in m
    assert m["run"]["hyperparameters"]["head_decay"] == 0.01


def test_recipes_dispatch_the_real_data_sets(tmp_path):
    from ocp_learn.recipes.classify import classify
    from ocp_learn.recipes.flow import run_flow

    m = classify("wine", out=None, maxiter=5, width=4, nt=2, baseline=False, tikhonov=1e-2)
    assert m["data"] == "wine" and m["n_test"] == 36 and "val_accuracy" in m
    with pytest.raises(ValueError, match="center"):
        run_flow("digits", out=str(tmp_path / "f"), center=True)
    assert not (tmp_path / "f").exists()


def _evaluate(out, capsys):
    """``ocp-learn evaluate`` on a run folder (it succeeds and prints a table), then the
    figures it compares (:func:`evaluate_model`) with the saved metrics."""
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out)]) == 0
    table = capsys.readouterr().out
    assert "recomputed" in table and "std. error" in table
    return evaluate_model(str(out)), json.loads((out / "metrics.json").read_text())


def test_evaluate_reproduces_a_digits_flow_in_the_pixel_scale(tmp_path, capsys):
    out = tmp_path / "digits"
    assert main(FLOW_DIGITS + ["--out", str(out)]) == 0
    table, m = _evaluate(out, capsys)
    assert {"test_nll", "test_bits_per_dim", "inverse_error", "mmd", "transport_cost",
            "hjb_penalty"} <= set(table)
    for key, row in table.items():
        assert row["saved"] == m[key]
        assert abs(row["recomputed"] - m[key]) <= 1e-10 * abs(m[key]), (key, row)
    nll = table["test_nll"]
    assert 80 < nll["recomputed"] < 120  # nats of the pixel scale, not of the logits
    assert nll["n"] == m["test_nll_n"] == 360
    assert abs(nll["se"] - m["test_nll_se"]) <= 1e-10 * m["test_nll_se"]
    # the logit margin is read from the run: another one gives another test NLL
    m["alpha"] = 0.05
    (out / "metrics.json").write_text(json.dumps(m))
    assert abs(evaluate_model(str(out))["test_nll"]["recomputed"] - m["test_nll"]) > 1e-3
    del m["alpha"]
    (out / "metrics.json").write_text(json.dumps(m))
    assert main(["evaluate", "--model", str(out)]) == 2
    assert "'alpha'" in one_line_error(capsys, "evaluate")


@pytest.mark.parametrize("data,extra", [
    ("breast_cancer", ["--head-decay", "0.01"]),
    ("wine", ["--seed", "1", "--augment", "2"]),
    ("wine", ["--kinetic", "0.1", "--T", "3"]),
    ("digits", ["--seed", "2", "--viscosity", "0.1"]),
])
def test_evaluate_reproduces_the_test_accuracy_of_a_real_data_classifier(data, extra,
                                                                         tmp_path, capsys):
    out = tmp_path / data
    assert main(["classify", "--data", data, "--out", str(out), "--iters", "3", "--width",
                 "4", "--nt", "2", "--no-baseline", "--quiet"] + extra) == 0
    table, m = _evaluate(out, capsys)
    assert set(table) == {"test_accuracy"}
    row = table["test_accuracy"]
    assert row["saved"] == row["recomputed"] == m["test_accuracy"]
    assert row["n"] == m["test_accuracy_n"] == m["n_test"]
    assert row["se"] == m["test_accuracy_se"]


@pytest.mark.parametrize("argv", [
    ["classify", "--n-train", "30", "--n-test", "20", "--iters", "2", "--width", "4", "--nt",
     "2", "--no-baseline", "--quiet"],
    ["flow", "--n-train", "32", "--n-test", "40", "--iters", "2", "--width", "4", "--nt", "2",
     "--backend", "numpy", "--quiet"],
])
def test_evaluate_names_data_it_cannot_draw_again(argv, tmp_path, capsys):
    out = tmp_path / argv[0]
    assert main(argv + ["--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    m["data"] = "mnist"
    (out / "metrics.json").write_text(json.dumps(m))
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out)]) == 2
    line = one_line_error(capsys, "evaluate")
    assert "'mnist'" in line and "metrics.json" in line and str(out) in line
    assert ("'wine'" if argv[0] == "classify" else "'digits'") in line
