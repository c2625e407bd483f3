"""Where latent vectors come from: the priors a model set samples, draws near a crystal, paths.

``LatentSpace`` is the sampling half of ``core.pipeline.ModelSet`` (a mixin: it uses the set's
``encode``, ``decode``, priors and settings and keeps none of its own).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from core.composition_prior import FILENAME as COMPOSITION_FILE
from core.errors import ICSGError
from core.latent_prior import FILENAME as PRIOR_FILE

if TYPE_CHECKING:
    from pymatgen.core import Structure

log = logging.getLogger(__name__)

PRIORS = ("auto", "composition", "composition-unfiltered", "substitution", "fitted", "normal")
MAX_DRAW_ROUNDS = 20  # rounds of draws of a set that rejects high-energy samples (sampling.max_energy)
SUBSTITUTION_TRIES = 20  # template draws per substitution sample before repeats are allowed
REPEAT_TRIES = 100  # then this many more per sample, repeats allowed, before giving up
DECODE_BATCH = 64  # latents decoded at once while filtering samples (as core.evaluation.BATCH)


class LatentSpace:
    """Sampling methods of a model set. The host class provides ``latent_dim``, ``temperature``,
    ``prior`` (core.latent_prior.LatentPrior | None), ``composition_prior``, ``substitution``,
    ``max_energy``, ``relax``, ``source``, ``known``, ``vocab``, ``domain_problem``, ``encode``
    and ``decode``."""

    def sample(
        self, n: int, temperature: float | None = None, seed: int = 0, prior: str = "auto", group: str | None = None
    ) -> np.ndarray:
        """n latent vectors (n, L), seeded: ``sample_with_proposals`` without the proposals."""
        return self.sample_with_proposals(n, temperature, seed, prior, group)[0]

    def sample_with_proposals(
        self, n: int, temperature: float | None = None, seed: int = 0, prior: str = "auto", group: str | None = None
    ) -> tuple[np.ndarray, list[Structure] | None]:
        """(n latent vectors (n, L), the n crystals they encode or None), seeded. The crystals come
        with the priors that propose crystals and encode them (composition, substitution); a
        substitution's ``properties["proposal"]`` says which training crystal it was made of.
        ``temperature`` None: the set's own (``self.temperature``).
        ``prior``: 'composition' (new compositions on learned
        prototypes, encoded: core/composition_prior.py; ``temperature`` unused;
        'composition-unfiltered': the same without skipping known or repeated ones), 'substitution'
        (training crystals with their ions swapped, encoded: ``sample_substitutions``), 'fitted' (the
        latent mixture over the training crystals, only its ``group`` components when given:
        core/latent_prior.py), 'normal' (N(0, T^2 I)), or 'auto': composition when the set has
        it and no group is asked for, else substitution when its meta.json makes it the default
        (``sampling.substitution.default``), else fitted when it has one, else normal."""
        if prior not in PRIORS:
            raise ICSGError(f"unknown prior {prior!r}: expected one of {', '.join(PRIORS)}")
        if prior == "auto":
            prior = auto_prior(self, group)
        if prior == "substitution":
            if group is not None:
                raise ICSGError(
                    "a prior group applies to the fitted prior (--prior fitted), not to substitutions"
                )
            return self.sample_substitutions(n, seed)
        if prior.startswith("composition"):
            if group is not None:
                raise ICSGError(
                    "a prior group applies to the fitted prior (--prior fitted), not to the composition prior"
                )
            free = prior == "composition-unfiltered"  # the ablation: known and repeated compositions allowed
            return self.sample_compositions(n, seed, exclude_known=not free, unique=not free)
        if prior == "fitted" and self.prior is None:
            raise ICSGError(f"{self.source}: this model set has no fitted prior (vae/{PRIOR_FILE}); "
                            "make one with: icsg3d fit-prior")  # fmt: skip
        if group is not None and prior == "normal":
            raise ICSGError(f"a prior group ({group!r}) needs the fitted prior, not N(0, I)")
        temperature = self.temperature if temperature is None else float(temperature)

        def draw(m: int, draw_seed: int) -> np.ndarray:
            if prior == "fitted":
                return self.prior.sample(m, temperature, draw_seed, group=group)
            rng = np.random.default_rng(draw_seed)
            return (rng.standard_normal((m, self.latent_dim)) * temperature).astype(np.float32)

        if self.max_energy is None or not self.relax:
            return draw(n, seed), None
        return self._low_energy_latents(draw, n, seed), None

    def _low_energy_latents(self, draw: Callable[[int, int], np.ndarray], n: int, seed: int) -> np.ndarray:
        """n latents whose decodes, relaxed, lie at or below ``self.max_energy`` eV/atom: rounds of
        draws (seeds derived from ``seed``) until n are kept; after MAX_DRAW_ROUNDS the lowest of the
        rest fill the gap (logged)."""
        kept, rejected, rejected_energy = [], [], []
        for round_no in range(MAX_DRAW_ROUNDS):
            z = draw(max(2 * (n - len(kept)), 8), seed * MAX_DRAW_ROUNDS + round_no)
            energy = self._relaxed_energies(z)
            ok = energy <= self.max_energy  # NaN (no structure, another element) is never kept
            kept += list(z[ok])
            rejected += list(z[~ok])
            rejected_energy += list(np.nan_to_num(energy[~ok], nan=np.inf))
            if len(kept) >= n:
                return np.stack(kept[:n])
        log.warning("%d of %d samples above %.2f eV/atom after %d rounds: the lowest of them fill in",
                    n - len(kept), n, self.max_energy, MAX_DRAW_ROUNDS)  # fmt: skip
        fill = [rejected[i] for i in np.argsort(rejected_energy)[: n - len(kept)]]
        return np.stack(kept + fill)

    def _relaxed_energies(self, z: np.ndarray) -> np.ndarray:
        """(len(z),) eV/atom of each latent's decode, relaxed in the set's potential (NaN: none).
        Decoded DECODE_BATCH at a time: 20,000 grids at once do not fit in memory."""
        from core.relax import energies_per_atom

        potential = self.relax.get("potential", "tersoff_c")
        energy = []
        for first in range(0, len(z), DECODE_BATCH):
            decoded = self.decode(z[first : first + DECODE_BATCH], predict=False, labels=False)
            energy.append(energies_per_atom([r.structure for r in decoded], potential))
        return np.concatenate(energy) if energy else np.zeros(0)

    def sample_substitutions(self, n: int, seed: int = 0) -> tuple[np.ndarray, list[Structure]]:
        """Substitution sampling for any lattice: (z (n, L), the crystals encoded). Each is a
        training crystal of the set's own data (the known index's ids with a prefix in
        ``self.substitution["templates"]``) with its ions swapped (core/substitution.py), within the
        set's domain, of a formula no training crystal has and, while SUBSTITUTION_TRIES x n
        template draws last, none drawn before in this call. Seeded."""
        from core.substitution import describe_substitution, substitute

        if not self.substitution or self.known is None:
            raise ICSGError(f"{self.source}: this model set has no substitution prior "
                            '(vae/meta.json "sampling": {"substitution": {"templates": [...]}} and known.json.gz)')  # fmt: skip
        known = self.known
        prefixes = tuple(self.substitution["templates"])
        templates = [i for i, name in enumerate(known.ids) if str(name).startswith(prefixes)]
        if not templates:
            raise ICSGError(
                f"{self.source}: no training crystal has an id starting with {', '.join(prefixes)}"
            )
        rng = np.random.default_rng(seed)
        trained = known.formulas()
        exclude = set(trained)
        proposed: list[Structure] = []
        for attempt in range((SUBSTITUTION_TRIES + REPEAT_TRIES) * n):
            if len(proposed) == n:
                break
            if attempt == SUBSTITUTION_TRIES * n:  # the neighbourhood is spent: repeats allowed
                log.warning("%d of %d substitutions new after %d draws; the rest may repeat", len(proposed), n, attempt)
                exclude = set(trained)
            parent = int(rng.choice(templates))
            template = known.structure(parent)
            s = substitute(template, rng, self.vocab.__contains__, exclude)
            if s is not None and self.domain_problem(s) is None:
                exclude.add(s.composition.reduced_formula)
                s.properties["proposal"] = describe_substitution(template, s, known.ids[parent])
                proposed.append(s)
        if len(proposed) < n:
            raise ICSGError(f"{self.source}: only {len(proposed)} of {n} substitutions could be made")
        z = [self.encode(proposed[first : first + 256]) for first in range(0, n, 256)]
        return (np.concatenate(z) if z else np.zeros((0, self.latent_dim), np.float32)), proposed

    def sample_compositions(self, n: int, seed: int = 0, exclude_known: bool = True,
                            unique: bool = True) -> tuple[np.ndarray, list[Structure]]:  # fmt: skip
        """Composition-first sampling: (z (n, L), the proposed ideal crystals that were encoded)."""
        if self.composition_prior is None:
            raise ICSGError(f"{self.source}: this model set has no composition prior (vae/{COMPOSITION_FILE}); "
                            "make one with: icsg3d fit-prior --kind composition")  # fmt: skip
        proposed = self.composition_prior.sample(n, seed, exclude_known=exclude_known, unique=unique)
        # proposals are built in the training convention (core/composition_prior.py): no search
        z = [
            self.encode(proposed[first : first + 256], frame_search=False)
            for first in range(0, len(proposed), 256)
        ]
        return np.concatenate(z) if z else np.zeros((0, self.latent_dim), np.float32), proposed

    def around(self, z: np.ndarray, n: int, spread: float | None = 0.5, seed: int = 0) -> np.ndarray:
        """n latent vectors around z: z + spread * N(0, I), seeded; ``spread`` None: the set's own
        temperature, as ``sample`` takes it."""
        spread = self.temperature if spread is None else float(spread)
        rng = np.random.default_rng(seed)
        return (np.asarray(z, np.float32)[None] + spread * rng.standard_normal((n, self.latent_dim))).astype(
            np.float32
        )

    @staticmethod
    def interpolate(za: np.ndarray, zb: np.ndarray, steps: int, method: str = "slerp") -> np.ndarray:
        """(steps, L) path from za to zb, linear or spherical (slerp keeps prior-typical norms)."""
        if steps < 2:
            raise ICSGError("interpolation needs at least 2 steps")
        t = np.linspace(0.0, 1.0, steps)[:, None]
        za, zb = np.asarray(za, np.float64), np.asarray(zb, np.float64)
        if method == "linear":
            return ((1 - t) * za + t * zb).astype(np.float32)
        if method != "slerp":
            raise ICSGError(f"unknown interpolation method {method!r}: use slerp or linear")
        cos = np.dot(za, zb) / max(np.linalg.norm(za) * np.linalg.norm(zb), 1e-12)
        omega = math.acos(float(np.clip(cos, -1.0, 1.0)))
        if omega < 1e-6:
            return ((1 - t) * za + t * zb).astype(np.float32)
        path = (np.sin((1 - t) * omega) * za + np.sin(t * omega) * zb) / math.sin(omega)
        return path.astype(np.float32)


def auto_prior(ms, group: str | None) -> str:
    """The prior 'auto' means for a model set (see ``LatentSpace.sample``)."""
    if ms.composition_prior is not None and group is None:
        return "composition"
    if ms.substitution and ms.substitution.get("default") and group is None:
        return "substitution"
    return "fitted" if ms.prior is not None else "normal"
