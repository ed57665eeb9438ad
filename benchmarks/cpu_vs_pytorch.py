"""CPU-seconds per training image: our models on Keras backends vs torchvision in PyTorch.

Configurations: our ``resnet50`` (64x64) and ``resnet20`` (32x32) on the Keras
TensorFlow backend, and on the Keras JAX / PyTorch backends when those are installed;
torchvision's ``resnet50`` and a plain-PyTorch CIFAR ResNet-20 (torchvision has none;
He et al. 2015's 3x{16,32,64} layout, option-B projection shortcuts like ours). Same
batch, input, SGD (momentum 0.9), cross-entropy, 10 classes. Each measurement runs in
its own process (``--worker``), configurations alternate over ``--rounds`` so the load
of the shared machine hits them alike; the figure is the median over rounds of
process CPU-seconds (all threads) per image after warm-up steps. Prints ONE JSON line
with the figures and each one's ratio to PyTorch's for the same model.

Usage: taskset -c 1 python benchmarks/cpu_vs_pytorch.py [--rounds 3] [--steps 5]
           [--models resnet50,resnet20]
           [--frameworks keras-tensorflow,keras-jax,keras-torch,pytorch]
       (needs ``pip install -e ".[bench]"`` for torch/torchvision; without them only the
       Keras figures are reported)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

SIZES = {"resnet50": 64, "resnet20": 32}


def _torch_resnet20():
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.short = nn.Identity()
            if stride != 1 or cin != cout:
                self.short = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + self.short(x))

    layers, cin = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
    for i, width in enumerate((16, 32, 64)):
        for j in range(3):
            layers.append(Block(cin, width, 2 if i and not j else 1))
            cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def _torch_step(model_name: str, batch: int):
    import torch
    import torchvision

    torch.manual_seed(0)
    if model_name == "resnet50":
        model = torchvision.models.resnet50(num_classes=10)
    else:
        model = _torch_resnet20()
    size = SIZES[model_name]
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))
    model.train()

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def _keras_step(model_name: str, batch: int):
    import keras
    import numpy as np

    from keras_resnet import create_model

    keras.utils.set_random_seed(0)
    size = SIZES[model_name]
    model = create_model(model_name, input_shape=(size, size, 3), classes=10)
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, size, size, 3)).astype("float32")
    y = rng.integers(0, 10, size=(batch,)).astype("int32")
    return lambda: float(np.asarray(model.train_on_batch(x, y)))


def worker(config: str, batch: int, steps: int, warmup: int) -> None:
    framework, model_name = config.split(":")
    step = (
        _torch_step(model_name, batch) if framework == "pytorch" else _keras_step(model_name, batch)
    )
    for _ in range(warmup):
        step()
    start = time.process_time()
    for _ in range(steps):
        loss = step()
    cpu = time.process_time() - start
    print(json.dumps({"cpu_s_per_image": cpu / (steps * batch), "loss": loss}))


def _configs(models: list[str], wanted: list[str]) -> list[str]:
    frameworks = ["keras-tensorflow"]
    frameworks += [f"keras-{m}" for m in ("jax", "torch") if importlib.util.find_spec(m)]
    if importlib.util.find_spec("torch") and importlib.util.find_spec("torchvision"):
        frameworks.append("pytorch")
    return [f"{f}:{m}" for m in models for f in frameworks if f in wanted]


def run(config: str, args) -> float | None:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    framework = config.split(":")[0]
    if framework.startswith("keras-"):
        env["KERAS_BACKEND"] = framework.split("-", 1)[1]
    cmd = [sys.executable, __file__, "--worker", config, "--batch-size", str(args.batch_size)]
    cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        print(result.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])["cpu_s_per_image"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--models", default="resnet50,resnet20")
    parser.add_argument(
        "--frameworks",
        default="keras-tensorflow,keras-jax,keras-torch,pytorch",
        help="the installed ones of these are timed",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.batch_size, args.steps, args.warmup)
    configs = _configs(args.models.split(","), args.frameworks.split(","))
    samples: dict[str, list[float]] = {c: [] for c in configs}
    for _ in range(args.rounds):
        for config in configs:
            value = run(config, args)
            if value is not None:
                samples[config].append(value)
    cpu = {c: round(statistics.median(v), 4) for c, v in samples.items() if v}
    ratios = {}
    for config, value in cpu.items():
        reference = cpu.get("pytorch:" + config.split(":")[1])
        if reference and not config.startswith("pytorch"):
            ratios[config] = round(value / reference, 2)
    print(
        json.dumps(
            {
                "batch_size": args.batch_size,
                "input": SIZES,
                "steps": args.steps,
                "rounds": args.rounds,
                "cpu_s_per_image": cpu,
                "ratio_to_pytorch": ratios,
                "cpus": len(os.sched_getaffinity(0)),  # taskset -c 1: 1
            }
        )
    )


if __name__ == "__main__":
    main()
