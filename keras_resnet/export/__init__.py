"""Export trained models (SavedModel for serving, TFLite) and run the exported artifacts."""

from keras_resnet.export.saved_model import export_run, export_saved_model, normalize_images
from keras_resnet.export.serving import load_run_preprocessing, predict_images, run_tflite
from keras_resnet.export.tflite import QUANTIZE_MODES, export_tflite

__all__ = [
    "QUANTIZE_MODES",
    "export_run",
    "export_saved_model",
    "export_tflite",
    "load_run_preprocessing",
    "normalize_images",
    "predict_images",
    "run_tflite",
]
