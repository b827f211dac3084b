"""3D fitting: single-step solvers and the one driver, ``fit_track``.

Each solver takes arrays and returns arrays; ``fit_track`` chains them for one face track:
rigid pose -> neutral face (identity) -> expression -> eyeballs and gaze -> eyelids -> temporal filter.
"""
from __future__ import annotations

import numpy as np

from . import geometry, topology
from .landmarks import MAX_TRACK_GAP
from .template import Template, canthi_mid, expression_features
from .types import FaceFit, Identity, Pose, Track

# Share of frames, the most neutral-looking, whose median is the subject's neutral face.
NEUTRAL_SHARE = 0.2
# A neutral whose expression cues lie this many identity spreads from the identities' mean still
# shows an expression (template.expression_features order: mouth width, opening, corner lift, brows).
NEUTRAL_Z = 2.0
# (cues, vertices whose mean is the region's centre, full-weight radius mm, outer radius mm) of each
# expressive region.
EXPRESSIVE_REGIONS = (
    ((0, 1, 2), topology.INNER_LIPS, 30.0, 50.0),
    ((3,), topology.BROWS[0], 20.0, 35.0),
    ((3,), topology.BROWS[1], 20.0, 35.0),
)
# An eye is taken as closed (iris unreliable, gaze held) below this lid opening / eye width.
CLOSED_OPENING = 0.12
# Temporal bilateral filter: half-width (frames), time sigma (frames), value sigma (noise units).
FILTER_HALF_WIDTH = 2
FILTER_SIGMA_T = 1.0
FILTER_SIGMA_V = 2.5
FILTER_BLOCK = 64  # channels filtered at once
FRONTAL = np.diag([1.0, -1.0, -1.0])
# An eye turns about 50 degrees at most from the primary position; a fit beyond 60 comes from an iris
# landmark near the rim of the model eyeball's silhouette, where a pixel of noise is tens of degrees.
MAX_ECCENTRICITY_DEG = 60.0  # head space -> image space for a face looking at the camera


class FitError(ValueError):
    pass


# --- single-step solvers ----------------------------------------------------------------------


def fit_pose(points: np.ndarray, reference: np.ndarray) -> Pose:
    """Rigid head pose per frame on the points that expressions barely move.

    points : (f, 478, 3) image space; reference : (478, 3) head space.
    Umeyama similarity fit per frame (see geometry.similarity_fit).
    """
    idx = list(topology.STABLE)
    scale, rot, t = geometry.similarity_fit_batch(reference[idx], points[:, idx].astype(np.float64))
    return Pose(scale=scale, rotation=rot, translation=t)


def to_head(points: np.ndarray, pose: Pose) -> np.ndarray:
    """(f, n, 3) image space -> head space of the template's size."""
    return geometry.invert_pose(points.astype(np.float64), pose.scale, pose.rotation, pose.translation)


def estimate_neutral(shapes: np.ndarray, template: Template) -> np.ndarray:
    """The subject's neutral face: median of the frames whose expression cues are closest to the
    identities' average (a clip median would give a smiling 'neutral' for a clip that smiles).

    shapes : (f, 478, 3) head space. Returns (478, 3).
    """
    z = _feature_z(shapes, template)
    score = np.linalg.norm(z, axis=1)
    k = max(1, min(len(shapes), int(np.ceil(NEUTRAL_SHARE * len(shapes)))))
    chosen = np.argsort(score)[:k]
    return relax_expressive_regions(np.median(shapes[chosen], axis=0), template)


def _feature_z(shapes: np.ndarray, template: Template) -> np.ndarray:
    """Expression cues in units of their spread across identities, (..., F)."""
    return (expression_features(shapes) - template.feature_mean) / np.maximum(template.feature_std, 1e-6)


