"""Real data: neural-ODE classifiers against classical classifiers on the same splits.

:func:`classification_runs` trains the neural-ODE classifier
(:class:`~ocp_learn.problems.NeuralODEClassifier`, with L-BFGS and with Gauss--Newton--CG)
and ``LogisticRegression``, ``MLPClassifier`` (about the neural ODE's parameter count,
:func:`mlp_hidden_for`) and an RBF ``SVC``, each with its regularization chosen on the
validation split or by stratified cross-validation (:func:`tune_classifier`), over several
stratified splits of a data set of :mod:`ocp_learn.datasets.real`.
"""
from __future__ import annotations

import time
import warnings
from typing import Any, Sequence

import numpy as np

from ..problems import NeuralODEClassifier
from ..problems.classification import GaussNewtonOperator

__all__ = ["mlp_hidden_for", "tune_classifier", "classification_runs", "CLASSIFIERS",
           "HeadDecayClassifier", "cv_folds", "pooled", "refit_split", "default_grids",
           "fine_grids"]


#: The classifiers :func:`classification_runs` compares.
CLASSIFIERS = ("node_lbfgs", "node_gn", "logreg", "mlp", "svc")


def default_grids() -> dict[str, tuple]:
    """The grids :func:`classification_runs` searches by default, per method.

    Neural ODE (both optimizers): the Tikhonov weight in ``(1e-4, 1e-2, 1e-1)`` times the
    head's weight decay in ``(1e-3, 1e-2)``, and ``(tikhonov, head_decay, kinetic)`` =
    ``(1e-3, 1e-3, 0.01)`` and ``(1e-3, 1e-3, 0.1)``; ``C`` in ``(0.01, 0.1, 1, 10, 100)``
    (logistic regression); ``alpha`` in ``(1e-4, 1e-2, 1, 10)`` times ``max_iter`` in
    ``(50, 200, 500)`` (MLP); ``C`` in ``(1, 10, 100)`` times ``gamma`` in
    ``("scale", 0.01)`` (SVC).
    """
    node = (*((t, w) for t in (1e-4, 1e-2, 1e-1) for w in (1e-3, 1e-2)),
            (1e-3, 1e-3, 0.01), (1e-3, 1e-3, 0.1))
    return {"node_lbfgs": node, "node_gn": node,
            "logreg": (0.01, 0.1, 1.0, 10.0, 100.0),
            "mlp": tuple((a, it) for a in (1e-4, 1e-2, 1.0, 10.0) for it in (50, 200, 500)),
            "svc": tuple((c, gm) for c in (1.0, 10.0, 100.0) for gm in ("scale", 0.01))}


def fine_grids() -> dict[str, tuple]:
    """Finer grids for every method (``classification_runs(grids=fine_grids())``).

    Neural ODE: the flow's kinetic energy on, ``(tikhonov, head_decay, kinetic)`` =
    ``(1e-3, h, k)`` for ``h`` in ``(1e-3, 1e-2, 3e-2, 1e-1)`` and ``k`` in
    ``(0.03, 0.1)``, and without it ``(1e-2, 1e-3)`` and ``(1e-1, 1e-3)``; logistic
    regression: ``C`` in ``(0.01, 0.03, 0.1, 0.3, 1, 3, 10, 100)``; MLP: ``alpha`` in
    ``(0.01, 0.1, 0.3, 1, 3, 10)`` times ``max_iter`` in ``(50, 100, 200, 500)``; SVC:
    ``C`` in ``(1, 3, 10, 30, 100)`` times ``gamma`` in ``("scale", 0.003, 0.01, 0.03)``.
    On the digits' validation parts the kinetic settings score highest (mean over five
    splits 0.973--0.980 per setting and check point, against 0.926--0.970 without the
    kinetic energy).
    """
    node = (*((1e-3, h, k) for h in (1e-3, 1e-2, 3e-2, 1e-1) for k in (0.03, 0.1)),
            (1e-2, 1e-3), (1e-1, 1e-3))
    return {"node_lbfgs": node, "node_gn": node,
            "logreg": (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0),
            "mlp": tuple((a, it) for a in (0.01, 0.1, 0.3, 1.0, 3.0, 10.0)
                         for it in (50, 100, 200, 500)),
            "svc": tuple((c, gm) for c in (1.0, 3.0, 10.0, 30.0, 100.0)
                         for gm in ("scale", 0.003, 0.01, 0.03))}


