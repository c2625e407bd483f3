"""What the `icsg3d` sub-commands share: the model-set options, --prior, loading the model set,
and the JSON/stderr reports of failures."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from resources import models_help

log = logging.getLogger("icsg3d")


def report_failures(failures: Sequence, shown: int = 20) -> None:
    """Log the first ``shown`` failures (source and reason) and how many more there are."""
    for f in failures[:shown]:
        log.warning("skipped %s: %s", f.source, f.reason)
    if len(failures) > shown:
        log.warning("... and %d more failures", len(failures) - shown)


def load_model_set(args: argparse.Namespace):  # noqa: ANN201 (core.pipeline.ModelSet; imported lazily)
    from core.pipeline import ModelSet

    model_set = ModelSet.load(models_root(args), device=getattr(args, "device", "auto"))
    if getattr(args, "no_relax", False):
        model_set.relax = None  # the decoded positions as refined, not relaxed in a potential
    ceiling = getattr(args, "max_energy", None)
    if ceiling is not None:
        model_set.max_energy = None if ceiling == "off" else float(ceiling)
        if model_set.max_energy is not None and not model_set.relax:
            from core.errors import ICSGError

            raise ICSGError(f"{model_set.source}: --max-energy needs a set that relaxes its decodes in a "
                            "potential (carbon_24), and no --no-relax")  # fmt: skip
    return model_set


def _energy_or_off(text: str) -> str:
    """--max-energy's value: 'off' or a number (eV/atom), kept as text until the set is loaded."""
    if text != "off":
        try:
            float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected eV/atom (e.g. -6.5) or 'off', got {text!r}") from None
    return text


def models_root(args: argparse.Namespace) -> Path:
    """--models (a shipped set's name or a folder), else the default shipped set."""
    from core.model_sets import resolve_models

    return resolve_models(getattr(args, "models", None))


def add_model_options(p: argparse.ArgumentParser, out: bool = True) -> None:
    """--models and --device; with ``out`` also --out, --force, --symprec and --no-relax (commands
    writing CIFs)."""
    p.add_argument("--models", help=models_help())
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    if out:
        p.add_argument("--out", required=True, type=Path, help="output folder (CIFs + summary.csv)")
        p.add_argument("--force", action="store_true", help="overwrite existing outputs")
        p.add_argument("--symprec", type=float, default=None, help="symmetrise CIFs with this tolerance (Å); default P1")
        p.add_argument("--no-relax", action="store_true",
                       help="keep decoded positions as refined to the density, without the set's relaxation in "
                            "a classical potential (carbon_24: Tersoff; core/relax.py)")


def add_prior_options(p: argparse.ArgumentParser, what: str = "") -> None:
    """--prior and --prior-group, as `generate` and `evaluate generation` take them."""
    from core.sampling import PRIORS

    p.add_argument("--prior", choices=list(PRIORS), default="auto",
                   help=f"{what}composition: new compositions on learned prototypes, encoded (the default when "
                        "the model set has one); substitution: training crystals with their ions swapped "
                        "(any lattice; sets whose meta.json names templates); fitted: the latent "
                        "mixture over the training crystals; "
                        "normal: N(0, T^2 I)")  # fmt: skip
    p.add_argument("--prior-group", default=None, metavar="NAME",
                   help="sample only the prior's components of this training family (e.g. perov_5)")  # fmt: skip
    p.add_argument("--max-energy", type=_energy_or_off, default=None, metavar="E|off",
                   help="keep samples whose relaxed decode lies at or below E eV/atom, redrawing the others "
                        "(sets that relax in a potential: carbon_24); 'off': none; default: the set's own "
                        "(its meta.json sampling.max_energy)")  # fmt: skip
