#!/usr/bin/env bash
# The prepared GPU check, one run of at most 8 minutes (from the repository root on the GPU
# machine):
#   1. install the package with its gpu extra where pip can (the GPU machine is offline and
#      has CuPy and numba-cuda already; the tree is then used through PYTHONPATH);
#   2. pytest -m gpu: tests/test_gpu.py and tests/test_gpu_resident.py (device vs NumPy for
#      the CNF and MFG objective + gradient, transfers, float32, training, the command line);
#   3. python -m benchmarks.bench_gpu_e2e: CNF objective + gradient up to n = 2^20 (d = 2, 64),
#      the crowd-motion game in d = 100 on its full schedule, the checkerboard flow.
# Results go to $OUT (versions.log, gpu_tests.log, bench.log, gpu_e2e.json, gpu_e2e.md).
# Each step runs even if the one before failed.  Usage:
#   OUT=/some/dir OCP_LEARN_COMMIT=<sha> bash benchmarks/gpu_check.sh
# Afterwards, on the CPU machine: python -m benchmarks.bench_gpu_e2e --cpu-reference, then
#   python -m benchmarks.bench_gpu_e2e --combine $OUT/gpu_e2e.json (the speedup columns).
set -uo pipefail
OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export NUMBA_CACHE_DIR=/tmp/nbcache
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
PY="${PYTHON:-python3}"
T0=$(date +%s)

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "nvidia-smi failed"
nproc
"$PY" - <<'PYEOF' 2>&1 | tee "$OUT/versions.log"
import platform, sys
print("python", platform.python_version(), sys.executable)
for mod in ("numpy", "scipy", "numba", "numba_cuda", "cupy"):
    try:
        m = __import__(mod)
        print(mod, getattr(m, "__version__", "?"))
    except Exception as exc:  # report, do not stop
        print(mod, "NOT IMPORTABLE:", repr(exc))
try:
    import ocp_learn
    from ocp_learn.kernels import available_backends
    print("ocp_learn", ocp_learn.__file__, "backends", available_backends())
except Exception as exc:
    print("ocp_learn import FAILED:", repr(exc))
PYEOF

echo "== install (offline: no index, no dependencies)"
timeout 60 "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e ".[gpu]" \
    >>"$OUT/versions.log" 2>&1 && echo "installed" || echo "pip install not possible here; using PYTHONPATH"

echo "== pytest -m gpu ($(( $(date +%s) - T0 )) s so far)"
timeout 180 "$PY" -m pytest -p no:cacheprovider -q -rs -m gpu tests/test_gpu.py \
    tests/test_gpu_resident.py 2>&1 | tee "$OUT/gpu_tests.log"
echo "pytest exit: ${PIPESTATUS[0]}" | tee -a "$OUT/gpu_tests.log"

echo "== python -m benchmarks.bench_gpu_e2e ($(( $(date +%s) - T0 )) s so far)"
timeout 340 "$PY" -m benchmarks.bench_gpu_e2e --deadline 70 --mfg-cap 80 --flow-cap 80 \
    --out "$OUT" 2>&1 | tee "$OUT/bench.log"
echo "bench exit: ${PIPESTATUS[0]}" | tee -a "$OUT/bench.log"
echo "== done in $(( $(date +%s) - T0 )) s; files in $OUT:"
ls -l "$OUT"
