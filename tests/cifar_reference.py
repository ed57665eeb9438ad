"""An independent PyTorch reimplementation of the CIFAR ResNets of He et al. 2015 as
published in akamaster/pytorch_resnet_cifar10, for the checkpoint tests.

Written from the paper (Sec. 4.2: 3x3 stem of 16 channels, three stages of ``n`` basic
blocks of 16/32/64 channels, global average pool, linear head) and that layout's
published description: option-A shortcuts ``F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0,
planes // 4, planes // 4))`` (zero channels on each side of the channel axis), module
names ``conv1``, ``bn1``, ``layer{1,2,3}.{i}.conv{1,2}`` / ``.bn{1,2}``, ``linear``,
saved as ``{"state_dict": {"module." + key: tensor}, "best_prec1": ...}``. It shares
no code with keras_resnet. Runs in float64 as the reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class OptionA(nn.Module):
    """The parameter-free shortcut: subsample by 2, ``pad`` zero channels on each side."""

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        changes = stride != 1 or in_planes != planes
        self.shortcut = OptionA(planes // 4) if changes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 images."""

    def __init__(self, n: int, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        in_planes = 16
        for index, planes in enumerate((16, 32, 64)):
            blocks = []
            for i in range(n):
                stride = 2 if index > 0 and i == 0 else 1
                blocks.append(BasicBlock(in_planes, planes, stride))
                in_planes = planes
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
        self.linear = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.shape[3]).flatten(1)
        return self.linear(out)


def random_cifar_resnet(depth: int, classes: int = 10, seed: int = 0) -> CifarResNet:
    """A ResNet-``depth`` with random weights and random BN statistics, in eval mode.

    The second BN of each block gets a small gamma so that activations stay of order
    one through 1202 layers (the residual sum grows with depth otherwise).
    """
    torch.manual_seed(seed)
    model = CifarResNet((depth - 2) // 6, classes)
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.BatchNorm2d):
                low, high = (0.05, 0.2) if name.endswith("bn2") else (0.5, 1.5)
                module.weight.uniform_(low, high)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.num_batches_tracked.fill_(7)
    return model.eval()


def save_checkpoint(model: CifarResNet, path: str) -> None:
    """Write ``model`` as the published files are: a DataParallel state dict and a score."""
    state = {"module." + k: v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "best_prec1": torch.tensor(90.0)}, path)


def reference_logits(model: CifarResNet, images_nhwc) -> torch.Tensor:
    """Logits of ``model`` for NHWC float images, computed in float64 (``model`` too)."""
    x = torch.as_tensor(images_nhwc, dtype=torch.float64).permute(0, 3, 1, 2)
    with torch.no_grad():
        return model.double()(x).numpy()
