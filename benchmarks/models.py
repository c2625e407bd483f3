"""Speed and memory of the three networks; prints ONE JSON object.

    python benchmarks/models.py [--models DIR] [--device cpu|cuda] [--classes 57] [--smoke]

Without --models the default configs are used (n_classes = 57: the perov_5 vocabulary of 56
elements + background). With --models DIR, the checkpoints DIR/{unet,vae,cgcnn} are loaded
instead (any that exist). Inputs are random tensors at the model's grid size (d = 32); CGCNN
graphs are built from small real crystals. Timings are wall-clock; each also has a process-CPU-time
twin (``*_cpu_*``): on a busy shared machine run with --threads 1, where CPU time approximates the
wall time on an idle core. The load average is reported for the same reason.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.checkpoint import load_checkpoint  # noqa: E402
from core.models.blocks import make_input  # noqa: E402
from core.models.cgcnn import CGCNN, CGCNNConfig, build_graph, collate  # noqa: E402
from core.models.unet import UNet3D, UNetConfig, unet_loss  # noqa: E402
from core.models.vae import CondVAE3D, VAEConfig, freeze, vae_loss  # noqa: E402

_AUTOCAST = False
_BIG = 64  # the batch of the "batch64" inference figures (4 in --smoke)
_CPU_MS: list[float] = []


def _autocast(device: torch.device) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=_AUTOCAST)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _times_ms(fn: Callable[[], object], device: torch.device, reps: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    _CPU_MS.clear()
    out = []
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        out.append((time.perf_counter() - t) * 1000)
        _CPU_MS.append((time.process_time() - c) * 1000)
    return out


def _cpu_median() -> float:
    """Median process CPU time (ms) of the last _times_ms call: with --threads 1 on a busy shared
    machine this is close to the wall time the same call takes on an idle one."""
    value = statistics.median(_CPU_MS)
    _CPU_MS.clear()
    return value


def _load(models: Path | None, kind: str, default: torch.nn.Module, device: torch.device):
    if models is not None and (models / kind).is_dir():
        model, _ = load_checkpoint(models / kind, kind=kind, device=device)
        return model
    return default.to(device)


def _random_batch(b: int, d: int, n_classes: int, device: torch.device):
    dens = torch.rand(b, d, d, d, device=device)
    labels = torch.randint(0, n_classes, (b, d, d, d), device=device)
    abc = 3.5 + 2 * torch.rand(b, 3, device=device)
    return dens, labels, abc


def bench_unet(net: UNet3D, device: torch.device, batch: int, steps: int) -> dict[str, float]:
    d, c = 32, net.cfg.n_classes
    dens, labels, abc = _random_batch(batch, d, c, device)
    x = make_input(dens, abc)
    w = torch.ones(c, device=device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()

    def step() -> None:
        with _autocast(device):
            loss, _ = unet_loss(net(x), labels, w)
        opt.zero_grad()
        loss.backward()
        opt.step()

    t = _times_ms(step, device, steps, warmup=1)
    t_cpu = _cpu_median()
    net.eval()
    x1 = x[:1]
    x64 = make_input(*[v for v in _random_batch(_BIG, d, c, device)[::2]])
    with torch.inference_mode():
        single = _times_ms(lambda: net(x1), device, 20)
        single_cpu = _cpu_median()
        b64 = _times_ms(lambda: net(x64), device, 2, warmup=1)
        b64_cpu = _cpu_median()
    return {
        "unet_train_samples_per_s": batch * 1000 / statistics.median(t),
        "unet_train_samples_per_cpu_s": batch * 1000 / t_cpu,
        "unet_single_ms_median": statistics.median(single),
        "unet_single_cpu_ms_median": single_cpu,
        "unet_batch64_ms": min(b64),
        "unet_batch64_cpu_ms": b64_cpu,
    }


def bench_vae(vae: CondVAE3D, unet: UNet3D, device: torch.device, batch: int, steps: int) -> dict:
    cfg = vae.cfg
    dens, labels, abc = _random_batch(batch, cfg.d, cfg.n_classes, device)
    x = make_input(dens, abc)
    cond = torch.randint(0, cfg.n_conditions, (batch,), device=device)
    prop = torch.randn(batch, device=device)
    prop[::2] = float("nan")
    abc_std = torch.randn(batch, 3, device=device)
    frozen = freeze(copy.deepcopy(unet))  # a copy: the U-Net is trained below
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    vae.train()

    def step() -> None:
        with _autocast(device):
            out = vae(x, cond, abc_std, labels)
            loss, _ = vae_loss(out, dens, labels, abc_std, prop, cfg, unet=frozen)
        opt.zero_grad()
        loss.backward()
        opt.step()

    t = _times_ms(step, device, steps, warmup=1)
    t_cpu = _cpu_median()
    vae.eval()
    z1 = torch.randn(1, cfg.latent, device=device)
    c1 = torch.full((1,), cfg.n_conditions - 1, device=device)
    z64 = torch.randn(_BIG, cfg.latent, device=device)
    c64 = torch.full((_BIG,), cfg.n_conditions - 1, device=device)
    with torch.inference_mode():
        single = _times_ms(lambda: vae.decode(z1, c1), device, 50, warmup=5)
        single_cpu = _cpu_median()
        b64 = _times_ms(lambda: vae.decode(z64, c64), device, 3, warmup=1)
        b64_cpu = _cpu_median()
        enc = _times_ms(lambda: vae.encode(x[:1], cond[:1], abc_std[:1], labels[:1]), device, 20)
        enc_cpu = _cpu_median()
    return {
        "vae_train_samples_per_s": batch * 1000 / statistics.median(t),
        "vae_train_samples_per_cpu_s": batch * 1000 / t_cpu,
        "vae_train_with_dfc": True,
        "vae_decode_ms_median": statistics.median(single),
        "vae_decode_ms_p90": sorted(single)[int(0.9 * len(single))],
        "vae_decode_cpu_ms_median": single_cpu,
        "vae_decode_batch64_ms": min(b64),
        "vae_decode_batch64_cpu_ms": b64_cpu,
        "vae_encode_ms_median": statistics.median(enc),
        "vae_encode_cpu_ms_median": enc_cpu,
    }


def _crystals() -> list:
    from pymatgen.core import Lattice, Structure

    rock = [[0, 0, 0], [0.5, 0.5, 0.5]]
    perov = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return [
        Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"], perov),
        Structure(Lattice.cubic(3.99), ["Ba", "Zr", "O", "O", "O"], perov),
        Structure(Lattice.cubic(4.12), ["Cs", "Cl"], rock),
        Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], rock),
    ]


def bench_cgcnn(model: CGCNN, device: torch.device, batch: int, steps: int) -> dict[str, float]:
    crystals = _crystals()
    t0 = time.perf_counter()
    graphs = [build_graph(crystals[i % len(crystals)], model.cfg) for i in range(batch)]
    graph_ms = (time.perf_counter() - t0) * 1000 / batch
    b = collate(graphs).to(device)
    y = torch.randn(batch, len(model.cfg.targets), device=device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        loss = F.mse_loss(model(b), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    t = _times_ms(step, device, steps)
    t_cpu = _cpu_median()
    model.eval()
    one = collate(graphs[:1]).to(device)
    with torch.inference_mode():
        single = _times_ms(lambda: model(one), device, 20)
        _cpu_median()
    return {
        "cgcnn_train_samples_per_s": batch * 1000 / statistics.median(t),
        "cgcnn_train_samples_per_cpu_s": batch * 1000 / t_cpu,
        "cgcnn_single_ms_median": statistics.median(single),
        "cgcnn_graph_build_ms": graph_ms,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=Path, default=None)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--classes", type=int, default=57)
    p.add_argument("--batch", type=int, default=8, help="training batch for unet/vae")
    p.add_argument("--steps", type=int, default=3, help="timed training steps per model")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for the training steps")
    p.add_argument("--smoke", action="store_true", help="one step of each at batch 1 (CI: the benchmark still runs)")
    args = p.parse_args(argv)
    global _BIG
    if args.smoke:
        args.batch, args.steps, _BIG = 1, 1, 4
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    global _AUTOCAST
    _AUTOCAST = args.bf16
    torch.manual_seed(0)
    unet = _load(args.models, "unet", UNet3D(UNetConfig(n_classes=args.classes)), device)
    vae = _load(args.models, "vae", CondVAE3D(VAEConfig(n_classes=args.classes)), device)
    cgcnn = _load(args.models, "cgcnn", CGCNN(CGCNNConfig()), device)
    result: dict[str, object] = {
        "smoke": args.smoke,
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "train_bf16_autocast": args.bf16,
        "loadavg_start": os.getloadavg()[0],
        "n_classes": unet.cfg.n_classes,
        "unet_params": sum(p.numel() for p in unet.parameters()),
        "vae_params": sum(p.numel() for p in vae.parameters()),
        "cgcnn_params": sum(p.numel() for p in cgcnn.parameters()),
    }
    result.update(bench_vae(vae, unet, device, args.batch, args.steps))
    result.update(bench_unet(unet, device, args.batch, args.steps))
    result.update(bench_cgcnn(cgcnn, device, 8 if args.smoke else 64, args.steps if args.smoke else max(args.steps, 5)))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        result["cuda_peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
    result["loadavg_end"] = os.getloadavg()[0]
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
