"""Measure where the landmark stage reads the template's eye corners, and store it in the template.

    python tools/calibrate_template.py      # after tools/build_template.py, and whenever the renderer
                                            # or the landmark stage changes (tests/test_template.py checks)

Renders the template (``dmask.synth``, through the real renderer and H.264) with the head turned and
tilted and the eyes looking about, runs dmask's landmark stage on it (MediaPipe, then the eyes'
pixel refinement), takes each eye corner it reports back into head space with the known pose, and
writes the mean offset from the vertex as ``corner_offsets`` in dmask/assets/template.npz
(``Template.landmarks``). The synthetic lids are given relative to the corners as read, so these
renders do not depend on the offsets and one measurement suffices. Uses nothing but the template.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dmask import geometry, synth  # noqa: E402
from dmask.landmarks import LandmarkTracker  # noqa: E402
from dmask.template import ASSET, Template, template_from  # noqa: E402
from dmask.topology import EYE_CORNERS  # noqa: E402
from dmask.video import iter_frames  # noqa: E402

HEADS = ((0.0, 0.0, 0.0), (10.0, 0.0, 0.0), (-10.0, 0.0, 0.0), (0.0, 8.0, 0.0), (0.0, -8.0, 0.0))
# (time s, yaw, pitch): primary gaze, then 10 degrees to either side, then 6 up and down
FIXATIONS = ((0.0, 0.0, 0.0), (0.6, 10.0, 0.0), (1.2, -10.0, 0.0), (1.8, 0.0, 6.0), (2.4, 0.0, -6.0))


def read_offsets(template: Template, workdir: Path) -> np.ndarray:
    """(4, 3) mean head-space offset of the reported eye corners from the vertices (z left at 0)."""
    offsets = []
    for k, head in enumerate(HEADS):
        spec = synth.SynthSpec(seconds=3.0, head=head, fixations=FIXATIONS)
        video = workdir / f"calibration_{k}.mp4"
        synth.write_synthetic(spec, video, template)
        fit = synth.synth_fit(spec, template)
        with LandmarkTracker(max_faces=1) as tracker:
            for i, frame in enumerate(iter_frames(video)):
                faces = tracker(frame.image)
                if not faces:
                    continue
                s, rot, t = fit.pose.scale[i], fit.pose.rotation[i], fit.pose.translation[i]
                drawn = template.vertices[list(EYE_CORNERS)]
                image = geometry.apply_pose(drawn, s, rot, t)
                image[:, :2] = faces[0].points[list(EYE_CORNERS), :2]  # MediaPipe's depth is not metric
                offsets.append(geometry.invert_pose(image, s, rot, t) - drawn)
    mean = np.mean(offsets, axis=0)
    mean[:, 2] = 0.0
    return mean


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    path = ROOT / "dmask" / "assets" / ASSET
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    template = replace(template_from(arrays), corner_offsets=np.zeros((len(EYE_CORNERS), 3)))
    with tempfile.TemporaryDirectory() as tmp:
        offsets = read_offsets(template, Path(tmp))
    arrays["corner_offsets"] = offsets.astype(np.float32)
    np.savez_compressed(path, **arrays)
    print(f"corner offsets (mm; outer R, outer L, inner R, inner L):\n{offsets.round(2)}\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
