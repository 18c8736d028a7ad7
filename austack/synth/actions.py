"""Action units as visible, local deformations of a synthetic face, and the frame renderer.

Each AU is a table of landmark displacements at full intensity, in the face's own frame (x
along the eye line, y down, unit = inter-ocular distance, "lateral" = away from the midline),
plus shading cues where FACS describes them (wrinkles, furrows, folds, dimples). Per subject
the displacements become one smooth backward displacement field per AU (thin-plate RBF through
the moved points, every other landmark and a ring of anchors held still), sampled on a coarse
grid. A frame is then a weighted sum of those fields, one `cv2.remap` from the subject's face
canvas into the frame, and an alpha blend over the subject's background; its 68 landmarks are
found by inverting the same field, so they move with the pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.interpolate import RBFInterpolator

from .layouts.base import ALL_AUS

# Side of the face of each 68-point iBUG landmark: -1 image-left, +1 image-right, 0 midline.
SIDE = np.zeros(68, np.int8)
SIDE[[*range(0, 8), *range(17, 22), 31, 32, *range(36, 42), 48, 49, 50, 58, 59, 60, 61, 67]] = -1
SIDE[[*range(9, 17), *range(22, 27), 34, 35, *range(42, 48), 52, 53, 54, 55, 56, 63, 64, 65]] = 1

# Points that are not landmarks but carry skin motion (cheeks, forehead, chin): name -> (side,
# landmarks averaged, offset (lateral, down) in IOD from that average).
VIRTUAL: dict[str, tuple[int, tuple[int, ...], tuple[float, float]]] = {
    "cheek_l": (-1, (36, 48), (0.0, 0.0)), "cheek_r": (1, (45, 54), (0.0, 0.0)),
    "under_eye_l": (-1, (40, 41), (0.0, 0.2)), "under_eye_r": (1, (46, 47), (0.0, 0.2)),
    "beside_mouth_l": (-1, (48,), (0.22, 0.02)), "beside_mouth_r": (1, (54,), (0.22, 0.02)),
    "forehead_in_l": (-1, (21,), (0.0, -0.3)), "forehead_in_r": (1, (22,), (0.0, -0.3)),
    "forehead_out_l": (-1, (18,), (0.0, -0.3)), "forehead_out_r": (1, (25,), (0.0, -0.3)),
    "forehead_mid": (0, (21, 22), (0.0, -0.35)),
    "chin_boss": (0, (57, 8), (0.0, 0.0)),
}
VIRTUAL_NAMES = tuple(VIRTUAL)

# Full-intensity (5) displacements: (points, lateral, down) in IOD; points are landmark indices
# or VIRTUAL names (a name without _l/_r means both sides). Unlisted points stay still.
MOTION: dict[int, list[tuple[tuple, float, float]]] = {
    1: [((21, 22), 0.0, -0.16), ((20, 23), 0.0, -0.11), ((19, 24), 0.0, -0.05),
        (("forehead_in", "forehead_mid"), 0.0, -0.08)],
    2: [((17, 26), 0.0, -0.16), ((18, 25), 0.0, -0.14), ((19, 24), 0.0, -0.09), ((20, 23), 0.0, -0.03),
        (("forehead_out",), 0.0, -0.08), ((37, 44), 0.0, -0.015)],
    4: [((21, 22), -0.07, 0.12), ((20, 23), -0.05, 0.09), ((19, 24), -0.02, 0.05), ((18, 25), 0.0, 0.02),
        ((37, 38, 43, 44), 0.0, 0.025), (("forehead_in",), -0.03, 0.05)],
    5: [((37, 38, 43, 44), 0.0, -0.07), ((19, 20, 23, 24), 0.0, -0.02)],
    6: [((40, 41, 46, 47), 0.0, -0.05), ((36, 45), 0.0, -0.02), (("cheek",), 0.0, -0.08),
        (("under_eye",), 0.0, -0.06), ((48, 54), 0.01, -0.015)],
    7: [((40, 41, 46, 47), 0.0, -0.08), ((37, 38, 43, 44), 0.0, 0.02), (("under_eye",), 0.0, -0.045)],
    9: [((31, 35), 0.02, -0.06), ((32, 34), 0.01, -0.055), ((33,), 0.0, -0.045), ((29, 30), 0.0, -0.025),
        ((21, 22), -0.02, 0.05), ((20, 23), 0.0, 0.03), ((50, 51, 52), 0.0, -0.03), (("cheek",), 0.0, -0.03)],
    10: [((50, 51, 52), 0.0, -0.10), ((49, 53), 0.0, -0.08), ((61, 62, 63), 0.0, -0.09),
         ((48, 54, 60, 64), 0.0, -0.03), ((31, 35), 0.01, -0.02)],
    12: [((48, 54), 0.12, -0.10), ((60, 64), 0.11, -0.09), ((49, 53, 59, 55), 0.05, -0.05),
         ((61, 63, 67, 65), 0.04, -0.035), ((50, 52, 58, 56), 0.02, -0.02), (("beside_mouth",), 0.1, -0.08),
         (("cheek",), 0.02, -0.04)],
    14: [((48, 54), -0.06, -0.03), ((60, 64), -0.05, -0.025), ((49, 53, 59, 55), -0.02, -0.01),
         (("beside_mouth",), -0.05, -0.02)],
    15: [((48, 54), 0.02, 0.12), ((60, 64), 0.02, 0.11), ((49, 53, 59, 55), 0.0, 0.04),
         ((61, 63, 67, 65), 0.0, 0.035), (("beside_mouth",), 0.02, 0.06)],
    17: [(("chin_boss",), 0.0, -0.16), ((56, 57, 58), 0.0, -0.09), ((55, 59), 0.0, -0.06),
         ((65, 66, 67), 0.0, -0.05), ((61, 62, 63), 0.0, -0.03), ((48, 54), 0.0, 0.03), ((60, 64), 0.0, 0.015),
         ((7, 8, 9), 0.0, -0.07), ((6, 10), 0.0, -0.03), ((49, 50, 51, 52, 53), 0.0, -0.025)],
    20: [((48, 54), 0.12, 0.025), ((60, 64), 0.11, 0.02), ((49, 53, 59, 55), 0.05, 0.01),
         ((61, 63, 67, 65), 0.04, 0.0), ((51, 62), 0.0, 0.01), ((57, 66), 0.0, -0.01),
         (("beside_mouth",), 0.08, 0.02)],
    # AU23 narrows the mouth (corners drawn in) and thins the red of both lips; AU24 keeps the
    # width and presses the lips together from above and below, pushing up the chin a little.
    23: [((48, 54), -0.09, 0.0), ((60, 64), -0.08, 0.0), ((49, 53), -0.05, 0.04), ((59, 55), -0.05, -0.04),
         ((50, 52), -0.02, 0.05), ((51,), 0.0, 0.05), ((58, 56), -0.02, -0.05), ((57,), 0.0, -0.05),
         ((61, 63, 67, 65), -0.04, 0.0), (("beside_mouth",), -0.04, 0.0)],
    # (the lips taper to nothing at the corners: points near them move less, or the lips fold over)
    24: [((50, 51, 52), 0.0, 0.065), ((49, 53), 0.0, 0.03), ((56, 57, 58), 0.0, -0.075), ((55, 59), 0.0, -0.035),
         ((48, 54), 0.015, 0.0), (("chin_boss",), 0.0, -0.04)],
    25: [((65, 66, 67), 0.0, 0.10), ((55, 56, 57, 58, 59), 0.0, 0.08), ((61, 62, 63), 0.0, -0.02),
         ((7, 8, 9), 0.0, 0.02), (("chin_boss",), 0.0, 0.04)],
    26: [((65, 66, 67), 0.0, 0.22), ((55, 56, 57, 58, 59), 0.0, 0.21), ((60, 64), 0.0, 0.03),
         ((6, 7, 8, 9, 10), 0.0, 0.22), ((5, 11), 0.0, 0.16), ((4, 12), 0.0, 0.1), ((3, 13), 0.0, 0.05),
         (("chin_boss",), 0.0, 0.22), ((61, 62, 63), 0.0, -0.01)],
}

# Fraction of the full displacement shown at intensity 0..5: FACS A (trace) is already a
# visible change (under half the full one would vanish at 72 px), then steps up evenly to E.
# AUs that part the lips: their fields are fitted per intensity (a scaled field would fold
# the lips over); every other AU's field is fitted at full intensity and scaled.
PARTING_AUS = (10, 25, 26)
INTENSITY_GAIN = np.array([0.0, *np.linspace(0.45, 1.0, 5)], np.float32)
FIELD_STEP_IOD = 1 / 16       # grid of the displacement fields, in IOD
CAVITY_RGB = np.array([70.0, 28.0, 32.0], np.float32)
TEETH_RGB = np.array([205.0, 198.0, 182.0], np.float32)


@dataclass(frozen=True)
class FaceFrame:
    """A face-aligned frame: origin between the eyes, unit x along the eye line, unit = IOD."""

    origin: np.ndarray   # (2,)
    ex: np.ndarray       # (2,) unit vector towards image-right eye
    ey: np.ndarray       # (2,) unit vector down the face
    iod: float

    def to_image(self, xy) -> np.ndarray:
        """Face-frame points (..., 2) in IOD -> image pixels."""
        xy = np.asarray(xy, np.float64)
        return self.origin + self.iod * (xy[..., :1] * self.ex + xy[..., 1:] * self.ey)

    def vector(self, dxy) -> np.ndarray:
        dxy = np.asarray(dxy, np.float64)
        return self.iod * (dxy[..., :1] * self.ex + dxy[..., 1:] * self.ey)

    def to_face(self, pts) -> np.ndarray:
        d = (np.asarray(pts, np.float64) - self.origin) / self.iod
        return np.stack([d @ self.ex, d @ self.ey], -1)


def face_frame(landmarks: np.ndarray) -> FaceFrame:
    left, right = landmarks[36:42].mean(0), landmarks[42:48].mean(0)
    d = (right - left).astype(np.float64)
    iod = float(np.hypot(*d))
    ex = d / iod
    return FaceFrame((left + right) / 2.0, ex, np.array([-ex[1], ex[0]]), iod)


def virtual_points(landmarks: np.ndarray, frame: FaceFrame) -> np.ndarray:
    out = []
    for side, refs, (lat, down) in VIRTUAL.values():
        out.append(landmarks[list(refs)].mean(0) + frame.vector([lat * side, down]))
    return np.array(out)


def anchor_points(landmarks: np.ndarray, frame: FaceFrame, shape: tuple[int, int]) -> np.ndarray:
    """Points held still by every AU: a ring around the face and the canvas border."""
    return np.concatenate([ring_points(landmarks, frame), border_points(shape)])


def ring_points(landmarks: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """A ring around the face (jaw pushed outwards, above the brows) that AUs never move."""
    face = frame.to_face(landmarks)
    centre = face[[27, 30, 33]].mean(0)
    ring = []
    for p in face[:17]:                      # jaw pushed outwards; more room under the chin
        v = p - centre
        ring.append(p + v / np.hypot(*v) * (0.8 if p[1] > 1.0 else 0.5))
    ring += [p + (0, -0.75) for p in face[17:27]]
    return frame.to_image(np.array(ring))


def border_points(shape: tuple[int, int], n: int = 8) -> np.ndarray:
    """`n` points along each side of an image of `shape` (H, W)."""
    h, w = shape
    xs, ys = np.linspace(0, w - 1, n), np.linspace(0, h - 1, n)
    border = [(x, 0) for x in xs] + [(x, h - 1) for x in xs] + [(0, y) for y in ys[1:-1]] + [(w - 1, y) for y in ys[1:-1]]
    return np.array(border, np.float64)


def _point_ids(points: tuple) -> list[int]:
    ids = []
    for p in points:
        if isinstance(p, str):
            names = [p] if p in VIRTUAL else [f"{p}_l", f"{p}_r"]
            ids += [68 + VIRTUAL_NAMES.index(n) for n in names]
        else:
            ids.append(p)
    return ids


def displacements(au: int, landmarks: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """Full-intensity forward displacement (pixels) of the 68 landmarks and the virtual points."""
    sides = np.concatenate([SIDE, [v[0] for v in VIRTUAL.values()]])
    d = np.zeros((68 + len(VIRTUAL), 2))
    for points, lateral, down in MOTION[au]:
        for i in _point_ids(points):
            d[i] = frame.vector([lateral * sides[i], down])
    return d


def field_grid(shape: tuple[int, int], step: float) -> tuple[int, int]:
    """(Hg, Wg): grid cells covering an image of `shape` every `step` pixels."""
    return int(np.ceil((shape[0] - 1) / step)) + 1, int(np.ceil((shape[1] - 1) / step)) + 1


def smooth_field(centres: np.ndarray, values: np.ndarray, shape: tuple[int, int], step: float,
                 scale: float = 1.0, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Thin-plate RBF through `values` at `centres`, sampled every `step` output pixels.

    Output pixel (x, y) corresponds to source coordinates (x, y) / scale; returns (Hg, Wg, C)
    float32 where grid cell (i, j) is output pixel (j * step, i * step). With `box` (grid rows
    y0:y1, columns x0:x1) only those cells are evaluated; the rest are zero.
    """
    hg, wg = field_grid(shape, step)
    y0, y1, x0, x1 = box or (0, hg, 0, wg)
    # a box padded for interpolation may reach past the grid's last cell: keep it inside
    y0, y1, x0, x1 = max(y0, 0), min(y1, hg), max(x0, 0), min(x1, wg)
    gy, gx = np.arange(y0, y1) * step, np.arange(x0, x1) * step
    grid = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2) / scale
    rbf = RBFInterpolator(centres, values, kernel="thin_plate_spline", degree=1)
    out = np.zeros((hg, wg, values.shape[1]), np.float32)
    out[y0:y1, x0:x1] = rbf(grid).reshape(len(gy), len(gx), -1)
    return out


