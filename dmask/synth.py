"""Synthetic test videos with exact ground truth.

The project's own 3D face (the template) is driven with known values: head pose, conjugate gaze with
saccades, a fixed strabismus deviation of the right eye, lid positions (ptosis), blinks (complete,
incomplete, asymmetric), an imposed nystagmus and an asymmetric smile. The mask parameters are
rendered through the real renderer and written as H.264 (``pipeline.render_params``), so measuring
such a video runs the whole chain: MediaPipe landmarks -> fit -> measure.

The ground truth is computed from the rendered geometry (``swap.head_shape`` and the eyeballs of
``swap.mask_geometry``) with the same definitions as ``measure``: the template is in millimetres
with an 11.7 mm iris, so its head space is true mm.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from . import geometry, topology
from .fit import follow
from .measure import BLINK_THRESHOLD, OPEN_PERCENTILE, find_blinks, lid_gap, lid_metrics, prism_dioptres
from .params import MaskParams
from .swap import head_shape
from .template import Template, canthi_mid, load_template, with_corner_offsets
from .types import FaceFit, MaskOptions, Pose, Track

FACE_CENTRE_MM = np.array([0.0, -30.0, 0.0])  # head-space point put at the image centre
SMILE_RADIUS_MM = 12.0  # falloff of the smile's pull around each mouth corner
FIXATION_SETTLE_S = 0.3  # ``accuracy`` reads a fixation's gaze from this long after its saccade


@dataclass(frozen=True)
class SynthBlink:
    start_s: float
    closure: tuple[float, float] = (1.0, 1.0)  # share of the lid gap closed, right and left eye
    close_s: float = 0.10
    hold_s: float = 0.06
    open_s: float = 0.16


@dataclass(frozen=True)
class SynthNystagmus:
    frequency_hz: float = 3.0
    amplitude_deg: float = 2.0  # peak to peak
    waveform: str = "pendular"  # pendular (sinusoid) or jerk (linear slow phase, fast return)
    direction: str = "horizontal"  # horizontal (yaw) or vertical (pitch)
    slow_share: float = 0.8  # jerk: share of each cycle spent in the slow phase
    # jerk: the fast phase moves toward + (the subject's left for horizontal, up for vertical)


@dataclass(frozen=True)
class SynthSpec:
    seconds: float = 4.0
    fps: int = 30
    size: int = 448  # square frame, pixels
    px_per_mm: float = 2.0
    head: tuple[float, float, float] = (0.0, 0.0, 0.0)  # yaw, pitch, roll degrees (geometry.euler_from_rotation)
    # Conjugate gaze of the fixating (left) eye: (time s, yaw deg, pitch deg) targets, jumped to at
    # each time (a saccade); the first holds from the start.
    fixations: tuple[tuple[float, float, float], ...] = ((0.0, 0.0, 0.0),)
    deviation: tuple[float, float] = (0.0, 0.0)  # right eye minus left: horizontal (eso +), vertical (hyper +) deg
    ptosis_mm: tuple[float, float] = (0.0, 0.0)  # upper lid lowered at its centre, right and left eye
    blinks: tuple[SynthBlink, ...] = ()
    nystagmus: SynthNystagmus | None = None
    # Mouth corners pulled up and out (mm) at the smile's peak, right and left; the smile rises and
    # falls over smile_s (start, end) seconds.
    smile_mm: tuple[float, float] = (0.0, 0.0)
    smile_s: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class SynthTruth:
    """Exact values of the rendered face, per frame; per-eye arrays are (n, 2) [right, left]."""

    times: np.ndarray  # (n,) s
    head_pose: np.ndarray  # (n, 3) yaw, pitch, roll deg
    gaze: np.ndarray  # (n, 2, 2) deg
    deviation: np.ndarray  # (n, 2) deg
    deviation_pd: np.ndarray  # (n, 2)
    fissure_height: np.ndarray
    fissure_width: np.ndarray
    mrd1: np.ndarray
    mrd2: np.ndarray
    openness: np.ndarray
    blinks: tuple[tuple[int, int], ...]  # (first, last) frames below half opening
    blink_closure: tuple[tuple[float, float], ...]  # per blink, per eye
    saccades: int  # gaze jumps
    fixation: np.ndarray  # (n,) int: the fixation (index into the sorted spec.fixations) each frame belongs to
    mouth_corner: np.ndarray  # (n, 2) mm
    nystagmus: SynthNystagmus | None


def _xyz(angles: np.ndarray) -> np.ndarray:
    rx, ry, rz = (geometry.vector_to_rotation(np.radians(np.eye(3)[k] * angles[k])) for k in range(3))
    return geometry.FRONTAL @ (rx @ ry @ rz)


def head_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head -> image rotation whose ``geometry.euler_from_rotation`` is exactly (yaw, pitch, roll).

    Near R_x(-pitch) R_y(yaw) R_z(-roll); the angles are then refined by least squares because
    euler_from_rotation's roll is not that product's exact inverse once yaw and pitch are non-zero.
    """
    from scipy.optimize import least_squares

    target = np.array([yaw, pitch, roll], float)
    sol = least_squares(lambda a: geometry.euler_from_rotation(_xyz(a)) - target,
                        np.array([-pitch, yaw, -roll], float), xtol=1e-12, ftol=1e-12)
    return _xyz(sol.x)


