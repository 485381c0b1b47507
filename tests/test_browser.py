"""The HTML report in headless Chromium: no console errors, PNG figures, a screenshot under reports/."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from analysis.config import REPORTS_DIR
from test_report import shared_reports

pytestmark = pytest.mark.browser

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).exists()), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def report_html(sim_processed, tmp_path_factory) -> Path:
    if CHROMIUM is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium; .ci/run installs it)")
    out, outcomes = shared_reports(sim_processed, tmp_path_factory)
    assert outcomes[0]["status"] == "ok", outcomes[0]["error"]
    return out / outcomes[0]["campaign_id"] / "report.html"


def _chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)


def _console_errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines()
            if "Uncaught" in ln or ("CONSOLE" in ln and ("ERROR" in ln or "error" in ln.lower()))]


def test_report_renders_without_console_errors(report_html, tmp_path):
    proc = _chromium(["--virtual-time-budget=5000", "--dump-dom", report_html.as_uri()], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert not _console_errors(proc.stderr), _console_errors(proc.stderr)
    assert dom.count('src="data:image/png;base64') >= 5
    assert "Where did the followers come from?" in dom


def test_screenshot_written(report_html, tmp_path):
    REPORTS_DIR.mkdir(exist_ok=True)
    shot = REPORTS_DIR / f"screenshot_{report_html.parent.name}.png"
    shot.unlink(missing_ok=True)
    proc = _chromium(["--window-size=1280,2400", "--virtual-time-budget=5000", f"--screenshot={shot}",
                      report_html.as_uri()], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not _console_errors(proc.stderr), _console_errors(proc.stderr)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
