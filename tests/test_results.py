"""results.json: contract shape, JSON safety and determinism."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis.results import (RESULTS_KEYS, ResultsError, dumps_results, empty_results, json_safe, read_results,
                              validate_results, write_results)


def _valid() -> dict:
    d = empty_results("C01", objective="launch", start=pd.Timestamp("2025-03-01"), end=pd.Timestamp("2025-03-31"))
    d["kpis"] = {"views": {"value": np.float64(1234.0), "ci_low": None, "ci_high": None, "target": 1000.0,
                           "attainment": 1.234},
                 "cpa": {"value": float("nan"), "ci_low": None, "ci_high": None, "target": None,
                         "attainment": None}}
    d["lift"] = [{"design": "did", "metric": "revenue", "effect": 5.0, "ci_low": 1.0, "ci_high": 9.0,
                  "relative_effect": 0.1, "p_value": np.float32(0.01)}]
    d["followers"] = {"incremental": 120.0, "ci_low": 80.0, "ci_high": 160.0, "status": "ok",
                      "by_creator": {"CR1": {"incremental": 60.0, "ci_low": 30.0, "ci_high": 90.0}}}
    d["conversions"] = {"direct": {"orders": np.int64(3), "revenue": 99.5}, "incremental": None}
    return d


def test_valid_results_round_trip(tmp_path):
    path = write_results(tmp_path / "out" / "results.json", _valid())
    d = read_results(path)
    assert set(RESULTS_KEYS) <= set(d)
    assert d["window"] == {"start": "2025-03-01", "end": "2025-03-31"}
    assert d["kpis"]["cpa"]["value"] is None  # NaN -> null
    assert isinstance(d["conversions"]["direct"]["orders"], int)
    assert "NaN" not in path.read_text()


def test_results_file_is_readable_like_any_written_file(tmp_path):
    """The atomic write goes through a private temporary file; the result gets the umask mode."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = write_results(tmp_path / "results.json", _valid())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_output_is_deterministic_and_sorted(tmp_path):
    a = write_results(tmp_path / "a.json", _valid()).read_bytes()
    d = _valid()
    d = dict(reversed(list(d.items())))  # insertion order must not matter
    b = write_results(tmp_path / "b.json", d).read_bytes()
    assert a == b
    keys = list(json.loads(a))
    assert keys == sorted(keys)


def test_last_bit_float_noise_does_not_change_the_file():
    d1, d2 = _valid(), _valid()
    d2["lift"][0]["effect"] = 5.0 + 1e-15
    assert dumps_results(d1) == dumps_results(d2)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.pop("warnings"), "missing required keys: warnings"),
    (lambda d: d["window"].update(start="March"), "window.start must be an ISO date"),
    (lambda d: d["lift"][0].pop("ci_low"), "lift[0] is missing 'ci_low'"),
    (lambda d: d["lift"][0].update(effect=None), "lift[0].effect must be a number"),
    (lambda d: d["kpis"]["views"].pop("target"), "kpis.views is missing 'target'"),
    (lambda d: d["followers"].update(incremental=None), "followers.incremental must be a number"),
    (lambda d: d["conversions"]["direct"].update(orders=2.5), "conversions.direct.orders must be an integer"),
    (lambda d: d["warnings"].append("see /home/someone/data/x.csv"), "file-system path"),
])
def test_contract_violations_are_named(mutate, message):
    d = json_safe(_valid())
    mutate(d)
    with pytest.raises(ResultsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate_results(d)


def test_nan_is_rejected_by_validator_but_cleaned_by_writer(tmp_path):
    d = json_safe(_valid())
    d["lift"][0]["p_value"] = float("nan")
    with pytest.raises(ResultsError, match="null"):
        validate_results(d)
    text = dumps_results(d)
    assert json.loads(text)["lift"][0]["p_value"] is None


def test_unavailable_followers_may_be_null():
    d = json_safe(_valid())
    d["followers"] = {"incremental": None, "ci_low": None, "ci_high": None, "by_creator": {},
                      "status": "not available", "reason": "no attribution module"}
    validate_results(d)


def test_nothing_written_when_invalid(tmp_path):
    d = _valid()
    d["objective"] = 3
    with pytest.raises(ResultsError):
        write_results(tmp_path / "r.json", d)
    assert list(tmp_path.iterdir()) == []


def test_json_safe_types():
    out = json_safe({"a": np.int64(2), "b": np.float64(math.inf), "c": pd.NaT, "d": (1, 2),
                     "e": pd.Timestamp("2025-01-02 03:04", tz="UTC"), "f": np.bool_(True)})
    assert out == {"a": 2, "b": None, "c": None, "d": [1, 2], "e": "2025-01-02T03:04:00+00:00", "f": True}
    with pytest.raises(ResultsError, match="cannot hold"):
        json_safe({"x": object()})
