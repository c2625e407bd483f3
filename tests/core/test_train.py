"""Training: tiny runs of each task, metrics/checkpoints, seed repeatability, exact kill-and-resume."""

from __future__ import annotations

import argparse
import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter
from safetensors.torch import load_file

from core.checkpoint import load_checkpoint
from core.cli import main
from core.cli.train import add_train_parser, run_train
from core.conditions import decile_edges, to_bin
from core.errors import ICSGError
from core.structures import load_entries
from core.train.data import SplitData, split_by_id
from core.train.loop import StopTraining, TrainConfig, Trainer, lr_at
from core.train.sampler import EpochBatchSampler
from core.train.tasks import TaskOptions, build_task

TINY_UNET = {"base": 4, "levels": 2}
TINY_VAE = {
    "widths": [4, 8],
    "dec_widths": [8, 4],
    "latent": 8,
    "hidden": 16,
    "cond_dim": 2,
    "species_embed": 2,
}
TINY_CGCNN = {"atom_fea_len": 8, "h_fea_len": 8, "n_conv": 1}
# d = 8 needs coarser voxels than the default limit allows (4 Å / 8 = 0.5 Å spacing).
TINY_VOXEL = {"max_voxel": 1.0}


def _perovskite(a: float, a_site: str = "Sr", b_site: str = "Ti") -> Structure:
    coords = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(a), [a_site, b_site, "O", "O", "O"], coords)


def tiny_structures() -> list[tuple[str, Structure, float]]:
    """(id, structure, heat_ref) of 12 small cubic crystals: perovskites, CsCl and NaCl types."""
    rows = []
    for i, (a, sa, sb) in enumerate(
        [
            (3.9, "Sr", "Ti"),
            (3.95, "Ba", "Ti"),
            (4.0, "Sr", "Zr"),
            (4.05, "Ca", "Ti"),
            (4.1, "Ba", "Zr"),
            (3.85, "Sr", "Ti"),
        ]
    ):
        rows.append((f"pv-{i}", _perovskite(a, sa, sb), -1.0 + 0.1 * i))
    for i, a in enumerate([4.0, 4.1, 4.2]):
        rows.append(
            (
                f"cscl-{i}",
                Structure(Lattice.cubic(a), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
                -2.0 + 0.1 * i,
            )
        )
    for i, a in enumerate([5.5, 5.6, 5.7]):
        nacl = Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
        )
        rows.append((f"nacl-{i}", nacl, -3.0 + 0.1 * i))
    return rows


