"""The template face is nobody in the gallery, to a real face recognizer (dlib ResNet embeddings)."""
import numpy as np
import pytest

from dmask import geometry, topology
from dmask.fit import fit_lids
from dmask.params import MaskParams
from dmask.pipeline import render_params
from dmask.template import load_template
from dmask.types import FaceFit, Pose
from dmask.video import iter_frames

from .conftest import DATA

fr = pytest.importorskip("face_recognition", reason="the audit extra (face_recognition, dlib-bin) is not installed")
MATCH = 0.6  # face_recognition's own threshold for "same person"


def neutral_template_fit(n: int, size: int) -> FaceFit:
    """The template's own face, frontal, looking at the camera, for n frames."""
    template = load_template()
    return FaceFit(
        pose=Pose(scale=np.full(n, size / 220.0), rotation=np.tile(np.diag([1.0, -1.0, -1.0]), (n, 1, 1)),
                  translation=np.tile([size / 2, size * 0.45, 0.0], (n, 1))),
        expression=np.zeros((n, topology.N_MESH, 3), np.float32),
        gaze=np.zeros((n, 2, 2)),
        lids=np.repeat(fit_lids(template.vertices[None]), n, axis=0),
        observed=np.ones(n, bool),
        visible=np.ones(n, bool),
    )


def encodings(image):
    image = np.ascontiguousarray(image)
    return fr.face_encodings(image, fr.face_locations(image))


def test_a_rendering_of_the_template_matches_no_gallery_identity(tmp_path):
    gallery = sorted((DATA / "gallery").glob("*/*")) if (DATA / "gallery").exists() else []
    if not gallery:
        pytest.skip(f"face gallery not found under {DATA} (set DMASK_DATA)")
    path = tmp_path / "template.png"
    render_params(MaskParams(width=512, height=512, time_base=1, pts=np.zeros(1, np.int64), is_image=True,
                             faces=(neutral_template_fit(1, 512),)), path)
    found = encodings(next(iter_frames(path)).image)
    assert len(found) == 1, "the recognizer must find the rendered template as a face"
    known = {}
    for photo in gallery:
        for e in encodings(fr.load_image_file(photo)):
            known.setdefault(photo.parent.name, []).append(e)
    assert len(known) == 21
    closest = {name: fr.face_distance(np.array(e), found[0]).min() for name, e in known.items()}
    assert min(closest.values()) > MATCH, f"template matches {min(closest, key=closest.get)}"
