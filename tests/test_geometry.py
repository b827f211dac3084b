import numpy as np
import pytest

from dmask import geometry

RNG = np.random.default_rng(0)


def random_rotation(rng=RNG):
    return geometry.vector_to_rotation(rng.normal(size=3) * 0.6)


def test_similarity_fit_recovers_known_transform():
    src = RNG.normal(size=(30, 3)) * 40
    rot = random_rotation()
    dst = 3.7 * src @ rot.T + np.array([120.0, -40.0, 9.0])
    s, r, t = geometry.similarity_fit(src, dst)
    assert s == pytest.approx(3.7, rel=1e-9)
    np.testing.assert_allclose(r, rot, atol=1e-9)
    np.testing.assert_allclose(t, [120.0, -40.0, 9.0], atol=1e-7)


def test_similarity_fit_never_returns_a_reflection():
    src = RNG.normal(size=(20, 3))
    dst = src * np.array([1.0, 1.0, -1.0])  # a mirror image
    _, r, _ = geometry.similarity_fit(src, dst)
    assert np.linalg.det(r) == pytest.approx(1.0)


def test_batch_fit_matches_single_fit_under_noise():
    src = RNG.normal(size=(25, 3)) * 30
    rots = np.stack([random_rotation() for _ in range(4)])
    dst = np.einsum("fij,nj->fni", rots, src) * 2.0 + 5.0 + RNG.normal(size=(4, 25, 3)) * 0.1
    s, r, t = geometry.similarity_fit_batch(src, dst)
    for f in range(4):
        s1, r1, t1 = geometry.similarity_fit(src, dst[f])
        assert s[f] == pytest.approx(s1)
        np.testing.assert_allclose(r[f], r1, atol=1e-9)
        np.testing.assert_allclose(t[f], t1, atol=1e-7)
        angle = np.degrees(np.linalg.norm(geometry.rotation_to_vector(r[f].T @ rots[f])))
        assert angle < 0.5  # 0.1 px noise on a 30 px cloud


def test_pose_round_trip():
    pts = RNG.normal(size=(3, 10, 3))
    s = np.array([1.0, 2.0, 0.5])
    r = np.stack([random_rotation() for _ in range(3)])
    t = RNG.normal(size=(3, 3))
    back = geometry.invert_pose(geometry.apply_pose(pts, s, r, t), s, r, t)
    np.testing.assert_allclose(back, pts, atol=1e-12)


def test_rotation_vector_round_trip_including_half_turn_free_angles():
    vecs = RNG.normal(size=(50, 3))
    vecs *= (RNG.uniform(0, 3.0, size=50) / np.linalg.norm(vecs, axis=1))[:, None]
    np.testing.assert_allclose(geometry.rotation_to_vector(geometry.vector_to_rotation(vecs)), vecs, atol=1e-8)


def test_euler_angles_of_known_head_turns():
    frontal = np.diag([1.0, -1.0, -1.0])
    np.testing.assert_allclose(geometry.euler_from_rotation(frontal), [0, 0, 0], atol=1e-9)
    # Yaw 20 deg: the face turns toward image right (rotation about the camera's up axis).
    yaw = geometry.vector_to_rotation(np.array([0.0, np.radians(20), 0.0]))
    rot = frontal @ yaw  # head -> camera frame (y up, z to viewer) is yaw; that frame -> image is frontal
    np.testing.assert_allclose(geometry.euler_from_rotation(rot), [20, 0, 0], atol=1e-9)
    pitch = geometry.vector_to_rotation(np.array([np.radians(-10), 0.0, 0.0]))  # chin up: face tilts up
    np.testing.assert_allclose(geometry.euler_from_rotation(frontal @ pitch), [0, 10, 0], atol=1e-9)
    roll = geometry.vector_to_rotation(np.array([0.0, 0.0, np.radians(-5)]))  # clockwise as seen
    np.testing.assert_allclose(geometry.euler_from_rotation(frontal @ roll), [0, 0, 5], atol=1e-9)


def test_gaze_vector_and_angles_are_inverse():
    yp = np.array([[10.0, -5.0], [-25.0, 15.0], [0.0, 0.0]])
    np.testing.assert_allclose(geometry.gaze_angles(geometry.gaze_vector(yp)), yp, atol=1e-9)
    np.testing.assert_allclose(geometry.gaze_vector(np.zeros(2)), [0, 0, 1], atol=1e-12)


