"""The built-in gallery: about 50 textbook cubic crystals shipped in ``resources/gallery/``.

The CIFs and ``index.json`` are written by ``scripts/make_gallery.py`` (space group + lattice
constant + Wyckoff positions); every cell is ordered, cubic and conventional. This module only
reads them, so it works the same from a source checkout and from an installed wheel.
"""

from __future__ import annotations

import difflib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from pymatgen.core import Structure

from resources import resource_path

log = logging.getLogger(__name__)

INDEX_FILE = "index.json"


@dataclass(frozen=True)
class GalleryItem:
    """One gallery entry as listed in ``index.json``; ``a`` is the cubic lattice constant in Å."""

    id: str
    formula: str
    name: str
    structure_type: str
    spacegroup: str
    a: float
    path: Path
    spacegroup_number: int = 0
    n_sites: int = 0
    note: str = ""
    reference: str = ""


def gallery_dir() -> Path:
    """Folder holding the gallery CIFs and ``index.json``."""
    return resource_path("gallery")


def _read_index(folder: Path) -> list[dict]:
    index_path = folder / INDEX_FILE
    try:
        data = json.loads(index_path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{index_path}: gallery index missing (run scripts/make_gallery.py)") from err
    return list(data["items"])


def list_gallery(folder: Path | None = None) -> list[GalleryItem]:
    """All gallery entries in index order. ``folder`` defaults to :func:`gallery_dir`."""
    folder = gallery_dir() if folder is None else Path(folder)
    items = []
    for rec in _read_index(folder):
        items.append(
            GalleryItem(
                id=rec["id"],
                formula=rec["formula"],
                name=rec["name"],
                structure_type=rec["structure_type"],
                spacegroup=rec["spacegroup"],
                a=float(rec["a"]),
                path=folder / rec["file"],
                spacegroup_number=int(rec.get("spacegroup_number", 0)),
                n_sites=int(rec.get("n_sites", 0)),
                note=rec.get("note", ""),
                reference=rec.get("reference", ""),
            )
        )
    return items


def get_item(item_id: str, folder: Path | None = None) -> GalleryItem:
    """The entry with this id; ``KeyError`` naming the closest ids when there is none."""
    items = {item.id: item for item in list_gallery(folder)}
    if item_id in items:
        return items[item_id]
    # Case-insensitive prefix matches catch "srtio3" or "NaCl"; difflib catches typos.
    lowered = str(item_id).lower()
    close = [i for i in items if i.lower().startswith(lowered) or lowered.startswith(i.lower())]
    close += [
        i for i in difflib.get_close_matches(str(item_id), list(items), n=5, cutoff=0.5) if i not in close
    ]
    hint = f"; did you mean {', '.join(close[:5])}?" if close else f"; known ids: {', '.join(sorted(items))}"
    raise KeyError(f"no gallery crystal {item_id!r}{hint}")


def load_gallery(item_id: str, folder: Path | None = None) -> Structure:
    """The conventional-cell structure of one gallery crystal (e.g. ``"SrTiO3_perovskite"``)."""
    return Structure.from_file(get_item(item_id, folder).path)


def load_all(folder: Path | None = None) -> dict[str, Structure]:
    """Every gallery crystal, keyed by id, in index order."""
    return {item.id: Structure.from_file(item.path) for item in list_gallery(folder)}