def relax_expressive_regions(neutral: np.ndarray, template: Template) -> np.ndarray:
    """Pull the mouth or brow region of a 'neutral' that is still expressive toward the template's.

    When no frame of a clip is neutral (a photo of a smile, a clip with the mouth always open), its
    most neutral frames still carry the expression, which would then be lost from the mask. A region
    whose cues lie beyond NEUTRAL_Z identity spreads is blended toward the template (aligned on the
    stable points), fully one spread further, with a weight falling off away from the region.
    neutral (478, 3) head space. Returns (478, 3).
    """
    z = np.abs(_feature_z(neutral, template))
    out = neutral
    for cues, centre, inner, outer in EXPRESSIVE_REGIONS:
        alpha = float(np.clip(z[list(cues)].max() - NEUTRAL_Z, 0.0, 1.0))
        if alpha == 0.0:
            continue
        idx = list(topology.STABLE)
        s, rot, t = geometry.similarity_fit(template.vertices[idx], out[idx])
        aligned = s * template.vertices @ rot.T + t
        middle = template.vertices[list(centre)].mean(axis=0)
        dist = np.linalg.norm(template.vertices - middle, axis=1)
        w = alpha * np.clip((outer - dist) / (outer - inner), 0.0, 1.0)
        out = out + w[:, None] * (aligned - out)
    return out


def iris_diameter(shapes: np.ndarray) -> np.ndarray:
    """(f, 478, 3) -> (f,) mean diameter of both irises, from the two diameters of each ring."""
    d = [
        np.linalg.norm(shapes[:, r[0]] - shapes[:, r[2]], axis=-1) + np.linalg.norm(shapes[:, r[1]] - shapes[:, r[3]], axis=-1)
        for r in topology.IRIS_RING
    ]
    return (d[0] + d[1]) / 4


def lid_opening(shapes: np.ndarray) -> np.ndarray:
    """(f, 478, 3) -> (f, 2) mid-lid distance over corner distance, per eye."""
    gap = np.linalg.norm(shapes[:, list(topology.MID_UPPER)] - shapes[:, list(topology.MID_LOWER)], axis=-1)
    width = np.linalg.norm(shapes[:, list(topology.OUTER_CORNER)] - shapes[:, list(topology.INNER_CORNER)], axis=-1)
    return gap / np.maximum(width, 1e-9)


def eyeball_centres(shapes_mm: np.ndarray, template: Template) -> np.ndarray:
    """Eyeball centres in head space (mm), per video: behind the primary-gaze iris position that the
    template places relative to the eye corners, one eyeball radius deep.

    Anchored on the eye corners, not on the iris, so that an eye that deviates in every frame
    (strabismus) keeps its deviation. shapes_mm : (f, 478, 3). Returns (2, 3).
    """
    back = np.array([0.0, 0.0, topology.EYEBALL_RADIUS_MM])
    return np.median(canthi_mid(shapes_mm), axis=0) + template.iris_offset() - back


def fit_gaze(points: np.ndarray, pose: Pose, centres: np.ndarray, radius: float) -> np.ndarray:
    """Gaze per eye per frame from the iris centre on a sphere eyeball.

    The iris centre seen in the image is put on the camera-facing side of the eyeball sphere
    (orthographic view, as MediaPipe's coordinates are); the direction from the centre to it,
    rotated back into head space, is the gaze. Eyes are independent.
    points : (f, 478, 3) image; centres : (2, 3) head space in the pose's units; radius likewise.
    Returns (f, 2, 2) yaw, pitch degrees.
    """
    c_img = geometry.apply_pose(centres, pose.scale, pose.rotation, pose.translation)  # (f, 2, 3)
    r_img = pose.scale * radius
    iris = points[:, list(topology.IRIS_CENTRE), :2].astype(np.float64)
    front = geometry.sphere_front_point(c_img, r_img[:, None], iris)
    g_img = (front - c_img) / r_img[:, None, None]
    g_head = np.einsum("fji,fej->fei", pose.rotation, g_img)
    return geometry.gaze_angles(limit_eccentricity(g_head, MAX_ECCENTRICITY_DEG))


def limit_eccentricity(g: np.ndarray, max_deg: float) -> np.ndarray:
    """Unit directions (..., 3) turned back, in their own plane, to at most max_deg from +z."""
    limit = np.radians(max_deg)
    ecc = np.arccos(np.clip(g[..., 2], -1.0, 1.0))
    side = g[..., :2] / np.maximum(np.linalg.norm(g[..., :2], axis=-1, keepdims=True), 1e-12)
    clamped = np.concatenate([side * np.sin(limit), np.full(g.shape[:-1] + (1,), np.cos(limit))], axis=-1)
    return np.where((ecc > limit)[..., None], clamped, g)


