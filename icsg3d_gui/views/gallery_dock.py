"""Gallery dock: the shipped example crystals, filterable; activating one opens it."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

log = logging.getLogger(__name__)


class GalleryDock(QWidget):
    """Lists ``core.gallery`` entries; emits ``chosen(id)`` on click / Enter."""

    chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter: formula, name, structure type, space group")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._apply_filter)
        self.list = QListWidget()
        self.list.itemActivated.connect(self._activated)
        self.list.itemClicked.connect(self._activated)
        layout.addWidget(self.filter)
        layout.addWidget(self.list)
        self.items = []
        try:
            from core.gallery import list_gallery

            self.items = list_gallery()
        except Exception as exc:  # noqa: BLE001 (an app without its gallery still opens files)
            log.warning("gallery unavailable: %s", exc)
        for item in self.items:
            entry = QListWidgetItem(f"{item.formula}  ·  {item.structure_type}  ·  {item.spacegroup}")
            entry.setData(Qt.ItemDataRole.UserRole, item.id)
            entry.setToolTip(f"{item.name}\na = {item.a} Å, {item.n_sites} sites\n{item.note}".strip())
            self.list.addItem(entry)

    def ids(self) -> list[str]:
        return [item.id for item in self.items]

    def _activated(self, entry: QListWidgetItem) -> None:
        self.chosen.emit(entry.data(Qt.ItemDataRole.UserRole))

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for row in range(self.list.count()):
            entry = self.list.item(row)
            hay = (entry.text() + entry.toolTip()).lower()
            entry.setHidden(bool(needle) and needle not in hay)
