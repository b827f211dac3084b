"""How close are masks to real faces, and to each other? A quick report with a real face recognizer.

    python tools/identity_report.py [--data DIR] [--frames 6]

Masks each single-face video of the test data (DMASK_DATA, default ../shared/data) into a temporary
folder and embeds sampled frames with face_recognition (dlib ResNet). Prints:
- the smallest distance from any masked frame to any gallery identity (above 0.6 = nobody matched);
- the mean distance between masked frames of the same video and of different videos: if masks of one
  person are no closer to each other than masks of different people, masks cannot be linked.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dmask import mask_video  # noqa: E402
from dmask.video import iter_frames  # noqa: E402

VIDEOS = ("blink_selfie", "lp_d0_gaze", "lp_d6_crosseyed", "lp_d10_expressive", "lp_d11_child", "lp_d14_blinks",
          "hdtf_aoc", "hdtf_katiehill", "retalking_4", "mead_m003_1080p", "mead_w015_1080p", "mead_w040_1080p")


def embed(image: np.ndarray):
    import face_recognition

    image = np.ascontiguousarray(image)
    found = face_recognition.face_encodings(image, face_recognition.face_locations(image))
    return found[0] if found else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("DMASK_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--frames", type=int, default=6, help="frames sampled per masked video")
    args = parser.parse_args()
    import face_recognition

    gallery = [e for p in sorted((args.data / "gallery").glob("*/*")) if (e := embed(face_recognition.load_image_file(p))) is not None]
    masks: dict[str, list[np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in VIDEOS:
            out = Path(tmp) / f"{name}.mp4"
            mask_video(args.data / "videos" / f"{name}.mp4", out)
            frames = [f.image for f in iter_frames(out)]
            picks = np.linspace(0, len(frames) - 1, args.frames).astype(int)
            masks[name] = [e for i in picks if (e := embed(frames[i])) is not None]
    found = sum(map(len, masks.values()))
    print(f"recognizer found a face in {found} of {args.frames * len(VIDEOS)} masked frames")
    closest = min(face_recognition.face_distance(np.array(gallery), e).min() for v in masks.values() for e in v)
    print(f"closest masked frame to any of {len(gallery)} gallery photos: {closest:.3f} (same person below 0.6)")
    same, different = [], []
    names = [n for n in masks if masks[n]]
    for a in names:
        for b in names:
            for i, x in enumerate(masks[a]):
                d = face_recognition.face_distance(np.array(masks[b]), x)
                (same.extend(np.delete(d, i)) if a == b else different.extend(d))
    print(f"masked frames, same video:      mean distance {np.mean(same):.3f} (n={len(same)})")
    print(f"masked frames, different video: mean distance {np.mean(different):.3f} (n={len(different)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
