"""Eye signals measured from landmarks, the same way on an original and on a masked video.

Reuses the landmark and fitting stages: the head pose is removed with ``fit.fit_pose`` and the
metric scale comes from the iris (11.7 mm).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import topology
from .fit import fit_pose, iris_diameter, lid_opening, to_head
from .template import Template, canthi_mid
from .types import Track

# A blink: the lid opening falls below this share of the video's median opening.
BLINK_THRESHOLD = 0.5


@dataclass(frozen=True)
class EyeSignals:
    """Per-frame eye signals of one face; NaN where the face was not found."""

    opening: np.ndarray  # (n, 2) lid distance over eye width, per eye
    iris_x: np.ndarray  # (n, 2) iris centre right of the eye-corner midpoint, head space, mm
    present: np.ndarray  # (n,) bool


def eye_signals(track: Track, template: Template) -> EyeSignals:
    n = track.n_frames
    opening = np.full((n, 2), np.nan)
    iris_x = np.full((n, 2), np.nan)
    if track.present.any():
        pts = track.points[track.present].astype(np.float64)
        shapes = to_head(pts, fit_pose(pts, template.vertices))
        mm = topology.IRIS_DIAMETER_MM / np.median(iris_diameter(shapes))
        opening[track.present] = lid_opening(shapes)
        iris_x[track.present] = mm * (shapes[:, list(topology.IRIS_CENTRE), 0] - canthi_mid(shapes)[..., 0])
    return EyeSignals(opening=opening, iris_x=iris_x, present=track.present.copy())


def blinks(opening: np.ndarray, threshold: float = BLINK_THRESHOLD) -> list[tuple[int, int]]:
    """Blink events (first, last frame) from a lid-opening trace (n,), NaN-tolerant: runs of frames
    below ``threshold`` times the median opening, joined across one-frame gaps."""
    closed = opening < threshold * np.nanmedian(opening)
    events: list[list[int]] = []
    for i in np.flatnonzero(closed):
        if events and i - events[-1][1] <= 2:
            events[-1][1] = i
        else:
            events.append([i, i])
    return [(a, b) for a, b in events]
