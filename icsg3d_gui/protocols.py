"""What the dialogs and the session code may use of the main window: a Protocol, so that they
depend on this small surface and not on ``main_window`` (which imports them)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from PySide6.QtCore import QSettings

    from icsg3d_gui.controller import Controller
    from icsg3d_gui.state import AppState
    from icsg3d_gui.views.viewer3d import Viewer3D


class Window(Protocol):
    state: AppState
    controller: Controller
    viewer: Viewer3D
    settings: QSettings
    display: Any  # DisplayDock
    properties: Any  # PropertiesDock

    def show_error(self, title: str, message: str) -> None: ...
    def ask_yes_no(self, title: str, question: str) -> bool: ...
    def open_gallery(self, item_id: str) -> bool: ...
    def open_path(self, path: str | Path) -> bool: ...
    def statusBar(self) -> Any: ...  # noqa: N802 (Qt's name)
