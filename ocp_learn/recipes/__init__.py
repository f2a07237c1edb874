"""Training and evaluation of the three problem families: the library behind the
``ocp-learn`` subcommands, for scripts, benchmarks and notebooks.

* :mod:`.flow` -- continuous normalizing flows: :func:`flow_data`, :func:`train_flow`,
  :func:`flow_estimates`, :func:`flow_metrics`, :func:`run_flow` (writes a folder);
* :mod:`.classify` -- neural-ODE classifiers: ``train_classifier``, :func:`classify`,
  :func:`classify_real` (the real data sets of scikit-learn);
* :mod:`.digits_flow` -- :func:`run_digits_flow`, OT-Flow on the 8 x 8 digits (writes a
  folder);
* :mod:`.mfg` -- mean field games: :func:`train_mfg`, :func:`mfg_estimates`, :func:`run_mfg`,
  :func:`figure3`;
* :mod:`.demo` -- :func:`~.demo.run_demo`, a small run of each;
* :mod:`.verify` -- :func:`~.verify.run_verify`, the CasADi reference suite written to a folder;
* :mod:`.rundir` -- :class:`~.rundir.RunFolder`, a run's folder as one set of files (locked,
  written atomically, marked ``INCOMPLETE`` until the run has finished);
* :mod:`.bundle` -- the trained model ``model.npz`` of a run: sample, predict, evaluate.

A recipe runs on one process unless its caller hands it a data-parallel context
(``parallel=``, an :class:`ocp_learn.optim.Parallel` such as
:class:`ocp_learn.distributed.Parallel`); results are written before optional metrics and
figures.  Every Monte Carlo figure is reported with its standard error and sample count
(``key_se``, ``key_n``; :mod:`ocp_learn.metrics`), on samples not used in training or
selection.
"""
from .classify import OPTIMIZERS, classify, classify_real, parse_time_param, train_classifier
from .digits_flow import run_digits_flow
from .flow import flow_data, flow_estimates, flow_metrics, run_flow, train_flow
from .mfg import figure3, mfg_estimates, run_mfg, train_mfg

__all__ = ["OPTIMIZERS", "classify", "classify_real", "parse_time_param", "train_classifier",
           "run_digits_flow",
           "flow_data", "flow_estimates", "flow_metrics", "run_flow", "train_flow", "figure3",
           "mfg_estimates", "run_mfg", "train_mfg"]
