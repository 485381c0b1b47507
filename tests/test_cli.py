"""The command line of CONTRACT section 1."""

from __future__ import annotations

import subprocess
import sys

import pytest

from analysis.cli import build_parser, main
from analysis._envfile import render
from analysis.config import PROJ_ROOT

CONTRACT_COMMANDS = ["simulate", "ingest", "kpis", "report", "postmortem", "portfolio", "monitor", "shortlist"]


def test_help_lists_every_contract_command():
    out = subprocess.run([sys.executable, "-m", "analysis", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for cmd in CONTRACT_COMMANDS:
        assert cmd in out


@pytest.mark.parametrize("cmd", CONTRACT_COMMANDS)
def test_every_command_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([cmd, "--help"])
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_postmortem_command_errors_are_clear(sim_processed, tmp_path, capsys):
    assert main(["postmortem", "--data", str(sim_processed), "--campaign", "NOPE", "--out", str(tmp_path)]) == 2
    assert "unknown campaign id NOPE; the data set holds: C01, C02" in capsys.readouterr().err
    assert main(["postmortem", "--data", str(tmp_path / "none"), "--campaign", "C01", "--out", str(tmp_path)]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written


def test_unavailable_command_says_so(capsys, tmp_path):
    assert main(["portfolio", "--data", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "not available" in capsys.readouterr().err


def test_environment_yml_mirrors_the_lock_file():
    committed = (PROJ_ROOT / "environment.yml").read_text()
    assert committed == render(), "environment.yml is stale: run `make env-yml`"
    pins = [line for line in (PROJ_ROOT / "requirements.lock").read_text().splitlines() if "==" in line]
    assert pins and all(f"      - {p}" in committed for p in pins)
