"""The naive loop `austack predict` is measured against (issue #12): every frame decoded at
full resolution, dlib detection from scratch on the full-resolution frame (no tracking, no
downscaling), the same alignment, one frame per forward pass of the same detector."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from austack.faces.align import align_face_49, landmarks_68_to_49
from austack.faces.landmarks import detect_68


def naive_predict_video(detector, path, *, upsample: int = 0) -> np.ndarray:
    """Per-frame probabilities [T, n_au] (NaN where no face), frame by frame."""
    a = detector.info["alignment"]
    cap, out = cv2.VideoCapture(str(path)), []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        p68 = detect_68(rgb, detect_max_side=max(rgb.shape[:2]), upsample=upsample)
        if p68 is None:
            out.append(np.full(len(detector.aus), np.nan, np.float32))
            continue
        face, _, _ = align_face_49(rgb, landmarks_68_to_49(p68), a["size"], a["box_enlarge"])
        x = torch.from_numpy(face).permute(2, 0, 1)[None].contiguous()
        out.append(detector.predict(x)[0].numpy())
    cap.release()
    return np.stack(out)
