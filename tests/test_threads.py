"""The command line's thread policy (fakescope.utils.threads, docs/benchmarks.md "Threads"): how many
torch threads a command runs, where that number came from, and that OpenMP's idle threads sleep
(OMP_WAIT_POLICY=PASSIVE, set before torch loads) unless the user chose otherwise.

Each subprocess runs ``python -m fakescope merge MISSING``: it goes through ``main()`` (threads set,
torch loaded, the FAKESCOPE_VERBOSE line printed) and then fails at once with one error line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from fakescope.cli import main
from fakescope.errors import ConfigError
from fakescope.utils.threads import FROM_CORES, FROM_HOST, resolve_threads, usable_cores

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "FAKESCOPE_THREADS",
    "FAKESCOPE_THREADS_WAIT",
    "FAKESCOPE_VERBOSE",
)

# Runs `python -m fakescope` (runpy, as -m does) after noting what OMP_WAIT_POLICY is the moment
# torch is first imported: libgomp reads it then, once.
SPY = """
import os, runpy, sys
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            print("at torch import: OMP_WAIT_POLICY=" + str(os.environ.get("OMP_WAIT_POLICY")), file=sys.stderr)
            sys.meta_path.remove(self)
        return None
sys.meta_path.insert(0, Spy())
sys.argv = ["fakescope"] + sys.argv[1:]
runpy.run_module("fakescope", run_name="__main__", alter_sys=True)
"""


def _env(**set_vars: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(set_vars)
    return env


def _fakescope(args: list[str], env: dict[str, str], cwd, preexec_fn=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fakescope", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=preexec_fn,
    )


def _thread_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("fakescope merge: threads: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_flag_beats_env(monkeypatch):
    monkeypatch.setenv("FAKESCOPE_THREADS", "5")
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    assert tuple(resolve_threads(3)) == (3, "--threads")
    assert tuple(resolve_threads("4")) == (4, "--threads")
    assert tuple(resolve_threads(None)) == (5, "FAKESCOPE_THREADS")


@pytest.mark.parametrize(
    ("flag", "env", "named"),
    [
        ("0", None, "--threads 0"),
        ("-2", None, "--threads -2"),
        ("abc", None, "--threads abc"),
        (None, "0", "FAKESCOPE_THREADS=0"),
        (None, "abc", "FAKESCOPE_THREADS=abc"),
        (None, "1.5", "FAKESCOPE_THREADS=1.5"),
    ],
)
def test_bad_values_are_one_line_errors(flag, env, named, monkeypatch):
    monkeypatch.delenv("FAKESCOPE_THREADS", raising=False)
    if env is not None:
        monkeypatch.setenv("FAKESCOPE_THREADS", env)
    with pytest.raises(ConfigError) as err:
        resolve_threads(flag)
    assert str(err.value) == f"{named}: not a positive whole number of threads"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--threads", "0"], {}, "fakescope models: error: --threads 0: not a positive whole number of threads"),
        ([], {"FAKESCOPE_THREADS": "abc"}, "fakescope models: error: FAKESCOPE_THREADS=abc: not a positive whole number of threads"),
        ([], {"FAKESCOPE_THREADS_WAIT": "sometimes"}, "fakescope: error: FAKESCOPE_THREADS_WAIT=sometimes: expected active or passive"),
    ],
)  # fmt: skip
def test_bad_values_through_the_cli(args, env, message, tmp_path):
    r = _fakescope(["models", *args], _env(**env), tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [message]
    assert r.stdout == ""


def test_default_is_the_cores_this_process_may_use(tmp_path):
    # without torch loaded (a fresh process) and without any thread variable
    code = "from fakescope.utils.threads import resolve_threads; c = resolve_threads(None); print(c.threads, c.source)"
    r = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{usable_cores()} {FROM_CORES}"
    # OMP_NUM_THREADS, the standard variable, is honoured when fakescope's own are not set
    r = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(OMP_NUM_THREADS="3"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.stdout.strip() == "3 OMP_NUM_THREADS"


def test_cli_flag_beats_env_in_torch(tmp_path):
    env = _env(FAKESCOPE_VERBOSE="1", FAKESCOPE_THREADS="1", OMP_NUM_THREADS="1")
    r = _fakescope(["merge", str(tmp_path / "missing"), "--threads", "3"], env, tmp_path)
    assert r.returncode == 2  # merge has nothing to merge: the error comes after the threads are set
    # the number is torch.get_num_threads() read back after the command set it
    assert _thread_line(r.stderr) == "fakescope merge: threads: 3 (--threads); OpenMP wait policy: PASSIVE"


def test_cli_env_beats_omp_num_threads_in_torch(tmp_path):
    env = _env(FAKESCOPE_VERBOSE="1", FAKESCOPE_THREADS="3", OMP_NUM_THREADS="1")
    r = _fakescope(["merge", str(tmp_path / "missing")], env, tmp_path)
    assert r.returncode == 2
    assert _thread_line(r.stderr).startswith("fakescope merge: threads: 3 (FAKESCOPE_THREADS);")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_one_core_affinity_gives_one_thread(tmp_path):
    core = min(os.sched_getaffinity(0))
    r = _fakescope(
        ["merge", str(tmp_path / "missing")],
        _env(FAKESCOPE_VERBOSE="1"),
        tmp_path,
        preexec_fn=lambda: os.sched_setaffinity(0, {core}),
    )
    assert r.returncode == 2, r.stderr
    # the number is torch.get_num_threads() read back after the command set it
    assert (
        _thread_line(r.stderr) == f"fakescope merge: threads: 1 ({FROM_CORES}); OpenMP wait policy: PASSIVE"
    )


@pytest.mark.parametrize(
    ("env", "at_import", "said"),
    [
        ({}, "PASSIVE", "PASSIVE"),  # unset: fakescope sets PASSIVE before torch loads
        ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE", "ACTIVE"),  # the user's choice is kept
        ({"FAKESCOPE_THREADS_WAIT": "active"}, "None", "runtime default"),  # the opt-out
    ],
)
def test_wait_policy_is_set_before_torch_loads(env, at_import, said, tmp_path):
    r = subprocess.run(
        [sys.executable, "-c", SPY, "merge", str(tmp_path / "missing")],
        env=_env(FAKESCOPE_VERBOSE="1", OMP_NUM_THREADS="1", **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines()[0] == f"at torch import: OMP_WAIT_POLICY={at_import}"
    assert _thread_line(r.stderr).endswith(f"OpenMP wait policy: {said}")


def test_main_in_a_program_that_loaded_torch_keeps_its_threads(tmp_path, monkeypatch, capsys):
    for var in THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FAKESCOPE_VERBOSE", "1")
    torch.set_num_threads(1)
    assert main(["merge", str(tmp_path / "missing")]) == 2
    assert torch.get_num_threads() == 1
    line = _thread_line(capsys.readouterr().err)
    assert line.startswith(f"fakescope merge: threads: 1 ({FROM_HOST});")
    assert "OMP_WAIT_POLICY" not in os.environ  # too late to take effect, so not set
