# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Campaign report
#
# Did the campaign work, and where did its followers come from? Every figure below is computed by the
# `analysis` package (see `analysis.campaign`); this notebook only narrates. Run it for one campaign with
# `python -m analysis report --data DIR --out DIR --campaign ID`.

# %% tags=["parameters"]
campaign_id = ""  # empty: the first campaign in the data set
data_dir = "data/processed"  # processed directory written by ingest, relative to the project root
out_dir = "reports/notebook"  # where results.json is written
as_of = ""  # empty, or an ISO date: report the state of the campaign on that day
seed = 20251  # seed of every resampling step
view_curve_data = ""  # empty, or a processed directory exported daily or weekly: its posts' view curve
# replaces the published one where this data set's posts were exported once (totals only)

# %% tags=["remove-cell"]
from IPython.display import Markdown, display

from analysis import campaign as cr
from analysis.plotting import set_theme
from analysis.results import write_results

set_theme()
report = cr.open_report(campaign_id=campaign_id, data_dir=data_dir, out_dir=out_dir, as_of=as_of, seed=seed,
                        view_curve_data=view_curve_data)

# %% tags=["nbval-check-output"]
print(f"Campaign {report.campaign_id}: {report.campaign['objective']} objective, "
      f"{report.start.date()} to {report.end.date()}")

# %% [markdown]
# ## Campaign summary
# Objective, window, budget and the creators contracted.

# %%
cr.campaign_summary(report).show();

# %% [markdown]
# ## Objective scorecard
# The KPIs that matter for the campaign's objective, against its targets.

# %%
cr.scorecard(report).show();

# %% [markdown]
# ## KPIs
# Campaign-level KPIs with 95% cluster-bootstrap intervals (resampling posts), targets and attainment;
# then the creator leaderboard. Definitions are in `docs/metrics.md` (the metric registry).

# %%
cr.kpi_tables(report).show();

# %% [markdown]
# ## Views, engagement and followers over time
# Daily figures of the campaign's posts; dashed lines mark publication dates, the shaded band the campaign window.

# %%
cr.time_series(report).show();

# %% [markdown]
# ## Completion and watch time

# %%
cr.watch_time(report).show();

# %% [markdown]
# ## Direct conversions
# Orders carrying a creator's discount code, UTM link or affiliate id, de-duplicated.

# %%
cr.conversions(report).show();

# %% [markdown]
# ## Did it work?
# Every incrementality design this campaign's data support, each with its estimate, interval and reading.
# Designs whose data are absent are named below the estimates.

# %%
cr.lift(report).show();

# %% [markdown]
# ## Where did the followers come from?
# Observed brand followers against the counterfactual without the campaign, the cumulative incremental
# followers with their interval, each creator's share, and how many of the new followers stayed.

# %%
cr.attribution(report).show();

# %% [markdown]
# ### Returning creators
# Creators who worked with the brand before: incremental brand followers per 1,000 views in this campaign
# against their own first campaign with the brand, with intervals, and the geometric-mean ratio over them.

# %%
cr.returning_creators(report).show();

# %% [markdown]
# ## How did the audience feel?
# Comment sentiment (comments are quoted as written and escaped).

# %%
cr.sentiment(report).show();

# %% [markdown]
# ## Disclosure and licensing

# %%
cr.compliance(report).show();

# %% [markdown]
# ## Data quality and warnings

# %%
cr.data_quality(report).show()
display(Markdown("**Warnings recorded while building this report**"))
cr.warnings_table(report)

# %% tags=["remove-cell", "nbval-check-output"]
results_path = write_results(report.params.out_dir / "results.json", report.results())
print("results.json written with", ", ".join(sorted(report.results())[:4]), "...")
