"""Packaging for keras_resnet (distribution name: keras-resnet-toolkit).

The PyPI name ``keras-resnet`` belongs to an older, unrelated project, so this
toolkit is distributed as ``keras-resnet-toolkit`` while the import name stays
``keras_resnet``.
"""

from setuptools import find_packages, setup

setup(
    name="keras-resnet-toolkit",
    version="0.1.0",
    description="Residual networks for Keras 3: blocks, zoo, data, training, tuning, export.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_resnet", "keras_resnet.*"]),
    include_package_data=True,
    install_requires=[
        "tensorflow>=2.16",
        "tensorboard>=2.16",
        "keras>=3.0",
        "tensorflow-datasets>=4.9",
        "keras-tuner>=1.4",
        "numpy>=1.23",
        "scikit-learn>=1.2",
        "matplotlib>=3.6",
    ],
    extras_require={
        "dev": [
            "pytest>=7",
            "pytest-xdist>=3.5",  # the default suite runs on every core (at most 4)
            "ruff>=0.4",
            "nbclient>=0.9",
            "nbformat>=5.9",
            "ipykernel>=6",
            "pandas>=1.5",
            # pretrained-weight tests: safetensors files, keras-hub as the reference
            "safetensors>=0.4",
            "keras-hub>=0.20",
            # the JAX backend tests (its CPU build; the PyTorch backend needs `torch`)
            "jax>=0.4",
        ],
        # reading timm / torchvision / keras-hub checkpoints; hf:// downloads
        "hub": ["safetensors>=0.4", "keras-hub>=0.20", "huggingface_hub>=0.20"],
        # reading PyTorch .pth / .bin checkpoints (safetensors needs no torch)
        "torch": ["torch>=2.0"],
        "notebooks": ["jupyter", "nbclient>=0.9", "nbformat>=5.9", "ipykernel>=6", "pandas>=1.5"],
        "bench": ["psutil>=5.9", "torch>=2.1", "torchvision>=0.16"],
    },
    entry_points={"console_scripts": ["keras-resnet=keras_resnet.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Keras",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
