"""Brand-lift surveys and experiment metrics: two proportions, Bayesian uplift, multiplicity, CUPED, ratios.

Functions
---------
proportion_lift
    Difference of two proportions (exposed minus control) with the Newcombe hybrid score interval, Wilson
    intervals per group, pooled and unpooled z-tests and the ratio of proportions.
bayes_uplift
    Beta-binomial posterior probability that the exposed proportion beats the control one.
adjust_pvalues
    Holm or Benjamini-Hochberg adjustment (statsmodels ``multipletests``).
survey_lift
    Per-question lift of a ``brand_lift_survey`` table with adjusted p-values.
cuped
    CUPED variance reduction for a continuous metric with a pre-period covariate; relative effect with a
    delta-method interval.
ratio_delta
    Delta method for ratio metrics such as revenue per session.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import integrate, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import (confint_proportions_2indep, proportion_confint,
                                          proportions_ztest)
from statsmodels.stats.proportion import test_proportions_2indep as _wald_2indep

from analysis.config import check_alpha
from analysis.lift._result import LiftResult, _clean

__all__ = ["BayesUpliftResult", "MeanLiftResult", "ProportionLiftResult", "SurveyLiftResult",
           "adjust_pvalues", "bayes_uplift", "cuped", "proportion_lift", "ratio_delta", "survey_lift"]

_DIFF_METHODS = {"newcombe": "newcomb", "wald": "wald", "agresti-caffo": "agresti-caffo", "score": "score"}


def _check_counts(successes: int, n: int, label: str) -> None:
    if n is None or successes is None or n <= 0:
        raise ValueError(f"{label}: the number of respondents must be positive (got {n}).")
    if successes < 0 or successes > n:
        raise ValueError(f"{label}: successes must lie between 0 and n (got {successes} of {n}).")


def _forest(ax, labels: list[str], est, lo, hi, *, xlabel: str, title: str):
    from analysis.plotting import axes

    ax = axes(ax, figsize=(6, 0.6 * len(labels) + 1.5))
    y = np.arange(len(labels))[::-1]
    est, lo, hi = (np.asarray(v, float) for v in (est, lo, hi))
    ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="o", capsize=4)
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(y, labels)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return ax


# --------------------------------------------------------------------------------------------------
# two proportions
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProportionLiftResult(LiftResult):
    """Exposed versus control proportions.

    Extra attributes
    ----------------
    control_rate, treatment_rate : float
        The two proportions.
    control_ci, treatment_ci : tuple of float
        Wilson score intervals of each proportion.
    method : str
        Interval method of the difference (``"newcombe"`` by default: Newcombe's hybrid score).
    p_value_pooled, p_value_unpooled : float
        Two-sided z-tests with pooled variance (``proportions_ztest``, the classic test; ``p_value``) and
        with unpooled variance (``test_proportions_2indep(method="wald")``).
    ratio, ratio_ci_low, ratio_ci_high : float
        Ratio of proportions (treatment / control) and its log-adjusted interval.
    """

    control_rate: float = float("nan")
    treatment_rate: float = float("nan")
    control_n: int = 0
    treatment_n: int = 0
    control_ci: tuple[float, float] = (float("nan"), float("nan"))
    treatment_ci: tuple[float, float] = (float("nan"), float("nan"))
    method: str = "newcombe"
    p_value_pooled: float = float("nan")
    p_value_unpooled: float = float("nan")
    ratio: float | None = None
    ratio_ci_low: float | None = None
    ratio_ci_high: float | None = None

    def summary(self) -> pd.DataFrame:
        out = super().summary()
        out["control_rate"] = self.control_rate
        out["treatment_rate"] = self.treatment_rate
        out["control_n"] = self.control_n
        out["treatment_n"] = self.treatment_n
        out["p_value_unpooled"] = self.p_value_unpooled
        out["ratio"] = self.ratio
        out["ratio_ci_low"] = self.ratio_ci_low
        out["ratio_ci_high"] = self.ratio_ci_high
        return out

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(_clean({"control_rate": self.control_rate, "treatment_rate": self.treatment_rate,
                         "control_n": self.control_n, "treatment_n": self.treatment_n,
                         "p_value_unpooled": self.p_value_unpooled, "ratio": self.ratio,
                         "ratio_ci_low": self.ratio_ci_low, "ratio_ci_high": self.ratio_ci_high,
                         "method": self.method}))
        return d

    def reading(self) -> str:
        """One plain-language sentence interpreting the estimate."""
        lvl = int(round(100 * (1 - self.alpha)))
        verdict = ("a real difference at this confidence level" if self.significant
                   else "not distinguishable from no difference")
        return (f"{self.treatment_rate:.1%} of exposed versus {self.control_rate:.1%} of control respondents "
                f"said yes for {self.metric}: {100 * self.effect:+.1f} points ({lvl}% interval "
                f"{100 * self.ci_low:+.1f} to {100 * self.ci_high:+.1f}), {verdict}.")

    def plot(self, ax=None):
        """Both proportions with their Wilson intervals."""
        from analysis.plotting import axes

        ax = axes(ax, figsize=(5, 3))
        rates = [self.control_rate, self.treatment_rate]
        lo = [self.control_ci[0], self.treatment_ci[0]]
        hi = [self.control_ci[1], self.treatment_ci[1]]
        ax.errorbar([0, 1], rates, yerr=[np.subtract(rates, lo), np.subtract(hi, rates)], fmt="o", capsize=5)
        ax.set_xticks([0, 1], ["control", "exposed"])
        ax.set_xlim(-0.5, 1.5)
        ax.set_ylabel("share answering yes")
        ax.set_title(f"{self.metric}: {100 * self.effect:+.1f} pts [{100 * self.ci_low:+.1f}, "
                     f"{100 * self.ci_high:+.1f}]")
        return ax


def proportion_lift(*, control_successes: int, control_n: int, treatment_successes: int, treatment_n: int,
                    method: str = "newcombe", alpha: float = 0.05, metric: str = "proportion"
                    ) -> ProportionLiftResult:
    """Lift of a proportion: exposed (treatment) minus control.

    Parameters
    ----------
    control_successes, control_n : int
        Control respondents answering yes, and all control respondents.
    treatment_successes, treatment_n : int
        The same for the exposed group.
    method : {"newcombe", "wald", "agresti-caffo", "score"}
        Interval of the difference (statsmodels ``confint_proportions_2indep``). Newcombe's hybrid score
        interval (built from the two Wilson intervals) is the default: it keeps its coverage with small
        counts and proportions near 0 or 1.
    alpha : float
        Significance level.
    metric : str
        Label of the question.

    Returns
    -------
    ProportionLiftResult
        ``p_value`` is the pooled z-test (``proportions_ztest``); ``p_value_unpooled`` is also given.
        ``relative_effect`` = effect / control proportion, with the interval of the ratio of proportions
        minus one.

    Examples
    --------
    >>> r = proportion_lift(control_successes=12, control_n=99, treatment_successes=5, treatment_n=83)
    >>> round(r.p_value, 3)
    0.159
    """
    _check_counts(control_successes, control_n, "control")
    _check_counts(treatment_successes, treatment_n, "treatment")
    if method not in _DIFF_METHODS:
        raise ValueError(f"method must be one of {sorted(_DIFF_METHODS)}, got {method!r}.")
    check_alpha(alpha)
    xc, nc, xt, nt = int(control_successes), int(control_n), int(treatment_successes), int(treatment_n)
    pc, pt = xc / nc, xt / nt
    lo, hi = confint_proportions_2indep(xt, nt, xc, nc, method=_DIFF_METHODS[method], compare="diff",
                                        alpha=alpha)
    if xc + xt in (0, nc + nt):
        p_pooled = p_unpooled = 1.0
    else:
        p_pooled = float(proportions_ztest([xt, xc], [nt, nc])[1])
        p_unpooled = float(_wald_2indep(xt, nt, xc, nc, method="wald", compare="diff").pvalue)
        if not np.isfinite(p_unpooled):
            p_unpooled = 1.0
    ci_c = tuple(float(v) for v in proportion_confint(xc, nc, alpha=alpha, method="wilson"))
    ci_t = tuple(float(v) for v in proportion_confint(xt, nt, alpha=alpha, method="wilson"))
    ratio = rlo = rhi = None
    if xc > 0:
        ratio = pt / pc
        if xt > 0:
            rlo, rhi = (float(v) for v in confint_proportions_2indep(xt, nt, xc, nc, method="log-adjusted",
                                                                      compare="ratio", alpha=alpha))
    rel = (pt - pc) / pc if pc > 0 else None
    return ProportionLiftResult(
        design="survey", metric=metric, effect=pt - pc, ci_low=float(lo), ci_high=float(hi), p_value=p_pooled,
        relative_effect=rel, alpha=alpha, relative_ci_low=None if rlo is None else rlo - 1,
        relative_ci_high=None if rhi is None else rhi - 1,
        warnings=tuple(["Fewer than 10 successes or failures in a group: intervals rest on few events."]
                       if min(xc, nc - xc, xt, nt - xt) < 10 else []),
        control_rate=pc, treatment_rate=pt, control_n=nc, treatment_n=nt, control_ci=ci_c, treatment_ci=ci_t,
        method=method, p_value_pooled=p_pooled, p_value_unpooled=p_unpooled, ratio=ratio, ratio_ci_low=rlo,
        ratio_ci_high=rhi)


# --------------------------------------------------------------------------------------------------
# Bayesian uplift
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BayesUpliftResult(LiftResult):
    """Beta-binomial comparison of two proportions.

    ``effect`` is the posterior mean of treatment minus control, ``ci_low``/``ci_high`` the equal-tailed
    credible interval; ``p_value`` is None (see ``prob_better``).

    Extra attributes
    ----------------
    prob_better : float
        Posterior probability that the treatment proportion exceeds the control one.
    expected_loss : float
        Expected shortfall of choosing treatment, ``E[max(control - treatment, 0)]`` (Monte Carlo).
    exact : bool
        Whether ``prob_better`` is from numerical integration rather than simulation.
    """

    prob_better: float = float("nan")
    expected_loss: float | None = None
    exact: bool = False
    posterior: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 1.0), (1.0, 1.0))

    def summary(self) -> pd.DataFrame:
        out = super().summary()
        out["prob_better"] = self.prob_better
        out["expected_loss"] = self.expected_loss
        return out

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(_clean({"prob_better": self.prob_better, "expected_loss": self.expected_loss}))
        return d

    def reading(self) -> str:
        """One plain-language sentence interpreting the estimate."""
        return (f"There is a {self.prob_better:.1%} probability that the exposed group's rate for {self.metric} "
                f"is higher than the control group's; the difference is most plausibly between "
                f"{100 * self.ci_low:+.1f} and {100 * self.ci_high:+.1f} points.")

    def plot(self, ax=None):
        """Posterior densities of the two proportions."""
        from analysis.plotting import axes

        ax = axes(ax, figsize=(6, 3.5))
        (ac, bc), (at, bt) = self.posterior
        lo = min(stats.beta.ppf(1e-4, ac, bc), stats.beta.ppf(1e-4, at, bt))
        hi = max(stats.beta.ppf(1 - 1e-4, ac, bc), stats.beta.ppf(1 - 1e-4, at, bt))
        x = np.linspace(lo, hi, 400)
        ax.plot(x, stats.beta.pdf(x, ac, bc), label="control")
        ax.plot(x, stats.beta.pdf(x, at, bt), label="exposed")
        ax.set_xlabel("proportion")
        ax.set_ylabel("posterior density")
        ax.set_title(f"{self.metric}: P(exposed > control) = {self.prob_better:.1%}")
        ax.legend()
        return ax


def bayes_uplift(*, control_successes: int, control_n: int, treatment_successes: int, treatment_n: int,
                 prior: tuple[float, float] = (1.0, 1.0), method: str = "exact", n_draws: int = 200_000,
                 seed: int | None = 0, alpha: float = 0.05, metric: str = "proportion") -> BayesUpliftResult:
    """Posterior probability that the exposed proportion beats the control one (beta-binomial).

    Parameters
    ----------
    control_successes, control_n, treatment_successes, treatment_n : int
        Counts as in :func:`proportion_lift`.
    prior : tuple of float
        Beta prior ``(a, b)`` for both proportions (default uniform).
    method : {"exact", "monte_carlo"}
        ``"exact"`` integrates ``P(T > C) = int f_T(x) F_C(x) dx`` numerically; ``"monte_carlo"`` draws
        from both posteriors. The credible interval and expected loss always come from ``n_draws``
        seeded draws.
    n_draws : int
        Posterior draws.
    seed : int, optional
        Seed of the draws.
    alpha : float
        ``1 - alpha`` credible interval.
    metric : str
        Label.
    """
    _check_counts(control_successes, control_n, "control")
    _check_counts(treatment_successes, treatment_n, "treatment")
    if method not in ("exact", "monte_carlo"):
        raise ValueError(f"method must be 'exact' or 'monte_carlo', got {method!r}.")
    a0, b0 = (float(v) for v in prior)
    if a0 <= 0 or b0 <= 0:
        raise ValueError("Both prior parameters must be positive.")
    ac, bc = a0 + control_successes, b0 + control_n - control_successes
    at, bt = a0 + treatment_successes, b0 + treatment_n - treatment_successes
    rng = np.random.default_rng(seed)
    c = rng.beta(ac, bc, n_draws)
    t = rng.beta(at, bt, n_draws)
    diff = t - c
    if method == "exact":
        prob, _ = integrate.quad(lambda x: stats.beta.pdf(x, at, bt) * stats.beta.cdf(x, ac, bc), 0, 1,
                                 limit=200, points=[at / (at + bt), ac / (ac + bc)])
    else:
        prob = float((diff > 0).mean())
    mc = ac / (ac + bc)
    mean_diff = at / (at + bt) - mc
    lo, hi = np.quantile(diff, [alpha / 2, 1 - alpha / 2])
    return BayesUpliftResult(design="survey_bayes", metric=metric, effect=float(mean_diff), ci_low=float(lo),
                             ci_high=float(hi), p_value=None, relative_effect=float(mean_diff / mc),
                             alpha=alpha, prob_better=float(min(max(prob, 0.0), 1.0)),
                             expected_loss=float(np.maximum(-diff, 0).mean()), exact=method == "exact",
                             posterior=((ac, bc), (at, bt)))


# --------------------------------------------------------------------------------------------------
# multiplicity and surveys
# --------------------------------------------------------------------------------------------------

#: How the multiple-testing corrections are named in readings.
CORRECTION_NAMES = {"holm": "Holm", "fdr_bh": "Benjamini-Hochberg (false discovery rate)"}


def adjust_pvalues(pvalues, method: str = "holm") -> np.ndarray:
    """Adjust p-values for multiple comparisons.

    Parameters
    ----------
    pvalues : array-like
        Raw p-values (missing values are kept missing and not counted).
    method : {"holm", "fdr_bh"}
        Holm's step-down (family-wise error) or Benjamini-Hochberg (false discovery rate).

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, same order.
    """
    if method not in ("holm", "fdr_bh"):
        raise ValueError(f"method must be 'holm' or 'fdr_bh', got {method!r}.")
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        raise ValueError("p-values must lie between 0 and 1.")
    if ok.any():
        out[ok] = multipletests(p[ok], method=method)[1]
    return out


@dataclass(frozen=True)
class SurveyLiftResult:
    """Per-question lift of a brand-lift survey.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (campaign, question): counts, rates, effect, interval, p-value, adjusted p-value.
    results : tuple of ProportionLiftResult
        The per-question results, in ``table`` order.
    correction : str
        Multiplicity correction applied across questions within a campaign.
    """

    table: pd.DataFrame
    results: tuple[ProportionLiftResult, ...]
    correction: str = "holm"
    alpha: float = 0.05

    def summary(self) -> pd.DataFrame:
        """The per-question table."""
        return self.table.copy()

    def to_dict(self) -> list[dict[str, Any]]:
        """``results.json`` lift entries, one per question (``p_value`` is the adjusted one, ``p_value_raw`` the
        unadjusted one and ``p_value_adjustment`` names the correction)."""
        out = []
        for row, res in zip(self.table.itertuples(index=False), self.results):
            d = res.to_dict()
            d["p_value_raw"] = d["p_value"]
            d["p_value"] = _clean(float(row.p_value_adjusted))
            n_q = int((self.table["campaign_id"] == row.campaign_id).sum())
            d["p_value_adjustment"] = (f"{CORRECTION_NAMES.get(self.correction, self.correction)}, "
                                       f"across {n_q} question{'s' if n_q != 1 else ''}")
            d["campaign_id"] = row.campaign_id
            out.append(d)
        return out

    def reading(self) -> str:
        """One plain-language sentence."""
        correction = CORRECTION_NAMES.get(self.correction, self.correction)
        sig = self.table[self.table["p_value_adjusted"] < self.alpha]
        up, down = sig[sig["effect"] > 0], sig[sig["effect"] < 0]
        if up.empty and down.empty:
            return (f"None of the {len(self.table)} questions shows a lift that survives the "
                    f"{correction} correction.")
        parts = []
        if not up.empty:
            best = up.sort_values("effect", ascending=False).iloc[0]
            verb = "shows" if len(up) == 1 else "show"
            parts.append(f"{len(up)} of {len(self.table)} questions {verb} a lift after the {correction} "
                         f"correction; the largest is {best['question']} ({best['effect'] * 100:+.1f} points)")
        else:
            parts.append(f"No question shows a lift after the {correction} correction")
        if not down.empty:
            worst = down.sort_values("effect").iloc[0]
            parts.append(f"{len(down)} {'shows' if len(down) == 1 else 'show'} a significant drop ({worst['question']} "
                         f"{worst['effect'] * 100:+.1f} points), which deserves a look at the survey's design")
        return "; ".join(parts) + "."

    def plot(self, ax=None):
        """Forest plot of the per-question lifts (percentage points)."""
        t = self.table
        labels = [f"{c} | {q}" if t["campaign_id"].nunique() > 1 else str(q)
                  for c, q in zip(t["campaign_id"], t["question"])]
        lvl = int(round(100 * (1 - self.alpha)))
        return _forest(ax, labels, 100 * t["effect"], 100 * t["ci_low"], 100 * t["ci_high"],
                       xlabel=f"lift (percentage points; {lvl}% intervals, not adjusted across questions)",
                       title="Brand-lift survey")


def survey_lift(brand_lift_survey: pd.DataFrame, campaign_id: str | None = None, *, correction: str = "holm",
                method: str = "newcombe", alpha: float = 0.05) -> SurveyLiftResult:
    """Lift of each survey question, exposed minus control, with adjusted p-values.

    Parameters
    ----------
    brand_lift_survey : pandas.DataFrame
        ``campaign_id``, ``respondent_id``, ``group`` (exposed, control), ``question``, ``response`` (0/1).
    campaign_id : str, optional
        Restrict to one campaign (default: every campaign, corrected within each).
    correction : {"holm", "fdr_bh"}
        Multiplicity correction across the questions of a campaign.
    method : str
        Interval method passed to :func:`proportion_lift`.
    alpha : float
        Significance level.
    """
    need = ["campaign_id", "group", "question", "response"]
    miss = [c for c in need if c not in brand_lift_survey]
    if miss:
        raise ValueError(f"brand_lift_survey lacks column(s) {miss}; expected {need + ['respondent_id']}.")
    df = brand_lift_survey[need].copy()
    df["campaign_id"] = df["campaign_id"].astype(str)
    if campaign_id is not None:
        df = df[df["campaign_id"] == str(campaign_id)]
        if df.empty:
            raise ValueError(f"No survey responses for campaign {campaign_id!r}.")
    df["group"] = df["group"].astype(str).str.strip().str.lower()
    bad = set(df["group"].unique()) - {"exposed", "control"}
    if bad:
        raise ValueError(f"group must be 'exposed' or 'control'; found {sorted(bad)}.")
    resp = pd.to_numeric(df["response"], errors="coerce")
    if resp.isna().any() or not resp.isin([0, 1]).all():
        raise ValueError("response must be 0 or 1 for every row.")
    df["response"] = resp.astype(int)
    agg = (df.groupby(["campaign_id", "question", "group"])["response"].agg(["sum", "count"])
           .unstack("group"))
    rows, results = [], []
    for (cid, q), r in agg.iterrows():
        xc, nc = r.get(("sum", "control"), np.nan), r.get(("count", "control"), np.nan)
        xt, nt = r.get(("sum", "exposed"), np.nan), r.get(("count", "exposed"), np.nan)
        if not (np.isfinite(nc) and np.isfinite(nt)):
            raise ValueError(f"Question {q!r} of campaign {cid!r} lacks an exposed or a control group.")
        res = proportion_lift(control_successes=int(xc), control_n=int(nc), treatment_successes=int(xt),
                              treatment_n=int(nt), method=method, alpha=alpha, metric=str(q))
        results.append(res)
        rows.append({"campaign_id": cid, "question": q, "control_n": int(nc), "exposed_n": int(nt),
                     "control_rate": res.control_rate, "exposed_rate": res.treatment_rate,
                     "effect": res.effect, "ci_low": res.ci_low, "ci_high": res.ci_high,
                     "relative_effect": res.relative_effect, "p_value": res.p_value})
    table = pd.DataFrame(rows)
    table["p_value_adjusted"] = np.nan
    for _cid, idx in table.groupby("campaign_id").groups.items():
        table.loc[idx, "p_value_adjusted"] = adjust_pvalues(table.loc[idx, "p_value"], method=correction)
    table["significant"] = table["p_value_adjusted"] < alpha
    return SurveyLiftResult(table=table, results=tuple(results), correction=correction, alpha=alpha)


# --------------------------------------------------------------------------------------------------
# CUPED and ratio metrics
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MeanLiftResult(LiftResult):
    """Difference of means (treatment minus control), optionally CUPED-adjusted or a ratio metric.

    Extra attributes
    ----------------
    control_mean, treatment_mean : float
        The (adjusted) group means.
    se : float
        Standard error of ``effect``.
    df : float
        Welch degrees of freedom.
    theta : float or None
        CUPED coefficient (pooled covariance of metric and covariate over the covariate's variance).
    variance_reduction : float or None
        Share of the metric's variance removed by the covariate.
    """

    control_mean: float = float("nan")
    treatment_mean: float = float("nan")
    se: float = float("nan")
    df: float = float("nan")
    theta: float | None = None
    variance_reduction: float | None = None
    control_n: int = 0
    treatment_n: int = 0

    def summary(self) -> pd.DataFrame:
        out = super().summary()
        for k in ("control_mean", "treatment_mean", "se", "theta", "variance_reduction"):
            out[k] = getattr(self, k)
        return out

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(_clean({k: getattr(self, k) for k in ("control_mean", "treatment_mean", "se", "theta",
                                                        "variance_reduction", "control_n", "treatment_n")}))
        return d

    def reading(self) -> str:
        """One plain-language sentence interpreting the estimate."""
        lvl = int(round(100 * (1 - self.alpha)))
        rel = ""
        if self.relative_effect is not None:
            rel = (f" ({self.relative_effect:+.1%}, {lvl}% interval {self.relative_ci_low:+.1%} to "
                   f"{self.relative_ci_high:+.1%})")
        sig = "a real difference" if self.significant else "not distinguishable from no difference"
        return f"Treatment changed mean {self.metric} by {self.effect:+.4g}{rel}: {sig}."

    def plot(self, ax=None):
        """The relative effect (or the absolute one) with its interval."""
        if self.relative_effect is not None:
            return _forest(ax, [self.metric], [100 * self.relative_effect], [100 * self.relative_ci_low],
                           [100 * self.relative_ci_high], xlabel="relative effect (%)",
                           title=f"{self.design}: {self.metric}")
        return _forest(ax, [self.metric], [self.effect], [self.ci_low], [self.ci_high], xlabel="effect",
                       title=f"{self.design}: {self.metric}")


def _treatment_mask(data: pd.DataFrame, treatment: str, treatment_value) -> np.ndarray:
    v = data[treatment]
    if treatment_value is not None:
        m = (v == treatment_value).to_numpy()
    else:
        levels = pd.unique(v.dropna())
        if len(levels) != 2:
            raise ValueError(f"{treatment!r} must have exactly two values (found {len(levels)}); pass "
                             "treatment_value to name the treated one.")
        if set(levels) <= {0, 1, True, False}:
            m = v.astype(bool).to_numpy()
        else:
            raise ValueError(f"{treatment!r} is not 0/1: pass treatment_value to name the treated value.")
    if m.all() or not m.any():
        raise ValueError(f"{treatment!r} must contain both treated and control rows.")
    return m


def _welch(mt, vt, nt, mc, vc, nc, alpha, name, design, extra) -> MeanLiftResult:
    """Welch t inference for the difference and delta-method (log ratio) for the relative effect."""
    se = math.sqrt(vt / nt + vc / nc)
    dof = (vt / nt + vc / nc) ** 2 / ((vt / nt) ** 2 / (nt - 1) + (vc / nc) ** 2 / (nc - 1))
    q = stats.t.ppf(1 - alpha / 2, dof)
    eff = mt - mc
    p = float(2 * stats.t.sf(abs(eff / se), dof)) if se > 0 else float("nan")
    rel = rlo = rhi = None
    if mc > 0 and mt > 0:
        se_log = math.sqrt(vt / nt / mt ** 2 + vc / nc / mc ** 2)
        dof_log = (vt / nt / mt ** 2 + vc / nc / mc ** 2) ** 2 / (
            (vt / nt / mt ** 2) ** 2 / (nt - 1) + (vc / nc / mc ** 2) ** 2 / (nc - 1))
        ql = stats.t.ppf(1 - alpha / 2, dof_log)
        ratio = mt / mc
        rel, rlo, rhi = ratio - 1, ratio * math.exp(-ql * se_log) - 1, ratio * math.exp(ql * se_log) - 1
    return MeanLiftResult(design=design, metric=name, effect=eff, ci_low=eff - q * se, ci_high=eff + q * se,
                          p_value=p, relative_effect=rel, alpha=alpha, relative_ci_low=rlo,
                          relative_ci_high=rhi, control_mean=mc, treatment_mean=mt, se=se, df=dof,
                          control_n=int(nc), treatment_n=int(nt), **extra)


def cuped(data: pd.DataFrame, *, metric: str, covariate: str | None, treatment: str, treatment_value=None,
          alpha: float = 0.05) -> MeanLiftResult:
    """CUPED: difference in means adjusted by a pre-period covariate (Deng et al. 2013).

    ``theta = cov(Y, X) / var(X)`` from the pooled data (both groups); each group's adjusted mean is
    ``mean(Y) - theta * (mean(X) - overall mean(X))`` with variance ``var(Y) + theta^2 var(X) -
    2 theta cov(Y, X)`` (within group). The difference uses Welch's t; the relative effect ``treatment /
    control - 1`` uses the delta method on the log ratio, as tea-tasting does.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per experimental unit (user).
    metric : str
        Continuous outcome.
    covariate : str or None
        Pre-period value of the metric (or another pre-treatment predictor). ``None``: plain Welch test.
    treatment : str
        Column marking the groups (0/1 or boolean, or any two values with ``treatment_value``).
    treatment_value : optional
        The value of ``treatment`` marking treated rows.
    alpha : float
        Significance level.
    """
    cols = [metric, treatment] + ([covariate] if covariate else [])
    miss = [c for c in cols if c not in data]
    if miss:
        raise ValueError(f"Column(s) not found: {miss}.")
    df = data[cols].dropna()
    m = _treatment_mask(df, treatment, treatment_value)
    y = df[metric].to_numpy(float)
    if covariate:
        x = df[covariate].to_numpy(float)
        vx = x.var(ddof=1)
        if vx == 0:
            raise ValueError(f"Covariate {covariate!r} is constant: it cannot reduce variance.")
        theta = float(np.cov(y, x)[0, 1] / vx)
        xbar = x.mean()
    out = []
    for g in (m, ~m):
        yg = y[g]
        if len(yg) < 2:
            raise ValueError("Each group needs at least two rows.")
        if covariate:
            xg = x[g]
            c = np.cov(yg, xg)
            mean = yg.mean() - theta * (xg.mean() - xbar)
            var = c[0, 0] + theta ** 2 * c[1, 1] - 2 * theta * c[0, 1]
        else:
            mean, var = yg.mean(), yg.var(ddof=1)
        out.append((mean, var, len(yg)))
    (mt, vt, nt), (mc, vc, nc) = out
    extra: dict[str, Any] = {}
    if covariate:
        raw = y[m].var(ddof=1) / nt + y[~m].var(ddof=1) / nc
        extra = {"theta": theta, "variance_reduction": float(1 - (vt / nt + vc / nc) / raw) if raw > 0 else None}
    return _welch(mt, vt, nt, mc, vc, nc, alpha, metric, "cuped" if covariate else "mean", extra)


def ratio_delta(data: pd.DataFrame, *, numerator: str, denominator: str, treatment: str,
                treatment_value=None, alpha: float = 0.05, metric: str | None = None) -> MeanLiftResult:
    """Difference of ratio metrics (e.g. revenue per session) with delta-method variance.

    The ratio ``R = sum(numerator) / sum(denominator)`` is computed per group over units (users); the
    variance of ``R`` is ``(var(N) - 2 R cov(N, D) + R^2 var(D)) / (n mean(D)^2)`` (Deng et al. 2018),
    which accounts for sessions of the same user being correlated.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per randomisation unit with the numerator and denominator totals.
    numerator, denominator : str
        Columns.
    treatment, treatment_value
        As in :func:`cuped`.
    alpha : float
        Significance level.
    metric : str, optional
        Label (default ``"numerator/denominator"``).
    """
    cols = [numerator, denominator, treatment]
    miss = [c for c in cols if c not in data]
    if miss:
        raise ValueError(f"Column(s) not found: {miss}.")
    df = data[cols].dropna()
    m = _treatment_mask(df, treatment, treatment_value)
    out = []
    for g in (m, ~m):
        num = df.loc[g, numerator].to_numpy(float)
        den = df.loc[g, denominator].to_numpy(float)
        if den.sum() <= 0:
            raise ValueError(f"The denominator {denominator!r} sums to zero in a group.")
        n = len(num)
        r = num.sum() / den.sum()
        c = np.cov(num, den)
        var_unit = (c[0, 0] - 2 * r * c[0, 1] + r ** 2 * c[1, 1]) / den.mean() ** 2
        out.append((r, var_unit, n))
    (mt, vt, nt), (mc, vc, nc) = out
    return _welch(mt, vt, nt, mc, vc, nc, alpha, metric or f"{numerator}/{denominator}", "ratio_delta", {})
