import argparse
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


def _subparsers():
    import argparse

    from ocp_learn.cli import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, sub.choices


def test_cli_every_option_has_help_and_shows_its_default():
    parser, subs = _subparsers()
    assert set(subs) >= {"demo", "bench", "classify", "flow", "mfg", "verify"}
    for name, p in [("ocp-learn", parser), *subs.items()]:
        fmt = p._get_formatter()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            where = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and action.help.strip(), f"{where}: no help text"
            text = fmt._get_help_string(action) % {"default": action.default}
            if action.option_strings and action.nargs != 0 and not action.required:
                assert "default" in text, f"{where}: the help does not show the default"


def test_cli_option_aliases_share_one_destination():
    _, subs = _subparsers()
    assert subs["classify"].parse_args(["--iters", "7"]).maxiter == 7
    assert subs["flow"].parse_args(["--out", "o", "--n-train", "9", "--maxiter", "3"]).n == 9
    assert subs["mfg"].parse_args(["--out", "o", "--maxiter", "3"]).iters == 3


def test_cli_subcommands_are_registered_in_the_commands_package(capsys, monkeypatch):
    from ocp_learn import commands
    from ocp_learn.commands import Subcommand, register

    monkeypatch.setattr(commands, "SUBCOMMANDS", dict(commands.SUBCOMMANDS))

    def configure(p):
        p.add_argument("--word", default="hi", help="what to print")

    def run(args):
        print(args.word)
        return 0

    register(Subcommand("echo", "print a word", configure, run))
    assert main(["echo", "--word", "ocp"]) == 0 and capsys.readouterr().out == "ocp\n"
    with pytest.raises(TypeError, match="Subcommand"):
        register(run)


def test_cli_demo_writes_figure_and_metrics(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ocp_learn.cli", "demo", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "train_accuracy" in r.stdout
    metrics = json.loads((tmp_path / "demo_metrics.json").read_text())
    assert metrics[0]["test_accuracy"] >= 0.9
    assert (tmp_path / "demo_classifier.png").stat().st_size > 1000
