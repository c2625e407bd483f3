"""Pure geometry for the 3-D view: crystals and grids -> pyvista meshes (no Qt, no plotter).

Conventions (VESTA-like):
- Grid point (i, j, k) of a (D, D, D) density sits at fractional position (i/D, j/D, k/D) of the
  cell; the grid is periodic, so for display one wrapped layer is appended on each axis and the
  (D+1)^3 points span the whole cell [0, 1]^3 exactly (spacing a/D along a, and so on).
- Atoms on a cell face, edge or corner are drawn with their periodic images on the opposite
  faces, as VESTA does with its default boundary 0..1.
- Bonds join displayed atoms closer than ``tolerance x (r_cov,i + r_cov,j)``; each bond is drawn
  as two half-sticks in the colours of its two atoms. Metal-metal contacts count as bonds only in
  crystals without non-metals (intermetallics), so that an ionic crystal shows its cation-anion
  bonds and not the cation-cation edges (Sr-Sr in SrTiO3).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pyvista as pv
from scipy.spatial import cKDTree

from icsg3d_gui.colors import atomic_radius, covalent_radius, element_rgb

#: fractional distance from a face within which an atom also gets its image on the opposite face
BOUNDARY_TOL = 1e-3


def is_axis_aligned(lattice: np.ndarray) -> bool:
    """True when the (3, 3) row-vector lattice is diagonal (an axis-aligned orthogonal cell)."""
    off = lattice - np.diag(np.diag(lattice))
    return bool(np.all(np.abs(off) < 1e-6) and np.all(np.diag(lattice) > 0))


def wrap_periodic(grid: np.ndarray, repeat: Sequence[int] = (1, 1, 1), margin: int = 0) -> np.ndarray:
    """Tile a periodic (D, D, D) grid ``repeat`` times and close it with one wrapped layer, plus
    ``margin`` periodic layers on every side.

    Returns (na*D+1+2m, nb*D+1+2m, nc*D+1+2m): the samples cover the (super)cell edge to edge and,
    with a margin, the parts of the atoms on its faces that stick out (VESTA draws boundary atoms
    whole; a flat cut at the cell face reads as a half atom).
    """
    tiled = np.tile(grid, tuple(int(r) for r in repeat))
    return np.pad(tiled, ((margin, margin + 1),) * 3, mode="wrap")


def density_mesh(
    density: np.ndarray, lattice: np.ndarray, repeat: Sequence[int] = (1, 1, 1), name: str = "density",
    margin: int = 0,
) -> pv.DataSet:
    """A pyvista grid holding ``density`` (D, D, D) over the cell ``lattice`` (3, 3 rows a, b, c),
    extended by ``margin`` grid points (periodic images) beyond every face.

    Orthogonal axis-aligned cells give an ``ImageData`` (volume rendering works); other cells give
    a ``StructuredGrid`` whose points follow the lattice (isosurfaces and slices work, and the
    volume layer falls back to an isosurface, see ``Viewer3D``).
    """
    data = wrap_periodic(np.asarray(density, dtype=np.float32), repeat, margin)
    d = np.asarray(density.shape, dtype=float)
    lat = np.asarray(lattice, dtype=float)
    if is_axis_aligned(lat):
        spacing = np.diag(lat) / d
        grid: pv.DataSet = pv.ImageData(dimensions=data.shape, spacing=tuple(spacing), origin=tuple(-margin * spacing))
    else:
        axes = [(np.arange(n) - margin) / di for n, di in zip(data.shape, d, strict=True)]
        fi, fj, fk = np.meshgrid(*axes, indexing="ij")
        frac = np.stack([fi.ravel(order="F"), fj.ravel(order="F"), fk.ravel(order="F")], axis=1)
        grid = pv.StructuredGrid()
        grid.points = frac @ lat
        grid.dimensions = data.shape
    # VTK orders points with x fastest: Fortran order of the (i, j, k) array.
    grid.point_data[name] = data.ravel(order="F")
    return grid


def display_atoms(
    frac: np.ndarray, symbols: Sequence[str], lattice: np.ndarray, repeat: Sequence[int] = (1, 1, 1)
) -> tuple[np.ndarray, list[str]]:
    """Cartesian positions (N, 3) and symbols of the atoms to draw in a (super)cell.

    ``frac`` (M, 3) are wrapped into [0, 1); each atom is repeated over the supercell and atoms
    on the boundary also get the images that close the supercell.
    """
    frac = np.mod(np.asarray(frac, dtype=float), 1.0)
    reps = np.asarray(repeat, dtype=int)
    shifts = np.stack(np.meshgrid(*[np.arange(r + 1) for r in reps], indexing="ij"), -1).reshape(-1, 3)
    out_pos: list[np.ndarray] = []
    out_sym: list[str] = []
    for f, sym in zip(frac, symbols, strict=True):
        f = np.where(f > 1 - BOUNDARY_TOL, f - 1, f)
        cand = f[None, :] + shifts
        keep = np.all((cand > -BOUNDARY_TOL) & (cand < reps + BOUNDARY_TOL), axis=1)
        for c in cand[keep]:
            out_pos.append(c)
            out_sym.append(sym)
    if not out_pos:
        return np.zeros((0, 3)), []
    return np.asarray(out_pos) @ np.asarray(lattice, dtype=float), out_sym


def atoms_mesh(
    cart: np.ndarray, symbols: Sequence[str], radius_scale: float = 0.4, scheme: str = "VESTA"
) -> pv.PolyData | None:
    """Spheres at ``cart`` (N, 3), RGB array ``rgb``.

    Radius = radius_scale x (atomic radius + 0.5 Å): the offset compresses the range (O 0.6 Å vs
    Sr 2.0 Å) so that light anions stay visible at bond junctions in ball-and-stick view.
    """
    if len(cart) == 0:
        return None
    pts = pv.PolyData(np.asarray(cart, dtype=float))
    pts.point_data["radius"] = np.array([(atomic_radius(s) + 0.5) * radius_scale for s in symbols])
    pts.point_data["rgb"] = (np.array([element_rgb(s, scheme) for s in symbols]) * 255).astype(np.uint8)
    # 20 x 20 facets: smooth at typical zoom, and half the triangles of 28 x 28 in software GL
    sphere = pv.Sphere(radius=1.0, theta_resolution=20, phi_resolution=20)
    # factor=1 with a unit sphere of radius 1 -> glyph radius == point's "radius" value
    return pts.glyph(scale="radius", geom=sphere, orient=False, factor=1.0)


@lru_cache(maxsize=256)
def is_metal(symbol: str) -> bool:
    from pymatgen.core import Element

    try:
        el = Element(symbol)
    except ValueError:
        return False
    return bool(el.is_metal)


def bond_pairs(cart: np.ndarray, symbols: Sequence[str], tolerance: float = 1.15) -> np.ndarray:
    """(K, 2) index pairs of displayed atoms closer than tolerance x (sum of covalent radii)."""
    if len(cart) < 2:
        return np.zeros((0, 2), dtype=int)
    radii = np.array([covalent_radius(s) for s in symbols])
    metal = np.array([is_metal(s) for s in symbols])
    tree = cKDTree(cart)
    pairs = tree.query_pairs(r=float(2 * radii.max() * tolerance), output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros((0, 2), dtype=int)
    dist = np.linalg.norm(cart[pairs[:, 0]] - cart[pairs[:, 1]], axis=1)
    ok = (dist < tolerance * (radii[pairs[:, 0]] + radii[pairs[:, 1]])) & (dist > 0.3)
    if not metal.all():  # a crystal with non-metals: no metal-metal bonds
        ok &= ~(metal[pairs[:, 0]] & metal[pairs[:, 1]])
    return pairs[ok]


def bonds_mesh(
    cart: np.ndarray,
    symbols: Sequence[str],
    tolerance: float = 1.15,
    radius: float = 0.12,
    scheme: str = "VESTA",
) -> pv.PolyData | None:
    """Half-stick tubes for every bond of ``bond_pairs``, coloured by the atom at each end."""
    pairs = bond_pairs(cart, symbols, tolerance)
    if len(pairs) == 0:
        return None
    a, b = cart[pairs[:, 0]], cart[pairs[:, 1]]
    mid = 0.5 * (a + b)
    points = np.concatenate([a, mid, b])
    k = len(pairs)
    idx = np.arange(k)
    lines = np.concatenate(
        [np.stack([np.full(k, 2), idx, idx + k], 1), np.stack([np.full(k, 2), idx + k, idx + 2 * k], 1)]
    ).ravel()
    poly = pv.PolyData(points, lines=lines)
    colours = [element_rgb(symbols[i], scheme) for i in pairs[:, 0]]
    colours += [element_rgb(symbols[j], scheme) for j in pairs[:, 1]]
    poly.cell_data["rgb"] = (np.asarray(colours) * 255).astype(np.uint8)
    return poly.tube(radius=radius, n_sides=10)


def cell_mesh(lattice: np.ndarray, repeat: Sequence[int] = (1, 1, 1)) -> pv.PolyData:
    """Line segments of the unit cell edges (one box per cell of the supercell)."""
    corners = np.array(
        [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=float
    )
    edges = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)]
    lat = np.asarray(lattice, dtype=float)
    points: list[np.ndarray] = []
    lines: list[int] = []
    for shift in np.ndindex(*[int(r) for r in repeat]):
        base = len(points) * 8
        points.append((corners + np.asarray(shift)) @ lat)
        for i, j in edges:
            lines += [2, base + i, base + j]
    return pv.PolyData(np.concatenate(points), lines=np.asarray(lines))


def label_blobs(
    labels: np.ndarray,
    lattice: np.ndarray,
    class_symbols: Sequence[str],
    repeat: Sequence[int] = (1, 1, 1),
    scheme: str = "VESTA",
) -> pv.PolyData | None:
    """One closed surface per segmented species, merged, with an ``rgb`` point array.

    labels (D, D, D) int class ids (0 = background, c = class_symbols[c]).
    """
    meshes: list[pv.PolyData] = []
    for cls in np.unique(labels):
        if cls == 0 or cls >= len(class_symbols):
            continue
        mask = (labels == cls).astype(np.float32)
        grid = density_mesh(mask, lattice, repeat, name="mask")
        surf = grid.contour([0.5], scalars="mask")
        if surf.n_points == 0:
            continue
        surf = surf.smooth(n_iter=15) if surf.n_cells else surf
        rgb = (np.asarray(element_rgb(class_symbols[int(cls)], scheme)) * 255).astype(np.uint8)
        surf.point_data["rgb"] = np.tile(rgb, (surf.n_points, 1))
        meshes.append(surf)
    if not meshes:
        return None
    merged = meshes[0].merge(meshes[1:]) if len(meshes) > 1 else meshes[0]
    return merged.extract_surface() if not isinstance(merged, pv.PolyData) else merged


def frac_and_symbols(structure) -> tuple[np.ndarray, list[str]]:  # noqa: ANN001 (pymatgen Structure)
    """Fractional coordinates (N, 3) and the majority species symbol of each site."""
    frac = np.array([s.frac_coords for s in structure]) if len(structure) else np.zeros((0, 3))
    symbols = [max(s.species.items(), key=lambda kv: kv[1])[0].symbol for s in structure]
    return frac, symbols


POLYHEDRON_CN = (4, 8)  # coordination numbers drawn as polyhedra (tetrahedra to cubes; not A-site cages)


def polyhedra_mesh(structure, repeat: Sequence[int] = (1, 1, 1), tolerance: float = 1.15,  # noqa: ANN001
                   scheme: str = "VESTA") -> pv.PolyData | None:  # fmt: skip
    """Coordination polyhedra (VESTA style): for each metal site bonded to 4-8 non-metal neighbours
    (closer than ``tolerance`` x the sum of covalent radii; periodic images included), the convex
    hull of those neighbours, coloured like the central atom; one per site of each (super)cell."""
    from scipy.spatial import ConvexHull, QhullError

    lat = np.asarray(structure.lattice.matrix, dtype=float)
    points, faces, colours = [], [], []
    reach = 2.0 * tolerance * max(covalent_radius(s.specie.symbol) for s in structure)
    for site in structure:
        symbol = site.specie.symbol
        if not is_metal(symbol):
            continue
        neigh = [n for n in structure.get_neighbors(site, reach)
                 if not is_metal(n.specie.symbol)
                 and n.nn_distance < tolerance * (covalent_radius(symbol) + covalent_radius(n.specie.symbol))]  # fmt: skip
        if not POLYHEDRON_CN[0] <= len(neigh) <= POLYHEDRON_CN[1]:
            continue
        corners = np.array([n.coords for n in neigh]) - site.coords  # relative to the centre
        try:
            hull = ConvexHull(corners)
        except QhullError:  # flat (e.g. square-planar): no volume to draw
            continue
        centre_frac = np.mod(site.frac_coords, 1.0)
        for shift in np.ndindex(*(int(r) for r in repeat)):
            centre = (centre_frac + np.asarray(shift)) @ lat
            base = sum(len(p) for p in points)
            points.append(corners + centre)
            faces.extend(np.c_[np.full(len(hull.simplices), 3), hull.simplices + base].ravel())
            colours.extend([element_rgb(symbol, scheme)] * len(hull.simplices))
    if not points:
        return None
    poly = pv.PolyData(np.concatenate(points), faces=np.asarray(faces))
    poly.cell_data["rgb"] = (np.asarray(colours) * 255).astype(np.uint8)
    return poly
