"""Eye landmarks refined from the pixels: the limbus circle and the lid margins.

MediaPipe's eye points carry a strong shape prior: on real eyes warped by a known amount they follow
15-34 % of a lowered lid and ~15 % (vertical) to 50 % (horizontal) of an iris shift, and on the mask
the same. Millimetre-level lid heights and degree-level gaze need the edges themselves, so each eye
is re-fitted to its image after MediaPipe: the iris centre to the limbus (``refine_iris``), then each
lid-margin point along the lid's normal to the edge of the eye opening (``refine_lids``), then the
iris again, to sub-pixel limbus edge points inside the refined opening (``limbus_fit``).
Pure numpy and OpenCV image sampling; no model.
"""
from __future__ import annotations

import cv2
import numpy as np

from . import geometry, topology

# Iris refinement (``refine_iris``): each iris centre re-fitted to the limbus (the dark-iris /
# bright-sclera edge) inside the lid opening. Lengths in MediaPipe iris radii unless marked px.
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
IRIS_RADIUS_RANGE = (0.9, 1.1)  # circle radii tried, around MediaPipe's; the ring takes the fitted one
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
IRIS_STARTS = 3  # the finer rounds start from this many of the first round's best, apart from each other
IRIS_FINAL_STEP_PX = 0.6  # the coarse-to-fine search stops at this grid step (then a parabola)
# After the lids (``refine_eyes``), the circle is re-fitted to limbus edge points (``limbus_fit``,
# ``limbus_circle``) inside the refined lid opening: along rays from the searched
# circle's centre, over the same two arcs, the strongest outward grey step within IRIS_EDGE_REACH radii
# of that circle, placed to a fraction of a sample; rays that leave the opening there give no point.
# A circle fitted to points has no pull toward wherever more of it is seen (the searched score has:
# hidden samples count as no edge), so an iris half under a lid keeps its size and height.
IRIS_EDGE_RAYS = 24  # rays per arc
IRIS_EDGE_REACH = 0.3
IRIS_EDGE_SAMPLE_PX = 0.25  # spacing of the samples along a ray
IRIS_EDGE_POINT_STEP_PX = 0.75  # the grey step at a sample is taken across at least +-this (3 samples)
IRIS_EDGE_MIN_POINTS = 4  # on either side (left, right); fewer: the searched circle stands
IRIS_EDGE_MAX_MOVE = 0.3  # radii from the searched circle's centre; farther, or a radius outside
IRIS_EDGE_RADIUS_RANGE = (0.8, 1.2)  # this range of the searched one's: the searched circle stands
IRIS_EDGE_OUTLIER = 3.0  # points farther than this many robust sigmas (>= 0.3 px) from the circle are dropped
LIMBUS_POINTS = 2 * IRIS_EDGE_RAYS  # the edge points kept per eye (``refine_eyes``), NaN-padded


