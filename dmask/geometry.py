"""Pure numpy geometry: similarity fits, rotations, mesh normals, sphere intersections."""
from __future__ import annotations

import numpy as np


FRONTAL = np.diag([1.0, -1.0, -1.0])  # head space -> image space for a face looking at the camera


def similarity_fit(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None):
    """Least-squares similarity transform with ``dst ~ scale * R @ src + t``.

    Umeyama, "Least-squares estimation of transformation parameters between two point
    patterns", IEEE PAMI 1991. R is a proper rotation (det +1).

    src, dst : (n, 3) float, n >= 3 non-collinear points
    weights : (n,) float or None
    Returns scale : float, R : (3, 3), t : (3,)
    """
    w = np.ones(len(src)) if weights is None else np.asarray(weights, float)
    w = w / w.sum()
    mu_s = w @ src
    mu_d = w @ dst
    s0 = src - mu_s
    d0 = dst - mu_d
    cov = (d0 * w[:, None]).T @ s0
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[2, 2] = -1.0
    rot = u @ fix @ vt
    var_s = w @ (s0**2).sum(axis=1)
    scale = float((sig * np.diag(fix)).sum() / var_s)
    return scale, rot, mu_d - scale * rot @ mu_s


def similarity_fit_batch(src: np.ndarray, dst: np.ndarray):
    """``similarity_fit`` of one source shape to many targets at once.

    src : (n, 3); dst : (f, n, 3)
    Returns scale (f,), R (f, 3, 3), t (f, 3)
    """
    mu_s = src.mean(axis=0)
    mu_d = dst.mean(axis=1)
    s0 = src - mu_s
    d0 = dst - mu_d[:, None]
    cov = np.einsum("fni,nj->fij", d0, s0) / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    fix = np.ones((len(dst), 3))
    fix[:, 2] = sign
    rot = np.einsum("fij,fj,fjk->fik", u, fix, vt)
    var_s = (s0**2).sum(axis=1).mean()
    scale = (sig * fix).sum(axis=1) / var_s
    t = mu_d - scale[:, None] * np.einsum("fij,j->fi", rot, mu_s)
    return scale, rot, t


def apply_pose(points: np.ndarray, scale, rot: np.ndarray, t: np.ndarray) -> np.ndarray:
    """head -> image. points (..., n, 3) with scale (...), rot (..., 3, 3), t (..., 3)."""
    scale = np.asarray(scale, float)
    return scale[..., None, None] * np.einsum("...ij,...nj->...ni", rot, points) + t[..., None, :]


def invert_pose(points: np.ndarray, scale, rot: np.ndarray, t: np.ndarray) -> np.ndarray:
    """image -> head, the inverse of ``apply_pose``."""
    scale = np.asarray(scale, float)
    return np.einsum("...ji,...nj->...ni", rot, points - t[..., None, :]) / scale[..., None, None]


