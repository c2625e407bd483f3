"""The density layers of the 3-D view: the volume, isosurfaces (one actor per level), the
orthogonal slices and the (hkl) slice, all drawn from the same grid.

Functions take the plotter and the grid built by ``scene.density_mesh`` (periodic margin
included); the viewer decides which layer carries the single colour bar.
"""

from __future__ import annotations

import numpy as np
import pyvista as pv

from icsg3d_gui.display_settings import DisplaySettings, IsoLevel
from icsg3d_gui.views import scene

DENSITY_BAR = "e/Å³"  # short (a narrow strip on small screens); VTK's font has no ρ
ISO_PREFIX = "density_iso_"  # + level number: one actor per isosurface level
SLICES = "density_slices"
HKL_SLICE = "density_hkl"
VOLUME = "density_volume"

# A curve that rises early (light atoms' density shows beside heavy ones) and stays translucent at
# the peaks (the atom spheres inside a blob stay visible): opacity at evenly spaced colour levels.
OPACITY_CURVES = {"translucent": [0.0, 0.04, 0.35, 0.5, 0.6, 0.65, 0.7]}


def _volume_key(grid: pv.ImageData, s: DisplaySettings) -> tuple:
    return (grid.dimensions, s.cmap, s.opacity, s.log_scale)


def _opacity_unit(grid: pv.ImageData, s: DisplaySettings) -> float:
    cell = float(np.mean(np.asarray(grid.bounds).reshape(3, 2)[:, 1]))
    return cell / 10.0 / max(s.volume_opacity, 0.05)  # opacity per tenth of the cell


def update_volume(plotter: pv.Plotter, grid: pv.ImageData, s: DisplaySettings, clim: tuple[float, float],
                  key: tuple | None, preview: bool) -> bool:  # fmt: skip
    """Fast path while dragging: the drawn volume has the same grid size and transfer-function
    settings (``key``) -> swap its scalars (and spacing) in place and re-range the transfer
    functions (add_volume with its colour bar costs ~80 ms on a busy 2-core machine, this ~1 ms).
    False when the volume must be rebuilt (``add_volume``)."""
    actor = plotter.actors.get(VOLUME)
    if actor is None or _volume_key(grid, s) != key:
        return False
    # Update the dataset the mapper draws: add_volume copied its input
    # (cell_data_to_point_data), so the grid we passed it is not the one on screen.
    drawn = actor.mapper.dataset
    drawn.origin = grid.origin
    drawn.spacing = grid.spacing
    drawn.point_data["rho"] = np.asarray(grid.point_data["rho"])
    drawn.Modified()
    actor.prop.opacity_unit_distance = _opacity_unit(grid, s)
    lut = actor.mapper.lookup_table
    lut.scalar_range = clim
    actor.mapper.scalar_range = clim
    actor.prop.apply_lookup_table(lut)
    _volume_quality(actor, grid, preview)
    return True


def add_volume(plotter: pv.Plotter, grid: pv.ImageData, s: DisplaySettings, clim: tuple[float, float],
               preview: bool) -> tuple:  # fmt: skip
    """(Re)build the volume actor with its colour bar; returns the key ``update_volume`` checks."""
    plotter.add_volume(
        grid, scalars="rho", cmap=s.cmap, opacity=OPACITY_CURVES.get(s.opacity, s.opacity), clim=clim,
        name=VOLUME, render=False, reset_camera=False, shade=False, log_scale=s.log_scale, mapper="gpu",
        opacity_unit_distance=_opacity_unit(grid, s), scalar_bar_args=bar_args(),
    )  # fmt: skip
    actor = plotter.actors[VOLUME]
    actor.prop.interpolation_type = "linear"  # trilinear, not blocky nearest-voxel
    actor.mapper.SetAutoAdjustSampleDistances(False)
    _volume_quality(actor, grid, preview)
    return _volume_key(grid, s)


