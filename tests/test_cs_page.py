"""Page 04 (customer success) in static mode: every section renders on a source with only the required tables
(missing tables become one sentence, never a traceback) and on the demo company; the CSM picker's choices."""

from __future__ import annotations

import pytest
from conftest import page_html

from saaskpi.pages import cs_load as page
from saaskpi.workbook import open_workbook

SECTIONS = [
    page.show_header,
    page.show_kpis,
    page.show_lifecycle,
    page.show_renewals,
    page.show_adoption,
    page.show_support,
    page.show_relationship,
    page.show_health,
    page.show_backtest,
    page.show_at_risk,
    page.show_book_of_business,
    page.show_cs_load,
    page.show_cost_and_scorecard,
    page.show_trends,
]


def test_every_section_renders_with_only_accounts_and_subscriptions(revenue_wb):
    for func in SECTIONS:
        text = page_html(func, revenue_wb)
        assert "Something went wrong" not in text, func.__name__
    assert "Adoption and usage needs the `usage_events` table" in page_html(page.show_adoption, revenue_wb)
    assert "No CSM" in page_html(page.show_book_of_business, revenue_wb)


@pytest.fixture(scope="module")
def demo_wb(demo_source):
    return open_workbook(str(demo_source), "mid_market", "", interactive=False)


def test_every_section_renders_on_the_demo(demo_wb):
    for func in SECTIONS:
        text = page_html(func, demo_wb)
        assert "Something went wrong" not in text, func.__name__
        assert "<svg" in text or "<table" in text or func is page.show_header, func.__name__


def test_book_of_business_follows_the_chosen_csm(demo_wb):
    choices = page.csm_choices(demo_wb)
    load = demo_wb.table("csm_load").set_index("csm_id")
    assert [c[1] for c in choices][-1] == "(no CSM)" or "(no CSM)" not in load.index  # unowned accounts last
    first, second = choices[0][1], choices[1][1]
    assert load.accounts[first] >= load.accounts[second]  # most accounts first
    text = page_html(page.show_book_of_business, demo_wb, second)
    assert f"<b>{second}</b> · {load.accounts[second]} paying accounts" in text
    wrong = page_html(page.show_book_of_business, demo_wb, "T999")
    assert "CSM &#x27;T999&#x27; is not on the team" in wrong


def test_an_account_without_a_csm_reads_no_csm_not_nan():
    from saaskpi.metrics.cs_load import NO_CSM
    from saaskpi.pages.cs_load import csm_name

    assert [csm_name(v) for v in ("T002", None, float("nan"), "")] == ["T002", NO_CSM, NO_CSM, NO_CSM]


def test_the_backtest_note_says_why_the_last_month_has_no_auc():
    import numpy as np
    import pandas as pd

    backtest = pd.DataFrame({"band": ["all"], "account_months": [1145], "churned": [9], "auc": [0.7321]})
    months = pd.to_datetime(["2026-09-01", "2026-10-01"])
    # enterprise in 2026-10: none of the accounts scored in 2026-07 churned by 2026-10, so that month has no AUC
    quiet = pd.DataFrame({"month": months, "value": [0.70, np.nan], "n": [2.0, 0.0]})
    text = page.backtest_note(backtest, quiet)
    assert text.startswith("ROC AUC of the score 3 months earlier against churn since: 0.73 over 1,145 account-months")
    assert "The trend has no value for 2026-10: no account scored in 2026-07 churned by 2026-10" in text
    every = quiet.assign(n=[2.0, 3.0])
    assert "every account scored in 2026-07 churned by 2026-10" in page.backtest_note(backtest, every)
    fine = quiet.assign(value=[0.70, 0.81])
    assert "no value" not in page.backtest_note(backtest, fine)


def test_the_backtest_note_explains_every_month_at_the_end_without_an_auc():
    import numpy as np
    import pandas as pd

    backtest = pd.DataFrame({"band": ["all"], "account_months": [1145], "churned": [9], "auc": [0.7321]})
    # Aug has a value; Sep and Oct none: nobody scored in Jun churned by Sep, everybody scored in Jul by Oct
    trend = pd.DataFrame(
        {
            "month": pd.to_datetime(["2026-08-01", "2026-09-01", "2026-10-01"]),
            "value": [0.7, np.nan, np.nan],
            "n": [2.0, 0.0, 3.0],
        }
    )
    text = page.backtest_note(backtest, trend)
    assert (
        "The trend has no value for 2026-09 to 2026-10: no account scored in 2026-06 churned by 2026-09; every "
        "account scored in 2026-07 churned by 2026-10" in text
    )
