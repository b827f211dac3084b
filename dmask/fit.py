"""3D fitting: single-step solvers and the one driver, ``fit_track``.

Each solver takes arrays and returns arrays; ``fit_track`` chains them for one face track:
rigid pose -> neutral face (identity) -> expression -> eyeballs and gaze -> eyelids -> temporal filter.
"""
from __future__ import annotations

import numpy as np

from . import geometry, topology
from .landmarks import MAX_TRACK_GAP
from .store import CHUNK_FRAMES, FrameStore
from .template import PITCH_FOLLOWING_RANGE_DEG, Template, canthi_mid, expression_features
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
# The head pose goes through the same filter over a wider window (about 0.2 s at 30 fps either side):
# MediaPipe's whole mesh follows fast eye movements by 15-25 % of the iris's travel (the pendular
# synthetic clip: nose points 0.3-0.45, the pose's points 0.15-0.23; still eyes 0.06), so a pose read
# frame by frame follows a nystagmus beat and takes that much off the gaze against the head. That
# following is a fraction of a jitter unit on real video (pose jitter 0.13-0.33 mm, 0.13-0.48 deg on
# four of the dataset's videos), where the window's time weights alone leave 17 % of a 3 Hz motion; on
# the clean synthetic clips (a tenth of that jitter) about half of it goes. Head movements many jitter
# units large still pass.
POSE_FILTER_HALF_WIDTH = 6
POSE_FILTER_SIGMA_T = 3.0
# The jitter that scales the pose filter's value weights is taken as at least this much rotation
# (degrees) and translation (mm of the template's size): about the least that the dataset's steadiest
# real videos show (blink_selfie: 0.05-0.08 deg, 0.05-0.09 mm; lp_d0_gaze's roll 0.04 deg). On cleaner
# video the mesh's following of a nystagmus beat (on the synthetic clips up to 0.12 deg and 0.05 mm
# peak to peak, where the jitter is 0.01-0.06) would otherwise pass as head motion: the pendular clip's
# amplitude read 23-25 % short, 12-17 % with the floor.
POSE_MIN_JITTER_DEG = 0.05
POSE_MIN_JITTER_MM = 0.05
# On long videos the neutral face and the landmark jitter come from at most this many frames, spread
# over the video, so that memory does not grow with the video's length.
MAX_STAT_FRAMES = 1000
# An eye turns about 50 degrees at most from the primary position; a fit beyond 60 comes from an iris
# landmark near the rim of the model eyeball's silhouette, where a pixel of noise is tens of degrees.
MAX_ECCENTRICITY_DEG = 60.0
# The iris's width sets the mm scale; it is read where it is seen least foreshortened: frames whose
# eyes both turn less than this from the camera (cos 12 deg = 0.98), or at least this share of frames.
FACING_CAMERA_DEG = 12.0
FACING_CAMERA_SHARE = 0.2
# The corneal reflex of a light at the camera anchors an eyeball (``reflex_centres``) when it is seen
# in at least this share of the frames with that eye open (and at least REFLEX_MIN_FRAMES), and its
# anchor lies within REFLEX_MAX_SHIFT_MM of the corners' (farther: the light is not at the camera);
# side to side and up and down each on its own. The height only from frames whose upper lid stands
# at least REFLEX_MIN_MRD1_MM above the iris centre, the drawn reflex's radius: a lid lower runs over the
# reflex and leaves less than half the limbus to read the iris by. (0.8 mm while the lids were read
# about 0.3 mm high over the iris; at 3 mm, the earlier limit, a drooping eye's
# height stayed on its corners, which MediaPipe reads moved with the low lid: pitch 2.1 and 2.6 deg off
# on the synthetic clips with ptosis, 0.7 and 1.9 with the reflex.) Frame by frame the anchor follows the
# running median over REFLEX_WINDOW frames (long enough to hold still through a nystagmus beat) of the
# frames whose anchor lies within REFLEX_FRAME_SPREAD_MM of the video's.
REFLEX_MIN_SHARE = 0.2
REFLEX_MIN_FRAMES = 10
REFLEX_MAX_SHIFT_MM = 2.0
REFLEX_MIN_MRD1_MM = 0.5
REFLEX_WINDOW = 31  # frames (about a second at 30 fps)
REFLEX_FRAME_SPREAD_MM = 1.5
# Each iris centre is re-fitted to the limbus edge points the landmark stage kept (``limbus_iris``) as
# the limbus of the eyeball model; a re-fit that moves it farther than this is not taken.
LIMBUS_MAX_MOVE_MM = 1.0
# The lids hide the limbus's top and bottom, so the fit places the iris's height by how the arcs beside
# it curve, and a radius 1 % off moves it 0.1-0.3 px (a limbus too small sits where its arcs are as far
# apart as the points'): the size of the limbus in the image is the one that fits the video's edge
# points best (``limbus_size``), searched in steps of LIMBUS_SIZE_STEP within LIMBUS_SIZE_RANGE of the
# scale from MediaPipe's iris (on the synthetic clips 0.2-3.6 % small), on up to LIMBUS_SIZE_FRAMES frames;
# it is then the video's scale, of every length measured (``fit_track``).
LIMBUS_SIZE_RANGE = (0.94, 1.06)
LIMBUS_SIZE_STEP = 0.01
LIMBUS_SIZE_FRAMES = 300
# Edge points nearer than this many iris radii to the lid margin (the landmarks' lid ring) are left out
# of the limbus fit: there the lid's edge and shadow pull the grey step inward. On the 22 synthetic
# clips (all frames, both eyes, against the drawn limbus; medians): 0.40 px inside within 0.1 radii of
# the ring, 0.25 at 0.1-0.15, 0.12 at 0.15-0.2, 0.05 at 0.2-0.25, 0.01 at 0.25-0.3, none beyond;
# points clear of the lids read true whatever their height beside the iris (at 30-45 and 45-60 degrees
# above or below its centre 0.01 px either way), so the points above and below it that carry an up and
# down movement are kept where the lids leave them clear. (Before, points more than 50 degrees above or
# below the centre were left out: the iris of an eye looking up under its lid still leaned on points
# near the lid at 15-30 degrees, 0.55 px inside, and lost a fifth of a vertical nystagmus.)
LIMBUS_LID_CLEARANCE = 0.25


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


