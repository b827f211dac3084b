"""Measure how the landmark stage reads the rendered template, and store it in the template.

    python tools/calibrate_template.py      # after tools/build_template.py, and whenever the renderer
                                            # or the landmark stage changes (tests/test_template.py checks)

Renders the template (through the real renderer and H.264), runs dmask's landmark stage on it
(MediaPipe, then the eyes' pixel refinement) and compares what it reports with what was drawn:

* the head pose: the template is drawn in a grid of head turns, tilts and rolls, and its pose is read
  as the fit reads it (``fit.fit_pose`` against ``Template.landmarks``). The reading is nearly linear
  in the drawn rotation (axis-angle vectors): read = gain @ drawn + offset, stored as ``pose_gain`` and
  ``pose_offset``; ``Template.drawn_rotation`` inverts it, so a mask is read in the pose it was given.
  What the line leaves is then taken out node by node on a finer grid (``template.POSE_TABLE_AXES``):
  drawn through the current model, each node's reading error, taken back through the gain, is
  subtracted from ``pose_correction`` there, TABLE_ROUNDS times.
* the eye corners: with the head turned and tilted and the eyes looking about, each corner reported is
  taken back into head space with the known pose; the mean offset from the vertex is stored as
  ``corner_offsets`` (``Template.landmarks``). The synthetic lids are given relative to the corners as
  read, so these renders do not depend on the offsets.
* the head pose's following of the eyes: from the same renders, how the pose read moves per degree
  of the eyes' pitch with the head held still (the yaw fitted beside it), stored as ``pitch_following``
  (``fit.follow``).

Each depends a little on the other (the corners are 4 of the points the pose is read from), so the two
are measured twice in turn. Writes dmask/assets/template.npz; uses nothing but the template.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dmask import geometry, synth  # noqa: E402
from dmask.fit import fit_pose  # noqa: E402
from dmask.landmarks import LandmarkTracker  # noqa: E402
from dmask.pipeline import render_params  # noqa: E402
from dmask.template import (ASSET, PITCH_FOLLOWING_RANGE_DEG, POSE_TABLE_AXES, Template,  # noqa: E402
                            template_from)
from dmask.topology import EYE_CORNERS  # noqa: E402
from dmask.types import MaskOptions, Pose  # noqa: E402
from dmask.video import iter_frames  # noqa: E402

HEADS = ((0.0, 0.0, 0.0), (10.0, 0.0, 0.0), (-10.0, 0.0, 0.0), (0.0, 8.0, 0.0), (0.0, -8.0, 0.0))
# (time s, yaw, pitch): primary gaze, then 10 degrees to either side, then 6 up and down
FIXATIONS = ((0.0, 0.0, 0.0), (0.6, 10.0, 0.0), (1.2, -10.0, 0.0), (1.8, 0.0, PITCH_FOLLOWING_RANGE_DEG),
             (2.4, 0.0, -PITCH_FOLLOWING_RANGE_DEG))
# The pose grid (yaw, pitch, roll degrees), each pose held POSE_HOLD frames; the reading of the last
# POSE_HOLD - POSE_SETTLE of them is used (the landmark stage tracks from frame to frame).
POSE_GRID = tuple((y, p, r) for y in (-16.0, -8.0, 0.0, 8.0, 16.0) for p in (-10.0, 0.0, 10.0) for r in (-6.0, 0.0, 6.0))
POSE_HOLD, POSE_SETTLE = 5, 2
FOLLOW_SETTLE = 0.15  # s after a fixation began (MediaPipe follows a saccade over a few frames)
ROUNDS = 2
TABLE_ROUNDS = 2


def rotation_vectors(rotation: np.ndarray) -> np.ndarray:
    """(..., 3, 3) head rotations -> (..., 3) axis-angle vectors relative to the frontal pose."""
    return geometry.rotation_to_vector(geometry.FRONTAL @ rotation)


def read_grid(template: Template, grid, workdir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The template drawn (through its pose model) at each (yaw, pitch, roll) of ``grid`` for POSE_HOLD
    frames: (asked, read) rotations (k, 3, 3) of the frames read after POSE_SETTLE."""
    spec = synth.SynthSpec(seconds=len(grid) * POSE_HOLD / synth.SynthSpec.fps)
    fit = synth.synth_fit(spec, template)
    asked = np.repeat(np.stack([synth.head_rotation(*h) for h in grid]), POSE_HOLD, axis=0)
    centre = np.array([spec.size / 2, spec.size / 2, 0.0])
    trans = centre - spec.px_per_mm * np.einsum("fij,j->fi", asked, synth.FACE_CENTRE_MM)
    fit = replace(fit, pose=Pose(scale=fit.pose.scale, rotation=asked, translation=trans))
    video = workdir / "pose.mp4"
    render_params(replace(synth.synth_params(spec, template), faces=(fit,)), video, MaskOptions(), template=template)
    reference, want, got = template.landmarks(), [], []
    with LandmarkTracker(max_faces=1) as tracker:
        for i, frame in enumerate(iter_frames(video)):
            faces = tracker(frame.image)
            if faces and i % POSE_HOLD >= POSE_SETTLE:
                got.append(fit_pose(faces[0].points[None].astype(np.float64), reference).rotation[0])
                want.append(asked[i])
    return np.array(want), np.array(got)


