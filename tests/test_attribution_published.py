"""The attribution engine's distributed-lag inference against a published result on real data.

Stock and Watson (2007, *Introduction to Econometrics*, 2nd ed., section 15.1) regress the monthly
percentage change of the real price of frozen orange juice concentrate on freezing degree days in
Orlando, current and lagged, with Newey-West (HAC) standard errors, truncation 7:

* eq. (15.1): ``%ChgP_t = -0.40 + 0.47 FDD_t``, standard errors (0.22) (0.13);
* eq. (15.2): ``%ChgP_t = -0.65 + 0.47 FDD_t + 0.14 FDD_t-1 + 0.06 FDD_t-2 + ...``,
  standard errors (0.23) (0.14) (0.08) (0.06) ...

The data (``tests/fixtures/published/frozen_juice.csv``) are those of the AER package's
``FrozenJuice`` (Kleiber and Zeileis), 1950-01 to 2000-12: the Bureau of Labor Statistics' producer
price of frozen orange juice, the producer price index for finished goods and NOAA's freezing degree
days. The book's regressions start in January 1950 with lags and the first price change reaching back
into 1947-1949; these data start in January 1950, so the estimation sample starts a month (eq. 15.1)
or seven months (eq. 15.2) later. The slopes and their standard errors are reproduced to the book's
two decimals; the intercepts move by the shorter sample (-0.42 and -0.69) and are not compared.

The lag columns are built with the engine's carry-over filter (``_engine.adstock`` with a kernel that
is one at lag ``l``), the standard errors with its sandwich of linear functionals (``_engine.hac_cov``),
the same code that gives every attribution's interval.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.attribution import _engine as E

DATA = Path(__file__).parent / "fixtures" / "published" / "frozen_juice.csv"

#: Stock and Watson (2007), eq. (15.1) and (15.2): (coefficient, HAC standard error) of FDD at lags 0, 1, 2.
PUBLISHED = {0: [(0.47, 0.13)], 6: [(0.47, 0.14), (0.14, 0.08), (0.06, 0.06)]}

#: Newey-West truncation used in the book (m = 0.75 T^(1/3), rounded: 7 for T = 612).
HAC_LAGS = 7


def _lag_kernel(lag: int) -> E.Kernel:
    w = np.zeros(lag + 1)
    w[lag] = 1.0
    return E.Kernel("lag", (("lag", float(lag)),), w)


@pytest.fixture(scope="module")
def juice() -> tuple[np.ndarray, np.ndarray]:
    d = pd.read_csv(DATA)
    assert len(d) == 612 and d["month"].iloc[0] == "1950-01" and d["month"].iloc[-1] == "2000-12"
    ret = 100 * np.diff(np.log(d["price"].to_numpy(float) / d["ppi"].to_numpy(float)))
    return ret, d["fdd"].to_numpy(float)[1:]


def _distributed_lag(ret: np.ndarray, fdd: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OLS of price changes on FDD at lags 0..r (lag columns from the engine's filter); coefficients, HAC
    covariance from the engine's sandwich, and the design."""
    lags = np.column_stack([E.adstock(fdd, _lag_kernel(k)) for k in range(r + 1)])[r:]
    X = np.column_stack([np.ones(len(lags)), lags])
    y = ret[r:]
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    F = X @ np.linalg.inv(X.T @ X)  # beta = F' y: each coefficient is a linear functional of the outcome
    return beta, E.hac_cov(F, y - X @ beta, HAC_LAGS), X


@pytest.mark.parametrize("r", sorted(PUBLISHED))
def test_distributed_lag_reproduces_stock_watson_orange_juice(juice, r):
    beta, cov, _ = _distributed_lag(*juice, r)
    se = np.sqrt(np.diag(cov))
    for lag, (coef, std) in enumerate(PUBLISHED[r]):
        # printed to two decimals: within half a unit of the last digit plus the sample's few months
        assert beta[1 + lag] == pytest.approx(coef, abs=0.008), (r, lag, beta[1 + lag])
        assert se[1 + lag] == pytest.approx(std, abs=0.008), (r, lag, se[1 + lag])


def test_cumulative_effect_variance_matches_the_reparametrised_regression(juice):
    """The engine's route to a total's interval (the sandwich of a sum of lag effects, a linear functional)
    gives the book's cumulative multipliers (eq. 15.7: the regression on differenced FDD) and their HAC
    standard errors from statsmodels."""
    import statsmodels.api as sm

    ret, fdd = juice
    r = 18
    beta, cov, _ = _distributed_lag(ret, fdd, r)
    A = np.tril(np.ones((r + 1, r + 1)))  # row h sums the effects of lags 0..h
    cum, cum_se = A @ beta[1:], np.sqrt(np.diag(A @ cov[1:, 1:] @ A.T))
    # the same sample: FDD differenced at lags 0..r-1 and its level at lag r
    dfdd = np.diff(fdd, prepend=np.nan)
    n = len(fdd)
    Z = np.column_stack([dfdd[r - k:n - k] for k in range(r)] + [fdd[:n - r]])
    fit = sm.OLS(ret[r:], sm.add_constant(Z)).fit(cov_type="HAC", cov_kwds={"maxlags": HAC_LAGS,
                                                                           "use_correction": False})
    np.testing.assert_allclose(cum, fit.params[1:], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(cum_se, fit.bse[1:], rtol=1e-6)
    # a freeze raises the price at once, and most of the rise has faded 18 months later
    assert cum[0] > 0.4 and cum_se[0] < 0.2 and abs(cum[-1]) < 0.5 * cum.max()
