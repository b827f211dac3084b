"""Face landmarks: MediaPipe face mesh with iris (478 points), and face tracks across frames.

The only module that imports mediapipe.
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from . import topology
from .store import FrameStore
from .topology import N_LANDMARKS
from .types import FaceLandmarks, Track

# A detection joins a track when its centre moved less than this many face sizes.
MAX_TRACK_JUMP = 0.5
# A track that has not been seen for this many frames is closed.
MAX_TRACK_GAP = 15

# Iris refinement (``refine_iris``): each iris centre re-fitted to the limbus (the dark-iris /
# bright-sclera edge) inside the lid opening. Lengths in MediaPipe iris radii unless marked px.
# Off for now. On the rendered accuracy clips it tracks vertical gaze far better (pitch gain 0.25-0.4
# -> 0.6-0.85; per-eye median pitch errors of 3-7 deg fall to 1.5-4) and on real frames follows a warped
# iris more fully (vertical 0.60 -> 0.80, horizontal 0.94 -> 1.01, mean over 7 videos); but the yaw
# error of the clips grows (MediaPipe's eye corners sit ~1 mm off on the mask, and its iris bias used
# to cancel part of that; fit.eyeball_centres anchors on the corners), and on lp_d0_gaze the mask's
# horizontal iris slope against the original drops from 0.855 to 0.84 (test_pipeline wants 0.85).
REFINE_IRIS = False  # LandmarkTracker refines the iris of every face it returns
# When MediaPipe's points are kept (the fit is taken as unreliable):
IRIS_MIN_RADIUS_PX = 4.0  # iris radius below this: a tiny face, too few pixels
IRIS_MIN_OPENING = 0.5  # mid-lid gap below this many iris diameters: eye closed or nearly
IRIS_GLARE_LEVEL = 245.0  # grey level (0-255) taken as glare (glasses, lamps)
IRIS_MAX_GLARE = 0.25  # share of glare pixels in MediaPipe's iris disc (inside the opening) above this
IRIS_MIN_ARC = 0.3  # a circle with fewer of its edge samples inside the opening is not considered
IRIS_MIN_SIDE_ARC = 0.25  # the fitted circle shows fewer of either side's (left, right) samples
IRIS_MIN_CONTRAST = 8.0  # the mean grey step across either side of the fitted edge is below this
IRIS_MAX_SHIFT = 0.45  # the fit lands farther than this from MediaPipe's centre
# The fit:
IRIS_SEARCH = 0.5  # the centre is searched this far from MediaPipe's, in x and in y
IRIS_RADIUS_RANGE = (0.9, 1.1)  # circle radii tried; the landmarks keep MediaPipe's radius
IRIS_ARC_HALF_ANGLE_DEG = 60.0  # edge arcs used, around the left and the right of the circle
IRIS_N_ANGLES = 16  # edge samples per arc
IRIS_EDGE_STEP = 0.05  # half the radial step across the edge ... (narrow: a wide step has a flat top, and a
#                        sharp edge moving less than it would not move the fit)
IRIS_EDGE_STEP_MIN_PX = 0.6  # ... at least this
IRIS_BLUR_PX = 1.0  # Gaussian blur of the grey image (sigma) before the edge is sampled
IRIS_LID_MARGIN = 0.12  # edge samples stay this far inside the lid contour (lashes, lid shadow), >= 1 px
IRIS_Y_PRIOR = 1.0  # vertical offsets from MediaPipe's centre cost this x (dy / r)^2 of the best score:
#                     the side arcs fix x well but y only weakly (upper and lower limbus under the lids)
IRIS_N_RADII = 5  # radii tried in the first round (3 in each later one; the step halves each round)
IRIS_FINAL_STEP_PX = 0.6  # the coarse-to-fine search stops at this grid step (then a parabola)


@contextlib.contextmanager
def _native_stderr_silenced():
    """MediaPipe's C++ runtime logs start-up chatter straight to file descriptor 2; hide it while the
    graph is built and runs its first frame (Python-level errors are unaffected)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


