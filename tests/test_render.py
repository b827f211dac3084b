"""Real rendering of a real face: MediaPipe's landmarks of skimage's astronaut, drawn by the mask
renderer (headless EGL), checked by pixel statistics and by MediaPipe itself."""
import dataclasses

import numpy as np
import pytest
from skimage import data, draw

from dmask import geometry, topology
from dmask.render import Renderer, RenderError
from dmask.types import MaskGeometry

mp = pytest.importorskip("mediapipe")
from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION  # noqa: E402

SIZE = 512
BACKGROUND = (74, 82, 94)
FRONTAL = np.diag([1.0, -1.0, -1.0])
TOWARD_CAMERA = np.array([0.0, 0.0, -1.0])
ZOOM = 3.0  # the astronaut's face is ~90 px wide; eye tests enlarge it about its centre
PREVIEW = "/tmp/render_preview.png"


def detect(image: np.ndarray):
    """MediaPipe's 478 refined landmarks (478, 3) in image space, or None."""
    h, w = image.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as fm:
        found = fm.process(image).multi_face_landmarks
    if not found:
        return None
    return np.array([(p.x * w, p.y * h, p.z * w) for p in found[0].landmark])


def face_geometry(points: np.ndarray, zoom: float = 1.0, gaze=TOWARD_CAMERA) -> MaskGeometry:
    """Mask geometry from 478 landmarks, optionally enlarged about the face centre onto the image centre."""
    centre = np.append(points[: topology.N_MESH, :2].mean(axis=0), 0.0)
    pts = points if zoom == 1.0 else (points - centre) * zoom + (SIZE / 2, SIZE / 2, 0.0)
    # Horizontal iris diameter: the vertical one is often cut short by the lids.
    iris_px = np.mean([np.linalg.norm(pts[r[0], :2] - pts[r[2], :2]) for r in topology.IRIS_RING])
    radius = topology.EYEBALL_RADIUS_MM / topology.IRIS_DIAMETER_MM * iris_px
    centres = pts[list(topology.IRIS_CENTRE)] + (0.0, 0.0, radius)
    gaze = np.asarray(gaze, float)
    return MaskGeometry(pts[: topology.N_MESH], FRONTAL, centres, float(radius), np.stack([gaze, gaze]))


def gaze_toward(yaw_deg: float) -> np.ndarray:
    """Unit gaze in image space, turned yaw_deg toward image right from the camera direction."""
    a = np.radians(yaw_deg)
    return np.array([np.sin(a), 0.0, -np.cos(a)])


def lid_opening(face: MaskGeometry, eye: int, shape) -> np.ndarray:
    """Boolean mask of the lid-ring polygon of one eye."""
    ring = face.vertices[list(topology.lid_ring(eye))]
    mask = np.zeros(shape[:2], bool)
    mask[draw.polygon(ring[:, 1], ring[:, 0], shape[:2])] = True
    return mask


def pupil_pixels(image):
    return image.max(axis=2) < 20


def sclera_pixels(image):
    return (image.min(axis=2) > 180) & (np.ptp(image, axis=2) < 30)


