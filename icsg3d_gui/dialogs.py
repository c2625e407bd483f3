"""File dialogs and the export actions behind them.

Each ``ask_*``/menu function only gathers a path (and options) and calls a ``save_*`` function
that does the work without any dialog, so tests drive the ``save_*`` functions directly.
Overwrites are asked for once (the Qt dialog's own confirmation is switched off); the files are
written by ``core.export`` (atomic, the same functions the CLI uses).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QInputDialog

from core import export
from icsg3d_gui import session

if TYPE_CHECKING:
    from icsg3d_gui.protocols import Window

log = logging.getLogger(__name__)

OPEN_FILTER = ("Crystals and densities (*.cif *.vasp *.poscar POSCAR* CONTCAR* CHGCAR* CHG* LOCPOT* AECCAR* *.cube "
               "*.npz *.npy);;Crystals (*.cif *.vasp *.poscar POSCAR* CONTCAR*);;"
               "Densities (CHGCAR* LOCPOT* *.cube *.npz *.npy);;All files (*)")
NO_CONFIRM = QFileDialog.Option.DontConfirmOverwrite


def ask_open_path(parent, start_dir: str = "") -> str:  # noqa: ANN001
    path, _ = QFileDialog.getOpenFileName(parent, "Open crystal", start_dir, OPEN_FILTER)
    return path


def _ask_save(win: Window, title: str, default: str, filters: str) -> str:
    start = str(Path(win.settings.value("last_dir", "", type=str) or ".") / default)
    path, _ = QFileDialog.getSaveFileName(win, title, start, filters, options=NO_CONFIRM)
    if path:
        win.settings.setValue("last_dir", str(Path(path).parent))
    return path


def _confirm_overwrite(win: Window, path: Path) -> bool | None:
    """None: user declined; else the ``force`` flag for the atomic writer."""
    if not path.exists():
        return False
    return True if win.ask_yes_no("Overwrite?", f"{path} exists. Replace it?") else None


def _default_stem(win: Window) -> str:
    a = win.state.analysis
    formula = a.get("formula", "crystal")
    sg = str(a.get("spacegroup", "")).replace("/", "_")
    return f"{formula}-{sg}" if sg and sg != "?" else formula


# ---- CIF -----------------------------------------------------------------------------------
def export_cif(win: Window) -> None:
    if win.state.structure is None:
        win.show_error("Nothing to export", "No crystal is shown (the last decode recovered none).")
        return
    symprec = win.controller.symprec
    choices = [f"Symmetrised (symprec {symprec:g} Å)", "P1 (no symmetry)"]
    choice, ok = QInputDialog.getItem(win, "Export CIF", "Symmetry:", choices, 0, False)
    if not ok:
        return
    path = _ask_save(win, "Export CIF", _default_stem(win) + ".cif", "CIF (*.cif)")
    if path:
        save_cif(win, path, symprec if choice == choices[0] else None)


def _save(win: Window, path: str | Path, what: str, write: Callable[[Path, bool], Path],
          note: str = "") -> Path | None:  # fmt: skip
    """``write(path, force)`` after asking before an overwrite; a failure goes to a message box,
    success to the status bar ("Wrote <path>" and ``note``)."""
    path = Path(path)
    force = _confirm_overwrite(win, path)
    if force is None:
        return None
    try:
        out = write(path, force)
    except Exception as exc:  # noqa: BLE001 (any failure of the writer is the user's message)
        win.show_error(f"{what} export failed", f"{path}: {exc}")
        return None
    win.statusBar().showMessage(f"Wrote {out}{note}", 8000)
    return out


def save_cif(win: Window, path: str | Path, symprec: float | None) -> Path | None:
    """Write the shown crystal; asks before overwriting; errors go to a message box."""
    return _save(win, path, "CIF", lambda p, force: export.export_cif(p, win.state.structure, symprec, force=force))


# ---- density -------------------------------------------------------------------------------
def export_density(win: Window) -> None:
    if win.state.density is None:
        win.show_error("Nothing to export", "No density grid is shown.")
        return
    filters = "VASP CHGCAR (CHGCAR *.vasp);;Gaussian cube (*.cube);;NumPy grid + cell (*.npz);;NumPy + cell .json (*.npy)"
    path = _ask_save(win, "Export density", _default_stem(win) + ".cube", filters)
    if path:
        save_density(win, path)


def save_density(win: Window, path: str | Path) -> Path | None:
    st = win.state
    return _save(win, path, "Density", lambda p, force: export.export_density(p, st.density, st.structure, force=force,
                                                                              lattice=st.lattice))  # fmt: skip


def export_latent(win: Window) -> None:
    if win.state.z is None:
        win.show_error("Nothing to export", "The shown crystal has no latent vector (no model, or not encodable).")
        return
    path = _ask_save(win, "Export latent vector", _default_stem(win) + "_z.npy", "NumPy (*.npy)")
    if path:
        save_latent(win, path)


def save_latent(win: Window, path: str | Path) -> Path | None:
    """z (L,) float32 as .npy; the condition bin is reported in the status bar."""
    return _save(win, path, "Latent", lambda p, force: export.export_npy(p, win.state.z, force=force),
                 note=f" (condition bin {win.state.cond})")


# ---- images and sessions ---------------------------------------------------------------------
def save_image(win: Window) -> None:
    path = _ask_save(win, "Save image", _default_stem(win) + ".png", "PNG image (*.png)")
    if path:
        save_view_image(win, path, scale=2)


def save_view_image(win: Window, path: str | Path, scale: int = 2, transparent: bool = False) -> Path | None:
    """The 3-D view at ``scale`` x its on-screen size (publication images)."""
    path = Path(path)
    force = _confirm_overwrite(win, path)
    if force is None:
        return None
    try:
        win.viewer.render_now()
        pixels = win.viewer.plotter.screenshot(None, transparent_background=transparent, scale=scale,
                                               return_img=True)  # fmt: skip
        export.export_png(path, pixels, force=force)
    except Exception as exc:  # noqa: BLE001
        win.show_error("Image export failed", f"{path}: {exc}")
        return None
    return path


def save_session(win: Window) -> None:
    path = _ask_save(win, "Save session", "session.json", "Session (*.json)")
    if not path:
        return
    try:
        export.export_json(path, session.to_dict(win), force=True, indent=1)  # the dialog asked
    except Exception as exc:  # noqa: BLE001
        win.show_error("Session not saved", f"{path}: {exc}")


def open_model_set(win: Window) -> bool:
    """Ask for a model-set folder (one holding vae/meta.json) and switch to it."""
    from icsg3d_gui.model_sets import is_model_set

    start = win.settings.value("last_models_dir", "", type=str) or str(Path.home())
    folder = QFileDialog.getExistingDirectory(win, "Open model-set folder", start)
    if not folder:
        return False
    if not is_model_set(folder):
        win.show_error("Not a model set", f"{folder}: no trained VAE here (expected vae/meta.json)")
        return False
    win.settings.setValue("last_models_dir", folder)
    return win.controller.switch_model_set(folder)
