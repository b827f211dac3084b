"""Clinical measurements of eyes, lids, gaze and face, the same way on an original and on a masked video.

Everything is derived from the fitting stage (``fit.fit_track``): head pose, per-eye gaze of the
eyeball model, absolute lid heights and expression, plus the head-space landmarks of the track. Nothing
here fits pose or gaze again. The metric scale is the iris: a visible horizontal iris diameter of
11.7 mm unless ``MeasureOptions.iris_diameter_mm`` says otherwise.

Definitions (per eye, in head space seen from the front, millimetres):

* fissure height: upper minus lower lid margin, vertically, at the iris centre's x (0 when shut).
* fissure width: outer to inner eye corner.
* MRD1 / MRD2: upper lid margin above / lower lid margin below the iris centre, the corneal-reflex
  proxy. The iris centre is the observed iris landmark, filtered in time like the lids; not the eyeball
  model's, whose centre rests on the corneal reflex where one is seen and otherwise on the eye corners
  (a corner read 1 mm off would move it 1 mm).
* opening ratio: fissure height / fissure width.
* openness: the mean gap between the 7 paired upper and lower lid points over the same gap in the
  subject's open eye (the 80th percentile over the video); 1 = as open as usual, 0 = shut.
* scleral show above / below: MRD1 / MRD2 beyond the iris radius (0 when the lid covers the limbus).
* gaze: yaw (+ toward the subject's left) and pitch (+ up) of the eyeball model, degrees.
* deviation: right eye minus left eye. Horizontal > 0 is convergent (eso), < 0 divergent (exo);
  vertical > 0 means the right eye is higher (hyper), < 0 lower (hypo). Prism dioptres = 100 tan.
  Zero deviation is the template's primary position, a population average of people looking at a
  camera; a near camera asks for some physiological convergence.
* head pose: yaw, pitch, roll (``geometry.euler_from_rotation``).
* mouth corner / brow movement: displacement from the subject's neutral face (the fit's expression):
  mouth corner in the face plane, brow upward. Facial symmetry compares the two sides' 95th percentiles.
* blinks: runs where the mean openness of both eyes is below one half; per eye, the closure reached
  (full when at least 75 %), asymmetric when the eyes' closures differ by 25 % or more.
* saccades: version (mean of both eyes) speed above 40 deg/s moving at least 2 deg. At video frame
  rates a saccade spans 1-3 frames, so the peak velocity is a lower bound.
* steady fixation: both eyes slower than 30 deg/s for at least 0.3 s; the deviation is reported over
  it, and over all frames.
* nystagmus: 3-s windows of each eye's gaze trace, searched for a periodic oscillation (frequency,
  peak-to-peak amplitude, direction, jerk or pendular waveform, beat direction); see ``oscillation``.

Validity (per frame, in the CSV): a value is valid when the face was found, the head is turned less than
30 degrees (yaw or pitch; ``MeasureOptions.max_head_turn_deg``), and, for the eye values, the eye is open
and not within 0.1 s of a blink. Summaries use valid frames only. Values of frames without a face are NaN.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import geometry, topology
from .fit import (CLOSED_OPENING, bilateral_filter, eyeball_centres, fill_missing, fit_pose, fit_track, follow,
                  lid_opening, to_head)
from .template import Template, canthi_mid, load_template
from .types import FaceFit, Identity, MaskOptions, Pose, Track

SCHEMA = "dmask-measure/1"

# A blink: the lid opening falls below this share of the video's usual opening.
BLINK_THRESHOLD = 0.5
# The open-eye reference is this percentile of the lid gap over the usable frames.
OPEN_PERCENTILE = 80.0
# ... and the lids must also fall below BLINK_THRESHOLD of how far they open within this long before
# and after: eyes held wide for a while and then relaxed sink to half the video's usual opening
# without a blink (lp_d14_blinks.mp4, frames 262-268: 0.49-0.52 between 1.05 and 0.77).
BLINK_CONTEXT_S = 0.5
# A blink is complete (full) when the gap closed by at least this share. MediaPipe reads a shut eye
# at 5-20 % of its open gap, so a stricter bound would call real full blinks incomplete.
FULL_CLOSURE = 0.75
# One eye closing this much less than the other makes an asymmetric blink.
ASYMMETRY = 0.25
# Closures longer than this are flagged as prolonged.
PROLONGED_S = 1.0
# While the lids close and reopen around a blink they cover part of the iris, and its landmarks slide
# along with them: gaze is not valid this long before and after a blink.
BLINK_GUARD_S = 0.1
# Version (mean of both eyes) speed above which a movement is a saccade, and its least amplitude.
SACCADE_SPEED = 40.0  # deg/s
SACCADE_MIN_AMPLITUDE = 2.0  # deg
# Steady fixation: both eyes slower than this for at least FIXATION_MIN_S (the I-VT threshold; at
# 25-30 fps landmark jitter alone gives a median speed near 8 deg/s).
FIXATION_SPEED = 30.0  # deg/s
FIXATION_MIN_S = 0.3
# Nystagmus search: sliding windows of the gaze trace, frequencies from NYSTAGMUS_MIN_HZ up to Nyquist,
# at least NYSTAGMUS_MIN_CYCLES per window.
NYSTAGMUS_WINDOW_S = 3.0
NYSTAGMUS_HOP_S = 0.25
NYSTAGMUS_MIN_HZ = 1.0
NYSTAGMUS_MAX_HZ = 12.0
NYSTAGMUS_MIN_CYCLES = 3
NYSTAGMUS_MAX_HARMONICS = 4
NYSTAGMUS_MIN_PERIODICITY = 0.6  # share of the window's variance explained by the periodic fit
NYSTAGMUS_MIN_AMPLITUDE = 1.0  # deg, peak to peak
# Larger regular swings are voluntary gaze movements (repeated crossing of the eyes, looking back and
# forth), not nystagmus, whose beats are rarely wider than 10-15 deg.
NYSTAGMUS_MAX_AMPLITUDE = 15.0
NYSTAGMUS_MIN_SHARE = 0.1  # of the valid frames, to call the eye's nystagmus present
JERK_VELOCITY_RATIO = 1.5  # fast-phase over slow-phase peak velocity above which the waveform is jerk
NYQUIST_MARGIN = 1.25  # warn when the frame rate is below 2 * NYQUIST_MARGIN * the frequency found
# Facial symmetry: frames where the stronger side moves at least this much are expression frames.
MOUTH_MOVEMENT_MM = 2.0
BROW_MOVEMENT_MM = 1.5
# A median head angle beyond this is reported as an abnormal head posture.
HEAD_POSTURE_DEG = 10.0
EYES = ("right", "left")


class MeasureError(ValueError):
    pass


@dataclass(frozen=True)
class MeasureOptions:
    iris_diameter_mm: float = topology.IRIS_DIAMETER_MM  # the subject's visible horizontal iris diameter
    max_head_turn_deg: float = 30.0  # frames with |yaw| or |pitch| beyond this are invalid
    deviation_threshold_pd: float = 5.0  # |deviation| below this is labelled ortho
    max_faces: int = 1  # faces tracked; the longest track is measured


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameMeasures:
    """Per-frame values. Per-eye arrays are (n, 2) [right, left]. NaN where the face was not found."""

    frame: np.ndarray  # (n,) int
    time_s: np.ndarray  # (n,)
    face_found: np.ndarray  # (n,) bool
    head_turned: np.ndarray  # (n,) bool
    eye_closed: np.ndarray  # (n, 2) bool
    valid: np.ndarray  # (n, 2) bool: face found, head not turned, eye open
    head_pose: np.ndarray  # (n, 3) yaw, pitch, roll deg
    fissure_height: np.ndarray  # (n, 2) mm
    fissure_width: np.ndarray  # (n, 2) mm
    mrd1: np.ndarray  # (n, 2) mm
    mrd2: np.ndarray  # (n, 2) mm
    opening_ratio: np.ndarray  # (n, 2)
    openness: np.ndarray  # (n, 2) share of the usual open gap
    scleral_show_upper: np.ndarray  # (n, 2) mm
    scleral_show_lower: np.ndarray  # (n, 2) mm
    gaze: np.ndarray  # (n, 2, 2) [eye, (yaw, pitch)] deg
    deviation: np.ndarray  # (n, 2) horizontal (eso +), vertical (right hyper +) deg
    fixation: np.ndarray  # (n,) bool: steady fixation
    saccade: np.ndarray  # (n,) bool
    blink: np.ndarray  # (n,) int: blink number (1, 2, ...) or 0
    nystagmus: np.ndarray  # (n, 2) bool
    mouth_corner: np.ndarray  # (n, 2) mm
    brow: np.ndarray  # (n, 2) mm

    @property
    def n_frames(self) -> int:
        return int(self.frame.shape[0])

    @property
    def deviation_pd(self) -> np.ndarray:
        return prism_dioptres(self.deviation)


@dataclass(frozen=True)
class Blink:
    start: int  # first frame below half opening
    end: int  # last frame below half opening
    start_s: float
    end_s: float
    duration_s: float  # time below half opening
    closure: tuple[float, float]  # share of the gap closed, right and left eye
    complete: tuple[bool, bool]  # per eye: closure >= FULL_CLOSURE
    asymmetric: bool  # one eye closed at least ASYMMETRY less than the other
    prolonged: bool  # longer than PROLONGED_S

    @property
    def full(self) -> bool:
        return all(self.complete)


@dataclass(frozen=True)
class Saccade:
    start: int
    end: int
    start_s: float
    amplitude_deg: float
    peak_velocity_deg_s: float  # a lower bound at video frame rates


@dataclass(frozen=True)
class Fixation:
    start: int
    end: int
    start_s: float
    duration_s: float
    deviation_h_pd: float | None  # median over the fixation (None: every frame beyond 90 degrees)
    deviation_v_pd: float | None


@dataclass(frozen=True)
class Stat:
    """Median and spread of one value over the valid frames."""

    median: float | None
    p5: float | None
    p95: float | None
    n: int  # valid frames used


@dataclass(frozen=True)
class EyeSummary:
    fissure_height_mm: Stat
    fissure_width_mm: Stat
    mrd1_mm: Stat
    mrd2_mm: Stat
    opening_ratio: Stat
    scleral_show_upper_mm: Stat
    scleral_show_lower_mm: Stat
    gaze_yaw_deg: Stat
    gaze_pitch_deg: Stat


@dataclass(frozen=True)
class DeviationSummary:
    horizontal_deg: Stat  # over all frames valid for both eyes
    vertical_deg: Stat
    horizontal_pd: Stat
    vertical_pd: Stat
    fixation_frames: int
    fixation_horizontal_pd: float | None  # median over steady fixation
    fixation_vertical_pd: float | None
    horizontal_label: str  # eso / exo / ortho / unknown (from fixation when there is enough of it)
    vertical_label: str  # hyper / hypo / ortho / unknown (right eye against the left)
    share_eso: float  # of frames valid for both eyes
    share_exo: float
    share_hyper: float
    share_hypo: float


@dataclass(frozen=True)
class HeadSummary:
    yaw_deg: Stat
    pitch_deg: Stat
    roll_deg: Stat
    share_turned: float  # of frames with the face found
    abnormal_posture: bool
    posture: str  # e.g. "turned left 12 deg, tilted right 11 deg" or "normal"


@dataclass(frozen=True)
class BlinkSummary:
    count: int
    rate_per_min: float | None
    full: int
    incomplete: int
    asymmetric: int
    prolonged: int
    duration_s: Stat


@dataclass(frozen=True)
class NystagmusSummary:
    present: bool
    analysed_s: float  # seconds of gaze trace that windows with enough valid frames covered
    share: float  # of the valid frames
    frequency_hz: float | None
    amplitude_deg: float | None  # peak to peak
    direction: str | None  # horizontal / vertical / oblique
    waveform: str | None  # jerk / pendular
    fast_phase: str | None  # for jerk: left / right / up / down (subject's), the beat direction
    sampling_ok: bool | None  # the frame rate is at least 2 * NYQUIST_MARGIN times the frequency


@dataclass(frozen=True)
class NystagmusWindow:
    eye: int
    centre_s: float
    frequency_hz: float
    amplitude_deg: float
    periodicity: float
    present: bool


@dataclass(frozen=True)
class SaccadeSummary:
    count: int
    rate_per_min: float | None
    amplitude_deg: Stat
    peak_velocity_deg_s: Stat


@dataclass(frozen=True)
class SymmetrySummary:
    """Movement from neutral, 95th percentile over the usable frames. ratio = weaker side / stronger
    side, and the weaker side, only when the stronger side moved at least MOUTH_MOVEMENT_MM (mouth) or
    BROW_MOVEMENT_MM (brow); without an expression there is nothing to compare."""

    mouth_corner_right_mm: float | None
    mouth_corner_left_mm: float | None
    mouth_ratio: float | None
    mouth_weaker: str | None  # right / left / None when equal within 10 % or no movement
    brow_right_mm: float | None
    brow_left_mm: float | None
    brow_ratio: float | None
    brow_weaker: str | None
    expression_frames: int


@dataclass(frozen=True)
class Summary:
    eyes: tuple[EyeSummary, EyeSummary]
    deviation: DeviationSummary
    head: HeadSummary
    blinks: BlinkSummary
    nystagmus: tuple[NystagmusSummary, NystagmusSummary]
    saccades: SaccadeSummary
    symmetry: SymmetrySummary


@dataclass(frozen=True)
class Measurement:
    """Everything ``measure_video`` found in one video."""

    source: str
    fps: float | None  # frame rate used (from the timestamps)
    duration_s: float
    iris_diameter_mm: float
    frames: FrameMeasures
    blinks: tuple[Blink, ...]
    saccades: tuple[Saccade, ...]
    fixations: tuple[Fixation, ...]
    nystagmus_windows: tuple[NystagmusWindow, ...]
    summary: Summary
    options: MeasureOptions = MeasureOptions()
    warnings: tuple[str, ...] = ()

    def columns(self) -> dict[str, np.ndarray]:
        """The per-frame table as named columns (see COLUMNS for units and meaning)."""
        return frame_columns(self.frames, self.options.deviation_threshold_pd)

    def to_dataframe(self):
        """The per-frame table as a pandas DataFrame (pandas is imported only here)."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("to_dataframe needs pandas (pip install pandas); columns() gives the same data") from e
        return pd.DataFrame(self.columns())