def _blink_profile(t: np.ndarray, b: SynthBlink) -> np.ndarray:
    """0..1 closure over time of one blink: a cosine ramp down, a hold, a cosine ramp up."""
    u = t - b.start_s
    close = 0.5 - 0.5 * np.cos(np.pi * np.clip(u / b.close_s, 0, 1))
    reopen = 0.5 + 0.5 * np.cos(np.pi * np.clip((u - b.close_s - b.hold_s) / b.open_s, 0, 1))
    return np.where(u < b.close_s + b.hold_s, close, reopen) * (u >= 0)


def _nystagmus_wave(t: np.ndarray, n: SynthNystagmus) -> np.ndarray:
    phase = (t * n.frequency_hz) % 1.0
    half = n.amplitude_deg / 2
    if n.waveform == "pendular":
        return half * np.sin(2 * np.pi * phase)
    if n.waveform == "jerk":
        s = n.slow_share
        return np.where(phase < s, half - n.amplitude_deg * phase / s, -half + n.amplitude_deg * (phase - s) / (1 - s))
    raise ValueError(f"unknown nystagmus waveform '{n.waveform}' (pendular or jerk)")


def _smile_field(template: Template) -> np.ndarray:
    """(2, 468) weight of each vertex in the pull of the right / left mouth corner."""
    v = template.vertices[: topology.N_MESH]
    w = []
    for c in topology.MOUTH_CORNERS:
        d = np.linalg.norm(v - v[c], axis=1)
        w.append(np.exp(-0.5 * (d / (SMILE_RADIUS_MM / 2)) ** 2) * (d < SMILE_RADIUS_MM))
    return np.array(w)


