"""History dock: the undo list of visited latent points and the bookmarks; click to go back."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget

from icsg3d_gui.controller import Controller
from icsg3d_gui.state import AppState


class HistoryDock(QWidget):
    def __init__(self, state: AppState, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.controller = state, controller
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Visited latent points (newest last)"))
        self.history = QListWidget()
        self.history.itemActivated.connect(lambda item: self.goto(self.history.row(item)))
        self.history.itemDoubleClicked.connect(lambda item: self.goto(self.history.row(item)))
        layout.addWidget(self.history, 2)
        layout.addWidget(QLabel("Bookmarks"))
        self.bookmarks = QListWidget()
        self.bookmarks.itemDoubleClicked.connect(lambda item: self.goto_bookmark(self.bookmarks.row(item)))
        layout.addWidget(self.bookmarks, 1)
        row = QHBoxLayout()
        self.add = QPushButton("Bookmark current")
        self.add.clicked.connect(self.bookmark)
        row.addWidget(self.add)
        layout.addLayout(row)
        state.historyChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        h = self.state.history
        self.history.clear()
        for i, point in enumerate(h.items):
            mark = "▶ " if i == h.index else "   "
            self.history.addItem(f"{mark}{i + 1}. {point.label or 'latent move'}  (bin {point.cond})")
        self.bookmarks.clear()
        for point in self.state.bookmarks:
            self.bookmarks.addItem(point.label)
        self.add.setEnabled(self.state.z is not None)

    def goto(self, index: int) -> None:
        """Jump to a history entry (it becomes the current point; later entries stay for redo)."""
        self.controller.goto_history(index)

    def goto_bookmark(self, index: int) -> None:
        self.controller.goto_bookmark(index)

    def bookmark(self) -> None:
        self.state.add_bookmark()