def centroid(mask):
    """Mean image-space position of the pixels in mask; pixel (i, j) covers [j, j + 1) x [i, i + 1)."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()]) + 0.5


@pytest.fixture(scope="module")
def astronaut():
    points = detect(data.astronaut())
    assert points is not None
    return points


@pytest.fixture(scope="module")
def triangles(astronaut):
    tris = geometry.triangles_from_edges(FACEMESH_TESSELATION, topology.N_MESH)
    seen_from_front = astronaut[: topology.N_MESH] * (1.0, -1.0, -1.0)  # y up, z toward the viewer
    return geometry.orient_triangles(seen_from_front, tris, np.array([0.0, 0.0, 1.0]))


@pytest.fixture(scope="module")
def renderer(triangles):
    with Renderer(SIZE, SIZE, triangles, background=BACKGROUND) as r:
        yield r


@pytest.fixture(scope="module")
def big_face(astronaut):
    return face_geometry(astronaut, ZOOM)


def test_face_drawn_on_plain_background(renderer, astronaut, big_face):
    face = face_geometry(astronaut)
    image = renderer.render([face])
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
    from PIL import Image

    Image.fromarray(np.hstack([image, renderer.render([big_face])])).save(PREVIEW)  # to look at

    oval = face.vertices[list(topology.FACE_OVAL)]
    inside = np.zeros((SIZE, SIZE), bool)
    inside[draw.polygon(oval[:, 1], oval[:, 0], (SIZE, SIZE))] = True
    drawn = (image != BACKGROUND).any(axis=2)
    assert drawn[inside].mean() > 0.99
    x0, y0 = oval[:, :2].min(axis=0).astype(int) - 3
    x1, y1 = oval[:, :2].max(axis=0).astype(int) + 3
    outside = np.ones((SIZE, SIZE), bool)
    outside[y0:y1, x0:x1] = False
    assert not drawn[outside].any()  # corners and everything away from the face: exact background
    assert image[inside].mean(axis=0)[0] > 150  # skin, not background grey-blue


def test_empty_frame_is_background(triangles):
    for msaa in (4, 0):
        with Renderer(64, 48, triangles, background=(10, 200, 30), msaa=msaa) as r:
            image = r.render([])
        assert image.shape == (48, 64, 3)
        assert (image == (10, 200, 30)).all()


def test_eye_openings_show_sclera_and_pupil(renderer, big_face):
    image = renderer.render([big_face])
    for eye in (0, 1):
        opening = lid_opening(big_face, eye, image.shape)
        pupil = pupil_pixels(image) & opening
        sclera = sclera_pixels(image) & opening
        assert pupil.sum() > 10 and sclera.sum() > 50
        iris_centre = big_face.eye_centres[eye, :2]
        assert np.linalg.norm(centroid(pupil) - iris_centre) < 0.75
        # White on both sides of the iris.
        xs = np.nonzero(sclera)[1]
        half_iris = 0.5 * big_face.eye_radius
        assert xs.min() < iris_centre[0] - half_iris and iris_centre[0] + half_iris < xs.max()


def test_closed_lids_hide_the_eyeball(renderer, big_face):
    verts = big_face.vertices.copy()
    for eye in (0, 1):
        verts[list(topology.UPPER_LID[eye])] = verts[list(topology.LOWER_LID[eye])]
    closed = dataclasses.replace(big_face, vertices=verts)
    image = renderer.render([closed])
    without_eyes = renderer.render([dataclasses.replace(closed, eye_centres=closed.eye_centres + (5000, 0, 0))])
    assert np.array_equal(image, without_eyes)
    for eye in (0, 1):
        ring = big_face.vertices[list(topology.lid_ring(eye)), :2]
        (x0, y0), (x1, y1) = ring.min(axis=0).astype(int) - 2, ring.max(axis=0).astype(int) + 3
        box = image[y0:y1, x0:x1]
        assert not pupil_pixels(box).any() and not sclera_pixels(box).any()


def test_gaze_moves_pupil_more_than_corneal_reflex(renderer, big_face):
    r = big_face.eye_radius
    straight = renderer.render([big_face])
    turned = renderer.render([dataclasses.replace(big_face, gaze=np.stack([gaze_toward(20)] * 2))])
    for eye in (0, 1):
        opening = lid_opening(big_face, eye, straight.shape)
        pupils = [centroid(pupil_pixels(im) & opening) for im in (straight, turned)]
        reflexes = []
        for im, pupil in zip((straight, turned), pupils):
            yy, xx = np.mgrid[: im.shape[0], : im.shape[1]]
            iris = (xx - pupil[0]) ** 2 + (yy - pupil[1]) ** 2 < (0.4 * r) ** 2
            light = im.astype(int).sum(axis=2) * iris
            reflexes.append(centroid(light >= light.max() - 30))
        pupil_shift = pupils[1] - pupils[0]
        reflex_shift = reflexes[1] - reflexes[0]
        assert pupil_shift[0] == pytest.approx(r * np.sin(np.radians(20)), rel=0.25)
        assert abs(pupil_shift[1]) < 1.0
        # Hirschberg: the reflex follows the cornea's curvature centre, ~0.43 r from the eyeball centre.
        assert 0.2 * pupil_shift[0] < reflex_shift[0] < 0.7 * pupil_shift[0]
        assert np.linalg.norm(reflexes[0] - pupils[0]) < 0.75  # centred when looking at the camera


@pytest.mark.parametrize("zoom, tolerance", [(1.0, 1.5), (ZOOM, 3.0)])
def test_mediapipe_sees_the_mask_as_a_face(renderer, astronaut, zoom, tolerance):
    face = face_geometry(astronaut, zoom)
    found = detect(renderer.render([face]))
    assert found is not None
    irises = found[list(topology.IRIS_CENTRE), :2]
    assert np.linalg.norm(irises - face.eye_centres[:, :2], axis=1).max() < tolerance
    face_width = np.ptp(face.vertices[:, 0])
    assert np.median(np.linalg.norm(found[: topology.N_MESH, :2] - face.vertices[:, :2], axis=1)) < 0.03 * face_width


def test_rendering_is_deterministic(renderer, big_face, triangles):
    first = renderer.render([big_face])
    assert np.array_equal(first, renderer.render([big_face]))
    with Renderer(SIZE, SIZE, triangles, background=BACKGROUND) as other:
        assert np.array_equal(first, other.render([big_face]))


def test_odd_size_and_no_msaa(triangles, astronaut):
    w, h = 101, 77
    pts = astronaut.copy()
    centre = pts[: topology.N_MESH, :2].mean(axis=0)
    pts[:, :2] = (pts[:, :2] - centre) * 0.6 + (w / 2, h / 2)
    pts[:, 2] *= 0.6
    face = face_geometry(pts)
    for msaa in (4, 0):
        with Renderer(w, h, triangles, background=BACKGROUND, msaa=msaa) as r:
            image = r.render([face])
        assert image.shape == (h, w, 3)
        assert (image[0, 0] == BACKGROUND).all() and (image[-1, -1] == BACKGROUND).all()
        assert (image[int(face.vertices[4, 1]), int(face.vertices[4, 0])] != BACKGROUND).any()  # nose tip
        top_half_drawn = (image[: h // 2] != BACKGROUND).any(axis=2).sum()
        assert top_half_drawn > 0 and (image[h // 2 :] != BACKGROUND).any(axis=2).sum() > 0


def test_face_in_front_hides_the_one_behind(renderer, big_face):
    verts = big_face.vertices.copy()
    for eye in (0, 1):
        verts[list(topology.UPPER_LID[eye])] = verts[list(topology.LOWER_LID[eye])]
    # The face in front has closed lids and its eyeballs far away: nothing of an eye may show.
    front = dataclasses.replace(big_face, vertices=verts - (0, 0, 200), eye_centres=big_face.eye_centres + (5000, 0, 0))
    alone = renderer.render([front])
    assert np.array_equal(alone, renderer.render([big_face, front]))  # eyes behind closed lids stay hidden
    assert np.array_equal(alone, renderer.render([front, big_face]))  # in either drawing order


def test_several_faces_and_invalid_input(renderer, big_face, triangles):
    left = dataclasses.replace(big_face, vertices=big_face.vertices * (0.4, 0.4, 0.4),
                               eye_centres=big_face.eye_centres * 0.4, eye_radius=big_face.eye_radius * 0.4)
    right = dataclasses.replace(left, vertices=left.vertices + (300, 0, 0), eye_centres=left.eye_centres + (300, 0, 0))
    image = renderer.render([left, right])
    for face in (left, right):
        x, y = face.vertices[4, :2].astype(int)
        assert (image[y, x] != BACKGROUND).any()
    with pytest.raises(ValueError):
        renderer.render([dataclasses.replace(big_face, vertices=big_face.vertices[:400])])
    with pytest.raises(ValueError):
        Renderer(32, 32, triangles + 468)
    r = Renderer(32, 32, triangles)
    r.close()
    r.close()
    with pytest.raises(RenderError):
        r.render([])


def test_upper_lash_line_hangs_further_over_the_opening_as_the_lid_closes():
    from dmask.render import LASH_DROOP_MM, LASH_LIFT_MM, LASH_OPEN_GAP_MM, LASH_WIDTH_MM, lash_strips

    mm = 4.0  # pixels per millimetre
    up = np.array([0.0, -1.0, 0.0])  # the head's up in the image: a frontal face

    def strips(gap_mm):
        """Upper and lower lash strips (y ranges) of eyes whose lids are flat lines gap_mm apart."""
        verts = np.zeros((topology.N_MESH, 3))
        for eye in (0, 1):
            for lid, y in ((topology.LOWER_LID[eye], 100.0), (topology.UPPER_LID[eye], 100.0 - gap_mm * mm)):
                verts[list(lid)] = np.stack([np.linspace(10, 70, len(lid)) + 100 * eye, np.full(len(lid), y),
                                             np.zeros(len(lid))], axis=1)
            for c in (topology.OUTER_CORNER[eye], topology.INNER_CORNER[eye]):
                verts[c, 1] = 100.0 - gap_mm * mm / 2
        tris = lash_strips(verts, up, mm).reshape(2, 2, -1, 3, 3)  # eye, (upper, lower), triangle, corner
        assert np.allclose(tris[..., 2], -LASH_LIFT_MM * mm)  # in front of the lid skin
        inner = slice(2, -2)  # triangles away from the corners, whose points lie mid-gap
        return [(t[inner, :, 1].min(), t[inner, :, 1].max()) for t in (tris[0, 0], tris[0, 1])]

    for gap, closed in ((LASH_OPEN_GAP_MM, 0.0), (LASH_OPEN_GAP_MM + 2, 0.0), (LASH_OPEN_GAP_MM / 2, 0.5)):
        (u0, u1), (l0, l1) = strips(gap)
        margin = 100.0 - gap * mm
        overhang = closed * LASH_DROOP_MM  # below the upper margin, into the opening; none when open
        assert u1 == pytest.approx(margin + overhang * mm) and u1 - u0 == pytest.approx(LASH_WIDTH_MM[0] * mm)
        # The lower lash line starts at the lower margin and does not move with the upper lid.
        assert l0 == pytest.approx(100.0) and l1 - l0 == pytest.approx(LASH_WIDTH_MM[1] * mm)
