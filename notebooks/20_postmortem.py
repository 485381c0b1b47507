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
# # Post-mortem: what did the campaign cause?
#
# A campaign's analysis written up as a short paper: the question and what is estimated, the data, the
# methods and what they assume, the results with their intervals, how robust they are, what could make them
# wrong, and how to reproduce them. Every number is computed by the `analysis` package (the same sections as
# the campaign report, so `results.json` is identical for the same data and seed); this notebook narrates.

# %% tags=["parameters"]
campaign_id = ""  # empty: the first campaign in the data set
data_dir = "data/processed"  # processed directory written by ingest, relative to the project root
out_dir = "reports/notebook"  # where results.json is written (ANALYSIS_OUT_DIR overrides this default)
as_of = ""  # empty, or an ISO date: the state of the campaign on that day
seed = 20251  # seed of every resampling step
view_curve_data = ""  # empty, or a processed directory exported daily or weekly: its posts' view curve
# replaces the published one where this data set's posts were exported once (totals only)

# %% tags=["remove-cell"]
from IPython.display import display

from analysis import campaign as cr
from analysis import postmortem as pm
from analysis.htmlsafe import item_list, paragraph, safe_table
from analysis.plotting import set_theme
from analysis.results import write_results

set_theme()
report = pm.run(cr.open_report(campaign_id=campaign_id, data_dir=data_dir, out_dir=out_dir, as_of=as_of,
                               seed=seed, view_curve_data=view_curve_data))

# %% tags=["nbval-check-output"]
print(f"Campaign {report.campaign_id}: {report.campaign['objective']} objective, "
      f"{report.start.date()} to {report.end.date()}")

# %% [markdown]
# ## Abstract

# %%
display(paragraph(pm.abstract(report)))

# %% [markdown]
# ## 1. Question and estimands
# Did the campaign cause the brand's follower growth and sales, and how much of each? The estimands are sums
# over the campaign and a tail after it (follows and orders keep arriving after the last post), of observed
# minus counterfactual: what the brand account would have recorded without the campaign. Lift designs
# estimate their own contrasts (treated minus counterfactual regions, exposed minus control respondents).

# %%
estimands = pm.estimands(report)
display(safe_table(estimands[["estimand", "definition", "days", "shown"]], index=False,
                   caption="Estimands and estimates (95% intervals)"))

# %% [markdown]
# ## 2. Data
# The processed tables (validated on ingest; raw files are never modified) with their raw inputs' SHA-256,
# and the campaign itself.

# %%
display(safe_table(pm.data_summary(report), index=False, caption="Processed tables"))
report.sections["summary"].show();

# %% [markdown]
# ## 3. Methods and their assumptions
# Each analysis, what it assumes, and where it was validated against known truth on simulated data
# (coverage of its intervals and bias across many seeds; `make validate` regenerates the tables).

# %%
display(safe_table(pm.methods(report), index=False, caption="Methods"))

# %% [markdown]
# ## 4. Results
# ### 4.1 Experimental designs

# %%
report.sections["lift"].show();

# %% [markdown]
# ### 4.2 Followers and orders caused, by creator

# %%
report.sections["attribution"].show();

# %% [markdown]
# ### 4.3 Audience response and compliance

# %%
report.sections["sentiment"].show();
report.sections["compliance"].show();

# %% [markdown]
# ## 5. Robustness
# How far the follower total moves under other reasonable choices, how the carry-over kernel was chosen,
# and how the placebo campaigns calibrated the intervals.

# %%
pm.robustness(report).show();

# %% [markdown]
# ## 6. Threats to validity

# %%
display(item_list(pm.threats(report) or ["No threat beyond the methods' stated assumptions was detected."],
                  ordered=True))

# %% [markdown]
# ## 7. Reproducibility

# %%
display(safe_table(pm.reproducibility(report), index=False, caption="Versions, seed and command"))

# %% [markdown]
# ## References

# %%
display(item_list(pm.REFERENCES))

# %% tags=["remove-cell", "nbval-check-output"]
results_path = write_results(report.params.out_dir / "results.json", report.results())
print("results.json written with", ", ".join(sorted(report.results())[:4]), "...")