class LandmarkTracker:
    """MediaPipe face mesh (legacy solution, refine_landmarks=True), built once per video.

    In video mode MediaPipe tracks faces from frame to frame and re-runs its detector when a face
    is lost; in image mode every call detects afresh.
    """

    def __init__(self, max_faces: int = 4, video: bool = True, min_confidence: float = 0.5):
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with _native_stderr_silenced():
            from mediapipe.python.solutions import face_mesh

            self._mesh = face_mesh.FaceMesh(
                static_image_mode=not video,
                max_num_faces=max_faces,
                refine_landmarks=True,
                min_detection_confidence=min_confidence,
                min_tracking_confidence=min_confidence,
            )
            # The graph starts its models in background threads, which log once they run: one blank
            # frame (no face, so no tracking state) makes that happen while the log is hidden.
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))
        self._warm_up = 3  # calls during which MediaPipe still logs start-up messages
        self._video = video
        self._tracked = 0  # faces tracked after the previous frame

    def __call__(self, image: np.ndarray) -> tuple[FaceLandmarks, ...]:
        """image (H, W, 3) uint8 RGB -> the faces found, points (478, 3) in pixels."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
        h, w = image.shape[:2]
        image = np.ascontiguousarray(image)
        result = self._process(image)
        if self._video and len(result.multi_face_landmarks or ()) > self._tracked:
            # A face was just detected: its landmarks came from the detector's rough box. Run the
            # frame again so they come from a box fitted to landmarks, as in every later frame
            # (1-3 px closer; otherwise the first frame of a face reads as a jump).
            result = self._process(image)
        self._tracked = len(result.multi_face_landmarks or ())
        faces = []
        for lms in result.multi_face_landmarks or ():
            pts = np.array([(p.x * w, p.y * h, p.z * w) for p in lms.landmark], dtype=np.float32)
            if pts.shape[0] == N_LANDMARKS and np.isfinite(pts).all():
                if REFINE_IRIS:
                    pts = refine_iris(image, pts)
                faces.append(FaceLandmarks(points=pts, confidence=1.0))
        return tuple(faces)

    def _process(self, image: np.ndarray):
        if not self._warm_up:
            return self._mesh.process(image)
        self._warm_up -= 1
        with _native_stderr_silenced():
            return self._mesh.process(image)

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def refine_iris(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Re-estimate each iris centre from the limbus edge in the image (a Daugman-style circular edge
    fit), moving the four ring points with it (MediaPipe's iris radius is kept, the mm scale comes
    from it).

    image : (H, W, 3) uint8 RGB; points : (478, 3) image pixels. Returns a new array; an eye whose
    fit is unreliable (see ``refine_eye``) keeps MediaPipe's points.
    """
    out = np.array(points, dtype=np.float32, copy=True)
    for eye in range(2):
        shift = refine_eye(image, points, eye)
        if shift is not None:
            iris = [topology.IRIS_CENTRE[eye], *topology.IRIS_RING[eye]]
            out[iris, :2] += shift.astype(np.float32)
    return out


def _arc_angles() -> np.ndarray:
    half = np.radians(IRIS_ARC_HALF_ANGLE_DEG)
    a = np.linspace(-half, half, IRIS_N_ANGLES)
    return np.concatenate([a, a + np.pi])


def _grid(half: int, n_radii: int) -> np.ndarray:
    """(n, 3) integer steps (x, y, radius) of a search grid: x and y in -half..half, n_radii radii."""
    r = np.arange(-half, half + 1)
    x, y, k = np.meshgrid(r, r, np.arange(n_radii) - n_radii // 2, indexing="ij")
    return np.stack([x.ravel(), y.ravel(), k.ravel()], axis=1).astype(np.float64)


_COARSE_HALF, _FINE_HALF, _FINE_RADII = 3, 2, 3
_GRID_COARSE, _GRID_FINE = _grid(_COARSE_HALF, IRIS_N_RADII), _grid(_FINE_HALF, _FINE_RADII)
_GRID_INDEX = [{tuple(g): i for i, g in enumerate(grid)} for grid in (_GRID_COARSE, _GRID_FINE)]
_NEIGHBOURS = (((-1, 0, 0), (1, 0, 0)), ((0, -1, 0), (0, 1, 0)))
_ANGLES = _arc_angles()
_UNIT = np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=1).astype(np.float32)  # (A, 2)