def synth_fit(spec: SynthSpec, template: Template) -> FaceFit:
    """The mask parameters (FaceFit) of a synthetic video."""
    n = int(round(spec.seconds * spec.fps))
    if n < 1:
        raise ValueError("a synthetic video needs at least one frame")
    t = np.arange(n) / spec.fps

    # Gaze: fixation targets for the left eye, the right eye deviated, plus nystagmus on both.
    gaze = np.zeros((n, 2, 2))
    for start, yaw, pitch in sorted(spec.fixations):
        gaze[t >= start, :, 0], gaze[t >= start, :, 1] = yaw, pitch
    gaze[:, 0, 0] += spec.deviation[0]
    gaze[:, 0, 1] += spec.deviation[1]
    if spec.nystagmus is not None:
        gaze[:, :, 0 if spec.nystagmus.direction == "horizontal" else 1] += _nystagmus_wave(t, spec.nystagmus)[:, None]

    # Lids: the template's margins, the upper lowered by the ptosis (most at its centre), then closed
    # toward the lower lid by the blinks.
    mid = template.canthi_mid()
    base = np.stack([template.vertices[list(topology.LID_POINTS[e]), 1] - mid[e, 1] for e in range(2)])  # (2, 14)
    up = topology.N_UPPER
    profile = np.sin(np.pi * np.arange(1, up + 1) / (up + 1))
    base[:, :up] -= np.asarray(spec.ptosis_mm)[:, None] * profile
    closure = np.zeros((n, 2))
    for b in spec.blinks:
        closure = np.maximum(closure, _blink_profile(t, b)[:, None] * np.asarray(b.closure)[None])
    lids = np.repeat(base[None], n, axis=0)
    gap = lids[:, :, :up] - lids[:, :, up:]
    lids[:, :, :up] -= closure[:, :, None] * gap

    # Expression: an optional asymmetric smile (corners pulled up and out), else neutral.
    expression = np.zeros((n, topology.N_MESH, 3), np.float32)
    if any(spec.smile_mm):
        a, b = spec.smile_s
        level = np.sin(np.pi * np.clip((t - a) / max(b - a, 1e-9), 0, 1)) ** 2  # (n,)
        field = _smile_field(template)
        for e, amount in enumerate(spec.smile_mm):
            direction = np.array([1.0 if e == 1 else -1.0, 1.0, 0.0]) / np.sqrt(2)  # out and up
            expression += (level[:, None, None] * amount * field[e][None, :, None] * direction).astype(np.float32)

    rot = head_rotation(*spec.head)
    scale = np.full(n, spec.px_per_mm)
    trans = np.array([spec.size / 2, spec.size / 2, 0.0]) - spec.px_per_mm * rot @ FACE_CENTRE_MM
    return FaceFit(
        pose=Pose(scale=scale, rotation=np.repeat(rot[None], n, axis=0), translation=np.repeat(trans[None], n, axis=0)),
        expression=expression, gaze=gaze, lids=lids, observed=np.ones(n, bool), visible=np.ones(n, bool),
    )


def synth_params(spec: SynthSpec, template: Template | None = None) -> MaskParams:
    template = template or load_template()
    return MaskParams(width=spec.size, height=spec.size, time_base=Fraction(1, spec.fps),
                      pts=np.arange(int(round(spec.seconds * spec.fps)), dtype=np.int64), is_image=False,
                      faces=(synth_fit(spec, template),))


def ground_truth(spec: SynthSpec, fit: FaceFit, template: Template) -> SynthTruth:
    """Exact measurements of the rendered face, with ``measure``'s definitions."""
    n = fit.n_frames
    t = np.arange(n) / spec.fps
    centres = template.eye_centres()
    iris = centres[None] + topology.LIMBUS_DEPTH_MM * geometry.gaze_vector(fit.gaze)  # (n, 2, 3) visible iris centre
    shapes = np.stack([head_shape(fit, i, template) for i in range(n)])  # (n, 468, 3)
    out = {k: np.zeros((n, 2)) for k in ("fissure_height", "fissure_width", "mrd1", "mrd2", "gap")}
    for e in range(2):
        m = lid_metrics(shapes[:, list(topology.UPPER_LID[e]), :2], shapes[:, list(topology.LOWER_LID[e]), :2],
                        iris[:, e, :2], topology.IRIS_DIAMETER_MM)
        for k in ("fissure_height", "fissure_width", "mrd1", "mrd2"):
            out[k][:, e] = getattr(m, k)
        mid_y = canthi_mid(shapes)[:, e, 1]
        out["gap"][:, e] = lid_gap(shapes[:, list(topology.LID_POINTS[e]), 1] - mid_y[:, None])
    openness = out["gap"] / np.percentile(out["gap"], OPEN_PERCENTILE, axis=0)
    events = find_blinks(openness, np.ones(n, bool), t, BLINK_THRESHOLD)
    deviation = np.stack([fit.gaze[:, 0, 0] - fit.gaze[:, 1, 0], fit.gaze[:, 0, 1] - fit.gaze[:, 1, 1]], axis=1)
    mouth = np.linalg.norm(fit.expression[:, list(topology.MOUTH_CORNERS), :2].astype(np.float64), axis=-1)
    return SynthTruth(
        times=t, head_pose=np.repeat(np.array(spec.head, float)[None], n, axis=0), gaze=fit.gaze.copy(),
        deviation=deviation, deviation_pd=prism_dioptres(deviation), fissure_height=out["fissure_height"],
        fissure_width=out["fissure_width"], mrd1=out["mrd1"], mrd2=out["mrd2"], openness=openness,
        blinks=tuple((b.start, b.end) for b in events), blink_closure=tuple(b.closure for b in events),
        saccades=sum(a[1:] != b[1:] for a, b in zip(sorted(spec.fixations), sorted(spec.fixations)[1:])),
        fixation=np.searchsorted([f[0] for f in sorted(spec.fixations)], t, side="right") - 1,
        mouth_corner=mouth, nystagmus=spec.nystagmus,
    )


