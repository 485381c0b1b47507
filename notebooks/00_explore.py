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
# # Explore the processed data
#
# A starting point for analysts in JupyterLab: load the processed tables, look at any campaign or
# creator, and see how the `analysis` package is called. Change the parameters below and re-run.
# (`python -m analysis report` builds the full per-campaign reports.)

# %% tags=["parameters"]
data_dir = "data/processed"  # processed directory written by ingest, relative to the project root
campaign_id = ""  # empty: the first campaign
creator_id = ""  # empty: the campaign's creator with the most views

# %%
from analysis import campaign as cr
from analysis.kpis import kpi_table
from analysis.plotting import set_theme

set_theme()
report = cr.open_report(campaign_id=campaign_id, data_dir=data_dir, out_dir="reports/explore")
data = report.data

# %% [markdown]
# ## What is in the data set?

# %% tags=["nbval-check-output"]
print("tables:", ", ".join(data.tables))
print("campaigns:", len(data.campaign_ids))

# %%
data["campaigns"]

# %% [markdown]
# ## One campaign
# Every report section is one function of `analysis.campaign`; each returns a `Section` with
# `summary()`, `plot()`, `to_dict()` and `show()`.

# %%
kpis = cr.kpi_tables(report)
kpis.show();

# %%
cr.time_series(report).show();

# %% [markdown]
# ## One creator
# Creator-level KPIs in this campaign (`level="creator"`) and across all campaigns (`level="creator_overall"`).

# %%
in_campaign = kpi_table(data, level="creator", campaign_id=report.campaign_id)
chosen = creator_id or in_campaign.sort_values("views", ascending=False)["creator_id"].iloc[0]
in_campaign.query("creator_id == @chosen")

# %%
kpi_table(data, level="creator_overall").query("creator_id == @chosen")

# %% [markdown]
# ## Was it incremental?
# `analysis.lift` holds every design; each result has `effect`, `ci_low`, `ci_high`, `p_value`,
# `relative_effect`, `summary()`, `plot()`, `reading()` and `to_dict()`. A brand-lift survey, for example:

# %%
from analysis.lift import proportion_lift

res = proportion_lift(control_successes=120, control_n=1000, treatment_successes=158, treatment_n=1000)
print(res.reading())
res.summary()

# %% [markdown]
# ## Where did the followers come from?
# The follower attribution of the chosen campaign, per creator, with 95% intervals, and any warnings
# about the data behind it (`followers.warnings`). A cell ending in `followers` shows the reading, the total
# and each creator against TikTok-reported follows, then the warnings (handles escaped); every per-creator
# column is in `followers.by_creator`.

# %%
from analysis.attribution import attribute_followers

followers = attribute_followers(data, report.campaign_id, seed=1)
followers.plot_creators();

# %%
followers

# %% [markdown]
# ## Audience voice and compliance

# %%
from analysis.compliance import check_compliance
from analysis.sentiment import audience_voice

if data.has("comments"):
    print(audience_voice(data, report.campaign_id).reading())
print(check_compliance(data, report.campaign_id).reading())

# %% [markdown]
# ## The rest of the API
# `analysis.lift` (synthetic control, causal impact, DiD, staggered DiD, survey lift, CUPED, power),
# `analysis.conversions.direct_summary`, `analysis.attribution.attribute_orders` and `analysis.results` are used
# the same way; `help(cr)` lists the report sections.

# %% tags=["nbval-check-output"]
print(list(cr.section_names()))
