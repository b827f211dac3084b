"""dmask: a digital mask for clinical face videos.

Keeps what is clinically meaningful (expressions, blinks, lid positions in mm, per-eye gaze, head
pose) and re-renders it on one shared template face; drops the patient's identity.
"""
from .fit import fit_track
from .landmarks import LandmarkTracker, track_faces
from .params import MaskParams, load_params, save_params
from .pipeline import MaskReport, NoFaceError, fit_video, mask_video, render_file, render_params, track_video
from .swap import mask_geometry
from .template import load_template
from .types import FaceFit, FaceLandmarks, Frame, MaskGeometry, MaskOptions, Pose, Track, VideoInfo

__all__ = [
    "FaceFit", "FaceLandmarks", "Frame", "LandmarkTracker", "MaskGeometry", "MaskOptions", "MaskParams",
    "MaskReport", "NoFaceError", "Pose", "Track", "VideoInfo", "fit_track", "fit_video", "load_params",
    "load_template", "mask_geometry", "mask_video", "render_file", "render_params", "save_params",
    "track_faces", "track_video",
]

# Clinical measurements (dmask measure).
from .measure import Measurement, MeasureOptions, measure_video  # noqa: E402
from .report import write_report  # noqa: E402

__all__ += ["Measurement", "MeasureOptions", "measure_video", "write_report"]

# Privacy and fidelity audit (dmask audit); the face recognizer is imported only when an audit runs.
from .audit import AuditOptions, AuditResult, anonymize_video, audit_videos, write_audit  # noqa: E402

__all__ += ["AuditOptions", "AuditResult", "anonymize_video", "audit_videos", "write_audit"]