def neutral_frames(z: np.ndarray, limit: int) -> np.ndarray:
    """The frames whose expression cues (``_feature_z``, (f, F)) are closest to the identities'
    average: the NEUTRAL_SHARE most neutral ones, at most ``limit`` of them spread over the video.
    Their median is the subject's neutral face (a clip median would give a smiling 'neutral' for a
    clip that smiles). Returns sorted frame indices."""
    score = np.linalg.norm(z, axis=1)
    k = max(1, min(len(z), int(np.ceil(NEUTRAL_SHARE * len(z)))))
    chosen = np.sort(np.argsort(score)[:k])
    if k > limit:
        chosen = chosen[np.linspace(0, k - 1, limit).round().astype(int)]
    return chosen


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


def eyeball_centres(canthi_mm: np.ndarray, template: Template) -> np.ndarray:
    """Eyeball centres in head space (mm), per video: behind the primary-gaze iris position that the
    template places relative to the eye corners, one eyeball radius deep.

    Anchored on the eye corners, not on the iris, so that an eye that deviates in every frame
    (strabismus) keeps its deviation. canthi_mm : (f, 2, 3) eye-corner midpoints
    (``template.canthi_mid``) in mm. Returns (2, 3).
    """
    back = np.array([0.0, 0.0, topology.EYEBALL_RADIUS_MM])
    return np.median(canthi_mm, axis=0) + template.iris_offset() - back


def reflex_centres(centres: np.ndarray, iris: np.ndarray, reflexes: np.ndarray, pose: Pose,
                   opened: np.ndarray, mrd1_mm: np.ndarray, mm_per_unit: float) -> np.ndarray:
    """Each frame's eyeball centres (f, 2, 3), placed by the corneal reflex where it is seen.

    A light at the camera is reflected over the cornea's centre of curvature, CORNEA_OFFSET_MM in front
    of the eyeball centre along the gaze, while the visible iris centre lies LIMBUS_DEPTH_MM in front
    of it: in the image, centre = reflex - k (iris - reflex), k = CORNEA / (LIMBUS - CORNEA), whatever
    the gaze and the head pose. Each frame's centre is taken into head space at the depth of the
    corners' centre. Its x (side to side) and its y (height) each replace the corners' when enough
    frames show the reflex and their median lies within REFLEX_MAX_SHIFT_MM (a light away from the
    camera moves the reflex, and k doubles that); the height counts only frames with the upper lid
    REFLEX_MIN_MRD1_MM or more above the iris centre (a lid over the iris centre covers the reflex and
    most of the limbus). The centre then follows, frame by frame, the running median
    of those frames' centres over REFLEX_WINDOW frames (interpolated between them): the head pose is
    read a little differently from frame to frame, most in a moving head, and a centre fixed in the
    head would wander in the image by as much. Frames whose centre lies more than
    REFLEX_FRAME_SPREAD_MM from the median are not followed (another light's reflex, glare).
    centres : (2, 3) from the corners, head space in the pose's units; iris, reflexes : (f, 2, 2)
    image (NaN where no reflex); opened : (f, 2) bool eye open; mrd1_mm : (f, 2) upper lid over the
    iris centre. Returns (f, 2, 3).
    """
    k = topology.CORNEA_OFFSET_MM / (topology.LIMBUS_DEPTH_MM - topology.CORNEA_OFFSET_MM)
    seen = opened & np.isfinite(reflexes).all(axis=-1)  # (f, 2)
    image = geometry.apply_pose(centres, pose.scale, pose.rotation, pose.translation)  # (f, 2, 3)
    image[..., :2] = reflexes - k * (iris - reflexes)
    anchors = geometry.invert_pose(image, pose.scale, pose.rotation, pose.translation)  # (f, 2, 3)
    out = np.repeat(centres[None], len(iris), axis=0)
    for e in range(2):
        enough = max(REFLEX_MIN_FRAMES, REFLEX_MIN_SHARE * np.count_nonzero(opened[:, e]))
        for axis, rows in ((0, seen[:, e]), (1, seen[:, e] & (mrd1_mm[:, e] >= REFLEX_MIN_MRD1_MM))):
            if np.count_nonzero(rows) < enough:
                continue
            value = float(np.median(anchors[rows, e, axis]))
            if abs(value - centres[e, axis]) * mm_per_unit <= REFLEX_MAX_SHIFT_MM:
                near = rows & (np.abs(anchors[:, e, axis] - value) * mm_per_unit <= REFLEX_FRAME_SPREAD_MM)
                out[:, e, axis] = running_median(anchors[:, e, axis], near, REFLEX_WINDOW)
    return out


