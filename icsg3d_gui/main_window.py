"""The main window: 3-D view in the centre, docks around it, menus, status bar, drag and drop."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QTabBar,
    QWidget,
)

from icsg3d_gui import dialogs, session
from icsg3d_gui.controller import Controller
from icsg3d_gui.state import AppState
from icsg3d_gui.views.batch_dock import BatchDock
from icsg3d_gui.views.display_dock import DisplayDock
from icsg3d_gui.views.gallery_dock import GalleryDock
from icsg3d_gui.views.history_dock import HistoryDock
from icsg3d_gui.views.interp_dock import InterpolationDock
from icsg3d_gui.views.latent_dock import LatentDock
from icsg3d_gui.views.latent_map_dock import LatentMapDock
from icsg3d_gui.views.properties_dock import PropertiesDock
from icsg3d_gui.views.viewer3d import Viewer3D

log = logging.getLogger(__name__)

MAX_RECENT = 10


class MainWindow(QMainWindow):
    """Composes state, controller, views; owns menus and the window lifecycle."""

    def __init__(self, models_dir: Path | None = None, device: str = "auto", loader: Any = None,
                 settings: QSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("ICSG3D Studio")
        self.settings = settings or QSettings()
        self.state = AppState(self)
        self.controller = Controller(self.state, models_dir, device, loader=loader, parent=self)
        self.viewer = Viewer3D(self.state, self)
        self.setCentralWidget(self.viewer)
        self.docks: dict[str, QDockWidget] = {}
        self.gallery = GalleryDock()
        self.display = DisplayDock(self.viewer)
        self.properties = PropertiesDock(self.state)
        self.latent = LatentDock(self.state, self.controller)
        self.interp = InterpolationDock(self.state, self.controller, self.gallery.ids())
        self.latent_map = LatentMapDock(self.state)
        self.batch = BatchDock(self.state, self.controller)
        self.history = HistoryDock(self.state, self.controller)
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        self._add_dock("Latent space", self.latent, right)
        for area, group in ((left, (("Gallery", self.gallery), ("Display", self.display), ("Latent map", self.latent_map))),
                            (right, (("Properties", self.properties), ("Interpolation", self.interp),
                                     ("Batch", self.batch), ("History", self.history)))):
            for i, (title, widget) in enumerate(group):
                self._add_dock(title, widget, area)
                if i:
                    self.tabifyDockWidget(self.docks[group[0][0]], self.docks[title])
            self.docks[group[0][0]].raise_()
        self._build_status_bar()
        self._build_menus()
        self._connect()
        self.setAcceptDrops(True)
        self.resize(1500, 900)
        geometry = self.settings.value("geometry", None)
        if geometry is not None:
            self.restoreGeometry(geometry)
        self._restore_display()
        self._closing = False
        self.interactive = True  # False for --screenshot: errors are logged, no modal boxes
        self.controller.start()

    # ---- construction --------------------------------------------------------------------
    def _add_dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title}")
        scroll = QScrollArea()  # docks scroll rather than force a tall window on small screens
        scroll.setWidget(widget)
        scroll.setWidgetResizable(True)
        if widget is self.display:  # the longest dock scrolls on small screens: room for its bar
            scroll.setMinimumWidth(widget.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        dock.setWidget(scroll)
        self.addDockWidget(area, dock)
        self.docks[title] = dock

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.model_label = QLabel("model: –")
        self.device_label = QLabel("device: CPU (no model)")
        self.timing_label = QLabel("")
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(80)
        self.busy_bar.setMaximumHeight(self.timing_label.sizeHint().height())
        # keep its place when hidden: showing/hiding it on every decode must not relayout the
        # window (a relayout resizes the 3-D view, which then renders again)
        policy = self.busy_bar.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.busy_bar.setSizePolicy(policy)
        self.busy_bar.setVisible(False)
        for w in (self.model_label, self.device_label, self.timing_label, self.busy_bar):
            bar.addPermanentWidget(w)

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        self._action(m, "&Open crystal…", self.open_dialog, QKeySequence.StandardKey.Open)
        self.recent_menu = m.addMenu("Open &recent")
        self._refresh_recent()
        m.addSeparator()
        self._action(m, "Export &CIF…", lambda: dialogs.export_cif(self), "Ctrl+E")
        self._action(m, "Export &density (CHGCAR, cube, npz, npy)…", lambda: dialogs.export_density(self))
        self._action(m, "Export &latent vector (.npy)…", lambda: dialogs.export_latent(self))
        self._action(m, "Save &image of the 3-D view…", lambda: dialogs.save_image(self), "Ctrl+P")
        m.addSeparator()
        self._action(m, "Save &session…", lambda: dialogs.save_session(self))
        self._action(m, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        e = self.menuBar().addMenu("&Edit")
        self.undo_action = self._action(e, "&Undo latent move", self.latent.undo, QKeySequence.StandardKey.Undo)
        self.redo_action = self._action(e, "&Redo latent move", self.latent.redo, QKeySequence.StandardKey.Redo)
        self._build_models_menu(self.menuBar().addMenu("&Models"))
        v = self.menuBar().addMenu("&View")
        for axis, name in enumerate("abc"):
            self._action(v, f"Along &{name}", lambda _=False, ax=axis: self.viewer.view_along(ax))
        self._action(v, "&Reset camera", self.viewer.reset_view, "Ctrl+R")
        v.addSeparator()
        self.dock_actions = [self._dock_action(v, dock) for dock in self.docks.values()]
        h = self.menuBar().addMenu("&Help")
        self._action(h, "&About", self._about)

    def _build_models_menu(self, menu) -> None:  # noqa: ANN001
        """The shipped model sets (checkable, the loaded one ticked) and "Open model-set folder…"."""
        from PySide6.QtGui import QActionGroup

        from icsg3d_gui.model_sets import shipped_model_sets

        self.model_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for name, folder in shipped_model_sets():
            action = self._action(menu, name, lambda f=folder: self.controller.switch_model_set(f))
            action.setCheckable(True)
            action.setToolTip(str(folder))
            group.addAction(action)
            self.model_actions[str(folder)] = action
        menu.addSeparator()
        self._action(menu, "Open model-set &folder…", lambda: dialogs.open_model_set(self))
        self.state.modelSetChanged.connect(self._tick_model_set)
        self._tick_model_set()

    def _tick_model_set(self) -> None:
        for folder, action in self.model_actions.items():
            action.setChecked(Path(folder).resolve() == Path(self.state.models_dir or ".").resolve())

    def _dock_action(self, menu, dock) -> QAction:  # noqa: ANN001
        """A checkable View entry that shows or hides ``dock``. Our own QAction, not
        ``dock.toggleViewAction()``: PySide6 can hand back a stale wrapper of another type for that
        Qt-owned action (CI once got a QSurface after many windows had come and gone)."""
        action = QAction(dock.windowTitle(), self)
        action.setCheckable(True)
        action.setChecked(not dock.isHidden())
        action.triggered.connect(lambda *_: dock.setVisible(action.isChecked()))
        menu.aboutToShow.connect(lambda: action.setChecked(not dock.isHidden()))  # closed by its [x] too
        menu.addAction(action)
        return action

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:  # noqa: ANN001
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda *_: slot())
        menu.addAction(action)
        return action

    def _connect(self) -> None:
        c = self.controller
        c.error.connect(self.show_error)
        c.status.connect(lambda text: self.statusBar().showMessage(text, 8000))
        c.timing.connect(self.timing_label.setText)
        c.modelStatus.connect(self._model_status)
        c.busy.connect(self.busy_bar.setVisible)
        self.gallery.chosen.connect(self.open_gallery)
        self.latent_map.chosen.connect(self.open_gallery)
        self.docks["Latent map"].visibilityChanged.connect(self.latent_map.set_shown)
        self.viewer.atomPicked.connect(lambda text: self.statusBar().showMessage(text, 20000))
        self.viewer.atomHovered.connect(lambda text: self.statusBar().showMessage(text, 5000) if text else None)
        c.galleryEncoded.connect(self.latent_map.set_gallery)
        self.properties.symprecChanged.connect(c.set_symprec)
        self.state.modelChanged.connect(self._model_changed)
        self.state.historyChanged.connect(self._history_changed)
        self.state.structureChanged.connect(self._title)
        self._history_changed()

    # ---- actions -------------------------------------------------------------------------
    def open_gallery(self, item_id: str) -> bool:
        ok = self.controller.open_gallery(item_id)
        if ok and not self.viewer.settings.lock_camera:
            self.viewer.reset_view()
        return ok

    def open_path(self, path: str | Path) -> bool:
        ok = self.controller.open_file(path)
        if ok:
            self._add_recent(str(path))
            if not self.viewer.settings.lock_camera:
                self.viewer.reset_view()
        return ok

    def open_dialog(self) -> None:
        path = dialogs.ask_open_path(self, self.settings.value("last_dir", "", type=str))
        if path:
            self.settings.setValue("last_dir", str(Path(path).parent))
            self.open_path(path)

    def show_error(self, title: str, message: str) -> None:
        """Errors never stop the app: a message box (tests patch QMessageBox) and the log."""
        log.warning("%s: %s", title, message)
        # a screenshot run keeps the reason in the picture; an interactive one also gets a box
        self.statusBar().showMessage(f"{title}: {message}", 10000 if self.interactive else 0)
        if self.interactive:
            QMessageBox.critical(self, title, message)

    def ask_yes_no(self, title: str, question: str) -> bool:
        answer = QMessageBox.question(self, title, question)
        return answer == QMessageBox.StandardButton.Yes

    # ---- recent files --------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self.settings.value("recent_files", [], type=list)
        return [str(v) for v in value]

    def _add_recent(self, path: str) -> None:
        path = str(Path(path).resolve())
        recent = [p for p in self.recent_files() if p != path]
        self.settings.setValue("recent_files", ([path] + recent)[:MAX_RECENT])
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_files()
        for path in recent:
            self._action(self.recent_menu, path, lambda p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(recent))

    # ---- drag and drop -------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: ANN001, N802 (Qt override)
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: ANN001, N802 (Qt override)
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_path(url.toLocalFile())
                break

    # ---- status --------------------------------------------------------------------------
    def _model_status(self, text: str) -> None:
        self.model_label.setText(text if len(text) < 90 else text[:87] + "…")
        self.model_label.setToolTip(text)
        self.latent.set_model_message(text)

    def _restore_display(self) -> None:
        """Display settings of the last session (layers, colour map, radii...), if readable."""
        try:
            saved = json.loads(self.settings.value("display", "{}", type=str) or "{}")
            if saved:
                session.apply(self, {"display": saved})
        except (ValueError, TypeError) as exc:
            log.info("display settings not restored: %s", exc)

    def _title(self) -> None:
        st = self.state
        what = st.structure.composition.reduced_formula if st.structure is not None else "no crystal"
        self.setWindowTitle(f"ICSG3D Studio — {what} ({st.source})" if st.source else "ICSG3D Studio")

    def _model_changed(self) -> None:
        info = self.state.model_info
        dev = info.get("device", "cpu")
        self.device_label.setText(f"device: {'GPU' if 'cuda' in dev else 'CPU'} ({dev})")

    def _history_changed(self) -> None:
        h = self.state.history
        self.undo_action.setEnabled(h.can_undo())
        self.redo_action.setEnabled(h.can_redo())

    def _about(self) -> None:
        QMessageBox.about(self, "ICSG3D Studio", "ICSG3D Studio: explore a voxel generative model of crystals "
                          "(Court et al. 2020, with fixes). Density, segmentation, atoms, latent space.")

    # ---- lifecycle -----------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: ANN001, N802 (Qt override)
        super().showEvent(event)
        self._hide_stale_tab_bars()

    def _hide_stale_tab_bars(self) -> None:
        """Qt 6.12 leaves an orphan tab bar (the first two tabs of the second tab group) visible
        over the docks when two dock areas are tabified; hide bars whose tabs are a prefix of
        another bar's (Qt never moves or shows that orphan again)."""
        bars = self.findChildren(QTabBar)
        tabs = {id(tb): [tb.tabText(i) for i in range(tb.count())] for tb in bars}
        for tb in bars:
            mine = tabs[id(tb)]
            if any(o is not tb and len(tabs[id(o)]) > len(mine) and tabs[id(o)][: len(mine)] == mine for o in bars):
                tb.hide()

    def closeEvent(self, event) -> None:  # noqa: ANN001, N802 (Qt override)
        """Stop the worker (after its current request), then release VTK; never the reverse."""
        if not self._closing:
            self._closing = True
            self.settings.setValue("geometry", self.saveGeometry())
            self.settings.setValue("display", json.dumps(dataclasses.asdict(self.viewer.settings)))
            self.hide()  # the worker may need up to one decode to finish: do not look frozen meanwhile
            self.interp.stop()
            self.controller.shutdown()
            self.viewer.close_plotter()
        super().closeEvent(event)
