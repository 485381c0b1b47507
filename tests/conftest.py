"""Shared, seeded fixtures.

``sim_raw`` / ``sim_processed`` build one small simulated data set per test session
(seed pinned) so every module's tests share the same ground truth.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("agg")
os.environ.setdefault("ANALYSIS_NO_PROGRESS", "1")

SIM_SEED = 7


@pytest.fixture(autouse=True)
def _seed_and_close_figures():
    np.random.seed(12345)
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="session")
def sim_raw(tmp_path_factory) -> Path:
    """A small simulated raw data set (4 campaigns, 240 days) with truth.json."""
    from analysis.simulate import simulate

    out = tmp_path_factory.mktemp("raw")
    simulate(out, seed=SIM_SEED, campaigns=4, days=240)
    return out


@pytest.fixture(scope="session")
def sim_truth(sim_raw) -> dict:
    return json.loads((sim_raw / "truth.json").read_text())


@pytest.fixture(scope="session")
def sim_processed(sim_raw, tmp_path_factory) -> Path:
    """``sim_raw`` after ingest."""
    from analysis.ingest import ingest

    out = tmp_path_factory.mktemp("processed")
    ingest(sim_raw, out)
    return out


@pytest.fixture(scope="session")
def benchmark_script():
    """Import a script of ``benchmarks/`` by name (they are scripts, not a package)."""
    import importlib.util

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    loaded: dict = {}

    def load(name: str):
        if name not in loaded:
            spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", root / f"{name}.py")
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            loaded[name] = mod
        return loaded[name]

    return load
