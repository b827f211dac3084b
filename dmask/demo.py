"""The bundled default input: a public-domain portrait (scikit-image's ``astronaut``, a NASA photo)
filmed by a virtual camera that pans, zooms and rolls, so the demo needs no patient data."""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from .types import VideoInfo
from .video import VideoWriter

DEMO_SIZE = 384
DEMO_FPS = 25
DEMO_SECONDS = 3


def camera_path(t: np.ndarray) -> np.ndarray:
    """(f,) seconds -> (f, 4) centre x, centre y (source pixels), crop size (pixels), roll (degrees)."""
    cx = 250 + 25 * np.sin(2 * np.pi * t / DEMO_SECONDS)
    cy = 180 + 12 * np.sin(4 * np.pi * t / DEMO_SECONDS)
    size = 300 - 40 * np.sin(np.pi * t / DEMO_SECONDS)
    roll = 8 * np.sin(2 * np.pi * t / DEMO_SECONDS)
    return np.stack([cx, cy, size, roll], axis=1)


def _view(image: np.ndarray, cx: float, cy: float, size: float, roll: float) -> np.ndarray:
    """Sample a rotated square crop of ``image`` into a DEMO_SIZE square (bilinear)."""
    from scipy.ndimage import map_coordinates

    u = (np.arange(DEMO_SIZE) + 0.5) / DEMO_SIZE - 0.5
    gx, gy = np.meshgrid(u * size, u * size)
    a = np.radians(roll)
    sx = cx + np.cos(a) * gx - np.sin(a) * gy
    sy = cy + np.sin(a) * gx + np.cos(a) * gy
    return np.stack(
        [map_coordinates(image[..., c], [sy, sx], order=1, mode="nearest") for c in range(3)], axis=-1
    ).astype(np.uint8)


def write_demo_clip(path) -> None:
    """Write the demo clip (H.264 MP4) to ``path``."""
    from skimage.data import astronaut

    image = astronaut().astype(np.float32)
    n = DEMO_FPS * DEMO_SECONDS
    info = VideoInfo(width=DEMO_SIZE, height=DEMO_SIZE, time_base=Fraction(1, DEMO_FPS), frame_count=n,
                     fps=DEMO_FPS, rotation=0, has_audio=False)
    with VideoWriter(path, info) as writer:
        for i, cam in enumerate(camera_path(np.arange(n) / DEMO_FPS)):
            writer.write(_view(image, *cam), i)