def synth_track(spec: SynthSpec, template: Template | None = None) -> tuple[Track, SynthTruth]:
    """Exact landmarks of the synthetic face, without rendering: the 468 mesh points of
    ``swap.head_shape`` and the iris (centre and ring moved onto the eyeball along the gaze), posed into
    the image the way the landmark stage reports points: the face's (not the lid margins', placed by
    their pixels like the iris) in the pose moved with the eyes as the template's ``pitch_following``
    says. Measuring this track tests fit + measure alone;
    measuring the rendered video adds MediaPipe's reading of the rendered face."""
    template = template or load_template()
    fit = synth_fit(spec, template)
    n = fit.n_frames
    centres = template.eye_centres()
    pupils = centres[None] + topology.LIMBUS_DEPTH_MM * geometry.gaze_vector(fit.gaze)  # (n, 2, 3) visible iris centre
    points = np.repeat(template.vertices[None], n, axis=0).copy()
    for i in range(n):
        points[i, : topology.N_MESH] = head_shape(fit, i, template)
        points[i] = with_corner_offsets(points[i], template.corner_offsets)  # the corners as read
        for e in range(2):
            iris = [topology.IRIS_CENTRE[e], *topology.IRIS_RING[e]]
            points[i, iris] += pupils[i, e] - template.vertices[topology.IRIS_CENTRE[e]]
    image = geometry.apply_pose(points, fit.pose.scale, fit.pose.rotation, fit.pose.translation)
    if template.pitch_following is not None:  # the face moved with the eyes (the lid margins and iris are not)
        read = follow(fit.pose, fit.gaze, template.pitch_following)
        face = np.setdiff1d(np.arange(topology.N_MESH), np.ravel(topology.LID_POINTS))
        image[:, face] = geometry.apply_pose(points[:, face], read.scale, read.rotation, read.translation)
    track = Track(points=image.astype(np.float32), present=np.ones(n, bool))
    return track, ground_truth(spec, fit, template)


def write_synthetic(spec: SynthSpec, dst, template: Template | None = None) -> SynthTruth:
    """Render a synthetic video to ``dst`` (H.264 .mp4) and return its ground truth."""
    from .pipeline import render_params

    template = template or load_template()
    params = synth_params(spec, template)
    render_params(params, dst, MaskOptions(), template=template)
    return ground_truth(spec, params.faces[0], template)


