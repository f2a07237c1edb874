"""The benchmark record: the manifest covers every script, every committed output exists,
the index regenerates, and one quick benchmark runs end to end through ``ocp-learn bench``."""
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

pytestmark = pytest.mark.skipif(not (BENCH / "manifest.py").is_file(),
                                reason="needs the source checkout's benchmarks/ folder")


@pytest.fixture
def bench(monkeypatch):
    """The ``benchmarks`` package (manifest, index, _common) from the checkout."""
    monkeypatch.syspath_prepend(str(ROOT))
    return {m: importlib.import_module(f"benchmarks.{m}") for m in ("manifest", "index", "_common")}


def test_manifest_covers_every_script(bench):
    manifest = bench["manifest"]
    scripts = {p.name for p in BENCH.glob("bench_*.py")} | {p.name for p in BENCH.glob("*.sh")}
    named = {b.script for b in manifest.BENCHMARKS.values()}
    assert scripts - named == set(), "scripts missing from benchmarks/manifest.py"
    assert named - scripts == set(), "manifest entries naming no script"
    for key, b in manifest.BENCHMARKS.items():
        assert set(b.needs) <= set(manifest.NEEDS), key
        assert b.title and b.full_runtime != "?", key


def test_every_manifest_output_is_committed(bench):
    missing = [(k, o) for k, b in bench["manifest"].BENCHMARKS.items() if not b.generated_only
               for o in b.outputs if not (BENCH / o).exists()]
    assert missing == []
    for k, b in bench["manifest"].BENCHMARKS.items():
        assert all(o.startswith(("results/", "artifacts/")) for o in b.outputs), k


def test_scripts_do_not_edit_sys_path():
    offenders = [p.name for p in BENCH.glob("*.py") if "sys.path.insert" in p.read_text()]
    assert offenders == []


def test_ocp_learn_does_not_import_benchmarks():
    code = ("import sys, ocp_learn.cli, ocp_learn.commands.bench; "
            "print(any(m == 'benchmarks' or m.startswith('benchmarks.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(ROOT / "tests"), check=True).stdout.strip()
    assert out == "False"


def test_provenance_records_commit_threads_and_machine(bench):
    p = bench["_common"].provenance(["python", "-m", "benchmarks.bench_core"])
    assert set(p) >= {"argv", "commit", "dirty", "date", "machine", "threads", "loadavg"}
    assert p["date"].endswith("+00:00")
    assert {"platform", "cpus", "python", "numpy"} <= set(p["machine"])
    assert {"NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "numba_get_num_threads"} <= set(p["threads"])


def test_index_regenerates(bench, tmp_path):
    res = BENCH / "results"
    for f in ("core.json", "core.md", "real_data_classification.json",
              "real_data_classification.md"):
        shutil.copy(res / f, tmp_path / f)
    (tmp_path / "extra.md").write_text("A table nobody registered\n\n| a |\n|---|\n| 1 |\n")
    prov = bench["_common"].provenance(["python", "-m", "benchmarks.bench_core"])
    data = json.loads((tmp_path / "core.json").read_text())
    (tmp_path / "core.json").write_text(json.dumps({**data, "provenance": prov}))
    text = Path(bench["index"].write_index(str(tmp_path), None)).read_text()
    rows = [r for r in text.splitlines() if r.startswith("| [")]
    assert len(rows) == 3
    core = next(r for r in rows if "[core.json]" in r)
    assert "ocp-learn bench core" in core and prov["date"] in core
    assert (prov["commit"] or "?")[:10] in core
    assert "A table nobody registered" in next(r for r in rows if "[extra.md]" in r)
    assert bench["index"].NO_PROVENANCE in next(r for r in rows if "[extra.md]" in r)


def test_quick_benchmark_end_to_end(tmp_path):
    """``ocp-learn bench core --quick --out DIR``: a subprocess run that writes the tables with
    provenance and the folder's INDEX.md, and leaves the committed results alone."""
    from ocp_learn.cli import main

    before = (BENCH / "results" / "core.json").read_bytes()
    assert main(["bench", "core", "--quick", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "core.json").read_text())
    assert data["provenance"]["argv"][:3] == ["python", "-m", "benchmarks.bench_core"]
    assert data["rows"] and data["rows"][0]["n"] == 256
    assert "core.md" in (tmp_path / "INDEX.md").read_text()
    assert (BENCH / "results" / "core.json").read_bytes() == before


def test_unknown_target_names_the_choices(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "benchmarks.run", "nope", "--out", str(tmp_path)],
                       cwd=str(ROOT), env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "core" in r.stderr


def test_real_data_tables_combine_runs_over_consecutive_splits(bench, tmp_path):
    """``bench_real_data.py --combine`` rebuilds the committed ten-split table from its two
    five-split runs, and refuses runs with other settings or splits that do not follow on."""
    real = importlib.import_module("benchmarks.bench_real_data")
    res = BENCH / "results"
    parts = [str(res / f"real_data_classification_fine_T3_splits{s}.json")
             for s in ("10to14", "5to9")]
    real.main(["--combine", *parts, "--tag", "_x", "--out", str(tmp_path)])
    got = json.loads((tmp_path / "real_data_classification_x.json").read_text())
    want = json.loads((res / "real_data_classification_fine_T3_splits5to14.json").read_text())
    assert got["settings"]["first_split"] == 5 and got["settings"]["splits"] == 10
    for name, r in want["results"].items():
        for m in real.CLASSIFIERS:
            assert got["results"][name][m]["test_accuracy"] == r[m]["test_accuracy"]
            assert got["results"][name][m]["mean"] == pytest.approx(r[m]["mean"], abs=1e-15)
    other = str(res / "real_data_classification_fine_splits5to9.json")
    with pytest.raises(SystemExit, match="node_T"):
        real.main(["--combine", other, parts[0], "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="consecutive"):
        real.main(["--combine", parts[1], parts[1], "--out", str(tmp_path)])