def refine_eyes(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The iris searched (``refine_iris``), the lids refined around it, then each searched iris
    re-fitted to limbus edge points inside the refined lid opening (``limbus_fit``: MediaPipe's lids
    miss much of a drooping lid, whose skin would pass for limbus).

    The lids returned follow their edges near and over the iris (``lid_course``); the opening the
    limbus is read in has each lid moved by one straight line (``lid_shifts``), which over the iris
    errs toward the pupil rather than into the lash line, whose edge would pass for limbus.

    image : (H, W, 3) uint8 RGB; points : (478, 3) image pixels. Returns a new (478, 3) float32 array
    and, per eye, the limbus edge points its circle was fitted to, (2, LIMBUS_POINTS, 2) float32 image
    pixels, NaN-padded (all NaN where the circle was not re-fitted): the fit stage fits the limbus of
    its eyeball model to them (``geometry.limbus_centres``).
    """
    searched = [iris_circle(image, points, eye) for eye in range(2)]
    out, opening = _refined_lids(image, _moved_irises(points, searched))
    fits = [limbus_fit(image, opening, eye) if s is not None else None for eye, s in enumerate(searched)]
    limbus = np.full((2, LIMBUS_POINTS, 2), np.nan, np.float32)
    for eye, fitted in enumerate(fits):
        if fitted is not None:
            limbus[eye, : len(fitted[2])] = fitted[2]
    return _moved_irises(out, [None if f is None else f[:2] for f in fits]), limbus


def refine_iris(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Re-estimate each iris centre and radius from the limbus edge in the image (a Daugman-style
    circular edge search, ``iris_circle``): the ring points move with the centre and scale to the
    fitted radius (the mm scale comes from it).

    image : (H, W, 3) uint8 RGB; points : (478, 3) image pixels. Returns a new array; an eye whose
    fit is unreliable (see ``iris_circle``) keeps MediaPipe's points.
    """
    return _moved_irises(points, [iris_circle(image, points, eye) for eye in range(2)])


def _moved_irises(points: np.ndarray, fits) -> np.ndarray:
    """A float32 copy of points with each eye's iris moved by its fit (shift px, ratio of radii), where
    there is one."""
    out = np.array(points, dtype=np.float32, copy=True)
    for eye, fitted in enumerate(fits):
        if fitted is not None:
            shift, scale = fitted
            c = out[topology.IRIS_CENTRE[eye], :2].copy()
            ring = list(topology.IRIS_RING[eye])
            out[ring, :2] = c + shift + (out[ring, :2] - c) * scale
            out[topology.IRIS_CENTRE[eye], :2] = c + shift
    return out


def _eye_size(p: np.ndarray, eye: int) -> tuple[float, float]:
    """(iris radius, mid-lid gap) in pixels of one eye, from MediaPipe's ring and lids. p : (478, 2)."""
    ring = p[list(topology.IRIS_RING[eye])]
    r = (np.linalg.norm(ring[0] - ring[2]) + np.linalg.norm(ring[1] - ring[3])) / 4
    return r, np.linalg.norm(p[topology.MID_UPPER[eye]] - p[topology.MID_LOWER[eye]])


def _crop(image: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """The blurred grey crop of image between corners lo and hi (pixels, clipped to the image) and its
    origin (x0, y0); None when less than 4 pixels wide or tall."""
    h, w = image.shape[:2]
    x0, y0 = np.maximum(np.floor(lo).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(hi).astype(int) + 1, (w, h))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    grey = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.GaussianBlur(grey, (0, 0), IRIS_BLUR_PX), int(x0), int(y0)


def _opening(lids: np.ndarray, shape: tuple[int, int], margin: int) -> np.ndarray:
    """(H, W) uint8 mask of the eye opening inside the lid ring ``lids`` (pixels of the crop, pixel
    centres at +0.5), pulled in from the lids by ``margin`` pixels."""
    opening = np.zeros(shape, np.uint8)
    poly = np.round((lids - 0.5) * 4).astype(np.int32)
    cv2.fillPoly(opening, [poly], 1, lineType=cv2.LINE_8, shift=2)
    return cv2.erode(opening, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2))


def _eye_crop(image: np.ndarray, lids: np.ndarray, centre: np.ndarray, reach: float,
              radius: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(H, W, 2) float32 planes, the blurred grey crop around the lid ring ``lids`` and the square
    ``centre`` +- ``reach`` and its lid opening (pulled in by IRIS_LID_MARGIN iris radii, >= 1 px),
    sampled together; and the image coordinates of crop pixel (0, 0)'s centre. None when too small."""
    crop = _crop(image, np.minimum(lids.min(axis=0), centre - reach), np.maximum(lids.max(axis=0), centre + reach))
    if crop is None:
        return None
    grey, x0, y0 = crop
    opening = _opening(lids - (x0, y0), grey.shape, int(round(max(IRIS_LID_MARGIN * radius, 1.0))))
    return cv2.merge([grey, opening.astype(np.float32)]), np.array([x0 + 0.5, y0 + 0.5])


def _arc_angles(n: int) -> np.ndarray:
    """(2 n,) angles of n samples over the right arc, then n over the left."""
    half = np.radians(IRIS_ARC_HALF_ANGLE_DEG)
    a = np.linspace(-half, half, n)
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
_ANGLES = _arc_angles(IRIS_N_ANGLES)
_UNIT = np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=1).astype(np.float32)  # (A, 2)


def iris_circle(image: np.ndarray, points: np.ndarray, eye: int) -> tuple[np.ndarray, float] | None:
    """The image shift (dx, dy) px of one eye's iris centre and the ratio of radii (fitted over
    MediaPipe's) that put a circle on the limbus, or None where the fit is unreliable.

    A circle of radius within ``IRIS_RADIUS_RANGE`` of MediaPipe's is placed where the grey step across
    it (outside minus inside), summed over its left and right arcs, is largest less the vertical prior
    ``IRIS_Y_PRIOR``; only edge samples inside the lid opening (pulled in by ``IRIS_LID_MARGIN``) count,
    as the upper and lower limbus are mostly under the lids. Searched coarse to fine within
    ``IRIS_SEARCH`` of MediaPipe's centre, from ``IRIS_STARTS`` places of the coarse grid. None (keep
    MediaPipe's points) when: the iris radius is below ``IRIS_MIN_RADIUS_PX``; the mid-lid gap is below
    ``IRIS_MIN_OPENING`` iris diameters; glare covers more than ``IRIS_MAX_GLARE`` of the iris disc; no
    circle shows ``IRIS_MIN_ARC`` of its samples; the fitted circle shows less than ``IRIS_MIN_SIDE_ARC``
    of either side or a mean step below ``IRIS_MIN_CONTRAST`` there (a flat patch, an eye turned into its
    corner); or it lies more than ``IRIS_MAX_SHIFT`` radii from MediaPipe's centre.
    """
    p = np.asarray(points, dtype=np.float64)[:, :2]
    c0 = p[topology.IRIS_CENTRE[eye]]
    r0, gap = _eye_size(p, eye)
    if not np.isfinite(r0) or r0 < IRIS_MIN_RADIUS_PX or gap < IRIS_MIN_OPENING * 2 * r0:
        return None
    lids = p[list(topology.lid_ring(eye))]

    # Crop around the opening and the search region.
    step = max(IRIS_EDGE_STEP * r0, IRIS_EDGE_STEP_MIN_PX)
    crop = _eye_crop(image, lids, c0, (IRIS_SEARCH + IRIS_RADIUS_RANGE[1]) * r0 + step + 2, r0)
    if crop is None:
        return None
    planes, origin = crop
    grey, opening = planes[..., 0], planes[..., 1]

    # Glare over the iris (glasses, lamps) hides the limbus.
    yy, xx = np.ogrid[: grey.shape[0], : grey.shape[1]]
    disc = ((xx + origin[0] - c0[0]) ** 2 + (yy + origin[1] - c0[1]) ** 2 < r0 ** 2) & (opening > 0)
    n_disc = np.count_nonzero(disc)
    if n_disc and np.count_nonzero(grey[disc] >= IRIS_GLARE_LEVEL) > IRIS_MAX_GLARE * n_disc:
        return None

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

    # Coarse to fine: a grid of centres and radii, then finer grids around the best so far, halving
    # the step each round; then a parabola through the last round's best and its neighbours places it
    # to a fraction of the step, along x and along y. The finer rounds start from the IRIS_STARTS best
    # cells of the coarse grid that are not neighbours of a better one, and the best circle they end on
    # wins: from the single best cell, a smaller circle inside the limbus could win (a jerk
    # nystagmus's fast phase at 4 px/mm: 4.6 px off, refused, and MediaPipe's lagging iris kept).
    rmin, rmax = IRIS_RADIUS_RANGE[0] * r0, IRIS_RADIUS_RANGE[1] * r0

    def grid_around(grid, off, rad, grid_step, r_step):
        return off + grid[:, :2] * grid_step, np.clip(rad + grid[:, 2] * r_step, rmin, rmax)

    grid_step0, r_step0 = IRIS_SEARCH * r0 / _COARSE_HALF, (rmax - rmin) / (IRIS_N_RADII - 1)
    offsets, radii = grid_around(_GRID_COARSE, np.zeros(2), r0, grid_step0, r_step0)
    s = score(offsets, radii)
    scale = max(float(np.max(s)), 0.0)
    prior = IRIS_Y_PRIOR * scale / r0 ** 2  # times dy^2
    s = s - prior * offsets[:, 1] ** 2
    starts = []
    for i in np.argsort(-s):
        if not np.isfinite(s[i]) or len(starts) == IRIS_STARTS:
            break
        if all(np.abs(_GRID_COARSE[i, :2] - _GRID_COARSE[j, :2]).max() > 1 for j in starts):
            starts.append(i)
    if not starts:
        return None
    best = None
    for start in starts:
        k, grid, grid_step, r_step, sk = start, _GRID_COARSE, grid_step0, r_step0, s
        off, rad = offsets[k], float(radii[k])
        while grid_step > IRIS_FINAL_STEP_PX:
            grid, grid_step, r_step = _GRID_FINE, grid_step / 2, r_step / 2
            o, r = grid_around(grid, off, rad, grid_step, r_step)
            sk = score(o, r) - prior * o[:, 1] ** 2
            k = int(np.argmax(sk))
            off, rad = o[k], float(r[k])
        if best is None or sk[k] > best[0]:
            best = (sk[k], off, rad, grid, grid_step, sk, k)
    if not np.isfinite(best[0]):
        return None
    _, off, rad, grid, grid_step, s, i = best
    off = off.copy()
    for axis in range(2):
        nb = [_GRID_INDEX[grid is _GRID_FINE].get(tuple(np.add(grid[i], d))) for d in _NEIGHBOURS[axis]]
        if None not in nb:
            off[axis] += geometry.parabola_peak(s[nb[0]], s[i], s[nb[1]]) * grid_step

    if np.linalg.norm(off) > IRIS_MAX_SHIFT * r0:
        return None
    # Both sides of the limbus must be seen, with a clear step: with one side only (an eye turned
    # into its corner) the circle slides along that arc.
    steps, seen = edge(off[None], np.array([rad]))
    for side in (slice(0, IRIS_N_ANGLES), slice(IRIS_N_ANGLES, None)):
        n = np.count_nonzero(seen[0, side])
        if n < IRIS_MIN_SIDE_ARC * IRIS_N_ANGLES or steps[0, side].sum() < IRIS_MIN_CONTRAST * n:
            return None
    return off, rad / r0


_EDGE_ANGLES = _arc_angles(IRIS_EDGE_RAYS)
_EDGE_UNIT = np.stack([np.cos(_EDGE_ANGLES), np.sin(_EDGE_ANGLES)], axis=1)  # (2 IRIS_EDGE_RAYS, 2)


def limbus_fit(image: np.ndarray, points: np.ndarray, eye: int) -> tuple[np.ndarray, float, np.ndarray] | None:
    """The image shift (dx, dy) px of one eye's iris centre and the ratio of radii that put its circle
    through the limbus edge points (``limbus_circle``) inside the lid opening of ``points``, starting
    from the iris there, and those points (m, 2) in image pixels; None where too few points are found
    or the circle moves more than IRIS_EDGE_MAX_MOVE radii or leaves IRIS_EDGE_RADIUS_RANGE."""
    p = np.asarray(points, dtype=np.float64)[:, :2]
    c0 = p[topology.IRIS_CENTRE[eye]]
    r0, _ = _eye_size(p, eye)
    if not np.isfinite(r0) or r0 < IRIS_MIN_RADIUS_PX:
        return None
    lids = p[list(topology.lid_ring(eye))]
    step = max(IRIS_EDGE_STEP * r0, IRIS_EDGE_POINT_STEP_PX)
    crop = _eye_crop(image, lids, c0, (1 + IRIS_EDGE_REACH) * r0 + step + 2, r0)
    if crop is None:
        return None
    planes, origin = crop
    start = c0 - origin  # crop pixel (0, 0)'s centre at 0
    fitted = limbus_circle(planes, start, r0, step)
    if fitted is None:
        return None
    c, r, edge = fitted
    if np.linalg.norm(c - start) > IRIS_EDGE_MAX_MOVE * r0 or not (
            IRIS_EDGE_RADIUS_RANGE[0] * r0 <= r <= IRIS_EDGE_RADIUS_RANGE[1] * r0):
        return None
    return c - start, r / r0, (edge + origin).astype(np.float32)


def limbus_circle(planes: np.ndarray, centre: np.ndarray, radius: float,
                  step: float) -> tuple[np.ndarray, float, np.ndarray] | None:
    """The circle (centre, radius; crop pixels, pixel centres at 0) through the limbus edge points
    found along rays from ``centre`` near ``radius``, and those points (m, 2) less the outliers; None
    with too few points on either side.

    planes : (H, W, 2) float32, the blurred grey crop and its opening mask (``limbus_fit``); step :
    half the radial distance across which the grey step is taken (px).
    """
    lag = max(int(round(step / IRIS_EDGE_SAMPLE_PX)), 1)
    reach = IRIS_EDGE_REACH * radius
    t = np.arange(radius - reach - lag * IRIS_EDGE_SAMPLE_PX, radius + reach + (lag + 1) * IRIS_EDGE_SAMPLE_PX,
                  IRIS_EDGE_SAMPLE_PX)  # (S,) distances along each ray
    xy = centre[None, None] + _EDGE_UNIT[:, None] * t[None, :, None]  # (R, S, 2)
    v = cv2.remap(planes, xy[..., 0].astype(np.float32), xy[..., 1].astype(np.float32), cv2.INTER_LINEAR,
                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    inside = v[..., 1] > 0.99
    # Grey step outward (iris dark, sclera bright) at each sample, where both of its ends are inside.
    rise = np.where(inside[:, 2 * lag:] & inside[:, : -2 * lag], v[:, 2 * lag:, 0] - v[:, : -2 * lag, 0], -np.inf)
    j = np.argmax(rise, axis=1)  # (R,) index into t[lag:-lag]
    rows = np.arange(len(j))
    top = rise[rows, j]
    ok = (top >= IRIS_MIN_CONTRAST) & (j > 0) & (j < rise.shape[1] - 1)
    ok[ok] &= np.isfinite(rise[rows[ok], j[ok] - 1]) & np.isfinite(rise[rows[ok], j[ok] + 1])
    if min(np.count_nonzero(ok[:IRIS_EDGE_RAYS]), np.count_nonzero(ok[IRIS_EDGE_RAYS:])) < IRIS_EDGE_MIN_POINTS:
        return None
    rows, j = rows[ok], j[ok]
    peak = geometry.parabola_peak(rise[rows, j - 1], rise[rows, j], rise[rows, j + 1])
    dist = t[lag + j] + peak * IRIS_EDGE_SAMPLE_PX
    points = centre + _EDGE_UNIT[rows] * dist[:, None]
    c, r = geometry.fit_circle(points, centre, radius)
    residual = np.abs(np.linalg.norm(points - c, axis=1) - r)
    keep = residual <= max(IRIS_EDGE_OUTLIER * 1.4826 * np.median(residual), 0.3)
    if not keep.all():
        if min(np.count_nonzero(keep & (rows < IRIS_EDGE_RAYS)), np.count_nonzero(keep & (rows >= IRIS_EDGE_RAYS))) \
                < IRIS_EDGE_MIN_POINTS:
            return None
        points = points[keep]
        c, r = geometry.fit_circle(points, c, r)
    return (c, r, points) if np.isfinite(c).all() and np.isfinite(r) else None


# Lid refinement (``refine_lids``): each lid-margin point moved along the lid's normal to the edge of
# the eye opening. Lengths in iris radii unless marked px.
LID_SEARCH = 0.35  # searched this far either side of MediaPipe's point
LID_EDGE_STEP = 0.06  # half the step across the edge, at least IRIS_EDGE_STEP_MIN_PX
LID_SAMPLE_PX = 0.25  # spacing of the samples along the normal
LID_MIN_CONTRAST = 10.0  # grey step (0-255) below which a point keeps MediaPipe's place
LID_MIN_OPENING = 0.3  # mid-lid gap below this many iris diameters: eye (nearly) closed, not refined
LID_MIN_POINTS = 3  # a lid needs this many edge points, on both sides of the iris, for a tilt; with
LID_MIN_SHIFT_POINTS = 2  # fewer but at least this many it is shifted by their mean; with fewer, kept
# The lid's course (``lid_course``): besides MediaPipe's points it is read in columns near the iris and
# over it, and each point follows a curve fitted to the readings around it.
LID_NEAR_IRIS = (1.05, 1.7)  # columns beside the iris this far from its centre, ...
LID_NEAR_STEP = 0.15  # ... this far apart
LID_OVER_IRIS = 0.7  # columns over the iris out to this, ...
LID_OVER_STEP = 0.2  # ... this far apart; read only where the sclera shows between iris and lid:
LID_OVER_MIN_CONTRAST = 20.0  # a step this strong (a lid over the iris meets an edge as dark as itself)
# Each column is searched this far inward and outward of MediaPipe's lid: upper lid, lower lid. MediaPipe
# sets the upper lid on the lash line or the skin above it when the eye looks up under it (0.5 iris
# radii above the drawn margin in synth.VALIDATION_SPECS' v1, beside the iris), seldom inside the opening.
LID_COURSE_SEARCH = ((0.9, 0.3), (0.3, 0.3))
LID_COURSE_MAX_GAP = 0.5  # the inward search stops at this share of MediaPipe's lid gap in the column
# (so that the upper lid's search never reaches the lower lid's lashes in a narrow eye)
# Each point follows a polynomial (degree) fitted to the readings weighted by a Gaussian of their
# distance along the eye (sigma, iris radii): upper lid, lower lid. MediaPipe's lids bend from the drawn
# ones over the iris: the lower sinks under it, its offset from the edges growing toward the iris from
# both sides, and the upper rises over it (MediaPipe's lid arches over the cornea more than the mask's):
# a line through the readings on either side left the upper lid 0.1-0.4 mm low over the iris and a
# lower lid 0.4-0.5 mm low (synth.ACCURACY_SPECS and VALIDATION_SPECS).
LID_COURSE_FIT = ((2, 1.2), (2, 0.8))


def refine_lids(image: np.ndarray, points: np.ndarray, course: bool = True) -> np.ndarray:
    """Move each eye's lid-margin points (``topology.LID_POINTS``) along the lid's normal to the edge of
    the eye opening: to the lid's course read near and over the iris (``lid_course``), or with
    ``course=False`` by one straight line per lid through the edges beside it (``lid_shifts``).

    The margin is where the opening meets the lid: seen from inside the opening outward, the grey level
    falls from the bright sclera into lashes, lid shadow or skin; a point reads the strongest such step
    within ``LID_SEARCH`` of MediaPipe's place. Over the iris the lid meets an edge as dark as itself and
    the iris's own rings give stronger ones, so a lid is read over the sclera and, where MediaPipe's
    points would miss it, interpolated over the iris; no point moves on its own edge alone (one edge is
    as often a crease or the iris of a half-closed eye). An iris turned aside hides the sclera on one
    side, and on a mask MediaPipe often sets the upper lid on the drawn lash band, where few points
    reach the sclera's edge: a lid read on one side only, or at too few places, is shifted by their
    weighted mean. The corners are kept. An eye that is (nearly) closed or small keeps MediaPipe's points.

    image : (H, W, 3) uint8 RGB; points : (478, 3) image pixels. Returns a new array.
    """
    return _refined_lids(image, points)[0 if course else 1]


def _refined_lids(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Copies of points with the lids moved to their course (``lid_course``) and by one line each
    (``lid_shifts``), read from one crop per eye."""
    course = np.array(points, dtype=np.float32, copy=True)
    line = course.copy()
    p = np.asarray(points, dtype=np.float64)[:, :2]
    for eye in range(2):
        r, gap = _eye_size(p, eye)
        if not np.isfinite(r) or r < IRIS_MIN_RADIUS_PX or gap < LID_MIN_OPENING * 2 * r:
            continue
        lids = p[list(topology.lid_ring(eye))]
        reach = (max(LID_SEARCH, np.max(LID_COURSE_SEARCH)) + LID_EDGE_STEP) * r + IRIS_EDGE_STEP_MIN_PX + 3
        crop = _crop(image, lids.min(axis=0) - reach, lids.max(axis=0) + reach)
        if crop is None:
            continue
        grey, x0, y0 = crop
        q = p - (x0, y0)
        shifts = lid_shifts(grey, q, eye, r)
        line[list(topology.LID_POINTS[eye]), :2] += shifts.astype(np.float32)
        course[list(topology.LID_POINTS[eye]), :2] += lid_course(grey, q, eye, r, shifts).astype(np.float32)
    return course, line


def _lid_frame(p: np.ndarray, eye: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One eye's (outer corner, inner corner, unit axis from outer to inner corner, unit normal from the
    lower lid toward the upper). p : (478, 2)."""
    outer, inner = p[topology.OUTER_CORNER[eye]], p[topology.INNER_CORNER[eye]]
    axis = (inner - outer) / max(np.linalg.norm(inner - outer), 1e-9)
    normal = np.array([axis[1], -axis[0]])
    lid = p[list(topology.LID_POINTS[eye])]
    n_up = topology.N_UPPER
    if (lid[:n_up] - lid[n_up:]).mean(axis=0) @ normal < 0:
        normal = -normal
    return outer, inner, axis, normal


def _edges(grey: np.ndarray, at: np.ndarray, outward: np.ndarray, t: np.ndarray, h: float,
           lowest: np.ndarray | None = None):
    """The strongest darkening step outward along each of k lines: at (k, 2) px, outward (k, 2) unit,
    searched over offsets t (T,) px (on line i only those >= lowest[i] when given), each step taken
    across +-h px. Returns the offsets (k,) placed by a parabola and the grey steps there (k,; -inf
    where the strongest lies at the end of the search)."""
    tt = np.concatenate([t - h, t + h])  # inner then outer sample of each step
    xy = at[:, None, :] + tt[None, :, None] * outward[:, None, :]  # (k, 2T, 2)
    v = cv2.remap(grey, xy[..., 0].astype(np.float32) - 0.5, xy[..., 1].astype(np.float32) - 0.5,
                  cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    step = v[:, : len(t)] - v[:, len(t):]  # > 0 where it darkens outward
    if lowest is not None:
        step = np.where(t[None] >= lowest[:, None], step, -np.inf)
    best = np.argmax(step, axis=1)
    rows = np.arange(len(at))
    strength = step[rows, best]
    b = np.clip(best, 1, len(t) - 2)
    interior = (best > 0) & (best < len(t) - 1) & np.isfinite(step[rows, b - 1])
    offset = t[best].astype(np.float64)
    peak = geometry.parabola_peak(step[rows, b - 1], step[rows, b], step[rows, b + 1])
    offset += np.where(interior, peak, 0.0) * LID_SAMPLE_PX
    return offset, np.where(interior, strength, -np.inf)


def lid_shifts(grey: np.ndarray, p: np.ndarray, eye: int, r: float) -> np.ndarray:
    """(14, 2) image shifts of one eye's lid points (7 upper, 7 lower; zero for a lid that is not
    read), each lid moved by one straight line through its points' edges beside the iris.
    grey : (H, W) float32 blurred image; p : (478, 2) pixels in it; r : iris radius px."""
    outer, inner, axis, normal = _lid_frame(p, eye)
    lid = p[list(topology.LID_POINTS[eye])]
    n_up = topology.N_UPPER
    along_iris = (lid - p[topology.IRIS_CENTRE[eye]]) @ axis  # (14,) position along the eye from the iris centre
    over_iris = np.abs(along_iris) < 0.8 * r

    h = max(LID_EDGE_STEP * r, IRIS_EDGE_STEP_MIN_PX)
    t = np.arange(-LID_SEARCH * r, LID_SEARCH * r + 1e-9, LID_SAMPLE_PX)  # (T,)
    # Outward from the opening: +normal for the upper lid, -normal for the lower.
    outward = np.where(np.arange(len(lid)) < n_up, 1.0, -1.0)[:, None] * normal  # (14, 2)
    offset, strength = _edges(grey, lid, outward, t, h)
    found = (strength >= LID_MIN_CONTRAST) & ~over_iris

    # Per lid, a straight line along the eye through the found offsets (weighted by step strength):
    # a common shift and a tilt, read over the sclera on both sides of the iris.
    shifts = np.zeros((len(lid), 2))
    u = (lid - (outer + inner) / 2) @ axis / max(np.linalg.norm(inner - outer) / 2, 1e-9)  # -1..1
    for rows in (np.arange(n_up), np.arange(n_up, len(lid))):
        k = rows[found[rows]]
        w = np.sqrt(strength[k])
        if len(k) < LID_MIN_POINTS or not ((along_iris[k] < 0).any() and (along_iris[k] > 0).any()):
            if len(k) >= LID_MIN_SHIFT_POINTS:  # too few for a tilt: a common shift
                shifts[rows] = float(np.sum(offset[k] * w) / np.sum(w)) * outward[rows]
            continue
        basis = np.stack([np.ones(len(k)), u[k]], axis=1)
        coef, *_ = np.linalg.lstsq(basis * w[:, None], offset[k] * w, rcond=None)
        shifts[rows] = (coef[0] + coef[1] * u[rows])[:, None] * outward[rows]
    return shifts


_NEAR_COLUMNS = np.arange(LID_NEAR_IRIS[0], LID_NEAR_IRIS[1] + 1e-9, LID_NEAR_STEP)
_OVER_COLUMNS = np.arange(-LID_OVER_IRIS, LID_OVER_IRIS + 1e-9, LID_OVER_STEP)


def lid_course(grey: np.ndarray, p: np.ndarray, eye: int, r: float, line: np.ndarray) -> np.ndarray:
    """(14, 2) image shifts of one eye's lid points that put each lid on its course: read in columns
    across the eye and moved, point by point, by a curve fitted to the readings around it.

    MediaPipe's lid is not only shifted and tilted: over the iris it bends from the drawn one by up to
    a pixel or two (at 2 px a mm), more than a straight line through edges beside the iris can follow. So
    besides MediaPipe's own points beside the iris, columns are read close to the iris
    (``LID_NEAR_IRIS``, every ``LID_NEAR_STEP``) and over it (within ``LID_OVER_IRIS``, where the sclera
    shows between iris and lid: a darkening step of ``LID_OVER_MIN_CONTRAST``); each column takes the
    strongest darkening step outward within ``LID_COURSE_SEARCH`` of MediaPipe's lid. Each point then
    moves by a line (upper lid) or parabola (lower) through the readings weighted by step strength and a
    Gaussian of their distance along the eye (``LID_COURSE_FIT``), so over a covered iris the lid
    follows the readings nearest on either side. A lid read on one side of the iris only, or in fewer
    than ``LID_MIN_POINTS`` columns (a narrow or turned eye, where the many columns would more often
    catch a stray edge than its seven points), keeps ``line``: the shifts ``lid_shifts`` gave it.
    grey : (H, W) float32 blurred image; p : (478, 2) pixels in it; r : iris radius px.
    """
    outer, inner, axis, normal = _lid_frame(p, eye)
    lid = p[list(topology.LID_POINTS[eye])]
    n_up = topology.N_UPPER
    c = p[topology.IRIS_CENTRE[eye]]
    h = max(LID_EDGE_STEP * r, IRIS_EDGE_STEP_MIN_PX)
    shifts = np.zeros((len(lid), 2))
    # MediaPipe's lids, corner to corner, as heights along the normal over positions along the eye.
    curves = []
    for rows in (np.arange(n_up), np.arange(n_up, len(lid))):
        ring = np.vstack([outer, lid[rows], inner])
        along, height = (ring - c) @ axis, (ring - c) @ normal
        order = np.argsort(along)
        curves.append((along[order], height[order]))
    for k, (rows, sign) in enumerate(((np.arange(n_up), 1.0), (np.arange(n_up, len(lid)), -1.0))):
        along, height = curves[k]
        inward, outward = LID_COURSE_SEARCH[k]
        t = np.arange(-inward * r, outward * r + 1e-9, LID_SAMPLE_PX)
        points_along = (lid[rows] - c) @ axis
        columns = np.concatenate([points_along[np.abs(points_along) >= LID_NEAR_IRIS[0] * r] / r,
                                  -_NEAR_COLUMNS, _NEAR_COLUMNS, _OVER_COLUMNS])
        over = np.zeros(len(columns), bool)
        over[-len(_OVER_COLUMNS):] = True
        # Between the outermost points: the stretches to the corners are steep, and the offset from
        # MediaPipe's lid there tapers to the kept corner, which no line through the rest follows.
        keep = (columns * r >= points_along.min() - 1e-6) & (columns * r <= points_along.max() + 1e-6)
        columns, over = columns[keep], over[keep]
        at = c + columns[:, None] * r * axis + np.interp(columns * r, along, height)[:, None] * normal
        # The upper lid's inward search stops halfway to the lower lid.
        lowest = None if k else -LID_COURSE_MAX_GAP * np.abs(np.interp(columns * r, *curves[0])
                                                              - np.interp(columns * r, *curves[1]))
        offset, strength = _edges(grey, at, np.broadcast_to(sign * normal, at.shape), t, h, lowest)
        # Over the iris, only an edge outside the iris circle (sclera between): the iris's rings are not lids.
        beyond = np.linalg.norm(at + offset[:, None] * sign * normal - c, axis=1) >= r
        found = np.where(over, (strength >= LID_OVER_MIN_CONTRAST) & beyond, strength >= LID_MIN_CONTRAST)
        x, y, w = columns[found], offset[found], np.sqrt(strength[found])
        if len(x) < LID_MIN_POINTS or not ((x < 0).any() and (x > 0).any()):
            shifts[rows] = line[rows]
            continue
        degree, bandwidth = LID_COURSE_FIT[0 if sign > 0 else 1]
        shifts[rows] = _local_fit(x, y, w, points_along / r, bandwidth, degree)[:, None] * sign * normal
    return shifts


def _local_fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, at: np.ndarray, bandwidth: float,
               degree: int) -> np.ndarray:
    """(m,) values at ``at`` (m,) of polynomials of ``degree`` fitted to the points (x, y) (n,) by least
    squares, each around its place: weights w (n,) times a Gaussian of x - at of sigma ``bandwidth``."""
    dx = x[None, :] - at[:, None]  # (m, n)
    wk = w * np.exp(-0.5 * (dx / bandwidth) ** 2)
    powers = dx[..., None] ** np.arange(degree + 1)  # (m, n, degree + 1)
    a = np.einsum("mn,mni,mnj->mij", wk, powers, powers)
    b = np.einsum("mn,mni,n->mi", wk, powers, y)
    ridge = 1e-9 * np.trace(a, axis1=1, axis2=2)[:, None, None] * np.eye(degree + 1)
    return np.linalg.solve(a + ridge, b[..., None])[:, 0, 0]


# Corneal light reflex (``corneal_reflexes``): the small bright spot that a light at or near the
# camera makes on the cornea. Lengths in iris radii unless marked px.
REFLEX_SEARCH = 0.8  # looked for this far from the iris centre, inside the lid opening
REFLEX_SPOT = 0.2  # the spot's pixels lie this near its brightest pixel, at least REFLEX_SPOT_MIN_PX
REFLEX_SPOT_MIN_PX = 2.5
REFLEX_RING = 0.15  # its surround: a ring this wide outside the spot, at least REFLEX_RING_MIN_PX
REFLEX_RING_MIN_PX = 1.5
REFLEX_MIN_OPENING = 0.3  # mid-lid gap below this many iris diameters: eye (nearly) shut, not searched
REFLEX_MIN_CONTRAST = 15.0  # grey levels (0-255, blurred) the spot rises above the iris's median
REFLEX_MIN_ISOLATION = 0.6  # ... and falls by this share of that rise into all but a tenth of its
#                             surround in the opening (a lid's edge, the sclera or glare beside it are
#                             not a spot; the lid's skin beside a narrow eye's reflex is not its surround)


def corneal_reflexes(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The corneal reflex of each eye in the image: (2, 2) pixels, NaN for an eye without a clear one.

    The brightest spot over the iris, inside the lid opening, that stands ``REFLEX_MIN_CONTRAST`` above
    the iris and is small: it falls back by ``REFLEX_MIN_ISOLATION`` of its rise on 90 % of a ring
    around it inside the opening (glare from glasses, a lit patch of sclera or the lid's edge do not).
    Searched in eyes open ``REFLEX_MIN_OPENING`` iris diameters or more at mid-lid: a narrow eye's
    fissure is often under half its iris, and its reflex still shows. Its place is the
    top of a Gaussian through its brightest pixel and that pixel's neighbours, above the surround.
    Reads the iris centre and ring of ``points`` (refined: ``refine_iris``).
    image : (H, W, 3) uint8 RGB; points : (478, 3) image pixels.
    """
    out = np.full((2, 2), np.nan, np.float32)
    p = np.asarray(points, dtype=np.float64)[:, :2]
    for eye in range(2):
        r, gap = _eye_size(p, eye)
        if not np.isfinite(r) or r < IRIS_MIN_RADIUS_PX or gap < REFLEX_MIN_OPENING * 2 * r:
            continue
        c = p[topology.IRIS_CENTRE[eye]]
        crop = _crop(image, c - r, c + r)
        if crop is None:
            continue
        grey, x0, y0 = crop
        yy, xx = np.mgrid[0 : grey.shape[0], 0 : grey.shape[1]] + 0.5  # pixel centres, crop coordinates
        opening = _opening(p[list(topology.lid_ring(eye))] - (x0, y0), grey.shape, 1) > 0
        inside = opening & (np.hypot(xx - (c[0] - x0), yy - (c[1] - y0)) < REFLEX_SEARCH * r)
        if np.count_nonzero(inside) < 5:
            continue
        base = float(np.median(grey[inside]))
        k = int(np.argmax(np.where(inside, grey, -np.inf)))
        peak = float(grey.flat[k])
        rise = peak - base
        if rise < REFLEX_MIN_CONTRAST:
            continue
        d = np.hypot(xx - xx.flat[k], yy - yy.flat[k])
        spot = max(REFLEX_SPOT * r, REFLEX_SPOT_MIN_PX)
        ring = opening & (d > spot) & (d < spot + max(REFLEX_RING * r, REFLEX_RING_MIN_PX))
        ky, kx = divmod(k, grey.shape[1])
        if (np.count_nonzero(ring) < 3 or peak - float(np.percentile(grey[ring], 90)) < REFLEX_MIN_ISOLATION * rise
                or not (0 < kx < grey.shape[1] - 1 and 0 < ky < grey.shape[0] - 1)):
            continue
        around = float(np.median(grey[ring]))
        # A Gaussian through the brightest pixel and its neighbours, along x and along y.
        lv = np.log(np.maximum(grey[ky - 1 : ky + 2, kx - 1 : kx + 2] - around, 1e-3))
        out[eye] = (x0 + kx + 0.5 + geometry.parabola_peak(*lv[1]), y0 + ky + 0.5 + geometry.parabola_peak(*lv[:, 1]))
    return out