# The synthetic videos of the accuracy checks (tests/test_measure.py), 19 s in all at 30 fps:
# "eyes": a turned head, four fixations joined by saccades, a right esotropia of 8 deg with 3 deg of
# right hypertropia, a 1.5 mm right ptosis, four blinks (full, incomplete, asymmetric, full) and an
# asymmetric smile; "pendular": a 3 Hz, 2 deg pendular horizontal nystagmus and one blink; "jerk": a
# 4 Hz, 3 deg left-beating jerk nystagmus while looking 5 deg to the left; "exo": the mirror case of
# "eyes" (head turned and tilted the other way, a right exotropia of 6 deg with 2 deg of hypotropia, a
# 2 mm left ptosis, three fixations) with a full, a 70% and a right-eye-50% blink.
ACCURACY_SPECS = {
    "eyes": SynthSpec(
        seconds=6.0, head=(8.0, -5.0, 4.0),
        fixations=((0.0, 0.0, 0.0), (1.4, 12.0, 4.0), (2.9, -10.0, -5.0), (4.4, 2.0, 8.0)),
        deviation=(8.0, 3.0), ptosis_mm=(1.5, 0.0),
        blinks=(SynthBlink(0.7), SynthBlink(2.1, (0.6, 0.6)), SynthBlink(3.6, (1.0, 0.4)), SynthBlink(5.2)),
        smile_mm=(1.0, 4.0), smile_s=(3.9, 5.9),
    ),
    "pendular": SynthSpec(seconds=4.0, nystagmus=SynthNystagmus(3.0, 2.0, "pendular"), blinks=(SynthBlink(3.3),)),
    "jerk": SynthSpec(seconds=4.0, nystagmus=SynthNystagmus(4.0, 3.0, "jerk"), fixations=((0.0, 5.0, 0.0),)),
    "exo": SynthSpec(
        seconds=5.0, head=(-6.0, 4.0, -3.0),
        fixations=((0.0, -3.0, 2.0), (1.6, 8.0, -4.0), (3.2, -12.0, 6.0)),
        deviation=(-6.0, -2.0), ptosis_mm=(0.0, 2.0),
        blinks=(SynthBlink(1.0), SynthBlink(2.4, (0.7, 0.7)), SynthBlink(4.0, (0.5, 1.0))),
    ),
}

# Further clips, written down before they were first measured and held out until v1 and v6 (an eye
# looking up under its lid) showed the lid search's limit that eyes.LID_COURSE_SEARCH and LID_COURSE_FIT
# were then set on (tools/synth_accuracy.py reports them beside ACCURACY_SPECS; nothing asserts on them;
# v4 drawn at 4 px/mm showed the iris search's failure that eyes.IRIS_STARTS fixes, and tests/test_eyes.py
# keeps that case). Other head poses, gaze targets (up to 14 deg, and up under a lowered lid), smaller
# squints and droops, a smile, and nystagmus of other rates and sizes, one under two drooping lids.
VALIDATION_SPECS = {
    "v1": SynthSpec(seconds=5.0, head=(-10.0, 3.0, 2.0),
                    fixations=((0.0, 5.0, -3.0), (1.5, -12.0, 6.0), (3.0, 10.0, 8.0)),
                    deviation=(4.0, -2.0), ptosis_mm=(0.8, 0.0), blinks=(SynthBlink(1.0), SynthBlink(3.8, (0.6, 0.6)))),
    "v2": SynthSpec(seconds=5.0, head=(5.0, 8.0, -4.0), fixations=((0.0, -6.0, -4.0), (2.0, 14.0, 2.0)),
                    deviation=(-3.0, 1.0), ptosis_mm=(0.0, 1.2), blinks=(SynthBlink(2.9),),
                    smile_mm=(3.0, 3.0), smile_s=(0.5, 2.5)),
    "v3": SynthSpec(seconds=4.0, head=(4.0, -3.0, 0.0), nystagmus=SynthNystagmus(2.5, 3.0, "pendular"),
                    fixations=((0.0, -4.0, 2.0),), blinks=(SynthBlink(2.0),)),
    "v4": SynthSpec(seconds=4.0, head=(-5.0, 0.0, 2.0), nystagmus=SynthNystagmus(3.5, 2.5, "jerk"),
                    ptosis_mm=(1.0, 1.0)),
    "v5": SynthSpec(seconds=4.0, head=(0.0, -6.0, 0.0), nystagmus=SynthNystagmus(3.0, 2.0, "pendular"),
                    fixations=((0.0, 6.0, -2.0),), deviation=(6.0, 0.0)),
    "v6": SynthSpec(seconds=5.0, head=(12.0, 2.0, 0.0),
                    fixations=((0.0, 0.0, 0.0), (1.7, -8.0, -6.0), (3.4, 6.0, 10.0)),
                    ptosis_mm=(2.0, 0.5), blinks=(SynthBlink(1.2, (0.8, 0.8)),)),
}


