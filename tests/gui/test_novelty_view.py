"""New vs known in the app: the Properties badge and the batch table read the model set's index
of its training crystals (not the gallery)."""

from __future__ import annotations

import pytest

from core.known import KnownCrystals
from tests.gui.conftest import fake_window_with_crystal, run_interpolation, wait_for_model
from tests.gui.fakes import FakeModelSet, rocksalt

pytestmark = pytest.mark.gui


def _model(known_ids: dict[str, object]) -> FakeModelSet:
    model = FakeModelSet()
    model.known = KnownCrystals(list(known_ids), list(known_ids.values()))
    return model


def test_properties_say_known_with_the_training_id(make_window, qtbot):
    win = make_window(_model({"mp-22862": rocksalt(5.64)}))
    wait_for_model(qtbot, win)
    win.open_gallery("NaCl_rocksalt")
    badge = win.properties.badges["novel"]
    qtbot.waitUntil(lambda: badge.text().startswith("known"), timeout=20000)
    assert badge.text() == "known: mp-22862 (training set)"
    win.open_gallery("KCl_rocksalt")
    qtbot.waitUntil(lambda: badge.text() == "new", timeout=20000)


def test_without_an_index_novelty_is_not_claimed(make_window, qtbot):
    win = make_window(FakeModelSet())
    wait_for_model(qtbot, win)
    win.open_gallery("KCl_rocksalt")
    qtbot.waitUntil(lambda: "spacegroup" in win.state.analysis, timeout=20000)
    assert win.properties.badges["novel"].text() == "n/a (no training index)"


def test_batch_novelty_column_new_only_filter_and_one_crystal_warning(make_window, qtbot):
    win = make_window(_model({"mp-22862": rocksalt(5.0)}))  # the fake decodes rock-salt NaCl
    wait_for_model(qtbot, win)
    batch = win.batch
    batch.n.setValue(5)
    batch.generate()
    qtbot.waitUntil(lambda: len(batch.rows) == 5, timeout=20000)
    column = [batch.table.item(r, 5).text() for r in range(5)]
    assert all(text == "known: mp-22862" for text in column), column
    assert "⚠ all 5 are one crystal" in batch.summary.text() and "0 new" in batch.summary.text()
    batch.new_only.setChecked(True)
    assert batch.visible_indices() == []
    batch.new_only.setChecked(False)
    assert len(batch.visible_indices()) == 5


def test_batch_samples_the_model_set_or_around_the_current_point(make_window, qtbot):
    model = FakeModelSet()
    win = fake_window_with_crystal(make_window, qtbot, model)
    sampled = model.calls.get("sample", 0)
    win.batch.n.setValue(3)
    win.batch.generate()
    qtbot.waitUntil(lambda: len(win.batch.rows) == 3, timeout=20000)
    assert model.calls.get("sample", 0) == sampled + 1 and model.calls.get("around", 0) == 0
    win.batch.around.setChecked(True)
    win.batch.rows = []
    win.batch.generate()
    qtbot.waitUntil(lambda: len(win.batch.rows) == 3, timeout=20000)
    assert model.calls.get("around", 0) == 1


def test_a_crystal_outside_the_domain_is_shown_as_itself_not_decoded(make_window, qtbot, tmp_path):
    from core.elements import Vocabulary

    model = FakeModelSet()
    model.vocab = Vocabulary(["Na", "Cl"])  # a set that knows two elements
    win = make_window(model)
    wait_for_model(qtbot, win)
    encodes = model.calls.get("encode", 0)
    win.open_gallery("KCl_rocksalt")
    assert "outside the model set's domain: element(s) K not among" in win.state.source
    assert win.properties.fields["source"].text() == win.state.source
    qtbot.wait(300)
    assert model.calls.get("encode", 0) == encodes and win.state.z is None  # no latent point claimed
    assert win.state.structure.composition.reduced_formula == "KCl"  # its true density and atoms
    # a supercell file is reduced to its conventional cell, and the app says so
    path = tmp_path / "supercell.cif"
    (rocksalt(5.64) * (2, 2, 2)).to(filename=str(path))
    assert win.open_path(path)
    assert "reduced from the file's 64-atom cell" in win.state.source and len(win.state.structure) == 8


def test_an_opened_crystal_shows_what_the_model_makes_of_it(make_window, qtbot):
    win = make_window(FakeModelSet())  # the fake decodes rock-salt NaCl (a = 5.0-5.2 Å) whatever it is given
    wait_for_model(qtbot, win)
    badge = win.properties.badges["recon"]
    win.open_gallery("NaCl_rocksalt")
    qtbot.waitUntil(lambda: badge.text().endswith("match"), timeout=20000)
    assert badge.text() == "NaCl: match"
    win.open_gallery("CsCl_cscl")
    qtbot.waitUntil(lambda: badge.text() == "NaCl: no match", timeout=20000)
    assert win.state.structure.composition.reduced_formula == "CsCl"  # the true crystal stays shown


def test_interpolation_filmstrip_lists_every_frame(make_window, qtbot, boxes):
    win = make_window(_model({"mp-22862": rocksalt(5.0)}))
    wait_for_model(qtbot, win)
    dock = win.interp
    run_interpolation(win, qtbot, "NaCl_rocksalt", "KCl_rocksalt", 4, timeout=20000)
    assert dock.strip.rowCount() == 4
    rows = [[dock.strip.item(r, c).text() for c in range(dock.strip.columnCount())] for r in range(4)]
    for r, row in enumerate(rows):
        assert row[0] == str(r + 1) and row[1] == "NaCl" and row[2].startswith("Fm-3m") and row[3] == "yes"
        assert row[4] in ("new", "known: mp-22862")
        assert row[5].startswith("formation_energy ")
    dock.strip.cellClicked.emit(2, 1)
    assert win.state.source == "interpolation 3/4"


def test_a_crystal_outside_the_domain_is_told_which_shipped_set_covers_it(make_window, qtbot):
    from core.elements import Vocabulary

    model = FakeModelSet()
    model.vocab = Vocabulary(["Na", "Cl"])
    win = make_window(model)
    wait_for_model(qtbot, win)
    win.open_gallery("C_diamond")  # carbon: the shipped carbon_24 set's domain
    assert "outside the model set's domain: element(s) C not among" in win.state.source
    assert "use the shipped model set carbon_24" in win.state.source  # the carbon-only set first
    win.open_gallery("KCl_rocksalt")  # a cubic cell of perov_5's elements: its domain
    assert "use the shipped model set perov_5 (also covering it: mp_20)" in win.state.source
