"""The shared template face: the project's own mean face, loaded from the committed asset.

The asset is rebuilt by ``tools/build_template.py``: MediaPipe landmarks of many real identities,
aligned by generalised Procrustes analysis, averaged per identity and then across identities, and
scaled to millimetres by the iris (11.7 mm). ``tools/calibrate_template.py`` then stores how the
landmark stage reads the rendered template: its head pose (``Template.drawn_rotation``), its eye
corners (``Template.landmarks``) and how the head pose read moves as the eyes look up and down
(``Template.pitch_following``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from . import geometry
from .topology import BROWS, EYE_CORNERS, EYEBALL_RADIUS_MM, INNER_CORNER, IRIS_CENTRE, OUTER_CORNER

ASSET = "template.npz"
# The eyes' pitch (degrees, up and down) over which Template.pitch_following is measured; the fit does
# not take it further.
PITCH_FOLLOWING_RANGE_DEG = 6.0
# The grid of Template.pose_correction: head yaw, pitch and roll (degrees) to be read.
POSE_TABLE_AXES = (np.arange(-20.0, 20.1, 5.0), np.arange(-12.0, 12.1, 4.0), np.array([-8.0, 0.0, 8.0]))


@dataclass(frozen=True)
class Template:
    vertices: np.ndarray  # (478, 3) head space, mm
    triangles: np.ndarray  # (852, 3) int32, counter-clockwise seen from outside the face
    feature_mean: np.ndarray  # (F,) expression_features of the identities averaged
    feature_std: np.ndarray  # (F,) their spread across identities
    n_identities: int
    # (4, 3) mm, per eye corner (EYE_CORNERS order): where the landmark stage reads the corner on the
    # rendered template, relative to the vertex (tools/calibrate_template.py).
    corner_offsets: np.ndarray
    # How the landmark stage reads the rendered template's head rotation (tools/calibrate_template.py):
    # read = pose_gain @ drawn + pose_offset, rotations as axis-angle vectors (radians) relative to
    # the frontal pose. It reads the template's turns 11-16 % short and its pitch ~2 degrees down.
    pose_gain: np.ndarray  # (3, 3)
    pose_offset: np.ndarray  # (3,)
    # What that line leaves (0.3-0.6 degrees rms per angle, up to 2.3, uneven from pose to pose): a
    # correction to the drawn rotation's axis-angle vector (radians), (Y, P, R, 3), on a grid of the
    # rotations to be read (POSE_TABLE_AXES: yaw, pitch, roll degrees), interpolated between its nodes
    # and held beyond them. None: not calibrated.
    pose_correction: np.ndarray | None = None
    # How the head pose read moves as the eyes look up and down (tools/calibrate_template.py): MediaPipe's
    # face points follow the eyes a little (the corners and face sides by 0.3-0.5 of a vertical iris
    # movement), so the rotation (axis-angle, degrees relative to frontal) and translation (mm) read per
    # degree of the eyes' mean pitch, (6,). (Side to side, the pose read moves one way in still
    # fixations and the other under a 3 Hz beat: not taken.) None: not calibrated.
    pitch_following: np.ndarray | None = None

    def drawn_rotation(self, rotation: np.ndarray) -> np.ndarray:
        """The head rotation (..., 3, 3) at which to draw the template so that the landmark stage reads
        ``rotation``: the inverse of its calibrated reading (``pose_gain``, ``pose_offset``), corrected
        by ``pose_correction``."""
        v = geometry.rotation_to_vector(geometry.FRONTAL @ rotation)
        drawn = np.linalg.solve(self.pose_gain, (v - self.pose_offset)[..., None])[..., 0]
        if self.pose_correction is not None:
            drawn = drawn + geometry.grid_interpolate(POSE_TABLE_AXES, self.pose_correction,
                                                      geometry.euler_from_rotation(rotation))
        return geometry.FRONTAL @ geometry.vector_to_rotation(drawn)

    def landmarks(self) -> np.ndarray:
        """(478, 3) the template as the landmark stage reports it: the vertices, with the eye corners
        where MediaPipe places them on the rendered template. MediaPipe's corners follow only about a
        tenth of a moved drawn corner and sit 0.3-1.6 mm from where the template draws them; the
        fit anchors eyeballs and lids on the corners it reads, so the template's own corners are taken
        as read, and a mask is then measured as it was drawn."""
        return with_corner_offsets(self.vertices, self.corner_offsets)

    def canthi_mid(self) -> np.ndarray:
        """(2, 3) midpoint of each eye's corners, as the landmark stage reads them."""
        return canthi_mid(self.landmarks())

    def iris_offset(self) -> np.ndarray:
        """(2, 3) iris centre in primary gaze relative to the canthi midpoint, per eye (mm)."""
        return self.vertices[list(IRIS_CENTRE)] - self.canthi_mid()

    def eye_centres(self) -> np.ndarray:
        """(2, 3) the mask's eyeball centres in head space (mm): one eyeball radius behind the
        primary-gaze iris centre."""
        return self.vertices[list(IRIS_CENTRE)] - np.array([0.0, 0.0, EYEBALL_RADIUS_MM])


