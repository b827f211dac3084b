"""The audit driver: mask what is not masked yet, embed sampled frames of every method, score privacy,
measure original and mask, score fidelity."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..landmarks import LandmarkTracker
from ..types import MaskOptions
from . import fidelity as fid
from .baselines import BASELINES, DMASK, METHODS, anonymize_video, make_anonymizer
from .privacy import Embedded, FaceEmbedder, Privacy, embed_frames, embed_gallery, landmark_box, sample_indices, \
    score_privacy

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")

# progress(stage, done, total), as the pipeline's
Progress = Callable[[str, int, "int | None"], None]


def _quiet(stage: str, done: int, total: int | None) -> None:
    pass


@dataclass(frozen=True)
class AuditOptions:
    frames_per_video: int = 8  # probe frames per video (as many reference frames between them)
    lineup_trials: int = 1000
    seed: int = 0
    methods: tuple[str, ...] = METHODS  # dmask and the baselines
    fidelity: bool = True  # also measure original and mask (a landmark pass over each)
    mask: MaskOptions = MaskOptions()
    remask: bool = False  # make every mask again, also where one exists (else an existing one is used)


@dataclass(frozen=True)
class AuditResult:
    videos: tuple[tuple[str, str], ...]  # (original, masked) paths
    made: tuple[bool, ...]  # per video: its mask was made by this run (else an existing file was used)
    gallery: str | None
    options: AuditOptions
    privacy: Privacy
    fidelity: tuple[fid.Fidelity, ...]
    pooled: fid.PooledFidelity | None


def dataset_pairs(folder, masked_dir, skip_prefix: str = "edge_") -> list[tuple[Path, Path]]:
    """(video, its mask in masked_dir) for each video of a folder, leaving out names starting with
    ``skip_prefix`` (the test data's multi-face and no-face edge cases, which have no single identity)."""
    videos = sorted(p for p in Path(folder).iterdir()
                    if p.suffix.lower() in VIDEO_SUFFIXES and not (skip_prefix and p.name.startswith(skip_prefix)))
    if not videos:
        raise ValueError(f"no videos found in '{folder}'")
    return [(v, Path(masked_dir) / f"{v.stem}.masked.mp4") for v in videos]


def _frames_at(path, indices: np.ndarray) -> tuple[list[np.ndarray], int]:
    """The images at ``indices`` (sorted) of a video, and its frame count."""
    from ..video import iter_frames

    wanted = set(int(i) for i in indices)
    images, n = {}, 0
    for frame in iter_frames(path):
        if frame.index in wanted:
            images[frame.index] = frame.image
        n += 1
    missing = wanted - set(images)
    if missing:
        raise ValueError(f"'{path}' has {n} frames; frame(s) {sorted(missing)} are missing")
    return [images[int(i)] for i in indices], n


def _frame_count(path) -> int:
    from ..video import iter_frames, probe

    n = probe(path).frame_count
    return n if n else sum(1 for _ in iter_frames(path))


def check_mask(src, masked, n_frames: int, shape: tuple[int, ...]) -> None:
    """Raise ValueError when ``masked`` cannot be a dmask mask of ``src`` (``n_frames`` frames of
    ``shape``): a mask keeps every frame and the frame size (a video's odd width or height padded by one,
    as H.264 needs)."""
    from ..video import probe

    info = probe(masked)
    count = info.frame_count or _frame_count(masked)
    h, w = shape[:2]
    if count != n_frames or (info.height, info.width) not in {(h, w), (h + h % 2, w + w % 2)}:
        raise ValueError(f"'{masked}' ({info.width}x{info.height}, {count} frames) is not a mask of '{src}' "
                         f"({w}x{h}, {n_frames} frames): a mask keeps every frame and the frame size; "
                         "pass the right pair (--remask makes a stale mask again, over its file)")


def audit_videos(pairs: Sequence[tuple[Path, Path]], gallery=None, options: AuditOptions = AuditOptions(),
          progress: Progress = _quiet) -> AuditResult:
    """Audit (original, masked) video pairs; a masked video that does not exist yet (every one, with
    ``options.remask``) is made first; ``AuditResult.made`` says which.

    Each video is one identity (its file name). ``gallery``: a folder of ``<identity>/<photo>`` of
    other people, added to the closed set. Raises privacy.AuditDependencyError without the
    face recognizer, measure/pipeline errors when a video has no face, ValueError when a masked
    video cannot be its original's mask (``check_mask``).
    """
    unknown = set(options.methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown method(s) {sorted(unknown)}; choose from {', '.join(METHODS)}")
    embedder = FaceEmbedder()
    baselines = [m for m in options.methods if m in BASELINES]
    originals: list[Embedded] = []
    by_method: dict[str, list[Embedded]] = {m: [] for m in options.methods}
    fidelity, made = [], []
    with LandmarkTracker(video=False) as finder:
        anonymizers = {m: make_anonymizer(m, finder) for m in baselines}
        for done, (src, masked) in enumerate(pairs):
            src, masked = Path(src), Path(masked)
            name = src.stem
            made.append(options.remask or not masked.exists())
            if made[-1]:
                masked.parent.mkdir(parents=True, exist_ok=True)
                anonymize_video(DMASK, src, masked, options.mask)
            n = _frame_count(src)
            probe_idx, ref_idx = sample_indices(n, options.frames_per_video)
            idx = np.sort(np.concatenate([probe_idx, ref_idx]))
            is_probe = np.isin(idx, probe_idx)
            images, n = _frames_at(src, idx)
            check_mask(src, masked, n, images[0].shape)
            faces = [finder(im) for im in images]
            found = [embedder.detect(im) for im in images]
            orig = embed_frames(embedder, name, images, idx, is_probe, n, found, found)
            boxes = []
            for i, im in enumerate(images):
                box = found[i]
                if box is None and faces[i]:
                    box = landmark_box(max(faces[i], key=lambda f: np.ptp(f.points[:, 0])).points, im.shape)
                boxes.append(box)
            originals.append(orig)
            for m in baselines:
                out = [anonymizers[m].apply(im, f) for im, f in zip(images, faces)]
                by_method[m].append(embed_frames(embedder, name, out, idx, is_probe, n, boxes))
            if DMASK in by_method:
                out, _ = _frames_at(masked, idx)
                by_method[DMASK].append(embed_frames(embedder, name, out, idx, is_probe, n, boxes))
            if options.fidelity:
                from ..measure import measure_video

                fidelity.append(fid.compare(measure_video(src), measure_video(masked)))
            progress("audit", done + 1, len(pairs))
    g = embed_gallery(embedder, gallery) if gallery is not None else (np.zeros((0, 128)), [])
    privacy = score_privacy(Embedded.concat(originals), {m: Embedded.concat(v) for m, v in by_method.items()}, g,
                            options.lineup_trials, options.seed)
    return AuditResult(
        videos=tuple((str(s), str(m)) for s, m in pairs), made=tuple(made),
        gallery=None if gallery is None else str(gallery),
        options=options, privacy=privacy, fidelity=tuple(fidelity),
        pooled=fid.pool(fidelity) if fidelity else None,
    )
