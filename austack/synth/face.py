"""The base photograph and the appearance of each synthetic subject.

Every synthetic face starts from one real photograph that an installed package ships
(scikit-image's `astronaut`), so detectors and aligners meet real skin, eyes and hair. Its 68
landmarks are found once per process with dlib. The smile of the photograph is relaxed into a
neutral face (lips closed, corners down) so that AU12/25 are absent unless rendered.

A subject is that face reshaped by a smooth landmark-driven warp (face width and height, eye
spacing, jaw, nose and mouth size), recoloured (skin tone, hair), lit from one side, placed in
the frame (scale, roll, position) and cut out onto a background of its own, so that subjects
differ at a glance and subject-exclusive folds mean something.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import cv2
import numpy as np

from ..errors import AustackError
from .actions import (SIDE, FaceFrame, Rig, anchor_points, border_points, build_rig, face_frame,
                      smooth_field, upsample_field)

BASE_PHOTO = "skimage.data.astronaut"
CROP_IOD = (3.0, 2.4, 3.0, 3.2)     # crop around the eye midpoint: left, up, right, down (IOD)
HEAD_ELLIPSE = ((0.05, -0.15), (1.75, 1.85))  # hair + face: centre and half-axes (IOD), this photo
NECK_IOD = 0.9                      # how far under the chin the neck fades out
HAIR_LOWEST = 0.9                   # IOD under the eye line: below it only face and neck are kept
BACKDROP_DISTANCE = 3.0             # Mahalanobis distance under which a pixel is studio backdrop

# Relaxing the photo's smile: (points, lateral, down) in IOD, as in actions.MOTION.
NEUTRALISE = [((61, 62, 63), 0.0, 0.03), ((65, 66, 67), 0.0, -0.08), ((55, 56, 57, 58, 59), 0.0, -0.08),
              ((48, 54), -0.04, 0.04), ((60, 64), -0.04, 0.05), ((49, 53), 0.0, 0.02),
              ((7, 8, 9), 0.0, -0.05), ((6, 10), 0.0, -0.04), ((5, 11), 0.0, -0.02)]

# Face placement: IOD as a fraction of the frame's shorter side, eye line height, roll.
IOD_FRACTION = (0.23, 0.28)
EYE_HEIGHT = (0.40, 0.46)           # of the frame height
ROLL_DEG = 8.0
SHIFT = 0.05                        # of the frame width


@dataclass(frozen=True)
class Template:
    """The neutralised base face, cropped: the starting point of every subject."""

    rgb: np.ndarray        # float32 (H, W, 3), 0..255
    alpha: np.ndarray      # float32 (H, W), face + hair + neck, feathered
    skin: np.ndarray       # float32 (H, W), the skin part of alpha
    landmarks: np.ndarray  # float64 (68, 2), 0-based, in the crop


@dataclass(frozen=True)
class HeadPose:
    """Head motion of one frame relative to the subject's rest pose."""

    dx: float = 0.0       # IOD
    dy: float = 0.0       # IOD
    roll: float = 0.0     # degrees
    scale: float = 0.0    # relative