def mlp_hidden_for(n_params: int, d: int, n_classes: int) -> int:
    """Hidden width ``h`` of a one-hidden-layer MLP with about ``n_params`` parameters,
    ``(d + 1) h + (h + 1) c`` (``c`` outputs; one for two classes)."""
    c = 1 if n_classes == 2 else n_classes
    return max(1, int(round((n_params - c) / (d + 1 + c))))


class HeadDecayClassifier(NeuralODEClassifier):
    """A :class:`~ocp_learn.problems.NeuralODEClassifier` whose head's weights carry the L2
    penalty ``(head_decay / 2) |W|_F^2`` (``weight_decay`` of
    :class:`~ocp_learn.costs.LinearHeadLoss`): in the objective, its gradient and the
    Gauss--Newton product (the penalty's Hessian, ``head_decay`` on the entries of ``W``).

    The penalty shapes training only; predictions are those of the parent class, and a
    saved model is a plain classifier.

    Parameters
    ----------
    x, labels : array_like
        Training features and labels.
    head_decay : float
        Weight of the penalty (0: the plain classifier).
    **kwargs
        Further classifier arguments.
    """

    def __init__(self, x, labels, *, head_decay: float = 0.0, **kwargs: Any) -> None:
        from ..errors import check_positive_float

        super().__init__(x, labels, **kwargs)
        self.terminal.weight_decay = check_positive_float("head_decay", head_decay,
                                                          allow_zero=True)

    def gauss_newton_operator(self, theta, batch=None):
        """The parent's operator with ``head_decay`` added on the head's weights."""
        op = super().gauss_newton_operator(theta, batch)
        p = self._split(op.theta)[1]
        term, layout, inner = self.terminal, self.layout, op.matvec

        def matvec(v):
            out = inner(v)
            layout.unpack(out)["terminal"][...] += term.penalty_hvp(p, self._split(v)[1])
            return out
        return GaussNewtonOperator(op.theta, op.evaluation, matvec, op.ledger)


def cv_folds(split: Any, folds: int) -> list[Any]:
    """Stratified cross-validation folds of ``split``'s training and validation parts pooled.

    Fold ``j`` trains on the other ``folds - 1`` parts and validates on part ``j``; each
    fold is standardized with its own training part's statistics
    (:func:`~ocp_learn.datasets.real.standardize`); the test part is carried along unused.

    Parameters
    ----------
    split : Split
        Unstandardized data (:func:`~ocp_learn.datasets.real.load_real`).
    folds : int
        Number of folds (at least 2).

    Returns
    -------
    list of Split
    """
    from sklearn.model_selection import StratifiedKFold

    from ..datasets.real import Split, standardize
    from ..errors import check_positive_int

    folds = check_positive_int("folds", folds)
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    x, y = pooled(split)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=split.seed)
    return [standardize(Split(split.name, x[tr], y[tr], x[va], y[va], split.x_test,
                              split.y_test, split.seed))[0] for tr, va in cv.split(x, y)]


def pooled(split: Any) -> tuple[np.ndarray, np.ndarray]:
    """The training and validation parts of ``split`` stacked: features and labels."""
    return (np.concatenate([split.x_train, split.x_val]),
            np.concatenate([split.y_train, split.y_val]))


def refit_split(split: Any) -> Any:
    """``split`` with its validation part moved into the training part (empty validation),
    standardized with the pooled training statistics: the final fit after cross-validation."""
    from ..datasets.real import Split, standardize

    x, y = pooled(split)
    return standardize(Split(split.name, x, y, x[:0], y[:0], split.x_test, split.y_test,
                             split.seed))[0]


