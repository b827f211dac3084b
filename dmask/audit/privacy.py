"""Privacy metrics with a real face recognizer: dlib's ResNet embeddings through ``face_recognition``.

``FaceEmbedder`` is the only place that imports face_recognition (the ``dmask[audit]`` extra). The
protocol (statistics in ``stats``):

* frames: 2k frames evenly spread over each video; the even ones are probes, the odd ones the
  original references, so a probe is never compared with its own original frame;
* Mask->Face: each anonymized probe against the original references of every video plus the
  gallery identities, closed set; rank-1 beside chance 1/N identities. Scored twice: with the
  recognizer's own face detection (a probe where it finds no face counts as a miss) and with the
  face box of the original frame, so that "no face found" cannot hide an identity;
* 1-of-6 lineup: the recognizer judges lineups of the true original and 5 other identities
  (``stats.lineup_pick_rate``), anonymized probes embedded in the original box; chance 1/6;
* Mask->Mask linkability: anonymized frames of the first half of each video against those of the
  second half of all videos (original box); rank-1 beside chance 1/number of videos;
* verification: the share of anonymized probes nearer than the threshold to one of the patient's
  references, at the recognizer's 0.6 and at the threshold that accepts 1 % of impostors among the
  originals (original probes against every other identity);
* detection: the share of anonymized probes where the recognizer finds a face.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import stats

MATCH_THRESHOLD = 0.6  # face_recognition's own "same person" distance
LINEUP_SIZE = 6
FAR = 0.01
# Detection runs on a copy whose longer side is at most this (HOG, one upsampling: faces down to
# about 40 px); encodings use the full-resolution frame.
DETECT_SIZE = 640
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

Box = tuple[int, int, int, int]  # face_recognition's (top, right, bottom, left), pixels


class AuditDependencyError(RuntimeError):
    pass


class FaceEmbedder:
    """dlib face detection (HOG) and 128-d ResNet embeddings, loaded once."""

    def __init__(self, detect_size: int = DETECT_SIZE):
        try:
            import face_recognition
        except ImportError as e:
            raise AuditDependencyError("the privacy audit needs the face recognizer: pip install 'dmask[audit]' "
                                       "(face_recognition, face_recognition_models, dlib-bin)") from e
        self._fr = face_recognition
        self.detect_size = detect_size

    def detect(self, image: np.ndarray) -> Box | None:
        """The largest face the recognizer finds, or None."""
        import cv2

        h, w = image.shape[:2]
        scale = min(1.0, self.detect_size / max(h, w))
        small = image if scale == 1.0 else cv2.resize(image, (round(w * scale), round(h * scale)),
                                                      interpolation=cv2.INTER_AREA)
        found = self._fr.face_locations(np.ascontiguousarray(small), number_of_times_to_upsample=1)
        if not found:
            return None
        t, r, b, l = max(found, key=lambda f: (f[2] - f[0]) * (f[1] - f[3]))
        return (int(t / scale), int(r / scale), int(b / scale), int(l / scale))

    def encode(self, image: np.ndarray, box: Box) -> np.ndarray:
        """The (128,) embedding of the face in ``box``."""
        return np.asarray(self._fr.face_encodings(np.ascontiguousarray(image), known_face_locations=[box])[0])

    def embed(self, image: np.ndarray) -> tuple[np.ndarray | None, Box | None]:
        """Detect, then encode: (embedding, box), or (None, None) when no face is found."""
        box = self.detect(image)
        return (None, None) if box is None else (self.encode(image, box), box)


def landmark_box(points: np.ndarray, shape) -> Box:
    """A face box (top, right, bottom, left) from MediaPipe landmarks (k, 2+), used when the recognizer
    finds no face in the original frame."""
    h, w = shape[:2]
    x0, y0 = np.maximum(points[:, :2].min(axis=0), 0)
    x1, y1 = np.minimum(points[:, :2].max(axis=0), (w - 1, h - 1))
    return (int(y0), int(x1), int(y1), int(x0))


# --- embedded frames ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Embedded:
    """Embeddings of sampled frames of one method (or the originals), across videos."""

    video: np.ndarray  # (m,) identity (video) of each frame
    frame: np.ndarray  # (m,) frame index
    probe: np.ndarray  # (m,) bool: a probe frame (else a reference frame)
    first_half: np.ndarray  # (m,) bool: in the first half of its video
    detected: np.ndarray  # (m,) bool: the recognizer found a face itself
    own: np.ndarray = field(repr=False)  # (m, 128) from its own detection; NaN rows where none
    in_box: np.ndarray = field(repr=False)  # (m, 128) in the original frame's face box; NaN where no box

    @staticmethod
    def concat(parts: Sequence[Embedded]) -> Embedded:
        def cat(name, empty):
            arrays = [getattr(p, name) for p in parts]
            return np.concatenate(arrays) if arrays else empty
        return Embedded(video=cat("video", np.zeros(0, object)), frame=cat("frame", np.zeros(0, int)),
                        probe=cat("probe", np.zeros(0, bool)), first_half=cat("first_half", np.zeros(0, bool)),
                        detected=cat("detected", np.zeros(0, bool)), own=cat("own", np.zeros((0, 128))),
                        in_box=cat("in_box", np.zeros((0, 128))))


def sample_indices(n_frames: int, per_video: int) -> tuple[np.ndarray, np.ndarray]:
    """(probe, reference) frame indices: 2 * per_video frames evenly spread, alternating (fewer in
    short videos: each frame is used once)."""
    if n_frames < 2 or per_video < 1:
        raise ValueError(f"need at least 2 frames and 1 probe per video, got {n_frames} frames")
    picks = np.unique(np.linspace(0, n_frames - 1, min(2 * per_video, n_frames)).round().astype(int))
    return picks[0::2], picks[1::2]


def embed_frames(embedder: FaceEmbedder, video: str, images: Sequence[np.ndarray], frames: np.ndarray,
                 probe: np.ndarray, n_frames: int, boxes: Sequence[Box | None],
                 detections: Sequence[Box | None] | None = None) -> Embedded:
    """Embed frames of one video two ways: with the recognizer's own detection (``detections`` when
    already known), and in ``boxes`` (the original frames' face boxes; None where there is none)."""
    m = len(images)
    own = np.full((m, 128), np.nan)
    in_box = np.full((m, 128), np.nan)
    detected = np.zeros(m, bool)
    for i, (image, box) in enumerate(zip(images, boxes)):
        found = embedder.detect(image) if detections is None else detections[i]
        if found is not None:
            own[i], detected[i] = embedder.encode(image, found), True
        if box is not None:
            in_box[i] = embedder.encode(image, box)
    frames = np.asarray(frames, int)
    return Embedded(video=np.array([video] * m, object), frame=frames, probe=np.asarray(probe, bool),
                    first_half=frames < n_frames / 2, detected=detected, own=own, in_box=in_box)


def embed_gallery(embedder: FaceEmbedder, gallery) -> tuple[np.ndarray, list[str]]:
    """Embeddings of a gallery folder (``<identity>/<photo>``): (k, 128) and their identities.
    Photos where no face is found are left out."""
    from ..video import iter_frames

    vectors, labels = [], []
    for photo in sorted(Path(gallery).glob("*/*")):
        if photo.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        e, _ = embedder.embed(next(iter_frames(photo)).image)
        if e is not None:
            vectors.append(e)
            labels.append(photo.parent.name)
    return (np.array(vectors) if vectors else np.zeros((0, 128))), labels


# --- scores -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MethodPrivacy:
    """Privacy scores of one method; rates are shares (0-1), NaN / None where not measurable."""

    method: str
    probes: int  # anonymized probe frames
    detection_rate: float  # recognizer found a face in the anonymized probe
    mask_to_face_rank1: float  # own detection; probes without a face count as misses
    mask_to_face_rank1_box: float  # embedded in the original frame's face box
    lineup_pick_rate: float  # original face box
    mask_to_mask_rank1: float | None  # original face box; None with fewer than 2 videos
    accept_at_match: float  # verification at MATCH_THRESHOLD, original face box
    accept_at_far: float  # at the threshold giving FAR false accepts among the originals
    # The identity nearest to the most probes (original face box), and the share of probes it is
    # nearest to: far above chance, the method's outputs resemble that one person (stats.commonest_nearest).
    commonest_nearest: str | None
    commonest_nearest_share: float


@dataclass(frozen=True)
class Privacy:
    videos: int
    identities: int  # candidate identities: videos with references + gallery identities
    gallery_identities: int
    chance: float  # 1 / identities
    link_chance: float | None  # 1 / videos linked
    lineup_size: int
    lineup_trials: int
    threshold_far: float  # distance threshold accepting FAR of impostors among the originals
    far: float
    genuine_accept_at_match: float  # original probes accepted as themselves at 0.6
    methods: tuple[MethodPrivacy, ...]

    def method(self, name: str) -> MethodPrivacy:
        for m in self.methods:
            if m.method == name:
                return m
        raise KeyError(name)


def _rows(e: Embedded, which: str, mask: np.ndarray) -> tuple[np.ndarray, list]:
    vectors = getattr(e, which)
    keep = mask & np.isfinite(vectors).all(axis=1)
    return vectors[keep], list(e.video[keep])


def score_privacy(originals: Embedded, methods: dict[str, Embedded], gallery: tuple[np.ndarray, list[str]],
                  lineup_trials: int = 1000, seed: int = 0) -> Privacy:
    """All privacy scores from the embedded originals, the embedded anonymized frames of each method
    (same frames as the originals) and the gallery."""
    g_vec, g_lab = gallery
    ref_vec, ref_lab = _rows(originals, "own", ~originals.probe)
    cand_vec = np.concatenate([ref_vec, g_vec]) if len(g_vec) else ref_vec
    cand_lab = ref_lab + list(g_lab)
    n_ids = len(set(cand_lab))
    videos = sorted(set(originals.video))
    # Impostor attempts among the originals: every original probe claims every other identity.
    orig_vec, orig_lab = _rows(originals, "own", originals.probe)
    impostor = stats.impostor_scores(orig_vec, orig_lab, cand_vec, cand_lab)
    threshold = stats.threshold_at_far(impostor, FAR) if impostor.size else float("nan")
    known = set(ref_lab)

    scores = []
    for name, e in methods.items():
        probes = e.probe & np.isin(e.video, list(known))
        n = int(probes.sum())
        own_vec, own_lab = _rows(e, "own", probes)
        hits_own = stats.rank1(own_vec, own_lab, cand_vec, cand_lab) * len(own_lab) if own_lab else 0.0
        box_vec, box_lab = _rows(e, "in_box", probes)
        link = None
        first_vec, first_lab = _rows(e, "in_box", e.first_half)
        second_vec, second_lab = _rows(e, "in_box", ~e.first_half)
        linked = sorted(set(first_lab) & set(second_lab))
        if len(linked) >= 2:
            keep = np.isin(first_lab, linked)
            link = stats.rank1(first_vec[keep], list(np.array(first_lab, object)[keep]), second_vec, second_lab)
        nearest, nearest_share = stats.commonest_nearest(box_vec, cand_vec, cand_lab)
        scores.append(MethodPrivacy(
            method=name, probes=n,
            detection_rate=float(e.detected[probes].mean()) if n else float("nan"),
            mask_to_face_rank1=hits_own / n if n else float("nan"),
            mask_to_face_rank1_box=stats.rank1(box_vec, box_lab, cand_vec, cand_lab),
            lineup_pick_rate=(stats.lineup_pick_rate(box_vec, box_lab, cand_vec, cand_lab, LINEUP_SIZE,
                                                     lineup_trials, seed) if n_ids >= LINEUP_SIZE else float("nan")),
            mask_to_mask_rank1=link,
            accept_at_match=stats.acceptance(box_vec, box_lab, ref_vec, ref_lab, MATCH_THRESHOLD),
            accept_at_far=stats.acceptance(box_vec, box_lab, ref_vec, ref_lab, threshold),
            commonest_nearest=nearest, commonest_nearest_share=nearest_share,
        ))
    linked_videos = len(set(originals.video[originals.first_half]) & set(originals.video[~originals.first_half]))
    return Privacy(
        videos=len(videos), identities=n_ids, gallery_identities=len(set(g_lab)),
        chance=1.0 / n_ids if n_ids else float("nan"),
        link_chance=1.0 / linked_videos if linked_videos >= 2 else None,
        lineup_size=LINEUP_SIZE, lineup_trials=lineup_trials, threshold_far=threshold, far=FAR,
        genuine_accept_at_match=stats.acceptance(orig_vec, orig_lab, ref_vec, ref_lab, MATCH_THRESHOLD),
        methods=tuple(scores),
    )