@dataclass
class SyntheticSubject:
    subject_id: str
    frame_size: tuple[int, int]   # (width, height)
    canvas: np.ndarray            # float32 (h, w, 4): RGB premultiplied by alpha, then alpha
    landmarks: np.ndarray         # float64 (68, 2), neutral, canvas coordinates
    rig: Rig
    background: np.ndarray        # float32 (H, W, 3)
    centre: tuple[float, float]   # eye midpoint in the frame at rest
    roll: float                   # degrees, at rest
    appearance: dict = field(default_factory=dict)

    def __post_init__(self):
        self.frame = face_frame(self.landmarks)
        w, h = self.frame_size
        self.grid_x, self.grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))

    @property
    def lip_gap(self) -> float:
        """Distance between the inner lips at rest (they never quite touch in dlib's scheme)."""
        return float(np.linalg.norm(self.landmarks[66] - self.landmarks[62]))

    @property
    def iod(self) -> float:
        return self.frame.iod

    def placement(self, pose: HeadPose | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
        """2x3 canvas -> frame matrix for this frame's pose, plus a slight tremor from `rng`."""
        pose = pose or HeadPose()
        dx, dy, roll, scale = pose.dx, pose.dy, pose.roll, pose.scale
        if rng is not None:
            t = rng.normal(0.0, 1.0, 3)
            dx, dy, roll = dx + 0.004 * t[0], dy + 0.004 * t[1], roll + 0.15 * t[2]
        m = cv2.getRotationMatrix2D(tuple(map(float, self.frame.origin)), -(self.roll + roll), 1.0 + scale)
        m[:, 2] += np.array(self.centre) + self.iod * np.array([dx, dy]) - self.frame.origin
        return m


# ---------------------------------------------------------------- the base photograph
@cache
def base_landmarks() -> tuple[np.ndarray, np.ndarray]:
    """(RGB photo, its 68 dlib landmarks), found once per process."""
    from skimage import data

    from ..faces.landmarks import detect_68

    photo = data.astronaut()
    points = detect_68(photo)
    if points is None:
        raise AustackError(f"dlib found no face in {BASE_PHOTO}; the dlib-bin or scikit-image install is broken")
    return photo, points.astype(np.float64)


def _moves(table, landmarks: np.ndarray, frame: FaceFrame) -> np.ndarray:
    d = np.zeros_like(landmarks)
    for points, lateral, down in table:
        for i in points:
            d[i] = frame.vector([lateral * SIDE[i], down])
    return d


def warp_to(image: np.ndarray, src: np.ndarray, dst: np.ndarray, out_shape: tuple[int, int],
            scale: float = 1.0, fixed: np.ndarray | None = None) -> np.ndarray:
    """Warp `image` so that points `src` land on `dst * scale` in an `out_shape` image.

    `fixed` are extra points (in source coordinates) that stay where they are.
    """
    centres, values = dst, src - dst
    if fixed is not None:
        centres = np.concatenate([centres, fixed])
        values = np.concatenate([values, np.zeros_like(fixed)])
    step = 4.0
    coarse = smooth_field(centres, values, out_shape, step, scale)
    back = upsample_field(coarse, step, out_shape)
    gy, gx = np.mgrid[0:out_shape[0], 0:out_shape[1]].astype(np.float32) / scale
    return cv2.remap(image, gx + back[..., 0], gy + back[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _backdrop_distance(crop: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """Mahalanobis distance of every pixel to the colours of the studio backdrop in `sample`."""
    pixels = crop[sample > 0].reshape(-1, 3).astype(np.float64)
    mean, cov = pixels.mean(0), np.cov(pixels.T) + np.eye(3) * 4.0
    d = crop.reshape(-1, 3) - mean
    return np.sqrt(np.einsum("ij,jk,ik->i", d, np.linalg.inv(cov), d)).reshape(crop.shape[:2])


def _head_masks(crop: np.ndarray, lm: np.ndarray, frame: FaceFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alpha, skin, neck) masks of the base face: hair, face and a fading neck, backdrop removed."""
    shape, iod = crop.shape[:2], frame.iod
    ellipse = np.zeros(shape, np.uint8)
    (cx, cy), (ax, ay) = HEAD_ELLIPSE
    centre = frame.to_image([cx, cy])
    angle = float(np.degrees(np.arctan2(frame.ex[1], frame.ex[0])))
    cv2.ellipse(ellipse, (round(centre[0]), round(centre[1])), (round(ax * iod), round(ay * iod)), angle, 0, 360, 255, -1)
    face = np.zeros(shape, np.uint8)
    forehead = lm[17:27] - frame.vector([0, 0.32])
    cv2.fillConvexPoly(face, cv2.convexHull(np.concatenate([lm[:17], forehead]).astype(np.int32)), 255)

    # hair = the ellipse minus what looks like the backdrop (sampled beside the head)
    beside = np.zeros(shape, np.uint8)
    beside[: int(lm[8, 1] - 0.4 * iod)] = 255
    beside[ellipse > 0] = 0
    cv2.ellipse(beside, (round(centre[0]), round(centre[1])), (round(ax * iod * 1.25), round(ay * iod * 1.15)),
                angle, 0, 360, 0, -1)
    backdrop = _backdrop_distance(crop, beside) < BACKDROP_DISTANCE
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    below = ((np.stack([xx, yy], -1) - frame.origin) @ frame.ey) > HAIR_LOWEST * iod   # suit, collar
    head = ((ellipse > 0) & ~backdrop & ~below).astype(np.uint8) * 255
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(3, round(0.08 * iod)) | 1,) * 2)
    head = cv2.morphologyEx(head, cv2.MORPH_OPEN, kernel)
    head = cv2.morphologyEx(head, cv2.MORPH_CLOSE, kernel)
    head = np.maximum(head, face)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(head)
    head = (labels == 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA])).astype(np.float32)

    # the neck: under the jaw, fading out with depth below the chin
    neck = np.zeros(shape, np.float32)
    down = frame.vector([0, NECK_IOD])
    poly = np.array([lm[4], lm[12], lm[11] + down - frame.vector([0.1, 0]), lm[5] + down + frame.vector([0.1, 0])])
    cv2.fillConvexPoly(neck, poly.astype(np.int32), 1.0)
    neck[face > 0] = 0
    depth = ((np.stack([xx, yy], -1) - lm[8]) @ frame.ey) / (NECK_IOD * iod)
    fade = np.clip(1.0 - depth, 0, 1).astype(np.float32)
    neck = cv2.GaussianBlur(neck, (0, 0), 0.08 * iod)

    alpha = cv2.GaussianBlur(np.maximum(head, neck * fade), (0, 0), 0.04 * iod)
    skin = cv2.GaussianBlur(np.maximum(face.astype(np.float32) / 255, neck), (0, 0), 0.05 * iod)
    return alpha, np.minimum(skin, alpha), neck


def _lip_colour(crop: np.ndarray, lm: np.ndarray) -> np.ndarray:
    lower = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillPoly(lower, [np.round(np.concatenate([lm[54:60], lm[[48, 60]], lm[67:63:-1]])).astype(np.int32)], 255)
    return np.median(crop[lower > 0], axis=0)


def _skin_colour(crop: np.ndarray, lm: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """Median colour of both cheeks."""
    r = max(2, round(0.15 * frame.iod))
    patches = [crop[int(y) - r:int(y) + r, int(x) - r:int(x) + r].reshape(-1, 3)
               for x, y in (lm[[36, 48]].mean(0), lm[[45, 54]].mean(0))]
    return np.median(np.concatenate(patches), axis=0)


@cache
def template() -> Template:
    """The base face cropped, with its smile relaxed, a neck drawn and its masks made."""
    photo, lm = base_landmarks()
    frame = face_frame(lm)
    left, up, right, down = CROP_IOD
    x0 = max(0, int(frame.origin[0] - left * frame.iod))
    y0 = max(0, int(frame.origin[1] - up * frame.iod))
    x1 = min(photo.shape[1], int(frame.origin[0] + right * frame.iod))
    y1 = min(photo.shape[0], int(frame.origin[1] + down * frame.iod))
    crop = photo[y0:y1, x0:x1].astype(np.float32)
    lm = lm - (x0, y0)
    frame = face_frame(lm)

    # cover the teeth with lip colour, then close the lips and relax the corners
    gap = np.zeros(crop.shape[:2], np.float32)
    cv2.fillPoly(gap, [np.round(lm[60:68] * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    gap = cv2.GaussianBlur(cv2.dilate(gap, np.ones((3, 3), np.uint8)), (0, 0), 1.0)[..., None]
    crop = crop * (1 - gap) + gap * _lip_colour(crop, lm)
    relaxed = lm + _moves(NEUTRALISE, lm, frame)
    anchors = anchor_points(lm, frame, crop.shape[:2])
    rgb = warp_to(crop, lm, relaxed, crop.shape[:2], fixed=anchors)
    line = np.zeros(crop.shape[:2], np.float32)       # where the lips meet
    meet = np.concatenate([relaxed[60:61], (relaxed[61:64] + relaxed[67:64:-1]) / 2, relaxed[64:65]])
    cv2.polylines(line, [np.round(meet * 16).astype(np.int32)], False, 1.0, 1, cv2.LINE_AA, shift=4)
    line = cv2.GaussianBlur(line, (0, 0), 0.02 * frame.iod)[..., None]
    line /= max(float(line.max()), 1e-6)
    rgb = rgb * (1 - 0.6 * line) + 0.6 * line * np.array([95.0, 45.0, 45.0], np.float32)

    frame = face_frame(relaxed)
    alpha, skin, neck = _head_masks(rgb, relaxed, frame)
    yy, xx = np.mgrid[0:rgb.shape[0], 0:rgb.shape[1]]
    depth = np.clip(((np.stack([xx, yy], -1) - relaxed[8]) @ frame.ey) / (0.5 * frame.iod), 0, 1)
    neck_rgb = _skin_colour(rgb, relaxed, frame) * (0.62 + 0.2 * depth)[..., None]   # shadow under the chin
    rgb = rgb * (1 - neck[..., None]) + neck[..., None] * neck_rgb
    return Template(rgb.astype(np.float32), alpha, skin, relaxed)


# ---------------------------------------------------------------- subjects
def _shape_targets(lm: np.ndarray, frame: FaceFrame, look: dict) -> np.ndarray:
    """Template landmarks moved to this subject's face shape (face frame arithmetic)."""
    f = frame.to_face(lm)
    jaw = slice(0, 17)
    f[jaw, 0] *= look["face_width"]
    lower = f[:, 1] > 0
    f[lower, 1] *= look["face_height"]
    chin_weight = np.clip(f[jaw, 1] / max(f[8, 1], 1e-6), 0, 1)    # 0 at the temples, 1 at the chin
    f[jaw, 0] *= 1 + (look["jaw_width"] - 1) * chin_weight
    shift = (look["eye_spacing"] - 1) / 2
    f[36:42, 0] -= shift
    f[42:48, 0] += shift
    f[17:22, 0] -= 0.7 * shift
    f[22:27, 0] += 0.7 * shift
    for part, key in ((slice(29, 36), "nose"), (slice(48, 68), "mouth")):
        c = f[part].mean(0)
        f[part] = c + (f[part] - c) * look[key]
    return frame.to_image(f)


def _draw_look(rng: np.random.Generator) -> dict:
    u = lambda lo, hi: float(rng.uniform(lo, hi))
    skin_level = u(0.55, 1.0)
    hair_level = u(0.25, 1.35)
    return {
        "face_width": u(0.9, 1.1), "face_height": u(0.92, 1.08), "jaw_width": u(0.88, 1.1),
        "eye_spacing": u(0.92, 1.08), "nose": u(0.85, 1.2), "mouth": u(0.85, 1.2),
        "skin": [skin_level * (1 + u(-0.04, 0.1)), skin_level, skin_level * (1 + u(-0.12, 0.05))],
        "hair": [hair_level * (1 + u(-0.1, 0.25)), hair_level, hair_level * (1 + u(-0.3, 0.05))],
        "light_angle": u(0, 2 * np.pi), "light_strength": u(0.08, 0.25), "brightness": u(0.92, 1.08),
        "iod_fraction": u(*IOD_FRACTION), "roll": u(-ROLL_DEG, ROLL_DEG),
        "shift_x": u(-SHIFT, SHIFT), "eye_height": u(*EYE_HEIGHT),
        "background": str(rng.choice(["flat", "gradient", "texture"])),
    }


def _colour(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(20, 170), rng.uniform(50, 235)]]], np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def make_background(kind: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A float32 (H, W, 3) background: one colour, a gradient between two, or a soft texture."""
    w, h = size
    a, b = _colour(rng), _colour(rng)
    if kind == "flat":
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r = np.hypot((xx - w / 2) / w, (yy - h / 2) / h)
        return a * (1.0 - 0.25 * r)[..., None]          # with a slight vignette
    if kind == "gradient":
        theta = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = ((xx - w / 2) * np.cos(theta) + (yy - h / 2) * np.sin(theta)) / max(w, h) + 0.5
        t = np.clip(t, 0, 1)[..., None]
        return a * (1 - t) + b * t
    if kind == "texture":
        cells = rng.random((int(rng.integers(4, 12)), int(rng.integers(4, 12)))).astype(np.float32)
        t = cv2.resize(cells, (w, h), interpolation=cv2.INTER_CUBIC)
        t += 0.12 * rng.standard_normal((h, w)).astype(np.float32)
        t = np.clip(cv2.GaussianBlur(t, (0, 0), 1.0), 0, 1)[..., None]
        return a * (1 - t) + b * t
    raise ValueError(f"unknown background kind {kind!r}")


def make_subject(subject_id: str, rng: np.random.Generator, frame_size: tuple[int, int]) -> SyntheticSubject:
    """A subject of its own face shape, colouring, lighting, placement and background.

    `frame_size` is (width, height) of the frames it will be rendered into.
    """
    tpl = template()
    look = _draw_look(rng)
    w, h = frame_size
    frame = face_frame(tpl.landmarks)
    targets = _shape_targets(tpl.landmarks, frame, look)
    # the canvas is drawn at the frame's scale, so rendering never resamples the face twice
    iod_px = look["iod_fraction"] * min(w, h)
    scale = iod_px / face_frame(targets).iod
    shape = (round(tpl.rgb.shape[0] * scale), round(tpl.rgb.shape[1] * scale))
    border = border_points(tpl.rgb.shape[:2])
    stack = np.dstack([tpl.rgb, tpl.alpha, tpl.skin])
    warped = warp_to(stack, tpl.landmarks, targets, shape, scale, fixed=border)
    rgb, alpha, skin = warped[..., :3], np.clip(warped[..., 3], 0, 1), np.clip(warped[..., 4], 0, 1)
    landmarks = targets * scale
    cframe = face_frame(landmarks)

    hair = np.clip(alpha - skin, 0, 1)[..., None]
    skin3 = skin[..., None]
    tone = skin3 * np.array(look["skin"], np.float32) + hair * np.array(look["hair"], np.float32) + (1 - skin3 - hair)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    direction = np.array([np.cos(look["light_angle"]), np.sin(look["light_angle"])])
    side = ((xx - cframe.origin[0]) * direction[0] + (yy - cframe.origin[1]) * direction[1]) / (1.6 * cframe.iod)
    light = look["brightness"] * np.clip(1 + look["light_strength"] * side, 0.45, 1.6)
    rgb = np.clip(rgb * tone * light[..., None], 0, 255)
    canvas = np.dstack([rgb * alpha[..., None], alpha]).astype(np.float32)

    rig = build_rig(landmarks, shape, skin, rng)
    background = make_background(look["background"], frame_size, rng).astype(np.float32)
    centre = (w * (0.5 + look["shift_x"]), h * look["eye_height"])
    return SyntheticSubject(subject_id, (int(w), int(h)), canvas, landmarks, rig, background, centre,
                            look["roll"], look)


def head_motion(n_frames: int, rng: np.random.Generator, *, amplitude: float = 1.0) -> list[HeadPose]:
    """Smooth, mild head motion for a session: drifts of a few percent of IOD, a degree or two."""
    from scipy.ndimage import gaussian_filter1d

    if n_frames == 0:
        return []
    noise = rng.standard_normal((n_frames + 40, 4))
    smooth = gaussian_filter1d(noise, 6.0, axis=0, mode="wrap")[20:20 + n_frames]
    smooth /= np.sqrt(1 / (2 * np.sqrt(np.pi) * 6.0))      # unit variance for a Gaussian kernel
    sd = amplitude * np.array([0.05, 0.04, 1.5, 0.015])
    return [HeadPose(*map(float, row)) for row in smooth * sd]