def write_tiny_csv(path: Path, bad_row: bool = False) -> Path:
    """A CDVAE-style CSV (material_id, cif, heat_ref) of the tiny crystals (+ a broken row)."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["material_id", "cif", "heat_ref"])
        for mid, s, heat in tiny_structures():
            w.writerow([mid, str(CifWriter(s)), heat])
        if bad_row:
            w.writerow(["broken-1", "data_x\n_cell_length_a 4.0\n", 0.0])
    return path


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models: thread start-up costs more than it saves (and CI shares 2 cores).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    return write_tiny_csv(tmp_path_factory.mktemp("data") / "tiny.csv", bad_row=True)


@pytest.fixture(scope="module")
def tiny_split(tiny_csv) -> SplitData:
    entries, _failures = load_entries(tiny_csv)
    train, val = split_by_id(entries, 0.25, seed=0)
    return SplitData(train, val, [])


def _opts(kind: str, **kw) -> TaskOptions:
    model = {"unet": TINY_UNET, "vae": TINY_VAE, "cgcnn": TINY_CGCNN}[kind]
    return TaskOptions(
        d=8, voxel=TINY_VOXEL, model=dict(model), targets=["heat_ref"], condition="heat_ref", **kw
    )


def _cfg(**kw) -> TrainConfig:
    base = {"epochs": 2, "batch_size": 2, "lr": 3e-3, "ckpt_every_s": 1e9, "seed": 0}
    return TrainConfig(**{**base, **kw})


def _weights(run: Path, name: str = "last") -> dict[str, torch.Tensor]:
    return load_file(str(run / name / "model.safetensors"))


def _metric_rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


# -- pieces -----------------------------------------------------------------------------------
def test_sampler_is_a_function_of_seed_and_epoch_and_resumes_mid_epoch():
    s = EpochBatchSampler(10, 3, seed=5)
    s.set_epoch(1)
    full = list(s)
    s.set_epoch(1, start_batch=2)
    assert list(s) == full[2:]
    s.set_epoch(2)
    assert list(s) != full
    flat = [i for b in full for i, _seed in b]
    assert sorted(flat) == list(range(10))
    assert len({seed for b in full for _i, seed in b}) == 10  # one augmentation seed per sample


def test_sampler_epoch_subsets():
    s = EpochBatchSampler(10, 2, seed=0, per_epoch=4)
    s.set_epoch(0)
    e0 = [i for b in s for i, _ in b]
    s.set_epoch(1)
    e1 = [i for b in s for i, _ in b]
    assert len(e0) == len(e1) == 4 and len(set(e0)) == 4 and e0 != e1
    v = EpochBatchSampler(10, 3, seed=0, shuffle=False, per_epoch=5)
    v.set_epoch(0)
    first = [i for b in v for i, _ in b]
    v.set_epoch(7)
    assert first == sorted(first) == [i for b in v for i, _ in b] and len(first) == 5


def test_sampler_shards_ranks_evenly():
    ranks = [EpochBatchSampler(7, 2, seed=1, rank=r, world=2) for r in range(2)]
    for r in ranks:
        r.set_epoch(0)
    batches = [list(r) for r in ranks]
    assert len(batches[0]) == len(batches[1]) == 2
    seen = {i for b in batches for batch in b for i, _ in batch}
    assert seen == set(range(7))


def test_lr_schedule_warms_up_then_decays():
    cfg = TrainConfig(lr=1.0, warmup_steps=10, min_lr_frac=0.1)
    assert lr_at(cfg, 0, 100) == pytest.approx(0.1)
    assert lr_at(cfg, 10, 100) == pytest.approx(1.0)
    assert lr_at(cfg, 99, 100) == pytest.approx(0.1, abs=1e-3)
    assert lr_at(cfg, 50, 100) < lr_at(cfg, 20, 100)


def test_deciles_and_unknown_bin():
    values = np.array([*range(20), np.nan])
    edges = decile_edges(values)
    assert len(edges) == 9
    assert to_bin(-5.0, edges) == 0 and to_bin(100.0, edges) == 9
    assert to_bin(math.nan, edges) == 10
    assert decile_edges(np.array([1.0, 2.0, np.nan])) is None  # too few labels: all unknown
    assert to_bin(1.0, None) == 10


def test_split_by_id_is_deterministic_and_disjoint(tiny_split, tiny_csv):
    entries, _ = load_entries(tiny_csv)
    a = split_by_id(entries, 0.25, seed=0)
    b = split_by_id(entries, 0.25, seed=0)
    c = split_by_id(entries, 0.25, seed=1)
    ids = lambda es: [e.id for e in es]  # noqa: E731
    assert ids(a[1]) == ids(b[1]) and ids(a[1]) != ids(c[1])
    assert not set(ids(a[0])) & set(ids(a[1]))
    assert len(a[0]) + len(a[1]) == len(entries)


# -- tasks ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["unet", "vae", "cgcnn"])
def test_tiny_run_writes_loadable_checkpoints_and_metrics(kind, tiny_split, tmp_path):
    task = build_task(kind, tiny_split, _opts(kind))
    summary = Trainer(task, _cfg(), tmp_path, torch.device("cpu")).fit()
    assert summary["epochs_done"] == 2
    for name in ("best", "last"):
        model, meta = load_checkpoint(tmp_path / name, kind=kind)
        assert meta["kind"] == kind and meta["normalisers"]
    assert (tmp_path / "last" / "train_state.pt").is_file()
    rows = _metric_rows(tmp_path)
    assert [(r["epoch"], r["split"]) for r in rows] == [
        ("1", "train"),
        ("1", "val"),
        ("2", "train"),
        ("2", "val"),
    ]
    assert all(math.isfinite(float(r["loss"])) for r in rows)
    assert set(task.loss_names) <= set(rows[0])
    if kind != "cgcnn":
        meta = load_checkpoint(tmp_path / "best", kind=kind)[1]
        elements = {el.symbol for e in task.train_set.entries for el in e.structure.composition.elements}
        assert set(meta["vocab"]) == elements
        assert meta["normalisers"]["voxel"]["d"] == 8
        assert len(meta["normalisers"]["class_weights"]) == len(meta["vocab"]) + 1


def test_vae_deciles_come_from_training_split(tiny_csv):
    entries, _ = load_entries(tiny_csv)
    train, val = split_by_id(entries, 0.1, seed=0)  # >= 10 labelled training crystals
    task = build_task("vae", SplitData(train, val, []), _opts("vae"))
    train_values = sorted(e.props["heat_ref"] for e in task.train_set.entries)
    edges = task.norms["prop_edges"]
    assert edges == pytest.approx(list(np.quantile(train_values, np.arange(1, 10) / 10)))
    assert set(task.train_set.cond.tolist()) <= set(range(10))


def test_seed_makes_runs_repeatable(tiny_split, tmp_path):
    runs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        torch.manual_seed(1000 + len(runs))  # whatever the global RNG holds: the seed decides
        task = build_task("vae", tiny_split, _opts("vae", seed=seed))
        Trainer(task, _cfg(epochs=1, seed=seed), tmp_path / name, torch.device("cpu")).fit()
        runs.append(_weights(tmp_path / name))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


@pytest.mark.parametrize("kind", ["vae", "cgcnn"])
def test_kill_mid_epoch_and_resume_equals_uninterrupted(kind, tiny_split, tmp_path):
    cfg = _cfg(epochs=2, batch_size=2, ckpt_every_steps=2)
    Trainer(build_task(kind, tiny_split, _opts(kind)), cfg, tmp_path / "full", torch.device("cpu")).fit()

    def kill(state: dict) -> None:
        # Epoch 2, step 3: the last checkpoint is at step 2, so step 3 is lost and redone.
        if state["epoch"] == 1 and state["step_in_epoch"] == 3:
            raise StopTraining

    with pytest.raises(StopTraining):
        Trainer(build_task(kind, tiny_split, _opts(kind)), cfg, tmp_path / "cut", torch.device("cpu")).fit(
            callback=kill
        )
    state = torch.load(tmp_path / "cut" / "last" / "train_state.pt", weights_only=True)
    assert state["loop"]["epoch"] == 1 and state["loop"]["step_in_epoch"] == 2

    torch.manual_seed(123)  # the resumed process starts from other RNG states
    Trainer(build_task(kind, tiny_split, _opts(kind)), cfg, tmp_path / "cut", torch.device("cpu")).fit(
        resume=True
    )
    full, resumed = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    assert _metric_rows(tmp_path / "full") == _metric_rows(tmp_path / "cut")


def test_stop_epoch_ends_a_run_that_resume_continues_exactly(tiny_split, tmp_path):
    cfg = _cfg(epochs=3, batch_size=2)
    Trainer(build_task("vae", tiny_split, _opts("vae")), cfg, tmp_path / "full", torch.device("cpu")).fit()
    part = Trainer(build_task("vae", tiny_split, _opts("vae")), replace(cfg, stop_epoch=1), tmp_path / "part",
                   torch.device("cpu")).fit()  # fmt: skip
    assert part["stopped"] == "stop epoch" and part["epochs_done"] == 1
    again = Trainer(build_task("vae", tiny_split, _opts("vae")), replace(cfg, stop_epoch=1), tmp_path / "part",
                    torch.device("cpu")).fit(resume=True)  # fmt: skip
    assert again["stopped"] == "stop epoch" and again["epochs_done"] == 1  # re-running it does nothing
    Trainer(build_task("vae", tiny_split, _opts("vae")), cfg, tmp_path / "part", torch.device("cpu")).fit(resume=True)
    full, resumed = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert all(torch.equal(full[k], resumed[k]) for k in full)  # the LR schedule spanned 3 epochs


def test_early_stopping_and_time_budget(tiny_split, tmp_path):
    task = build_task("cgcnn", tiny_split, _opts("cgcnn"))
    summary = Trainer(task, _cfg(epochs=50, patience=1, lr=10.0), tmp_path / "es", torch.device("cpu")).fit()
    assert summary["stopped"] == "early stopping" and summary["epochs_done"] < 50
    task = build_task("cgcnn", tiny_split, _opts("cgcnn"))
    again = Trainer(task, _cfg(epochs=50, patience=1, lr=10.0), tmp_path / "es", torch.device("cpu")).fit(resume=True)
    assert again["epochs_done"] == summary["epochs_done"]  # same patience: stays stopped
    task = build_task("cgcnn", tiny_split, _opts("cgcnn"))
    more = Trainer(task, _cfg(epochs=50, patience=3, lr=10.0), tmp_path / "es", torch.device("cpu")).fit(resume=True)
    assert more["epochs_done"] > summary["epochs_done"]  # a larger --patience goes on
    task = build_task("cgcnn", tiny_split, _opts("cgcnn"))
    summary = Trainer(task, _cfg(epochs=50, max_minutes=0.0), tmp_path / "tb", torch.device("cpu")).fit()
    assert summary["stopped"] == "time budget" and summary["epochs_done"] == 1
    state = torch.load(tmp_path / "tb" / "last" / "train_state.pt", weights_only=True)
    assert state["loop"]["global_step"] == 1  # stopped after the first step, then validated
    load_checkpoint(tmp_path / "tb" / "best", kind="cgcnn")
    assert len(_metric_rows(tmp_path / "tb")) == 2
    task = build_task("cgcnn", tiny_split, _opts("cgcnn"))
    summary = Trainer(task, _cfg(epochs=50, max_minutes=0.0), tmp_path / "tb", torch.device("cpu")).fit(
        resume=True
    )
    assert summary["stopped"] == "time budget" and len(_metric_rows(tmp_path / "tb")) == 2  # budget spent


# -- command line -----------------------------------------------------------------------------
def test_cli_train_unet_records_failures_and_split(tiny_csv, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "unet", "--data", str(tiny_csv), "--out", str(out), "--epochs", "1", "--grid", "8",
            "--batch-size", "4", "--model-config", json.dumps(TINY_UNET), "--val-frac", "0.25"]  # fmt: skip
    # d = 8 cannot represent 4 Å cells with the default voxel limit: every crystal fails to grid.
    assert main(args) == 2
    assert "no usable crystals" in capsys.readouterr().err
    args += ["--voxel-config", json.dumps(TINY_VOXEL), "--threads", "1"]
    assert main(args) == 0
    with (out / "failures.csv").open() as fh:
        failures = list(csv.DictReader(fh))
    assert [f["id"] for f in failures] == ["broken-1"] and failures[0]["stage"] == "load"
    split = json.loads((out / "split.json").read_text())
    assert split["train"] and split["val"] and not set(split["train"]) & set(split["val"])
    load_checkpoint(out / "best", kind="unet")
    twin = [*args[: args.index("--out") + 1], str(tmp_path / "twin"), *args[args.index("--out") + 2 :]]
    assert main(twin) == 0  # same command, same --seed: same weights
    first, second = _weights(out), _weights(tmp_path / "twin")
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert main(args) == 2  # existing run without --resume
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--resume", "--epochs", "2"]) == 0
    assert [r["epoch"] for r in _metric_rows(out)] == ["1", "1", "2", "2"]


def test_cli_train_all_trains_three_stages_and_resumes(tiny_csv, tmp_path):
    out = tmp_path / "all"
    models = {"unet": TINY_UNET, "vae": TINY_VAE, "cgcnn": TINY_CGCNN}
    args = ["train", "all", "--data", str(tiny_csv), "--out", str(out), "--epochs", "1", "--grid", "8",
            "--target", "heat_ref", "--batch-size", "4", "--val-frac", "0.25", "--threads", "1",
            "--voxel-config", json.dumps(TINY_VOXEL), "--model-config", json.dumps(models)]  # fmt: skip
    assert main(args) == 0
    for kind in ("unet", "vae", "cgcnn"):
        load_checkpoint(out / kind / "best", kind=kind)
    assert load_checkpoint(out / "vae" / "best")[1]["config"]["dfc_weight"] > 0  # DFC through the U-Net
    val_ids = set(json.loads((out / "split.json").read_text())["val"])
    for kind in ("unet", "vae", "cgcnn"):
        assert not set(json.loads((out / kind / "split.json").read_text())["train"]) & val_ids
    before = {k: _metric_rows(out / k) for k in models}
    assert main([*args, "--resume"]) == 0  # finished stages: nothing retrains
    assert {k: _metric_rows(out / k) for k in models} == before


def test_cli_init_warm_starts_and_resume_ignores_it(tiny_csv, tmp_path):
    base = ["train", "vae", "--data", str(tiny_csv), "--epochs", "1", "--grid", "8", "--batch-size", "4",
            "--val-frac", "0.25", "--threads", "1", "--voxel-config", json.dumps(TINY_VOXEL)]  # fmt: skip
    small = json.dumps({**TINY_VAE, "comp_head": False})
    assert main([*base, "--out", str(tmp_path / "a"), "--model-config", small]) == 0
    grown = json.dumps({**TINY_VAE, "comp_head": True})
    b = ["--out", str(tmp_path / "b"), "--model-config", grown]
    assert main([*base, *b, "--init", str(tmp_path / "a" / "best")]) == 0
    a_w = load_file(str(tmp_path / "a" / "best" / "model.safetensors"))
    assert "count_head.0.weight" in load_file(str(tmp_path / "b" / "last" / "model.safetensors"))
    assert set(a_w) < set(load_file(str(tmp_path / "b" / "last" / "model.safetensors")))
    # resuming the finished run does not need the --init checkpoint any more
    assert main([*base, *b, "--init", str(tmp_path / "gone"), "--resume"]) == 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--epochs", "0"], "--epochs must be positive"),
        (["--grid", "12"], "--grid must be a multiple of 8"),
        (["--unet", "/nonexistent"], "--unet must be"),
        (["--model-config", "{bad"], "--model-config"),
        (["--model-config", '{"no_such_field": 1}'], "invalid VAEConfig"),
    ],
)
def test_cli_bad_arguments_give_one_line_errors(extra, message, tiny_csv, tmp_path, capsys):
    assert main(["train", "vae", "--data", str(tiny_csv), "--out", str(tmp_path / "x"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_cgcnn_requires_target(tiny_csv, tmp_path):
    parser = argparse.ArgumentParser()
    add_train_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "cgcnn", "--data", str(tiny_csv), "--out", str(tmp_path / "c")])
    with pytest.raises(ICSGError, match="--target"):
        run_train(args)


def test_a_new_seed_keeps_the_held_out_crystals_held_out(tiny_csv, tmp_path):
    """--seed changes the initialisation; which crystals are held out follows --split-seed only
    (a second training stage with another seed once trained on ~1,200 held-out crystals)."""
    from core.train.dist import env_dist
    from core.train.run import TrainRun, load_split

    def held_out(seed: int, split_seed: int = 0) -> list[str]:
        run = TrainRun(kind="unet", data=[str(tiny_csv)], out=tmp_path / f"{seed}_{split_seed}", val_frac=0.25,
                       seed=seed, split_seed=split_seed)  # fmt: skip
        return sorted(e.id for e in load_split(run, env_dist()).val)

    assert held_out(0) == held_out(7)
    assert held_out(0) != held_out(0, split_seed=1)