def running_median(values: np.ndarray, rows: np.ndarray, window: int) -> np.ndarray:
    """(f,) median of values[rows] within window // 2 frames of each frame; where fewer than a third of
    the window are rows, interpolated from the frames around (held at the ends). rows : (f,) bool,
    with at least one True."""
    half = window // 2
    x = np.pad(np.where(rows, values, np.nan), half, constant_values=np.nan)
    win = np.lib.stride_tricks.sliding_window_view(x, 2 * half + 1)  # (f, window)
    ok = np.isfinite(win).sum(axis=1) >= max(1, window // 3)
    if not ok.any():
        return np.full(len(values), float(np.median(values[rows])))
    frames = np.arange(len(values))
    return np.interp(frames, frames[ok], np.nanmedian(win[ok], axis=1))


def fit_gaze(iris: np.ndarray, pose: Pose, centres: np.ndarray, radius: float) -> np.ndarray:
    """Gaze per eye per frame from the iris centre on a sphere eyeball.

    The iris centre seen in the image is put on the camera-facing side of a sphere about the eyeball
    centre (orthographic view, as MediaPipe's coordinates are); the direction from the centre to it,
    rotated back into head space, is the gaze. Eyes are independent. The radius is that of the
    limbus plane (``topology.LIMBUS_DEPTH_MM``): the visible iris's centre, not the cornea's front.
    iris : (f, 2, 2) image-space iris centres (x, y); centres : (2, 3) or per frame (f, 2, 3), head
    space in the pose's units; radius likewise. Returns (f, 2, 2) yaw, pitch degrees.
    """
    front = geometry.invert_pose(iris_on_eyeball(iris, pose, centres, radius), pose.scale, pose.rotation,
                                 pose.translation)
    g_head = (front - centres) / radius
    return geometry.gaze_angles(limit_eccentricity(g_head, MAX_ECCENTRICITY_DEG))


def iris_on_eyeball(iris: np.ndarray, pose: Pose, centres: np.ndarray, radius: float) -> np.ndarray:
    """Image iris centres (f, 2, 2) put at their depth on the eyeball: the point of the sphere of
    ``radius`` about the eyeball centre ((2, 3) or (f, 2, 3), head space, the pose's units) on the
    camera's side whose image they are. Returns (f, 2, 3) image space."""
    c_img = geometry.apply_pose(centres, pose.scale, pose.rotation, pose.translation)
    return geometry.sphere_front_point(c_img, (pose.scale * radius)[:, None], iris)


def limbus_iris(limbus, frames: np.ndarray, iris: np.ndarray, lid_distance: np.ndarray, centres: np.ndarray,
                pose: Pose, mm_per_unit: float) -> np.ndarray:
    """Iris centres (f, 2, 2) re-fitted to each eye's limbus edge points as the limbus of its eyeball
    (``geometry.limbus_centres``): a circle of the iris's size on the limbus plane, whose image
    narrows along the eye's turn from the camera. The circle the landmark stage fitted to the same
    points has a free radius: where a lid hides the top (or bottom) of the limbus it trades size for
    height, and an eye turned from the camera shows a narrower limbus, which it takes for a smaller
    circle further down (on the synthetic clips 0.4-0.8 px, 0.2-0.4 mm, where the model fit leaves
    0.4 px at most). Frames without points, or whose re-fit moves farther than LIMBUS_MAX_MOVE_MM,
    keep the landmark stage's centre.
    limbus : (n, 2, m, 2) image pixels, NaN-padded (Track.limbus), or None; frames : (f,) the rows of
    limbus; iris : (f, 2, 2) image; lid_distance : (f, 2, m) px, the points' distance to the lids
    (``lid_distances``); centres : (2, 3) or (f, 2, 3) eyeballs, head space.
    """
    if limbus is None:
        return iris
    eyeballs = geometry.apply_pose(centres, pose.scale, pose.rotation, pose.translation)[..., :2]  # (f, 2, 2)
    px_per_mm = pose.scale / mm_per_unit
    out = iris.copy()
    for a in range(0, len(frames), CHUNK_FRAMES):
        b = min(a + CHUNK_FRAMES, len(frames))
        points = clear_of_lids(limbus[frames[a:b]], lid_distance[a:b], px_per_mm[a:b] * topology.IRIS_DIAMETER_MM / 2)
        for e in range(2):
            fitted = geometry.limbus_centres(points[:, e], iris[a:b, e], eyeballs[a:b, e],
                                             px_per_mm[a:b] * topology.LIMBUS_DEPTH_MM,
                                             px_per_mm[a:b] * topology.IRIS_DIAMETER_MM / 2)
            moved = np.linalg.norm(fitted - iris[a:b, e], axis=-1)
            take = np.isfinite(moved) & (moved <= LIMBUS_MAX_MOVE_MM * px_per_mm[a:b])
            out[a:b, e][take] = fitted[take]
    return out


def lid_distances(points, lids: np.ndarray) -> np.ndarray:
    """(f, 2, m) float32 distance (px) of each limbus edge point (f, 2, m, 2, NaN-padded) to its eye's
    lid ring (lids (f, 2, k, 2) image, ``topology.lid_ring``); NaN where there is no point."""
    points = np.asarray(points, np.float64)
    return np.stack([geometry.ring_distance(points[:, e], lids[:, e]) for e in range(2)], axis=1).astype(np.float32)


def clear_of_lids(points, lid_distance: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Limbus edge points (f, 2, m, 2), float64, with those nearer than LIMBUS_LID_CLEARANCE iris radii
    (radius (f,) px) to their eye's lid ring (lid_distance (f, 2, m), ``lid_distances``) NaN."""
    keep = lid_distance >= LIMBUS_LID_CLEARANCE * radius[:, None, None]
    return np.where(keep[..., None], np.asarray(points, np.float64), np.nan)


def limbus_scale(limbus, frames: np.ndarray, iris: np.ndarray, lid_distance: np.ndarray, centres: np.ndarray,
                 pose: Pose, mm_per_unit: float) -> float:
    """The factor on the image scale that the limbus edge points of up to LIMBUS_SIZE_FRAMES of the
    frames, evenly spread, fit best (``limbus_size``); arguments as ``limbus_iris`` (limbus not None). 1.0
    without enough points."""
    rows = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), LIMBUS_SIZE_FRAMES)).round().astype(int))
    eyeballs = geometry.apply_pose(centres if np.ndim(centres) == 2 else centres[rows], pose.scale[rows],
                                   pose.rotation[rows], pose.translation[rows])[..., :2]
    px_per_mm = pose.scale[rows] / mm_per_unit
    points = clear_of_lids(limbus[frames[rows]], lid_distance[rows], px_per_mm * topology.IRIS_DIAMETER_MM / 2)
    return limbus_size(points, iris[rows], eyeballs, px_per_mm)


