"""Element colours (Jmol and VESTA schemes) and display radii.

The colours are the Jmol and VESTA schemes pymatgen ships (``ElementColorSchemes.yaml``); an
element neither scheme knows gets a defined fallback.
"""

from __future__ import annotations

from functools import lru_cache

#: RGB 0..255 of an element nobody has a colour for (pinkish grey, as Jmol's "unknown").
FALLBACK_RGB = (255, 20, 147)
#: Å; display radius when pymatgen has no atomic radius for an element.
FALLBACK_RADIUS = 1.5

SCHEME_NAMES = ("VESTA", "Jmol")


@lru_cache(maxsize=1)
def _schemes() -> dict[str, dict[str, tuple[int, int, int]]]:
    """pymatgen's Jmol and VESTA tables (RGB 0..255), read on first use (ruamel takes ~0.2 s)."""
    from importlib.resources import files

    from monty.serialization import loadfn

    # the file moved from pymatgen/vis to pymatgen/core between releases
    for package in ("pymatgen.core", "pymatgen.vis"):
        path = files(package) / "ElementColorSchemes.yaml"
        if path.is_file():
            data = loadfn(str(path))
            return {name: {el: tuple(int(v) for v in rgb) for el, rgb in data[name].items()} for name in SCHEME_NAMES}
    raise FileNotFoundError("pymatgen ships no ElementColorSchemes.yaml")


def element_rgb(symbol: str, scheme: str = "VESTA") -> tuple[float, float, float]:
    """Colour of an element as floats in 0..1 (for VTK); unknown symbols get FALLBACK_RGB."""
    schemes = _schemes()
    r, g, b = schemes.get(scheme, schemes["VESTA"]).get(symbol, FALLBACK_RGB)
    return (r / 255.0, g / 255.0, b / 255.0)


@lru_cache(maxsize=256)
def atomic_radius(symbol: str) -> float:
    """Empirical atomic radius in Å (pymatgen), the ball size VESTA-style viewers start from."""
    from pymatgen.core import Element

    try:
        radius = Element(symbol).atomic_radius
    except (ValueError, KeyError):
        return FALLBACK_RADIUS
    return float(radius) if radius is not None else FALLBACK_RADIUS


@lru_cache(maxsize=256)
def covalent_radius(symbol: str) -> float:
    """Covalent radius in Å (Cordero 2008, via pymatgen); used for the bond cutoff."""
    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius

    return float(CovalentRadius.radius.get(symbol, FALLBACK_RADIUS))


@lru_cache(maxsize=256)
def is_metal(symbol: str) -> bool:
    """pymatgen's metal flag (False for an unknown symbol)."""
    from pymatgen.core import Element

    try:
        el = Element(symbol)
    except ValueError:
        return False
    return bool(el.is_metal)