def with_corner_offsets(shape: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """shape (..., n >= 468, 3) with each eye corner (EYE_CORNERS) moved by offsets (4, 3)."""
    out = np.array(shape, dtype=np.float64, copy=True)
    out[..., list(EYE_CORNERS), :] += offsets
    return out


def canthi_mid(shape: np.ndarray) -> np.ndarray:
    """shape (..., 478, 3) -> (..., 2, 3) midpoints of each eye's outer and inner corners."""
    return (shape[..., list(OUTER_CORNER), :] + shape[..., list(INNER_CORNER), :]) / 2


def expression_features(shape: np.ndarray) -> np.ndarray:
    """Scale-free expression cues of head-space shapes, used to find the most neutral frames.

    shape (..., 478, 3) head space (y up) -> (..., 4): mouth width, mouth opening and mouth-corner
    lift relative to the lip centre, and brow height above the eyes, all over the inter-eye distance.
    """
    eyes = canthi_mid(shape)
    iod = np.linalg.norm(eyes[..., 1, :] - eyes[..., 0, :], axis=-1)
    mouth_w = np.linalg.norm(shape[..., 61, :] - shape[..., 291, :], axis=-1)
    mouth_open = np.linalg.norm(shape[..., 13, :] - shape[..., 14, :], axis=-1)
    corners_y = (shape[..., 61, 1] + shape[..., 291, 1]) / 2
    centre_y = (shape[..., 0, 1] + shape[..., 17, 1]) / 2
    brow_y = shape[..., list(BROWS[0] + BROWS[1]), 1].mean(axis=-1)
    eye_y = eyes[..., 1].mean(axis=-1)
    return np.stack([mouth_w, mouth_open, corners_y - centre_y, brow_y - eye_y], axis=-1) / iod[..., None]


def template_from(data) -> Template:
    """A Template from the asset's arrays (a mapping of name -> array, as ``np.load`` gives); without
    ``corner_offsets`` and the pose reading (a template not yet calibrated) it is taken as read as drawn."""
    return Template(
        vertices=np.asarray(data["vertices"], np.float64),
        triangles=np.asarray(data["triangles"], np.int32),
        feature_mean=np.asarray(data["feature_mean"], np.float64),
        feature_std=np.asarray(data["feature_std"], np.float64),
        n_identities=int(data["n_identities"]),
        corner_offsets=np.asarray(data["corner_offsets"], np.float64) if "corner_offsets" in data
        else np.zeros((len(EYE_CORNERS), 3)),
        pose_gain=np.asarray(data["pose_gain"], np.float64) if "pose_gain" in data else np.eye(3),
        pose_offset=np.asarray(data["pose_offset"], np.float64) if "pose_offset" in data else np.zeros(3),
        pose_correction=np.asarray(data["pose_correction"], np.float64) if "pose_correction" in data else None,
        pitch_following=np.asarray(data["pitch_following"], np.float64) if "pitch_following" in data else None,
    )


@lru_cache(maxsize=1)
def load_template() -> Template:
    """The committed template face (cached)."""
    with resources.files("dmask").joinpath("assets", ASSET).open("rb") as f, np.load(f) as data:
        return template_from(data)