def read_pose(template: Template, workdir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(gain (3, 3), offset (3,)) of the head rotation read against the rotation drawn."""
    want, got = read_grid(template, POSE_GRID, workdir)
    # Against the rotation actually drawn (asked for, through the current reading model).
    drawn = rotation_vectors(template.drawn_rotation(want))
    design = np.column_stack([drawn, np.ones(len(drawn))])
    coef, *_ = np.linalg.lstsq(design, rotation_vectors(got), rcond=None)
    return coef[:3].T, coef[3]


def correct_pose(template: Template, workdir: Path) -> tuple[np.ndarray, float]:
    """``pose_correction`` less each node's mean reading error (axis-angle) through the gain, and the
    rms error (degrees) before it."""
    axes = POSE_TABLE_AXES
    grid = [(y, p, r) for y in axes[0] for p in axes[1] for r in axes[2]]
    want, got = read_grid(template, grid, workdir)
    error = rotation_vectors(got) - rotation_vectors(want)
    node = np.array([grid.index(tuple(e)) for e in np.round(geometry.euler_from_rotation(want), 6)])
    mean = np.stack([error[node == k].mean(axis=0) for k in range(len(grid))])
    step = np.linalg.solve(template.pose_gain, mean[..., None])[..., 0].reshape(*map(len, axes), 3)
    table = np.zeros_like(step) if template.pose_correction is None else template.pose_correction
    return table - step, float(np.degrees(np.sqrt((error ** 2).sum(axis=1).mean())))


def read_eyes(template: Template, workdir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The template drawn in each of HEADS with its eyes on FIXATIONS: (4, 3) the mean head-space offset
    of the reported eye corners from the vertices (z left at 0), and (6,) how the head pose read
    (axis-angle degrees, translation mm) moves per degree of the eyes' pitch, by least squares on their
    yaw and pitch with a pose of its own for each head, on the frames FOLLOW_SETTLE after each
    fixation began."""
    offsets, design, readings = [], [], []
    for k, head in enumerate(HEADS):
        spec = synth.SynthSpec(seconds=3.0, head=head, fixations=FIXATIONS)
        video = workdir / f"calibration_{k}.mp4"
        truth = synth.write_synthetic(spec, video, template)
        fit = synth.synth_fit(spec, template)
        with LandmarkTracker(max_faces=1) as tracker:
            for i, frame in enumerate(iter_frames(video)):
                faces = tracker(frame.image)
                if not faces:
                    continue
                s, rot, t = fit.pose.scale[i], fit.pose.rotation[i], fit.pose.translation[i]
                drawn = template.vertices[list(EYE_CORNERS)]
                image = geometry.apply_pose(drawn, s, rot, t)
                image[:, :2] = faces[0].points[list(EYE_CORNERS), :2]  # MediaPipe's depth is not metric
                offsets.append(geometry.invert_pose(image, s, rot, t) - drawn)
                if truth.times[i] - FIXATIONS[truth.fixation[i]][0] >= FOLLOW_SETTLE:
                    read = fit_pose(faces[0].points[None].astype(np.float64), template.landmarks())
                    readings.append(np.concatenate([np.degrees(rotation_vectors(read.rotation[0])),
                                                    read.translation[0] / read.scale[0]]))
                    design.append(np.concatenate([np.eye(len(HEADS))[k], truth.gaze[i].mean(axis=0)]))
    mean = np.mean(offsets, axis=0)
    mean[:, 2] = 0.0
    coef, *_ = np.linalg.lstsq(np.array(design), np.array(readings), rcond=None)
    return mean, coef[-1]


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    path = ROOT / "dmask" / "assets" / ASSET
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    template = replace(template_from(arrays), pose_gain=np.eye(3), pose_offset=np.zeros(3), pose_correction=None)
    rms = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(ROUNDS):
            gain, offset = read_pose(template, Path(tmp))
            template = replace(template, pose_gain=gain, pose_offset=offset)
            offsets, following = read_eyes(template, Path(tmp))
            template = replace(template, corner_offsets=offsets, pitch_following=following)
        for _ in range(TABLE_ROUNDS):
            table, before = correct_pose(template, Path(tmp))
            template = replace(template, pose_correction=table)
            rms.append(before)
        rms.append(correct_pose(template, Path(tmp))[1])
    arrays["pose_gain"] = template.pose_gain.astype(np.float32)
    arrays["pose_offset"] = template.pose_offset.astype(np.float32)
    arrays["pose_correction"] = template.pose_correction.astype(np.float32)
    arrays["corner_offsets"] = template.corner_offsets.astype(np.float32)
    arrays["pitch_following"] = template.pitch_following.astype(np.float32)
    np.savez_compressed(path, **arrays)
    print(f"head pose read = gain @ drawn + offset (axis-angle, rad):\n{template.pose_gain.round(3)}\n"
          f"{template.pose_offset.round(4)}\n"
          f"reading error on the table's grid (rms degrees), the line alone then after each round: "
          f"{np.round(rms, 2).tolist()}\n"
          f"corner offsets (mm; outer R, outer L, inner R, inner L):\n{template.corner_offsets.round(2)}\n"
          f"head pose read per degree of the eyes' pitch (axis-angle deg, translation mm):\n"
          f"{template.pitch_following.round(4)}\n"
          f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
