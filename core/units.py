"""Units of the properties the models predict (as the data sets define them)."""

from __future__ import annotations

PROPERTY_UNITS = {
    "heat_ref": "eV",  # perov_5: heat of formation (Castelli et al.)
    "heat_all": "eV",
    "formation_energy_per_atom": "eV/atom",  # Materials Project
    "e_above_hull": "eV/atom",
    "band_gap": "eV",
    "dir_gap": "eV",
    "ind_gap": "eV",
    "n_atoms": "atoms",
}


def with_unit(name: str, value: float) -> str:
    """``-1.432 eV/atom``; a property of unknown unit says so rather than guess."""
    unit = PROPERTY_UNITS.get(name)
    return f"{value:.3f} {unit}" if unit else f"{value:.3f} (unit unknown)"
