"""Layer names of torchvision and timm DenseNet checkpoints (PyTorch state dicts).

Layout (torchvision ``densenet121/161/169/201``, timm ``densenet121.tv_in1k`` ...):
``features.conv0``, ``features.norm0``,
``features.denseblock{s}.denselayer{i}.{norm1,conv1,norm2,conv2}``,
``features.transition{s}.{norm,conv}``, ``features.norm5``, ``classifier``. Old
torchvision checkpoints spell ``norm.1`` / ``conv.1`` for ``norm1`` / ``conv1``
(torchvision renames them on load; so do we). Our names are in docs/densenet.md
("Layout and layer names"); the tensors convert as for ResNets
(:func:`~keras_resnet.weights.torch_checkpoints.from_state_dict`).
"""

from __future__ import annotations

import re

from keras_resnet.weights.core import HEAD

_FIXED = {"features.conv0": "stem_conv", "features.norm0": "stem_bn",
          "features.norm5": "post_bn", "classifier": HEAD}  # fmt: skip
_LAYER = re.compile(r"^features\.denseblock(\d+)\.denselayer(\d+)\.(norm|conv)\.?(\d)$")
_TRANSITION = re.compile(r"^features\.transition(\d+)\.(norm|conv)$")


def densenet_layer_name(module: str) -> str | None:
    """Our layer name for a torchvision / timm DenseNet module path (``None`` if unmapped).

    Example:
        >>> densenet_layer_name("features.denseblock2.denselayer3.norm2")
        'stage2_layer3_bn2'
        >>> densenet_layer_name("features.denseblock1.denselayer1.conv.1")  # old spelling
        'stage1_layer1_conv1'
        >>> densenet_layer_name("features.transition1.conv")
        'stage1_transition_conv'
    """
    if module in _FIXED:
        return _FIXED[module]
    match = _LAYER.match(module)
    if match:
        s, i, kind, n = match.groups()
        return f"stage{s}_layer{i}_{'bn' if kind == 'norm' else 'conv'}{n}"
    match = _TRANSITION.match(module)
    if match:
        return f"stage{match[1]}_transition_{'bn' if match[2] == 'norm' else 'conv'}"
    return None
