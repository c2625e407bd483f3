"""Markdown report: our figures beside the published CDVAE-protocol rows."""

from __future__ import annotations

import pytest

from core.report import PUBLISHED, render_report

RECON = {
    "n": 100,
    "match_rate": 0.9512,
    "rmse": 0.01234,
    "composition_accuracy": 0.99,
    "lattice_mae": 0.021,
    "struct_validity": 1.0,
    "n_failed": 2,
    "n_invalid": 1,
    "match_rate_ungated": 0.96,
}


def _row(md: str, label: str) -> list[str]:
    line = next(ln for ln in md.splitlines() if ln.startswith(f"| {label}"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_reconstruction_report_has_published_rows_and_ours_in_percent():
    md = render_report("reconstruction", RECON, data="perov_5 val")
    for name, values in PUBLISHED["reconstruction"]:  # published values are shown as published (in %)
        assert _row(md, name.split(" (")[0])[1] == f"{values['match_rate']:.2f}"
    ours = _row(md, "**Ours**")
    assert ours[1:6] == ["95.12", "0.0123", "99.00", "0.0210", "100.00"]
    assert _row(md, "CDVAE")[3] == "–"  # not published
    assert "n = 100" in md and "not in sample" in md and "n_failed = 2" in md


def test_generation_report_includes_reference_row_and_flags_sample_size():
    ours = {
        "n": 500,
        "struct_validity": 1.0,
        "comp_validity": 0.98,
        "cov_r": 0.99,
        "cov_p": 0.97,
        "w1_density": 0.1,
        "w1_nelem": 0.02,
        "uniqueness": 0.9,
        "novelty": None,
        "reference": {"n": 3787, "struct_validity": 1.0, "comp_validity": 0.986},
    }
    md = render_report("generation", ours, data="perov_5 val")
    published, calibration = md.split("Calibration (our measurement")
    assert "DiffCSP" in published and "Real crystals" not in published  # ours apart from the literature
    ref = _row(calibration.split("):", 1)[1].strip(), "Real crystals")
    assert ref[1:3] == ["100.00", "98.60"] and ref[3] == "–"  # fractions shown in %; absent keys as –
    assert _row(md, "**Ours**")[8] == "–"  # novelty unknown
    assert "10,000" in md


def test_other_data_is_flagged_not_comparable():
    md = render_report("reconstruction", RECON, data="mp_20_biternary val")
    assert "Not comparable" in md


def test_properties_and_bad_kind():
    md = render_report("properties", {"n": 3, "mae": {"heat_ref": 0.1234}, "n_scored": {"heat_ref": 3}})
    assert "| heat_ref | 0.1234 | 3 |" in md
    with pytest.raises(ValueError):
        render_report("nonsense", {})
