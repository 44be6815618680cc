"""Parameter files: typed, and every mistake is a ParameterError naming the file and key."""

from __future__ import annotations

import pytest

from saaskpi import params
from saaskpi.errors import ParameterError
from saaskpi.stats import target_status, wilson_interval
from saaskpi.workbook import open_workbook


def test_shipped_parameters_load():
    c = params.conventions()
    assert c.reporting_currency == "USD" and c.reactivation_offsets_churn is True
    assert params.segment_names()[0] == "all"
    assert {"all", "smb", "mid_market", "enterprise"} <= set(params.segment_names())


def test_misspelt_convention_key(tmp_path):
    f = tmp_path / "conventions.yaml"
    f.write_text("reactivation_offsets_chrun: true\n")
    with pytest.raises(ParameterError, match="unknown key reactivation_offsets_chrun"):
        params.conventions(f)


def test_wrong_type(tmp_path):
    f = tmp_path / "conventions.yaml"
    f.write_text("low_n_threshold: many\n")
    with pytest.raises(ParameterError, match="`low_n_threshold` must be int"):
        params.conventions(f)


def test_segment_file_may_override_targets_only(tmp_path):
    (tmp_path / "x.yaml").write_text("name: x\nfilter: {segment: [smb]}\nconventions: {}\n")
    with pytest.raises(ParameterError, match="unknown key conventions"):
        params.segment("x", tmp_path)


def test_unknown_segment():
    with pytest.raises(ParameterError, match="Unknown segment 'nope'"):
        params.segment("nope")


def extra_segment_file(monkeypatch, folder, name: str, text: str) -> None:
    """Serve segment `name` from a file in `folder`, beside the shipped segment files."""
    (folder / f"{name}.yaml").write_text(text)
    shipped = params.segment
    monkeypatch.setattr(
        params,
        "segment",
        lambda n: (
            params._typed_segment(params.read_yaml(folder / f"{n}.yaml"), f"{n}.yaml") if n == name else shipped(n)
        ),
    )


def test_segment_selecting_no_accounts(revenue_source, tmp_path, monkeypatch):
    extra_segment_file(monkeypatch, tmp_path, "ghost", "name: ghost\nfilter: {segment: [ghost]}\n")
    with pytest.raises(ParameterError, match="selects no accounts"):
        open_workbook(str(revenue_source), "ghost", "2024-05", interactive=False)


def test_unknown_metric_in_segment_targets(revenue_source, tmp_path, monkeypatch):
    extra_segment_file(
        monkeypatch, tmp_path, "smb2", "name: smb2\nfilter: {segment: [smb]}\ntargets: {mrr_growht: 0.1}\n"
    )
    with pytest.raises(ParameterError, match="segments/smb2.yaml names unknown metric.s. mrr_growht"):
        open_workbook(str(revenue_source), "smb2", "2024-05", interactive=False)


def test_bad_as_of(revenue_source):
    with pytest.raises(ParameterError, match="YYYY-MM"):
        open_workbook(str(revenue_source), "all", "May 2024", interactive=False)


def test_wilson_interval():
    lo, hi = wilson_interval(0.5, 10)
    # z = 1.96: centre (0.5 + 0.19208) / 1.38415 = 0.5; half = 1.96 / 1.38415 * sqrt(0.025 + 0.0096) = 0.2634
    assert (lo, hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0.0, 20)[0] == 0.0


def test_target_status_by_direction():
    assert target_status(0.018, 0.02, "lower") == "on"
    assert target_status(0.021, 0.02, "lower") == "near"  # within 10 % of 0.02
    assert target_status(0.03, 0.02, "lower") == "off"
    assert target_status(1.05, 1.0, "higher") == "on"
    assert target_status(0.95, 1.0, "higher") == "near"
    assert target_status(float("nan"), 1.0, "higher") == "n/a"


def test_every_convention_problem_at_once_with_key_rule_and_value(tmp_path):
    f = tmp_path / "conventions.yaml"
    f.write_text(
        paths_text()
        .replace("funnel_basis: cohort", "funnel_basis: weekly")
        .replace("status_near_band: 0.1", "status_near_band: 2")
        .replace("reporting_currency: USD", "reporting_currency: usd")
    )
    with pytest.raises(ParameterError) as err:
        params.conventions(f)
    text = str(err.value)
    assert text.startswith("conventions.yaml: ")
    assert "`funnel_basis`: input should be 'cohort' or 'period', got 'weekly'" in text
    assert "`status_near_band`: input should be less than or equal to 1, got 2.0" in text
    assert "`reporting_currency`: string should match pattern '^[A-Z]{3}$', got 'usd'" in text


def test_a_convention_left_out_is_named(tmp_path):
    f = tmp_path / "conventions.yaml"
    f.write_text(paths_text().replace("min_peers: 5", ""))  # the values live only in the file: no silent default
    with pytest.raises(ParameterError, match="conventions.yaml: `min_peers` is missing."):
        params.conventions(f)


def paths_text() -> str:
    from saaskpi import paths

    return paths.CONVENTIONS_FILE.read_text(encoding="utf-8")
