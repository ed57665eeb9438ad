"""He et al. 2015's CIFAR-10 ResNet-20 experiment on real images, keras_resnet vs PyTorch.

Both sides train the same net (ResNet-20, option-A shortcuts) with the same recipe on
the same images: the training batches of a CIFAR-10 folder or archive (``--data``),
no validation split, ``he2015_cifar`` scaled to ``--epochs`` (SGD 0.1, momentum 0.9,
weight decay 1e-4, batch 128, learning rate / 10 at 50 % and 75 % of training), pad-4
random crop and horizontal flip, inputs normalized with the published CIFAR-10
mean/std. They are then scored on the folder's test batch.

- keras_resnet: ``keras_resnet.train("resnet20", "cifar10:PATH", recipe)``, the public
  API a user calls, on the TensorFlow backend.
- PyTorch: a plain-PyTorch ResNet-20 written here from the paper (3x3 stem of 16,
  three stages of 3 basic blocks of 16/32/64, option-A shortcuts: subsample and pad
  zero channels on both sides), He-normal (fan-out) convolutions as torchvision
  does, BatchNorm2d defaults, ``torch.optim.SGD(weight_decay=1e-4)`` on the
  convolution and linear kernels (biases and BN parameters undecayed, as in
  keras_resnet's recipes) and ``MultiStepLR``, the way a PyTorch user writes He et
  al.'s recipe; the model and
  batches in ``channels_last`` memory format (about 1.6x faster than NCHW on this
  project's CPU).

Each (framework, seed) run is its own process; the frameworks alternate so that the
load of a shared machine hits both alike. CPU-seconds (all threads of the process)
and wall-seconds per epoch are the medians over epochs 2.. (the first holds the
graph building). Finished runs are appended to ``--results`` (JSON lines) and skipped
when the command is run again, so a long benchmark can be resumed. Prints ONE JSON
line: per framework the median and worst test accuracy, the median CPU-s and wall-s
per epoch, and keras_resnet's figures relative to PyTorch's.

Usage: python benchmarks/cifar_vs_pytorch.py --data PATH [--epochs 30] [--seeds 0,1,2]
           [--frameworks keras,pytorch] [--results runs.jsonl]
       (PATH: ``cifar-10-binary.tar.gz``, ``cifar-10-python.tar.gz`` or an extracted
       folder; needs torch for the PyTorch side: ``pip install -e ".[bench]"``)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

FRAMEWORKS = ("keras", "pytorch")


def _epoch_figures(cpu: list[float], wall: list[float]) -> dict[str, float]:
    later = slice(1, None) if len(cpu) > 1 else slice(None)
    return {
        "cpu_s_per_epoch": statistics.median(cpu[later]),
        "wall_s_per_epoch": statistics.median(wall[later]),
    }


def _keras_run(data: str, epochs: int, seed: int) -> dict[str, float]:
    import keras

    from keras_resnet import get_recipe, train

    cpu: list[float] = []
    wall: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = (time.process_time(), time.perf_counter())

        def on_epoch_end(self, epoch, logs=None):
            cpu.append(time.process_time() - self.start[0])
            wall.append(time.perf_counter() - self.start[1])

    recipe = get_recipe(
        "he2015_cifar", epochs=epochs, validation_fraction=0.0, seed=seed, tensorboard=False
    )
    result = train("resnet20", f"cifar10:{data}", recipe, callbacks=[Clock()], verbose=0)
    return {"test_accuracy": float(result.summary["test_accuracy"]), **_epoch_figures(cpu, wall)}


def _torch_resnet20():
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.pad = (cout - cin) // 2  # option A: zero channels on both sides
            self.stride = stride

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            short = x[:, :, :: self.stride, :: self.stride]
            if self.pad:
                short = nn.functional.pad(short, (0, 0, 0, 0, self.pad, self.pad))
            return torch.relu(y + short)

    layers, cin = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
    for i, width in enumerate((16, 32, 64)):
        for j in range(3):
            layers.append(Block(cin, width, 2 if i and not j else 1))
            cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    net = nn.Sequential(*layers)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return net


def _torch_run(data: str, epochs: int, seed: int) -> dict[str, float]:
    import numpy as np
    import torch

    from keras_resnet.data import read_cifar
    from keras_resnet.data.sources import KNOWN_STATS

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    (x_train, y_train), (x_test, y_test), _ = read_cifar(data)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in KNOWN_STATS["cifar10"])

    def tensor(x: np.ndarray) -> torch.Tensor:  # uint8 NHWC -> NCHW shape, channels_last
        return torch.from_numpy(x).permute(0, 3, 1, 2)

    xs, ys = tensor(x_train), torch.from_numpy(y_train.astype("int64"))
    xt, yt = tensor(x_test), torch.from_numpy(y_test.astype("int64"))

    def normalize(x: torch.Tensor) -> torch.Tensor:
        x = (x.float() / 255 - mean) / std
        return x.contiguous(memory_format=torch.channels_last)

    def augment(x: torch.Tensor) -> torch.Tensor:  # RandomCrop(32, padding=4) + flip
        padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
        offsets = torch.randint(0, 9, (len(x), 2), generator=gen)
        flips = torch.rand(len(x), generator=gen) < 0.5
        out = torch.empty_like(x)
        for k, (i, j) in enumerate(offsets.tolist()):
            crop = padded[k, :, i : i + 32, j : j + 32]
            out[k] = crop.flip(-1) if flips[k] else crop
        return out

    model = _torch_resnet20().to(memory_format=torch.channels_last)
    # the recipe decays convolution and linear kernels only, as keras_resnet does
    kernels = [p for p in model.parameters() if p.ndim > 1]
    others = [p for p in model.parameters() if p.ndim <= 1]  # biases, BN gamma/beta
    groups = [{"params": kernels}, {"params": others, "weight_decay": 0.0}]
    opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9, weight_decay=1e-4)
    steps = -(-len(xs) // 128)
    milestones = [int(epochs * f) * steps for f in (0.5, 0.75)]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=0.1)
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(epochs):
        start = (time.process_time(), time.perf_counter())
        model.train()
        order = torch.randperm(len(xs), generator=gen)
        for b in range(steps):
            idx = order[b * 128 : (b + 1) * 128]
            loss = torch.nn.functional.cross_entropy(model(normalize(augment(xs[idx]))), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        cpu.append(time.process_time() - start[0])
        wall.append(time.perf_counter() - start[1])
    model.eval()
    with torch.no_grad():
        pred = torch.cat(
            [model(normalize(xt[i : i + 256])).argmax(1) for i in range(0, len(xt), 256)]
        )
    return {"test_accuracy": float((pred == yt).float().mean()), **_epoch_figures(cpu, wall)}


def worker(framework: str, data: str, epochs: int, seed: int) -> None:
    run = _keras_run if framework == "keras" else _torch_run
    print(
        json.dumps(
            {"framework": framework, "seed": seed, "epochs": epochs, **run(data, epochs, seed)}
        )
    )


def _summary(runs: list[dict]) -> dict:
    out: dict = {"benchmark": "cifar_vs_pytorch", "model": "resnet20"}
    for fw in FRAMEWORKS:
        mine = [r for r in runs if r["framework"] == fw]
        if not mine:
            continue
        acc = [r["test_accuracy"] for r in mine]
        out[fw] = {
            "runs": len(mine),
            "seeds": [r["seed"] for r in mine],
            "test_accuracy_median": statistics.median(acc),
            "test_accuracy_worst": min(acc),
            "test_accuracies": acc,
            "cpu_s_per_epoch": statistics.median(r["cpu_s_per_epoch"] for r in mine),
            "wall_s_per_epoch": statistics.median(r["wall_s_per_epoch"] for r in mine),
        }
    if "keras" in out and "pytorch" in out:
        k, p = out["keras"], out["pytorch"]
        out["accuracy_points_vs_pytorch"] = 100 * (
            k["test_accuracy_median"] - p["test_accuracy_median"]
        )
        out["cpu_time_ratio_vs_pytorch"] = k["cpu_s_per_epoch"] / p["cpu_s_per_epoch"]
        out["wall_time_ratio_vs_pytorch"] = k["wall_s_per_epoch"] / p["wall_s_per_epoch"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="CIFAR-10 archive or extracted folder")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--results", default=None, help="JSON-lines file of finished runs")
    parser.add_argument("--worker", choices=FRAMEWORKS, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.epochs, args.seed)
        return
    frameworks = [f for f in args.frameworks.split(",") if f]
    if not set(frameworks) <= set(FRAMEWORKS):
        parser.error(f"--frameworks must be among {FRAMEWORKS}; got {frameworks}")
    seeds = [int(s) for s in args.seeds.split(",")]
    done: list[dict] = []
    if args.results and os.path.exists(args.results):
        with open(args.results, encoding="utf-8") as f:
            done = [json.loads(line) for line in f if line.strip()]
    done = [r for r in done if r["epochs"] == args.epochs and r["seed"] in seeds]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    for i, seed in enumerate(seeds):
        for fw in frameworks if i % 2 == 0 else frameworks[::-1]:  # alternate the order
            if any(r["framework"] == fw and r["seed"] == seed for r in done):
                continue
            cmd = [sys.executable, __file__, "--worker", fw, "--data", args.data]
            cmd += ["--epochs", str(args.epochs), "--seed", str(seed)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"{fw} seed {seed} failed:\n{proc.stderr[-3000:]}")
            record = json.loads(proc.stdout.strip().splitlines()[-1])
            done.append(record)
            print(json.dumps(record), file=sys.stderr)
            if args.results:
                with open(args.results, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
    print(json.dumps(_summary([r for r in done if r["framework"] in frameworks])))


if __name__ == "__main__":
    main()
