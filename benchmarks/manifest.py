"""Every benchmark of ``benchmarks/``: how to run it in full and quickly, and what it writes.

:data:`BENCHMARKS` maps an id to a :class:`Bench`.  ``ocp-learn bench ID|all [--quick]``
(or ``python -m benchmarks.run``) runs the entries; ``{artifacts}`` in an argument stands for
the ``benchmarks/artifacts`` folder.  Runtimes are for the 2-core reference machine with one
thread per process unless the arguments say otherwise; ``quick_s`` was measured, ``full``
is the order of magnitude of the committed run.

This module imports nothing from ocp_learn or the scripts, so the runner can read it cheaply.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Bench", "BENCHMARKS", "NEEDS"]

#: need -> (Python module that must import, or an executable prefixed with "exe:", or a
#: special check "gpu"), and what to install
NEEDS: dict[str, tuple[str, str]] = {
    "torch": ("torch", 'pip install -e ".[bench]" (PyTorch)'),
    "torchdiffeq": ("torchdiffeq", 'pip install -e ".[bench]" (torchdiffeq)'),
    "mpi": ("mpi4py", 'pip install -e ".[mpi]" and an MPI library with mpiexec'),
    "mpiexec": ("exe:mpiexec", "an MPI library with mpiexec on PATH"),
    "gpu": ("gpu", "a CUDA GPU with CuPy (pip install cupy-cuda12x)"),
    "pot": ("ot", "pip install pot"),
    "casadi": ("casadi", "pip install casadi"),
    "matplotlib": ("matplotlib", "pip install matplotlib"),
    "sklearn": ("sklearn", "pip install scikit-learn"),
    "git": ("exe:git", "a git checkout with history (git worktree)"),
}


@dataclass(frozen=True)
class Bench:
    """One benchmark run.

    Parameters
    ----------
    script : str
        Module file in ``benchmarks/`` (``bench_x.py``, run as ``python -m benchmarks.bench_x``)
        or a shell script (``x.sh``, run with ``bash`` and ``OUT=DIR``).
    title : str
        What the result table shows.
    full : tuple of str
        Arguments of the run that produced the committed results.
    quick : tuple of str or None
        Arguments of the reduced run of ``--quick`` (None: no quick run).
    outputs : tuple of str
        Files the full run writes, relative to ``benchmarks/`` (``results/...`` or
        ``artifacts/...``).
    generated_only : bool
        True when the outputs are not committed (written on demand only).
    full_runtime : str
        Wall time of the full run on the reference machine.
    quick_s : float or None
        Measured seconds of the quick run on the reference machine.
    needs : tuple of str
        Keys of :data:`NEEDS` the run requires.
    quick_needs : tuple of str or None
        Needs of the quick run when they differ from ``needs``.
    out_option : str
        The script's option that names the output folder.
    env : tuple of (str, str)
        Environment variables the run sets (thread counts).
    """

    script: str
    title: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] | None = None
    outputs: tuple[str, ...] = ()
    generated_only: bool = False
    full_runtime: str = "?"
    quick_s: float | None = None
    needs: tuple[str, ...] = ()
    quick_needs: tuple[str, ...] | None = None
    out_option: str = "--out"
    env: tuple[tuple[str, str], ...] = field(default=(("NUMBA_NUM_THREADS", "1"),
                                                      ("OPENBLAS_NUM_THREADS", "1"),
                                                      ("OMP_NUM_THREADS", "1")))

    @property
    def module(self) -> str:
        """``benchmarks.bench_x`` for a Python script."""
        return "benchmarks." + self.script[:-3]

    def command(self, quick: bool = False) -> str:
        """The shell command that reproduces the run, from the repository root."""
        args = self.quick if quick else self.full
        env = " ".join(f"{k}={v}" for k, v in self.env)
        if self.script.endswith(".sh"):
            return f"OUT=DIR bash benchmarks/{self.script}"
        args = [a.replace("{artifacts}", "benchmarks/artifacts") for a in args or ()]
        return " ".join(p for p in (env, "python -m", self.module, *args) if p)


_TWO = (("NUMBA_NUM_THREADS", "2"), ("OPENBLAS_NUM_THREADS", "2"), ("OMP_NUM_THREADS", "2"))

BENCHMARKS: dict[str, Bench] = {
    "core": Bench(
        "bench_core.py", "Objective and gradient of the core problem per memory strategy",
        quick=("--n", "256"), outputs=("results/core.json", "results/core.md"),
        quick_s=0.9, full_runtime="~10 s"),
    "memory": Bench(
        "bench_memory.py", "Gradient strategies: memory (exact ledger and measured) and time",
        full=("--no-torch",), quick=("--n", "8", "--Ns", "4,16", "--no-torch"),
        outputs=("results/memory.json", "results/memory.md", "results/memory.png"),
        quick_s=18.0, full_runtime="~5 min", needs=("matplotlib",)),
    "integrators": Bench(
        "bench_integrators.py", "Integrators: accuracy against cost",
        quick=("--n", "16", "--maxiter", "2", "--Ns", "4,8", "--ref-N", "128"),
        outputs=("results/integrators.json", "results/integrators.md", "results/integrators.png"),
        quick_s=3.6, full_runtime="~1 min", needs=("matplotlib",)),
    "classifier": Bench(
        "bench_classifier.py",
        "Optimizers on the classifier (L-BFGS against Gauss--Newton--CG); viscous robustness",
        quick=("--n", "100", "--lbfgs-iter", "10", "--gn-iter", "3", "--cg-iter", "5",
               "--predict", "4"),
        outputs=("results/classifier_optimizers.json", "results/classifier_optimizers.md",
                 "results/classifier_robustness.json", "results/classifier_robustness.md"),
        quick_s=1.8, full_runtime="~3 min"),
    "cli_wall": Bench(
        "bench_cli_wall.py", "Wall clock of ocp-learn flow --data 8gaussians and of the crowd "
        "game in d = 100 on two MPI ranks, with their results",
        full=("--with-crowd",),
        quick=("--extra", "--iters 3 --n-test 500", "--name", "cli_wall_quick"),
        outputs=("results/cli_wall.json", "results/cli_wall.md"),
        quick_s=7.7, full_runtime="~10 min on two cores"),
    "mlp": Bench(
        "bench_mlp.py", "The classifiers' single-layer network: numpy, numba tiles and torch",
        quick=("--ns", "300", "--repeat", "1", "--name", "mlp_quick"),
        outputs=("results/mlp.json", "results/mlp.md"), quick_s=7.1, full_runtime="~1 min"),
    "potential": Bench(
        "bench_potential.py", "Potential-model kernels: numpy against numba",
        quick=("--n", "64", "--dims", "2", "--widths", "8", "--repeat", "1"),
        outputs=("results/potential.json", "results/potential.md"), quick_s=1.8, full_runtime="~2 min"),
    "potential_phi_vjp": Bench(
        "bench_potential.py", "Value-only pullback of Phi against the full derivative adjoint",
        full=("--dims", "100", "2", "--widths", "16", "32", "--n", "4232", "--ops", "phi_vjp",
              "vjp_phi", "--repeat", "5", "--name", "potential_phi_vjp"),
        outputs=("results/potential_phi_vjp.json", "results/potential_phi_vjp.md"),
        full_runtime="~1 min"),
    "fused_vs_blas": Bench(
        "bench_fused_vs_blas.py", "Fused per-sample kernels against the batched-GEMM program",
        quick=("--n", "32", "--dims", "2", "--widths", "8", "--threads", "1", "--nt", "2",
               "--repeat", "1"),
        outputs=("results/kernels_fused_vs_blas.json", "results/kernels_fused_vs_blas.md"),
        quick_s=1.9, full_runtime="~5 min", env=_TWO),
    "trace_path": Bench(
        "bench_trace_path.py", "Exact trace by Jacobians or by Gram matrices (high dimension)",
        quick=("--dims", "10", "--n", "128", "--sample-scale", "0.02", "--repeat", "1"),
        outputs=("results/trace_path.json", "results/trace_path.md"),
        quick_s=4.4, full_runtime="~5 min", env=_TWO),
    "keep_pairs": Bench(
        "bench_keep_pairs.py",
        "L-BFGS on redrawn samples: restarted against correction pairs kept",
        full=("--n", "512", "--iters", "100", "--seeds", "0", "1"),
        quick=("--dims", "2", "--n", "64", "--iters", "10", "--resample-every", "5",
               "--seeds", "0"),
        outputs=("results/keep_pairs.json", "results/keep_pairs.md"), quick_s=3.4, full_runtime="~5 min"),
    "flows": Bench(
        "bench_flows.py",
        "CNFs: test NLL against the floor, OT contrast, exact against Hutchinson trace",
        quick=("--only", "trace", "--n", "256", "--n-test", "64", "--draws", "2"),
        outputs=("results/flows_nll.json", "results/flows_nll.md",
                 "results/flows_contrast.json", "results/flows_contrast.md",
                 "results/flows_trace.json", "results/flows_trace.md",
                 "artifacts/theta_8gaussians2.npy", "artifacts/theta_checkerboard2.npy",
                 "artifacts/theta_gmm16.npy"),
        quick_s=6.3, full_runtime="~30 min"),
    "flow_eval": Bench(
        "bench_flow_eval.py",
        "Trained flows on a million fresh test samples (NLL with its standard error)",
        full=("--n-test", "1000000",
              "--run", "8gaussians", "8gaussians", "2", "32", "1",
              "{artifacts}/theta_8gaussians2.npy",
              "--run", "checkerboard_5925its", "checkerboard", "2", "32", "2",
              "{artifacts}/checkerboard_5925/theta.npy",
              "--run", "gmm16", "gmm", "16", "32", "1", "{artifacts}/theta_gmm16.npy"),
        quick=("--n-test", "2000", "--n-fine", "500", "--run", "8gaussians", "8gaussians",
               "2", "32", "1", "{artifacts}/theta_8gaussians2.npy"),
        outputs=("results/flows_eval.json", "results/flows_eval.md"), quick_s=3.1, full_runtime="~10 min"),
    "flow_eval_checkerboard_5475": Bench(
        "bench_flow_eval.py", "The checkerboard flow kept at 5475 iterations, 10^6 test samples",
        full=("--n-test", "1000000", "--run", "checkerboard_5475its_kept_pairs", "checkerboard",
              "2", "32", "2", "{artifacts}/checkerboard_5475/theta.npy",
              "--name", "flows_eval_checkerboard_5475"),
        outputs=("results/flows_eval_checkerboard_5475.json",
                 "results/flows_eval_checkerboard_5475.md",
                 "artifacts/checkerboard_5475/theta.npy"),
        full_runtime="~3 min"),
    "flow_eval_checkerboard_5925": Bench(
        "bench_flow_eval.py", "The checkerboard flow kept at 5925 iterations, 10^6 test samples",
        full=("--n-test", "1000000", "--run", "checkerboard_5925its_kept_pairs", "checkerboard",
              "2", "32", "2", "{artifacts}/checkerboard_5925/theta.npy",
              "--name", "flows_eval_checkerboard_5925"),
        outputs=("results/flows_eval_checkerboard_5925.json",
                 "results/flows_eval_checkerboard_5925.md",
                 "artifacts/checkerboard_5925/theta.npy"),
        full_runtime="~3 min"),
    "flow_eval_gmm16": Bench(
        "bench_flow_eval.py", "The d = 16 mixture within 0.20 nats (input map, 16 RK4 steps)",
        full=("--n-test", "1000000", "--run", "gmm16", "gmm", "16", "32", "1",
              "{artifacts}/flow_gmm16/theta.npy", "--name", "flows_eval_gmm16"),
        outputs=("results/flows_eval_gmm16.json", "results/flows_eval_gmm16.md",
                 "artifacts/flow_gmm16/theta.npy"),
        full_runtime="~10 min"),
    "mfg": Bench(
        "bench_mfg.py", "Potential MFGs: Gaussian closed form, Pontryagin check, Table 1 rows",
        full=("--only", "gaussian", "--only", "pontryagin"),
        quick=("--only", "gaussian", "--gauss-dims", "2", "--gauss-iters", "5"),
        outputs=("results/mfg_gaussian.json", "results/mfg_gaussian.md",
                 "results/mfg_pontryagin.json", "results/mfg_pontryagin.md"),
        quick_s=4.8, full_runtime="~10 min", needs=("casadi",), quick_needs=()),
    "mfg_pontryagin_full": Bench(
        "bench_mfg.py", "Pontryagin check of the fully trained 2-D potentials",
        full=("--only", "pontryagin", "--pontryagin-from", "{artifacts}/mfg_{problem}_d2"),
        outputs=("results/mfg_pontryagin_full.json", "results/mfg_pontryagin_full.md"),
        full_runtime="~2 min", needs=("casadi",)),
    "mfg_table": Bench(
        "bench_mfg.py", "Potential MFGs (article Table 1) at d = 2 and 10, reduced schedule",
        full=("--only", "table", "--dims", "2", "--tag", "_d2"),
        quick=("--only", "table", "--problems", "ot", "--dims", "2", "--scale", "0.01",
               "--sample-scale", "0.05"),
        outputs=("results/mfg_table_d2.json", "results/mfg_table_d2.md",
                 "artifacts/mfg_ot_d2", "artifacts/mfg_crowd_d2"),
        quick_s=5.7, full_runtime="~30 min per dimension", needs=("matplotlib",)),
    "mfg_table_d10": Bench(
        "bench_mfg.py", "Potential MFGs (article Table 1) at d = 10, a fifth of the schedule",
        full=("--only", "table", "--dims", "10", "--scale", "0.2", "--tag", "_d10"),
        outputs=("results/mfg_table_d10.json", "results/mfg_table_d10.md",
                 "artifacts/mfg_ot_d10", "artifacts/mfg_crowd_d10"),
        full_runtime="~30 min", needs=("matplotlib",)),
    "mfg_table_d50_100": Bench(
        "bench_mfg.py", "Potential MFGs (article Table 1) at d = 50 and 100, reduced schedule",
        full=("--only", "table", "--dims", "50", "100", "--scale", "0.05", "--sample-scale",
              "0.25", "--tag", "_d50_100"),
        outputs=("results/mfg_table_d50_100.json", "results/mfg_table_d50_100.md",
                 "artifacts/mfg_ot_d50", "artifacts/mfg_ot_d100", "artifacts/mfg_crowd_d50",
                 "artifacts/mfg_crowd_d100"),
        full_runtime="~30 min", needs=("matplotlib",)),
    "mfg_table_ot_d10_full": Bench(
        "bench_mfg.py", "OT-MFG at d = 10 on the full schedule",
        full=("--only", "table", "--problems", "ot", "--dims", "10", "--tag", "_ot_d10_full"),
        outputs=("results/mfg_table_ot_d10_full.json", "results/mfg_table_ot_d10_full.md"),
        full_runtime="~15 min", needs=("matplotlib",)),
    "mfg_table_crowd_d10_full": Bench(
        "bench_mfg.py", "Crowd-motion MFG at d = 10 on the full schedule",
        full=("--only", "table", "--problems", "crowd", "--dims", "10", "--tag",
              "_crowd_d10_full"),
        outputs=("results/mfg_table_crowd_d10_full.json", "results/mfg_table_crowd_d10_full.md"),
        full_runtime="~20 min", needs=("matplotlib",)),
    "mfg_table_full": Bench(
        "bench_mfg.py",
        "Potential MFGs (article Table 1): OT and crowd motion at d = 2, 10, 50, 100, full schedule",
        full=("--only", "collect", "--from", *(f"{{artifacts}}/mfg_{p}_d{d}"
                                              for p in ("ot", "crowd")
                                              for d in ("2", "10", "50_full", "100_full")),
              "--tag", "_full"),
        outputs=("results/mfg_table_full.json", "results/mfg_table_full.md",
                 *(f"artifacts/mfg_{p}_d{d}" for p in ("ot", "crowd")
                   for d in ("2", "10", "50_full", "100_full"))),
        full_runtime="seconds (collects finished runs; each run: mpiexec -n 2 ocp-learn mfg "
                     "--problem P --dim D --out benchmarks/artifacts/mfg_P_dD, hours at d >= 50)"),
    "kernels": Bench(
        "bench_kernels.py",
        "CNF objective + gradient: ocp_learn against PyTorch and FFJORD; compile time",
        quick=("--quick",),
        outputs=("results/kernels.json", "results/kernels.md"),
        full_runtime="~30 min", needs=("torch", "torchdiffeq"), quick_needs=("torch",),
        env=_TWO),
    "kernels_quick": Bench(
        "bench_kernels.py", "CNF objective + gradient side by side with PyTorch at one and two "
        "threads, float64 and float32; crowd MFG objective + gradient, one thread",
        full=("--quick", "--threads", "1", "2"),
        outputs=("results/kernels_quick.json", "results/kernels_quick.md"),
        full_runtime="~3 min", needs=("torch",), env=_TWO),
    "kernels_grid": Bench(
        "bench_kernels.py",
        "CNF objective + gradient against the PyTorch peers, n = 1024, one thread",
        full=("--ns", "1024", "--threads", "1", "--no-compile", "--name", "kernels_grid"),
        outputs=("results/kernels_grid.json", "results/kernels_grid.md"),
        full_runtime="~15 min", needs=("torch", "torchdiffeq")),
    "kernels_grid_n_threads": Bench(
        "bench_kernels.py", "The CNF objective + gradient at n = 4096 and 16384, one and two "
        "threads, m = 32: fused tiles, per-sample kernels and torch",
        full=("--ns", "4096", "16384", "--dims", "2", "8", "64", "--widths", "32",
              "--threads", "1", "2", "--impls", "ocp_numba_fused", "ocp_numba_per_sample",
              "torch_otflow", "--no-compile", "--name", "kernels_grid_n_threads"),
        outputs=("results/kernels_grid_n_threads.json", "results/kernels_grid_n_threads.md"),
        full_runtime="~10 min", needs=("torch", "torchdiffeq"), env=_TWO),
    "kernels_grid_m128_fused": Bench(
        "bench_kernels.py", "The grid's m = 128 cells on the fused kernels",
        full=("--ns", "1024", "--widths", "128", "--threads", "1", "--dtypes", "float64",
              "--impls", "ocp_numba_fused", "torch_otflow", "--no-compile",
              "--name", "kernels_grid_m128_fused"),
        outputs=("results/kernels_grid_m128_fused.json", "results/kernels_grid_m128_fused.md"),
        full_runtime="~3 min", needs=("torch", "torchdiffeq")),
    "kernels_float32": Bench(
        "bench_kernels.py", "float32 kernels (the Jacobian path) against float64 and torch",
        full=("--ns", "4096", "--dims", "2", "--widths", "32", "--threads", "1",
              "--impls", "ocp_numba_fused", "torch_otflow", "--no-compile",
              "--name", "kernels_float32"),
        outputs=("results/kernels_float32.json", "results/kernels_float32.md"),
        full_runtime="~2 min", needs=("torch", "torchdiffeq")),
    "gpu": Bench(
        "bench_gpu.py", "GPU (CuPy) against numba on the CPU",
        quick=("--allow-no-gpu", "--sizes", "256", "--widths", "8", "--dims", "2",
               "--cpu-max-n", "256", "--cnf-sizes", "--repeat", "1", "--check-rows", "64"),
        outputs=("results/gpu.json", "results/gpu.md"),
        quick_s=2.6, full_runtime="~5 min on one H200", needs=("gpu",), quick_needs=()),
    "gpu_numba_cuda": Bench(
        "bench_gpu.py", "GPU rerun with the numba-cuda activation kernel",
        full=("--sizes", "65536", "1048576", "--widths", "32", "--name", "gpu_numba_cuda"),
        outputs=("results/gpu_numba_cuda.json", "results/gpu_numba_cuda.md"),
        full_runtime="~3 min on one H200", needs=("gpu",)),
    "figures": Bench(
        "bench_figures.py", "Every committed figure of the results and artifacts, redrawn from its data",
        outputs=("artifacts/FIGURES.md", "results/memory.png", "results/integrators.png"),
        full_runtime="~1 min"),
    "crowd_avoidance": Bench(
        "bench_crowd_avoidance.py", "Crowd motion: the straight-through optimum against crowd-avoid",
        outputs=("results/crowd_avoidance.json", "results/crowd_avoidance.md"),
        full_runtime="~10 s (with --train: ~5 min)", needs=("matplotlib",)),
    "gpu_check": Bench(
        "gpu_check.sh", "The prepared GPU check: pytest -m gpu, then bench_gpu_e2e",
        outputs=("results/gpu_e2e.json", "results/gpu_e2e.md"), generated_only=True,
        full_runtime="~8 min on one H200", needs=("gpu",)),
    "gpu_e2e": Bench(
        "bench_gpu_e2e.py", "Device-resident training on one GPU against the CPU numba backend",
        full=("--deadline", "70", "--mfg-cap", "80", "--flow-cap", "80"),
        quick=("--rehearse", "--parts", "cnf"),
        outputs=("results/gpu_e2e.json", "results/gpu_e2e.md"),
        quick_s=3.0, full_runtime="~6 min on one H200", needs=("gpu",), quick_needs=()),
    "gpu_e2e_cpu": Bench(
        "bench_gpu_e2e.py", "The CPU baseline of the GPU comparison (numba, all cores)",
        full=("--cpu-reference", "--threads", "2", "--repeat", "1"),
        outputs=("results/gpu_e2e_cpu.json", "results/gpu_e2e_cpu.md"),
        full_runtime="~4 min on 2 cores", env=_TWO),
    "mpi": Bench(
        "bench_mpi.py", "Strong scaling of data-parallel objective + gradient, 1 -> K ranks",
        quick=("--problems", "mfg", "--sizes", "8", "--ranks", "1", "2", "--repeat", "1"),
        outputs=("results/mpi.json", "results/mpi.md"), out_option="--results",
        quick_s=5.4, full_runtime="~10 min", needs=("mpi", "mpiexec")),
    "versions": Bench(
        "bench_versions.py", "This checkout against an earlier commit, same cases",
        full=("--base", "HEAD~1", "--rounds", "3", "--threads", "1"),
        outputs=("results/versions.json", "results/versions.md"), generated_only=True,
        full_runtime="~15 min", needs=("git",)),
    "real_data": Bench(
        "bench_real_data.py", "Real data: digits density and small UCI classification",
        quick=("--quick",),
        outputs=("results/real_data_classification.json",
                 "results/real_data_classification.md"),
        quick_s=87.1, full_runtime="~1 h", needs=("sklearn",)),
}