def limbus_size(points: np.ndarray, iris: np.ndarray, eyeballs: np.ndarray, px_per_mm: np.ndarray) -> float:
    """The factor on the image scale (px per mm) whose limbus fits these frames' edge points best: the
    median over frames of each frame's rms distance to its re-fitted limbus (both eyes), least on a grid
    of LIMBUS_SIZE_STEP over LIMBUS_SIZE_RANGE, refined by a parabola. 1.0 without enough points.
    points : (f, 2, m, 2); iris, eyeballs : (f, 2, 2) image; px_per_mm : (f,)."""
    factors = np.arange(LIMBUS_SIZE_RANGE[0], LIMBUS_SIZE_RANGE[1] + 1e-9, LIMBUS_SIZE_STEP)
    cost = np.full(len(factors), np.inf)
    for i, factor in enumerate(factors):
        depth = factor * px_per_mm * topology.LIMBUS_DEPTH_MM
        radius = factor * px_per_mm * topology.IRIS_DIAMETER_MM / 2
        rms = []
        for e in range(2):
            fitted = geometry.limbus_centres(points[:, e], iris[:, e], eyeballs[:, e], depth, radius)
            seen = np.isfinite(fitted).all(axis=1)
            d = geometry.limbus_distance(points[seen, e], fitted[seen], eyeballs[seen, e], depth[seen], radius[seen])
            rms.append(np.sqrt(np.nanmean(d**2, axis=1)))
        rms = np.concatenate(rms)
        if len(rms) >= 3:
            cost[i] = float(np.median(rms))
    best = int(np.argmin(cost))
    if not np.isfinite(cost[best]):
        return 1.0
    if 0 < best < len(factors) - 1:
        return float(factors[best] + geometry.parabola_peak(-cost[best - 1], -cost[best], -cost[best + 1])
                     * LIMBUS_SIZE_STEP)
    return float(factors[best])


