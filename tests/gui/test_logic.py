"""Logic under the app that needs no 3-D view: worker coalescing, state history, scene geometry,
exports, and the rule that core/ never imports GUI packages."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure

from icsg3d_gui.handlers import _latent_basis, pca
from icsg3d_gui.state import History, LatentPoint
from icsg3d_gui.views import scene
from icsg3d_gui.worker import VIEW, InferenceThread, LatestWins, Result
from tests.gui.fakes import FakeModelSet, rocksalt

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("PySide6", "pyvista", "pyvistaqt", "matplotlib", "icsg3d_gui", "PyQt5", "PyQt6", "qtpy")


def nacl(a: float = 5.64) -> Structure:
    return rocksalt(a)


# ---- architecture rule -----------------------------------------------------------------------
def test_core_never_imports_gui_packages():
    offenders = []
    files = sorted((ROOT / "core").rglob("*.py"))
    assert files, "core/ has no Python files?"
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


# ---- worker ------------------------------------------------------------------------------------
def _run_worker(qtbot, model, submit_fn, n_expected_results: int | None = None):  # noqa: ANN001, ANN202
    results: list[Result] = []
    thread = InferenceThread(lambda: model)
    thread.resultReady.connect(results.append)
    loaded = []
    thread.modelLoaded.connect(loaded.append)
    thread.start()
    try:
        qtbot.waitUntil(lambda: bool(loaded), timeout=5000)
        submit_fn(thread)
        qtbot.waitUntil(thread.idle, timeout=10000)
        qtbot.wait(20)  # queued resultReady signals land
    finally:
        thread.stop()
    return thread, results


def test_flood_of_requests_runs_few_decodes_and_the_last_one_wins(qtbot):
    model = FakeModelSet(delay=0.02)
    zs = [np.full(16, i / 1000, np.float32) for i in range(1000)]

    def flood(thread: InferenceThread) -> None:
        for z in zs:
            thread.submit("decode", {"z": z, "cond": 0})

    thread, results = _run_worker(qtbot, model, flood)
    ran = model.calls["decode_density"]
    assert thread.n_submitted == 1000
    assert ran == thread.n_executed
    assert ran < 50, f"{ran} decodes ran for 1000 coalesced requests"
    assert thread.n_dropped == 1000 - ran
    # the newest request always runs: the last decoded z is the last submitted one
    np.testing.assert_array_equal(model.decoded_z[-1], zs[-1])
    assert results[-1].id == 1000


def test_errors_come_back_and_the_next_request_still_works(qtbot):
    model = FakeModelSet()

    def submit(thread: InferenceThread) -> None:
        thread.submit("decode", {"z": np.zeros(3), "cond": 0}, channel="a")
        thread.submit("nonsense", {}, channel="b")
        thread.submit("decode", {"cond": 0}, channel="c")  # missing z -> KeyError

    def later(thread: InferenceThread) -> None:
        submit(thread)
        qtbot.waitUntil(thread.idle, timeout=5000)
        thread.submit("decode", {"z": np.ones(16), "cond": 0})

    _, results = _run_worker(qtbot, model, later)
    errors = [r for r in results if r.error]
    assert {r.kind for r in errors} == {"nonsense", "decode"}
    assert results[-1].error is None and results[-1].value["density"].shape == (12, 12, 12)


def test_view_channel_is_served_before_long_jobs(qtbot):
    model = FakeModelSet(delay=0.05)
    order: list[str] = []

    def submit(thread: InferenceThread) -> None:
        thread.resultReady.connect(lambda r: order.append(r.channel))
        thread.submit("decode", {"z": np.zeros(16), "cond": 0})  # starts at once
        time.sleep(0.01)
        thread.submit("batch", {"z": np.zeros(16), "n": 2, "temperature": 1.0, "seed": 0, "cond": 0}, channel="batch")
        thread.submit("decode", {"z": np.ones(16), "cond": 0})

    _run_worker(qtbot, model, submit)
    assert order == [VIEW, VIEW, "batch"]


def test_model_load_failure_is_reported(qtbot):
    def bad_loader():  # noqa: ANN202
        raise RuntimeError("checkpoint vae/model.safetensors: truncated")

    thread = InferenceThread(bad_loader)
    with qtbot.waitSignal(thread.modelFailed, timeout=5000) as blocker:
        thread.start()
    assert "truncated" in blocker.args[0]
    got = []
    thread.resultReady.connect(got.append)
    thread.submit("decode", {"z": np.zeros(4), "cond": 0})
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    thread.stop()
    assert got[0].error == "no model set is loaded"


def test_stop_waits_for_the_running_request(qtbot):
    model = FakeModelSet(delay=0.3)
    thread = InferenceThread(lambda: model)
    thread.start()
    thread.submit("decode", {"z": np.zeros(16), "cond": 0})
    # the model call has started (it is counted on entry, then sleeps 0.3 s)
    qtbot.waitUntil(lambda: model.calls.get("decode", 0) + model.calls.get("decode_density", 0) == 1, timeout=5000)
    assert model.decoded_z == []  # ... and has not finished
    thread.stop()
    # stop() returned only after the running decode had finished: no torch call cut in half
    assert not thread.isRunning()
    assert len(model.decoded_z) == 1


def test_latest_wins_drops_results_older_than_shown_or_invalidated():
    lw = LatestWins()
    assert lw.accept(Result(3, "decode", VIEW))
    assert not lw.accept(Result(2, "decode", VIEW))  # older than what is on screen
    lw.invalidate(VIEW, 10)  # a file was opened; requests < 10 are stale
    assert not lw.accept(Result(5, "full", VIEW))
    assert lw.accept(Result(10, "full", VIEW))
    assert lw.accept(Result(1, "gallery", "gallery"))  # channels are independent


def test_pca_directions_are_orthonormal_and_ordered():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((40, 12)) * np.r_[10.0, np.linspace(2, 0.1, 11)]
    out = pca(z, 4)
    comps = out["components"]
    np.testing.assert_allclose(comps @ comps.T, np.eye(4), atol=1e-8)
    assert np.all(np.diff(out["scales"]) <= 0)
    assert out["xy"].shape == (40, 2)
    assert abs(comps[0, 0]) > 0.9  # the axis with the largest spread


# ---- state -----------------------------------------------------------------------------------
def test_sliders_follow_the_training_crystals_when_the_gallery_is_mostly_outside_the_set():
    """carbon_24 encodes one gallery crystal (diamond): its sliders come from its prior's means."""

    class Prior:
        means = np.random.default_rng(0).standard_normal((500, 6)) * np.array([5.0, 3.0, 1.0, 0.5, 0.2, 0.1])

    class Model:
        prior = Prior()

    one = np.zeros((1, 6))
    basis = _latent_basis(Model(), one, 3)
    assert basis["components"].shape == (3, 6) and np.all(basis["scales"] > 0.5)
    assert abs(basis["components"][0, 0]) > 0.99  # the widest direction of the training latents
    assert basis["xy"].shape == (1, 2) and basis["source"] == "training crystals"
    many = np.random.default_rng(1).standard_normal((20, 6))
    np.testing.assert_allclose(_latent_basis(Model(), many, 3)["components"], pca(many, 3)["components"])


