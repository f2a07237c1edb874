"""The command line as a tool: one-line errors with status 2, validation before any work, run
folders that are complete or marked incomplete, locks, progress on a terminal, and the
self-describing metrics (all at tiny sizes)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ocp_learn import commands
from ocp_learn.cli import describe_error, main
from ocp_learn.commands import Subcommand, register
from ocp_learn.recipes.rundir import LOCK, MARKER, RunError, RunFolder

FLOW = ["flow", "--n-train", "64", "--n-test", "100", "--iters", "2", "--width", "4", "--nt",
        "2", "--backend", "numpy", "--quiet"]


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("OCP_LEARN_DEBUG", raising=False)


def one_line_error(capsys, command):
    """The single stderr line of a failed command (no traceback)."""
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"ocp-learn {command}: error: "), err
    return lines[0]


@pytest.fixture
def flow_run(tmp_path_factory):
    """A finished tiny flow run (its folder)."""
    out = tmp_path_factory.mktemp("flow") / "run"
    assert main(FLOW + ["--out", str(out)]) == 0
    return out


# --- the error boundary -----------------------------------------------------------------------
@pytest.mark.parametrize("command", [FLOW, ["classify", "--iters", "1"],
                                     ["mfg", "--samples", "8", "--iters", "1"]])
def test_out_naming_a_file_is_one_line(command, tmp_path, capsys):
    f = tmp_path / "a_file"
    f.write_text("x")
    for out in (f, f / "below"):
        assert main(command + ["--out", str(out)]) == 2
        assert "is a file" in one_line_error(capsys, command[0])


def test_out_in_an_unwritable_place_is_one_line(tmp_path, capsys):
    assert main(FLOW + ["--out", "/proc/ocp_learn_no/run"]) == 2
    assert "cannot write" in one_line_error(capsys, "flow")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK) and os.geteuid() == 0:
            (ro / "probe").write_text("")  # root may write anyway: then the run is allowed
        else:
            assert main(FLOW + ["--out", str(ro / "run")]) == 2
            assert "cannot write" in one_line_error(capsys, "flow")
    except PermissionError:
        pass
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("damage,needle", [
    ("missing", "no checkpoint"), ("empty", "is empty"), ("truncated", "corrupt or truncated"),
    ("garbage", "corrupt or truncated"), ("pickle", "corrupt or truncated")])
def test_damaged_checkpoint_is_named(damage, needle, flow_run, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    ck = out / "checkpoint.npz"
    good = (flow_run / "checkpoint.npz").read_bytes()
    if damage == "empty":
        ck.write_bytes(b"")
    elif damage == "truncated":
        ck.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        ck.write_bytes(os.urandom(300))
    elif damage == "pickle":  # an object array: numpy would suggest allow_pickle
        np.savez(ck, x=np.array([{"a": 1}], dtype=object))
    assert main(FLOW + ["--out", str(out), "--resume"]) == 2
    line = one_line_error(capsys, "flow")
    assert needle in line and "allow_pickle" not in line
    assert sorted(p.name for p in out.iterdir()) == ([] if damage == "missing"
                                                     else ["checkpoint.npz"])


def test_checkpoint_of_another_problem_is_one_line(flow_run, capsys):
    assert main(FLOW[:-1] + ["--width", "6", "--out", str(flow_run), "--resume"]) == 2
    assert "parameters" in one_line_error(capsys, "flow")
    assert not (flow_run / LOCK).exists()
    # an MFG checkpoint offered to a flow: another method or size, one line
    assert main(["mfg", "--samples", "8", "--iters", "1", "--backend", "numpy", "--quiet",
                 "--out", str(flow_run), "--resume"]) == 2
    one_line_error(capsys, "mfg")


@pytest.mark.parametrize("argv,needle", [
    (["flow", "--data", "gmm", "--dim", "100000"], "--dim 100000"),
    (["mfg", "--dim", "100000", "--samples", "4"], "--dim 100000"),
    (["classify", "--augment", "100000"], "--augment 100000"),
])
def test_sizes_beyond_memory_are_refused_up_front(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("ocp_learn.commands.base.available_memory", lambda: 8 * 1024 ** 3)
    out = tmp_path / "out"
    assert main(argv + ["--out", str(out)]) == 2
    line = one_line_error(capsys, argv[0])
    assert needle in line and "GiB" in line and "8 GiB available" in line
    assert not out.exists()


def _register(monkeypatch, run):
    monkeypatch.setattr(commands, "SUBCOMMANDS", dict(commands.SUBCOMMANDS))

    def configure(p):
        p.add_argument("--out", default=None, help="output folder")

    register(Subcommand("boom", "fail on purpose", configure, run))


def test_memory_error_and_missing_dependency_are_one_line(monkeypatch, capsys):
    def oom(args):
        raise MemoryError("Unable to allocate 74.5 GiB for an array with shape (10, 10)")

    _register(monkeypatch, oom)
    assert main(["boom"]) == 2
    assert "out of memory" in one_line_error(capsys, "boom")

    monkeypatch.setitem(sys.modules, "ot", None)

    def needs_pot(args):
        import ot  # noqa: F401

    _register(monkeypatch, needs_pot)
    assert main(["boom"]) == 2
    assert 'pip install "ocp_learn[test]"' in one_line_error(capsys, "boom")
    assert 'ocp_learn[bench]' in describe_error(ModuleNotFoundError("no torch", name="torch"))
    assert 'ocp_learn[mpi]' in describe_error(ModuleNotFoundError("x", name="mpi4py.MPI"))


def test_debug_keeps_the_traceback(tmp_path, monkeypatch):
    f = tmp_path / "f"
    f.write_text("")
    with pytest.raises(RunError, match="is a file"):
        main(["--debug"] + FLOW + ["--out", str(f)])
    with pytest.raises(RunError, match="is a file"):  # also after the subcommand
        main(FLOW + ["--out", str(f), "--debug"])
    monkeypatch.setenv("OCP_LEARN_DEBUG", "1")
    with pytest.raises(RunError):
        main(FLOW + ["--out", str(f)])


def test_ctrl_c_exits_130_and_says_what_was_saved(tmp_path, capsys, monkeypatch):
    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("ocp_learn.recipes.flow.flow_metrics", interrupt)
    out = tmp_path / "run"
    assert main(FLOW + ["--out", str(out), "--checkpoint-every", "1"]) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "interrupted" in err
    assert "checkpoint.npz (iteration 2)" in err and "theta.npy" in err and "--resume" in err
    assert (out / MARKER).exists() and "interrupted" in (out / MARKER).read_text()
    assert not (out / LOCK).exists()
    assert json.loads((out / "run.json").read_text())["status"] == "incomplete"
    # nothing saved: said so, and the folder it created is gone
    monkeypatch.setattr("ocp_learn.recipes.flow.train_flow", interrupt)
    assert main(FLOW + ["--out", str(tmp_path / "new")]) == 130
    assert "nothing was saved" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


# --- validation before work -----------------------------------------------------------------
@pytest.mark.parametrize("argv,needle", [
    (["mfg", "--figure3", "--iters", "0"], "--iters"),
    (["mfg", "--figure3", "--dim", "3"], "--dim"),
    (["mfg", "--figure3", "--problem", "ot"], "--problem"),
    (["mfg", "--figure3", "--samples", "8"], "--samples"),
    (["mfg", "--figure3", "--resume"], "--resume"),
    (["mfg", "--iters", "3", "--iters-stages", "3", "4", "--samples", "8", "16"],
     "not both"),
    (["mfg", "--samples", "8"], "give --iters or --iters-stages"),
    (["flow", "--lr", "0.1"], "--lr is an Adam setting"),
    (["flow", "--batch-size", "8"], "--batch-size is an Adam setting"),
    (["flow", "--optimizer", "adam", "--resample-every", "2"], "--resample-every"),
    (["flow", "--n-test", "1"], "--n-test must be at least 2"),
    (["flow", "--dim", "3"], "needs --data gmm"),
    (["flow", "--integrator", "rk9"], "integrator"),
    (["flow", "--seed", "-1"], "--seed"),
    (["classify", "--viscosity", "0.1", "--integrator", "rk4"], "Euler-Maruyama"),
    (["classify", "--T", "0"], "--T"),
])
def test_options_are_checked_before_any_folder_or_training(argv, needle, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(argv + ["--out", str(out)]) == 2
    assert needle in one_line_error(capsys, argv[0])
    assert not out.exists()


def test_a_warning_for_an_option_without_effect(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("ocp_learn.recipes.flow.run_flow", lambda *a, **k: ({}, None, None))
    assert main(FLOW + ["--out", str(tmp_path / "o"), "--resample-every", "2",
                        "--checkpoint-every", "5"]) == 0
    assert "warning: --checkpoint-every" in capsys.readouterr().err


def test_classify_opens_its_folder_before_training(tmp_path, monkeypatch, capsys):
    import importlib

    rc = importlib.import_module("ocp_learn.recipes.classify")
    seen = {}

    def train(*a, **k):
        seen["marker"] = (tmp_path / "c" / MARKER).exists()
        raise ValueError("stop here")

    monkeypatch.setattr(rc, "train_classifier", train)
    assert main(["classify", "--out", str(tmp_path / "c"), "--quiet"]) == 2
    assert seen["marker"] and "stop here" in one_line_error(capsys, "classify")
    assert not (tmp_path / "c").exists()  # a failed run leaves no empty folder


# --- run folders ----------------------------------------------------------------------------
def test_a_finished_run_is_complete_and_self_describing(flow_run):
    names = sorted(p.name for p in flow_run.iterdir())
    assert names == ["checkpoint.npz", "figure.png", "metrics.json", "model.npz", "run.json",
                     "theta.npy"]
    m = json.loads((flow_run / "metrics.json").read_text())
    run = m["run"]
    assert run["version"] and "git_commit" in run and run["command"][:2] == ["ocp-learn", "flow"]
    hp = run["hyperparameters"]
    assert hp["width"] == 4 and hp["seed"] == 0 and hp["lr"] == 0.02 and hp["iters"] == 2
    assert m["units"]["seconds"].startswith("seconds") and m["message"]
    assert json.loads((flow_run / "run.json").read_text())["status"] == "complete"
    assert oct((flow_run / "theta.npy").stat().st_mode & 0o777) != "0o600"


def test_lock_refuses_a_live_run_and_takes_over_a_stale_one(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (out / LOCK).write_text(f"{sleeper.pid} {os.uname().nodename}\n")
        assert main(FLOW + ["--out", str(out)]) == 2
        line = one_line_error(capsys, "flow")
        assert "in use" in line and str(sleeper.pid) in line
    finally:
        sleeper.kill()
        sleeper.wait()
    # the process is gone: its lock is stale, and temporary files of killed writers go too
    (out / ".tmp-abc-figure.png").write_bytes(b"half")
    (out / ".ckpt-xyz.tmp").write_bytes(b"half")
    assert main(FLOW + ["--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


def test_run_folder_writes_atomically_and_nests(tmp_path):
    out = tmp_path / "f"
    with RunFolder(out, {"version": "x"}) as f:
        assert (out / MARKER).exists() and (out / LOCK).exists()
        with RunFolder(out) as inner:  # a nested recipe shares the lock
            inner.write_json("metrics.json", {"a": 1})
        assert (out / LOCK).exists()
        f.save_array("theta.npy", np.arange(3.0))
        with pytest.raises(ZeroDivisionError), f.writing("figure.png") as tmp:
            open(tmp, "w").write("half")
            raise ZeroDivisionError
        assert not (out / "figure.png").exists()
    assert json.loads((out / "metrics.json").read_text()) == {"a": 1, "run": {"version": "x"}}
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "run.json", "theta.npy"]


# --- progress on a terminal --------------------------------------------------------------------
def _in_pty(argv, timeout=240):
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 x 100
    env = dict(os.environ, NUMBA_NUM_THREADS="1", MPLBACKEND="Agg")
    p = subprocess.Popen([sys.executable, "-m", "ocp_learn.cli", *argv], stdin=slave,
                         stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    try:
        while True:
            r, _, _ = select.select([master], [], [], timeout)
            if not r:
                break
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        rc = p.wait(timeout=timeout)
    return rc, b"".join(chunks).decode(errors="replace")


def test_progress_shows_on_a_terminal_unless_quiet(tmp_path):
    argv = [a for a in FLOW if a != "--quiet"] + ["--iters", "3"]
    rc, text = _in_pty(argv + ["--out", str(tmp_path / "a")])
    assert rc == 0 and ("it/s" in text or "s/it" in text), text[-2000:]
    rc, text = _in_pty(argv + ["--out", str(tmp_path / "b"), "--quiet"])
    assert rc == 0 and "it/s" not in text and "s/it" not in text and "test_nll" in text


# --- the model bundle: sample, predict, evaluate ---------------------------------------------
def test_flow_bundle_samples_predicts_and_evaluates(flow_run, tmp_path, capsys):
    from ocp_learn.problems import load

    problem, theta, info = load(flow_run / "model.npz")
    assert info["kind"] == "continuous_normalizing_flow"
    assert np.array_equal(theta, np.load(flow_run / "theta.npy"))
    xs = tmp_path / "x.npy"
    assert main(["sample", "--model", str(flow_run), "--n", "5", "--seed", "3",
                 "--out", str(xs)]) == 0
    x = np.load(xs)
    assert x.shape == (5, 2) and np.array_equal(x, problem.sample(theta, 5, seed=3))
    capsys.readouterr()
    assert main(["predict", "--model", str(flow_run), "--input", str(xs)]) == 0
    z = np.loadtxt(capsys.readouterr().out.splitlines())
    assert np.allclose(z, problem.push_forward(theta, x), rtol=1e-7, atol=1e-7)
    assert main(["evaluate", "--model", str(flow_run)]) == 0
    table = capsys.readouterr().out
    assert "test_nll" in table and "0.0e+00" in table


def test_classifier_bundle_predicts_and_refuses_to_sample(tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["classify", "--out", str(out), "--n-train", "40", "--n-test", "20",
                 "--iters", "3", "--width", "4", "--nt", "2", "--no-baseline", "-q"]) == 0
    assert (out / "model.npz").exists()
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).standard_normal((4, 2)))
    capsys.readouterr()
    assert main(["predict", "--model", str(out), "--input", str(x), "--out",
                 str(tmp_path / "p.npz")]) == 0
    capsys.readouterr()
    p = np.load(tmp_path / "p.npz")
    assert p["probabilities"].shape == (4, 2) and np.allclose(p["probabilities"].sum(1), 1)
    assert np.array_equal(p["labels"], p["probabilities"].argmax(1))
    assert main(["sample", "--model", str(out)]) == 2
    assert "does not draw samples" in one_line_error(capsys, "sample")
    assert main(["predict", "--model", str(out), "--input", str(tmp_path / "none.npy")]) == 2
    assert "does not exist" in one_line_error(capsys, "predict")
    np.save(x, np.zeros((4, 3)))
    assert main(["predict", "--model", str(out), "--input", str(x)]) == 2
    assert "--input" in one_line_error(capsys, "predict")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04garbage")
    assert main(["evaluate", "--model", str(tmp_path)]) == 2
    assert "no model.npz" in one_line_error(capsys, "evaluate")
    assert main(["sample", "--model", str(tmp_path / "bad.npz")]) == 2
    assert "corrupt" in one_line_error(capsys, "sample")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # a coarse flow's log-det warning
def test_sigint_of_a_real_run_exits_130_and_leaves_a_resumable_folder(tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    argv = ["flow", "--n-train", "64", "--n-test", "100", "--iters", "100000", "--width", "4",
            "--nt", "2", "--backend", "numpy", "--quiet", "--checkpoint-every", "1",
            "--out", str(out)]
    env = dict(os.environ, NUMBA_NUM_THREADS="1", MPLBACKEND="Agg")
    p = subprocess.Popen([sys.executable, "-m", "ocp_learn.cli", *argv], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        t0 = time.time()
        while not (out / "checkpoint.npz").exists() and time.time() - t0 < 120:
            time.sleep(0.1)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert "interrupted; saved in" in err and "checkpoint.npz (iteration" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert (out / MARKER).exists() and not (out / LOCK).exists()
    assert main(argv[:6] + ["60"] + argv[7:] + ["--resume"]) == 0  # resumable, then complete
    assert not (out / MARKER).exists()


def test_sigterm_writes_the_last_iteration_and_exits_143(tmp_path):
    """SIGTERM takes the path of Ctrl-C: the optimizer writes the checkpoint of its last
    completed iteration even when no checkpoint was due (``--checkpoint-every`` far away)."""
    import signal
    import time

    from ocp_learn.optim import load_checkpoint

    out = tmp_path / "run"
    argv = ["flow", "--n-train", "64", "--n-test", "100", "--iters", "100000", "--width", "4",
            "--nt", "2", "--backend", "numpy", "--quiet", "--checkpoint-every", "100000",
            "--out", str(out)]
    env = dict(os.environ, NUMBA_NUM_THREADS="1", MPLBACKEND="Agg")
    p = subprocess.Popen([sys.executable, "-m", "ocp_learn.cli", *argv], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.time()
        while not (out / MARKER).exists() and time.time() - t0 < 120:
            time.sleep(0.1)
        time.sleep(3.0)  # a few hundred iterations of this tiny flow
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 143, err
    assert "Traceback" not in err and "checkpoint.npz (iteration" in err
    _, meta = load_checkpoint(out / "checkpoint.npz")
    assert meta["nit"] >= 1
    assert (out / MARKER).exists() and not (out / LOCK).exists()
