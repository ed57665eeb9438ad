"""Transfer learning on real data, offline: does an MNIST-pretrained resnet20 help on
100 labelled scikit-learn digits? Prints ONE JSON line.

1. Pre-train ``resnet20`` on the real MNIST images 0-7999 (``--mnist``), area-
   resized from 28x28 to the digits' 8x8, into a run folder.
2. For each seed, draw 10 labelled images per class from the digits training split and
   train (a) from scratch (recipe ``fast``) and (b) fine-tuned from the MNIST run folder
   (recipe ``fine_tune``: head first, then everything), with the same epochs, batch
   size and normalization; report test accuracy on the 360 digits test images (median
   and worst seed).
3. The same again through a folder of PNG files (``dir:``) written from those digits.

Usage: python benchmarks/transfer.py --mnist PATH [--seeds 5] [--epochs 40]
       [--pretrain-epochs 10] [--per-class 10] [--dir-seeds N] [--out DIR]
       (KERAS_RESNET_QUICK=1: a tiny smoke run)

``PATH`` is a folder with ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``
as downloaded from the MNIST page (read as ``idx:PATH``: images 0-7999 train,
8000-9999 test).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np

from keras_resnet.data import from_arrays
from keras_resnet.data.sources import load_digits_source, load_idx_source
from keras_resnet.training import get_recipe, train

# MNIST statistics in [0, 1] pixel units, used for pre-training and both digits arms
# (the fine-tuned network expects the normalization it was trained with).
MEAN, STD = (0.1307,), (0.3081,)
QUICK = os.environ.get("KERAS_RESNET_QUICK") == "1"


def to_8x8(x: np.ndarray) -> np.ndarray:
    """28x28 uint8 images area-resized to 8x8 uint8, like the digits."""
    import tensorflow as tf

    small = tf.image.resize(x.astype("float32"), (8, 8), method="area").numpy()
    return np.clip(np.round(small), 0, 255).astype("uint8")


def pretrain(mnist: str, out: str, epochs: int) -> tuple[str, float]:
    """Train on MNIST t10k 0-7999 (8x8); return the run folder and the test accuracy
    on images 8000-9999."""
    src = load_idx_source(os.path.expanduser(mnist))
    (x, y), (x_te, y_te) = src.train.arrays, src.test.arrays
    if QUICK:
        x, y, x_te, y_te = x[:500], y[:500], x_te[:200], y_te[:200]
    data = from_arrays(
        to_8x8(x), y, to_8x8(x_te), y_te, batch_size=64, name="mnist_t10k_8x8", mean=MEAN,
        std=STD, validation_fraction=0.1, seed=0, augment="mnist",
    )  # fmt: skip
    cfg = get_recipe("fast", epochs=epochs, tensorboard=False, seed=0)
    result = train("resnet20", data, cfg, output_dir=out, verbose=0)
    return out, round(result.summary["test_accuracy"], 4)


def few_shot(seed: int, per_class: int) -> tuple[np.ndarray, ...]:
    src = load_digits_source()
    (x_tr, y_tr), (x_te, y_te) = src.train.arrays, src.test.arrays
    rng = np.random.default_rng(seed)
    idx = np.concatenate(
        [rng.choice(np.flatnonzero(y_tr == c), per_class, replace=False) for c in range(10)]
    )
    return x_tr[idx], y_tr[idx], x_te, y_te


def write_pngs(root: str, x_tr, y_tr, x_te, y_te) -> str:
    from PIL import Image

    for split, xs, ys in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        for i, (img, label) in enumerate(zip(xs, ys)):
            folder = os.path.join(root, split, str(label))
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(img[..., 0]).save(os.path.join(folder, f"{i}.png"))
    return root


def arms(data, seed: int, epochs: int, weights: str) -> dict[str, float]:
    common = dict(
        epochs=epochs, batch_size=16, seed=seed, tensorboard=False,
        validation_fraction=0.0, augment="mnist",
    )  # fmt: skip
    data_kwargs = {} if not isinstance(data, str) else {"mean": MEAN, "std": STD}
    scratch = train(
        "resnet20", data, get_recipe("fast", **common), verbose=0, data_kwargs=data_kwargs
    )
    fine = train(
        "resnet20", data, get_recipe("fine_tune", head_epochs=max(1, epochs // 8), **common),
        verbose=0, data_kwargs=data_kwargs, weights=weights,
    )  # fmt: skip
    return {
        "scratch": round(scratch.summary["test_accuracy"], 4),
        "fine_tuned": round(fine.summary["test_accuracy"], 4),
    }


def spread(rows: list[dict], key: str) -> dict[str, float]:
    values = [r[key] for r in rows]
    return {"median": round(statistics.median(values), 4), "worst": min(values), "all": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", required=True, help="folder of the MNIST t10k IDX files")
    parser.add_argument("--seeds", type=int, default=1 if QUICK else 5)
    parser.add_argument("--epochs", type=int, default=2 if QUICK else 40)
    parser.add_argument("--pretrain-epochs", type=int, default=1 if QUICK else 10)
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--dir-seeds", type=int, default=None, help="seeds through dir: "
                        "(default: --seeds)")  # fmt: skip
    parser.add_argument("--out", default=None, help="work folder (default: a temp folder)")
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="transfer_")
    dir_seeds = args.seeds if args.dir_seeds is None else args.dir_seeds
    start = time.perf_counter()
    pretrain_dir = os.path.join(out, "mnist_pretrain")
    weights, mnist_accuracy = pretrain(args.mnist, pretrain_dir, args.pretrain_epochs)
    print(f"pre-trained on MNIST 0-7999: test accuracy {mnist_accuracy} on 8000-9999")
    results: dict[str, list[dict]] = {"arrays": [], "dir": []}
    for seed in range(args.seeds):
        few_shot_data = x_tr, y_tr, x_te, y_te = few_shot(seed, args.per_class)
        arrays = from_arrays(
            x_tr, y_tr, x_te, y_te, batch_size=16, name="digits_few", mean=MEAN, std=STD,
            validation_fraction=0.0, seed=seed, augment="mnist",
        )  # fmt: skip
        results["arrays"].append(arms(arrays, seed, args.epochs, weights))
        print(f"seed {seed}: {results['arrays'][-1]} (arrays)", flush=True)
        if seed < dir_seeds:
            folder = write_pngs(os.path.join(out, f"digits_png_seed{seed}"), *few_shot_data)
            results["dir"].append(arms(f"dir:{folder}", seed, args.epochs, weights))
            print(f"seed {seed}: {results['dir'][-1]} (dir:)", flush=True)
    summary = {
        "benchmark": "transfer",
        "per_class": args.per_class,
        "seeds": args.seeds,
        "dir_seeds": dir_seeds,
        "epochs": args.epochs,
        "pretrain_epochs": args.pretrain_epochs,
        "mnist_test_accuracy": mnist_accuracy,
        "test_images": 360,
        **{
            f"{source}_{arm}": spread(rows, arm)
            for source, rows in results.items()
            for arm in ("scratch", "fine_tuned")
            if rows
        },
        "seconds": round(time.perf_counter() - start),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
