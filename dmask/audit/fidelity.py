"""Fidelity: do the clinical measurements of the masked video agree with those of the original?

``dmask measure`` (``measure.measure_video``) runs on both; each measure is compared over the frames
valid in both (per eye: that eye valid; deviation: both eyes valid), frame by frame:

* ICC(2,1) (Shrout & Fleiss; absolute agreement), Bland-Altman bias and 95 % limits (masked minus
  original), mean absolute difference in clinical units;
* pass when the mean absolute difference is within the tolerance (``TOLERANCES``);
* blinks: event F1, events matching when they overlap within ``BLINK_TOLERANCE_FRAMES``;
* nystagmus per eye: both absent, or both present with frequencies within 0.2 Hz.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..measure import Measurement
from . import stats

# Tolerance of each unit: MRD1 and fissure height 0.5 mm, gaze 2 deg, deviation 2 prism dioptres.
TOLERANCES = {"mm": 0.5, "deg": 2.0, "PD": 2.0}
NYSTAGMUS_TOLERANCE_HZ = 0.2
BLINK_TOLERANCE_FRAMES = 2
# (name, unit) of the compared measures; _r / _l: the subject's right / left eye.
MEASURES: tuple[tuple[str, str], ...] = (
    ("fissure_height_r", "mm"), ("fissure_height_l", "mm"), ("mrd1_r", "mm"), ("mrd1_l", "mm"),
    ("gaze_yaw_r", "deg"), ("gaze_yaw_l", "deg"), ("gaze_pitch_r", "deg"), ("gaze_pitch_l", "deg"),
    ("deviation_h", "PD"), ("deviation_v", "PD"),
)


def measure_values(m: Measurement, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(values (n,), valid (n,) bool) of one of MEASURES."""
    fm = m.frames
    eye = {"r": 0, "l": 1}.get(name[-1])
    if name.startswith("fissure_height"):
        return fm.fissure_height[:, eye], fm.valid[:, eye]
    if name.startswith("mrd1"):
        return fm.mrd1[:, eye], fm.valid[:, eye]
    if name.startswith("gaze_yaw"):
        return fm.gaze[:, eye, 0], fm.valid[:, eye]
    if name.startswith("gaze_pitch"):
        return fm.gaze[:, eye, 1], fm.valid[:, eye]
    if name in ("deviation_h", "deviation_v"):
        return fm.deviation_pd[:, 0 if name == "deviation_h" else 1], fm.valid.all(axis=1)
    raise KeyError(name)


@dataclass(frozen=True)
class Agreement:
    name: str
    unit: str
    tolerance: float
    n: int  # frames compared
    icc: float
    bland_altman: stats.BlandAltman
    passed: bool | None  # None without frames to compare


def agreement(name: str, unit: str, original: np.ndarray, masked: np.ndarray) -> Agreement:
    """Agreement of paired values (frames valid in both already chosen; NaN pairs dropped)."""
    ba = stats.bland_altman(original, masked)
    tol = TOLERANCES[unit]
    return Agreement(name=name, unit=unit, tolerance=tol, n=ba.n,
                     icc=stats.icc_2_1(np.stack([np.ravel(original), np.ravel(masked)], axis=1)),
                     bland_altman=ba, passed=None if ba.n == 0 else bool(ba.mean_abs_diff <= tol))


@dataclass(frozen=True)
class NystagmusAgreement:
    eye: str
    original_hz: float | None  # None: absent
    masked_hz: float | None
    passed: bool


@dataclass(frozen=True)
class Fidelity:
    """Agreement of one video's measurements with its mask's."""

    source: str
    frames: int
    measures: tuple[Agreement, ...]
    blinks: stats.EventAgreement
    nystagmus: tuple[NystagmusAgreement, NystagmusAgreement]
    # name -> (original, masked) values of the frames compared, for pooling and plots
    pairs: dict = field(repr=False, compare=False)
    # name -> (time_s, original, masked) per frame with invalid frames NaN, for time-series overlays
    series: dict = field(repr=False, compare=False)


def compare(original: Measurement, masked: Measurement) -> Fidelity:
    """Compare the measurements of an original and its mask, frame by frame (a mask keeps every
    frame: ValueError when the two differ in length)."""
    n = original.frames.n_frames
    if masked.frames.n_frames != n:
        raise ValueError(f"'{masked.source}' has {masked.frames.n_frames} frames and '{original.source}' {n}: "
                         "not an original and its mask")
    results, pairs, series = [], {}, {}
    for name, unit in MEASURES:
        a, va = measure_values(original, name)
        b, vb = measure_values(masked, name)
        both = va & vb
        pairs[name] = (a[both], b[both])
        series[name] = (original.frames.time_s, np.where(va, a, np.nan), np.where(vb, b, np.nan))
        results.append(agreement(name, unit, a[both], b[both]))
    blinks = stats.event_f1([(x.start, x.end) for x in original.blinks], [(x.start, x.end) for x in masked.blinks],
                            BLINK_TOLERANCE_FRAMES)
    nyst = []
    for e, eye in enumerate(("right", "left")):
        so, sm = original.summary.nystagmus[e], masked.summary.nystagmus[e]
        fo = so.frequency_hz if so.present else None
        fm = sm.frequency_hz if sm.present else None
        ok = (fo is None and fm is None) or (fo is not None and fm is not None
                                              and abs(fo - fm) <= NYSTAGMUS_TOLERANCE_HZ)
        nyst.append(NystagmusAgreement(eye=eye, original_hz=fo, masked_hz=fm, passed=bool(ok)))
    return Fidelity(source=original.source, frames=n, measures=tuple(results), blinks=blinks,
                    nystagmus=(nyst[0], nyst[1]), pairs=pairs, series=series)


@dataclass(frozen=True)
class PooledFidelity:
    """Agreement over the frames of all videos together, and the blink events of all videos."""

    videos: int
    measures: tuple[Agreement, ...]
    blinks: stats.EventAgreement
    nystagmus_passed: int  # eyes agreeing (both absent, or frequency within tolerance)
    nystagmus_eyes: int


def pool(results: Sequence[Fidelity]) -> PooledFidelity:
    measures = []
    for name, unit in MEASURES:
        a = np.concatenate([r.pairs[name][0] for r in results]) if results else np.zeros(0)
        b = np.concatenate([r.pairs[name][1] for r in results]) if results else np.zeros(0)
        measures.append(agreement(name, unit, a, b))
    ref = sum(r.blinks.reference for r in results)
    got = sum(r.blinks.found for r in results)
    matched = sum(r.blinks.matched for r in results)
    blinks = stats.EventAgreement(reference=ref, found=got, matched=matched,
                                  precision=matched / got if got else None, recall=matched / ref if ref else None,
                                  f1=2 * matched / (ref + got) if ref + got else None)
    eyes = [x for r in results for x in r.nystagmus]
    return PooledFidelity(videos=len(results), measures=tuple(measures), blinks=blinks,
                          nystagmus_passed=sum(x.passed for x in eyes), nystagmus_eyes=len(eyes))
