"""The 3-D view: one pyvistaqt QtInteractor showing the layers of ``AppState``.

Layers (each a fixed actor name, replaced in place, ``render=False``, then one ``render()`` per
event-loop pass): density volume, isosurface, orthogonal slices, segmentation blobs, atoms, bonds,
unit cell. Geometry comes from ``scene.py`` (pure functions); this class only owns actors.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pyvista as pv
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget
from pyvistaqt import QtInteractor
from vtkmodules.vtkRenderingAnnotation import vtkLegendBoxActor

from icsg3d_gui.colors import element_rgb
from icsg3d_gui.state import AppState
from icsg3d_gui.views import scene

log = logging.getLogger(__name__)

DENSITY_ACTORS = ("density_volume", "density_iso", "density_slices")
CRYSTAL_ACTORS = ("atoms", "bonds", "cell")
BLOB_ACTOR = "blobs"
BLOB_CAPTION = "blobs_caption"
POLYHEDRA = "polyhedra"
DENSITY_BAR = "e/Å³"  # short (a narrow strip on small screens); VTK's font has no ρ
DENSITY_FLOOR = 4.0  # e/Å^3; real atoms peak at 5-25 e/Å^3 on our grids


# A curve that rises early (light atoms' density shows beside heavy ones) and stays translucent at
# the peaks (the atom spheres inside a blob stay visible): opacity at evenly spaced colour levels.
OPACITY_CURVES = {"translucent": [0.0, 0.04, 0.35, 0.5, 0.6, 0.65, 0.7]}
REFIT_TOLERANCE = 0.05  # relative change of the cell's size that refits the camera
# below 1: the fitted cell leaves the view's edges to the legend (left) and the colour bar (right),
# which must never sit on the crystal, even in the narrow view of a 1366x768 screen
CAMERA_ZOOM = 0.8


@dataclass
class DisplaySettings:
    """Everything the Display dock can change; the viewer redraws from it."""

    show_volume: bool = True
    show_iso: bool = False
    show_slices: bool = False
    show_blobs: bool = False
    show_atoms: bool = True
    show_bonds: bool = True
    show_cell: bool = True
    show_polyhedra: bool = False
    cmap: str = "viridis"
    opacity: str = "translucent"  # OPACITY_CURVES, or a pyvista transfer function: linear, sigmoid, geom, ...
    clim_fraction: tuple[float, float] = (0.0, 0.5)  # of the density maximum (peaks saturate)
    volume_opacity: float = 0.35  # scales the volume's opacity unit distance
    iso_fraction: float = 0.25  # isovalue as a fraction of the density maximum
    slice_frac: tuple[float, float, float] = (0.5, 0.5, 0.0)
    radius_scale: float = 0.18
    bond_tolerance: float = 1.1
    log_scale: bool = False
    scheme: str = "VESTA"
    repeat: tuple[int, int, int] = field(default=(1, 1, 1))
    background: str = "white"
    volume_margin: float = 0.12  # of the cell: density drawn beyond each face (boundary atoms whole)
    lock_camera: bool = False
    orthographic: bool = False  # parallel projection (crystallographers' views along [uvw])  # keep the camera when the cell changes (compare crystals at one scale)


class Viewer3D(QWidget):
    """Subscribes to ``AppState``; ``rendered`` is emitted after each render (for timing)."""

    rendered = Signal(float)  # time.perf_counter() at the end of the render
    atomPicked = Signal(str)  # description of the right-clicked atom (and distance to the previous one)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.settings = DisplaySettings()
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
        self._shown: tuple[np.ndarray, list[str]] = (np.zeros((0, 3)), [])  # displayed atom centres
        self._last_pick: int | None = None
        # right click picks an atom (left drag keeps rotating the camera)
        self.plotter.enable_point_picking(callback=self.pick, show_message=False, show_point=False,
                                          left_clicking=False, picker="cell", use_picker=False)
        state.densityChanged.connect(self.update_density)
        state.structureChanged.connect(self.update_crystal)
        state.segmentationChanged.connect(self.update_blobs)

    # ---- public --------------------------------------------------------------------------
    def apply_settings(self, settings: DisplaySettings) -> None:
        """Redraw every layer with new display settings."""
        old = self.settings
        self.settings = settings
        self.update_density()
        self.update_crystal()
        self.update_blobs()
        self.plotter.camera.parallel_projection = bool(settings.orthographic)
        if old.repeat != settings.repeat:
            self.reset_view()

    def update_settings(self, **changes) -> None:  # noqa: ANN003
        self.apply_settings(replace(self.settings, **changes))

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
        self.plotter.renderer.reset_camera(render=False)
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
        self.plotter.renderer.reset_camera(render=False)
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
            self._remove(DENSITY_ACTORS)
            self._drop_bar()
            return
        grid = scene.density_mesh(st.density, st.lattice, s.repeat, name="rho", margin=self._margin(st.density))
        # colour range relative to the peak, but never to a peak below DENSITY_FLOOR: a blurred,
        # nearly flat decode then shows as a faint fog instead of a saturated opaque block
        vmax = max(float(st.density.max()), DENSITY_FLOOR)
        lo = max(s.clim_fraction[0], 1e-3) if s.log_scale else s.clim_fraction[0]  # log needs lo > 0
        clim = (lo * vmax, max(s.clim_fraction[1], lo + 1e-3) * vmax)
        volume_ok = isinstance(grid, pv.ImageData)
        if s.show_volume and volume_ok:
            self._show_volume(grid, clim)
        else:
            self._remove(("density_volume",))
            self._drop_bar()  # the volume's, or the slices' of the last frame
            self._volume_key = None
        show_iso = s.show_iso or (s.show_volume and not volume_ok)
        if show_iso:
            iso = grid.contour([s.iso_fraction * vmax], scalars="rho")
            if iso.n_points:
                self.plotter.add_mesh(iso, color="#4a90d9", opacity=0.45, smooth_shading=True,
                                      name="density_iso", render=False, reset_camera=False)
            else:
                self._remove(("density_iso",))
        else:
            self._remove(("density_iso",))
        if s.show_slices:
            # positions are fractions of the (super)cell, not of the grid with its margin
            cell_diag = np.asarray(st.lattice, dtype=float).sum(axis=0) * np.asarray(s.repeat, dtype=float)
            x, y, z = (f * length for length, f in zip(cell_diag, s.slice_frac, strict=True))
            slices = grid.slice_orthogonal(x=x, y=y, z=z)
            # translucent, so that the atoms behind stay visible; with the volume off the slices
            # get the colour bar (one bar, one title: the density's; dropped above with the volume)
            bar = not (s.show_volume and volume_ok)
            self.plotter.add_mesh(slices, scalars="rho", cmap=s.cmap, clim=clim, name="density_slices", opacity=0.8,
                                  render=False, reset_camera=False, show_scalar_bar=bar,
                                  scalar_bar_args=self._bar_args())  # fmt: skip
        else:
            self._remove(("density_slices",))
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
        for name in ("atoms", "bonds", BLOB_ACTOR, POLYHEDRA):
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
            self._shown = (np.zeros((0, 3)), [])
            cell = scene.cell_mesh(st.lattice, s.repeat) if s.show_cell and st.lattice is not None else None
            self._show_mesh("cell", cell, color="#333333", line_width=2)
            self._update_legend(self._legend_symbols())
            self.request_render()
            return
        lat = np.asarray(st.structure.lattice.matrix)
        frac, symbols = scene.frac_and_symbols(st.structure)
        cart, shown = scene.display_atoms(frac, symbols, lat, s.repeat)
        self._shown, self._last_pick = (cart, shown), None
        self._show_mesh("atoms", scene.atoms_mesh(cart, shown, s.radius_scale, s.scheme) if s.show_atoms else None,
                        scalars="rgb", rgb=True, smooth_shading=True, specular=0.3)
        self._show_mesh("bonds", scene.bonds_mesh(cart, shown, s.bond_tolerance, radius=0.07, scheme=s.scheme)
                        if s.show_bonds and s.show_atoms else None, scalars="rgb", rgb=True, smooth_shading=True)
        self._show_mesh("cell", scene.cell_mesh(lat, s.repeat) if s.show_cell else None,
                        color="#333333", line_width=2)
        self._show_mesh(POLYHEDRA, scene.polyhedra_mesh(st.structure, s.repeat, s.bond_tolerance, s.scheme)
                        if s.show_polyhedra else None, scalars="rgb", rgb=True, opacity=0.45)  # fmt: skip
        self._update_legend(self._legend_symbols())
        self._fit_camera()
        self.request_render()

    def update_blobs(self) -> None:
        if self._closed:
            return
        st, s = self.state, self.settings
        mesh = None
        if s.show_blobs and st.labels is not None and st.lattice is not None:
            mesh = scene.label_blobs(st.labels, st.lattice, st.class_symbols, s.repeat, s.scheme)
        self._show_mesh(BLOB_ACTOR, mesh, scalars="rgb", rgb=True, opacity=0.55, smooth_shading=True)
        self._blob_caption(f"blobs: {st.segmentation_origin}" if mesh is not None and st.segmentation_origin else "")
        self._update_legend(self._legend_symbols())
        self.request_render()

    def _blob_caption(self, text: str) -> None:
        """Say which labels the blobs show (the crystal's own or a model's)."""
        self._remove((BLOB_CAPTION,))
        if text:
            self.plotter.add_text(text, position="lower_right", font_size=9, color="black", name=BLOB_CAPTION,
                                  render=False)  # fmt: skip

    def _legend_symbols(self) -> list[str]:
        """Elements of the crystal, then those only the shown segmentation has (decoded grids)."""
        st = self.state
        out: list[str] = []
        if st.structure is not None:
            out = list(dict.fromkeys(scene.frac_and_symbols(st.structure)[1]))
        if self.settings.show_blobs and st.labels is not None:
            for cls in np.unique(st.labels):
                if 0 < cls < len(st.class_symbols) and st.class_symbols[int(cls)] not in out:
                    out.append(st.class_symbols[int(cls)])
        return out

    def _show_volume(self, grid: pv.ImageData, clim: tuple[float, float]) -> None:
        """Volume layer. Fast path while dragging: same grid size and transfer-function settings
        -> swap the scalars (and spacing) in place and re-range the transfer functions
        (add_volume with its colour bar costs ~80 ms on a busy 2-core machine, this ~1 ms)."""
        s = self.settings
        cell = float(np.mean(np.asarray(grid.bounds).reshape(3, 2)[:, 1]))
        unit = cell / 10.0 / max(s.volume_opacity, 0.05)  # opacity per tenth of the cell
        # decoded cells change with every slider step: the same grid size keeps the actor, with
        # the new spacing and opacity unit set in place (a rebuild also re-creates the colour
        # bar, which renders the whole scene once more)
        key = (grid.dimensions, s.cmap, s.opacity, s.log_scale)
        actor = self.plotter.actors.get("density_volume")
        if actor is not None and key == self._volume_key:
            # Update the dataset the mapper draws: add_volume copied its input
            # (cell_data_to_point_data), so the grid we passed it is not the one on screen.
            drawn = actor.mapper.dataset
            drawn.origin = grid.origin
            drawn.spacing = grid.spacing
            drawn.point_data["rho"] = np.asarray(grid.point_data["rho"])
            drawn.Modified()
            actor.prop.opacity_unit_distance = unit
            lut = actor.mapper.lookup_table
            lut.scalar_range = clim
            actor.mapper.scalar_range = clim
            actor.prop.apply_lookup_table(lut)
            self._volume_quality(actor, grid)
            return
        self._drop_bar()  # pyvista would keep an existing bar of this title bound to the OLD lookup table
        self.plotter.add_volume(
            grid, scalars="rho", cmap=s.cmap, opacity=OPACITY_CURVES.get(s.opacity, s.opacity), clim=clim,
            name="density_volume",
            render=False, reset_camera=False, shade=False, log_scale=s.log_scale, mapper="gpu",
            opacity_unit_distance=unit,
            scalar_bar_args=self._bar_args(),
        )
        actor = self.plotter.actors["density_volume"]
        actor.prop.interpolation_type = "linear"  # trilinear, not blocky nearest-voxel
        actor.mapper.SetAutoAdjustSampleDistances(False)
        self._volume_quality(actor, grid)
        self._volume_key = key

    @staticmethod
    def _bar_args() -> dict:
        return {"title": DENSITY_BAR, "vertical": True, "position_x": 0.88, "position_y": 0.25, "height": 0.5,
                "width": 0.06, "fmt": "%.2f", "color": "black", "title_font_size": 14, "label_font_size": 12}

    def _volume_quality(self, actor, grid: pv.ImageData) -> None:  # noqa: ANN001
        """Ray step below the voxel spacing (VTK's default step, 1 world unit = 1 Å, slices the
        blobs into rings); while a slider drags (state.preview) a ninth of the rays and twice the
        step, several times faster in software GL, back to full quality when the decode settles."""
        step = 0.8 * float(min(grid.spacing))
        preview = self.state.preview
        actor.mapper.SetSampleDistance(2 * step if preview else step)
        actor.mapper.SetImageSampleDistance(3.0 if preview else 1.0)

    def pick(self, point) -> str | None:  # noqa: ANN001 (pyvista passes a (3,) array)
        """Describe the displayed atom nearest to ``point`` (within 1 Å): element, Cartesian and
        fractional position, and its distance to the previously picked atom."""
        cart, symbols = self._shown
        st = self.state
        if point is None or len(cart) == 0 or st.structure is None:
            return None
        dist = np.linalg.norm(cart - np.asarray(point, dtype=float)[None], axis=1)
        i = int(np.argmin(dist))
        if dist[i] > 1.0:
            return None
        frac = st.structure.lattice.get_fractional_coords(cart[i])
        text = (f"{symbols[i]} #{i}: ({cart[i][0]:.3f}, {cart[i][1]:.3f}, {cart[i][2]:.3f}) Å, "
                f"frac ({frac[0]:.3f}, {frac[1]:.3f}, {frac[2]:.3f})")
        if self._last_pick is not None and self._last_pick != i and self._last_pick < len(cart):
            j = self._last_pick
            text += f"; distance to {symbols[j]} #{j}: {np.linalg.norm(cart[i] - cart[j]):.3f} Å"
        self._last_pick = i
        self.atomPicked.emit(text)
        return text

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
        """Element legend: coloured discs with dark labels (pyvista's legend colours the text too,
        which makes a red "O" look like a ring), upper right."""
        key = (tuple(symbols), self.settings.scheme)
        if key == self._legend_key:
            return
        self._legend_key = key
        self._remove(("legend",))
        if not symbols:
            return
        legend = vtkLegendBoxActor()
        legend.SetNumberOfEntries(len(symbols))
        for i, sym in enumerate(symbols):
            disc = pv.Circle(radius=1.0, resolution=40)
            rgb = (np.asarray(element_rgb(sym, self.settings.scheme)) * 255).astype(np.uint8)
            disc.cell_data["rgb"] = np.tile(rgb, (disc.n_cells, 1))
            disc.cell_data.active_scalars_name = "rgb"
            legend.SetEntry(i, disc, sym, (0.1, 0.1, 0.1))
        legend.SetScalarVisibility(True)
        legend.SetPadding(4)
        height = min(0.045 * len(symbols), 0.4)
        legend.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
        legend.GetPositionCoordinate().SetValue(0.02, 0.97 - height)
        legend.GetPosition2Coordinate().SetValue(0.07, height)
        self.plotter.add_actor(legend, name="legend", reset_camera=False, render=False)

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
            self.plotter.renderer.reset_camera(render=False)  # keeps the viewing direction
            self.plotter.camera.zoom(CAMERA_ZOOM)
            self._fitted_extent = extent

    def _render_now(self) -> None:
        if not self._closed:
            self.plotter.render()

    def _render_ended(self, *_args) -> None:  # noqa: ANN002 (VTK observer signature)
        if not self._closed:
            self.rendered.emit(time.perf_counter())
