"""The shipped model sets, by name, and which of them a crystal fits (no torch, no weights read).

Each sub-folder of ``resources/models`` holding a trained VAE (``<name>/vae/meta.json``) is a set,
named after its folder: ``perov_5`` (the default) and ``carbon_24``. ``--models``
and the app's model-set menu take a name or any folder. A crystal outside the loaded set's domain
is told which shipped set covers it: its elements, grid and lattice family, read from each set's
``vae/meta.json`` (kilobytes; the weights stay unread).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pymatgen.core import Structure

from core.elements import Vocabulary
from core.errors import ICSGError
from core.voxel import VoxelConfig
from resources import DEFAULT_MODEL_SET, default_models_dir, model_set_folders
from resources import is_model_set as is_model_set  # re-exported: icsg3d_gui.model_sets

SHIPPED_NAME = DEFAULT_MODEL_SET  # the default set: trained on perov_5 (+ a cubic slice of mp_20)


def model_set_name(path: str | Path) -> str:
    """A model set's name: its folder's."""
    return Path(path).resolve().name


def shipped_model_sets(root: Path | None = None) -> list[tuple[str, Path]]:
    """(name, folder) of the model sets under ``root`` (default: the shipped ones), the default
    set first."""
    return [(p.name, p) for p in model_set_folders(root)]


def resolve_models(text: str | Path | None) -> Path:
    """The folder of ``--models``: None -> the default set; a shipped name -> its folder; else the
    path itself. Raises ICSGError naming the shipped sets when neither a set name nor a folder."""
    if text is None or str(text) == "":
        return default_models_dir()
    sets = dict(shipped_model_sets())
    if str(text) in sets:
        return sets[str(text)]
    path = Path(text)
    if path.exists() or len(path.parts) > 1:  # a path: ModelSet.load says what it lacks
        return path
    names = ", ".join(sets) or "none"
    raise ICSGError(f"--models {text}: no shipped model set of that name ({names}) and no such folder")


@dataclass(frozen=True)
class Domain:
    """What a model set was trained on: its elements, its grid and its lattice family."""

    vocab: Vocabulary
    voxel_cfg: VoxelConfig
    lattice: str  # "cubic" or "any"
    match: float | None = None  # its reconstruction match rate on held-out crystals, where recorded

    def problem(self, structure: Structure) -> str | None:
        from core.domain import domain_problem

        return domain_problem(structure, self.vocab, self.voxel_cfg, self.lattice)


FEW_ELEMENTS = 10  # a set of at most this many elements is a specialist (carbon_24: one)


@lru_cache(maxsize=16)
def _domain_cached(meta_path: str, mtime: float) -> Domain:
    meta = json.loads(Path(meta_path).read_text())
    norms = meta.get("normalisers") or {}
    voxel = VoxelConfig.from_dict(norms.get("voxel") or {"d": (meta.get("config") or {}).get("d", 32)})
    domain = meta.get("domain") or {}
    match = domain.get("reconstruction_match")
    return Domain(Vocabulary.from_list(meta["vocab"]), voxel, str(domain.get("lattice", "any")),
                  None if match is None else float(match))  # fmt: skip


def domain_of(path: str | Path) -> Domain:
    """The domain of the model set in ``path`` (its ``vae/meta.json``)."""
    meta = Path(path) / "vae" / "meta.json"
    try:
        return _domain_cached(str(meta.resolve()), meta.stat().st_mtime)
    except (OSError, KeyError, ValueError) as exc:
        raise ICSGError(f"{meta}: not a readable model-set description ({exc})") from exc


def sets_covering(structure: Structure, exclude: str | Path | None = None) -> list[str]:
    """Names of the shipped model sets whose domain holds ``structure`` (``exclude``: the folder
    already loaded), the most specialised first: a set of few elements (carbon_24 for carbon),
    then a set of cubic cells before one of any lattice (perov_5 before mp_20 for a perovskite),
    then the fewest elements."""
    skip = Path(exclude).resolve() if exclude is not None else None
    found = []
    for name, path in shipped_model_sets():
        if skip is not None and path.resolve() == skip:
            continue
        try:
            domain = domain_of(path)
        except ICSGError:
            continue
        if domain.problem(structure) is None:
            few = len(domain.vocab) <= FEW_ELEMENTS
            found.append((not few, domain.lattice != "cubic", len(domain.vocab), name))
    return [name for *_, name in sorted(found)]


def domain_advice(structure: Structure, loaded: str | Path | None = None) -> str:
    """Advice after an out-of-domain reason: the shipped set to use (and any other covering the
    crystal), or that none does."""
    names = sets_covering(structure, exclude=loaded)
    if not names:
        return "no shipped model set covers it yet"
    also = f" (also covering it: {', '.join(names[1:])})" if len(names) > 1 else ""
    match = domain_of(dict(shipped_model_sets())[names[0]]).match
    # a weak set says so: the user should not expect its answer to be the crystal
    odds = f"; it reconstructs {match:.0%} of its held-out crystals" if match is not None else ""
    return f"use the shipped model set {names[0]}{also}{odds}"