def _node(split, kwargs, tikhonov, optimizer, maxiter, seed, check_every, head_decay=0.0,
          kinetic=0.0):
    """Train a neural-ODE classifier, checking the validation accuracy every ``check_every``
    iterations (or at the iteration counts it lists) and at the last iterate.

    Returns ``(checks, prob, seconds)``: ``checks`` maps the iteration count of each check
    to ``(validation accuracy, parameters)``; the planned check points after an early stop
    hold the last iterate.  Without a validation part: the last iterate only, accuracy
    ``nan``."""
    from ..optim import gauss_newton, lbfgs

    loss = "logistic" if split.n_classes == 2 else "softmax"
    prob = HeadDecayClassifier(split.x_train, split.y_train, loss=loss, tikhonov=tikhonov,
                               head_decay=head_decay, kinetic=kinetic, **kwargs)
    checks: dict[int, tuple[float, np.ndarray]] = {}
    validate = len(split.y_val) > 0

    def check(k, theta):
        va = prob.accuracy(theta, split.x_val, split.y_val) if validate else np.nan
        checks[int(k)] = (float(va), np.array(theta))

    at = None if np.isscalar(check_every) else {int(k) for k in check_every}

    def callback(k, theta, f, g):
        if validate and ((k + 1 in at) if at is not None else (k + 1) % check_every == 0):
            check(k + 1, theta)
        return False

    t0 = time.perf_counter()
    run = lbfgs if optimizer == "lbfgs" else gauss_newton
    res = run(prob, prob.init_params(seed), maxiter=maxiter, progress=False, callback=callback)
    if res.nit not in checks:
        check(res.nit, res.x)
    # a run that stopped early (converged) has the same parameters at the later check points
    planned = range(check_every, maxiter + 1, check_every) if at is None else at
    for k in sorted({*planned, maxiter}):
        if k > res.nit and validate:
            checks[k] = checks[res.nit]
    return checks, prob, time.perf_counter() - t0


def _node_setting(p):
    """``(tikhonov, head_decay, kinetic)`` of a neural-ODE grid value (a Tikhonov weight, a
    pair or a triple), and how many of them the value gives."""
    given = (p,) if np.isscalar(p) else tuple(p)
    return (*given, 0.0, 0.0)[:3], len(given)


def _sklearn_model(method, p, seed, mlp_hidden):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    if method == "logreg":
        return LogisticRegression(C=p, max_iter=5000)
    if method == "mlp":
        return MLPClassifier((mlp_hidden,), alpha=p[0], max_iter=p[1], random_state=seed,
                             solver="lbfgs")
    return SVC(C=p[0], gamma=p[1])


def _sklearn_fit(method, p, split, seed, mlp_hidden):
    """The fitted scikit-learn model and its validation accuracy (``nan`` without one)."""
    from sklearn.exceptions import ConvergenceWarning

    m = _sklearn_model(method, p, seed, mlp_hidden)
    with warnings.catch_warnings():  # a capped MLP run is one of the settings
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(split.x_train, split.y_train)
    va = m.score(split.x_val, split.y_val) if len(split.y_val) else np.nan
    return m, float(va)


def _scores(method, split, p, *, seed, node_kwargs, maxiter, check_every, mlp_hidden):
    """Validation accuracy of one grid value fitted on one split's training part:
    ``{setting: (accuracy, test)}`` (for the neural ODE one setting per check, the iteration
    count appended to the value); ``test()`` gives that fit's test accuracy and parameter
    count."""
    if method.startswith("node"):
        (tik, decay, kin), n_given = _node_setting(p)
        opt = "lbfgs" if method == "node_lbfgs" else "gauss-newton"
        checks, prob, _ = _node(split, node_kwargs, tik, opt, maxiter, seed, check_every,
                                decay, kin)
        head = (tik, decay) if n_given < 3 else (tik, decay, kin)

        def tester(theta):
            return lambda: (prob.accuracy(theta, split.x_test, split.y_test), prob.n_params)
        return {(*head, it): (va, tester(theta)) for it, (va, theta) in sorted(checks.items())}
    m, va = _sklearn_fit(method, p, split, seed, mlp_hidden)
    return {p: (va, lambda: (m.score(split.x_test, split.y_test), _sk_params(m)))}


def _refit(method, split, setting, *, maxiter, **kw):
    """Train ``setting`` (a grid value; for the neural ODE with its iteration count last) on
    ``split``'s training part alone (no validation part); its test accuracy and parameter
    count."""
    node = method.startswith("node")
    p, it = (setting[:-1], int(setting[-1])) if node else (setting, maxiter)
    ((_, tester),) = _scores(method, split, p, maxiter=it, check_every=it, **kw).values()
    return tester()


