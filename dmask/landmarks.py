"""Face landmarks: MediaPipe face mesh with iris (478 points), eyes refined from the pixels
(``eyes.refine_eyes``), and face tracks across frames.

The only module that imports mediapipe.
"""
from __future__ import annotations

import contextlib
import os
import sys
from array import array
from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .eyes import LIMBUS_POINTS, corneal_reflexes, refine_eyes
from .store import FrameStore
from .topology import N_LANDMARKS
from .types import FaceLandmarks, Track

# A detection joins a track when its centre moved less than this many face sizes.
MAX_TRACK_JUMP = 0.5
# A track that has not been seen for this many frames is closed.
MAX_TRACK_GAP = 15


@contextlib.contextmanager
def _native_stderr_silenced():
    """MediaPipe's C++ runtime logs start-up chatter straight to file descriptor 2; hide it while the
    graph is built and runs its first frame (Python-level errors are unaffected)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


class LandmarkTracker:
    """MediaPipe face mesh (legacy solution, refine_landmarks=True), built once per video.

    In video mode MediaPipe tracks faces from frame to frame and re-runs its detector when a face
    is lost; in image mode every call detects afresh.
    """

    def __init__(self, max_faces: int = 4, video: bool = True, min_confidence: float = 0.5):
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with _native_stderr_silenced():
            from mediapipe.python.solutions import face_mesh

            self._mesh = face_mesh.FaceMesh(
                static_image_mode=not video,
                max_num_faces=max_faces,
                refine_landmarks=True,
                min_detection_confidence=min_confidence,
                min_tracking_confidence=min_confidence,
            )
            # The graph starts its models in background threads, which log once they run: one blank
            # frame (no face, so no tracking state) makes that happen while the log is hidden.
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))
        self._warm_up = 3  # calls during which MediaPipe still logs start-up messages
        self._video = video
        self._tracked = 0  # faces tracked after the previous frame

    def __call__(self, image: np.ndarray) -> tuple[FaceLandmarks, ...]:
        """image (H, W, 3) uint8 RGB -> the faces found, points (478, 3) in pixels, each eye's iris
        and lid margins refined from the image."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
        h, w = image.shape[:2]
        image = np.ascontiguousarray(image)
        result = self._process(image)
        if self._video and len(result.multi_face_landmarks or ()) > self._tracked:
            # A face was just detected: its landmarks came from the detector's rough box. Run the
            # frame again so they come from a box fitted to landmarks, as in every later frame
            # (1-3 px closer; otherwise the first frame of a face reads as a jump).
            result = self._process(image)
        self._tracked = len(result.multi_face_landmarks or ())
        faces = []
        for lms in result.multi_face_landmarks or ():
            pts = np.array([(p.x * w, p.y * h, p.z * w) for p in lms.landmark], dtype=np.float32)
            if pts.shape[0] == N_LANDMARKS and np.isfinite(pts).all():
                pts, limbus = refine_eyes(image, pts)
                faces.append(FaceLandmarks(points=pts, confidence=1.0, reflexes=corneal_reflexes(image, pts),
                                           limbus=limbus))
        return tuple(faces)

    def _process(self, image: np.ndarray):
        if not self._warm_up:
            return self._mesh.process(image)
        self._warm_up -= 1
        with _native_stderr_silenced():
            return self._mesh.process(image)

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _box(points: np.ndarray) -> tuple[np.ndarray, float]:
    lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    return (lo + hi) / 2, float(max(hi - lo))


class TrackLinker:
    """Links per-frame detections into tracks as frames come in, by the smallest centre movement
    (Hungarian matching). Track points go straight to disk (``FrameStore``), so a long video costs
    no memory per frame."""

    def __init__(self):
        # {"frames": [...], "points": FrameStore, "reflexes": array of 4 floats per frame in "frames",
        #  "limbus": FrameStore, "centre": c, "size": s}
        self._tracks: list[dict] = []
        self._n = 0

    def add(self, faces: Sequence[FaceLandmarks]) -> None:
        """The faces found in the next frame."""
        i = self._n
        self._n += 1
        live = [t for t in self._tracks if i - t["frames"][-1] <= MAX_TRACK_GAP]
        boxes = [_box(f.points) for f in faces]
        matched = set()
        if live and faces:
            cost = np.array(
                [[np.linalg.norm(c - t["centre"]) / max(t["size"], s, 1.0) for c, s in boxes] for t in live]
            )
            for r, c in zip(*linear_sum_assignment(cost)):
                if cost[r, c] < MAX_TRACK_JUMP:
                    self._extend(live[r], i, faces[c], boxes[c])
                    matched.add(c)
        for c, face in enumerate(faces):
            if c not in matched:
                track = {"frames": [], "points": FrameStore((N_LANDMARKS, 3)), "reflexes": array("f"),
                         "limbus": FrameStore((2, LIMBUS_POINTS, 2))}
                self._tracks.append(track)
                self._extend(track, i, face, boxes[c])

    @staticmethod
    def _extend(track: dict, i: int, face: FaceLandmarks, box) -> None:
        store, limbus = track["points"], track["limbus"]
        gap = i - len(store)  # frames where the face was not seen
        store.append_fill(gap, np.nan)
        limbus.append_fill(gap, np.nan)
        store.append(face.points)
        limbus.append(np.full((2, LIMBUS_POINTS, 2), np.nan, np.float32) if face.limbus is None else face.limbus)
        track["reflexes"].extend(np.full(4, np.nan) if face.reflexes is None else np.ravel(face.reflexes))
        track["frames"].append(i)
        track["centre"], track["size"] = box

    def tracks(self) -> list[Track]:
        """Every track so far, longest first; each covers all frames added (NaN where not seen)."""
        out = []
        for t in sorted(self._tracks, key=lambda t: -len(t["frames"])):
            t["limbus"].append_fill(self._n - len(t["limbus"]), np.nan)
            t["points"].append_fill(self._n - len(t["points"]), np.nan)
            present = np.zeros(self._n, bool)
            present[t["frames"]] = True
            reflexes = np.full((self._n, 2, 2), np.nan, np.float32)
            reflexes[t["frames"]] = np.frombuffer(t["reflexes"], np.float32).reshape(-1, 2, 2)
            out.append(Track(points=t["points"], present=present, reflexes=reflexes, limbus=t["limbus"]))
        return out


def track_faces(detections: Sequence[Sequence[FaceLandmarks]]) -> list[Track]:
    """Link per-frame detections into tracks (``TrackLinker``). detections : one sequence of faces
    per frame. Returns tracks, longest first."""
    linker = TrackLinker()
    for faces in detections:
        linker.add(faces)
    return linker.tracks()
