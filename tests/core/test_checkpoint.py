"""Checkpoint format: exact round trips, atomic replace, and refusal of bad or unsafe files."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from core.checkpoint import (
    META,
    TRAIN_STATE,
    WEIGHTS,
    init_from_checkpoint,
    load_checkpoint,
    load_train_state,
    read_meta,
    save_checkpoint,
    save_train_state,
)
from core.errors import CheckpointError
from core.models.unet import UNet3D, UNetConfig
from core.models.vae import CondVAE3D, VAEConfig

MARKER_NAME = "pwned.txt"


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread is faster and immune to a busy shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class _Evil:
    """Unpickling this would create a marker file: the loader must never get that far."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def _unet() -> tuple[UNet3D, UNetConfig]:
    torch.manual_seed(0)
    cfg = UNetConfig(n_classes=4, base=4, levels=2)
    net = UNet3D(cfg)
    # make running statistics non-trivial so the round trip covers buffers too
    net.train()
    net(torch.randn(2, 4, 8, 8, 8))
    return net.eval(), cfg


def _vae() -> tuple[CondVAE3D, VAEConfig]:
    torch.manual_seed(0)
    cfg = VAEConfig(n_classes=4, latent=8, d=8, widths=(4, 8), dec_widths=(8, 4), hidden=16)
    return CondVAE3D(cfg).eval(), cfg


def test_round_trip_is_exact(tmp_path: Path) -> None:
    net, cfg = _unet()
    path = save_checkpoint(
        tmp_path / "unet",
        net,
        "unet",
        cfg,
        vocab=["Cs", "Cl", "Na"],
        normalisers={"abc_mean": np.array([4.0, 4.0, 4.0]), "abc_std": [0.5, 0.5, 0.5]},
        data_hash="abc123",
        metrics={"val_loss": np.float32(0.25)},
        voxel={"d": 8},
    )
    assert sorted(p.name for p in path.iterdir()) == sorted([WEIGHTS, META])
    model, meta = load_checkpoint(path, kind="unet")
    assert isinstance(model, UNet3D) and not model.training
    assert model.cfg == cfg
    ref, got = net.state_dict(), model.state_dict()
    assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref)
    x = torch.randn(1, 4, 8, 8, 8)
    with torch.no_grad():
        assert torch.equal(net(x)["logits"], model(x)["logits"])
    assert meta["format"] == "icsg3d-checkpoint" and meta["version"] == 1 and meta["kind"] == "unet"
    assert meta["vocab"] == ["Cs", "Cl", "Na"] and meta["data_hash"] == "abc123"
    assert meta["normalisers"]["abc_mean"] == [4.0, 4.0, 4.0]
    assert meta["metrics"]["val_loss"] == pytest.approx(0.25) and meta["voxel"] == {"d": 8}
    assert meta["created"].endswith("+00:00")
    assert read_meta(path) == meta


def test_vae_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    vae, cfg = _vae()
    path = tmp_path / "vae"
    save_checkpoint(path, vae, "vae", cfg)
    save_train_state(path, {"epoch": 1})
    with torch.no_grad():
        for p in vae.parameters():
            p.add_(1.0)
    save_checkpoint(path, vae, "vae", cfg.to_dict(), metrics={"epoch": 2})
    model, meta = load_checkpoint(path)
    assert isinstance(model, CondVAE3D) and meta["metrics"] == {"epoch": 2}
    assert torch.equal(model.mu.weight, vae.mu.weight)
    assert load_train_state(path) == {"epoch": 1}  # resume state survives a re-save
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vae"]  # no temp or backup dirs left
    with pytest.raises(ValueError):
        save_checkpoint(path, vae, "vae", cfg, format="other")
    with pytest.raises(ValueError):
        save_checkpoint(path, vae, "resnet", cfg)


def test_wrong_kind_missing_and_foreign(tmp_path: Path) -> None:
    net, cfg = _unet()
    path = save_checkpoint(tmp_path / "unet", net, "unet", cfg)
    with pytest.raises(CheckpointError, match="is a unet checkpoint, expected vae"):
        load_checkpoint(path, kind="vae")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with pytest.raises(CheckpointError, match="missing meta.json"):
        load_checkpoint(foreign)
    (foreign / META).write_text(json.dumps({"format": "keras", "kind": "unet"}))
    with pytest.raises(CheckpointError, match="foreign checkpoint"):
        load_checkpoint(foreign)
    (foreign / META).write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable meta.json"):
        load_checkpoint(foreign)
    meta = json.loads((path / META).read_text())
    (path / META).write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(CheckpointError, match="unsupported checkpoint version"):
        load_checkpoint(path)