# A second held-out set, written down (at the commit that added it) before any of it was first measured,
# after v1-v6 had informed the lid search and the lid-course fit (eyes.LID_COURSE_SEARCH, LID_COURSE_FIT):
# a small vertical squint under a drooping lid, an up-gaze with the head turned far, a chin-up head
# with both lids low and a smile, a vertical jerk nystagmus with the head bent down, a large squint at
# 3 px/mm, and a fast small pendular nystagmus under a slight droop. First measured at 3009175. Held
# out until v10's vertical nystagmus showed the head pose following the eyes' pitch (set on the
# template's own renders, template.pitch_following) and, with all 16 clips, the limbus edge points'
# pull near the lids (then a limit of 50 degrees above or below the iris centre, chosen over 40-55 on
# all of them; now fit.LIMBUS_LID_CLEARANCE).
HELD_OUT_SPECS = {
    "v7": SynthSpec(seconds=4.0, head=(7.0, -4.0, 3.0), fixations=((0.0, -8.0, 3.0), (1.8, 9.0, -5.0)),
                    deviation=(0.0, 2.5), ptosis_mm=(0.0, 1.0),
                    blinks=(SynthBlink(1.2), SynthBlink(3.0, (0.5, 0.5)))),
    "v8": SynthSpec(seconds=4.5, head=(-14.0, 5.0, -2.0), fixations=((0.0, 3.0, 7.0), (2.0, -6.0, 10.0)),
                    deviation=(-5.0, 0.0), blinks=(SynthBlink(3.2),)),
    "v9": SynthSpec(seconds=4.5, head=(3.0, 10.0, 1.0),
                    fixations=((0.0, 0.0, -6.0), (1.5, 10.0, 0.0), (3.0, -10.0, 5.0)),
                    ptosis_mm=(1.8, 1.8), smile_mm=(2.0, 0.0), smile_s=(0.5, 3.0)),
    "v10": SynthSpec(seconds=4.0, head=(-3.0, -8.0, -3.0), fixations=((0.0, -3.0, 0.0),),
                     nystagmus=SynthNystagmus(2.0, 2.5, "jerk", "vertical")),
    "v11": SynthSpec(seconds=4.0, size=640, px_per_mm=3.0, head=(10.0, -2.0, 5.0),
                     fixations=((0.0, -12.0, -4.0), (2.0, 12.0, 4.0)), deviation=(10.0, -3.0),
                     ptosis_mm=(0.5, 0.0), blinks=(SynthBlink(1.0, (1.0, 0.7)),)),
    "v12": SynthSpec(seconds=4.0, head=(-8.0, 2.0, 0.0), fixations=((0.0, -8.0, 4.0),), ptosis_mm=(0.0, 0.6),
                     nystagmus=SynthNystagmus(4.0, 1.5, "pendular")),
}


# A third held-out set, written down (at the commit that added it) before any of it was first measured,
# after v7-v12 had informed the pitch following and the limbus edge-point limit: an exotropia with a
# small hypertropia under a light droop, a vertical pendular nystagmus with the head turned, both lids
# low with an incomplete asymmetric blink and a rolled head, a horizontal jerk nystagmus beside an
# esotropia at 3 px/mm, a smile on a chin-up head with a hypotropia, and a vertical jerk nystagmus with
# the head bent far down under slightly low lids. First measured at 694a67e; v14's vertical beat then
# showed the edge points' pull near the lids going by their distance to the lids
# (fit.LIMBUS_LID_CLEARANCE, taken apart on all 22 clips).
HELD_OUT_2_SPECS = {
    "v13": SynthSpec(seconds=4.5, head=(-6.0, 5.0, -3.0), fixations=((0.0, 4.0, -6.0), (2.0, -10.0, 4.0)),
                     deviation=(-6.0, 1.5), ptosis_mm=(0.7, 0.0), blinks=(SynthBlink(3.0),)),
    "v14": SynthSpec(seconds=4.0, head=(9.0, -5.0, 2.0), fixations=((0.0, -5.0, 3.0),),
                     nystagmus=SynthNystagmus(2.5, 2.0, "pendular", "vertical")),
    "v15": SynthSpec(seconds=4.5, head=(0.0, 6.0, 4.0),
                     fixations=((0.0, 0.0, 8.0), (1.5, 12.0, -3.0), (3.0, -6.0, -8.0)),
                     ptosis_mm=(1.2, 1.5), blinks=(SynthBlink(2.2, (0.7, 0.4)),)),
    "v16": SynthSpec(seconds=4.0, size=640, px_per_mm=3.0, head=(-11.0, -3.0, 0.0), deviation=(5.0, 0.0),
                     nystagmus=SynthNystagmus(3.0, 2.5, "jerk")),
    "v17": SynthSpec(seconds=4.5, head=(4.0, 9.0, -5.0), fixations=((0.0, -7.0, 5.0), (2.2, 7.0, -4.0)),
                     deviation=(0.0, -2.0), smile_mm=(2.5, 1.0), smile_s=(0.5, 3.5)),
    "v18": SynthSpec(seconds=4.0, head=(-4.0, -10.0, 0.0), fixations=((0.0, 3.0, 2.0),), ptosis_mm=(0.5, 0.5),
                     nystagmus=SynthNystagmus(3.0, 2.0, "jerk", "vertical")),
}


