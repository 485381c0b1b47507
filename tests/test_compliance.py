"""Disclosure, sound-licensing and usage-rights checks against the simulator's truth."""

from __future__ import annotations

import pytest

from analysis.compliance import check_compliance, disclosure_issue


@pytest.mark.parametrize(("caption", "label", "ok"), [
    ("Loving this serum #ad", "none", True),
    ("Loving this serum", "paid_partnership", True),
    ("Loving this serum #spon", "none", False),
    ("Loving this serum #collab", "none", False),
    ("x" * 150 + " #ad", "none", False),        # buried after the caption cut
    ("Loving this #adventure", "none", False),  # #ad must be a whole tag
    ("", "none", False),
])
def test_disclosure_rules(caption, label, ok):
    assert (disclosure_issue(caption, label) is None) is ok


def test_compliance_recovers_truth(sim_processed, sim_truth):
    from analysis.data import load

    ds = load(sim_processed)
    for cid, truth in sim_truth["campaigns"].items():
        res = check_compliance(ds, cid)
        t = truth["compliance"]
        assert res.noncompliant_post_ids == sorted(t["noncompliant_post_ids"]), cid
        assert res.unlicensed_sound_post_ids == sorted(t["unlicensed_sound_post_ids"]), cid
        found = {r["creator_id"] for r in res.to_dict()["expired_rights"]}
        assert {r["creator_id"] for r in t["expired_rights"]} <= found, cid
        assert res.summary()["checked"].min() >= 0


def test_reading_counts_contracts_in_words(sim_processed):
    from dataclasses import replace

    import pandas as pd

    from analysis.data import load

    res = check_compliance(load(sim_processed), "C01")

    def with_rights(n):
        rows = [{"creator_id": f"CR{i}", "usage_rights_end": None, "issue": "x"} for i in range(n)]
        return replace(res, rights=pd.DataFrame(rows, columns=res.rights.columns))

    assert with_rights(1).reading().endswith("and 1 contract had a usage-rights problem.")
    assert with_rights(2).reading().endswith("and 2 contracts had a usage-rights problem.")
    # zero counts read as words, and only when some other check found a problem
    def posts(undisclosed, unlicensed):
        p = pd.DataFrame({"post_id": [f"P{i}" for i in range(5)], "creator_id": "CR0",
                          "disclosure_issue": [("no label" if i < undisclosed else None) for i in range(5)],
                          "sound_licensed": [i >= unlicensed for i in range(5)]})
        return p

    n = 5
    some = replace(with_rights(0), posts=posts(1, 0))
    assert some.reading() == (f"1 of {n} campaign posts was not clearly disclosed, no post used an unlicensed "
                              "sound, and no contract had a usage-rights problem.")
    sound = replace(with_rights(1), posts=posts(0, 2))
    assert sound.reading() == (f"All {n} campaign posts were clearly disclosed, 2 posts used an unlicensed "
                               "sound, and 1 contract had a usage-rights problem.")