def _volume_quality(actor, grid: pv.ImageData, preview: bool) -> None:  # noqa: ANN001
    """Ray step below the voxel spacing (VTK's default step, 1 world unit = 1 Å, slices the
    blobs into rings); while a slider drags (state.preview) a ninth of the rays and twice the
    step, several times faster in software GL, back to full quality when the decode settles."""
    step = 0.8 * float(min(grid.spacing))
    actor.mapper.SetSampleDistance(2 * step if preview else step)
    actor.mapper.SetImageSampleDistance(3.0 if preview else 1.0)


def bar_args() -> dict:
    return {"title": DENSITY_BAR, "vertical": True, "position_x": 0.88, "position_y": 0.25, "height": 0.5,
            "width": 0.06, "fmt": "%.2f", "color": "black", "title_font_size": 14, "label_font_size": 12}


def density_actor_names(plotter: pv.Plotter) -> tuple[str, ...]:
    return tuple(name for name in plotter.actors if name.startswith("density_"))


def remove(plotter: pv.Plotter, names: tuple[str, ...] | list[str]) -> None:
    for name in names:
        if name in plotter.actors:
            plotter.remove_actor(name, render=False)


def draw_isosurfaces(plotter: pv.Plotter, grid: pv.DataSet, levels: tuple[IsoLevel, ...] | None,
                     vmax: float) -> None:  # fmt: skip
    """One contour actor per level (``fraction x vmax``, its own colour and opacity); ``None``
    or an empty tuple removes them all. Levels that cut nothing draw nothing."""
    levels = tuple(levels or ())
    for i, (fraction, colour, opacity) in enumerate(levels):
        iso = grid.contour([float(fraction) * vmax], scalars="rho")
        if iso.n_points:
            plotter.add_mesh(iso, color=colour, opacity=float(opacity), smooth_shading=True,
                             name=f"{ISO_PREFIX}{i}", render=False, reset_camera=False, show_scalar_bar=False)
        else:
            remove(plotter, [f"{ISO_PREFIX}{i}"])
    stale = [n for n in plotter.actors if n.startswith(ISO_PREFIX) and int(n[len(ISO_PREFIX):]) >= len(levels)]
    remove(plotter, stale)


def draw_slices(plotter: pv.Plotter, grid: pv.DataSet, s: DisplaySettings, lattice: np.ndarray,
                clim: tuple[float, float], bar: bool) -> None:  # fmt: skip
    """Three planes perpendicular to x, y, z at ``slice_frac`` of the (super)cell (translucent,
    so that the atoms behind stay visible)."""
    if not s.show_slices:
        remove(plotter, [SLICES])
        return
    cell_diag = np.asarray(lattice, dtype=float).sum(axis=0) * np.asarray(s.repeat, dtype=float)
    x, y, z = (f * length for length, f in zip(cell_diag, s.slice_frac, strict=True))
    slices = grid.slice_orthogonal(x=x, y=y, z=z)
    plotter.add_mesh(slices, scalars="rho", cmap=s.cmap, clim=clim, name=SLICES, opacity=0.8, render=False,
                     reset_camera=False, show_scalar_bar=bar, scalar_bar_args=bar_args())  # fmt: skip


def draw_hkl_slice(plotter: pv.Plotter, grid: pv.DataSet, s: DisplaySettings, lattice: np.ndarray,
                   clim: tuple[float, float], bar: bool) -> None:  # fmt: skip
    """The lattice plane (hkl) of the unit cell at ``hkl_position``, coloured by density."""
    if not s.show_hkl or not any(s.slice_hkl):
        remove(plotter, [HKL_SLICE])
        return
    origin, normal = scene.hkl_plane(lattice, s.slice_hkl, s.hkl_position, s.repeat)
    plane = grid.slice(normal=tuple(normal), origin=tuple(origin))
    if plane.n_points == 0:
        remove(plotter, [HKL_SLICE])
        return
    plotter.add_mesh(plane, scalars="rho", cmap=s.cmap, clim=clim, name=HKL_SLICE, opacity=0.85, render=False,
                     reset_camera=False, show_scalar_bar=bar, scalar_bar_args=bar_args())  # fmt: skip