# A fourth held-out set, written down (at the commit that added it) before any of it was first measured,
# after v13-v18 had informed the limbus fit's lid clearance and the pose filter's jitter floor: an
# esotropia under a one-sided droop with a blink, a horizontal pendular nystagmus on a chin-up rolled
# head, a vertical jerk nystagmus under two low lids with the head turned, a hypertropia with wide
# fixations at 3 px/mm and an incomplete blink, a lopsided smile beside a small exotropia, and a
# vertical pendular nystagmus under a one-sided droop with the head bent down. First measured at
# 8f59141 (fissure height within 0.3 mm in 10 of 12 eyes); the video's scale was then taken from the
# limbus (fit_track), a change taken apart on the 22 earlier clips.
HELD_OUT_3_SPECS = {
    "v19": SynthSpec(seconds=4.5, head=(5.0, -3.0, 1.0), fixations=((0.0, 6.0, -4.0), (2.0, -8.0, 6.0)),
                     deviation=(8.0, 0.0), ptosis_mm=(0.0, 1.0), blinks=(SynthBlink(3.2),)),
    "v20": SynthSpec(seconds=4.0, head=(0.0, 7.0, -4.0), fixations=((0.0, 4.0, -3.0),),
                     nystagmus=SynthNystagmus(3.5, 2.5, "pendular")),
    "v21": SynthSpec(seconds=4.0, head=(-7.0, 3.0, 0.0), fixations=((0.0, -2.0, 4.0),), ptosis_mm=(0.8, 0.8),
                     nystagmus=SynthNystagmus(3.0, 3.0, "jerk", "vertical")),
    "v22": SynthSpec(seconds=4.5, size=640, px_per_mm=3.0, head=(2.0, -6.0, 2.0),
                     fixations=((0.0, -10.0, 8.0), (1.5, 10.0, -8.0), (3.0, 0.0, 0.0)), deviation=(0.0, 3.0),
                     blinks=(SynthBlink(1.0, (0.6, 0.6)), SynthBlink(3.6))),
    "v23": SynthSpec(seconds=4.5, head=(-10.0, 4.0, 3.0), fixations=((0.0, 8.0, 2.0), (2.0, -6.0, -6.0)),
                     deviation=(-4.0, -1.0), smile_mm=(3.0, 0.5), smile_s=(0.3, 3.8), blinks=(SynthBlink(1.4),)),
    "v24": SynthSpec(seconds=4.0, head=(6.0, -7.0, -2.0), fixations=((0.0, 0.0, 2.0),), ptosis_mm=(1.4, 0.3),
                     nystagmus=SynthNystagmus(2.0, 2.5, "pendular", "vertical")),
}


