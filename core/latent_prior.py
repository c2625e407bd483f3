"""A fitted latent prior: a Gaussian mixture over the encoded training crystals.

A VAE's N(0, I) prior and its aggregate posterior q(z) = mean_x q(z|x) differ (the KL term is
never zero), so prior samples land where the decoder saw no crystal. Sampling a density fitted to
the encoded training set after training ("ex-post density estimation", Ghosh et al., ICLR 2020)
is the standard remedy. Two kinds:
- ``aggregate``: q(z) itself, one diagonal Gaussian N(mu_i, sigma_i^2) per training crystal, as
  the encoder gives them (no fitting; means and deviations stored as float16);
- ``gmm``: K full- or diagonal-covariance components fitted by EM (scikit-learn).
On held-out perov_5 the aggregate posterior covered the crystals best (model card).
``ModelSet.sample`` uses the shipped prior (``vae/latent_prior.safetensors``) and N(0, I)
otherwise or when asked.

Stored as safetensors (weights (K,), means (K, L), chol (K, L, L) lower Cholesky factors of the
component covariances, or (K, L) standard deviations for a diagonal mixture) with the fit's
settings in the file's metadata: nothing executes on load.
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
    def aggregate(cls, mu: np.ndarray, sigma: np.ndarray) -> LatentPrior:
        """The encoder's aggregate posterior: mu, sigma (N, L) of N encoded training crystals."""
        mu, sigma = np.asarray(mu, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
        if mu.ndim != 2 or mu.shape != sigma.shape or len(mu) == 0:
            raise ICSGError(f"aggregate prior needs mu and sigma of one shape (N, L), got {mu.shape}, {sigma.shape}")
        info = {"kind": "aggregate", "components": len(mu), "covariance": "diag", "n": len(mu)}
        return cls(np.full(len(mu), 1.0 / len(mu)), mu, sigma, info)

    def sample(self, n: int, temperature: float = 1.0, seed: int = 0) -> np.ndarray:
        """n latent vectors (n, L) float32: a component by weight, then its Gaussian with the
        covariance scaled by T^2 (T < 1: closer to the component means)."""
        rng = np.random.default_rng(seed)
        k = rng.choice(len(self.weights), size=n, p=self.weights / self.weights.sum())
        eps = rng.standard_normal((n, self.latent_dim))
        if self.chol.ndim == 2:  # diagonal
            return (self.means[k] + temperature * self.chol[k] * eps).astype(np.float32)
        z = self.means[k] + temperature * np.einsum("nij,nj->ni", self.chol[k], eps)
        return z.astype(np.float32)

    # -- files --------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save_file

        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        # an aggregate prior has a component per training crystal: float16 halves its size
        dtype = np.float16 if self.info.get("kind") == "aggregate" else np.float64
        arrays = {"weights": self.weights.astype(np.float64), "means": self.means.astype(dtype), "chol": self.chol.astype(dtype)}
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp),
                  metadata={"format": "icsg3d-latent-prior", "info": json.dumps(self.info)})  # fmt: skip
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, latent_dim: int | None = None) -> LatentPrior:
        """Read a prior file; CheckpointError names the file and what is wrong with it."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        try:
            with safe_open(str(path), framework="numpy") as fh:
                meta = fh.metadata() or {}
                arrays = {k: fh.get_tensor(k) for k in ("weights", "means", "chol")}
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
        return cls(w, m, c, json.loads(meta.get("info", "{}")))
