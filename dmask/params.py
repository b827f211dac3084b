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
face{j}_eyeballs              (n, 2, 3) float64    per eye: the eyeball centre's offset from where
                                                   the template puts it from the eye corners (mm);
                                                   absent where there is none (older files too)
============================  ===================  ==============================================

Conventions (head space, image space, eye order) are those of ``dmask.types``. The file holds no
identity: no neutral face shape, no face size in millimetres, no texture.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .store import CHUNK_FRAMES, FrameStore
from .types import FaceFit, Pose

FORMAT = "dmask-params/1"
_POSE = ("scale", "rotation", "translation")
_FIT = ("expression", "gaze", "lids", "observed", "visible")
_OPTIONAL = ("eyeballs",)  # absent in older files


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
        for name in _FIT + _OPTIONAL:
            if getattr(fit, name) is not None:
                arrays[f"face{j}_{name}"] = getattr(fit, name)
    tmp = path.with_name(f".{path.name}.part")
    try:
        # What numpy.savez_compressed writes, with arrays kept on disk (store.FrameStore) written in
        # chunks rather than read into memory at once.
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for name, value in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as f:
                    _write_npy(f, value)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_npy(f, value) -> None:
    if not isinstance(value, FrameStore):
        np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)
        return
    header = {"descr": np.lib.format.dtype_to_descr(value.dtype), "fortran_order": False, "shape": value.shape}
    np.lib.format.write_array_header_1_0(f, header)
    for _, rows in value.chunks():
        f.write(rows.tobytes())


def _read_store(archive: zipfile.ZipFile, name: str) -> FrameStore:
    """An (n, ...) array of the archive, read in chunks into a FrameStore."""
    with archive.open(f"{name}.npy") as f:
        major, _ = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        if fortran or not shape:
            raise ParamsError(f"'{name}' has an unexpected layout")
        store = FrameStore(shape[1:], dtype)
        for start in range(0, shape[0], CHUNK_FRAMES):
            rows = min(CHUNK_FRAMES, shape[0] - start)
            data = f.read(rows * store.row_bytes)
            if len(data) != rows * store.row_bytes:
                raise ParamsError(f"'{name}' is truncated")
            store.append(np.frombuffer(data, dtype).reshape((rows,) + store.row_shape))
    return store


def load_params(path) -> MaskParams:
    """Read a parameter file; the expressions are read into FrameStores (memory flat in the length)."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ParamsError(f"cannot read mask parameters from '{path}': {e}") from None
    with data:
        if "format" not in data or str(data["format"]) != FORMAT:
            raise ParamsError(f"'{path}' is not a {FORMAT} file")
        faces = []
        try:
            for j in range(int(data["n_faces"])):
                pose = Pose(**{name: data[f"face{j}_{name}"] for name in _POSE})
                fit = {name: data[f"face{j}_{name}"] for name in _FIT if name != "expression"}
                fit |= {name: data[f"face{j}_{name}"] for name in _OPTIONAL if f"face{j}_{name}" in data}
                faces.append(FaceFit(pose=pose, expression=_read_store(data.zip, f"face{j}_expression"), **fit))
        except (KeyError, OSError, ValueError, zipfile.BadZipFile) as e:
            raise ParamsError(f"cannot read mask parameters from '{path}': {e}") from None
        num, den = data["time_base"]
        return MaskParams(
            width=int(data["width"]),
            height=int(data["height"]),
            time_base=Fraction(int(num), int(den)),
            pts=data["pts"],
            is_image=bool(data["is_image"]),
            faces=tuple(faces),
        )

