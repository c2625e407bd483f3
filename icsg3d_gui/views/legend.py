"""The element legend of the 3-D view: coloured discs with dark labels (pyvista's legend colours
the text too, which makes a red "O" look like a ring), in the upper left corner."""

from __future__ import annotations

import numpy as np
import pyvista as pv
from vtkmodules.vtkRenderingAnnotation import vtkLegendBoxActor

from icsg3d_gui.colors import element_rgb


def legend_actor(symbols: list[str], scheme: str) -> vtkLegendBoxActor:
    legend = vtkLegendBoxActor()
    legend.SetNumberOfEntries(len(symbols))
    for i, sym in enumerate(symbols):
        disc = pv.Circle(radius=1.0, resolution=40)
        rgb = (np.asarray(element_rgb(sym, scheme)) * 255).astype(np.uint8)
        disc.cell_data["rgb"] = np.tile(rgb, (disc.n_cells, 1))
        disc.cell_data.active_scalars_name = "rgb"
        legend.SetEntry(i, disc, sym, (0.1, 0.1, 0.1))
    legend.SetScalarVisibility(True)
    legend.SetPadding(4)
    height = min(0.045 * len(symbols), 0.4)
    legend.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
    legend.GetPositionCoordinate().SetValue(0.02, 0.97 - height)
    legend.GetPosition2Coordinate().SetValue(0.07, height)
    return legend