def test_truncated_missing_and_mismatched_weights(tmp_path: Path) -> None:
    net, cfg = _unet()
    path = save_checkpoint(tmp_path / "unet", net, "unet", cfg)
    data = (path / WEIGHTS).read_bytes()
    (path / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated") as info:
        load_checkpoint(path)
    assert str(path / WEIGHTS) in str(info.value)
    (path / WEIGHTS).write_bytes(b"\x80\x04garbage")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)
    (path / WEIGHTS).unlink()
    with pytest.raises(CheckpointError, match="missing weights"):
        load_checkpoint(path)
    # a config that does not match the stored weights
    save_checkpoint(path, net, "unet", cfg)
    meta = json.loads((path / META).read_text())
    meta["config"]["base"] = 8
    (path / META).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match the config"):
        load_checkpoint(path)
    meta["config"]["bogus"] = 1
    (path / META).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="invalid unet config"):
        load_checkpoint(path)


@pytest.mark.parametrize("writer", ["pickle", "torch"])
def test_malicious_pickles_are_refused_without_running(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / MARKER_NAME
    evil_pt = tmp_path / "model.pt"
    payload = {"epoch": 3, "hook": _Evil(marker)}
    if writer == "pickle":
        evil_pt.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, evil_pt)
    # sanity: the payload really is armed (checked on a copy, in a separate marker)
    armed = tmp_path / "armed.txt"
    pickle.loads(pickle.dumps(_Evil(armed)))
    assert armed.exists()

    with pytest.raises(CheckpointError, match="refused or corrupt train state"):
        load_train_state(evil_pt)
    with pytest.raises(CheckpointError, match="not a checkpoint directory"):
        load_checkpoint(evil_pt)
    ckpt = tmp_path / "ckpt"
    net, cfg = _unet()
    save_checkpoint(ckpt, net, "unet", cfg)
    os.replace(evil_pt, ckpt / TRAIN_STATE)
    with pytest.raises(CheckpointError, match="refused"):
        load_train_state(ckpt)
    # a pickle disguised as the weights file is not parsed as a pickle either
    (ckpt / WEIGHTS).write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError):
        load_checkpoint(ckpt)
    assert not marker.exists()


def test_train_state_round_trip(tmp_path: Path) -> None:
    net, _ = _unet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    out = net(torch.randn(2, 4, 8, 8, 8))
    out["logits"].mean().backward()
    opt.step()
    rng = np.random.default_rng(0)
    state = {
        "epoch": 4,
        "best": float("inf"),
        "optimizer": opt.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "np_rng": rng.bit_generator.state,
        "array": np.arange(3),
        "history": [(1, 0.5), (2, 0.25)],
    }
    target = save_train_state(tmp_path / "state.pt", state)
    back = load_train_state(target)
    assert back["epoch"] == 4 and back["best"] == float("inf")
    assert torch.equal(back["torch_rng"], state["torch_rng"])
    assert torch.equal(back["array"], torch.arange(3))
    assert back["history"] == [(1, 0.5), (2, 0.25)]
    assert back["np_rng"] == state["np_rng"]
    opt2 = torch.optim.Adam(net.parameters(), lr=1e-3)
    opt2.load_state_dict(back["optimizer"])
    with pytest.raises(TypeError):
        save_train_state(tmp_path / "bad.pt", {"model": net})
    with pytest.raises(CheckpointError, match="no such train state"):
        load_train_state(tmp_path / "missing.pt")