def rotation_to_vector(rot: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> axis-angle vectors (..., 3), radians."""
    cos = np.clip((np.trace(rot, axis1=-2, axis2=-1) - 1) / 2, -1.0, 1.0)
    angle = np.arccos(cos)
    axis = np.stack(
        [rot[..., 2, 1] - rot[..., 1, 2], rot[..., 0, 2] - rot[..., 2, 0], rot[..., 1, 0] - rot[..., 0, 1]],
        axis=-1,
    )
    sin = np.sin(angle)
    small = sin < 1e-8
    factor = np.where(small, 0.5, angle / (2 * np.where(small, 1.0, sin)))
    return axis * factor[..., None]


def vector_to_rotation(vec: np.ndarray) -> np.ndarray:
    """Axis-angle vectors (..., 3), radians -> rotation matrices (..., 3, 3) (Rodrigues)."""
    angle = np.linalg.norm(vec, axis=-1)
    k = vec / np.where(angle > 1e-12, angle, 1.0)[..., None]
    kx = np.zeros(vec.shape[:-1] + (3, 3))
    kx[..., 0, 1], kx[..., 0, 2] = -k[..., 2], k[..., 1]
    kx[..., 1, 0], kx[..., 1, 2] = k[..., 2], -k[..., 0]
    kx[..., 2, 0], kx[..., 2, 1] = -k[..., 1], k[..., 0]
    s = np.sin(angle)[..., None, None]
    c = np.cos(angle)[..., None, None]
    return np.eye(3) + s * kx + (1 - c) * kx @ kx


def euler_from_rotation(rot: np.ndarray) -> np.ndarray:
    """Head rotation (head space -> image space) as (yaw, pitch, roll) degrees, (..., 3).

    Image space has y down and z away from the camera, head space y up and z toward it, so the
    frontal pose is diag(1, -1, -1). Yaw is positive when the face turns toward image right,
    pitch positive when it tilts up, roll positive clockwise in the image.
    """
    rel = np.diag([1.0, -1.0, -1.0]) @ rot  # the head rotation in a camera frame with y up, z toward viewer
    yaw = np.degrees(np.arcsin(np.clip(rel[..., 0, 2], -1, 1)))
    pitch = np.degrees(np.arctan2(rel[..., 1, 2], rel[..., 2, 2]))
    roll = np.degrees(np.arctan2(-rel[..., 1, 0], rel[..., 0, 0]))
    return np.stack([yaw, pitch, roll], axis=-1)


def grid_interpolate(axes, values: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Multilinear interpolation of ``values`` (n1, ..., nd, ...) given on the grid of ``axes`` (d
    increasing 1-D arrays) at ``points`` (..., d); points outside the grid take its edge values.
    Returns (..., values.shape[d:])."""
    points = np.asarray(points, float)
    out = np.zeros(points.shape[:-1] + values.shape[len(axes):])
    lo, frac = [], []
    for k, ax in enumerate(axes):
        x = np.clip(points[..., k], ax[0], ax[-1])
        i = np.clip(np.searchsorted(ax, x, side="right") - 1, 0, len(ax) - 2)
        lo.append(i)
        frac.append((x - ax[i]) / (ax[i + 1] - ax[i]))
    for corner in np.ndindex(*(2,) * len(axes)):
        w = np.prod([f if c else 1 - f for f, c in zip(frac, corner)], axis=0)
        node = values[tuple(i + c for i, c in zip(lo, corner))]
        out += w.reshape(w.shape + (1,) * (values.ndim - len(axes))) * node
    return out


def gaze_vector(yaw_pitch: np.ndarray) -> np.ndarray:
    """(..., 2) yaw, pitch degrees -> (..., 3) unit directions in head space (z forward)."""
    yaw, pitch = np.radians(yaw_pitch[..., 0]), np.radians(yaw_pitch[..., 1])
    return np.stack([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)], axis=-1)


def gaze_angles(direction: np.ndarray) -> np.ndarray:
    """(..., 3) head-space directions -> (..., 2) yaw, pitch degrees; inverse of ``gaze_vector``."""
    d = direction / np.linalg.norm(direction, axis=-1, keepdims=True)
    pitch = np.degrees(np.arcsin(np.clip(d[..., 1], -1, 1)))
    yaw = np.degrees(np.arctan2(d[..., 0], d[..., 2]))
    return np.stack([yaw, pitch], axis=-1)


def sphere_front_point(centre: np.ndarray, radius, xy: np.ndarray) -> np.ndarray:
    """Point of a sphere whose image x, y equal ``xy``, on the side facing the camera (smaller z).

    Orthographic view along +z. Points outside the silhouette are pulled onto its rim.
    centre : (..., 3); radius : (...); xy : (..., 2). Returns (..., 3).
    """
    radius = np.asarray(radius, float)
    d = xy - centre[..., :2]
    r = np.linalg.norm(d, axis=-1)
    limit = radius * 0.999
    d = d * np.where(r > limit, limit / np.maximum(r, 1e-12), 1.0)[..., None]
    dz = np.sqrt(np.maximum(radius**2 - (d**2).sum(axis=-1), 0.0))
    return np.concatenate([centre[..., :2] + d, (centre[..., 2] - dz)[..., None]], axis=-1)