def test_history_undo_redo_and_branching():
    h = History()
    for i in range(3):
        h.push(LatentPoint(np.full(2, i, np.float32), 0))
    h.push(LatentPoint(np.full(2, 2, np.float32), 0))  # duplicate of current: ignored
    assert len(h.items) == 3 and h.can_undo() and not h.can_redo()
    assert h.undo().z[0] == 1 and h.undo().z[0] == 0 and h.undo() is None
    assert h.redo().z[0] == 1
    h.push(LatentPoint(np.full(2, 9, np.float32), 0))  # new branch drops the redo tail
    assert [p.z[0] for p in h.items] == [0, 1, 9] and not h.can_redo()


# ---- scene geometry --------------------------------------------------------------------------
def test_display_atoms_adds_boundary_images():
    s = nacl()
    frac, symbols = scene.frac_and_symbols(s)
    cart, shown = scene.display_atoms(frac, symbols, s.lattice.matrix)
    assert shown.count("Na") == 14 and shown.count("Cl") == 13  # 8 corners + 6 faces; 1 + 12 edges
    assert cart.min() >= -1e-6 and cart.max() <= 5.64 + 1e-6
    _, shown2 = scene.display_atoms(frac, symbols, s.lattice.matrix, repeat=(2, 1, 1))
    assert len(shown2) == 2 * 27 - 9  # the shared face is counted once