def test_cgcnn_round_trip(tmp_path: Path) -> None:
    from pymatgen.core import Lattice, Structure

    from core.models.cgcnn import CGCNN, CGCNNConfig, build_graph, collate

    torch.manual_seed(0)
    cfg = CGCNNConfig(atom_fea_len=8, h_fea_len=8, n_conv=1, targets=["band_gap", "e_form"])
    model = CGCNN(cfg).eval()
    path = save_checkpoint(tmp_path / "cgcnn", model, "cgcnn", cfg, normalisers={"band_gap": [1.0, 2.0]})
    back, meta = load_checkpoint(path, kind="cgcnn")
    assert isinstance(back, CGCNN) and back.cfg == cfg and meta["config"]["targets"] == ["band_gap", "e_form"]
    s = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    batch = collate([build_graph(s, cfg)])
    with torch.no_grad():
        assert torch.equal(model(batch), back(batch))


def test_init_from_checkpoint_copies_shared_weights_and_keeps_new_heads(tmp_path: Path) -> None:
    vae, cfg = _vae()
    save_checkpoint(tmp_path / "vae", vae, "vae", cfg, vocab=["X", "O", "Sr", "Ti"])
    torch.manual_seed(1)
    grown = CondVAE3D(VAEConfig(**{**cfg.to_dict(), "comp_head": True}))
    fresh_head = grown.count_head[0].weight.clone()
    fresh = init_from_checkpoint(grown, tmp_path / "vae", "vae", ["X", "O", "Sr", "Ti"])
    assert fresh and all(name.startswith("count_head.") for name in fresh)
    assert torch.equal(grown.mu.weight, vae.mu.weight)
    assert torch.equal(grown.count_head[0].weight, fresh_head)
    with pytest.raises(CheckpointError, match="another element vocabulary"):
        init_from_checkpoint(grown, tmp_path / "vae", "vae", ["X", "O", "Sr", "Ba"])
    with pytest.raises(CheckpointError, match="cannot initialise a unet"):
        init_from_checkpoint(UNet3D(UNetConfig(n_classes=3, base=4, levels=1)), tmp_path / "vae", "unet")


def test_a_unet_warm_started_with_density_features_starts_as_the_old_function(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = UNetConfig(n_classes=3, base=4, levels=1)
    old = UNet3D(cfg).eval()
    save_checkpoint(tmp_path / "unet", old, "unet", cfg)
    grown = UNet3D(UNetConfig(**{**cfg.to_dict(), "density_features": 3})).eval()
    widened = init_from_checkpoint(grown, tmp_path / "unet", "unet")
    assert widened == ["inc.0.0.weight"]
    x = torch.randn(2, 4, 8, 8, 8)
    with torch.no_grad():
        before, after = old(x), grown(x)
    assert torch.allclose(before["logits"], after["logits"], atol=1e-6)
    # the new input channels are live: once their weights move, the output does too
    with torch.no_grad():
        grown.inc[0][0].weight[:, 4:] += 0.1
        assert not torch.allclose(grown(x)["logits"], before["logits"], atol=1e-4)


def _weights_of(path: Path) -> dict:
    model, _ = load_checkpoint(path, kind="unet")
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_replacing_a_checkpoint_never_leaves_its_name_empty(tmp_path: Path, monkeypatch) -> None:
    import core.checkpoint as ck

    first, cfg = _unet()
    path = tmp_path / "best"
    save_checkpoint(path, first, "unet", cfg)
    second, _ = _unet()
    with torch.no_grad():
        for p in second.parameters():
            p.add_(1.0)
    # the one-step exchange (Linux renameat2), where the kernel has it
    save_checkpoint(path, second, "unet", cfg)
    got = _weights_of(path)
    assert all(torch.equal(got[k], v) for k, v in second.state_dict().items())
    assert [p.name for p in tmp_path.iterdir()] == ["best"]  # no temporary folder left behind

    # the two-rename fallback, with a crash between the renames: the next reader restores the
    # previous checkpoint instead of finding nothing
    monkeypatch.setattr(ck, "_exchange", lambda a, b: False)
    real_replace, calls = os.replace, []

    def crash_on_second(src, dst):  # noqa: ANN001, ANN202
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt("power cut")
        return real_replace(src, dst)

    monkeypatch.setattr(ck.os, "replace", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, first, "unet", cfg)
    monkeypatch.setattr(ck.os, "replace", real_replace)
    assert not path.exists()  # the gap the crash fell into
    got = _weights_of(path)  # ... closed by the reader
    assert all(torch.equal(got[k], v) for k, v in second.state_dict().items())
    assert path.is_dir()