def upsample_field(coarse: np.ndarray, step: float, shape: tuple[int, int]) -> np.ndarray:
    """Coarse grid from `smooth_field` -> (H, W, C) at every output pixel (bilinear)."""
    m = np.array([[1 / step, 0, 0], [0, 1 / step, 0]], np.float64)
    return cv2.warpAffine(coarse, m, (shape[1], shape[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE).reshape(shape[0], shape[1], -1)


def sample_field(coarse: np.ndarray, step: float, pts: np.ndarray) -> np.ndarray:
    """Bilinear value of a coarse field at image points (N, 2)."""
    g = np.asarray(pts, np.float64) / step
    hg, wg = coarse.shape[:2]
    x0 = np.minimum(np.maximum(g[:, 0].astype(int), 0), wg - 2)
    y0 = np.minimum(np.maximum(g[:, 1].astype(int), 0), hg - 2)
    fx = np.minimum(np.maximum(g[:, 0] - x0, 0), 1)[:, None]
    fy = np.minimum(np.maximum(g[:, 1] - y0, 0), 1)[:, None]
    top = coarse[y0, x0] * (1 - fx) + coarse[y0, x0 + 1] * fx
    bottom = coarse[y0 + 1, x0] * (1 - fx) + coarse[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


# ---------------------------------------------------------------- shading cues
def _curve(a, b, bulge=(0.0, 0.0), n=12) -> np.ndarray:
    """Quadratic curve from a to b (face frame) bowed by `bulge` at its middle."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    c = (a + b) / 2 + np.asarray(bulge, float) * 2
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * a + 2 * t * (1 - t) * c + t ** 2 * b


class _Painter:
    """Draws blurred lines and spots in face-frame coordinates onto a canvas-sized map."""

    def __init__(self, frame: FaceFrame, shape: tuple[int, int], face: np.ndarray):
        self.frame, self.shape, self.f = frame, shape, face

    def lines(self, curves, width: float) -> np.ndarray:
        m = np.zeros(self.shape, np.float32)
        pts = [np.round(self.frame.to_image(c) * 16).astype(np.int32) for c in curves]
        cv2.polylines(m, pts, False, 1.0, thickness=max(1, round(width * self.frame.iod / 2)),
                      lineType=cv2.LINE_AA, shift=4)
        return self._soften(m, 0.015)

    def spots(self, centres, radius: float) -> np.ndarray:
        m = np.zeros(self.shape, np.float32)
        for c in centres:
            x, y = self.frame.to_image(np.asarray(c, float))
            cv2.circle(m, (round(x * 16), round(y * 16)), max(1, round(radius * self.frame.iod * 16)), 1.0,
                       -1, cv2.LINE_AA, shift=4)
        return self._soften(m, radius * 0.6)

    def _soften(self, m: np.ndarray, sigma_iod: float) -> np.ndarray:
        m = cv2.GaussianBlur(m, (0, 0), max(0.6, sigma_iod * self.frame.iod))
        peak = m.max()
        return m / peak if peak > 0 else m

    def nasolabial(self) -> list[np.ndarray]:
        f = self.f
        out = []
        for wing, corner, s in ((31, 48, -1), (35, 54, 1)):
            a = f[wing] + (0.08 * s, -0.03)
            b = f[corner] + (0.1 * s, 0.08)
            out.append(_curve(a, b, (0.04 * s, 0.0)))
        return out


def shading_maps(landmarks: np.ndarray, frame: FaceFrame, shape: tuple[int, int],
                 skin: np.ndarray, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """AU -> multiplicative shading offset at full intensity (negative darkens), canvas-sized."""
    f = frame.to_face(landmarks)
    p = _Painter(frame, shape, f)
    brow_y = f[17:27, 1].mean()

    def forehead(xs, sag):
        return [np.stack([xs, brow_y - h + sag * xs ** 2], 1) for h in (0.13, 0.22, 0.31)]

    x_in, x_out = np.linspace(-0.45, 0.45, 10), np.linspace(0.4, 1.05, 8)
    lateral = forehead(x_out, 0.12) + forehead(-x_out, 0.12)
    crow = [np.array([f[c] + (0.06 * s, 0), f[c] + (0.24 * s, dy)]) for c, s in ((36, -1), (45, 1))
            for dy in (-0.1, 0.0, 0.1)]
    lower_lid = [f[[36, 41, 40, 39]] + (0, 0.07), f[[42, 47, 46, 45]] + (0, 0.07)]
    nasolabial = p.nasolabial()
    chin = (f[57] + f[8]) / 2
    dots = chin + rng.uniform(-1, 1, (14, 2)) * (0.16, 0.08)
    inner_lip = [f[60:65]]
    outer_lip = [np.concatenate([f[48:60], f[48:49]])]
    below_lip = (f[57] + chin) / 2
    # AU23's tense lips: short vertical lines across the red margins of both lips
    tension = [np.array([f[i] + (0, -0.07), f[i] + (0, 0.0)]) for i in (50, 51, 52)] + \
              [np.array([f[i] + (0, 0.0), f[i] + (0, 0.07)]) for i in (56, 57, 58)]
    # line widths and depths are set so that each cue still spans a pixel or two, at clear
    # contrast, in a 72 px aligned face (an IOD of about 33 px there)
    m = {
        1: -0.40 * p.lines(forehead(x_in, -0.25), 0.03),
        2: -0.40 * p.lines(lateral, 0.03),
        4: -0.55 * p.lines([[f[21] + (0.07, -0.1), f[21] + (0.1, 0.12)], [f[22] + (-0.07, -0.1), f[22] + (-0.1, 0.12)]],
                           0.035) - 0.2 * p.spots([(f[21] + f[22]) / 2 + (0, 0.04)], 0.22),
        5: 0.18 * p.lines([f[[36, 37, 38, 39]] + (0, 0.035), f[[42, 43, 44, 45]] + (0, 0.035)], 0.02),
        6: -0.45 * p.lines(crow, 0.03) - 0.30 * p.lines(lower_lid, 0.03) - 0.15 * p.lines(nasolabial, 0.03)
           + 0.12 * p.spots([f[36] / 2 + f[48] / 2, f[45] / 2 + f[54] / 2], 0.25),
        7: -0.45 * p.lines([f[[36, 41, 40, 39]] + (0, 0.04), f[[42, 47, 46, 45]] + (0, 0.04)], 0.035),
        9: -0.35 * p.lines([np.array([[-0.14, y], [0.14, y]]) + (f[27, 0], 0) for y in (f[28, 1] - 0.06, f[28, 1], f[28, 1] + 0.07)], 0.02)
           - 0.25 * p.lines([c[:7] for c in nasolabial], 0.03),
        10: -0.40 * p.lines([c[:9] for c in nasolabial], 0.035),
        12: -0.38 * p.lines(nasolabial, 0.03) + 0.10 * p.spots([f[36] / 2 + f[48] / 2, f[45] / 2 + f[54] / 2], 0.22),
        14: -0.50 * p.spots([f[48] + (-0.11, -0.02), f[54] + (0.11, -0.02)], 0.07)
            - 0.30 * p.lines([[f[48] + (-0.07, -0.1), f[48] + (-0.09, 0.08)], [f[54] + (0.07, -0.1), f[54] + (0.09, 0.08)]], 0.035),
        15: -0.55 * p.lines([[f[48] + (-0.02, 0.03), f[48] + (-0.08, 0.3)], [f[54] + (0.02, 0.03), f[54] + (0.08, 0.3)]], 0.035),
        17: 0.20 * p.spots([chin], 0.2) - 0.30 * p.spots(dots, 0.035)
            - 0.55 * p.lines([_curve(f[57] + (-0.22, 0.1), f[57] + (0.22, 0.1), (0, 0.04))], 0.04),
        20: -0.18 * p.lines([[f[48] + (-0.06, 0.0), f[48] + (-0.3, 0.04)], [f[54] + (0.06, 0.0), f[54] + (0.3, 0.04)]], 0.02),
        23: -0.40 * p.lines(outer_lip, 0.03) - 0.30 * p.lines(inner_lip, 0.03)
            - 0.35 * p.lines(tension, 0.025),
        24: -0.60 * p.lines(inner_lip, 0.035)
            + 0.25 * p.spots([(f[33] + f[51]) / 2, below_lip], 0.13)
            - 0.30 * p.lines([_curve(below_lip + (-0.18, 0.1), below_lip + (0.18, 0.1), (0, 0.03))], 0.035),
    }
    return {au: (v * skin).astype(np.float32) for au, v in m.items()}


# ---------------------------------------------------------------- the rig
@dataclass
class Patch:
    """A shading map kept only where it is not zero."""

    y0: int
    x0: int
    values: np.ndarray  # float32 (h, w)

    @classmethod
    def of(cls, full: np.ndarray, eps: float = 2e-3) -> "Patch | None":
        ys, xs = np.nonzero(np.abs(full) > eps)
        if ys.size == 0:
            return None
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        return cls(int(y0), int(x0), np.ascontiguousarray(full[y0:y1, x0:x1]))


@dataclass
class FieldPatch:
    """One AU's backward displacement fields at intensities 1..5, kept where they are not zero."""

    y0: int
    x0: int
    levels: np.ndarray   # float32 (5, h, w, 2), in grid cells of the rig's `step`


@dataclass
class Rig:
    """Everything a frame needs per AU, built once per subject (index = position in ALL_AUS)."""

    step: float                  # canvas pixels per field grid cell
    grid: tuple[int, int]        # (Hg, Wg) of the whole canvas
    fields: list[FieldPatch]     # per AU
    moves: np.ndarray            # float64 (n_aus, 68, 2): landmark displacement at full intensity
    shading: list[Patch | None]  # per AU, canvas coordinates

    def field(self, intensities: np.ndarray) -> np.ndarray | None:
        """Backward displacement (Hg, Wg, 2) of a frame: the sum over its AUs."""
        active = np.flatnonzero(intensities)
        if active.size == 0:
            return None
        total = np.zeros((*self.grid, 2), np.float32)
        for k in active:
            p = self.fields[k]
            lv = p.levels[intensities[k] - 1]
            total[p.y0:p.y0 + lv.shape[0], p.x0:p.x0 + lv.shape[1]] += lv
        return total


def _field_window(ring: np.ndarray, grid: tuple[int, int], step: float, iod: float
                  ) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """Where AU fields are evaluated (grid box around the ring of still points), and a window
    that is 1 inside the ring's box and falls smoothly to 0 at the edge of that grid box."""
    margin = max(2, round(0.4 * iod / step))
    lo, hi = np.floor(ring.min(0) / step).astype(int), np.ceil(ring.max(0) / step).astype(int)
    axes = []
    for a, n in ((1, grid[0]), (0, grid[1])):            # rows (y), then columns (x)
        i = np.arange(n)
        outside = np.maximum(lo[a] - i, i - hi[a]).clip(0, margin) / margin
        axes.append(0.5 + 0.5 * np.cos(np.pi * outside))
    window = (axes[0][:, None] * axes[1][None, :]).astype(np.float32)[None, :, :, None]
    y0, y1 = max(lo[1] - margin, 0), min(hi[1] + margin + 1, grid[0])
    x0, x1 = max(lo[0] - margin, 0), min(hi[0] + margin + 1, grid[1])
    return (y0, y1, x0, x1), window


def build_rig(landmarks: np.ndarray, shape: tuple[int, int], skin: np.ndarray,
              rng: np.random.Generator) -> Rig:
    """Per-AU displacement fields and shading for a face canvas with neutral `landmarks`.

    Each field is fitted where the points end up (a backward map, output -> source): parting
    lips then stretch only the gap between them, which the mouth painter covers.
    """
    frame = face_frame(landmarks)
    controls = np.concatenate([landmarks, virtual_points(landmarks, frame)])
    anchors = anchor_points(landmarks, frame, shape)
    step = max(1.5, FIELD_STEP_IOD * frame.iod)
    grid = field_grid(shape, step)
    box, window = _field_window(ring_points(landmarks, frame), grid, step, frame.iod)
    fields, moves = [], []
    for au in ALL_AUS:
        d = displacements(au, landmarks, frame)
        moves.append(d[:68])
        def fit(g: float, coarse: int = 1, lower: bool = False) -> np.ndarray:
            top = max(box[0], int(frame.origin[1] / step)) if lower else box[0]
            c_box = (top // coarse, -(-box[1] // coarse) + 1, box[2] // coarse, -(-box[3] // coarse) + 1)
            f = smooth_field(np.concatenate([controls + g * d, anchors]),
                             np.concatenate([-g * d, np.zeros_like(anchors)]), shape, step * coarse, box=c_box)
            return f if coarse == 1 else upsample_field(f, coarse, grid)

        if au in PARTING_AUS:      # they move the lower face only: fit below the eye line
            levels = np.stack([fit(g, lower=True) for g in INTENSITY_GAIN[1:]])
        else:      # small smooth motions: fitted on a grid twice as coarse, at full intensity, scaled
            levels = fit(1.0, coarse=2)[None] * INTENSITY_GAIN[1:, None, None, None]
        levels *= window
        ys, xs = np.nonzero(np.abs(levels).max(axis=(0, 3)) > 0.01)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        fields.append(FieldPatch(int(y0), int(x0), np.ascontiguousarray(levels[:, y0:y1, x0:x1])))
    maps = shading_maps(landmarks, frame, shape, skin, rng)
    return Rig(step, grid, fields, np.array(moves), [Patch.of(maps[au]) if au in maps else None for au in ALL_AUS])


# ---------------------------------------------------------------- rendering
def _moved_landmarks(neutral: np.ndarray, guess: np.ndarray, field: np.ndarray | None, step: float) -> np.ndarray:
    """Where the pixels at `neutral` land: solve y + B(y) = x, starting from the AU tables' guess."""
    if field is None:
        return neutral.astype(np.float64)
    best, best_err = guess.copy(), np.full(len(neutral), np.inf)
    y = guess
    for _ in range(8):
        residual = y + sample_field(field, step, y) - neutral
        err = np.hypot(residual[:, 0], residual[:, 1])
        better = err < best_err
        best[better], best_err[better] = y[better], err[better]
        if best_err.max() < 0.01:
            break
        y = y - residual
    return best


def _mouth(frame: np.ndarray, pts: np.ndarray, iod: float, closed_gap: float) -> None:
    """Paint the mouth opened beyond its rest gap (inner-lip polygon) dark, with upper teeth."""
    inner = pts[60:68]
    opening = float(np.linalg.norm(pts[66] - pts[62])) - closed_gap
    if opening < 0.25:
        return
    x0, y0 = np.floor(inner.min(0)).astype(int) - 2
    x1, y1 = np.ceil(inner.max(0)).astype(int) + 3
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return
    local = lambda p: np.round((p - (x0, y0)) * 16).astype(np.int32)
    cavity = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(cavity, [local(inner)], 255, cv2.LINE_AA, shift=4)
    upper = pts[60:65]
    drop = np.array([0.0, min(0.35 * opening, 0.06 * iod)])
    teeth = np.zeros_like(cavity)
    cv2.fillPoly(teeth, [local(np.concatenate([upper, upper[::-1] + drop]))], 255, cv2.LINE_AA, shift=4)
    a = cavity.astype(np.float32)[..., None] * (min(1.0, opening) / 255)
    t = np.minimum(teeth, cavity).astype(np.float32)[..., None] / 255
    region = frame[y0:y1, x0:x1]
    region *= 1 - a
    region += (a - t) * CAVITY_RGB + t * TEETH_RGB


def render_frame(subject, intensities, rng: np.random.Generator, pose=None) -> tuple[np.ndarray, np.ndarray]:
    """One frame of `subject` (a `face.SyntheticSubject`; `face` builds on this module, so it
    is not imported here) showing AU `intensities` (0..5, in ALL_AUS order).

    `pose` (a `face.HeadPose` or None) is the smooth head motion of this frame (see
    `face.head_motion`); a slight tremor is drawn from `rng` on top. Returns (RGB uint8
    HxWx3, 68 landmarks float32 (68, 2), 0-based).
    """
    rig = subject.rig
    levels = np.clip(np.asarray(intensities, int), 0, 5)
    gain = INTENSITY_GAIN[levels]
    active = np.flatnonzero(levels)
    field = rig.field(levels)

    fg = subject.canvas
    shaded = [k for k in active if rig.shading[k] is not None]
    if shaded:                                           # shading multiplies only where it acts
        fg = fg.copy()
        for k in shaded:
            p = rig.shading[k]
            fg[p.y0:p.y0 + p.values.shape[0], p.x0:p.x0 + p.values.shape[1], :3] *= (1 + gain[k] * p.values)[..., None]

    m = subject.placement(pose, rng)                     # canvas -> frame, 2x3
    inv = cv2.invertAffineTransform(m)
    a = inv.astype(np.float32)
    w, h = subject.frame_size
    mapx = a[0, 0] * subject.grid_x + a[0, 1] * subject.grid_y + a[0, 2]
    mapy = a[1, 0] * subject.grid_x + a[1, 1] * subject.grid_y + a[1, 2]
    if field is not None:                                # the field, in frame coordinates
        to_cell = inv / rig.step
        b = cv2.warpAffine(field, to_cell, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        mapx += b[..., 0]
        mapy += b[..., 1]
    out = cv2.remap(fg, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    bg = subject.background                              # the canvas is premultiplied by alpha
    image = bg - bg * out[..., 3:]
    image += out[..., :3]

    guess = subject.landmarks + np.tensordot(gain, rig.moves, axes=1)
    moved = _moved_landmarks(subject.landmarks, guess, field, rig.step)
    pts = moved @ m[:, :2].T + m[:, 2]
    _mouth(image, pts, subject.iod, subject.lip_gap)
    return cv2.convertScaleAbs(image), pts.astype(np.float32)    # rounds and saturates
