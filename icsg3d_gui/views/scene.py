"""Pure geometry for the 3-D view: crystals and grids -> pyvista meshes (no Qt, no plotter).

Conventions (VESTA-like):
- Grid point (i, j, k) of a (D, D, D) density sits at fractional position (i/D, j/D, k/D) of the
  cell; the grid is periodic, so for display one wrapped layer is appended on each axis and the
  (D+1)^3 points span the whole cell [0, 1]^3 exactly (spacing a/D along a, and so on).
- Atoms on a cell face, edge or corner are drawn with their periodic images on the opposite
  faces, as VESTA does with its default boundary 0..1.
- Bonds join displayed atoms by the rule of their element pair (``min < d < max``; defaults
  ``max = tolerance x (r_cov,i + r_cov,j)``, see display_settings.py); each bond is drawn as two
  half-sticks in the colours of its two atoms. Metal-metal contacts are off by default in
  crystals with non-metals, so that an ionic crystal shows its cation-anion bonds and not the
  cation-cation edges (Sr-Sr in SrTiO3). Bonds are found among the displayed atoms of the whole
  supercell, so bonds across the edges between its cells are drawn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyvista as pv
from scipy.spatial import cKDTree

from icsg3d_gui.colors import atomic_radius, element_rgb, is_metal  # noqa: F401 (is_metal: re-exported)
from icsg3d_gui.display_settings import BondRule, effective_rules

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
    a ``StructuredGrid`` whose points follow the lattice (isosurfaces and slices); VTK's volume
    mappers need an axis-aligned grid, so the volume layer draws the density of such a cell
    resampled onto a Cartesian box over the same region (``sheared_volume.resample_sheared``).
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
    """Cartesian positions (N, 3) and symbols of the atoms to draw in a (super)cell
    (``display_sites`` without the site numbers)."""
    cart, shown, _ = display_sites(frac, symbols, lattice, repeat)
    return cart, shown


def display_sites(
    frac: np.ndarray, symbols: Sequence[str], lattice: np.ndarray, repeat: Sequence[int] = (1, 1, 1)
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Cartesian positions (N, 3), symbols and site index (N,) into ``frac`` of the atoms to draw.

    ``frac`` (M, 3) are wrapped into [0, 1); each atom is repeated over the supercell and atoms
    on the boundary also get the images that close the supercell.
    """
    frac = np.mod(np.asarray(frac, dtype=float), 1.0)
    reps = np.asarray(repeat, dtype=int)
    shifts = np.stack(np.meshgrid(*[np.arange(r + 1) for r in reps], indexing="ij"), -1).reshape(-1, 3)
    out_pos: list[np.ndarray] = []
    out_sym: list[str] = []
    out_site: list[int] = []
    for site, (f, sym) in enumerate(zip(frac, symbols, strict=True)):
        f = np.where(f > 1 - BOUNDARY_TOL, f - 1, f)
        cand = f[None, :] + shifts
        keep = np.all((cand > -BOUNDARY_TOL) & (cand < reps + BOUNDARY_TOL), axis=1)
        for c in cand[keep]:
            out_pos.append(c)
            out_sym.append(sym)
            out_site.append(site)
    if not out_pos:
        return np.zeros((0, 3)), [], np.zeros(0, dtype=int)
    return np.asarray(out_pos) @ np.asarray(lattice, dtype=float), out_sym, np.asarray(out_site, dtype=int)


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


