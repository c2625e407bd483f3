"""The 3-D view: one pyvistaqt QtInteractor showing the layers of ``AppState``.

Layers (each a fixed actor name, replaced in place, ``render=False``, then one ``render()`` per
event-loop pass): density volume (on a sheared cell resampled onto an axis-aligned box,
``sheared_volume.py``), isosurfaces (one per level), orthogonal slices, the (hkl) slice,
segmentation blobs, atoms, bonds, labels, unit cell, polyhedra. Geometry comes from ``scene.py``
(pure functions), the density's surfaces from ``density_layers.py``, labels, hover and picking
from ``atom_info.py``; this class owns the plotter and decides what is drawn when.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np
import pyvista as pv
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget
from pyvistaqt import QtInteractor

from icsg3d_gui.display_settings import DisplaySettings
from icsg3d_gui.state import AppState
from icsg3d_gui.views import blob_layer, scene, sheared_volume
from icsg3d_gui.views import density_layers as layers
from icsg3d_gui.views.atom_info import LABELS, AtomInfo
from icsg3d_gui.views.density_layers import DENSITY_BAR
from icsg3d_gui.views.legend import legend_actor

__all__ = ["DENSITY_BAR", "DisplaySettings", "Viewer3D"]

log = logging.getLogger(__name__)

BLOB_ACTOR = blob_layer.BLOBS
BLOB_CAPTION = blob_layer.CAPTION
POLYHEDRA = "polyhedra"
DENSITY_FLOOR = 4.0  # e/Å^3; real atoms peak at 5-25 e/Å^3 on our grids


ISO_MARGIN = 0.25  # of the cell: isosurfaces are drawn this far beyond each face (closed boundary shells)
REFIT_TOLERANCE = 0.05  # relative change of the cell's size that refits the camera
# below 1: the fitted cell leaves the view's edges to the legend (left) and the colour bar (right),
# which must never sit on the crystal, even in the narrow view of a 1366x768 screen
CAMERA_ZOOM = 0.8


class Viewer3D(QWidget):
    """Subscribes to ``AppState``; ``rendered`` is emitted after each render (for timing)."""

    rendered = Signal(float)  # time.perf_counter() at the end of the render
    atomPicked = Signal(str)  # description of the right-clicked atom (and distance to the previous one)
    atomHovered = Signal(str)  # description of the atom under the mouse ("" over empty space)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._drawn_repeat = state.display.repeat  # the supercell the camera was last reset for
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        # auto_update=False: we render exactly once per change, never on a timer (2-core machines)
        self.plotter = QtInteractor(self, auto_update=False)
        layout.addWidget(self.plotter.interactor)
        self.plotter.set_background("white", top="#d9e2ec")
        self.plotter.add_axes(xlabel="a", ylabel="b", zlabel="c", line_width=3)
        # no anti-aliasing: FXAA alone costs ~60 ms per frame in software GL (Xvfb, 2 cores)
        self._volume_key: tuple | None = None
        # "rendered" = a VTK render finished (frameSwapped would also fire for mere re-compositions
        # of the window when a dock label changes)
        self.plotter.ren_win.AddObserver("EndEvent", self._render_ended)
        self._msaa: int | None = None  # the settled frames' multisampling, read when first lowered
        self._camera_set = False
        self._fitted_extent: float | None = None  # size of the (super)cell the camera was fitted to
        self._closed = False
        self._legend_key: tuple = ()
        self.info = AtomInfo(self.plotter)  # displayed atoms: labels, hover, pick
        self.blobs = blob_layer.BlobLayer(self.plotter)  # segmentation blobs, confidences, disputed sites
        self._hover_at: tuple[int, int] | None = None
        self._hover_timer = QTimer(self)  # hover is resolved once the mouse rests (no work per move)
        self._hover_timer.setSingleShot(True)
        self._hover_timer.setInterval(60)
        self._hover_timer.timeout.connect(self._hover_now)
        self.plotter.iren.add_observer("MouseMoveEvent", self._mouse_moved)
        # right click picks an atom (left drag keeps rotating the camera)
        self.plotter.enable_point_picking(callback=self.pick, show_message=False, show_point=False,
                                          left_clicking=False, picker="cell", use_picker=False)
        state.densityChanged.connect(self.update_density)
        state.structureChanged.connect(self.update_crystal)
        state.segmentationChanged.connect(self.update_blobs)
        state.displayChanged.connect(self._display_changed)

    # ---- public --------------------------------------------------------------------------
    @property
    def settings(self) -> DisplaySettings:
        """The display settings the view draws: the state's (``AppState.display``)."""
        return self.state.display

    def apply_settings(self, settings: DisplaySettings) -> None:
        """Put new display settings into the state; the view redraws on its signal."""
        self.state.set_display(settings)

    def update_settings(self, **changes) -> None:  # noqa: ANN003
        self.apply_settings(replace(self.settings, **changes))

    def _display_changed(self) -> None:
        """Redraw every layer with the state's display settings."""
        settings = self.settings
        self.update_density()
        self.update_crystal()
        self.update_blobs()
        self.plotter.camera.parallel_projection = bool(settings.orthographic)
        if self._drawn_repeat != settings.repeat:
            self._drawn_repeat = settings.repeat
            self.reset_view()

    def reset_view(self) -> None:
        """A VESTA-like default: looking roughly down -b with c up, slightly from above."""
        if self._closed:
            return
        lat = self._lattice()
        if lat is None:
            return
        a, b, c = (v / np.linalg.norm(v) for v in lat)
        direction = 0.35 * a - 1.0 * b + 0.35 * c
        self.plotter.view_vector(direction / np.linalg.norm(direction), viewup=c, render=False)
        self._frame_cell(lat)
        self.plotter.camera.zoom(CAMERA_ZOOM)
        self._camera_set = True
        self._fitted_extent = self._extent(lat)
        self.request_render()

    def view_along(self, axis: int) -> None:
        """Look down lattice vector ``axis`` (0 = a, 1 = b, 2 = c)."""
        self.view_along_uvw(tuple(int(i == axis) for i in range(3)))

    def view_along_uvw(self, uvw: tuple[float, float, float]) -> None:
        """Look down the direction [uvw] = u a + v b + w c (c up, or b when looking down c)."""
        lat = self._lattice()
        if lat is None or self._closed:
            return
        lat = lat / np.asarray(self.settings.repeat, dtype=float)[:, None]  # directions of one cell
        vec = np.asarray(uvw, dtype=float) @ lat
        if np.linalg.norm(vec) < 1e-9:
            return
        vec /= np.linalg.norm(vec)
        up = lat[2] if abs(np.dot(vec, lat[2] / np.linalg.norm(lat[2]))) < 0.99 else lat[1]
        self.plotter.view_vector(vec, viewup=up / np.linalg.norm(up), render=False)
        self._frame_cell(self._lattice())
        self.plotter.camera.zoom(CAMERA_ZOOM)
        self.request_render()

    def request_render(self) -> None:
        """Render once, at the widget's next paint, however many layers changed before it.

        pyvistaqt's widget is a QOpenGLWidget whose paintGL always renders the VTK scene; an
        explicit ``plotter.render()`` renders into VTK's buffers AND schedules that paint, so
        the scene would be rendered twice. ``update()`` schedules the paint alone (Qt merges
        repeated requests); ``rendered`` fires when VTK has rendered the frame.
        """
        if not self._closed:
            self.plotter.interactor.update()

    def render_now(self) -> None:
        """Render immediately (screenshots, benchmarks)."""
        self._render_now()

    def close_plotter(self) -> None:
        """Release VTK before the widget is destroyed (avoids the teardown segfault)."""
        if not self._closed:
            self._closed = True
            self.plotter.close()

    # ---- layers --------------------------------------------------------------------------
    def update_density(self) -> None:
        if self._closed:
            return
        st, s = self.state, self.settings
        if st.density is None or st.lattice is None:
            layers.remove(self.plotter, layers.density_actor_names(self.plotter))
            self._drop_bar()
            self._volume_key = None
            return
        grid = scene.density_mesh(st.density, st.lattice, s.repeat, name="rho", margin=self._margin(st.density))
        # colour range relative to the peak, but never to a peak below DENSITY_FLOOR: a blurred,
        # nearly flat decode then shows as a faint fog instead of a saturated opaque block
        vmax = max(float(st.density.max()), DENSITY_FLOOR)
        lo = max(s.clim_fraction[0], 1e-3) if s.log_scale else s.clim_fraction[0]  # log needs lo > 0
        clim = (lo * vmax, max(s.clim_fraction[1], lo + 1e-3) * vmax)
        if s.show_volume:
            # a sheared cell's grid follows the lattice: resampled onto an axis-aligned box for VTK
            self._show_volume(sheared_volume.volume_grid(grid, st.density, st.lattice, s.repeat,
                                                         self._margin(st.density)), clim)  # fmt: skip
        else:
            self._remove(("density_volume",))
            self._drop_bar()  # the volume's, or the slices' of the last frame
            self._volume_key = None
        # isovalues: fractions of the grid's own maximum (they follow the grid to a new crystal)
        iso_grid = grid
        if s.show_iso and self._margin(st.density) < round(ISO_MARGIN * st.density.shape[0]):
            # a wider periodic margin for the surfaces: the shells of atoms on the cell's faces close
            iso_grid = scene.density_mesh(st.density, st.lattice, s.repeat, name="rho",
                                          margin=round(ISO_MARGIN * st.density.shape[0]))  # fmt: skip
        layers.draw_isosurfaces(self.plotter, iso_grid, s.iso_levels if s.show_iso else None, float(st.density.max()))
        # one colour bar: the volume's; with the volume off, the slices', else the (hkl) plane's
        layers.draw_slices(self.plotter, grid, s, st.lattice, clim, bar=not s.show_volume)
        layers.draw_hkl_slice(self.plotter, grid, s, st.lattice, clim, bar=not s.show_volume and not s.show_slices)
        self._hide_stale_crystal(self.state.preview)
        self._set_antialias(not self.state.preview)
        self._fit_camera()
        self.request_render()

    def _drop_bar(self) -> None:
        if DENSITY_BAR in self.plotter.scalar_bars:
            self.plotter.remove_scalar_bar(DENSITY_BAR, render=False)

    def _margin(self, density: np.ndarray) -> int:
        """Grid points drawn beyond each face (periodic images), from ``volume_margin``."""
        return int(round(self.settings.volume_margin * density.shape[0]))

    def _hide_stale_crystal(self, preview: bool) -> None:
        """While a slider drags, the atoms, bonds and blobs on screen belong to the previous
        settled decode: hide them (they would mislead, and they cost half the render time in
        software GL) until the full decode of the new point arrives."""
        for name in ("atoms", "bonds", LABELS, BLOB_ACTOR, blob_layer.CONFIDENCE, blob_layer.DISAGREE,
                     blob_layer.DISAGREE_TEXT, POLYHEDRA):
            actor = self.plotter.actors.get(name)
            if actor is not None:
                actor.SetVisibility(not preview)

    def _set_antialias(self, on: bool) -> None:
        """Multisampling (MSAA x4, pyvista's default) made a software-GL frame of the density
        volume 5x dearer (59 -> 11 ms measured under Xvfb): off while a slider drags, back on for
        the settled frame, whose atoms and bonds need smooth edges."""
        current = int(self.plotter.ren_win.GetMultiSamples())
        if self._msaa is None:
            if on:
                return
            self._msaa = current  # what the initialised GL widget uses (pyvista's theme: 4)
        samples = self._msaa if on else 0
        if current != samples:
            self.plotter.ren_win.SetMultiSamples(samples)

    def update_crystal(self) -> None:
        if self._closed:
            return
        st, s = self.state, self.settings
        if st.structure is None:  # a decode without a crystal: keep the cell of its density grid
            self._remove(("atoms", "bonds", POLYHEDRA))
            self.info.set_atoms(np.zeros((0, 3)), [], np.zeros(0, dtype=int), None)
            self.info.draw_labels(False)
            self.info.clear_hover()
            self.blobs.draw_marks(*blob_layer.marks(st))
            cell = scene.cell_mesh(st.lattice, s.repeat) if s.show_cell and st.lattice is not None else None
            self._show_mesh("cell", cell, color="#333333", line_width=2)
            self._update_legend(self._legend_symbols())
            self.request_render()
            return
        lat = np.asarray(st.structure.lattice.matrix)
        frac, symbols = scene.frac_and_symbols(st.structure)
        cart, shown, sites = scene.display_sites(frac, symbols, lat, s.repeat)
        self.info.set_atoms(cart, shown, sites, lat)
        self.info.clear_hover()
        self._show_mesh("atoms", scene.atoms_mesh(cart, shown, s.radius_scale, s.scheme) if s.show_atoms else None,
                        scalars="rgb", rgb=True, smooth_shading=True, specular=0.3)
        bonds = (scene.bonds_mesh(cart, shown, s.bond_tolerance, radius=0.07, scheme=s.scheme, rules=s.bond_rules)
                 if s.show_bonds and s.show_atoms else None)  # fmt: skip
        self._show_mesh("bonds", bonds, scalars="rgb", rgb=True, smooth_shading=True)
        self.info.draw_labels(s.show_labels)
        self.blobs.draw_marks(*blob_layer.marks(st))
        self._show_mesh("cell", scene.cell_mesh(lat, s.repeat) if s.show_cell else None,
                        color="#333333", line_width=2)
        poly = (scene.polyhedra_mesh(st.structure, s.repeat, s.bond_tolerance, s.scheme, s.bond_rules)
                if s.show_polyhedra else None)  # fmt: skip
        self._show_mesh(POLYHEDRA, poly, scalars="rgb", rgb=True, opacity=0.45)
        self._update_legend(self._legend_symbols())
        self._fit_camera()
        self.request_render()

    def update_blobs(self) -> None:
        """The segmentation layer (blob_layer.py): the U-Net's blobs with their confidences, or the
        crystal's true labels, the caption that says which, and the marks on disputed sites."""
        if self._closed:
            return
        st = self.state
        self.blobs.draw(blob_layer.choose(st, self.settings), st.lattice, self.settings)
        self.blobs.draw_marks(*blob_layer.marks(st))
        self._update_legend(self._legend_symbols())
        self.request_render()

    def _legend_symbols(self) -> list[str]:
        """Elements of the crystal, then those only the shown segmentation has (decoded grids)."""
        st = self.state
        out: list[str] = []
        if st.structure is not None:
            out = list(dict.fromkeys(scene.frac_and_symbols(st.structure)[1]))
        labels, symbols = self.blobs.shown.labels, self.blobs.shown.symbols
        if labels is not None:
            for cls in np.unique(labels):
                if 0 < cls < len(symbols) and symbols[int(cls)] not in out:
                    out.append(symbols[int(cls)])
        return out

    def _show_volume(self, grid: pv.ImageData, clim: tuple[float, float]) -> None:
        if not layers.update_volume(self.plotter, grid, self.settings, clim, self._volume_key, self.state.preview):
            self._drop_bar()  # pyvista would keep an existing bar of this title bound to the OLD lookup table
            self._volume_key = layers.add_volume(self.plotter, grid, self.settings, clim, self.state.preview)

    def pick(self, point) -> str | None:  # noqa: ANN001 (pyvista passes a (3,) array)
        """Describe the displayed atom nearest to ``point`` (within 1 Å): element, site number,
        fractional and Cartesian position, and its distance to the previously picked atom."""
        text = self.info.pick(point) if self.state.structure is not None else None
        if text:
            self.atomPicked.emit(text)
        return text

    def hover_at(self, x: float, y: float) -> str | None:
        """Name the atom under display point (x, y) (VTK coordinates, origin lower left) in the
        view's corner and through ``atomHovered``; returns the text drawn."""
        before = self.info.hovered
        text = self.info.hover(x, y)
        if self.info.hovered != before:
            self.atomHovered.emit(text or "")
            self.request_render()
        return text

    def _mouse_moved(self, *_args) -> None:  # noqa: ANN002 (VTK observer signature)
        self._hover_at = self.plotter.iren.interactor.GetEventPosition()
        self._hover_timer.start()

    def _hover_now(self) -> None:
        if self._hover_at is not None and not self._closed and self.settings.show_atoms:
            self.hover_at(*self._hover_at)

    # ---- helpers -------------------------------------------------------------------------
    def _show_mesh(self, name: str, mesh: pv.DataSet | None, **kwargs) -> None:  # noqa: ANN003
        if mesh is None or mesh.n_points == 0:
            self._remove((name,))
            return
        self.plotter.add_mesh(mesh, name=name, render=False, reset_camera=False, show_scalar_bar=False, **kwargs)

    def _remove(self, names: tuple[str, ...]) -> None:
        for name in names:
            if name in self.plotter.actors:
                self.plotter.remove_actor(name, render=False)

    def _update_legend(self, symbols: list[str]) -> None:
        """Element legend (``legend.py``), upper left; rebuilt only when its elements change."""
        key = (tuple(symbols), self.settings.scheme)
        if key == self._legend_key:
            return
        self._legend_key = key
        self._remove(("legend",))
        if symbols:
            self.plotter.add_actor(legend_actor(symbols, self.settings.scheme), name="legend", reset_camera=False,
                                   render=False)  # fmt: skip

    def _lattice(self) -> np.ndarray | None:
        st = self.state
        if st.structure is not None:
            lat = np.asarray(st.structure.lattice.matrix)
        elif st.lattice is not None:
            lat = st.lattice
        else:
            return None
        return lat * np.asarray(self.settings.repeat, dtype=float)[:, None]

    @staticmethod
    def _extent(lat: np.ndarray) -> float:
        """Length of the shown (super)cell's body diagonal (``lat``: (3, 3) rows, repeat applied)."""
        return float(np.linalg.norm(np.asarray(lat).sum(axis=0)))

    def _frame_cell(self, lat: np.ndarray) -> None:
        """Point the camera at the shown (super)cell (``lat``: (3, 3) rows, repeat applied), not at
        whatever actors happen to be visible: while a slider drags the atoms are hidden, and with
        the density volume off nothing else would be there to frame."""
        corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=float) @ np.asarray(lat)
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        pad = self.settings.volume_margin * (hi - lo)  # the periodic margin drawn beyond each face
        lo, hi = lo - pad, hi + pad
        self.plotter.renderer.reset_camera(render=False, bounds=(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]))

    def _fit_camera(self) -> None:
        """Frame the cell on the first crystal, and again whenever the shown cell's size moves by
        more than REFIT_TOLERANCE from the one framed (a new crystal, a long slider drift), unless
        the camera is locked. Small steps keep the camera still: a slider drag must not jitter."""
        if not self._camera_set:
            self.reset_view()
            return
        lat = self._lattice()
        if lat is None or self.settings.lock_camera:
            return
        extent = self._extent(lat)
        if self._fitted_extent is None or abs(extent / self._fitted_extent - 1.0) > REFIT_TOLERANCE:
            self._frame_cell(lat)  # keeps the viewing direction
            self.plotter.camera.zoom(CAMERA_ZOOM)
            self._fitted_extent = extent

    def _render_now(self) -> None:
        if not self._closed:
            self.plotter.render()

    def _render_ended(self, *_args) -> None:  # noqa: ANN002 (VTK observer signature)
        if not self._closed:
            self.rendered.emit(time.perf_counter())