def tune_classifier(method: str, split: Any, grid: Sequence[Any], *, seed: int = 0,
                    node_kwargs: dict[str, Any] | None = None, maxiter: int = 200,
                    check_every: int | Sequence[int] = 10,
                    mlp_hidden: int = 32, folds: int | None = None) -> dict[str, Any]:
    """Choose the value of ``grid`` of best validation accuracy (the first on ties) and
    report its test accuracy.

    With ``folds=None`` every value is fitted on the training part of ``split`` (already
    standardized) and scored on its validation part; the chosen fit is the one tested.
    With ``folds=k`` (``split`` unstandardized) the training and validation parts are
    pooled and split into ``k`` stratified folds (:func:`cv_folds`); every value is scored
    by its mean accuracy over the folds, and the chosen value is refitted on the pooled
    parts (:func:`refit_split`) and tested.

    Parameters
    ----------
    method : str
        One of :data:`CLASSIFIERS`: the neural ODE with L-BFGS (``node_lbfgs``) or
        Gauss--Newton--CG (``node_gn``), grid over the Tikhonov weight of the dynamics,
        ``(tikhonov, head_decay)`` pairs (``head_decay``: L2 weight on the head's weights,
        :class:`HeadDecayClassifier`) or ``(tikhonov, head_decay, kinetic)`` triples
        (``kinetic``: weight of the transport cost ``(kinetic / 2) int |f(z, t)|^2 dt``,
        :class:`~ocp_learn.costs.KineticEnergy`, on the default field), with the
        iteration count chosen on validation too (early stopping: the validation
        accuracy is checked at the iterations ``check_every`` names);
        ``logreg`` (grid over ``C``), ``mlp``
        (``(alpha, max_iter)`` pairs: L2 weight and L-BFGS iterations; hidden width
        ``mlp_hidden``), ``svc`` (RBF, ``(C, gamma)`` pairs).
    split : Split
        The data: standardized with its training part's statistics when ``folds`` is
        None, unstandardized otherwise.
    grid : sequence
        The values tried.
    seed : int
        Seed of the initial parameters (neural ODE, MLP).
    node_kwargs : dict, optional
        Classifier arguments (``augment``, ``width``, ``nt``, ...).
    maxiter : int
        Iterations of the neural ODE's optimizer.
    check_every : int or sequence of int
        Iterations between validation checks of the neural ODE, or the iteration counts
        at which it is checked (and the last iterate, when its count is not among them).
    mlp_hidden : int
        Hidden width of the MLP.
    folds : int, optional
        Number of cross-validation folds; None: the validation part of ``split``.

    Returns
    -------
    dict
        ``param`` (the neural ODE's: ``(tikhonov, head_decay, iterations)``, or
        ``(tikhonov, head_decay, kinetic, iterations)`` for triples), ``val_accuracy``
        (mean over the folds with ``folds``), ``test_accuracy``, ``seconds`` (whole
        grid, refit included), ``n_params`` (of the chosen model).
    """
    if method not in CLASSIFIERS:
        raise ValueError(f"method must be one of {list(CLASSIFIERS)}, got {method!r}")
    t0 = time.perf_counter()
    kw = dict(seed=seed, node_kwargs=node_kwargs or {}, mlp_hidden=mlp_hidden)
    parts = [split] if folds is None else cv_folds(split, folds)
    score: dict[Any, list[float]] = {}
    testers: dict[Any, Any] = {}
    for p in grid:
        for part in parts:
            for setting, (va, tester) in _scores(method, part, p, maxiter=maxiter,
                                                 check_every=check_every, **kw).items():
                score.setdefault(setting, []).append(va)
                testers[setting] = tester
    # a setting counts only if every fold has it (an early stop adds its own count)
    mean = {k: float(np.mean(v)) for k, v in score.items() if len(v) == len(parts)}
    best = max(mean, key=mean.get)  # the first of the maxima
    if folds is None:
        test, npar = testers[best]()
    else:
        test, npar = _refit(method, refit_split(split), best, maxiter=maxiter, **kw)
    return {"param": best, "val_accuracy": mean[best], "test_accuracy": float(test),
            "n_params": npar, "seconds": time.perf_counter() - t0}