def refine_eye(image: np.ndarray, points: np.ndarray, eye: int) -> np.ndarray | None:
    """The image shift (dx, dy) px of one eye's iris centre that puts a circle on the limbus, or None
    where the fit is unreliable.

    A circle of radius within ``IRIS_RADIUS_RANGE`` of MediaPipe's is placed where the grey step across
    it (outside minus inside), summed over its left and right arcs, is largest less the vertical prior
    ``IRIS_Y_PRIOR``; only edge samples inside the lid opening (pulled in by ``IRIS_LID_MARGIN``) count,
    as the upper and lower limbus are mostly under the lids. Searched coarse to fine within
    ``IRIS_SEARCH`` of MediaPipe's centre. None (keep MediaPipe's points) when: the iris radius is below
    ``IRIS_MIN_RADIUS_PX``; the mid-lid gap is below ``IRIS_MIN_OPENING`` iris diameters; glare covers
    more than ``IRIS_MAX_GLARE`` of the iris disc; no circle shows ``IRIS_MIN_ARC`` of its samples;
    the fitted circle shows less than ``IRIS_MIN_SIDE_ARC`` of either side or a mean step below
    ``IRIS_MIN_CONTRAST`` there (a flat patch, an eye turned into its corner); or it lies more than
    ``IRIS_MAX_SHIFT`` radii from MediaPipe's centre.
    """
    p = np.asarray(points, dtype=np.float64)[:, :2]
    c0 = p[topology.IRIS_CENTRE[eye]]
    ring = p[list(topology.IRIS_RING[eye])]
    r0 = (np.linalg.norm(ring[0] - ring[2]) + np.linalg.norm(ring[1] - ring[3])) / 4
    if not np.isfinite(r0) or r0 < IRIS_MIN_RADIUS_PX:
        return None
    gap = np.linalg.norm(p[topology.MID_UPPER[eye]] - p[topology.MID_LOWER[eye]])
    if gap < IRIS_MIN_OPENING * 2 * r0:
        return None
    lids = p[list(topology.lid_ring(eye))]

    # Crop around the opening and the search region.
    h, w = image.shape[:2]
    step = max(IRIS_EDGE_STEP * r0, IRIS_EDGE_STEP_MIN_PX)
    reach = (IRIS_SEARCH + IRIS_RADIUS_RANGE[1]) * r0 + step + 2
    lo = np.floor(np.minimum(lids.min(axis=0), c0 - reach)).astype(int)
    hi = np.ceil(np.maximum(lids.max(axis=0), c0 + reach)).astype(int) + 1
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], w), min(hi[1], h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None

    grey = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey = cv2.GaussianBlur(grey, (0, 0), IRIS_BLUR_PX)
    # The opening (pixel centres at +0.5), pulled in from the lids by a margin.
    opening = np.zeros(grey.shape, np.uint8)
    poly = np.round((lids - (x0, y0) - 0.5) * 4).astype(np.int32)
    cv2.fillPoly(opening, [poly], 1, lineType=cv2.LINE_8, shift=2)
    margin = int(round(max(IRIS_LID_MARGIN * r0, 1.0)))
    opening = cv2.erode(opening, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2))

    # Glare over the iris (glasses, lamps) hides the limbus.
    yy, xx = np.ogrid[y0:y1, x0:x1]
    disc = ((xx + 0.5 - c0[0]) ** 2 + (yy + 0.5 - c0[1]) ** 2 < r0 ** 2) & (opening > 0)
    n_disc = np.count_nonzero(disc)
    if n_disc and np.count_nonzero(grey[disc] >= IRIS_GLARE_LEVEL) > IRIS_MAX_GLARE * n_disc:
        return None

    planes = cv2.merge([grey, opening.astype(np.float32)])  # sampled together
    origin = np.array([x0 + 0.5, y0 + 0.5])  # image coordinates of crop pixel (0, 0)'s centre
    min_seen = IRIS_MIN_ARC * len(_ANGLES)

    def edge(offsets: np.ndarray, radii: np.ndarray):
        """offsets (K, 2) from c0, radii (K,) -> grey step across the circle, outside minus inside,
        (K, A), and whether both of its samples lie in the opening (K, A)."""
        k = len(offsets)
        c = (c0 - origin + offsets).astype(np.float32)
        rr = np.concatenate([radii + step, radii - step]).astype(np.float32)[:, None]  # out then in
        mx = np.tile(c[:, :1], (2, 1)) + rr * _UNIT[:, 0]  # (2K, A)
        my = np.tile(c[:, 1:], (2, 1)) + rr * _UNIT[:, 1]
        v = cv2.remap(planes, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        seen = (v[:k, :, 1] > 0.5) & (v[k:, :, 1] > 0.5)
        return np.where(seen, v[:k, :, 0] - v[k:, :, 0], 0.0), seen

    def score(offsets: np.ndarray, radii: np.ndarray) -> np.ndarray:
        """The grey step summed over the visible edge samples over the number of samples (K,), -inf
        where too few are visible. Hidden samples count as no edge, so a circle is not rewarded for
        hiding its weak parts under the lids (a mean over the visible samples drifts into lash lines)."""
        steps, seen = edge(offsets, radii)
        n = np.count_nonzero(seen, axis=1)
        return np.where(n >= min_seen, steps.sum(axis=1) / len(_ANGLES), -np.inf)

    # Coarse to fine: a grid of centres and radii around the best so far, halving the step each
    # round; then a parabola through the last round's best and its neighbours places it to a
    # fraction of the step, along x and along y.
    rmin, rmax = IRIS_RADIUS_RANGE[0] * r0, IRIS_RADIUS_RANGE[1] * r0
    off, rad, scale = np.zeros(2), r0, None
    grid, grid_step = _GRID_COARSE, IRIS_SEARCH * r0 / _COARSE_HALF
    r_step = (rmax - rmin) / (IRIS_N_RADII - 1)
    while True:
        offsets = off + grid[:, :2] * grid_step
        s = score(offsets, np.clip(rad + grid[:, 2] * r_step, rmin, rmax))
        if scale is None:
            scale = max(float(np.max(s)), 0.0)
        s = s - IRIS_Y_PRIOR * scale * (offsets[:, 1] / r0) ** 2
        i = int(np.argmax(s))
        if not np.isfinite(s[i]):
            return None
        off, rad = offsets[i], float(np.clip(rad + grid[i, 2] * r_step, rmin, rmax))
        if grid_step <= IRIS_FINAL_STEP_PX:
            break
        grid, grid_step, r_step = _GRID_FINE, grid_step / 2, r_step / 2
    off = off.copy()
    for axis in range(2):
        nb = [_GRID_INDEX[grid is _GRID_FINE].get(tuple(np.add(grid[i], d))) for d in _NEIGHBOURS[axis]]
        if None not in nb:
            lo_, hi_ = s[nb[0]], s[nb[1]]
            den = lo_ - 2 * s[i] + hi_
            if np.isfinite(den) and den < 0:
                off[axis] += float(np.clip(0.5 * (lo_ - hi_) / den, -0.5, 0.5)) * grid_step

    if np.linalg.norm(off) > IRIS_MAX_SHIFT * r0:
        return None
    # Both sides of the limbus must be seen, with a clear step: with one side only (an eye turned
    # into its corner) the circle slides along that arc.
    steps, seen = edge(off[None], np.array([rad]))
    for side in (slice(0, IRIS_N_ANGLES), slice(IRIS_N_ANGLES, None)):
        n = np.count_nonzero(seen[0, side])
        if n < IRIS_MIN_SIDE_ARC * IRIS_N_ANGLES or steps[0, side].sum() < IRIS_MIN_CONTRAST * n:
            return None
    return off


def _box(points: np.ndarray) -> tuple[np.ndarray, float]:
    lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    return (lo + hi) / 2, float(max(hi - lo))


class TrackLinker:
    """Links per-frame detections into tracks as frames come in, by the smallest centre movement
    (Hungarian matching). Track points go straight to disk (``FrameStore``), so a long video costs
    no memory per frame."""

    def __init__(self):
        self._tracks: list[dict] = []  # {"frames": [...], "points": FrameStore, "centre": c, "size": s}
        self._n = 0

    def add(self, faces: Sequence[FaceLandmarks]) -> None:
        """The faces found in the next frame."""
        i = self._n
        self._n += 1
        live = [t for t in self._tracks if i - t["frames"][-1] <= MAX_TRACK_GAP]
        boxes = [_box(f.points) for f in faces]
        matched = set()
        if live and faces:
            cost = np.array(
                [[np.linalg.norm(c - t["centre"]) / max(t["size"], s, 1.0) for c, s in boxes] for t in live]
            )
            for r, c in zip(*linear_sum_assignment(cost)):
                if cost[r, c] < MAX_TRACK_JUMP:
                    self._extend(live[r], i, faces[c].points, boxes[c])
                    matched.add(c)
        for c, face in enumerate(faces):
            if c not in matched:
                track = {"frames": [], "points": FrameStore((N_LANDMARKS, 3))}
                self._tracks.append(track)
                self._extend(track, i, face.points, boxes[c])

    @staticmethod
    def _extend(track: dict, i: int, points: np.ndarray, box) -> None:
        store = track["points"]
        store.append_fill(i - len(store), np.nan)  # frames where the face was not seen
        store.append(points)
        track["frames"].append(i)
        track["centre"], track["size"] = box

    def tracks(self) -> list[Track]:
        """Every track so far, longest first; each covers all frames added (NaN where not seen)."""
        out = []
        for t in sorted(self._tracks, key=lambda t: -len(t["frames"])):
            t["points"].append_fill(self._n - len(t["points"]), np.nan)
            present = np.zeros(self._n, bool)
            present[t["frames"]] = True
            out.append(Track(points=t["points"], present=present))
        return out


def track_faces(detections: Sequence[Sequence[FaceLandmarks]]) -> list[Track]:
    """Link per-frame detections into tracks (``TrackLinker``). detections : one sequence of faces
    per frame. Returns tracks, longest first."""
    linker = TrackLinker()
    for faces in detections:
        linker.add(faces)
    return linker.tracks()