def facing_camera(gaze: np.ndarray, pose: Pose) -> np.ndarray:
    """(f, 2, 2) gaze degrees -> (f,) bool: the frames whose eyes turn least from the camera (both
    within FACING_CAMERA_DEG, or else the FACING_CAMERA_SHARE least turned)."""
    g_img = np.einsum("fij,fej->fei", pose.rotation, geometry.gaze_vector(gaze))
    turn = np.degrees(np.arccos(np.clip(-g_img[..., 2], -1.0, 1.0))).max(axis=1)
    chosen = turn <= FACING_CAMERA_DEG
    if chosen.sum() < FACING_CAMERA_SHARE * len(turn):
        chosen = turn <= np.quantile(turn, FACING_CAMERA_SHARE)
    return chosen


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


def corner_drift(ring_x: list[np.ndarray], gaze: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The sideways motion of each eye's lid ring that follows its horizontal gaze.

    The eye corners are tethered to the orbit by the canthal tendons, yet MediaPipe's refined eye
    contour drifts toward the iris as the eye turns. Left in, that drift would be drawn on the mask
    and read again on top of the new drift when the mask is measured, shrinking eye movements.
    Least squares per vertex: x-displacement = a + b * u, u = sin(yaw) centred on its mean.
    ring_x : per eye (f, R) expression x of ``topology.lid_ring(e)``; gaze (f, 2, 2) degrees.
    Returns per eye (u (f,), b (R,)); ``untie_corners`` removes u * b.
    """
    out = []
    for e, x in enumerate(ring_x):
        u = np.sin(np.radians(gaze[:, e, 0]))
        u = u - u.mean()
        b = u @ (x - x.mean(axis=0)) / (u @ u) if u @ u > 1e-9 else np.zeros(x.shape[1])
        out.append((u, b))
    return out


def untie_corners(expression: np.ndarray, drift, start: int = 0) -> None:
    """Remove ``corner_drift`` in place from expression rows (m, 468, 3) of frames start..start+m."""
    for e, (u, b) in enumerate(drift):
        ring = list(topology.lid_ring(e))
        expression[:, ring, 0] -= np.outer(u[start : start + len(expression)], b)


# Savitzky-Golay weights of a 5-frame quadratic fit: what it leaves of a signal is its jitter.
_SG5 = np.array([-3.0, 12.0, 17.0, 12.0, -3.0]) / 35.0


def sg_residual(padded: np.ndarray) -> np.ndarray:
    """(f + 4, c) signals with 2 rows of context on each side -> (f, c) residual of the local quadratic fit."""
    f = len(padded) - 4
    return padded[2 : 2 + f] - sum(w * padded[k : k + f] for k, w in enumerate(_SG5))


def robust_sigma(residual: np.ndarray) -> np.ndarray:
    """Noise sigma per channel from (f, c) ``sg_residual`` values: their median absolute deviation,
    scaled to a Gaussian sigma."""
    deviation = np.abs(residual - np.median(residual, axis=0))
    return 1.4826 * np.median(deviation, axis=0) / np.sqrt(1.0 - _SG5[2])


def jitter(flat: np.ndarray) -> np.ndarray:
    """Robust jitter (noise sigma) of each channel of (f, c) signals, f >= 5: the median absolute
    residual of a local quadratic fit (Savitzky and Golay 1964), scaled to a Gaussian sigma. Smooth
    motion, even a 3 Hz nystagmus at 30 fps, leaves almost no residual, so it is not mistaken for noise."""
    return robust_sigma(sg_residual(flat))


def bilateral_window(padded: np.ndarray, sigma_v: np.ndarray, h: int = FILTER_HALF_WIDTH,
                     sigma_t: float = FILTER_SIGMA_T) -> np.ndarray:
    """The bilateral filter of ``bilateral_filter`` on (f + 2 h, c) signals with h rows of context on
    each side, value sigma per channel. Returns (f, c)."""
    f = len(padded) - 2 * h
    centre = padded[h : h + f]
    num = np.zeros_like(centre)
    den = np.zeros_like(centre)
    for k in range(-h, h + 1):
        nb = padded[h + k : h + k + f]
        w = np.exp(-0.5 * (k / sigma_t) ** 2 - 0.5 * ((nb - centre) / sigma_v) ** 2)
        num += w * nb
        den += w
    return num / den


def bilateral_filter(x: np.ndarray, h: int = FILTER_HALF_WIDTH, sigma_t: float = FILTER_SIGMA_T,
                     least_jitter=0.0) -> np.ndarray:
    """Edge-preserving temporal filter along axis 0, for each channel.

    Tomasi & Manduchi's bilateral filter applied in time: neighbours within h frames are averaged
    with weights that fall with time distance (sigma_t frames) and with value difference measured in
    units of the channel's own jitter (at least ``least_jitter``, a scalar or one value per channel).
    Landmark jitter is smoothed; saccades, nystagmus beats and blinks, many jitter units large, pass
    unchanged, so a 3-frame blink survives.
    x : (f, ...) float. Returns the same shape.
    """
    f = x.shape[0]
    if f < 5:
        return x.copy()
    flat = x.reshape(f, -1)
    least = np.broadcast_to(np.asarray(least_jitter, float), flat.shape[1:])
    out = np.empty_like(flat)
    # Channels are independent: filter them in blocks so the temporaries stay small.
    for c in range(0, flat.shape[1], FILTER_BLOCK):
        block = flat[:, c : c + FILTER_BLOCK]
        sigma_v = FILTER_SIGMA_V * np.maximum(jitter(block), np.maximum(least[c : c + FILTER_BLOCK], 1e-9))
        padded = np.pad(block, ((h, h), (0, 0)), mode="edge")
        out[:, c : c + FILTER_BLOCK] = bilateral_window(padded, sigma_v, h, sigma_t)
    return out.reshape(x.shape)


def smooth_pose(pose: Pose) -> Pose:
    """Bilateral-filter log-scale, rotation (relative to frontal, away from the angle wrap) and
    translation over POSE_FILTER_HALF_WIDTH frames, with their jitter taken as at least
    POSE_MIN_JITTER_DEG and POSE_MIN_JITTER_MM."""
    def smooth(x, least=0.0):
        return bilateral_filter(x, POSE_FILTER_HALF_WIDTH, POSE_FILTER_SIGMA_T, least)

    rel = geometry.rotation_to_vector(pose.rotation @ geometry.FRONTAL)
    px_per_mm = float(np.median(pose.scale))
    return Pose(
        scale=np.exp(smooth(np.log(pose.scale))),
        rotation=geometry.vector_to_rotation(smooth(rel, np.radians(POSE_MIN_JITTER_DEG))) @ geometry.FRONTAL,
        translation=smooth(pose.translation, POSE_MIN_JITTER_MM * px_per_mm),
    )


def follow(pose: Pose, gaze: np.ndarray, following: np.ndarray) -> Pose:
    """The head pose (f frames) moved as the landmark stage moves it with the eyes: by following (6,)
    (``Template.pitch_following``; negated, the move taken off a pose read) times the eyes' mean pitch
    (gaze (f, 2, 2) degrees), held at the range it was measured over (PITCH_FOLLOWING_RANGE_DEG)."""
    pitch = np.clip(gaze[..., 1].mean(axis=1), -PITCH_FOLLOWING_RANGE_DEG, PITCH_FOLLOWING_RANGE_DEG)
    shift = pitch[:, None] * following  # (f, 6)
    rel = geometry.rotation_to_vector(geometry.FRONTAL @ pose.rotation) + np.radians(shift[:, :3])
    return Pose(scale=pose.scale, rotation=geometry.FRONTAL @ geometry.vector_to_rotation(rel),
                translation=pose.translation + pose.scale[:, None] * shift[:, 3:])


def held_rows(observed: np.ndarray) -> np.ndarray:
    """For each of n frames, the row among the observed frames' values that it shows: its own, or
    where the face was missing the last observed one (the first observed one before it appears)."""
    idx = np.maximum.accumulate(np.where(observed, np.arange(len(observed)), -1))
    src = np.where(idx < 0, np.argmax(observed), idx)
    return (np.cumsum(observed) - 1)[src]


def fill_missing(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Expand (k, ...) values of the observed frames to (n, ...) (``held_rows``)."""
    return values[held_rows(observed)]


# --- driver -------------------------------------------------------------------------------------


def _pose_rows(pose: Pose, rows) -> Pose:
    return Pose(scale=pose.scale[rows], rotation=pose.rotation[rows], translation=pose.translation[rows])


def _pose_concat(poses: list[Pose]) -> Pose:
    return Pose(*(np.concatenate([getattr(p, name) for p in poses]) for name in ("scale", "rotation", "translation")))


def fit_track(track: Track, template: Template, primary: bool = True) -> tuple[FaceFit, Identity]:
    """Fit pose, identity, expression, eyes and lids to one face track.

    Returns the per-frame mask parameters and, separately, the per-video identity (which callers
    must not write anywhere). A primary track is drawn in every frame, holding its last good state
    where the face was lost; another track only where it was seen (short gaps bridged).

    Streams over the frames in chunks, keeping per frame only a few numbers in memory: landmarks are
    read from ``track.points`` chunk by chunk, and the expression goes through disk
    (``store.FrameStore``). When ``track.points`` is a FrameStore, so is the returned expression.
    """
    observed = np.asarray(track.present, bool).copy()
    if not observed.any():
        raise FitError("the face track is empty")
    frames = np.flatnonzero(observed)
    k = len(frames)

    def chunks():  # (first row, landmarks (m, 478, 3) float64) of the observed frames
        for a in range(0, k, CHUNK_FRAMES):
            yield a, np.asarray(track.points[frames[a : a + CHUNK_FRAMES]], np.float64)

    def neutral_of(pose: Pose, z: np.ndarray) -> np.ndarray:
        chosen = neutral_frames(z, MAX_STAT_FRAMES)
        pts = np.asarray(track.points[frames[chosen]], np.float64)
        return relax_expressive_regions(np.median(to_head(pts, _pose_rows(pose, chosen)), axis=0), template)

    # Rigid pose against the template, then again against the subject's own neutral face. The
    # second fit keeps the head-space scale of the template: the neutral was already template-sized.
    poses, z, reference = [], [], template.landmarks()
    for _, pts in chunks():
        poses.append(fit_pose(pts, reference))
        z.append(_feature_z(to_head(pts, poses[-1]), template))
    neutral = neutral_of(_pose_concat(poses), np.concatenate(z))
    poses, z, iris_d, canthi, opening, iris, mrd1, lid_distance = [], [], [], [], [], [], [], []
    for a, pts in chunks():
        poses.append(fit_pose(pts, neutral))
        shapes = to_head(pts, poses[-1])
        z.append(_feature_z(shapes, template))
        iris_d.append(iris_diameter(shapes))
        canthi.append(canthi_mid(shapes))
        opening.append(lid_opening(shapes))
        iris.append(pts[:, list(topology.IRIS_CENTRE), :2])
        if track.limbus is not None:  # each limbus edge point's distance to its lids, once
            rings = np.stack([pts[:, list(topology.lid_ring(e)), :2] for e in range(2)], axis=1)
            lid_distance.append(lid_distances(track.limbus[frames[a : a + len(pts)]], rings))
        mrd1.append(shapes[:, list(topology.MID_UPPER), 1] - shapes[:, list(topology.IRIS_CENTRE), 1])
    pose = _pose_concat(poses)
    neutral = neutral_of(pose, np.concatenate(z))
    iris_d, canthi, read, mrd1 = (np.concatenate(a) for a in (iris_d, canthi, iris, mrd1))
    lid_distance = np.concatenate(lid_distance) if lid_distance else None
    # The scale comes from the iris, which is seen narrower as the eye turns from the camera: taken
    # from the frames where both eyes face it most (known after a first estimate from all frames);
    # then, where the landmark stage kept limbus edge points, from the size of limbus they fit best
    # (``limbus_scale``): on the synthetic clips MediaPipe's iris read up to 4 % small, which made every
    # length that much longer (fissures up to 0.4 mm tall) and the eyeball that much smaller (on the
    # dataset's videos from 2 % large to 3 % small).
    mm_per_unit = topology.IRIS_DIAMETER_MM / float(np.median(iris_d))
    opening = np.concatenate(opening)
    # The eyes are read against the filtered head pose (POSE_FILTER_HALF_WIDTH), which is also the
    # pose drawn; the expression against each frame's own.
    head = smooth_pose(pose)
    reflexes = None if track.reflexes is None else np.asarray(track.reflexes[frames], np.float64)
    # Three rounds: the scale, then the limbus's scale and the iris on its limbus (which needs the
    # scale and the eyeballs), then the eyeballs again from that iris.
    iris = read
    for step in range(3):
        if step and template.pitch_following is not None:
            head = smooth_pose(follow(pose, hold_closed_gaze(gaze, opening), -template.pitch_following))
        corner_centres = eyeball_centres(canthi * mm_per_unit, template) / mm_per_unit
        centres = corner_centres
        if reflexes is not None:
            centres = reflex_centres(centres, iris, reflexes, head, opening >= CLOSED_OPENING, mrd1 * mm_per_unit,
                                     mm_per_unit)
        if step == 1 and track.limbus is not None:
            mm_per_unit /= limbus_scale(track.limbus, frames, read, lid_distance, centres, head, mm_per_unit)
        if step:
            iris = limbus_iris(track.limbus, frames, read, lid_distance, centres, head, mm_per_unit)
        gaze = fit_gaze(iris, head, centres, topology.LIMBUS_DEPTH_MM / mm_per_unit)
        eyeballs = np.broadcast_to(centres - corner_centres, (len(iris), 2, 3)) * mm_per_unit
        if step == 0 or track.limbus is None:
            mm_per_unit = topology.IRIS_DIAMETER_MM / float(np.median(iris_d[facing_camera(gaze, head)]))
    gaze = hold_closed_gaze(gaze, opening)
    # The lids against each frame's pose less its following of the eyes, as the eyes are read (and
    # as ``measure`` reads the iris under them).
    eye_pose = pose if template.pitch_following is None else follow(pose, gaze, -template.pitch_following)

    # Expression of every observed frame, to disk; the lid rings' x for the corner drift; the lids.
    raw = FrameStore((topology.N_MESH, 3), np.float64)
    ring_x, lids = [[], []], []
    for a, pts in chunks():
        rows = to_head(pts, _pose_rows(pose, slice(a, a + len(pts))))[:, : topology.N_MESH] - neutral[: topology.N_MESH]
        raw.append(rows)
        lids.append(fit_lids(to_head(pts, _pose_rows(eye_pose, slice(a, a + len(pts))))) * mm_per_unit)
        for e in range(2):
            ring_x[e].append(rows[:, list(topology.lid_ring(e)), 0])
    drift = corner_drift([np.concatenate(x) for x in ring_x], gaze)
    expression = _filtered_expression(raw, drift)
    raw.close()

    raw_gaze = gaze
    gaze = bilateral_filter(gaze)
    lids = bilateral_filter(np.concatenate(lids))

    n = track.n_frames
    if primary:
        visible = np.ones(n, bool)
    else:
        # Bridge short gaps inside the span where the face was seen.
        visible = np.zeros(n, bool)
        visible[frames[0] : frames[-1] + 1] = True
        last = np.maximum.accumulate(np.where(observed, np.arange(n), -1))
        nxt = np.minimum.accumulate(np.where(observed, np.arange(n), n)[::-1])[::-1]
        visible &= observed | (nxt - last <= MAX_TRACK_GAP)
    held = held_rows(observed)
    expression_all = FrameStore((topology.N_MESH, 3), np.float32)
    for a in range(0, n, CHUNK_FRAMES):
        expression_all.append(expression[held[a : a + CHUNK_FRAMES]])
    expression.close()
    fit = FaceFit(
        pose=_pose_rows(head, held),
        expression=expression_all if isinstance(track.points, FrameStore) else np.asarray(expression_all),
        gaze=gaze[held],
        lids=lids[held],
        observed=observed,
        visible=visible,
        eyeballs=eyeballs[held],
        raw_gaze=raw_gaze[held],
    )
    return fit, Identity(neutral=neutral, mm_per_unit=mm_per_unit)


def _filtered_expression(raw: FrameStore, drift) -> FrameStore:
    """The expression rows of ``raw`` with the corner drift removed, through the bilateral filter
    (``bilateral_filter``), chunk by chunk; the jitter that scales the filter is estimated on at most
    MAX_STAT_FRAMES frames spread over the video. Returns a float32 store."""
    k = len(raw)
    h = max(FILTER_HALF_WIDTH, 2)  # rows of context: the filter's and the jitter's quadratic fit's

    def window(a: int, b: int) -> np.ndarray:  # rows a-h..b+h, untied, edge-padded at the ends, (m, c)
        lo, hi = max(a - h, 0), min(b + h, k)
        rows = raw.read(lo, hi)
        untie_corners(rows, drift, lo)
        return np.pad(rows.reshape(hi - lo, -1), ((h - (a - lo), h - (hi - b)), (0, 0)), mode="edge")

    out = FrameStore((topology.N_MESH, 3), np.float32)
    if k < 5:  # too short to tell jitter from motion: unfiltered
        out.append(window(0, k)[h : h + k])
        return out
    # Jitter: residuals at frames 2..k-3 (those with two true neighbours on each side).
    sample = np.arange(2, k - 2)
    if len(sample) > MAX_STAT_FRAMES:
        sample = sample[np.linspace(0, len(sample) - 1, MAX_STAT_FRAMES).round().astype(int)]
    residuals = []
    for a in range(0, k, CHUNK_FRAMES):
        b = min(a + CHUNK_FRAMES, k)
        take = sample[(sample >= a) & (sample < b)]
        if len(take):
            residuals.append(sg_residual(window(a, b)[h - 2 : h + 2 + b - a])[take - a])
    sigma_v = FILTER_SIGMA_V * np.maximum(robust_sigma(np.concatenate(residuals)), 1e-9)
    hf = FILTER_HALF_WIDTH
    for a in range(0, k, CHUNK_FRAMES):
        b = min(a + CHUNK_FRAMES, k)
        out.append(bilateral_window(window(a, b)[h - hf : h + hf + b - a], sigma_v))
    return out
