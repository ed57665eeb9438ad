"""``tf.data`` input pipelines for keras_resnet models.

``get_datasets(name, batch_size=...)`` returns :class:`Datasets` (``train``,
``validation``, ``test`` pipelines of ``(images, labels)`` batches plus a
:class:`DatasetInfo`); :func:`from_arrays` does the same for NumPy arrays.
Images are float32 ``(B, H, W, C)`` normalized as ``(pixel / 255 - mean) / std``;
labels are int32 ``(B,)`` or float32 one-hot ``(B, num_classes)``.

Sources: ``"digits"`` (scikit-learn, offline), ``"idx:PATH"`` (MNIST-format IDX files,
such as the MNIST files as downloaded), TFDS names
(``"cifar10"``, ``"tfds:cifar10"``), ``"dir:PATH"`` (class subfolders of images),
``"cifar10:PATH"``, ``"cifar100:PATH"`` and ``"cifar100_coarse:PATH"`` (the official
CIFAR files, archive or folder, read offline by :func:`read_cifar`; ``cifar100_coarse``
takes the 20 coarse labels).
"""

from keras_resnet.data.augment import PRESETS
from keras_resnet.data.cifar import read_cifar
from keras_resnet.data.config import DataConfig
from keras_resnet.data.datasets import (
    from_arrays,
    get_datasets,
    list_datasets,
    validate_for_model,
)
from keras_resnet.data.epochs import set_train_epoch
from keras_resnet.data.pipeline import DatasetInfo, Datasets
from keras_resnet.data.sources import read_idx, train_validation_split

__all__ = [
    "PRESETS",
    "DataConfig",
    "DatasetInfo",
    "Datasets",
    "from_arrays",
    "get_datasets",
    "list_datasets",
    "read_cifar",
    "read_idx",
    "set_train_epoch",
    "train_validation_split",
    "validate_for_model",
]
