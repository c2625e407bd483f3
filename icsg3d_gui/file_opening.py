"""Opening files for the ``Controller`` (a mixin): crystals (CIF, POSCAR) and grids (CHGCAR, LOCPOT,
cube, .npz, .npy with its cell). A bad file gives a message box naming the file and the reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from icsg3d_gui.worker import VIEW


class FileOpening:
    """``open_file`` and the grid path; the rest (``state``, ``worker``, ``latest``, ``error``,
    ``status``, ``show_structure``, ``_show_true``, ``_recheck``) is the Controller's."""

    def open_file(self, path: str | Path) -> bool:
        """Read a CIF/POSCAR (conventional cell), or a CHGCAR/LOCPOT/cube density file (its own
        grid and cell); a bad file gives a message box, nothing else."""
        from core.structures import read_entry
        from core.volumetric import density_file_kind

        if density_file_kind(path):
            return self._open_density_file(Path(path))

        try:
            structure, note = read_entry(Path(path))
        except Exception as exc:  # noqa: BLE001 (StructureError and anything pymatgen raises)
            msg = str(exc) if str(Path(path)) in str(exc) else f"{path}: {exc}"
            self.error.emit("Cannot open crystal", msg)
            return False
        # a note (e.g. a supercell reduced to its conventional cell) rides along with the source
        ok = self.show_structure(structure, f"{path} ({note.split(' (')[0]})" if note else str(path))
        if ok and note:
            self.status.emit(f"{path}: {note}")
        return ok

    def _open_density_file(self, path: Path) -> bool:
        """Show a user's grid as it is (CHGCAR, cube, .npz, .npy + cell): its own grid and cell.
        With a crystal in the file and a model set that can speak for it, the Properties dock
        also says what the model reconstructs of that crystal (voxelised on the model's grid)."""
        from core.volumetric import read_volumetric

        try:
            vol = read_volumetric(path)
        except Exception as exc:  # noqa: BLE001 (StructureError and anything pymatgen raises)
            self.error.emit("Cannot open density", str(exc) if str(path) in str(exc) else f"{path}: {exc}")
            return False
        source = f"{path} ({vol.what}, grid {'x'.join(map(str, vol.density.shape))})"
        if vol.structure is None:
            self._show_grid(vol.density, vol.lattice, source)
            self.status.emit(f"Showing a density grid without atoms ({path})")
            return True
        self._show_true(vol.structure, vol.density, None, None, "", source, lattice=vol.lattice)
        if self.state.has_model and self._domain_problem(vol.structure) is None:
            self._recheck(vol.structure)
        self.status.emit(f"Showing the {vol.what} of {vol.structure.composition.reduced_formula} ({path})")
        return True

    def _show_grid(self, density: np.ndarray, lattice: np.ndarray, source: str) -> None:
        """A grid with a cell and no atoms: drawn as it is; nothing to analyse or encode."""
        self.latest.invalidate(VIEW, self.worker.peek_next_id())
        st = self.state
        st.preview = False
        st.set_density(density, lattice)
        st.set_segmentation(None, None, origin="")
        st.set_structure(None, source)
        st.set_properties({}, {"error": "a grid without atoms (no crystal to analyse or to give the model)"})
        st.set_latent(None)
