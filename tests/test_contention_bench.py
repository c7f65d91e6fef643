"""benchmarks/contention.py: each workload idle and beside both competing loads, and no load outlives it.

No timing assertions: only that every condition was run and timed, and that the loads the script
started are gone when it ends, normally or on Ctrl-C. The torch load runs one-threaded here
(``--load-threads 1``) so the test does not crowd a shared CPU; its default-thread mode is the same
code with one argument less."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench_support import BENCHMARKS, load_benchmark

pytestmark = [pytest.mark.slow]

bench = load_benchmark("contention")
SCRIPT = BENCHMARKS / "contention.py"


def _load_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is one of the script's competing loads."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    return bench.LOAD_MARKER.encode() in cmdline


@pytest.fixture(autouse=True)
def _linux_proc():
    if not Path("/proc/self/cmdline").is_file():
        pytest.skip("needs /proc to check that the competing loads are gone")


def test_a_workload_is_timed_idle_and_beside_both_loads_which_are_gone_afterwards(tmp_path):
    out, doc_md = tmp_path / "contention.json", tmp_path / "benchmarks.md"
    doc_md.write_text("# B\n\n<!-- CONTENTION -->\npending\n<!-- /CONTENTION -->\n\nafter\n")
    argv = [sys.executable, str(SCRIPT), "--tiny", "--workloads", "fit-inr", "--repeats", "1",
            "--load-threads", "1", "--env", "FAKESCOPE_CONTENTION_PROBE=1", "--out", str(out),
            "--update-docs", str(doc_md)]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["extra_env"] == {"FAKESCOPE_CONTENTION_PROBE": "1"} and doc["target_ratio"] == 2.5
    assert isinstance(doc["loadavg_start"], float) and isinstance(doc["loadavg_end"], float)
    (row,) = doc["results"]
    assert row["workload"] == "fit-inr"
    assert row["idle_s"] > 0 and set(row["beside_s"]) == set(row["ratio"]) == {"busy", "torch"}
    for load in ("busy", "torch"):
        assert row["beside_s"][load] > 0 and row["ratio"][load] > 0
        assert row["ratio"][load] == pytest.approx(row["beside_s"][load] / row["idle_s"], abs=0.01)
    conditions = [r["condition"] for r in row["runs"]]
    assert conditions == ["idle", "busy", "torch"]
    pids = [r["load_pid"] for r in row["runs"] if r["condition"] != "idle"]
    assert len(set(pids)) == 2 and not any(_load_alive(p) for p in pids)
    # the table is printed and written between the markers, the prose around them kept
    assert "| `fit-inr` |" in proc.stdout
    text = doc_md.read_text()
    assert "| `fit-inr` |" in text and "pending" not in text and text.endswith("after\n")