def fit_lids(shapes_mm: np.ndarray) -> np.ndarray:
    """Absolute lid-margin heights: head-space y of each lid point above its eye's corner midpoint.

    shapes_mm : (f, 478, 3) in true mm. Returns (f, 2, K) mm. Absolute, not relative to the subject's
    neutral, so a lid that droops in every frame (ptosis) still droops on the mask.
    """
    mid = canthi_mid(shapes_mm)[..., 1]  # (f, 2)
    return np.stack([shapes_mm[:, list(topology.LID_POINTS[e]), 1] - mid[:, e, None] for e in range(2)], axis=1)


def hold_closed_gaze(gaze: np.ndarray, opening: np.ndarray) -> np.ndarray:
    """Replace the gaze of a closed eye (the iris is hidden, its landmarks guessed) by the nearest
    open-eye value in time. gaze (f, 2, 2); opening (f, 2)."""
    out = gaze.copy()
    for e in range(2):
        ok = opening[:, e] >= CLOSED_OPENING
        if ok.any() and not ok.all():
            idx = np.arange(len(ok))
            for k in range(2):
                out[~ok, e, k] = np.interp(idx[~ok], idx[ok], gaze[ok, e, k])
    return out


def untie_corners_from_gaze(expression: np.ndarray, gaze: np.ndarray) -> np.ndarray:
    """Remove from the lid-ring vertices the sideways motion that follows each eye's horizontal gaze.

    The eye corners are tethered to the orbit by the canthal tendons, yet MediaPipe's refined eye
    contour drifts toward the iris as the eye turns. Left in, that drift would be drawn on the mask
    and read again on top of the new drift when the mask is measured, shrinking eye movements.
    Least squares per vertex: x-displacement = a + b * sin(yaw); the b part is removed.
    expression (f, 468, 3); gaze (f, 2, 2) degrees. Returns a corrected copy.
    """
    out = expression.copy()
    for e in range(2):
        ring = list(topology.lid_ring(e))
        u = np.sin(np.radians(gaze[:, e, 0]))
        u = u - u.mean()
        if u @ u > 1e-9:
            x = out[:, ring, 0]
            b = u @ (x - x.mean(axis=0)) / (u @ u)
            out[:, ring, 0] = x - np.outer(u, b)
    return out


# Savitzky-Golay weights of a 5-frame quadratic fit: what it leaves of a signal is its jitter.
_SG5 = np.array([-3.0, 12.0, 17.0, 12.0, -3.0]) / 35.0


def jitter(flat: np.ndarray) -> np.ndarray:
    """Robust jitter (noise sigma) of each channel of (f, c) signals: the median absolute residual of
    a local quadratic fit (Savitzky and Golay 1964), scaled to a Gaussian sigma. Smooth motion, even a
    3 Hz nystagmus at 30 fps, leaves almost no residual, so it is not mistaken for noise."""
    pad = np.pad(flat, ((2, 2), (0, 0)), mode="edge")
    smooth = sum(w * pad[k : k + len(flat)] for k, w in enumerate(_SG5))
    r = (flat - smooth)[2:-2]
    return 1.4826 * np.median(np.abs(r - np.median(r, axis=0)), axis=0) / np.sqrt(1.0 - _SG5[2])


def bilateral_filter(x: np.ndarray) -> np.ndarray:
    """Edge-preserving temporal filter along axis 0, for each channel.

    Tomasi & Manduchi's bilateral filter applied in time: neighbours within FILTER_HALF_WIDTH frames
    are averaged with weights that fall with time distance and with value difference measured in
    units of the channel's own jitter. Landmark jitter is smoothed; saccades, nystagmus beats and
    blinks, many jitter units large, pass unchanged, so a 3-frame blink survives.
    x : (f, ...) float. Returns the same shape.
    """
    f = x.shape[0]
    if f < 5:
        return x.copy()
    flat = x.reshape(f, -1)
    out = np.empty_like(flat)
    # Channels are independent: filter them in blocks so the temporaries stay small on long videos.
    for c in range(0, flat.shape[1], FILTER_BLOCK):
        block = flat[:, c : c + FILTER_BLOCK]
        sigma_v = FILTER_SIGMA_V * np.maximum(jitter(block), 1e-9)
        pad = np.pad(block, ((FILTER_HALF_WIDTH, FILTER_HALF_WIDTH), (0, 0)), mode="edge")
        num = np.zeros_like(block)
        den = np.zeros_like(block)
        for k in range(-FILTER_HALF_WIDTH, FILTER_HALF_WIDTH + 1):
            nb = pad[FILTER_HALF_WIDTH + k : FILTER_HALF_WIDTH + k + f]
            w = np.exp(-0.5 * (k / FILTER_SIGMA_T) ** 2 - 0.5 * ((nb - block) / sigma_v) ** 2)
            num += w * nb
            den += w
        out[:, c : c + FILTER_BLOCK] = num / den
    return out.reshape(x.shape)


