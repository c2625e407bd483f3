"""Element data the representation needs: atomic numbers, ionic radii and the class vocabulary.

The Gaussian width of an atom in the density grid is proportional to its ionic radius. pymatgen
gives ionic radii per oxidation state; we use their mean (as the original ICSG3D did). Elements
with no ionic radius in pymatgen (noble gases, H) fall back to the atomic radius, then to 1.2 Å
(the original's fallback), so every element up to Pu has a defined width.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache

from pymatgen.core import Element

FALLBACK_RADIUS = 1.2  # Å, used when pymatgen knows neither an ionic nor an atomic radius
MAX_Z = 94  # Pu: the default vocabulary covers H..Pu


@cache
def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol ("Sr" -> 38); raises ValueError for unknown symbols."""
    return int(Element(symbol).Z)


@cache
def ionic_radius(symbol: str) -> float:
    """Mean ionic radius over the oxidation states pymatgen tabulates (Å), with fallbacks."""
    element = Element(symbol)
    radii = [float(r) for r in element.ionic_radii.values()] if element.ionic_radii else []
    if radii:
        return sum(radii) / len(radii)
    if element.atomic_radius is not None:
        return float(element.atomic_radius)
    return FALLBACK_RADIUS


class Vocabulary:
    """Species classes of the segmentation: class 0 is background, class i is ``symbols[i - 1]``.

    The vocabulary of a model is the set of elements in its training data; it is stored inside
    every checkpoint so that class ids mean the same thing at inference time.
    """

    def __init__(self, symbols: Sequence[str]) -> None:
        cleaned = [str(s) for s in symbols]
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("vocabulary symbols must be unique")
        for s in cleaned:
            atomic_number(s)  # validates the symbol
        # Sorted by atomic number so that equal sets give equal vocabularies.
        self.symbols: tuple[str, ...] = tuple(sorted(cleaned, key=atomic_number))
        self._index = {s: i + 1 for i, s in enumerate(self.symbols)}

    @classmethod
    def default(cls) -> Vocabulary:
        """All elements H..Pu (used when no trained model fixes the vocabulary)."""
        return cls([Element.from_Z(z).symbol for z in range(1, MAX_Z + 1)])

    @classmethod
    def from_structures(cls, structures: Iterable) -> Vocabulary:
        """The elements occurring in an iterable of pymatgen Structures."""
        found: set[str] = set()
        for s in structures:
            found.update(el.symbol for el in s.composition.elements)
        return cls(sorted(found))

    @classmethod
    def from_list(cls, symbols: Sequence[str]) -> Vocabulary:
        return cls(symbols)

    def to_list(self) -> list[str]:
        return list(self.symbols)

    def index(self, symbol: str) -> int:
        """Class id of an element; raises KeyError if it is outside the vocabulary."""
        try:
            return self._index[symbol]
        except KeyError:
            raise KeyError(f"element {symbol!r} is not in the model's vocabulary") from None

    def symbol(self, class_id: int) -> str:
        """Element symbol of a class id (>= 1)."""
        if not 1 <= class_id <= len(self.symbols):
            raise IndexError(f"class id {class_id} outside 1..{len(self.symbols)}")
        return self.symbols[class_id - 1]

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._index

    def __len__(self) -> int:
        return len(self.symbols) + 1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and other.symbols == self.symbols

    def __hash__(self) -> int:
        return hash(self.symbols)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self.symbols)} elements)"
