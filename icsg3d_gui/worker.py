"""The inference thread: one QThread owns the model set; latest-wins request coalescing.

Requests carry increasing ids and a *channel*. Each channel holds at most one pending request:
submitting a new one replaces (drops) the older pending one, so while the thread is busy with a
decode, a flood of slider events collapses into the single newest request. The thread serves the
"view" channel (slider decodes) before the other channels so that sliders stay live while an
interpolation or batch job waits. Results go back through ``resultReady`` (a queued signal: the
GUI thread receives numpy arrays and Structures, never touches torch); errors come back as a
Result with ``error`` set and the thread keeps serving the next request.

Kinds (payload keys -> Result.value):
- decode  (z (L,), cond)                -> {density (D,D,D), abc (3,), z, cond}            fast path
- full    (z, cond)                     -> {density, labels, abc, structure|None, error, properties, z, cond}
- encode  (structures, cond)            -> z (B, L)
- gallery (n_components)                -> {z (B,L), mean (L,), components (K,L), scales (K,), xy (B,2),
                                            ids, formulas, density, n_elements}  (the shipped gallery)
- interpolate (za, zb: z (L,) or Structure, steps, method, cond) -> list of full-like frames
- batch   (z, n, temperature, seed, cond) -> list of full-like rows
- predict (structures, token)           -> {rows: list of property dicts, token}
- analyse (structure, symprec, token)   -> analysis.analyse(...) + token   (needs no model)

``reload(loader)`` replaces the model set: pending requests are dropped and the thread loads the
new set (in this thread, never the GUI's) before it serves anything else; ``modelLoaded`` or
``modelFailed`` follows as at start.

The thread also warms up what the first crystal needs (smact, the gallery references for the
novelty badge) right after loading the model set, so the GUI thread never imports or loads them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QThread, Signal

from core.protocols import ModelSetLike
from icsg3d_gui.handlers import HANDLERS, gallery_index

log = logging.getLogger(__name__)

#: the channel served first (interactive slider decodes)
VIEW = "view"
#: request kinds that run without a model set
MODEL_FREE = frozenset({"analyse"})


@dataclass
class Request:
    id: int
    kind: str
    channel: str
    payload: dict
    submitted: float = field(default_factory=time.perf_counter)


@dataclass
class Result:
    id: int
    kind: str
    channel: str
    value: Any = None
    error: str | None = None
    compute_ms: float = 0.0
    submitted: float = 0.0


def torch_threads() -> int:
    """Threads for torch: leave one core to the GUI/render thread, at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


