"""`austack predict`: a trained detector applied to images and videos (see docs/predict.md).

inputs (files, folders, videos) -> frames (prepare's decoders) -> faces (prepare's tracker and
alignment) -> batches -> the detector -> rows (CSV + sidecar JSON, or `Predictions` arrays).
"""
from ..runs.locate import locate_detector
from .api import (Predictions, face_finder, predict_arrays, predict_images, predict_paths,
                  predict_to_csv, predict_video)
from .output import columns, sidecar_path

__all__ = ["Predictions", "columns", "face_finder", "locate_detector", "predict_arrays",
           "predict_images", "predict_paths", "predict_to_csv", "predict_video", "sidecar_path"]