# --- pure measurement functions -----------------------------------------------------------------


def prism_dioptres(deg) -> np.ndarray:
    """Angle (degrees) -> prism dioptres, 100 tan(angle); NaN from 90 degrees on, where no prism reaches
    (eyes crossed that far are reported in degrees only)."""
    deg = np.asarray(deg, float)
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(deg) < 90.0, 100.0 * np.tan(np.radians(deg)), np.nan)


def interp_rows(xs: np.ndarray, ys: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Piecewise-linear value at ``x`` of the curve (xs, ys) of each row, clamped at the ends.

    xs, ys : (..., k) any order along x; x : (...). Returns (...).
    """
    order = np.argsort(xs, axis=-1)
    xs = np.take_along_axis(xs, order, -1)
    ys = np.take_along_axis(ys, order, -1)
    k = xs.shape[-1]
    i = np.clip((xs < x[..., None]).sum(-1), 1, k - 1)[..., None]
    x0, x1 = np.take_along_axis(xs, i - 1, -1)[..., 0], np.take_along_axis(xs, i, -1)[..., 0]
    y0, y1 = np.take_along_axis(ys, i - 1, -1)[..., 0], np.take_along_axis(ys, i, -1)[..., 0]
    t = np.clip((x - x0) / np.maximum(x1 - x0, 1e-9), 0.0, 1.0)
    return y0 + t * (y1 - y0)


@dataclass(frozen=True)
class LidMetrics:
    """Lid measurements of one eye; every field (...,) mm except opening_ratio."""

    fissure_height: np.ndarray
    fissure_width: np.ndarray
    mrd1: np.ndarray
    mrd2: np.ndarray
    opening_ratio: np.ndarray
    scleral_show_upper: np.ndarray
    scleral_show_lower: np.ndarray


def lid_metrics(upper: np.ndarray, lower: np.ndarray, iris: np.ndarray, iris_diameter_mm: float) -> LidMetrics:
    """Lid measurements from the lid margins and the iris centre, seen from the front (head x, y).

    upper, lower : (..., k, 2) margin points from one eye corner to the other (corners included,
    in the same order in both); iris : (..., 2). Units: mm.
    """
    up = interp_rows(upper[..., 0], upper[..., 1], iris[..., 0])
    lo = interp_rows(lower[..., 0], lower[..., 1], iris[..., 0])
    width = np.linalg.norm(upper[..., -1, :] - upper[..., 0, :], axis=-1)
    height = np.maximum(up - lo, 0.0)
    mrd1 = up - iris[..., 1]
    mrd2 = iris[..., 1] - lo
    r = iris_diameter_mm / 2
    return LidMetrics(
        fissure_height=height,
        fissure_width=width,
        mrd1=mrd1,
        mrd2=mrd2,
        opening_ratio=height / np.maximum(width, 1e-9),
        scleral_show_upper=np.maximum(mrd1 - r, 0.0),
        scleral_show_lower=np.maximum(mrd2 - r, 0.0),
    )


def lid_gap(lids: np.ndarray) -> np.ndarray:
    """Mean gap (mm) between the paired upper and lower lid points: lids (..., 2 * N_UPPER) -> (...)."""
    up, lo = lids[..., : topology.N_UPPER], lids[..., topology.N_UPPER :]
    return np.maximum(up - lo, 0.0).mean(axis=-1)


def runs(mask: np.ndarray, bridge: int = 0) -> list[tuple[int, int]]:
    """(first, last) of each run of True in a (n,) bool array, joining runs separated by at most
    ``bridge`` False frames."""
    out: list[list[int]] = []
    for i in np.flatnonzero(mask):
        if out and i - out[-1][1] <= bridge + 1:
            out[-1][1] = int(i)
        else:
            out.append([int(i), int(i)])
    return [(a, b) for a, b in out]


def find_blinks(openness: np.ndarray, usable: np.ndarray, times: np.ndarray,
                threshold: float = BLINK_THRESHOLD) -> list[Blink]:
    """Blink events from per-eye openness (n, 2): runs where the mean of both eyes is below
    ``threshold``, joined across one-frame gaps (eye-aspect-ratio blink detection after Soukupova
    and Cech, 2016, on the lid gap in mm), whose lowest mean is also below ``threshold`` of the
    lower of the highest means within BLINK_CONTEXT_S before and after the run (of the one side
    there is at a video's ends). usable (n,) bool; times (n,) seconds."""
    seen = np.isfinite(openness)
    mean = np.where(usable & seen.any(axis=1),
                    np.where(seen, openness, 0).sum(axis=1) / np.maximum(seen.sum(axis=1), 1), np.nan)
    dt = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    context = int(np.ceil(BLINK_CONTEXT_S / dt - 1e-6)) if dt > 0 else 0
    events = []
    for a, b in runs(mean < threshold, bridge=1):
        sides = [mean[max(a - context, 0) : a], mean[b + 1 : b + 1 + context]]
        opened = [float(np.nanmax(x)) for x in sides if np.isfinite(x).any()]
        if opened and np.nanmin(mean[a : b + 1]) >= threshold * min(opened):
            continue
        closure = tuple(float(np.clip(1 - np.nanmin(openness[a : b + 1, e]), 0, 1)) for e in range(2))
        duration = float(times[b] - times[a] + dt)
        events.append(Blink(
            start=a, end=b, start_s=float(times[a]), end_s=float(times[b]), duration_s=duration,
            closure=closure, complete=tuple(bool(c >= FULL_CLOSURE) for c in closure),
            asymmetric=bool(abs(closure[0] - closure[1]) >= ASYMMETRY), prolonged=duration > PROLONGED_S,
        ))
    return events


def gaze_speed(version: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Angular speed (deg/s) between consecutive frames of a (n, 2) gaze trace: (n - 1,), NaN across gaps."""
    return np.linalg.norm(np.diff(version, axis=0), axis=1) / np.maximum(np.diff(times), 1e-9)


def find_saccades(version: np.ndarray, times: np.ndarray) -> list[Saccade]:
    """Velocity-threshold saccade detection (I-VT, Salvucci and Goldberg 2000) on the version gaze.

    version : (n, 2) mean yaw, pitch of both eyes, NaN where not valid. A run of inter-frame speeds
    above SACCADE_SPEED is one saccade when it moves the eyes at least SACCADE_MIN_AMPLITUDE.
    """
    speed = gaze_speed(version, times)
    out = []
    for a, b in runs(np.nan_to_num(speed) > SACCADE_SPEED):
        amp = float(np.linalg.norm(version[b + 1] - version[a]))
        if amp >= SACCADE_MIN_AMPLITUDE:
            out.append(Saccade(start=a, end=b + 1, start_s=float(times[a]), amplitude_deg=amp,
                               peak_velocity_deg_s=float(np.nanmax(speed[a : b + 1]))))
    return out


def find_fixations(gaze: np.ndarray, valid_both: np.ndarray, deviation_pd: np.ndarray,
                   times: np.ndarray) -> list[Fixation]:
    """Steady fixation: both eyes slower than FIXATION_SPEED, for at least FIXATION_MIN_S.

    gaze (n, 2, 2); valid_both (n,); deviation_pd (n, 2). Speeds use a 3-frame central difference,
    which halves the landmark jitter of a frame-to-frame difference.
    """
    n = len(times)
    if n < 3:
        return []
    g = np.where(valid_both[:, None, None], gaze, np.nan)
    speed = np.full((n, 2), np.nan)
    speed[1:-1] = np.linalg.norm(g[2:] - g[:-2], axis=-1) / np.maximum(times[2:] - times[:-2], 1e-9)[:, None]
    steady = (speed < FIXATION_SPEED).all(axis=1)
    out = []
    for a, b in runs(steady):
        duration = float(times[b] - times[a])
        if duration >= FIXATION_MIN_S:
            d = deviation_pd[a : b + 1]
            h, v = (stat(d[:, k], np.ones(len(d), bool)).median for k in range(2))
            out.append(Fixation(start=a, end=b, start_s=float(times[a]), duration_s=duration,
                                deviation_h_pd=h, deviation_v_pd=v))
    return out


# --- nystagmus ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Oscillation:
    """The periodic part of one window of a gaze trace."""

    frequency_hz: float
    amplitude_deg: float  # peak to peak of the fitted waveform
    periodicity: float  # share of the detrended variance the periodic fit explains
    axis: np.ndarray  # (2,) unit (yaw, pitch) direction of the oscillation
    velocity_ratio: float  # faster / slower peak velocity of the two half-cycles (1 = sinusoid)
    fast_sign: int  # +1 when the faster phase moves along +axis


def _harmonic_design(t: np.ndarray, f: float, k: int) -> np.ndarray:
    cols = [np.ones_like(t), t - t.mean()]
    for h in range(1, k + 1):
        cols += [np.cos(2 * np.pi * h * f * t), np.sin(2 * np.pi * h * f * t)]
    return np.stack(cols, axis=1)


def oscillation(t: np.ndarray, xy: np.ndarray, fps: float) -> Oscillation | None:
    """Dominant oscillation of a short gaze trace (Lomb-Scargle search, then a harmonic fit).

    t : (m,) seconds; xy : (m, 2) yaw, pitch degrees. The trace is detrended (linear), and the
    frequency whose sinusoids (yaw and pitch) explain most variance is searched on a 0.01 Hz grid
    between NYSTAGMUS_MIN_HZ and the Nyquist limit. A fundamental plus harmonics below Nyquist, fitted
    to both, gives the beat's direction (the principal axis of that periodic part); along it, the
    waveform: its peak-to-peak amplitude and the asymmetry of its two phases' velocities (a jerk
    nystagmus has a slow and a fast phase, a pendular one neither).
    """
    m = len(t)
    nyquist = 0.5 * fps
    f_min = max(NYSTAGMUS_MIN_HZ, NYSTAGMUS_MIN_CYCLES / max(t[-1] - t[0], 1e-9))
    f_max = min(NYSTAGMUS_MAX_HZ, 0.95 * nyquist)
    if m < 8 or f_max <= f_min:
        return None
    a = np.stack([np.ones(m), t - t.mean()], axis=1)
    resid = xy - a @ np.linalg.lstsq(a, xy, rcond=None)[0]
    if float((resid**2).sum()) <= 1e-12:
        return None
    freqs = np.arange(f_min, f_max, 0.01)
    ph = 2 * np.pi * freqs[:, None] * t[None, :]
    c, sn = np.cos(ph), np.sin(ph)
    # Least-squares power of a sinusoid at each frequency (Lomb 1976; Scargle 1982), without the
    # time-shift term: the 2x2 normal equations solved per frequency, summed over yaw and pitch.
    cc, ss, cs = (c * c).sum(1), (sn * sn).sum(1), (c * sn).sum(1)
    yc, ys = c @ resid, sn @ resid  # (F, 2)
    det = np.maximum(cc * ss - cs**2, 1e-12)[:, None]
    power = ((ss[:, None] * yc**2 - 2 * cs[:, None] * yc * ys + cc[:, None] * ys**2) / det).sum(axis=1)
    best = int(np.argmax(power))
    if best == 0:
        return None  # still rising at the lowest frequency: a drift, not an oscillation
    f0 = float(freqs[best])
    k = max(1, min(NYSTAGMUS_MAX_HARMONICS, int(np.floor(0.95 * nyquist / f0))))
    design = _harmonic_design(t, f0, k)
    # The beat's direction: the principal axis of the periodic part of the fit (not of the whole
    # trace, where noise along the other axis could outweigh a small beat).
    coef2 = np.linalg.lstsq(design, resid, rcond=None)[0]  # (p, 2) yaw and pitch
    periodic = design[:, 2:] @ coef2[2:]
    axis = np.linalg.eigh(periodic.T @ periodic)[1][:, 1]
    if axis[np.argmax(np.abs(axis))] < 0:
        axis = -axis
    s = resid @ axis
    total = float(s @ s)
    if total <= 1e-12:
        return None
    coef = coef2 @ axis  # the fit of the trace along the axis (least squares is linear in the data)
    periodicity = float(1 - ((s - design @ coef) ** 2).sum() / total)
    # One period of the fitted waveform, finely sampled.
    u = np.linspace(0, 1 / f0, 400, endpoint=False)
    wave = np.zeros_like(u)
    for h in range(1, k + 1):
        wave += coef[2 * h] * np.cos(2 * np.pi * h * f0 * u) + coef[2 * h + 1] * np.sin(2 * np.pi * h * f0 * u)
    vel = np.gradient(wave, u)
    up, down = float(vel.max()), float(-vel.min())
    return Oscillation(
        frequency_hz=f0, amplitude_deg=float(wave.max() - wave.min()), periodicity=max(periodicity, 0.0),
        axis=axis, velocity_ratio=max(up, down) / max(min(up, down), 1e-9), fast_sign=1 if up >= down else -1,
    )


def _axis_name(axis: np.ndarray) -> str:
    angle = np.degrees(np.arctan2(abs(axis[1]), abs(axis[0])))
    return "horizontal" if angle < 30 else "vertical" if angle > 60 else "oblique"


def _beat_name(axis: np.ndarray, sign: int) -> str:
    d = axis * sign
    if abs(d[0]) >= abs(d[1]):
        return "left" if d[0] > 0 else "right"  # yaw + is toward the subject's left
    return "up" if d[1] > 0 else "down"


def find_nystagmus(gaze: np.ndarray, valid: np.ndarray, times: np.ndarray, fps: float | None):
    """Sliding-window nystagmus analysis of each eye's gaze trace.

    gaze (n, 2, 2); valid (n, 2). Windows of NYSTAGMUS_WINDOW_S every NYSTAGMUS_HOP_S; a window
    with at most 20 % invalid frames is analysed with ``oscillation`` on its valid frames only; it holds
    nystagmus when the periodic fit explains NYSTAGMUS_MIN_PERIODICITY of its variance and swings at
    least NYSTAGMUS_MIN_AMPLITUDE. A frame holds nystagmus when most windows covering it do.
    Returns (per-frame flags (n, 2), windows, per-eye summaries).
    """
    n = len(times)
    flags = np.zeros((n, 2), bool)
    windows: list[NystagmusWindow] = []
    summaries = []
    if fps is None or n < 8:
        empty = NystagmusSummary(False, 0.0, 0.0, None, None, None, None, None, None)
        return flags, (), (empty, empty)
    width = max(8, int(round(NYSTAGMUS_WINDOW_S * fps)))
    hop = max(1, int(round(NYSTAGMUS_HOP_S * fps)))
    starts = list(range(0, max(n - width, 0) + 1, hop))
    for e in range(2):
        votes = np.zeros(n)
        cover = np.zeros(n)
        found: list[tuple[Oscillation, float]] = []
        for s0 in starts:
            sl = slice(s0, min(s0 + width, n))
            ok = valid[sl, e]
            if ok.mean() < 0.8 or ok.sum() < 8:
                continue
            t = times[sl][ok]
            osc = oscillation(t, gaze[sl, e][ok], fps)
            if osc is None:
                continue
            present = (osc.periodicity >= NYSTAGMUS_MIN_PERIODICITY
                       and NYSTAGMUS_MIN_AMPLITUDE <= osc.amplitude_deg <= NYSTAGMUS_MAX_AMPLITUDE)
            windows.append(NystagmusWindow(eye=e, centre_s=float(t.mean()), frequency_hz=osc.frequency_hz,
                                           amplitude_deg=osc.amplitude_deg, periodicity=osc.periodicity,
                                           present=present))
            cover[sl] += 1
            if present:
                votes[sl] += 1
                found.append((osc, float(t.mean())))
        flags[:, e] = (cover > 0) & (votes > cover / 2) & valid[:, e]
        share = float(flags[:, e].sum() / max(valid[:, e].sum(), 1))
        analysed = float((cover > 0).sum() / fps)
        if not found or share < NYSTAGMUS_MIN_SHARE:
            summaries.append(NystagmusSummary(False, analysed, share, None, None, None, None, None, None))
            continue
        f = float(np.median([o.frequency_hz for o, _ in found]))
        amp = float(np.median([o.amplitude_deg for o, _ in found]))
        ref = found[0][0].axis
        axis = np.median([o.axis if o.axis @ ref >= 0 else -o.axis for o, _ in found], axis=0)
        axis = axis / max(np.linalg.norm(axis), 1e-9)
        jerk = [o.velocity_ratio >= JERK_VELOCITY_RATIO for o, _ in found]
        is_jerk = sum(jerk) > len(jerk) / 2
        fast = None
        if is_jerk:
            signs = [o.fast_sign * np.sign(o.axis @ axis) for o, _ in found]
            fast = _beat_name(axis, 1 if sum(signs) >= 0 else -1)
        summaries.append(NystagmusSummary(
            present=True, analysed_s=analysed, share=share, frequency_hz=f, amplitude_deg=amp,
            direction=_axis_name(axis),
            waveform="jerk" if is_jerk else "pendular", fast_phase=fast,
            sampling_ok=bool(fps >= 2 * NYQUIST_MARGIN * f),
        ))
    return flags, tuple(windows), tuple(summaries)


def sampling_warnings(fps: float | None, nystagmus) -> list[str]:
    """Warnings for each eye whose nystagmus frequency is too close to the frame rate's Nyquist limit."""
    out = []
    for e, s in enumerate(nystagmus):
        if s.present and not s.sampling_ok:
            out.append(
                f"{EYES[e]} eye: the frame rate ({fps:.1f} fps) is too low for the {s.frequency_hz:.1f} Hz nystagmus "
                f"found: sampling needs at least twice that frequency ({2 * s.frequency_hz:.1f} fps), with a margin "
                f"{2 * NYQUIST_MARGIN * s.frequency_hz:.1f} fps; the frequency may be aliased and the amplitude "
                "underestimated")
    return out


# --- summaries ----------------------------------------------------------------------------------


def stat(values: np.ndarray, valid: np.ndarray) -> Stat:
    v = np.asarray(values, float)[np.asarray(valid, bool)]
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Stat(None, None, None, 0)
    p5, med, p95 = np.percentile(v, [5, 50, 95])
    return Stat(float(med), float(p5), float(p95), int(v.size))


def pd_for_labels(fm: FrameMeasures) -> np.ndarray:
    """(n, 2) the deviation in prism dioptres for labelling: a deviation of 90 degrees or more has no
    prism-dioptre value, and lies beyond any threshold on its side (+/- inf)."""
    pd = fm.deviation_pd
    return np.where(np.isnan(pd) & ~np.isnan(fm.deviation), np.sign(fm.deviation) * np.inf, pd)


def label_horizontal(pd, threshold: float) -> str:
    return "eso" if pd >= threshold else "exo" if pd <= -threshold else "ortho"


def label_vertical(pd, threshold: float) -> str:
    return "hyper" if pd >= threshold else "hypo" if pd <= -threshold else "ortho"


def _posture(yaw: Stat, pitch: Stat, roll: Stat) -> tuple[bool, str]:
    parts = []
    if yaw.median is not None and abs(yaw.median) > HEAD_POSTURE_DEG:
        parts.append(f"face turned to the {'left' if yaw.median > 0 else 'right'} {abs(yaw.median):.0f} deg")
    if pitch.median is not None and abs(pitch.median) > HEAD_POSTURE_DEG:
        parts.append(f"chin {'up' if pitch.median > 0 else 'down'} {abs(pitch.median):.0f} deg")
    if roll.median is not None and abs(roll.median) > HEAD_POSTURE_DEG:
        parts.append(f"head tilted to the {'left' if roll.median > 0 else 'right'} shoulder {abs(roll.median):.0f} deg")
    return bool(parts), ", ".join(parts) if parts else "normal"


def _side_ratio(right: float | None, left: float | None, least: float):
    """(weaker / stronger, weaker side) of two movements; None when neither side moved ``least``."""
    if right is None or left is None or max(right, left) < least:
        return None, None
    ratio = min(right, left) / max(right, left)
    weaker = None if ratio >= 0.9 else ("right" if right < left else "left")
    return ratio, weaker


def summarise(fm: FrameMeasures, blinks: list[Blink], saccades: list[Saccade], fixations: list[Fixation],
              nystagmus: tuple[NystagmusSummary, NystagmusSummary], threshold_pd: float) -> Summary:
    found = fm.face_found
    usable = found & ~fm.head_turned
    eyes = []
    for e in range(2):
        ok = fm.valid[:, e]
        eyes.append(EyeSummary(
            fissure_height_mm=stat(fm.fissure_height[:, e], ok), fissure_width_mm=stat(fm.fissure_width[:, e], ok),
            mrd1_mm=stat(fm.mrd1[:, e], ok), mrd2_mm=stat(fm.mrd2[:, e], ok),
            opening_ratio=stat(fm.opening_ratio[:, e], ok),
            scleral_show_upper_mm=stat(fm.scleral_show_upper[:, e], ok),
            scleral_show_lower_mm=stat(fm.scleral_show_lower[:, e], ok),
            gaze_yaw_deg=stat(fm.gaze[:, e, 0], ok), gaze_pitch_deg=stat(fm.gaze[:, e, 1], ok),
        ))
    both = fm.valid.all(axis=1)
    pd = fm.deviation_pd
    side = pd_for_labels(fm)
    fix = np.zeros(fm.n_frames, bool)
    for f in fixations:
        fix[f.start : f.end + 1] = True
    fix &= both
    nb = max(int(both.sum()), 1)
    fh = fv = None
    if fix.sum() >= 5:
        fh, fv = stat(pd[:, 0], fix).median, stat(pd[:, 1], fix).median
    ref = fix if fix.sum() >= 5 else both
    h_ref, v_ref = (float(np.median(side[ref, k])) if ref.any() else None for k in range(2))
    deviation = DeviationSummary(
        horizontal_deg=stat(fm.deviation[:, 0], both), vertical_deg=stat(fm.deviation[:, 1], both),
        horizontal_pd=stat(pd[:, 0], both), vertical_pd=stat(pd[:, 1], both),
        fixation_frames=int(fix.sum()), fixation_horizontal_pd=fh, fixation_vertical_pd=fv,
        horizontal_label="unknown" if h_ref is None else label_horizontal(h_ref, threshold_pd),
        vertical_label="unknown" if v_ref is None else label_vertical(v_ref, threshold_pd),
        share_eso=float((both & (side[:, 0] >= threshold_pd)).sum() / nb),
        share_exo=float((both & (side[:, 0] <= -threshold_pd)).sum() / nb),
        share_hyper=float((both & (side[:, 1] >= threshold_pd)).sum() / nb),
        share_hypo=float((both & (side[:, 1] <= -threshold_pd)).sum() / nb),
    )
    yaw, pitch, roll = (stat(fm.head_pose[:, k], found) for k in range(3))
    abnormal, posture = _posture(yaw, pitch, roll)
    head = HeadSummary(yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll,
                       share_turned=float((found & fm.head_turned).sum() / max(found.sum(), 1)),
                       abnormal_posture=abnormal, posture=posture)
    minutes = _usable_minutes(fm.time_s, usable)
    blink_summary = BlinkSummary(
        count=len(blinks), rate_per_min=None if not minutes else len(blinks) / minutes,
        full=sum(b.full for b in blinks), incomplete=sum(not b.full for b in blinks),
        asymmetric=sum(b.asymmetric for b in blinks), prolonged=sum(b.prolonged for b in blinks),
        duration_s=stat(np.array([b.duration_s for b in blinks]), np.ones(len(blinks), bool)),
    )
    sacc_minutes = _usable_minutes(fm.time_s, both)
    saccade_summary = SaccadeSummary(
        count=len(saccades), rate_per_min=None if not sacc_minutes else len(saccades) / sacc_minutes,
        amplitude_deg=stat(np.array([s.amplitude_deg for s in saccades]), np.ones(len(saccades), bool)),
        peak_velocity_deg_s=stat(np.array([s.peak_velocity_deg_s for s in saccades]), np.ones(len(saccades), bool)),
    )
    strong_mouth = np.fmax(fm.mouth_corner[:, 0], fm.mouth_corner[:, 1]) >= MOUTH_MOVEMENT_MM
    strong_brow = np.fmax(np.abs(fm.brow[:, 0]), np.abs(fm.brow[:, 1])) >= BROW_MOVEMENT_MM
    mr, ml = (stat(fm.mouth_corner[:, e], usable) for e in range(2))
    br, bl = (stat(fm.brow[:, e], usable) for e in range(2))
    p95 = lambda s: s.p95  # noqa: E731
    mouth_ratio, mouth_weaker = _side_ratio(p95(mr), p95(ml), MOUTH_MOVEMENT_MM)
    brow_ratio, brow_weaker = _side_ratio(p95(br), p95(bl), BROW_MOVEMENT_MM)
    symmetry = SymmetrySummary(
        mouth_corner_right_mm=p95(mr), mouth_corner_left_mm=p95(ml), mouth_ratio=mouth_ratio, mouth_weaker=mouth_weaker,
        brow_right_mm=p95(br), brow_left_mm=p95(bl), brow_ratio=brow_ratio, brow_weaker=brow_weaker,
        expression_frames=int((usable & (strong_mouth | strong_brow)).sum()),
    )
    return Summary(eyes=tuple(eyes), deviation=deviation, head=head, blinks=blink_summary, nystagmus=nystagmus,
                   saccades=saccade_summary, symmetry=symmetry)


def _usable_minutes(times: np.ndarray, usable: np.ndarray) -> float | None:
    if len(times) < 2 or not usable.any():
        return None
    dt = float(np.median(np.diff(times)))
    return usable.sum() * dt / 60.0


# --- driver -------------------------------------------------------------------------------------


def measure_fit(fit: FaceFit, identity: Identity, track: Track, template: Template, times: np.ndarray,
                options: MeasureOptions = MeasureOptions(), source: str = "") -> Measurement:
    """All measurements of one fitted face track.

    fit, identity : from ``fit.fit_track(track, template)``; times : (n,) seconds of each frame.
    """
    n = fit.n_frames
    times = np.asarray(times, float)
    if times.shape != (n,):
        raise MeasureError(f"expected {n} frame times, got {times.shape}")
    found = fit.observed.copy()
    if not found.any():
        raise MeasureError("the face was not found in any frame")
    k = options.iris_diameter_mm / topology.IRIS_DIAMETER_MM  # true mm per fitted mm
    mm = identity.mm_per_unit
    diffs = np.diff(times)
    fps = float(1.0 / np.median(diffs)) if n > 1 and np.median(diffs) > 0 else None

    # Head-space landmarks (true mm) of the observed frames, held over the others like the fit.
    obs_pose = Pose(scale=fit.pose.scale[found], rotation=fit.pose.rotation[found],
                    translation=fit.pose.translation[found])
    shapes_obs = to_head(track.points[found], obs_pose) * mm
    shapes = fill_missing(shapes_obs, found)
    mid = canthi_mid(shapes)  # (n, 2, 3)
    # The eyeballs as the fit placed them: about the corners read in the pose that follows the eyes as
    # they do (``fit.follow``), and put where the pose less that following says.
    corner_pose = obs_pose
    read_gaze = fit.gaze if fit.raw_gaze is None else fit.raw_gaze
    if template.pitch_following is not None:
        corner_pose = follow(obs_pose, read_gaze[found], template.pitch_following)
    corners = to_head(track.points[found][:, list(topology.EYE_CORNERS)], corner_pose) * mm  # outer R, L; inner R, L
    corners = (corners[:, :2] + corners[:, 2:]) / 2
    centres = eyeball_centres(corners, template) + (0.0 if fit.eyeballs is None else fit.eyeballs[found])
    # The iris centre where the fit read it: on its eyeball, along the gaze (the limbus fitted as the
    # eyeball's, ``fit.limbus_iris``), not the landmark stage's circle, which trades size for height
    # where a lid hides the limbus's top (MRD1 0.35 mm high under the 1.8 mm droops of a synthetic clip).
    iris_obs = centres + topology.LIMBUS_DEPTH_MM * geometry.gaze_vector(read_gaze[found])
    iris = fill_missing(bilateral_filter(iris_obs), found)  # (n, 2, 3)

    metrics = []
    for e in range(2):
        lid_idx = list(topology.LID_POINTS[e])
        up_n = topology.N_UPPER
        corners = [topology.OUTER_CORNER[e], topology.INNER_CORNER[e]]
        cxy = shapes[:, corners, :2]  # (n, 2, 2)
        lid_y = mid[:, e, 1, None] + fit.lids[:, e]  # (n, 14) absolute head y
        lid_x = shapes[:, lid_idx, 0]
        upper = np.concatenate([cxy[:, :1], np.stack([lid_x[:, :up_n], lid_y[:, :up_n]], -1), cxy[:, 1:]], axis=1)
        lower = np.concatenate([cxy[:, :1], np.stack([lid_x[:, up_n:], lid_y[:, up_n:]], -1), cxy[:, 1:]], axis=1)
        metrics.append(lid_metrics(upper * k, lower * k, iris[:, e, :2] * k, options.iris_diameter_mm))

    def per_eye(name):
        return np.stack([getattr(m, name) for m in metrics], axis=1)

    pose = geometry.euler_from_rotation(fit.pose.rotation)
    head_turned = (np.abs(pose[:, :2]) > options.max_head_turn_deg).any(axis=1)
    usable = found & ~head_turned
    gap = lid_gap(fit.lids) * k  # (n, 2)
    reference = np.array([
        np.percentile(gap[usable, e], OPEN_PERCENTILE) if usable.any() else np.nan for e in range(2)
    ])
    openness = gap / np.maximum(reference, 1e-6)
    ratio = per_eye("opening_ratio")
    blinks = find_blinks(np.where(usable[:, None], openness, np.nan), usable, times) if n > 1 else []
    blink_no = np.zeros(n, int)
    near_blink = np.zeros(n, bool)
    guard = int(np.ceil(BLINK_GUARD_S * fps - 1e-6)) if fps else 0  # 3 frames at 30 fps, not 4
    for j, b in enumerate(blinks, 1):
        blink_no[b.start : b.end + 1] = j
        near_blink[max(b.start - guard, 0) : b.end + guard + 1] = True
    eye_closed = (openness < BLINK_THRESHOLD) | (ratio < CLOSED_OPENING) | near_blink[:, None]
    valid = usable[:, None] & ~eye_closed

    gaze = fit.gaze.copy()
    deviation = np.stack([gaze[:, 0, 0] - gaze[:, 1, 0], gaze[:, 0, 1] - gaze[:, 1, 1]], axis=1)
    both = valid.all(axis=1)
    version = np.where(both[:, None], gaze.mean(axis=1), np.nan)
    saccades = find_saccades(version, times) if n > 1 else []
    saccade_flag = np.zeros(n, bool)
    for s in saccades:
        saccade_flag[s.start : s.end + 1] = True
    fixations = find_fixations(gaze, both, prism_dioptres(deviation), times)
    fixation_flag = np.zeros(n, bool)
    for f in fixations:
        fixation_flag[f.start : f.end + 1] = True
    nyst_flags, nyst_windows, nyst_summary = find_nystagmus(gaze if fit.raw_gaze is None else fit.raw_gaze,
                                                            valid, times, fps)

    expression = fit.expression.astype(np.float64) * mm * k
    mouth = np.linalg.norm(expression[:, list(topology.MOUTH_CORNERS), :2], axis=-1)  # (n, 2)
    brow = np.stack([expression[:, list(topology.BROWS[e]), 1].mean(axis=1) for e in range(2)], axis=1)

    lost = ~found

    def nan_lost(a):
        a = np.asarray(a, float).copy()
        a[lost] = np.nan
        return a

    fm = FrameMeasures(
        frame=np.arange(n), time_s=times, face_found=found, head_turned=head_turned & found,
        eye_closed=eye_closed & found[:, None], valid=valid,
        head_pose=nan_lost(pose), fissure_height=nan_lost(per_eye("fissure_height")),
        fissure_width=nan_lost(per_eye("fissure_width")), mrd1=nan_lost(per_eye("mrd1")),
        mrd2=nan_lost(per_eye("mrd2")), opening_ratio=nan_lost(ratio), openness=nan_lost(openness),
        scleral_show_upper=nan_lost(per_eye("scleral_show_upper")),
        scleral_show_lower=nan_lost(per_eye("scleral_show_lower")),
        gaze=nan_lost(gaze), deviation=nan_lost(deviation), fixation=fixation_flag, saccade=saccade_flag,
        blink=blink_no, nystagmus=nyst_flags, mouth_corner=nan_lost(mouth), brow=nan_lost(brow),
    )
    summary = summarise(fm, blinks, saccades, fixations, nyst_summary, options.deviation_threshold_pd)
    warnings = []
    if fps is None:
        warnings.append("a single frame: no blinks, saccades or nystagmus can be measured")
    warnings += sampling_warnings(fps, nyst_summary)
    if usable.sum() < 0.5 * n:
        warnings.append(f"only {usable.sum()} of {n} frames are usable (face found, head turned less than "
                        f"{options.max_head_turn_deg:.0f} deg)")
    if summary.deviation.horizontal_label == "unknown":
        warnings.append("no frame had both eyes valid: no deviation could be measured")
    return Measurement(
        source=source, fps=fps, duration_s=float(times[-1] - times[0] + (1 / fps if fps else 0)),
        iris_diameter_mm=options.iris_diameter_mm, frames=fm, blinks=tuple(blinks), saccades=tuple(saccades),
        fixations=tuple(fixations), nystagmus_windows=nyst_windows, summary=summary, options=options,
        warnings=tuple(warnings),
    )


def measure_track(track: Track, times: np.ndarray, template: Template | None = None,
                  options: MeasureOptions = MeasureOptions(), source: str = "") -> Measurement:
    """Fit one face track (``fit.fit_track``) and measure it."""
    template = template or load_template()
    fit, identity = fit_track(track, template)
    return measure_fit(fit, identity, track, template, times, options, source)


def measure_video(src, options: MeasureOptions = MeasureOptions(),
                  progress: Callable[[str, int, int | None], None] | None = None) -> Measurement:
    """Measure eyes, lids, gaze, head pose, blinks, nystagmus, saccades and facial symmetry in a video.

    Runs the project's landmark and fitting stages (``pipeline.track_video``, ``fit.fit_track``) on
    the longest face track. Works the same on an original and on a masked video.
    Raises pipeline.NoFaceError when no face is found.
    """
    from .pipeline import NoFaceError, track_video

    kwargs = {} if progress is None else {"progress": progress}
    info, pts, tracks = track_video(src, MaskOptions(max_faces=options.max_faces), **kwargs)
    if not tracks:
        raise NoFaceError(f"no face found in any frame of '{src}'; nothing was measured")
    times = pts.astype(np.float64) * float(info.time_base)
    if info.is_image:
        times = np.zeros(1)
    return measure_track(tracks[0], times, options=options, source=str(Path(src).name))


# --- the per-frame table ------------------------------------------------------------------------

# (column, unit, meaning); per-eye values end in _r (subject's right eye) or _l.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("frame", "", "frame number, from 0 in decode order"),
    ("time_s", "s", "frame timestamp"),
    ("face_found", "bool", "the face was found in this frame; when 0 every value is empty"),
    ("head_turned", "bool", "head yaw or pitch beyond the limit (30 deg): every value of the frame is invalid"),
    ("eye_closed_r", "bool", "right eye closed (below half its usual opening) or within 0.1 s of a blink: its gaze "
     "and lid values are invalid"),
    ("eye_closed_l", "bool", "left eye closed"),
    ("valid_r", "bool", "right-eye values valid: face found, head not turned, eye open"),
    ("valid_l", "bool", "left-eye values valid"),
    ("head_yaw_deg", "deg", "head yaw, + face turned toward image right (the subject's left)"),
    ("head_pitch_deg", "deg", "head pitch, + chin up"),
    ("head_roll_deg", "deg", "head roll, + clockwise in the image"),
    ("fissure_height_r_mm", "mm", "palpebral fissure height at the iris centre"),
    ("fissure_height_l_mm", "mm", ""),
    ("fissure_width_r_mm", "mm", "palpebral fissure width, corner to corner"),
    ("fissure_width_l_mm", "mm", ""),
    ("mrd1_r_mm", "mm", "margin-reflex distance 1: upper lid above the iris centre (negative: lid below it)"),
    ("mrd1_l_mm", "mm", ""),
    ("mrd2_r_mm", "mm", "margin-reflex distance 2: lower lid below the iris centre"),
    ("mrd2_l_mm", "mm", ""),
    ("opening_ratio_r", "", "fissure height / fissure width"),
    ("opening_ratio_l", "", ""),
    ("openness_r", "", "mean lid gap over the subject's usual open gap (1 open as usual, 0 shut)"),
    ("openness_l", "", ""),
    ("scleral_show_upper_r_mm", "mm", "sclera visible between the upper limbus and the upper lid (0 if none)"),
    ("scleral_show_upper_l_mm", "mm", ""),
    ("scleral_show_lower_r_mm", "mm", "sclera visible between the lower limbus and the lower lid (0 if none)"),
    ("scleral_show_lower_l_mm", "mm", ""),
    ("gaze_yaw_r_deg", "deg", "eye yaw in the head, + toward the subject's left"),
    ("gaze_yaw_l_deg", "deg", ""),
    ("gaze_pitch_r_deg", "deg", "eye pitch in the head, + up"),
    ("gaze_pitch_l_deg", "deg", ""),
    ("deviation_h_deg", "deg", "horizontal deviation, right minus left yaw: + convergent (eso), - divergent (exo)"),
    ("deviation_v_deg", "deg", "vertical deviation, right minus left pitch: + right eye higher (hyper)"),
    ("deviation_h_pd", "PD", "horizontal deviation in prism dioptres, 100 tan; empty from 90 degrees on"),
    ("deviation_v_pd", "PD", "vertical deviation in prism dioptres"),
    ("deviation_h_label", "", "eso / exo / ortho (within the threshold); empty when not valid for both eyes"),
    ("deviation_v_label", "", "hyper / hypo / ortho: the right eye against the left"),
    ("fixation", "bool", "steady fixation: both eyes slower than 30 deg/s for at least 0.3 s"),
    ("saccade", "bool", "within a saccade"),
    ("blink", "", "blink number (1, 2, ...) while the lids are below half their usual opening, else 0"),
    ("nystagmus_r", "bool", "right eye: within a stretch of nystagmus"),
    ("nystagmus_l", "bool", "left eye: within a stretch of nystagmus"),
    ("mouth_corner_r_mm", "mm", "right mouth corner movement from the neutral face, in the face plane"),
    ("mouth_corner_l_mm", "mm", ""),
    ("brow_r_mm", "mm", "right brow raise from the neutral face (- lowered)"),
    ("brow_l_mm", "mm", ""),
)


def frame_columns(fm: FrameMeasures,
                  threshold_pd: float = MeasureOptions.deviation_threshold_pd) -> dict[str, np.ndarray]:
    """The per-frame table, column by column, in COLUMNS order."""
    pd, side = fm.deviation_pd, pd_for_labels(fm)
    both = fm.valid.all(axis=1)
    h_label = np.array(["" if not ok else label_horizontal(v, threshold_pd) for v, ok in zip(side[:, 0], both)], object)
    v_label = np.array(["" if not ok else label_vertical(v, threshold_pd) for v, ok in zip(side[:, 1], both)], object)
    cols = {
        "frame": fm.frame, "time_s": fm.time_s, "face_found": fm.face_found, "head_turned": fm.head_turned,
        "eye_closed_r": fm.eye_closed[:, 0], "eye_closed_l": fm.eye_closed[:, 1],
        "valid_r": fm.valid[:, 0], "valid_l": fm.valid[:, 1],
        "head_yaw_deg": fm.head_pose[:, 0], "head_pitch_deg": fm.head_pose[:, 1], "head_roll_deg": fm.head_pose[:, 2],
    }
    for name, arr in (("fissure_height", fm.fissure_height), ("fissure_width", fm.fissure_width), ("mrd1", fm.mrd1),
                      ("mrd2", fm.mrd2)):
        cols[f"{name}_r_mm"], cols[f"{name}_l_mm"] = arr[:, 0], arr[:, 1]
    cols["opening_ratio_r"], cols["opening_ratio_l"] = fm.opening_ratio[:, 0], fm.opening_ratio[:, 1]
    cols["openness_r"], cols["openness_l"] = fm.openness[:, 0], fm.openness[:, 1]
    for name, arr in (("scleral_show_upper", fm.scleral_show_upper), ("scleral_show_lower", fm.scleral_show_lower)):
        cols[f"{name}_r_mm"], cols[f"{name}_l_mm"] = arr[:, 0], arr[:, 1]
    cols["gaze_yaw_r_deg"], cols["gaze_yaw_l_deg"] = fm.gaze[:, 0, 0], fm.gaze[:, 1, 0]
    cols["gaze_pitch_r_deg"], cols["gaze_pitch_l_deg"] = fm.gaze[:, 0, 1], fm.gaze[:, 1, 1]
    cols["deviation_h_deg"], cols["deviation_v_deg"] = fm.deviation[:, 0], fm.deviation[:, 1]
    cols["deviation_h_pd"], cols["deviation_v_pd"] = pd[:, 0], pd[:, 1]
    cols["deviation_h_label"], cols["deviation_v_label"] = h_label, v_label
    cols["fixation"], cols["saccade"], cols["blink"] = fm.fixation, fm.saccade, fm.blink
    cols["nystagmus_r"], cols["nystagmus_l"] = fm.nystagmus[:, 0], fm.nystagmus[:, 1]
    cols["mouth_corner_r_mm"], cols["mouth_corner_l_mm"] = fm.mouth_corner[:, 0], fm.mouth_corner[:, 1]
    cols["brow_r_mm"], cols["brow_l_mm"] = fm.brow[:, 0], fm.brow[:, 1]
    assert list(cols) == [c[0] for c in COLUMNS]
    return cols


# --- simple eye signals straight from the landmarks (kept for the pipeline tests) ----------------


@dataclass(frozen=True)
class EyeSignals:
    """Per-frame eye signals of one face; NaN where the face was not found."""

    opening: np.ndarray  # (n, 2) lid distance over eye width, per eye
    present: np.ndarray  # (n,) bool


def eye_signals(track: Track, template: Template) -> EyeSignals:
    """Lid opening straight from the landmarks (rigid pose removed with ``fit.fit_pose``), without the
    fitted eye model."""
    opening = np.full((track.n_frames, 2), np.nan)
    if track.present.any():
        pts = track.points[track.present].astype(np.float64)
        opening[track.present] = lid_opening(to_head(pts, fit_pose(pts, template.landmarks())))
    return EyeSignals(opening=opening, present=track.present.copy())


def blinks(opening: np.ndarray, threshold: float = BLINK_THRESHOLD) -> list[tuple[int, int]]:
    """Blink events (first, last frame) from a lid-opening trace (n,), NaN-tolerant: runs of frames
    below ``threshold`` times the median opening, joined across one-frame gaps."""
    closed = opening < threshold * np.nanmedian(opening)
    return runs(closed, bridge=1)