def accuracy(truth: SynthTruth, m) -> dict:
    """Errors of a ``measure.Measurement`` of a synthetic video against its truth, per eye [right, left]:
    median |error| over the valid frames of MRD1, MRD2 and fissure height (mm) and of gaze yaw and pitch
    (deg); the deviation error (PD) of the summary (steady fixation, else all frames), horizontal and
    vertical; blink hits, false alarms and misses; nystagmus frequency error (Hz) and relative amplitude
    error per eye (None where none was imposed or found). Also per fixation: the largest over the
    fixations of the |median error| of its valid frames (from FIXATION_SETTLE_S after its saccade), of
    gaze yaw and pitch, MRD1 and fissure height, where a median over the whole clip can hide one
    fixation read far off."""
    fm, v = m.frames, m.frames.valid

    def med(err):
        return [float(np.median(np.abs(err[v[:, e], e]))) if v[:, e].any() else None for e in range(2)]

    settled = np.ones(len(truth.times), bool)
    starts = np.flatnonzero(np.diff(truth.fixation)) + 1
    for a in starts:
        settled &= ~((truth.times >= truth.times[a]) & (truth.times < truth.times[a] + FIXATION_SETTLE_S))

    def worst(err):
        out = []
        for e in range(2):
            errs = [abs(float(np.median(err[rows, e]))) for k in np.unique(truth.fixation)
                    if (rows := (truth.fixation == k) & settled & v[:, e]).any()]
            out.append(max(errs) if errs else None)
        return out

    d = m.summary.deviation
    h = d.fixation_horizontal_pd if d.fixation_horizontal_pd is not None else d.horizontal_pd.median
    vv = d.fixation_vertical_pd if d.fixation_vertical_pd is not None else d.vertical_pd.median
    out = {
        "mrd1_mm": med(fm.mrd1 - truth.mrd1), "mrd2_mm": med(fm.mrd2 - truth.mrd2),
        "fissure_height_mm": med(fm.fissure_height - truth.fissure_height),
        "gaze_yaw_deg": med(fm.gaze[..., 0] - truth.gaze[..., 0]),
        "gaze_pitch_deg": med(fm.gaze[..., 1] - truth.gaze[..., 1]),
        "gaze_yaw_worst_fixation_deg": worst(fm.gaze[..., 0] - truth.gaze[..., 0]),
        "gaze_pitch_worst_fixation_deg": worst(fm.gaze[..., 1] - truth.gaze[..., 1]),
        "mrd1_worst_fixation_mm": worst(fm.mrd1 - truth.mrd1),
        "fissure_height_worst_fixation_mm": worst(fm.fissure_height - truth.fissure_height),
        "deviation_pd": [None if h is None else abs(h - float(np.median(truth.deviation_pd[:, 0]))),
                         None if vv is None else abs(vv - float(np.median(truth.deviation_pd[:, 1])))],
        "blinks": match_events(truth.blinks, [(b.start, b.end) for b in m.blinks]),
        "nystagmus_frequency_hz": [None, None], "nystagmus_amplitude_rel": [None, None],
    }
    if truth.nystagmus is not None:
        for e, s in enumerate(m.summary.nystagmus):
            if s.present:
                out["nystagmus_frequency_hz"][e] = abs(s.frequency_hz - truth.nystagmus.frequency_hz)
                out["nystagmus_amplitude_rel"][e] = s.amplitude_deg / truth.nystagmus.amplitude_deg - 1
    return out


def match_events(truth, found, tolerance: int = 2, ignore=()) -> tuple[int, int, int]:
    """Match events (first, last frame) one to one: a found event matches a true one when they overlap
    once widened by ``tolerance`` frames. Found events that touch an ``ignore`` span and match nothing
    are not counted. Returns (hits, false alarms, misses)."""
    used = set()
    hits = 0
    for a, b in truth:
        for j, (c, d) in enumerate(found):
            if j not in used and c <= b + tolerance and d >= a - tolerance:
                used.add(j)
                hits += 1
                break
    false = sum(1 for j, (c, d) in enumerate(found) if j not in used
                and not any(c <= y and d >= x for x, y in ignore))
    return hits, false, len(truth) - hits


def f1(hits: int, false: int, misses: int) -> float:
    return 2 * hits / max(2 * hits + false + misses, 1)

