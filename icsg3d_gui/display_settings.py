"""How the 3-D view draws the state: ``DisplaySettings`` (UI-free, no Qt, no VTK) and the rules
behind two of its fields, bond rules per element pair and the isosurface levels.

- Bond rules: for each element pair present, a bond is drawn between two displayed atoms when
  ``min < d < max`` (Å) and the rule is on. Defaults come from covalent radii: ``max = tolerance x
  (r_cov,i + r_cov,j)``, ``min = 0``; metal-metal pairs are off by default in crystals with
  non-metals (an ionic crystal shows its cation-anion bonds, not Sr-Sr edges). ``bond_rules``
  holds only the pairs the user changed, as ``(A, B, min, max, on)`` with A <= B.
- Isosurface levels: ``(fraction, colour, opacity)``, the level a fraction of the shown grid's
  maximum, so a level follows the grid when the crystal changes (as the single isovalue did).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from icsg3d_gui.colors import covalent_radius, is_metal

BondRule = tuple[str, str, float, float, bool]  # (A, B, min Å, max Å, on), A <= B
IsoLevel = tuple[float, str, float]  # (fraction of the grid maximum, colour, opacity)

ISO_COLOURS = ("#4a90d9", "#e8743b", "#19a979", "#ed4a7b", "#945ecf")
DEFAULT_ISO: tuple[IsoLevel, ...] = ((0.25, ISO_COLOURS[0], 0.45),)


@dataclass
class DisplaySettings:
    """Everything the Display dock can change; the viewer redraws from it."""

    show_volume: bool = True
    show_iso: bool = False
    show_slices: bool = False
    show_hkl: bool = False  # a slice plane (hkl), coloured by density
    show_blobs: bool = False
    blob_truth: bool = False  # blobs of the crystal's true labels (known crystals) instead of the U-Net's
    show_atoms: bool = True
    show_bonds: bool = True
    show_labels: bool = False  # "Sr1", "O3": element and site number (1-based) at each atom
    show_cell: bool = True
    show_polyhedra: bool = False
    cmap: str = "viridis"
    opacity: str = "translucent"  # OPACITY_CURVES, or a pyvista transfer function: linear, sigmoid, geom, ...
    clim_fraction: tuple[float, float] = (0.0, 0.5)  # of the density maximum (peaks saturate)
    volume_opacity: float = 0.35  # scales the volume's opacity unit distance
    iso_levels: tuple[IsoLevel, ...] = DEFAULT_ISO
    slice_frac: tuple[float, float, float] = (0.5, 0.5, 0.0)
    slice_hkl: tuple[int, int, int] = (1, 1, 1)
    hkl_position: float = 0.5  # of the (super)cell's extent along the plane normal
    radius_scale: float = 0.18
    bond_tolerance: float = 1.1
    bond_rules: tuple[BondRule, ...] = ()  # the pairs the user changed; others follow the defaults
    log_scale: bool = False
    scheme: str = "VESTA"
    repeat: tuple[int, int, int] = field(default=(1, 1, 1))
    background: str = "white"
    volume_margin: float = 0.12  # of the cell: density drawn beyond each face (boundary atoms whole)
    lock_camera: bool = False  # keep the camera when the cell changes (compare crystals at one scale)
    orthographic: bool = False  # parallel projection (crystallographers' views along [uvw])


def pair_key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def default_rule(a: str, b: str, tolerance: float, ionic: bool) -> BondRule:
    """The covalent-radii rule for the pair (``ionic``: the crystal has non-metals)."""
    a, b = pair_key(a, b)
    on = not (ionic and is_metal(a) and is_metal(b))
    return (a, b, 0.0, round(tolerance * (covalent_radius(a) + covalent_radius(b)), 3), on)


def effective_rules(symbols: Iterable[str], tolerance: float,
                    overrides: Sequence[BondRule] = ()) -> dict[tuple[str, str], BondRule]:  # fmt: skip
    """Every element pair of ``symbols`` -> its rule: the user's where set, else the default."""
    elements = sorted(set(symbols))
    ionic = not all(is_metal(s) for s in elements)
    rules = {pair_key(a, b): default_rule(a, b, tolerance, ionic)
             for i, a in enumerate(elements) for b in elements[i:]}  # fmt: skip
    for rule in overrides:
        key = pair_key(rule[0], rule[1])
        if key in rules:
            rules[key] = (*key, float(rule[2]), float(rule[3]), bool(rule[4]))
    return rules


def set_rule(overrides: Sequence[BondRule], rule: BondRule) -> tuple[BondRule, ...]:
    """``overrides`` with ``rule`` replacing any rule of the same pair."""
    key = pair_key(rule[0], rule[1])
    kept = tuple(r for r in overrides if pair_key(r[0], r[1]) != key)
    return (*kept, (*key, float(rule[2]), float(rule[3]), bool(rule[4])))


def as_tuples(value: object) -> tuple:
    """JSON lists (a saved session) -> the nested tuples the settings hold."""
    if isinstance(value, list | tuple):
        return tuple(as_tuples(v) for v in value)
    return value  # type: ignore[return-value]
