"""A fitted latent prior: a Gaussian mixture over the encoded training crystals.

A VAE's N(0, I) prior and its aggregate posterior q(z) = mean_x q(z|x) differ (the KL term is
never zero), so prior samples land where the decoder saw no crystal. Sampling a density fitted to
the encoded training set after training ("ex-post density estimation", Ghosh et al., ICLR 2020)
is the standard remedy. Two kinds:
- ``aggregate``: q(z) itself, one diagonal Gaussian N(mu_i, sigma_i^2) per training crystal, as
  the encoder gives them (no fitting; means and deviations stored as float16);
- ``gmm``: K full- or diagonal-covariance components fitted by EM (scikit-learn).
On held-out perov_5 the aggregate posterior covered the crystals best (model card).
Components can carry a group (the dataset a training crystal came from, e.g. "perov_5" or
"mp20_cubic" for the shipped mixed model): ``sample(group=...)`` draws from one family only.
``ModelSet.sample`` uses the shipped prior (``vae/latent_prior.safetensors``) and N(0, I)
otherwise or when asked.

Stored as safetensors (weights (K,), means (K, L), chol (K, L, L) lower Cholesky factors of the
component covariances, or (K, L) standard deviations for a diagonal mixture, optionally groups
(K,) int32 indices into info["groups"]) with the fit's settings in the file's metadata: nothing
executes on load.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import CheckpointError, ICSGError

log = logging.getLogger(__name__)

FILENAME = "latent_prior.safetensors"


@dataclass
class LatentPrior:
    """Gaussian mixture over latent vectors: weights (K,), means (K, L), chol (K, L, L) (full) or
    (K, L) (diagonal: per-dimension standard deviations)."""

    weights: np.ndarray
    means: np.ndarray
    chol: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    groups: np.ndarray | None = None  # (K,) index into info["groups"] (names); None: one family

    @property
    def group_names(self) -> list[str]:
        return list(self.info.get("groups") or [])

    @property
    def latent_dim(self) -> int:
        return int(self.means.shape[1])

    @classmethod
    def fit(
        cls, z: np.ndarray, components: int = 16, seed: int = 0, reg: float = 1e-3, covariance: str = "full"
    ) -> LatentPrior:
        """Fit a mixture ('full' or 'diag' covariances) to encoded crystals z (N, L) (scikit-learn
        EM, seeded)."""
        from sklearn.mixture import GaussianMixture

        if covariance not in ("full", "diag"):
            raise ICSGError(f"covariance must be 'full' or 'diag', got {covariance!r}")
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or len(z) < 2 * components:
            raise ICSGError(f"need at least {2 * components} encoded crystals to fit {components} components")
        gmm = GaussianMixture(components, covariance_type=covariance, reg_covar=reg, random_state=seed, max_iter=200)
        gmm.fit(z)
        info = {"kind": "gmm", "components": components, "covariance": covariance, "n": len(z), "seed": seed, "reg_covar": reg,
                "converged": bool(gmm.converged_), "mean_log_likelihood": float(gmm.score(z))}  # fmt: skip
        log.info("latent prior: %s", info)
        cov = gmm.covariances_
        return cls(gmm.weights_, gmm.means_, np.linalg.cholesky(cov) if covariance == "full" else np.sqrt(cov), info)

    @classmethod
    def aggregate(cls, mu: np.ndarray, sigma: np.ndarray, groups: list[str] | None = None) -> LatentPrior:
        """The encoder's aggregate posterior: mu, sigma (N, L) of N encoded training crystals;
        ``groups`` (N names, optional): the family of each crystal, for ``sample(group=...)``."""
        mu, sigma = np.asarray(mu, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
        if mu.ndim != 2 or mu.shape != sigma.shape or len(mu) == 0:
            raise ICSGError(f"aggregate prior needs mu and sigma of one shape (N, L), got {mu.shape}, {sigma.shape}")
        info: dict[str, Any] = {"kind": "aggregate", "components": len(mu), "covariance": "diag", "n": len(mu)}
        index = None
        if groups is not None:
            if len(groups) != len(mu):
                raise ICSGError(f"{len(groups)} group names for {len(mu)} crystals")
            names = list(dict.fromkeys(groups))  # first-seen order
            index = np.array([names.index(g) for g in groups], dtype=np.int32)
            info["groups"] = names
            info["group_sizes"] = np.bincount(index, minlength=len(names)).tolist()
        return cls(np.full(len(mu), 1.0 / len(mu)), mu, sigma, info, index)

    def group_weights(self, group: str | None) -> np.ndarray:
        """Component weights (K,) normalised, restricted to one group's components when given."""
        weights = self.weights
        if group is not None:
            if self.groups is None or group not in self.group_names:
                known = ", ".join(self.group_names) or "none: fit-prior was run without --groups"
                raise ICSGError(f"the latent prior has no group {group!r} (groups: {known})")
            weights = np.where(self.groups == self.group_names.index(group), weights, 0.0)
        return weights / weights.sum()

    def sample(self, n: int, temperature: float = 1.0, seed: int = 0, group: str | None = None) -> np.ndarray:
        """n latent vectors (n, L) float32: a component by weight (of ``group`` only, if given),
        then its Gaussian with the covariance scaled by T^2 (T < 1: closer to the component means)."""
        rng = np.random.default_rng(seed)
        k = rng.choice(len(self.weights), size=n, p=self.group_weights(group))
        eps = rng.standard_normal((n, self.latent_dim))
        if self.chol.ndim == 2:  # diagonal
            return (self.means[k] + temperature * self.chol[k] * eps).astype(np.float32)
        z = self.means[k] + temperature * np.einsum("nij,nj->ni", self.chol[k], eps)
        return z.astype(np.float32)

    # -- files --------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save

        from core.atomic import atomic_write

        path = Path(path)
        # an aggregate prior has a component per training crystal: float16 halves its size
        dtype = np.float16 if self.info.get("kind") == "aggregate" else np.float64
        arrays = {"weights": self.weights.astype(np.float64), "means": self.means.astype(dtype), "chol": self.chol.astype(dtype)}
        if self.groups is not None:
            arrays["groups"] = self.groups.astype(np.int32)
        data = save({k: np.ascontiguousarray(v) for k, v in arrays.items()},
                    metadata={"format": "icsg3d-latent-prior", "info": json.dumps(self.info)})  # fmt: skip
        return atomic_write(path, data, force=True)

    @classmethod
    def load(cls, path: str | Path, latent_dim: int | None = None) -> LatentPrior:
        """Read a prior file; CheckpointError names the file and what is wrong with it."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        try:
            with safe_open(str(path), framework="numpy") as fh:
                meta = fh.metadata() or {}
                arrays = {k: fh.get_tensor(k) for k in ("weights", "means", "chol")}
                groups = fh.get_tensor("groups") if "groups" in fh.keys() else None
        except (SafetensorError, OSError, KeyError, ValueError) as exc:
            raise CheckpointError(str(path), f"unreadable latent prior ({exc})") from exc
        if meta.get("format") != "icsg3d-latent-prior":
            raise CheckpointError(str(path), "not an icsg3d latent prior")
        w, m, c = (arrays[k].astype(np.float64) for k in ("weights", "means", "chol"))
        k, dim = m.shape if m.ndim == 2 else (0, 0)
        if w.shape != (k,) or c.shape not in ((k, dim, dim), (k, dim)) or k == 0:
            raise CheckpointError(str(path), f"inconsistent shapes {w.shape}, {m.shape}, {c.shape}")
        if latent_dim is not None and dim != latent_dim:
            raise CheckpointError(str(path), f"latent size {dim} does not match the VAE's {latent_dim}")
        info = json.loads(meta.get("info", "{}"))
        if groups is not None and (groups.shape != (k,) or groups.min() < 0 or groups.max() >= len(info.get("groups") or [])):
            raise CheckpointError(str(path), "group indices do not match the group names in its metadata")
        return cls(w, m, c, info, groups)