def fit_circle(points: np.ndarray, centre: np.ndarray, radius: float, iterations: int = 20):
    """Least-squares circle through 2D points (geometric distance, Gauss-Newton from ``centre`` and
    ``radius``). points : (n, 2), n >= 3. Returns (centre (2,), radius)."""
    x = np.array([*centre, radius], dtype=np.float64)
    for _ in range(iterations):
        d = points - x[:2]
        rho = np.maximum(np.linalg.norm(d, axis=1), 1e-12)
        jac = np.column_stack([-d / rho[:, None], -np.ones(len(points))])
        try:
            delta = np.linalg.solve(jac.T @ jac, jac.T @ (x[2] - rho))
        except np.linalg.LinAlgError:  # the points leave it singular (all on a line, or one point)
            delta = np.linalg.lstsq(jac, x[2] - rho, rcond=None)[0]
        x += delta
        if np.abs(delta).max() < 1e-6:
            break
    return x[:2], float(x[2])


def ring_distance(points: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Distance of points (f, m, 2) to a closed polyline per frame, ring (f, k, 2). Returns (f, m)."""
    a = ring[:, None]  # (f, 1, k, 2)
    ab = np.roll(ring, -1, axis=1)[:, None] - a
    ap = points[:, :, None] - a  # (f, m, k, 2)
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(ap - t[..., None] * ab, axis=-1).min(axis=-1)


def parabola_peak(before, top, after):
    """Offset (-0.5..0.5 samples) of the top of a parabola through three equally spaced samples, the
    middle one the largest; 0 where they do not bend down. Element-wise on arrays."""
    bend = before - 2 * top + after
    if np.ndim(bend) == 0:  # the common case, kept cheap
        return float(np.clip(0.5 * (before - after) / bend, -0.5, 0.5)) if np.isfinite(bend) and bend < 0 else 0.0
    bends = np.isfinite(bend) & (bend < 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(bends, np.clip(0.5 * (before - after) / np.where(bends, bend, -1.0), -0.5, 0.5), 0.0)


def limbus_distance(points: np.ndarray, centre: np.ndarray, eyeball: np.ndarray, depth, radius) -> np.ndarray:
    """Approximate distance (Sampson's first-order one, px) of image points to the limbus of a sphere
    eyeball seen orthographically: a circle of ``radius`` on the plane ``depth`` in front of the
    eyeball's centre, facing along the gaze, whose image is an ellipse about the iris ``centre``: the
    full radius across the gaze's image direction, foreshortened to radius * cos(turn) along it, where
    sin(turn) = |centre - eyeball| / depth.
    points : (f, m, 2); centre, eyeball : (f, 2) image; depth, radius : (f,) px. Returns (f, m)."""
    g = (centre - eyeball) / np.asarray(depth, float)[:, None]
    n = np.minimum(np.linalg.norm(g, axis=-1), 0.99)
    u = np.where(n[:, None] > 1e-9, g / np.maximum(n, 1e-12)[:, None], [1.0, 0.0])  # along the turn
    w = np.stack([-u[:, 1], u[:, 0]], axis=-1)
    a = np.asarray(radius, float)[:, None]  # semi-axis across the turn
    b = a * np.sqrt(1 - n**2)[:, None]  # along it
    d = points - centre[:, None]
    x, y = (d * w[:, None]).sum(-1), (d * u[:, None]).sum(-1)
    f = (x / a) ** 2 + (y / b) ** 2 - 1
    return f / np.maximum(np.hypot(2 * x / a**2, 2 * y / b**2), 1e-12)


def limbus_centres(points: np.ndarray, start: np.ndarray, eyeball: np.ndarray, depth, radius,
                   iterations: int = 10) -> np.ndarray:
    """Iris centres (f, 2) whose limbus (``limbus_distance``: the eyeball, its size and the image
    scale known) passes closest to each frame's edge points, by least squares (Gauss-Newton from
    ``start``, each frame until its step is under 0.001 px). Two unknowns per frame, so arcs seen on one
    side of the iris only place it as well as a whole ring does, and a foreshortened limbus is not taken
    for a smaller, shifted circle.
    points : (f, m, 2) NaN-padded; start, eyeball : (f, 2); depth, radius : (f,) px. Frames with fewer
    than 3 points give NaN."""
    ok = np.isfinite(points).all(axis=-1)  # (f, m)
    pts = np.where(ok[..., None], points, 0.0)
    enough = ok.sum(axis=1) >= 3
    depth, radius = np.broadcast_to(depth, len(ok)), np.broadcast_to(radius, len(ok))
    x = np.array(start, dtype=np.float64)
    active = np.flatnonzero(enough)  # frames still moving
    h = 1e-3
    for _ in range(iterations):
        if not len(active):
            break
        p, w, e, d, rad = pts[active], ok[active], eyeball[active], depth[active], radius[active]
        r = np.where(w, limbus_distance(p, x[active], e, d, rad), 0.0)
        jx, jy = (np.where(w, limbus_distance(p, x[active] + h * u, e, d, rad) - r, 0.0) / h
                  for u in np.eye(2))  # forward differences, (a, m)
        a, b, c = (jx * jx).sum(1) + 1e-9, (jx * jy).sum(1), (jy * jy).sum(1) + 1e-9
        gx, gy = (jx * r).sum(1), (jy * r).sum(1)
        det = a * c - b * b
        step = np.stack([(c * gx - b * gy) / det, (a * gy - b * gx) / det], axis=1)
        x[active] -= step
        active = active[np.abs(step).max(axis=1) >= 1e-3]  # px
    return np.where(enough[:, None], x, np.nan)


def triangle_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Unnormalised face normals (m, 3) of triangles (m, 3) over vertices (n, 3): (b - a) x (c - a)."""
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    return np.cross(b - a, c - a)


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (n, 3)."""
    fn = triangle_normals(vertices, triangles)
    vn = np.zeros_like(vertices, dtype=float)
    for i in range(3):
        np.add.at(vn, triangles[:, i], fn)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)


def triangles_from_edges(edges, n_vertices: int) -> np.ndarray:
    """Faces of a manifold triangle mesh given only its undirected edges.

    Every 3-clique of the edge graph is a candidate; a clique whose three edges all lie on more
    than two cliques is a spurious one bridging real faces and is dropped.
    Returns (m, 3) int sorted per row (winding not recovered; see ``orient_triangles``).
    """
    adj = [set() for _ in range(n_vertices)]
    und = {tuple(sorted(e)) for e in edges}
    for a, b in und:
        adj[a].add(b)
        adj[b].add(a)
    cliques = sorted({tuple(sorted((a, b, k))) for a, b in und for k in adj[a] & adj[b]})
    use: dict[tuple[int, int], int] = {}
    for t in cliques:
        for e in ((t[0], t[1]), (t[0], t[2]), (t[1], t[2])):
            use[e] = use.get(e, 0) + 1
    keep = [t for t in cliques if not all(use[e] > 2 for e in ((t[0], t[1]), (t[0], t[2]), (t[1], t[2])))]
    return np.array(keep, dtype=np.int32)


def orient_triangles(vertices: np.ndarray, triangles: np.ndarray, toward: np.ndarray) -> np.ndarray:
    """Flip triangles so their normals point along ``toward``: (3,) for all, or (m, 3) per triangle."""
    flip = (triangle_normals(vertices, triangles) * toward).sum(axis=-1) < 0
    out = triangles.copy()
    out[flip] = out[flip][:, [0, 2, 1]]
    return out
