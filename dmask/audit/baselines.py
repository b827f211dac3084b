"""Baseline anonymizers, compared with dmask through one interface.

An ``Anonymizer`` is a callable object built once: ``anonymizer(image) -> image``, (H, W, 3) uint8 RGB
in and out. The baselines find faces with the project's landmark stage (``LandmarkTracker`` in
still-image mode) and change only those pixels:

* ``identity``: the frame unchanged (the protocol's positive control: it must be re-identified);
* ``blur``: a Gaussian blur over the face box, sigma = face size / BLUR_DIVISOR;
* ``pixelate``: the face box in blocks of face size / PIXEL_BLOCKS;
* ``eye_crop``: only a box around both eyes and brows is kept, the rest black (the Digital Mask
  paper's comparison: clinicians shown cropped eye photos);
* ``eye_bar``: a black bar over both eyes.

A frame where no face is found is blurred or pixelated whole, black for the eye crop, and unchanged
for the eye bar (it has nothing to cover). ``anonymize_video`` runs any of them, or dmask itself
(``DMASK``), from one video file to another.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .. import topology
from ..landmarks import LandmarkTracker
from ..types import FaceLandmarks, MaskOptions

DMASK = "dmask"
BASELINES = ("identity", "blur", "pixelate", "eye_crop", "eye_bar")
METHODS = (DMASK,) + BASELINES
# The face box: the landmarks' bounding box grown by this share of its size on each side.
FACE_MARGIN = 0.1
BLUR_DIVISOR = 16.0  # Gaussian sigma = face box size / this (about 12 px for a 200 px face)
PIXEL_BLOCKS = 12  # blocks across the face box
# Eye region (lid rings and brows): grown by these shares of its width (x) and height (y).
EYE_CROP_MARGIN = (0.15, 0.5)
EYE_BAR_MARGIN = (0.12, 0.35)
EYE_POINTS = tuple(sorted(set(topology.lid_ring(0) + topology.lid_ring(1))))
BROW_POINTS = topology.BROWS[0] + topology.BROWS[1]


def _box(points: np.ndarray, shape, margin=(0.0, 0.0)) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1), clipped to the image, of points (k, 2+) grown by margin (x, y)."""
    lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    pad = (hi - lo) * np.asarray(margin, float)
    lo, hi = lo - pad, hi + pad
    h, w = shape[:2]
    return (int(np.clip(np.floor(lo[0]), 0, w)), int(np.clip(np.floor(lo[1]), 0, h)),
            int(np.clip(np.ceil(hi[0]), 0, w)), int(np.clip(np.ceil(hi[1]), 0, h)))


class Anonymizer:
    """A frame -> frame anonymizer. Subclasses implement ``apply(image, faces)``; calling the object
    finds the faces itself (a still-image ``LandmarkTracker`` built on first use, or the one given)."""

    name = "anonymizer"
    needs_faces = True

    def __init__(self, finder: LandmarkTracker | None = None):
        self._finder = finder

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
        faces: Sequence[FaceLandmarks] = ()
        if self.needs_faces:
            if self._finder is None:
                self._finder = LandmarkTracker(video=False)
            faces = self._finder(image)
        return self.apply(image, faces)

    def apply(self, image: np.ndarray, faces: Sequence[FaceLandmarks]) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        if self._finder is not None:
            self._finder.close()


def _face_boxes(image: np.ndarray, faces) -> list[tuple[int, int, int, int]]:
    """The faces' boxes with a margin; the whole frame when no face was found (fail closed)."""
    if not faces:
        return [(0, 0, image.shape[1], image.shape[0])]
    return [_box(f.points, image.shape, (FACE_MARGIN, FACE_MARGIN)) for f in faces]


class Identity(Anonymizer):
    name = "identity"
    needs_faces = False

    def apply(self, image, faces):
        return image.copy()


class GaussianBlur(Anonymizer):
    name = "blur"

    def apply(self, image, faces):
        out = image.copy()
        for x0, y0, x1, y1 in _face_boxes(image, faces):
            if x1 > x0 and y1 > y0:
                sigma = max(x1 - x0, y1 - y0) / BLUR_DIVISOR
                out[y0:y1, x0:x1] = cv2.GaussianBlur(image[y0:y1, x0:x1], (0, 0), sigma)
        return out


class Pixelate(Anonymizer):
    name = "pixelate"

    def apply(self, image, faces):
        out = image.copy()
        for x0, y0, x1, y1 in _face_boxes(image, faces):
            w, h = x1 - x0, y1 - y0
            if w > 0 and h > 0:
                block = max(max(w, h) / PIXEL_BLOCKS, 1.0)
                small = cv2.resize(image[y0:y1, x0:x1], (max(1, round(w / block)), max(1, round(h / block))),
                                   interpolation=cv2.INTER_AREA)
                out[y0:y1, x0:x1] = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
        return out


class EyeCrop(Anonymizer):
    name = "eye_crop"

    def apply(self, image, faces):
        out = np.zeros_like(image)
        for f in faces:
            x0, y0, x1, y1 = _box(f.points[list(EYE_POINTS + BROW_POINTS)], image.shape, EYE_CROP_MARGIN)
            out[y0:y1, x0:x1] = image[y0:y1, x0:x1]
        return out


class EyeBar(Anonymizer):
    name = "eye_bar"

    def apply(self, image, faces):
        out = image.copy()
        for f in faces:
            x0, y0, x1, y1 = _box(f.points[list(EYE_POINTS)], image.shape, EYE_BAR_MARGIN)
            out[y0:y1, x0:x1] = 0
        return out


_CLASSES = {c.name: c for c in (Identity, GaussianBlur, Pixelate, EyeCrop, EyeBar)}


def make_anonymizer(name: str, finder: LandmarkTracker | None = None) -> Anonymizer:
    """A baseline by name (one of ``BASELINES``)."""
    if name not in _CLASSES:
        raise ValueError(f"unknown baseline '{name}'; choose from {', '.join(BASELINES)}")
    return _CLASSES[name](finder)


def anonymize_video(method: str | Anonymizer, src, dst, options: MaskOptions = MaskOptions()) -> None:
    """Anonymize a video file with dmask (``method == DMASK``) or a baseline (a name or an Anonymizer),
    writing H.264 with the input's timing (``video.VideoWriter``: atomic, no metadata)."""
    from ..pipeline import mask_video
    from ..video import VideoWriter, iter_frames, probe, write_image

    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ValueError("the output must not overwrite the input")
    if isinstance(method, str) and method == DMASK:
        mask_video(src, dst, options)
        return
    anonymizer = make_anonymizer(method) if isinstance(method, str) else method
    info = probe(src)
    try:
        if info.is_image:
            write_image(dst, anonymizer(next(iter_frames(src)).image))
            return
        with VideoWriter(dst, info, crf=options.crf, preset=options.preset) as writer:
            for frame in iter_frames(src):
                writer.write(anonymizer(frame.image), frame.pts)
    finally:
        if isinstance(method, str):
            anonymizer.close()
