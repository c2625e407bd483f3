"""Which folders the Models menu lists (no display needed)."""

from __future__ import annotations

from icsg3d_gui.model_sets import SHIPPED_NAME, is_model_set, model_set_name, shipped_model_sets


def _model_set(folder):  # noqa: ANN001, ANN202
    (folder / "vae").mkdir(parents=True)
    (folder / "vae" / "meta.json").write_text("{}")
    return folder


def test_the_sub_folder_sets_are_listed_the_default_first(tmp_path):
    root = tmp_path / "models"
    _model_set(root / "aaa")
    _model_set(root / SHIPPED_NAME)
    _model_set(root / "mp20")
    (root / "notes").mkdir()  # no vae/meta.json: not a set
    assert [name for name, _ in shipped_model_sets(root)] == [SHIPPED_NAME, "aaa", "mp20"]
    assert not is_model_set(root / "notes")
    assert model_set_name(root / "mp20") == "mp20"


def test_the_shipped_set_is_perov_5():
    sets = shipped_model_sets()
    assert sets and sets[0][0] == "perov_5" and model_set_name(sets[0][1]) == "perov_5"
