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
