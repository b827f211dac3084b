"""The mask-parameter file (``--params FILE``): everything needed to re-render a masked video.

Format ``dmask-params/1``: a NumPy ``.npz`` archive (``numpy.load``) with

============================  ===================  ==============================================
key                           shape, dtype         meaning
============================  ===================  ==============================================
format                        str                  ``dmask-params/1``
width, height                 int                  output frame size (pixels)
time_base                     (2,) int64           numerator, denominator of the timestamp unit
pts                           (n,) int64           timestamp of each frame, in time_base units
is_image                      bool                 the input was a still image
n_faces                       int                  number of face tracks
face{j}_scale                 (n,) float64         head pose: pixels per template millimetre
face{j}_rotation              (n, 3, 3) float64    head pose: rotation, head space -> image space
face{j}_translation           (n, 3) float64       head pose: translation (pixels)
face{j}_expression            (n, 468, 3) float32  displacement of each mesh vertex from neutral (mm)
face{j}_gaze                  (n, 2, 2) float64    per eye (right, left): yaw, pitch in degrees
face{j}_lids                  (n, 2, 14) float64   per eye: height of 7 upper then 7 lower lid-margin
                                                   points above the eye-corner midpoint (mm)
face{j}_observed              (n,) bool            the face was tracked in this frame; where False
                                                   the values are held from the last tracked frame
face{j}_visible               (n,) bool            the face is drawn in this frame
============================  ===================  ==============================================

Conventions (head space, image space, eye order) are those of ``dmask.types``. The file holds no
identity: no neutral face shape, no face size in millimetres, no texture.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .types import FaceFit, Pose

FORMAT = "dmask-params/1"
_POSE = ("scale", "rotation", "translation")
_FIT = ("expression", "gaze", "lids", "observed", "visible")


class ParamsError(ValueError):
    pass


@dataclass(frozen=True)
class MaskParams:
    width: int
    height: int
    time_base: Fraction
    pts: np.ndarray  # (n,) int64
    is_image: bool
    faces: tuple[FaceFit, ...]


def save_params(path, params: MaskParams) -> None:
    """Write atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    arrays = {
        "format": np.array(FORMAT),
        "width": np.array(params.width),
        "height": np.array(params.height),
        "time_base": np.array([params.time_base.numerator, params.time_base.denominator], np.int64),
        "pts": np.asarray(params.pts, np.int64),
        "is_image": np.array(params.is_image),
        "n_faces": np.array(len(params.faces)),
    }
    for j, fit in enumerate(params.faces):
        for name in _POSE:
            arrays[f"face{j}_{name}"] = getattr(fit.pose, name)
        for name in _FIT:
            arrays[f"face{j}_{name}"] = getattr(fit, name)
    tmp = path.with_name(f".{path.name}.part")
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def load_params(path) -> MaskParams:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ParamsError(f"cannot read mask parameters from '{path}': {e}") from None
    with data:
        if "format" not in data or str(data["format"]) != FORMAT:
            raise ParamsError(f"'{path}' is not a {FORMAT} file")
        faces = []
        for j in range(int(data["n_faces"])):
            pose = Pose(**{name: data[f"face{j}_{name}"] for name in _POSE})
            faces.append(FaceFit(pose=pose, **{name: data[f"face{j}_{name}"] for name in _FIT}))
        num, den = data["time_base"]
        return MaskParams(
            width=int(data["width"]),
            height=int(data["height"]),
            time_base=Fraction(int(num), int(den)),
            pts=data["pts"],
            is_image=bool(data["is_image"]),
            faces=tuple(faces),
        )