def _sk_params(m):
    """Fitted parameters of a scikit-learn classifier (an SVC's: its support vectors, dual
    coefficients and intercepts)."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    if isinstance(m, MLPClassifier):
        return int(sum(w.size for w in m.coefs_) + sum(b.size for b in m.intercepts_))
    if isinstance(m, SVC):
        return int(m.support_vectors_.size + m.dual_coef_.size + m.intercept_.size)
    return int(m.coef_.size + m.intercept_.size)


def classification_runs(name: str, seeds: Sequence[int] = (0, 1, 2, 3, 4), *,
                        node_kwargs: dict[str, Any] | None = None,
                        grids: dict[str, Sequence[Any]] | None = None,
                        node_maxiter: int = 200, gn_maxiter: int = 30,
                        lbfgs_checks: int | Sequence[int] = (50, 200),
                        methods: Sequence[str] = CLASSIFIERS,
                        folds: int | None = None) -> dict[str, Any]:
    """Test accuracy of every classifier over stratified splits of a real data set.

    Inputs are standardized with each training split's statistics; each method's
    regularization is chosen on that split's validation part, or by cross-validation on
    its training and validation parts pooled (``folds``; :func:`tune_classifier`).
    The MLP's hidden width gives it about the neural ODE's parameter count
    (:func:`mlp_hidden_for`).

    Parameters
    ----------
    name : {"digits", "breast_cancer", "wine"}
    seeds : sequence of int
        Seeds of the splits (and of the initial parameters).
    node_kwargs : dict, optional
        Neural-ODE settings (default ``augment=4, width=32, nt=4``).
    grids : dict, optional
        Grids per method (see :func:`tune_classifier` for what a value means), replacing
        those of :func:`default_grids`; :func:`fine_grids` gives finer ones.
    node_maxiter, gn_maxiter : int
        Iterations of L-BFGS and Gauss--Newton (validation checks every iteration).
    lbfgs_checks : int or sequence of int
        The L-BFGS iteration counts at which the validation accuracy is checked (and the
        last iterate), or the iterations between checks (``check_every`` of
        :func:`tune_classifier`).
    methods : sequence of str
        Subset of :data:`CLASSIFIERS`.
    folds : int, optional
        Number of cross-validation folds for every method's choice; None: the split's
        validation part.

    Returns
    -------
    dict
        Per method: ``test_accuracy`` (one per split), ``mean``, ``std``, ``params``
        (chosen), ``seconds`` (per split), ``n_params``; and ``mlp_hidden``.
    """
    from ..datasets.real import load_real, standardize

    node_kwargs = dict(augment=4, width=32, nt=4) if node_kwargs is None else dict(node_kwargs)
    g = default_grids()
    unknown = set(grids or {}) - set(CLASSIFIERS)
    if unknown:
        raise ValueError(f"grids has keys {sorted(unknown)}; expected some of "
                         f"{list(CLASSIFIERS)}")
    g.update(grids or {})
    out: dict[str, Any] = {m: {"test_accuracy": [], "params": [], "seconds": [],
                               "val_accuracy": []} for m in methods}
    hidden = None
    for s in seeds:
        raw = load_real(name, s)
        split = standardize(raw)[0]
        if hidden is None:
            loss = "logistic" if split.n_classes == 2 else "softmax"
            n_node = NeuralODEClassifier(split.x_train[:2], split.y_train[:2] * 0, loss=loss,
                                         n_outputs=1 if loss == "logistic" else split.n_classes,
                                         **node_kwargs).n_params
            hidden = mlp_hidden_for(n_node, split.dim, split.n_classes)
            out["mlp_hidden"] = hidden
            out["n_params_node"] = int(n_node)
        for m in methods:
            it = gn_maxiter if m == "node_gn" else node_maxiter
            r = tune_classifier(m, split if folds is None else raw, g[m], seed=s,
                                node_kwargs=node_kwargs, maxiter=it,
                                check_every=1 if m == "node_gn" else lbfgs_checks,
                                mlp_hidden=hidden, folds=folds)
            for k in ("test_accuracy", "val_accuracy", "seconds"):
                out[m][k].append(r[k])
            out[m]["params"].append(r["param"])
            out[m]["n_params"] = r["n_params"]
    for m in methods:
        acc = np.asarray(out[m]["test_accuracy"])
        out[m]["mean"] = float(acc.mean())
        out[m]["std"] = float(acc.std(ddof=1)) if acc.size > 1 else 0.0
    out["node_kwargs"] = node_kwargs
    out["folds"] = folds
    return out