def smooth_pose(pose: Pose) -> Pose:
    """Bilateral-filter log-scale, rotation (relative to frontal, away from the angle wrap) and translation."""
    rel = geometry.rotation_to_vector(pose.rotation @ FRONTAL)
    rot = geometry.vector_to_rotation(bilateral_filter(rel)) @ FRONTAL
    return Pose(
        scale=np.exp(bilateral_filter(np.log(pose.scale))),
        rotation=rot,
        translation=bilateral_filter(pose.translation),
    )


def fill_missing(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Expand (k, ...) values of the observed frames to (n, ...): each missing frame holds the last
    observed value (the first observed one before the face appears)."""
    idx = np.maximum.accumulate(np.where(observed, np.arange(len(observed)), -1))
    first = np.argmax(observed)
    src = np.where(idx < 0, first, idx)
    rank = np.cumsum(observed) - 1
    return values[rank[src]]


# --- driver -------------------------------------------------------------------------------------


def fit_track(track: Track, template: Template, primary: bool = True) -> tuple[FaceFit, Identity]:
    """Fit pose, identity, expression, eyes and lids to one face track.

    Returns the per-frame mask parameters and, separately, the per-video identity (which callers
    must not write anywhere). A primary track is drawn in every frame, holding its last good state
    where the face was lost; another track only where it was seen (short gaps bridged).
    """
    observed = track.present
    if not observed.any():
        raise FitError("the face track is empty")
    pts = track.points[observed].astype(np.float64)  # (k, 478, 3)

    # Rigid pose against the template, then again against the subject's own neutral face.
    pose = fit_pose(pts, template.vertices)
    neutral = estimate_neutral(to_head(pts, pose), template)
    pose = fit_pose(pts, neutral)
    # Keep the head-space scale of the template: a similarity fit to the neutral leaves the
    # neutral's size, which was already template-sized.
    shapes = to_head(pts, pose)
    neutral = estimate_neutral(shapes, template)
    mm_per_unit = topology.IRIS_DIAMETER_MM / float(np.median(iris_diameter(shapes)))
    shapes_mm = shapes * mm_per_unit

    expression = shapes[:, : topology.N_MESH] - neutral[: topology.N_MESH]
    centres_mm = eyeball_centres(shapes_mm, template)
    gaze = fit_gaze(pts, pose, centres_mm / mm_per_unit, topology.EYEBALL_RADIUS_MM / mm_per_unit)
    gaze = hold_closed_gaze(gaze, lid_opening(shapes))
    lids = fit_lids(shapes_mm)
    expression = untie_corners_from_gaze(expression, gaze)

    pose = smooth_pose(pose)
    expression = bilateral_filter(expression)
    gaze = bilateral_filter(gaze)
    lids = bilateral_filter(lids)

    n = track.n_frames
    if primary:
        visible = np.ones(n, bool)
    else:
        # Bridge short gaps inside the span where the face was seen.
        seen = np.flatnonzero(observed)
        visible = np.zeros(n, bool)
        visible[seen[0] : seen[-1] + 1] = True
        last = np.maximum.accumulate(np.where(observed, np.arange(n), -1))
        nxt = np.minimum.accumulate(np.where(observed, np.arange(n), n)[::-1])[::-1]
        visible &= observed | (nxt - last <= MAX_TRACK_GAP)
    fit = FaceFit(
        pose=Pose(
            scale=fill_missing(pose.scale, observed),
            rotation=fill_missing(pose.rotation, observed),
            translation=fill_missing(pose.translation, observed),
        ),
        expression=fill_missing(expression.astype(np.float32), observed),
        gaze=fill_missing(gaze, observed),
        lids=fill_missing(lids, observed),
        observed=observed.copy(),
        visible=visible,
    )
    return fit, Identity(neutral=neutral, mm_per_unit=mm_per_unit)
