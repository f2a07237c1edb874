#!/usr/bin/env bash
# The prepared GPU check (run from the repository root on the GPU machine):
#   1. tests/test_gpu.py (simulator test, CPU chunking tests, GPU tests: CuPy vs numpy to 1e-12,
#      chunked == one chunk, CuPy in -> CuPy out);
#   2. python -m benchmarks.bench_gpu: CuPy vs numba CPU, n up to 2^20, d = 64, + CNF objective/gradient.
# Results go to $OUT (gpu_tests.log, bench.log, gpu.json, gpu.md); nothing is installed and
# nothing needs the network.  Each step runs even if the one before failed.  Usage:
#   OUT=/some/dir bash benchmarks/gpu_check.sh
set -uo pipefail
OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export NUMBA_CACHE_DIR=/tmp/nbcache
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
T0=$(date +%s)

echo "== machine"
nvidia-smi || echo "nvidia-smi failed"
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
    import cupy
    print("cuda available:", cupy.cuda.is_available(), "runtime", cupy.cuda.runtime.runtimeGetVersion())
except Exception as exc:
    print("cupy check failed:", repr(exc))
try:
    import ocp_learn
    from ocp_learn.kernels import available_backends
    print("ocp_learn", ocp_learn.__file__, "backends", available_backends())
except Exception as exc:
    print("ocp_learn import FAILED:", repr(exc))
PYEOF

echo "== tests/test_gpu.py"
timeout 150 "$PY" -m pytest -p no:cacheprovider -q -rs tests/test_gpu.py 2>&1 | tee "$OUT/gpu_tests.log"
echo "pytest exit: ${PIPESTATUS[0]}" | tee -a "$OUT/gpu_tests.log"

echo "== python -m benchmarks.bench_gpu ($(( $(date +%s) - T0 )) s so far)"
timeout 420 "$PY" -m benchmarks.bench_gpu --deadline 270 --out "$OUT" 2>&1 | tee "$OUT/bench.log"
echo "bench exit: ${PIPESTATUS[0]}" | tee -a "$OUT/bench.log"
echo "== done in $(( $(date +%s) - T0 )) s; files in $OUT:"
ls -l "$OUT"
