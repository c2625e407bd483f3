"""The loaded model set and everything it does: encode, decode, segment, sample, interpolate
and predict. The CLI and the GUI's worker thread both use one ``ModelSet``.

A model-set folder holds ``vae/``, ``unet/`` and ``cgcnn/`` (each a checkpoint directory, or a
training run folder whose ``best/`` is one). Only the VAE is required; without the U-Net the VAE's
own species head segments, without CGCNN there are no property predictions.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import EllipsisType

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from core.canonical import best_frames, reconstruction_misfit
from core.checkpoint import load_checkpoint
from core.composition_prior import FILENAME as COMPOSITION_FILE
from core.composition_prior import CompositionPrior
from core.conditions import UNKNOWN_BIN, to_bin
from core.decoding import Decoded, DecodeSteps
from core.device import resolve_device
from core.elements import Vocabulary
from core.errors import CheckpointError, ICSGError, SegmentationError
from core.latent_prior import FILENAME as PRIOR_FILE
from core.latent_prior import LatentPrior
from core.models.blocks import make_input
from core.refine import STEPS as REFINE_STEPS
from core.refine import SYMPREC, symmetrize_positions
from core.sampling import LatentSpace
from core.segmentation import (
    DECODE_SEGMENTER,
    UNET_TTA,
    averaged_over_operations,
    combine_probabilities,
    segment_with_templates,
    segment_with_unet,
)
from core.voxel import (
    VoxelConfig,
    Voxeliser,
    denormalise_density,
    normalise_density,
    with_angles,
)
from resources import default_models_dir

log = logging.getLogger(__name__)

KNOWN_FILE = "known.json.gz"  # the training crystals' index (core/known.py), at the model set's root


def _checkpoint_dir(root: Path, kind: str) -> Path | None:
    for candidate in (root / kind, root / kind / "best"):
        if (candidate / "meta.json").is_file():
            return candidate
    return None


class ModelSet(LatentSpace, DecodeSteps):
    """The VAE (+ U-Net, + CGCNN) of one model-set folder, ready for inference."""

    def __init__(self, vae, vae_meta: dict, unet=None, cgcnn=None, cgcnn_meta=None, device=None, source=""):
        self.vae, self.unet, self.cgcnn = vae, unet, cgcnn
        self.device = device or torch.device("cpu")
        self.source = str(source)
        self.vocab = Vocabulary.from_list(vae_meta["vocab"])
        norms = vae_meta.get("normalisers") or {}
        self.voxel_cfg = VoxelConfig.from_dict(norms.get("voxel") or {"d": vae.cfg.d})
        self.voxeliser = Voxeliser(self.voxel_cfg, self.vocab)
        self.abc_mean = np.asarray(norms.get("abc_mean", [0.0, 0.0, 0.0]), dtype=np.float32)
        self.abc_std = np.asarray(norms.get("abc_std", [1.0, 1.0, 1.0]), dtype=np.float32)
        self.n_lattice = int(getattr(vae.cfg, "lattice_params", 3))  # 3: a, b, c; 6: with angles
        self.prop_name = norms.get("property")
        self.prop_edges = norms.get("prop_edges")
        self.prop_mean = float(norms.get("prop_mean", 0.0))
        self.prop_std = float(norms.get("prop_std", 1.0))
        self.cgcnn_meta = cgcnn_meta or {}
        self.metrics = vae_meta.get("metrics") or {}
        self.domain_lattice = str((vae_meta.get("domain") or {}).get("lattice", "any"))
        self.dataset = (vae_meta.get("domain") or {}).get("dataset")  # e.g. "mp_20": its COV cutoffs
        self.prior: LatentPrior | None = None  # fitted latent mixture (vae/latent_prior.safetensors)
        self.composition_prior: CompositionPrior | None = None  # vae/composition_prior.json
        self._known = None  # KnownCrystals, read on first use (core/known.py)
        self.segmenter = DECODE_SEGMENTER  # species probabilities of decode(): core/segmentation.py
        self.unet_tta = UNET_TTA  # cubic operations the U-Net's answer is averaged over
        # how this set decodes, chosen on its selection crystals (vae/meta.json "decoding"; the
        # perov_5 set's choices when absent): the origin search of encode, refinement, symmetry snap
        decoding = vae_meta.get("decoding") or {}
        self.frame_search = bool(decoding.get("frame_search", True))  # core/canonical.py
        self.refine_steps = int(decoding.get("refine_steps", REFINE_STEPS))  # 0: no refinement
        self.symprec = decoding.get("symprec", SYMPREC)  # Å, None: no snap
        # whether the count head's composition fixes the segmented atoms (else the species
        # probabilities type each density maximum on their own)
        self.use_counts = bool(decoding.get("counts", True))
        # at most this many elements per crystal when typing atoms without counts (None: any)
        self.max_elements = decoding.get("max_elements")
        # retype atoms towards a charge-balanced composition when that costs at most this many
        # nats of the decoder's own log probabilities (core/charge.py; None: off)
        self.charge_margin = decoding.get("charge_margin")
        # a relaxation of the decoded positions in a classical potential (core/relax.py; None: off),
        # e.g. {"potential": "tersoff_c", "steps": 300, "fmax": 0.05}
        self.relax = decoding.get("relax")
        # the fitted prior's spread, chosen likewise (vae/meta.json "sampling"; 1.0: q(z) as fitted)
        self.temperature = float((vae_meta.get("sampling") or {}).get("temperature", 1.0))
        # samples whose relaxed decode lies above this energy (eV/atom in the set's relaxation
        # potential) are drawn again (vae/meta.json "sampling"; None: every sample kept)
        self.max_energy = (vae_meta.get("sampling") or {}).get("max_energy")
        # ionic substitutions of the set's own training crystals as a prior (core/sampling.py;
        # {"templates": [id prefixes of the known index], "default": whether 'auto' means it};
        # None: no such prior)
        self.substitution = (vae_meta.get("sampling") or {}).get("substitution")
        self.origin = str(norms.get("origin", "file"))  # "site": trained with an atom at the origin

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def load(cls, models_dir: str | Path | None = None, device: str = "auto") -> ModelSet:
        """Load a model set; raises CheckpointError naming what is missing or broken."""
        root = Path(models_dir) if models_dir is not None else default_models_dir()
        dev = resolve_device(device)
        vae_dir = _checkpoint_dir(root, "vae")
        if vae_dir is None:
            raise CheckpointError(
                str(root), "no trained VAE here (expected vae/meta.json); train one: icsg3d train all"
            )
        vae, vae_meta = load_checkpoint(vae_dir, kind="vae", device=dev)
        unet = cgcnn = cgcnn_meta = None
        if (unet_dir := _checkpoint_dir(root, "unet")) is not None:
            unet, unet_meta = load_checkpoint(unet_dir, kind="unet", device=dev)
            if unet_meta.get("vocab") != vae_meta.get("vocab"):
                log.warning(
                    "%s: U-Net vocabulary differs from the VAE's; using the VAE's species head", unet_dir
                )
                unet = None
        if (cgcnn_dir := _checkpoint_dir(root, "cgcnn")) is not None:
            cgcnn, cgcnn_meta = load_checkpoint(cgcnn_dir, kind="cgcnn", device=dev)
        ms = cls(vae, vae_meta, unet, cgcnn, cgcnn_meta, dev, root)
        if (vae_dir / PRIOR_FILE).is_file():
            ms.prior = LatentPrior.load(vae_dir / PRIOR_FILE, ms.latent_dim)
        if (vae_dir / COMPOSITION_FILE).is_file():
            ms.composition_prior = CompositionPrior.load(vae_dir / COMPOSITION_FILE)
        log.info("model set %s on %s (unet: %s, cgcnn: %s, fitted prior: %s)", root, dev,
                 unet is not None, cgcnn is not None, ms.prior is not None)  # fmt: skip
        return ms

    @property
    def known(self):  # noqa: ANN201 (core.known.KnownCrystals | None; imported lazily)
        """The training crystals' index (``known.json.gz``), or None when the set ships none."""
        if self._known is None:
            path = Path(self.source) / KNOWN_FILE
            if path.is_file():
                from core.known import KnownCrystals

                self._known = KnownCrystals.load(path)
        return self._known

    def domain_problem(self, structure: Structure) -> str | None:
        """Why a crystal is outside what this set was trained on (core/domain.py), or None."""
        from core.domain import domain_problem

        return domain_problem(structure, self.vocab, self.voxel_cfg, self.domain_lattice)

    @property
    def latent_dim(self) -> int:
        return int(self.vae.cfg.latent)

    @property
    def n_conditions(self) -> int:
        return int(self.vae.cfg.n_conditions)

    @property
    def property_names(self) -> list[str]:
        return list(self.cgcnn.cfg.targets) if self.cgcnn is not None else []

    # -- helpers ------------------------------------------------------------------------------
    def _cond(self, cond, n: int) -> torch.Tensor:
        if cond is None:
            values = [UNKNOWN_BIN] * n
        elif isinstance(cond, int | np.integer):
            values = [int(cond)] * n
        else:
            values = [int(c) for c in cond]
        if len(values) != n or not all(0 <= v < self.n_conditions for v in values):
            raise ICSGError(f"condition bins must be 0..{self.n_conditions - 1} (one per crystal)")
        return torch.tensor(values, dtype=torch.long, device=self.device)

    def condition_of(self, value: float | None) -> int:
        """Decile bin of a property value (UNKNOWN_BIN when unknown or the model has none)."""
        return to_bin(value, self.prop_edges)

    def _z(self, z) -> torch.Tensor:
        z = torch.as_tensor(np.asarray(z, dtype=np.float32), device=self.device)
        return z.unsqueeze(0) if z.ndim == 1 else z

    # -- encode / decode ----------------------------------------------------------------------
    @torch.inference_mode()
    def encode(self, structures: list[Structure], cond=None, frame_search: bool | None = None) -> np.ndarray:
        """Mean latent vectors (B, L) of crystals (conventional cells, vocabulary elements)."""
        return self.encode_posterior(structures, cond, frame_search)[0]

    @torch.inference_mode()
    def encode_posterior(
        self, structures: list[Structure], cond=None, frame_search: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Posterior q(z|x) of crystals: means and standard deviations, each (B, L). Each crystal
        is read in the frame the VAE reproduces best (``canonical_frames``) when ``frame_search``
        (default ``self.frame_search``); callers whose crystals are in the training frame already,
        or whose grids must line up with the input's own labels, pass False."""
        search = self.frame_search if frame_search is None else frame_search
        structures = self.gridded_cells(structures)
        structures = self.canonical_frames(structures) if search else structures
        return self._posterior(structures, cond)

    def gridded_cells(self, structures: list[Structure]) -> list[Structure]:
        """The cells this set grids: a set of any lattice takes the Niggli-reduced primitive cell
        where the conventional one is too long for its grid, or (``voxel_cfg.cell`` "primitive")
        wherever it holds fewer atoms (``core.voxel.gridded_cell``, as its training did); a cubic
        set the crystals as they are."""
        from core.domain import domain_cell

        return [domain_cell(s, self.voxel_cfg, self.domain_lattice)[0] for s in structures]

    def training_frames(self, structures: list[Structure]) -> list[Structure]:
        """Crystals read from their files, in the cell and frame this set's training gridded them:
        ``gridded_cells``, then the file's own origin or (``origin`` "site") one atom moved to the
        origin (core.canonical.site_origin)."""
        structures = self.gridded_cells(structures)
        if self.origin != "site":
            return structures
        from core.canonical import site_origin

        return [site_origin(s) for s in structures]

    def canonical_frames(self, structures: list[Structure]) -> list[Structure]:
        """The crystals moved to the origin this model set reads best (core/canonical.py)."""
        return best_frames(list(structures), lambda frames: reconstruction_misfit(self, frames),
                           slides=self.origin != "site")[0]  # fmt: skip

    def _posterior(self, structures: list[Structure], cond) -> tuple[np.ndarray, np.ndarray]:
        return self.posterior_of_grids(*self.voxelise(list(structures)), cond)

    def voxelise(self, structures: list[Structure]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The VAE's inputs of crystals: density (B,D,D,D) e/Å^3, labels (B,D,D,D) and lattice
        parameters (B, P) (``self.n_lattice``: a, b, c, and the angles when P = 6)."""
        density, labels, lengths = self.voxeliser.batch(list(structures))
        return density, labels, with_angles(lengths, structures, self.n_lattice)

    @torch.inference_mode()
    def posterior_of_grids(self, density: np.ndarray, labels: np.ndarray, abc: np.ndarray,
                           cond=None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """q(z|x) of voxelised crystals (``voxelise``'s density, labels and lattice parameters
        (B, P); lengths (B, 3) alone stand for a 90° cell)."""
        abc = np.asarray(abc, dtype=np.float32)
        if abc.shape[1] < self.n_lattice:
            abc = np.concatenate([abc, np.full((len(abc), self.n_lattice - abc.shape[1]), 90.0, np.float32)], 1)
        lengths = torch.from_numpy(np.ascontiguousarray(abc[:, :3]))
        x = make_input(torch.from_numpy(normalise_density(density)).to(self.device), lengths)
        abc_std = torch.from_numpy((abc[:, : self.n_lattice] - self.abc_mean) / self.abc_std).to(self.device)
        lab = torch.from_numpy(labels.astype(np.int64)).to(self.device)
        mu, logvar = self.vae.encode(x, self._cond(cond, len(density)), abc_std, lab)
        return mu.float().cpu().numpy(), torch.exp(0.5 * logvar.float()).cpu().numpy()

    @torch.inference_mode()
    def _decode_raw(self, z, cond) -> dict[str, torch.Tensor]:
        zt = self._z(z)
        return self.vae.decode(zt, self._cond(cond, zt.shape[0]))

    def _abc(self, out: dict) -> np.ndarray:
        return out["abc"].float().cpu().numpy() * self.abc_std + self.abc_mean

    def decode_density(self, z, cond=None) -> tuple[np.ndarray, np.ndarray]:
        """Fast path for sliders: densities (B,D,D,D) e/Å^3 and lattice parameters (B, P) (Å; then
        degrees when P = 6)."""
        out = self._decode_raw(z, cond)
        density = denormalise_density(out["density"][:, 0].float()).cpu().numpy()
        return density, self._abc(out)

    def unet_probabilities(self, density: np.ndarray, abc: np.ndarray, tta: int | None = None) -> np.ndarray:
        """The U-Net's species probabilities (B,C,D,D,D) of grids (B,D,D,D) e/Å^3 with lengths (B,3) Å,
        averaged over ``tta`` cubic operations of the grid (default ``self.unet_tta``; 1: none)."""
        if self.unet is None:
            raise SegmentationError(f"{self.source}: this model set has no U-Net")
        n_ops = self.unet_tta if tta is None else tta
        return averaged_over_operations(self._unet_once, np.asarray(density, dtype=np.float32),
                                        np.asarray(abc, dtype=np.float32), n_ops)  # fmt: skip

    @torch.inference_mode()
    def _unet_once(self, density: np.ndarray, abc: np.ndarray) -> np.ndarray:
        rho = torch.from_numpy(normalise_density(np.ascontiguousarray(density))).to(self.device)
        x = make_input(rho, torch.from_numpy(np.ascontiguousarray(abc)))
        return torch.softmax(self.unet(x)["logits"].float(), dim=1).cpu().numpy()

    def segment(self, density: np.ndarray, lattice: np.ndarray):  # noqa: ANN201 (GridSegmentation)
        """The segmentation of any grid (D1,D2,D3) e/Å^3 on a cell (3,3) Å: labels on this set's
        grid and blobs with confidences (core/segmentation.py). The U-Net reads 90° cells; a set
        without one, or a skewed cell, gets the untrained peak-template reading.
        SegmentationError if neither can (a cell too long for the grid)."""
        if self.unet is not None and np.allclose(Lattice(lattice).angles, 90.0, atol=1e-3):
            return segment_with_unet(self, density, lattice)
        return segment_with_templates(self, density, lattice)

    def decode_grids(self, z, cond=None, species: bool = True) -> dict[str, np.ndarray]:
        """Decoded grids of latents (B, L): density (B,D,D,D) e/Å^3, abc (B, P) lattice parameters
        (a, b, c in Å, then the angles in degrees when P = 6) and, when the VAE
        has those heads, species_probs (B,C,D,D,D) (unless ``species`` is False: the costliest
        part), counts (B,C) atoms per class and their count_log_probs (B,C,K+1) (log p of 0..K
        atoms of each class)."""
        out = self._decode_raw(z, cond)
        grids = {
            "density": denormalise_density(out["density"][:, 0].float()).cpu().numpy(),
            "abc": self._abc(out),
        }
        if species and "species_logits" in out:
            grids["species_probs"] = torch.softmax(out["species_logits"].float(), dim=1).cpu().numpy()
        if "count_logits" in out:
            grids["counts"] = out["count_logits"].argmax(-1).cpu().numpy()
            grids["count_log_probs"] = torch.log_softmax(out["count_logits"].float(), dim=-1).cpu().numpy()
        return grids

    def decode(
        self, z, cond=None, predict: bool = True, labels: bool = True, refine: bool = True,
        symprec: float | None | EllipsisType = ..., refine_steps: int | None = None, check: bool = False,
    ) -> list[Decoded]:  # fmt: skip
        """Full path: density -> species probabilities -> sites -> refined sites -> Structure (+ CGCNN).

        The species probabilities are ``self.segmenter``'s (core/segmentation.py: the VAE's species
        head, the U-Net, or their mean). When the set has a U-Net and it runs (``labels``, ``check``
        or a segmenter that needs it; it doubles a batch decode's cost), each result also carries
        the U-Net's reading of the grid: ``labels`` and ``blobs`` (its segmentation, for the blob
        view) and ``disagreements`` (the crystal's sites it types as another element).

        ``refine`` fits the segmented atoms' positions to the decoded density (``refine_steps``
        steps; default the set's ``self.refine_steps``), then ``symprec`` (Å, None: off; default
        the set's ``self.symprec``) snaps them to the space group found at that tolerance
        (core/refine.py), then, where the set has one, ``self.relax`` relaxes them in a classical
        potential (core/relax.py; ``refine=False`` skips it too).
        ``labels=False`` skips the per-voxel argmax grids and blobs (segmentation views need them;
        batch commands do not)."""
        grids = self.decode_grids(z, cond)
        density, abc = grids["density"], grids["abc"]
        counts = grids.get("counts") if self.use_counts else None
        run_unet = self.unet is not None and (labels or check or self.segmenter != "head")
        unet = self.unet_probabilities(density, abc[:, :3]) if run_unet else None
        head = grids.get("species_probs")
        probs = combine_probabilities(unet, head, self.segmenter if head is not None else "unet")
        shown = unet if unet is not None else probs
        label_grids = shown.argmax(1).astype(np.uint8) if labels else None  # (B, D, D, D)
        results = self._structures_of_grids(density, abc, probs, counts, label_grids)
        steps = self.refine_steps if refine_steps is None else refine_steps
        if refine and steps > 0:
            self._refine(results, steps)
        symprec = self.symprec if symprec is ... else symprec
        if symprec:
            for r in results:
                if r.structure is not None:
                    r.structure = symmetrize_positions(r.structure, symprec)
        if refine and self.relax:
            self._relax(results)
        if unet is not None:
            self._annotate(results, unet, blobs=labels)
        if predict and self.cgcnn is not None:
            ok = [r for r in results if r.structure is not None]
            for r, props in zip(ok, self.predict([r.structure for r in ok]), strict=True):
                r.properties = props
        return results

    def reconstruct(self, structures: list[Structure], cond=None, labels: bool = True,
                    check: bool = False) -> list[Decoded]:  # fmt: skip
        """encode (mean z) -> decode -> segment, one Decoded per input (``check``: see decode)."""
        return self.decode(self.encode(structures, cond), cond, labels=labels, check=check)

    def predicted_property(self, z) -> np.ndarray:
        """The VAE's latent property head (B,) in the property's units."""
        with torch.inference_mode():
            prop = self.vae.prop_head(self._z(z)).float().cpu().numpy()[:, 0]
        return prop * self.prop_std + self.prop_mean

    # -- properties ---------------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, structures: list[Structure]) -> list[dict[str, float]]:
        """CGCNN predictions per crystal ({} for every crystal when no CGCNN is loaded)."""
        if self.cgcnn is None or not structures:
            return [{} for _ in structures]
        from core.models.cgcnn import build_graph, collate

        norms = self.cgcnn_meta.get("normalisers") or {}
        mean = np.asarray(norms.get("target_mean", [0.0] * len(self.property_names)))
        std = np.asarray(norms.get("target_std", [1.0] * len(self.property_names)))
        graphs = [build_graph(s, self.cgcnn.cfg) for s in structures]
        pred = self.cgcnn(collate(graphs).to(self.device)).float().cpu().numpy() * std + mean
        return [dict(zip(self.property_names, map(float, row), strict=True)) for row in pred]
