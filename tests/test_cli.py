import subprocess
import sys

import pytest

from fakescope.cli import COMMANDS, main


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name, _, _ in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", [c[0] for c in COMMANDS])
def test_each_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    assert "usage: fakescope " + name in capsys.readouterr().out


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "fakescope", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "fakescope" in r.stdout


def test_help_does_not_import_torch():
    # `fakescope --help` must answer at once: building the parser may not import torch.
    code = "import sys; from fakescope.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
