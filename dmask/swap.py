"""Identity swap: the template's identity driven by the subject's expression, lids, gaze and pose."""
from __future__ import annotations

import numpy as np

from . import geometry, topology
from .template import Template, canthi_mid, with_corner_offsets
from .types import FaceFit, MaskGeometry

# Share of a lid point's move that its neighbours above and below follow, so the skin does not fold.
LID_NEIGHBOUR_FOLLOW = 0.5
# Lid margins closer than this (mm) are drawn touching: a closed eye shows no slit of eyeball, and an
# upper lid fitted below the lower one cannot turn the eye opening inside out.
CLOSED_GAP_MM = 0.5


def _lid_neighbours(template: Template) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per eye: the mesh vertices next to the lid margin, and for each the nearest lid point (column
    index into FaceFit.lids)."""
    out = []
    for e in range(2):
        lid = np.array(topology.LID_POINTS[e])
        ring = topology.neighbours(template.triangles, topology.lid_ring(e))
        d = np.linalg.norm(template.vertices[ring, None, :2] - template.vertices[None, lid, :2], axis=-1)
        out.append((ring, d.argmin(axis=1)))
    return out


def close_lids(heights: np.ndarray) -> np.ndarray:
    """Lid heights (K,) of one eye, upper then lower margin points paired outer to inner; pairs
    nearer than CLOSED_GAP_MM meet at their mean height."""
    up, lo = heights[: topology.N_UPPER], heights[topology.N_UPPER :]
    shut = up - lo < CLOSED_GAP_MM
    mean = (up + lo) / 2
    return np.concatenate([np.where(shut, mean, up), np.where(shut, mean, lo)])


def head_shape(fit: FaceFit, i: int, template: Template) -> np.ndarray:
    """The mask's face in head space (mm) for frame i: template + expression, then the subject's
    absolute lid heights placed on the template's eyes. Returns (468, 3)."""
    v = template.vertices[: topology.N_MESH] + fit.expression[i]
    mid = canthi_mid(with_corner_offsets(v, template.corner_offsets))  # the lids' reference, as read
    for e, (ring, nearest) in enumerate(_lid_neighbours(template)):
        lid = list(topology.LID_POINTS[e])
        move = mid[e, 1] + close_lids(fit.lids[i, e]) - v[lid, 1]
        v[lid, 1] += move
        v[ring, 1] += LID_NEIGHBOUR_FOLLOW * move[nearest]
    return v


def mask_geometry(fit: FaceFit, i: int, template: Template) -> MaskGeometry:
    """Image-space geometry of one face in frame i, ready for the renderer."""
    v = head_shape(fit, i, template)
    s, rot, t = fit.pose.scale[i], fit.pose.rotation[i], fit.pose.translation[i]
    # The head is drawn turned so that the landmark stage reads the subject's pose; the eyes look
    # where the subject's do, relative to that pose, about eyeball centres as far from the template's
    # place as the subject's, that the gaze was fitted against, were from theirs (FaceFit.eyeballs).
    drawn = template.drawn_rotation(rot)
    gaze = geometry.gaze_vector(fit.gaze[i]) @ rot.T
    mid = canthi_mid(template.vertices)
    # The lid margins, like the eyeballs, are placed about their eye's corners in the subject's pose,
    # not in the pose the head is drawn in: read back in the subject's pose, they stand over the
    # corners and the iris as the subject's did. (Turned with the head, a margin 5 mm in front of its
    # corners rose or sank by that depth times the few degrees between the two poses: MRD1 read
    # 0.14-0.47 mm high on the synthetic clips, from exact landmark positions.)
    turn = drawn.T @ rot
    for e in range(2):
        lid = list(topology.LID_POINTS[e])
        v[lid] = mid[e] + (v[lid] - mid[e]) @ turn.T
    centres = template.eye_centres() - mid + (0.0 if fit.eyeballs is None else fit.eyeballs[i])
    return MaskGeometry(
        vertices=geometry.apply_pose(v, s, drawn, t),
        rotation=drawn,
        eye_centres=geometry.apply_pose(mid, s, drawn, t) + s * centres @ rot.T,
        eye_radius=float(s * topology.EYEBALL_RADIUS_MM),
        gaze=gaze,
    )