class InferenceThread(QThread):
    """Owns the model set (created by ``loader`` inside this thread) and serves requests."""

    resultReady = Signal(object)  # Result
    modelLoaded = Signal(object)  # dict: info about the model set
    modelFailed = Signal(str)  # reason, shown in the status bar and the latent dock
    busyChanged = Signal(bool)

    def __init__(self, loader: Callable[[], Any] | None, parent=None) -> None:  # noqa: ANN001
        super().__init__(parent)
        self._loader = loader
        self._cond = threading.Condition()
        self._pending: dict[str, Request] = {}
        self._stopping = False
        self._busy = False
        self._next_id = 0
        self._reload: Callable[[], Any] | None = None  # a model set to load before the next request
        self.model: Any = None
        # counters for tests, benchmarks and the status bar
        self.n_submitted = 0
        self.n_executed = 0
        self.n_dropped = 0

    # ---- GUI-thread API ------------------------------------------------------------------
    def submit(self, kind: str, payload: dict, channel: str = VIEW) -> int:
        """Queue a request (replacing the pending one of the same channel); returns its id."""
        with self._cond:
            self._next_id += 1
            req = Request(self._next_id, kind, channel, payload)
            if channel in self._pending:
                self.n_dropped += 1
            self._pending[channel] = req
            self.n_submitted += 1
            self._cond.notify()
        return req.id

    def peek_next_id(self) -> int:
        """The id the next submitted request will get (results below it are older)."""
        with self._cond:
            return self._next_id + 1

    def reload(self, loader: Callable[[], Any]) -> None:
        """Load another model set in this thread; pending requests (for the old set) are dropped."""
        with self._cond:
            self.n_dropped += len(self._pending)
            self._pending.clear()
            self._reload = loader
            self._cond.notify()

    def stop(self) -> None:
        """Ask the thread to finish after the current request and wait for it (clean close)."""
        with self._cond:
            self._stopping = True
            self._pending.clear()
            self._cond.notify_all()
        if self.isRunning():
            self.wait()

    def idle(self) -> bool:
        """No request running or pending (screenshots and benchmarks wait for this)."""
        with self._cond:
            return not self._busy and not self._pending and self._reload is None

    # ---- thread side ---------------------------------------------------------------------
    def run(self) -> None:  # noqa: D102 (QThread entry point)
        self._load()
        while True:
            with self._cond:
                while not self._pending and self._reload is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    break
                loader, self._reload = self._reload, None
                req = self._take() if loader is None else None
                self._busy = True
            self.busyChanged.emit(True)
            if req is None:
                self.model = None  # the old set goes before the new one loads (memory)
                self._loader = loader
                self._load()
                with self._cond:
                    self._busy = False
                self.busyChanged.emit(False)
                continue
            result = self._execute(req)
            if not self._stopping:
                self.resultReady.emit(result)
            with self._cond:
                self._busy = False
            self.busyChanged.emit(False)
        self.model = None

    def _take(self) -> Request:
        if VIEW in self._pending:
            return self._pending.pop(VIEW)
        channel = min(self._pending, key=lambda c: self._pending[c].id)
        return self._pending.pop(channel)

    def _load(self) -> None:
        try:
            import torch

            torch.set_num_threads(torch_threads())
        except ImportError:  # the fake models of the tests need no torch
            pass
        if self._loader is not None:
            try:
                t0 = time.perf_counter()
                self.model = self._loader()
                info = model_info(self.model)
                info["load_ms"] = (time.perf_counter() - t0) * 1e3
                self.modelLoaded.emit(info)
            except Exception as exc:  # noqa: BLE001 (any loader failure becomes a message, not a crash)
                log.warning("model set failed to load: %s", exc)
                self.model = None
                self.modelFailed.emit(str(exc))
        self._warm_up()

    def _warm_up(self) -> None:
        try:
            import smact.screening  # noqa: F401

            import core.metrics.validity  # noqa: F401  (slow first import: matminer, smact)

            gallery_index()  # the gallery crystals, parsed and indexed for "matches <id>"
            _ = self.model.known  # the training index (~1 s to read): before the first badge asks
        except Exception as exc:  # noqa: BLE001 (warm-up is an optimisation only)
            log.info("warm-up incomplete: %s", exc)

    def _execute(self, req: Request) -> Result:
        t0 = time.perf_counter()
        result = Result(req.id, req.kind, req.channel, submitted=req.submitted)
        try:
            if self.model is None and req.kind not in MODEL_FREE:
                raise RuntimeError("no model set is loaded")
            handler = HANDLERS[req.kind]
            result.value = _inference(lambda: handler(self.model, req.payload, lambda: self._stopping))
        except Exception as exc:  # noqa: BLE001 (reported to the GUI; the thread keeps serving)
            log.warning("request %s (%s) failed: %s", req.id, req.kind, exc)
            result.error = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
        result.compute_ms = (time.perf_counter() - t0) * 1e3
        with self._cond:
            self.n_executed += 1
        return result


def _inference(fn: Callable[[], Any]) -> Any:
    try:
        import torch
    except ImportError:
        return fn()
    with torch.inference_mode():
        return fn()


def model_info(model: ModelSetLike) -> dict:
    """What the status bar and the docks need to know about a loaded model set."""
    return {
        "loaded": True,
        "latent_dim": int(model.latent_dim),
        "n_conditions": int(model.n_conditions),
        "device": str(model.device),
        "name": str(model.source or "model set"),
        "vocab": [""] + list(model.vocab.symbols),
        "properties": list(model.property_names),
        "prop_name": model.prop_name,  # the conditioning property (decile bins)
        "prop_edges": list(model.prop_edges or []),
        "voxel_cfg": model.voxel_cfg,
        "domain_lattice": str(model.domain_lattice),
        "temperature": float(getattr(model, "temperature", 1.0)),  # the set's chosen prior spread
    }


class LatestWins:
    """GUI-side filter: show a result only if nothing newer of its channel was shown already.

    ``invalidate(next_id)`` makes every result with a smaller id stale (e.g. the user opened a file,
    so a decode still in flight must not replace it).
    """

    def __init__(self) -> None:
        self._floor: dict[str, int] = {}

    def accept(self, result: Result) -> bool:
        if result.id < self._floor.get(result.channel, 0):
            return False
        self._floor[result.channel] = result.id + 1
        return True

    def invalidate(self, channel: str, next_id: int) -> None:
        self._floor[channel] = max(self._floor.get(channel, 0), next_id)
