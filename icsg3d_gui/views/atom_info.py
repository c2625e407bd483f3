"""Which atom is which: site labels at the atoms, hover info and right-click picking.

``AtomInfo`` keeps the displayed atoms (Cartesian positions, symbols, site index into the
structure, fractional coordinates) of the last crystal drawn and owns two actors of the
viewer's plotter: ``labels`` (a vtkLabeledDataMapper over a point set whose ``labels`` string
array holds "Sr1", "O3", ...: element and 1-based site number, as VESTA labels them) and
``hover_info`` (a corner text naming the atom under the mouse).
"""

from __future__ import annotations

import numpy as np
import pyvista as pv
from vtkmodules.vtkCommonCore import vtkStringArray
from vtkmodules.vtkRenderingCore import vtkActor2D
from vtkmodules.vtkRenderingLabel import vtkLabeledDataMapper

from icsg3d_gui.views import scene

LABELS = "labels"
HOVER = "hover_info"
HOVER_RADIUS_PX = 14.0  # how close to an atom's centre on screen the mouse must be
PICK_RADIUS = 1.0  # Å: a right-click world point within this of an atom picks it


def label_actor(points: np.ndarray, texts: list[str], field: str, colour: tuple[float, float, float],
                font_size: int, backing: float, beside: bool = False) -> vtkActor2D:  # fmt: skip
    """A 2-D actor drawing ``texts`` at 3-D ``points`` (N, 3): a vtkLabeledDataMapper over a point
    set whose string array ``field`` holds the texts (tests read it back), bold, on a white
    backing of opacity ``backing``; ``beside``: left/bottom-justified next to the point."""
    poly = pv.PolyData(np.asarray(points, dtype=float))
    array = vtkStringArray()
    array.SetName(field)
    for text in texts:
        array.InsertNextValue(text)
    poly.GetPointData().AddArray(array)
    mapper = vtkLabeledDataMapper()
    mapper.SetInputData(poly)
    mapper.SetLabelModeToLabelFieldData()
    mapper.SetFieldDataName(field)
    prop = mapper.GetLabelTextProperty()
    prop.SetColor(*colour)
    prop.SetFontSize(font_size)
    prop.SetBold(True)
    prop.SetItalic(False)
    prop.SetShadow(False)
    prop.SetBackgroundColor(1.0, 1.0, 1.0)
    prop.SetBackgroundOpacity(backing)
    if beside:
        prop.SetJustificationToLeft()
        prop.SetVerticalJustificationToBottom()
    actor = vtkActor2D()
    actor.SetMapper(mapper)
    return actor


class AtomInfo:
    """Labels, hover and pick for the atoms the viewer shows."""

    def __init__(self, plotter: pv.Plotter) -> None:
        self.plotter = plotter
        self.cart = np.zeros((0, 3))
        self.symbols: list[str] = []
        self.sites = np.zeros(0, dtype=int)
        self.frac = np.zeros((0, 3))
        self.last_pick: int | None = None
        self.hovered: int | None = None

    def set_atoms(self, cart: np.ndarray, symbols: list[str], sites: np.ndarray, lattice: np.ndarray | None) -> None:
        self.cart, self.symbols, self.sites = cart, symbols, np.asarray(sites, dtype=int)
        self.frac = cart @ np.linalg.inv(lattice) if lattice is not None and len(cart) else np.zeros((0, 3))
        self.last_pick = self.hovered = None

    def describe(self, i: int) -> str:
        x, y, z = self.cart[i]
        f = self.frac[i]
        return (f"{self.symbols[i]}{self.sites[i] + 1} (site {self.sites[i] + 1}, {self.symbols[i]}): "
                f"frac ({f[0]:.3f}, {f[1]:.3f}, {f[2]:.3f}), ({x:.3f}, {y:.3f}, {z:.3f}) Å")

    # ---- labels ----------------------------------------------------------------------------
    def draw_labels(self, on: bool) -> None:
        """Put "Sr1"-style labels at every displayed atom (or remove them)."""
        self._remove(LABELS)
        if not on or len(self.cart) == 0:
            return
        texts = scene.site_labels(self.symbols, self.sites)
        # beside the atom's centre, not on it; a white backing keeps it readable on any atom colour
        actor = label_actor(self.cart, texts, "labels", (0.05, 0.05, 0.05), font_size=14, backing=0.7, beside=True)
        self.plotter.add_actor(actor, name=LABELS, reset_camera=False, render=False, pickable=False)

    # ---- hover -----------------------------------------------------------------------------
    def nearest_on_screen(self, x: float, y: float) -> int | None:
        """The displayed atom whose centre projects within HOVER_RADIUS_PX of display point
        (x, y) (VTK display coordinates, origin lower left), the one nearest the camera."""
        if len(self.cart) == 0:
            return None
        ren = self.plotter.renderer
        width, height = ren.GetSize()
        if width <= 0 or height <= 0:
            return None
        matrix = ren.GetActiveCamera().GetCompositeProjectionTransformMatrix(ren.GetTiledAspectRatio(), -1, 1)
        m = np.array([[matrix.GetElement(i, j) for j in range(4)] for i in range(4)])
        clip = np.c_[self.cart, np.ones(len(self.cart))] @ m.T
        ndc = clip[:, :3] / clip[:, 3:4]
        ox, oy = ren.GetOrigin()
        sx, sy = ox + (ndc[:, 0] + 1) * 0.5 * width, oy + (ndc[:, 1] + 1) * 0.5 * height
        dist = np.hypot(sx - x, sy - y)
        near = np.flatnonzero(dist <= HOVER_RADIUS_PX)
        if len(near) == 0:
            return None
        return int(near[np.argmin(ndc[near, 2])])

    def hover(self, x: float, y: float) -> str | None:
        """Name the atom under display point (x, y) in the view's lower-left corner; None (and
        the corner cleared) over empty space. Returns the text drawn."""
        i = self.nearest_on_screen(x, y)
        if i == self.hovered:
            return self.describe(i) if i is not None else None
        self.hovered = i
        self._remove(HOVER)
        if i is None:
            return None
        text = self.describe(i)
        self.plotter.add_text(text, position="lower_left", font_size=10, color="black", name=HOVER, render=False)
        return text

    def clear_hover(self) -> None:
        self.hovered = None
        self._remove(HOVER)

    # ---- pick ------------------------------------------------------------------------------
    def pick(self, point) -> str | None:  # noqa: ANN001 ((3,) array from pyvista, or None)
        """Describe the displayed atom nearest to the world ``point`` (within PICK_RADIUS), with
        its distance to the previously picked atom."""
        if point is None or len(self.cart) == 0:
            return None
        dist = np.linalg.norm(self.cart - np.asarray(point, dtype=float)[None], axis=1)
        i = int(np.argmin(dist))
        if dist[i] > PICK_RADIUS:
            return None
        text = self.describe(i)
        j = self.last_pick
        if j is not None and j != i and j < len(self.cart):
            text += (f"; distance to {self.symbols[j]}{self.sites[j] + 1}: "
                     f"{np.linalg.norm(self.cart[i] - self.cart[j]):.3f} Å")
        self.last_pick = i
        return text

    def _remove(self, name: str) -> None:
        if name in self.plotter.actors:
            self.plotter.remove_actor(name, render=False)
