"""Glue between user actions, the inference thread and ``AppState`` (no widgets, no VTK).

- Opening a crystal (gallery or file) shows its TRUE density and species grid from
  ``core.voxel`` at once, on the GUI thread (milliseconds); with a model set it is also encoded in
  the worker so that the latent sliders start from it.
- Latent moves go to the worker on the "view" channel (latest wins); results older than what is
  on screen, or older than the last opened crystal, are dropped (``LatestWins``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from core.conditions import UNKNOWN_BIN
from core.voxel import cell_matrix
from icsg3d_gui.file_opening import FileOpening
from icsg3d_gui.model_sets import model_problem, model_set_name, modelset_loader
from icsg3d_gui.state import AppState, LatentPoint
from icsg3d_gui.worker import VIEW, InferenceThread, LatestWins, Result
from resources import default_models_dir

__all__ = ["Controller", "default_models_dir", "model_problem", "modelset_loader"]  # (tests, benchmarks)

log = logging.getLogger(__name__)


class Controller(QObject, FileOpening):
    """Turns user intents into state changes and worker requests."""

    error = Signal(str, str)  # title, message (a message box)
    status = Signal(str)  # transient status-bar text
    timing = Signal(str)  # permanent status-bar timing text
    modelStatus = Signal(str)  # "no model" reason or model description
    latentBaseChanged = Signal()
    latentNotice = Signal(str)  # a note for the latent dock (e.g. a crystal the model cannot encode)  # a new base point for the sliders (state.z / state.cond)
    galleryEncoded = Signal(object)  # dict from worker.pca + z, ids
    interpolationReady = Signal(object)  # list of frames (dicts)
    batchReady = Signal(object)  # list of rows (dicts)
    busy = Signal(bool)

    def __init__(self, state: AppState, models_dir: Path | None = None, device: str = "auto",
                 loader: Callable[[], Any] | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.models_dir = Path(models_dir) if models_dir else default_models_dir()
        self.symprec = 0.1
        self.last_result_at: dict[str, float] = {}
        self.latest = LatestWins()
        self.no_model_reason: str | None = None
        self.pending_z: tuple[np.ndarray, int] | None = None  # from a session, applied on model load
        self.device = device
        self.loader_for: Callable[[Path, str], Callable[[], Any]] = modelset_loader  # (tests swap it)
        self._result_floor = 0  # results of requests below this id belong to a replaced model set
        self._reshow = None  # the crystal to voxelise again on the next model set's grid
        state.set_model_set(model_set_name(self.models_dir), str(self.models_dir))
        if loader is None:
            self.no_model_reason = model_problem(self.models_dir)
            loader = None if self.no_model_reason else modelset_loader(self.models_dir, device)
        self.worker = InferenceThread(loader)
        self.worker.resultReady.connect(self._on_result)
        self.worker.modelLoaded.connect(self._on_model_loaded)
        self.worker.modelFailed.connect(self._on_model_failed)
        self.worker.busyChanged.connect(self.busy)

    def start(self) -> None:
        self.worker.start()
        if self.no_model_reason:
            self.modelStatus.emit(self.no_model_reason)
        else:
            self.modelStatus.emit(f"Loading model set from {self.models_dir} ...")

    def switch_model_set(self, models_dir: str | Path) -> bool:
        """Load another model set in the worker thread (never this one). What is shown stays;
        its latent point, history and bookmarks belong to the old set and are cleared; a crystal
        shown with its true grid is voxelised again on the new set's grid once it has loaded."""
        models_dir = Path(models_dir)
        problem = model_problem(models_dir)
        if problem:
            self.error.emit("Cannot load model set", problem)
            return False
        self.models_dir = models_dir
        self.no_model_reason = None
        self._result_floor = self.worker.peek_next_id()  # answers of the old set are dropped
        self.latest.invalidate(VIEW, self._result_floor)
        st = self.state
        self._reshow = st.structure if st.structure is not None and st.labels is not None else None
        st.set_model_info({})  # no model while the new one loads: the latent docks disable
        st.set_model_set(model_set_name(models_dir), str(models_dir))
        self.latentBaseChanged.emit()
        self.modelStatus.emit(f"Loading model set {st.model_set_name} from {models_dir} ...")
        self.worker.reload(self.loader_for(models_dir, self.device))
        return True

    def shutdown(self) -> None:
        """Stop the worker (waits for the running request; no torch call is cut in half)."""
        self.worker.stop()

    # ---- crystals ------------------------------------------------------------------------
    def open_gallery(self, item_id: str) -> bool:
        from core.gallery import load_gallery

        try:
            structure = load_gallery(item_id)
        except Exception as exc:  # noqa: BLE001
            self.error.emit("Cannot open gallery crystal", f"{item_id}: {exc}")
            return False
        return self.show_structure(structure, f"gallery:{item_id}")

    def _show_true(self, structure, density: np.ndarray, labels: np.ndarray | None,  # noqa: ANN001
                   symbols: list[str] | None, origin: str, source: str,
                   lattice: np.ndarray | None = None) -> None:  # fmt: skip
        """Put a real crystal and a grid of it on screen (no model involved), and ask the worker
        for its analysis; anything still computing for the previous view becomes stale."""
        self.latest.invalidate(VIEW, self.worker.peek_next_id())
        st = self.state
        st.preview = False
        st.set_density(density, np.asarray(structure.lattice.matrix) if lattice is None else lattice)
        st.set_segmentation(None, origin="segmentation: waiting for the model set", true_labels=labels,
                            true_symbols=symbols)  # fmt: skip
        st.set_structure(structure, source)
        self._analyse(structure, {})
        st.set_latent(None)
        self._segment_shown()

    def _segment_shown(self) -> None:
        """Ask the worker for the U-Net's segmentation of the true grid on screen (the blob view)."""
        st = self.state
        if st.model_info.get("loaded") and st.density is not None and st.lattice is not None:
            payload = {"density": st.density, "lattice": st.lattice, "token": self._token(st.structure)}
            self.worker.submit("segment", payload, channel="segment")

    def _show_segment(self, v: dict) -> None:
        st = self.state
        if st.structure is None or self._token(st.structure) != v.get("token"):
            return  # another crystal is shown now (a decoded one brings its segmentation along)
        origin = f"{v['method']} segmentation" if v["labels"] is not None else f"no segmentation: {v['error']}"
        st.set_segmentation(v["labels"], st.model_info.get("vocab"), origin=origin, blobs=v["blobs"],
                            true_labels=st.true_labels, true_symbols=st.true_symbols)  # fmt: skip

    def show_structure(self, structure, source: str, encode: bool = True) -> bool:  # noqa: ANN001
        """Show a real crystal with its true density and species grid (no model needed)."""
        from core.elements import Vocabulary
        from core.voxel import VoxelConfig, Voxeliser

        cfg = self.state.model_info.get("voxel_cfg") or VoxelConfig()
        try:
            vocab = Vocabulary.from_structures([structure])
            sample = Voxeliser(cfg, vocab)(structure)
        except Exception as exc:  # noqa: BLE001
            self.error.emit("Cannot show crystal", f"{source}: {exc}")
            return False
        problem = self._domain_problem(structure)
        if problem:  # the true density is shown; no decode passes for the crystal (no latent point)
            source = f"{source} — outside the model set's domain: {problem}"
        self._show_true(structure, sample.density, sample.labels, [""] + list(vocab.symbols),
                        "true species of the crystal (not a model's segmentation)", source)  # fmt: skip
        st = self.state
        if problem:
            self.latentNotice.emit(f"Not encoded: {problem}")
        elif encode and st.has_model:
            self.worker.submit("encode", {"structures": [structure], "cond": None}, channel="encode")
            self._predict(structure)
            self._recheck(structure)
        self.status.emit(f"Showing {structure.composition.reduced_formula} ({st.source})")
        return True

    def _domain_problem(self, structure) -> str | None:  # noqa: ANN001
        """Why the loaded model set cannot speak for this crystal (core/domain.py) and which shipped
        set can (core/model_sets.py), or None."""
        info = self.state.model_info
        if not self.state.has_model or not info.get("vocab") or info.get("voxel_cfg") is None:
            return None
        from core.domain import domain_problem
        from core.elements import Vocabulary
        from core.model_sets import domain_advice

        vocab = Vocabulary([s for s in info["vocab"] if s])
        problem = domain_problem(structure, vocab, info["voxel_cfg"], info.get("domain_lattice", "any"))
        return f"{problem}; {domain_advice(structure, loaded=self.models_dir)}" if problem else None

    def set_symprec(self, symprec: float) -> None:
        self.symprec = float(symprec)
        if self.state.structure is not None:
            self._analyse(self.state.structure, self.state.properties)

    def _analyse(self, structure, properties: dict) -> None:  # noqa: ANN001
        """Space group, validity and novelty are computed in the worker (spglib, smact and the
        StructureMatcher must not stall the GUI); the dock shows the formula until they arrive."""
        self.state.set_properties(properties, {"formula": structure.composition.reduced_formula, "pending": True})
        payload = {"structure": structure, "symprec": self.symprec, "token": self._token(structure)}
        self.worker.submit("analyse", payload, channel="analyse")

    # ---- latent requests -----------------------------------------------------------------
    def request_latent(self, z: np.ndarray, cond: int, full: bool = False, notify: bool = False) -> int:
        """Decode ``z`` (L,): density only while dragging, everything when ``full``. ``notify``: a
        failed segmentation gets a message box (discrete actions; slider moves only get the
        status bar and the Properties dock, a box per drag would be unbearable)."""
        payload = {"z": np.asarray(z, np.float32), "cond": cond, "notify": notify}
        return self.worker.submit("full" if full else "decode", payload)

    def set_base(self, z: np.ndarray, cond: int, decode: bool = True, record: bool = True) -> None:
        """Make ``z`` the sliders' base point (random sample, undo, bookmark, map click)."""
        self.state.set_latent(z, cond)
        if record:
            self.state.record()
        self.latentBaseChanged.emit()
        if decode:
            self.request_latent(z, cond, full=True, notify=True)

    def goto_history(self, index: int) -> None:
        """Go back (or forward) to history entry ``index`` without recording a new entry."""
        self._revisit(self.state.goto(index))

    def undo(self) -> None:
        self._revisit(self.state.undo())

    def redo(self) -> None:
        self._revisit(self.state.redo())

    def _revisit(self, point: LatentPoint | None) -> None:
        """Show a point of the history again (it stays where it is in the history)."""
        if point is not None:
            self.set_base(point.z, point.cond, record=False)

    def goto_bookmark(self, index: int) -> None:
        if 0 <= index < len(self.state.bookmarks):
            point = self.state.bookmarks[index]
            self.set_base(point.z, point.cond)

    def random_point(self, seed: int, temperature: float, cond: int) -> int:
        """Ask the worker for a sample of the model's latent prior; it becomes the base point."""
        payload = {"seed": int(seed), "temperature": float(temperature), "cond": int(cond)}
        return self.worker.submit("sample", payload, channel="sample")

    def interpolate(self, za: np.ndarray, zb: np.ndarray, steps: int, method: str, cond: int) -> int:
        payload = {"za": za, "zb": zb, "steps": steps, "method": method, "cond": cond}
        return self.worker.submit("interpolate", payload, channel="interpolate")

    def batch(self, z: np.ndarray | None, n: int, temperature: float, seed: int, cond: int, around: bool = False) -> int:
        payload = {"z": z, "n": n, "temperature": temperature, "seed": seed, "cond": cond, "around": around}
        return self.worker.submit("batch", payload, channel="batch")

    def encode_gallery(self, n_components: int = 8) -> None:
        self.worker.submit("gallery", {"n_components": n_components}, channel="gallery")

    # ---- worker callbacks (GUI thread) ---------------------------------------------------
    def _on_model_loaded(self, info: dict) -> None:
        self.state.set_model_info(info)  # voxel_cfg included: the GUI thread never touches the model
        self.modelStatus.emit(f"Model set: {self.state.model_set_name or self.models_dir} "
                              f"(latent {info['latent_dim']}, {info['device']}, load {info['load_ms']:.0f} ms)")
        self.encode_gallery()
        reshow, self._reshow = self._reshow, None
        if reshow is not None and reshow is self.state.structure:  # after a model-set change
            self.show_structure(reshow, self.state.source.split(" — outside the model set's domain")[0])
        elif self.pending_z is not None:
            z, cond = self.pending_z
            self.pending_z = None
            self.set_base(z, cond)
        elif self.state.structure is not None and self.state.z is None:
            # the crystal opened while the models loaded: place it in the latent space and predict
            # it, if the set can speak for it; otherwise say why beside it
            self._segment_shown()
            problem = self._domain_problem(self.state.structure)
            if problem:
                self.state.set_structure(self.state.structure,
                                         f"{self.state.source} — outside the model set's domain: {problem}")  # fmt: skip
                self._analyse(self.state.structure, {})
                self.latentNotice.emit(f"Not encoded: {problem}")
            else:
                self.worker.submit("encode", {"structures": [self.state.structure], "cond": None}, channel="encode")
                self._predict(self.state.structure)
                self._recheck(self.state.structure)

    def _on_model_failed(self, reason: str) -> None:
        self.no_model_reason = f"Model set failed to load from {self.models_dir}: {reason}"
        self.modelStatus.emit(self.no_model_reason)
        self.error.emit("Model load failure", self.no_model_reason + "\nThe app keeps running without models.")

    def _on_result(self, result: Result) -> None:
        if result.error and result.id >= self._result_floor:
            if result.kind == "analyse":
                log.warning("analysis failed: %s", result.error)
                self.state.set_properties(self.state.properties, {"error": result.error})
                return
            if result.kind == "encode":  # e.g. an element outside the model's vocabulary
                self.latentNotice.emit(f"This crystal cannot be placed in the latent space: {result.error}")
            elif result.kind != "decode":  # a live decode failing is shown in the status bar only
                self.error.emit(f"{result.kind} failed", result.error)
            self.status.emit(f"{result.kind} failed: {result.error}")
            return
        if result.id < self._result_floor or (result.channel == VIEW and not self.latest.accept(result)):
            return
        total = (time.perf_counter() - result.submitted) * 1e3
        self.last_result_at[result.kind] = time.perf_counter()
        self.timing.emit(f"{result.kind}: {result.compute_ms:.0f} ms compute, {total:.0f} ms total")
        handler = getattr(self, f"_show_{result.kind}", None)
        if handler is not None:
            handler(result.value)

    def _show_decode(self, v: dict) -> None:
        self.state.preview = True  # a live slider decode: coarser volume sampling until it settles
        self.state.latent_property = v.get("latent_property")
        self.state.set_density(v["density"], cell_matrix(v["abc"]))
        self.state.set_latent(v["z"], v["cond"])

    def _show_full(self, v: dict) -> None:
        self.show_decoded(v, source="decoded")
        s = v.get("structure")
        if s is None and v.get("notify"):
            self.error.emit("Segmentation failed", f"No crystal recovered from this latent point: {v.get('error')}")
        self.state.record(s.composition.reduced_formula if s is not None else "no crystal")

    def show_frame(self, v: dict, source: str) -> None:
        """Show a stored frame (interpolation, batch row): in-flight slider results become stale.
        A frame of a model set used before the current one is shown without its latent point
        (it means nothing in the current set's latent space)."""
        self.latest.invalidate(VIEW, self.worker.peek_next_id())
        if v.get("model_set", self.state.models_dir) != self.state.models_dir:
            v, source = {**v, "z": None}, f"{source} (model set {Path(v['model_set']).name})"
        self.show_decoded(v, source)

    def show_decoded(self, v: dict, source: str) -> None:
        """Show a decoded frame/row (density, segmentation, crystal, properties)."""
        st = self.state
        st.preview = False
        abc = v.get("abc")
        lattice = cell_matrix(abc) if abc is not None else None
        st.set_density(v["density"], lattice)
        origin = "U-Net segmentation" if v.get("blobs") else "the decoder's species segmentation"
        st.set_segmentation(v.get("labels"), st.model_info.get("vocab"), origin=origin, blobs=v.get("blobs"),
                            disagreements=v.get("disagreements"))  # fmt: skip
        st.set_structure(v.get("structure"), source)
        if v.get("structure") is not None:
            self._analyse(v["structure"], v.get("properties", {}))
        else:
            st.set_properties({}, {"error": v.get("error") or "segmentation gave no crystal"})
            self.status.emit(f"No crystal recovered: {v.get('error')}")
        st.latent_property = v.get("latent_property")
        st.set_latent(v.get("z"), v.get("cond"))

    def _show_sample(self, v: dict) -> None:
        self.set_base(v["z"], v["cond"])

    def _show_encode(self, z: np.ndarray) -> None:
        self.state.set_latent(np.asarray(z)[0], UNKNOWN_BIN)  # an opened crystal: property left open
        self.state.record(self.state.source)
        self.latentBaseChanged.emit()

    def _show_analyse(self, info: dict) -> None:
        st = self.state
        if st.structure is not None and self._token(st.structure) == info.get("token"):
            keep = {"reconstruction": st.analysis["reconstruction"]} if "reconstruction" in st.analysis else {}
            st.set_properties(st.properties, {**info, **keep})

    def _token(self, structure) -> int | None:  # noqa: ANN001
        """The serial of ``structure`` if it is the one shown (answers about others are stale)."""
        return self.state.structure_serial if structure is self.state.structure else None

    def _predict(self, structure) -> None:  # noqa: ANN001
        """CGCNN for an opened crystal; the answer is kept only if that crystal is still shown."""
        payload = {"structures": [structure], "token": self._token(structure)}
        self.worker.submit("predict", payload, channel="predict")

    def _recheck(self, structure) -> None:  # noqa: ANN001
        """Ask the worker what the model makes of the opened crystal (shown beside it)."""
        self.worker.submit("recheck", {"structure": structure, "token": self._token(structure)}, channel="recheck")

    def _show_recheck(self, v: dict) -> None:
        st = self.state
        if st.structure is not None and self._token(st.structure) == v.get("token"):
            st.set_properties(st.properties, {**st.analysis, "reconstruction": v})

    def _show_predict(self, v: dict) -> None:
        st = self.state
        if v["rows"] and st.structure is not None and self._token(st.structure) == v.get("token"):
            st.set_properties(v["rows"][0], None)

    def _show_gallery(self, v: dict) -> None:
        self.galleryEncoded.emit(v)

    def _show_interpolate(self, frames: list[dict]) -> None:
        self.interpolationReady.emit([{**f, "model_set": self.state.models_dir} for f in frames])

    def _show_batch(self, rows: list[dict]) -> None:
        self.batchReady.emit([{**r, "model_set": self.state.models_dir} for r in rows])