def test_bonds_are_cation_anion_in_ionic_crystals():
    s = Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
                  [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    frac, symbols = scene.frac_and_symbols(s)
    cart, shown = scene.display_atoms(frac, symbols, s.lattice.matrix)
    pairs = scene.bond_pairs(cart, shown, tolerance=1.1)
    kinds = {tuple(sorted((shown[i], shown[j]))) for i, j in pairs}
    assert ("O", "Ti") in kinds
    assert ("Sr", "Sr") not in kinds and ("Sr", "Ti") not in kinds
    ti = shown.index("Ti")
    assert sum(ti in p for p in pairs.tolist()) == 6  # the TiO6 octahedron


def test_density_mesh_follows_the_lattice():
    rho = np.random.default_rng(0).random((8, 8, 8)).astype(np.float32)
    grid = scene.density_mesh(rho, np.diag([4.0, 5.0, 6.0]), name="rho")
    assert grid.dimensions == (9, 9, 9)
    np.testing.assert_allclose(grid.spacing, (0.5, 0.625, 0.75))
    np.testing.assert_allclose(np.asarray(grid.bounds), [0, 4, 0, 5, 0, 6])
    # point (i, j, k) holds rho[i, j, k]; the closing layer repeats layer 0 (periodic)
    vals = grid.point_data["rho"].reshape(9, 9, 9, order="F")
    np.testing.assert_array_equal(vals[:8, :8, :8], rho)
    np.testing.assert_array_equal(vals[8], vals[0])
    hexagonal = Lattice.hexagonal(4.0, 6.0).matrix
    sgrid = scene.density_mesh(rho, hexagonal, name="rho")
    np.testing.assert_allclose(sgrid.points[-1], hexagonal.sum(axis=0), atol=1e-9)


def test_cell_mesh_and_label_blobs():
    assert scene.cell_mesh(np.eye(3) * 4, (2, 2, 1)).n_lines == 4 * 12
    labels = np.zeros((10, 10, 10), np.int64)
    labels[0:3, 0:3, 0:3] = 1
    labels[5:8, 5:8, 5:8] = 2
    blobs = scene.label_blobs(labels, np.eye(3) * 5, ["", "Na", "Cl"])
    assert blobs is not None and blobs.n_points > 0
    colours = {tuple(c) for c in blobs.point_data["rgb"]}
    assert len(colours) == 2


def test_pyside_keeps_reference_counts(qapp):
    """PySide6 6.12.0 wheels on Python 3.11 lose a reference to None on every void Qt call and to
    True on every signal emit: a long session then dies with 'deallocating None'. Pinned <6.12."""
    import sys

    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QLabel

    class Emitter(QObject):
        fired = Signal(float)

    label, emitter = QLabel(), Emitter()
    emitter.fired.connect(lambda _v: None)
    none0, true0 = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(2000):
        label.setText("x")
        emitter.fired.emit(1.0)
    assert sys.getrefcount(None) - none0 > -100
    assert sys.getrefcount(True) - true0 > -100


def test_badges_say_what_they_check():
    from pymatgen.core import Lattice, Structure

    from icsg3d_gui.analysis import COVALENT_OVERLAP, analyse

    frac = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    srtio3 = analyse(Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"], frac))
    assert srtio3["oxidation_states"] == "Sr2+ Ti4+ O2-" and srtio3["oxidation_ok"] is True
    assert srtio3["closest"]["pair"] in ("Ti–O", "O–Ti") and srtio3["closest"]["ratio"] > COVALENT_OVERLAP
    tio3 = analyse(Structure(Lattice.cubic(3.9), ["Ti", "O", "O", "O"], frac[1:]))
    assert tio3["oxidation_ok"] is False and tio3["oxidation_states"] == "no charge-neutral oxidation states"
    alloy = analyse(Structure(Lattice.cubic(3.0), ["Cu", "Mn"], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    assert alloy["oxidation_ok"] is None and alloy["oxidation_states"].startswith("n/a")
    # 0.725 Å between two lead atoms passes the 0.5 Å rule but not the covalent radii
    lead = analyse(Structure(Lattice.cubic(5.0), ["Pb", "Pb"], [[0, 0, 0], [0.145, 0, 0]]))
    assert lead["struct_valid"] and lead["closest"]["ratio"] < COVALENT_OVERLAP


def test_element_colours_are_pymatgens_jmol_and_vesta_tables():
    from icsg3d_gui.colors import FALLBACK_RGB, element_rgb

    assert element_rgb("O", "VESTA") == (254 / 255, 3 / 255, 0.0)
    assert element_rgb("O", "Jmol") == (1.0, 13 / 255, 13 / 255)
    assert element_rgb("Sr", "no such scheme") == element_rgb("Sr", "VESTA")
    assert element_rgb("Xx") == tuple(v / 255 for v in FALLBACK_RGB)


def test_fake_model_set_satisfies_the_model_set_protocol():
    """The GUI tests drive the same handler code as the real app: the stand-in has the real interface."""
    from core.protocols import DecodedLike, ModelSetLike
    from tests.gui.fakes import FakeModelSet

    model = FakeModelSet()
    assert isinstance(model, ModelSetLike)
    decoded = model.decode(model.sample(2), [10, 10])
    assert all(isinstance(d, DecodedLike) for d in decoded) and decoded[0].properties
