"""Frozen dataclasses handed from one pipeline stage to the next.

Coordinate conventions
----------------------
* Image space: x to the right and y down, in pixels of the displayed (rotation-corrected) frame;
  z points away from the camera, in the same pixel units (MediaPipe's convention).
* Head space: the template face's frame, in millimetres. x to the subject's left (image right when
  facing the camera), y up, z out of the face toward the camera. Origin between the eyes.
* A pose maps head space to image space: ``p_img = scale * rotation @ p_head + translation``.
* Eye index 0 is the subject's right eye (image left), 1 the subject's left eye.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class VideoInfo:
    """What the reader learnt about an input: enough to write an output with the same timing."""

    width: int  # displayed width, after rotation
    height: int  # displayed height, after rotation
    time_base: Fraction  # unit of the frame timestamps
    frame_count: int | None  # from the container; None when unknown
    fps: float | None  # average rate, for progress estimates only
    rotation: int  # degrees the stored frames were turned to display them upright
    has_audio: bool
    is_image: bool = False


@dataclass(frozen=True)
class Frame:
    """One decoded frame, turned upright. ``image`` is (H, W, 3) uint8 RGB."""

    index: int
    pts: int  # timestamp in VideoInfo.time_base units
    image: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class FaceLandmarks:
    """One face in one frame: MediaPipe's 478 points in image space (pixels)."""

    points: np.ndarray  # (478, 3) float32
    confidence: float  # 1.0 for a tracked face; detector score otherwise
    reflexes: np.ndarray | None = None  # (2, 2) float32 corneal reflex per eye (pixels), NaN if none
    limbus: np.ndarray | None = None  # (2, m, 2) float32 limbus edge points per eye (pixels), NaN-padded


@dataclass(frozen=True)
class Track:
    """One face followed through a video. Frames where it was not seen hold NaN."""

    points: np.ndarray  # (n_frames, 478, 3) float32, NaN where missing; an array or a store.FrameStore
    present: np.ndarray  # (n_frames,) bool
    reflexes: np.ndarray | None = None  # (n_frames, 2, 2) float32 corneal reflexes, NaN where none
    limbus: np.ndarray | None = None  # (n_frames, 2, m, 2) float32 limbus edge points, NaN-padded; or a FrameStore

    @property
    def n_frames(self) -> int:
        return int(self.present.shape[0])


@dataclass(frozen=True)
class Pose:
    """Per-frame rigid head pose (similarity transform head space -> image space)."""

    scale: np.ndarray  # (n,) pixels per millimetre of the template
    rotation: np.ndarray  # (n, 3, 3)
    translation: np.ndarray  # (n, 3) pixels


@dataclass(frozen=True)
class Identity:
    """The subject's identity, per video. Used to separate expression from identity, then discarded.

    Never written to any output.
    """

    neutral: np.ndarray  # (468, 3) the subject's neutral face in head space, template-sized (mm)
    mm_per_unit: float  # true millimetres per head-space unit for this subject (iris = 11.7 mm)


@dataclass(frozen=True)
class FaceFit:
    """Per-frame mask parameters of one face. Holds no identity.

    All lengths are millimetres. Lids are vertical offsets of the lid-margin points from the
    eye's corner line (head space y, true mm); gaze is (yaw, pitch) in degrees per eye, yaw
    positive toward the subject's left, pitch positive up.
    """

    pose: Pose
    expression: np.ndarray  # (n, 468, 3) float32 displacement from the neutral face, template mm;
    #                         an array, or a store.FrameStore for a track read from one
    gaze: np.ndarray  # (n, 2, 2) [eye, (yaw, pitch)] degrees
    lids: np.ndarray  # (n, 2, K) [eye, lid-margin point] vertical offset, mm
    observed: np.ndarray  # (n,) bool: the face was seen in this frame (else held from the last good one)
    visible: np.ndarray  # (n,) bool: draw the face in this frame
    # (n, 2, 3) mm, per eye: where the eyeball centre sits relative to where the template's proportions
    # put it from the eye corners, as the corneal reflex places it (fit.reflex_centres); None: there.
    # The mask's eyeballs sit as far from its corners, so that its iris is drawn where the subject's
    # is, relative to the lids, while gazing as the subject's does.
    eyeballs: np.ndarray | None = None
    # (n, 2, 2) the gaze before the temporal filter that smooths the mask's eyes: what oscillations are
    # measured on (the filter takes a tenth or more off a 3 Hz nystagmus's swing); None: not kept.
    raw_gaze: np.ndarray | None = None

    @property
    def n_frames(self) -> int:
        return int(self.observed.shape[0])


@dataclass(frozen=True)
class MaskGeometry:
    """Everything the renderer needs for one face in one frame, in image space."""

    vertices: np.ndarray  # (468, 3) face mesh vertices
    rotation: np.ndarray  # (3, 3) head rotation (head space -> image space)
    eye_centres: np.ndarray  # (2, 3) eyeball centres
    eye_radius: float  # pixels
    gaze: np.ndarray  # (2, 3) unit gaze directions in image space


@dataclass(frozen=True)
class MaskOptions:
    """Options of ``mask_video``."""

    max_faces: int = 4
    keep_audio: bool = False
    background: tuple[int, int, int] = (74, 82, 94)  # plain RGB background
    msaa: int = 4  # anti-aliasing samples
    crf: int = 20  # H.264 quality
    preset: str = "veryfast"