def bond_pairs(cart: np.ndarray, symbols: Sequence[str], tolerance: float = 1.15,
               rules: Sequence[BondRule] = ()) -> np.ndarray:  # fmt: skip
    """(K, 2) index pairs of displayed atoms bonded by the pair's rule (``min < d < max``, on):
    the user's ``rules`` where given, else the covalent-radii default (display_settings.py)."""
    if len(cart) < 2:
        return np.zeros((0, 2), dtype=int)
    table = effective_rules(symbols, tolerance, rules)
    reach = max((r[3] for r in table.values() if r[4]), default=0.0)
    if reach <= 0:
        return np.zeros((0, 2), dtype=int)
    pairs = cKDTree(cart).query_pairs(r=float(reach), output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros((0, 2), dtype=int)
    elements = sorted(set(symbols))
    code = {s: i for i, s in enumerate(elements)}
    n = len(elements)
    lo, hi = np.full((n, n), np.inf), np.zeros((n, n))  # a pair without a rule that is on: no bond
    for (a, b), (_, _, rmin, rmax, on) in table.items():
        if on:
            lo[code[a], code[b]] = lo[code[b], code[a]] = rmin
            hi[code[a], code[b]] = hi[code[b], code[a]] = rmax
    idx = np.array([code[s] for s in symbols])
    ci, cj = idx[pairs[:, 0]], idx[pairs[:, 1]]
    dist = np.linalg.norm(cart[pairs[:, 0]] - cart[pairs[:, 1]], axis=1)
    ok = (dist > np.maximum(lo[ci, cj], 1e-3)) & (dist < hi[ci, cj])
    return pairs[ok]


def bonds_mesh(
    cart: np.ndarray,
    symbols: Sequence[str],
    tolerance: float = 1.15,
    radius: float = 0.12,
    scheme: str = "VESTA",
    rules: Sequence[BondRule] = (),
) -> pv.PolyData | None:
    """Half-stick tubes for every bond of ``bond_pairs``, coloured by the atom at each end."""
    pairs = bond_pairs(cart, symbols, tolerance, rules)
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
                   scheme: str = "VESTA", rules: Sequence[BondRule] = ()) -> pv.PolyData | None:  # fmt: skip
    """Coordination polyhedra (VESTA style): for each metal site bonded to 4-8 non-metal neighbours
    (by the bond rules of the pairs; periodic images included), the convex hull of those
    neighbours, coloured like the central atom; one per site of each (super)cell."""
    from scipy.spatial import ConvexHull, QhullError

    lat = np.asarray(structure.lattice.matrix, dtype=float)
    points, faces, colours = [], [], []
    table = effective_rules([s.specie.symbol for s in structure], tolerance, rules)
    reach = max((r[3] for r in table.values() if r[4]), default=0.0)
    for site in structure:
        symbol = site.specie.symbol
        if not is_metal(symbol) or reach <= 0:
            continue
        neigh = [n for n in structure.get_neighbors(site, reach)
                 if not is_metal(n.specie.symbol) and _bonded(table, symbol, n.specie.symbol, n.nn_distance)]
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


def _bonded(table: dict, a: str, b: str, dist: float) -> bool:
    rule = table[(a, b) if a <= b else (b, a)]
    return bool(rule[4]) and max(rule[2], 1e-3) < dist < rule[3]


def hkl_plane(lattice: np.ndarray, hkl: Sequence[int], position: float,
              repeat: Sequence[int] = (1, 1, 1)) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(origin, unit normal) of the lattice plane (hkl) of the unit cell ``lattice`` (rows a, b, c).

    The normal is h a* + k b* + l c* (reciprocal vectors of the unit cell); ``position`` in [0, 1]
    places the plane between the (super)cell corners' lowest and highest projections on it (0.5:
    through the centre of the shown cell).
    """
    lat = np.asarray(lattice, dtype=float)
    normal = np.asarray(hkl, dtype=float) @ np.linalg.inv(lat).T
    norm = np.linalg.norm(normal)
    if norm < 1e-12:
        raise ValueError("(000) is not a plane")
    normal /= norm
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=float)
    corners = corners * np.asarray(repeat, dtype=float) @ lat
    proj = corners @ normal
    level = proj.min() + float(np.clip(position, 0.0, 1.0)) * (proj.max() - proj.min())
    centre = corners.mean(axis=0)
    return centre + (level - centre @ normal) * normal, normal


def site_labels(symbols: Sequence[str], sites: Sequence[int]) -> list[str]:
    """VESTA-style labels: element and 1-based site number ("Sr1", "O3")."""
    return [f"{sym}{int(i) + 1}" for sym, i in zip(symbols, sites, strict=True)]
