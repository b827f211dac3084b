"""Rebuild dmask/assets/template.npz, the shared template face.

    python tools/build_template.py [--data DIR]

Runs the MediaPipe face mesh on every gallery photo and on frames sampled from every single-face
video of the test data (DMASK_DATA, default ../shared/data), aligns all shapes by generalised
Procrustes analysis, averages the samples of each identity, then the identities with equal weight,
and scales the mean to millimetres so that the iris is 11.7 mm wide. Only the mean and the spread of
a few expression cues are written: no individual face.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dmask import geometry, topology  # noqa: E402
from dmask.landmarks import LandmarkTracker  # noqa: E402
from dmask.template import ASSET, canthi_mid, expression_features  # noqa: E402
from dmask.video import iter_frames, probe  # noqa: E402

SAMPLES_PER_VIDEO = 8
MIN_IDENTITIES = 30


def head_space(points: np.ndarray) -> np.ndarray:
    """Image space (y down, z away) -> a right-handed frame with y up and z toward the viewer."""
    return points * np.array([1.0, -1.0, -1.0])


def collect(data: Path) -> dict[str, list[np.ndarray]]:
    """Landmark sets per identity, in head-space orientation."""
    shapes: dict[str, list[np.ndarray]] = {}
    with LandmarkTracker(max_faces=1, video=False) as tracker:
        for folder in sorted((data / "gallery").iterdir()):
            for photo in sorted(folder.iterdir()):
                frame = next(iter_frames(photo))
                for face in tracker(frame.image):
                    shapes.setdefault(folder.name, []).append(head_space(face.points))
        for video in sorted((data / "videos").glob("*.mp4")):
            if video.stem in ("edge_multiface_stage", "edge_crowd_1080p", "edge_fullbody_noface"):
                continue  # several or no identities
            total = probe(video).frame_count or 100
            wanted = set(np.linspace(0, total - 1, SAMPLES_PER_VIDEO).astype(int))
            for frame in iter_frames(video):
                if frame.index in wanted:
                    for face in tracker(frame.image):
                        shapes.setdefault(video.stem, []).append(head_space(face.points))
    return {k: most_neutral(v) for k, v in shapes.items() if v}


def most_neutral(items: list[np.ndarray]) -> list[np.ndarray]:
    """The samples of one identity whose mouth is the most closed (a third of them, at least one):
    talking-head frames and smiling photos would otherwise give the template an open mouth."""
    opening = [expression_features(s)[1] for s in items]
    keep = max(1, len(items) // 3)
    return [items[i] for i in np.argsort(opening)[:keep]]


def procrustes_mean(shapes: dict[str, list[np.ndarray]], iterations: int = 5):
    """Generalised Procrustes analysis; returns the identity-weighted mean and each identity's mean."""
    reference = next(iter(shapes.values()))[0]
    for _ in range(iterations):
        means = {}
        for name, items in shapes.items():
            aligned = []
            for s in items:
                scale, rot, t = geometry.similarity_fit(s[: topology.N_MESH], reference[: topology.N_MESH])
                aligned.append(scale * s @ rot.T + t)
            means[name] = np.mean(aligned, axis=0)
        reference = np.mean(list(means.values()), axis=0)
    return reference, means


def canonical_frame(mean: np.ndarray) -> np.ndarray:
    """Put the mean face in head space: origin between the eyes, x toward the subject's left eye,
    y up (chin to forehead), z out of the face; millimetres from the iris diameter."""
    eyes = canthi_mid(mean)
    origin = eyes.mean(axis=0)
    x = eyes[1] - eyes[0]
    x /= np.linalg.norm(x)
    up = mean[10] - mean[152]
    y = up - (up @ x) * x
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    out = (mean - origin) @ np.stack([x, y, z]).T
    return out * (topology.IRIS_DIAMETER_MM / iris_diameter(out))


def iris_diameter(shape: np.ndarray) -> float:
    """Mean iris diameter of both eyes, from the two diameters of each iris ring."""
    d = [np.linalg.norm(shape[r[0]] - shape[r[2]]) + np.linalg.norm(shape[r[1]] - shape[r[3]]) for r in topology.IRIS_RING]
    return float(np.mean(d) / 2)


def mesh_triangles(vertices: np.ndarray) -> np.ndarray:
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    tris = geometry.triangles_from_edges(FACEMESH_TESSELATION, topology.N_MESH)
    # Outward is away from a point deep inside the head, behind the eyes.
    centre = np.array([0.0, -10.0, -90.0])
    outward = vertices[tris].mean(axis=1) - centre
    return geometry.orient_triangles(vertices, tris, outward)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.environ.get("DMASK_DATA", ROOT.parent / "shared" / "data")
    parser.add_argument("--data", type=Path, default=Path(default))
    args = parser.parse_args()
    shapes = collect(args.data)
    if len(shapes) < MIN_IDENTITIES:
        raise SystemExit(f"only {len(shapes)} identities found in {args.data}; need {MIN_IDENTITIES}")
    mean, per_identity = procrustes_mean(shapes)
    template = canonical_frame(mean)
    # Expression cues of each identity's mean, in the template's frame, for neutral-frame selection.
    feats = []
    for shape in per_identity.values():
        scale, rot, t = geometry.similarity_fit(shape[: topology.N_MESH], template[: topology.N_MESH])
        feats.append(expression_features(scale * shape @ rot.T + t))
    feats = np.array(feats)
    out = ROOT / "dmask" / "assets" / ASSET
    np.savez_compressed(
        out,
        vertices=template.astype(np.float32),
        triangles=mesh_triangles(template),
        feature_mean=feats.mean(axis=0),
        feature_std=feats.std(axis=0),
        n_identities=len(shapes),
    )
    print(f"{out}: {len(shapes)} identities, {sum(map(len, shapes.values()))} faces")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