def test_sphere_front_point_lies_on_the_sphere_facing_the_camera():
    centre = np.array([10.0, 20.0, 50.0])
    p = geometry.sphere_front_point(centre, 5.0, np.array([12.0, 23.0]))
    assert np.linalg.norm(p - centre) == pytest.approx(5.0)
    assert p[2] < centre[2]
    np.testing.assert_allclose(p[:2], [12.0, 23.0])
    outside = geometry.sphere_front_point(centre, 5.0, np.array([30.0, 20.0]))
    assert np.linalg.norm(outside - centre) == pytest.approx(5.0)


def test_triangles_from_edges_of_an_octahedron_and_orientation():
    verts = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
    edges = {(a, b) for a in range(6) for b in range(6) if a < b and np.dot(verts[a], verts[b]) == 0}
    tris = geometry.triangles_from_edges(edges, 6)
    assert len(tris) == 8
    oriented = geometry.orient_triangles(verts, tris, verts[tris].mean(axis=1))
    normals = geometry.triangle_normals(verts, oriented)
    assert ((normals * verts[oriented].mean(axis=1)).sum(axis=1) > 0).all()
    vn = geometry.vertex_normals(verts, oriented)
    np.testing.assert_allclose(vn, verts, atol=1e-12)


def test_spurious_clique_is_dropped():
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    tris = geometry.triangles_from_edges(FACEMESH_TESSELATION, 468)
    assert len(tris) == 852


def test_fit_circle_recovers_a_circle_and_survives_degenerate_points():
    a = np.linspace(-1.0, 1.0, 12)
    pts = np.stack([3.0 + 5.0 * np.cos(a), -2.0 + 5.0 * np.sin(a)], axis=1)
    c, r = geometry.fit_circle(pts, np.array([2.0, -1.0]), 4.0)
    np.testing.assert_allclose(c, [3.0, -2.0], atol=1e-6)
    assert r == pytest.approx(5.0, abs=1e-6)
    # all on one line, or all one point: no exception (callers check the result)
    geometry.fit_circle(np.stack([np.arange(8.0), np.zeros(8)], axis=1), np.array([3.0, 1.0]), 2.0)
    geometry.fit_circle(np.ones((8, 2)), np.array([0.0, 0.0]), 1.0)


def test_limbus_centres_places_a_foreshortened_iris_seen_in_part():
    """The limbus of an eye turned 30 degrees aside and 10 up, seen orthographically, with only the
    arcs below its centre visible (a lid over the top), each edge point jittered by 0.1 px: the
    eyeball model's limbus is placed within 0.05 px from a start 1 px off, where a free circle
    through the same points lands more than 0.5 px low."""
    rng = np.random.default_rng(0)
    eyeball, depth, radius = np.array([100.0, 80.0]), 21.0, 11.7
    g = geometry.gaze_vector(np.array([30.0, 10.0]))
    centre3 = np.array([*eyeball, 0.0]) + depth * g
    u = np.cross(g, [0.0, 0.0, 1.0])
    u /= np.linalg.norm(u)
    v = np.cross(g, u)
    angles = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    ring = centre3 + radius * (np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v)
    seen = ring[ring[:, 1] > centre3[1] + 1.0, :2]  # image y grows downward: the lower arcs
    seen = seen + rng.normal(0, 0.1, seen.shape)
    start = centre3[:2] + [0.6, -0.8]
    fitted = geometry.limbus_centres(seen[None], start[None], eyeball[None], np.array([depth]), np.array([radius]))[0]
    assert np.linalg.norm(fitted - centre3[:2]) < 0.05
    circle, _ = geometry.fit_circle(seen, start, radius)
    assert circle[1] - centre3[1] > 0.5
    assert np.isnan(geometry.limbus_centres(np.full((1, 5, 2), np.nan), start[None], eyeball[None],
                                            np.array([depth]), np.array([radius]))).all()


def test_grid_interpolate_is_multilinear_and_holds_its_edges():
    axes = (np.array([0.0, 1.0, 3.0]), np.array([-1.0, 1.0]))
    values = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1) @ np.array([[2.0, 1.0], [-1.0, 0.5]])  # linear
    points = np.array([[0.5, 0.0], [2.0, 0.3], [1.0, -1.0]])
    np.testing.assert_allclose(geometry.grid_interpolate(axes, values, points),
                               points @ np.array([[2.0, 1.0], [-1.0, 0.5]]), atol=1e-12)
    np.testing.assert_allclose(geometry.grid_interpolate(axes, values, np.array([[5.0, -4.0]])),
                               geometry.grid_interpolate(axes, values, np.array([[3.0, -1.0]])))
