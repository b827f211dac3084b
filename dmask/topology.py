"""MediaPipe face-mesh index sets, kept as data.

Indices refer to the 478-point refined face mesh (468 mesh vertices + 10 iris points).
Eye 0 is the subject's right eye (image left), eye 1 the subject's left eye.
"""
from __future__ import annotations

import numpy as np

N_LANDMARKS = 478
N_MESH = 468

# Lid margins, from the outer corner to the inner corner (both corners included).
UPPER_LID = (
    (33, 246, 161, 160, 159, 158, 157, 173, 133),
    (263, 466, 388, 387, 386, 385, 384, 398, 362),
)
LOWER_LID = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133),
    (263, 249, 390, 373, 374, 380, 381, 382, 362),
)
OUTER_CORNER = (33, 263)
INNER_CORNER = (133, 362)
EYE_CORNERS = OUTER_CORNER + INNER_CORNER  # right outer, left outer, right inner, left inner
# Lid-margin points between the corners: 7 upper then 7 lower per eye (FaceFit.lids order).
LID_POINTS = tuple(u[1:-1] + l[1:-1] for u, l in zip(UPPER_LID, LOWER_LID))
N_LID_POINTS = len(LID_POINTS[0])
N_UPPER = len(UPPER_LID[0]) - 2
# Mid-lid points used for the lid opening (upper, lower).
MID_UPPER = (159, 386)
MID_LOWER = (145, 374)

IRIS_CENTRE = (468, 473)
IRIS_RING = ((469, 470, 471, 472), (474, 475, 476, 477))  # right, top, left, bottom in the image

# Inner lip contour (the mouth opening), a closed loop.
INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
OUTER_LIPS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
MOUTH_CORNERS = (61, 291)
BROWS = (
    (70, 63, 105, 66, 107, 55, 65, 52, 53, 46),
    (300, 293, 334, 296, 336, 285, 295, 282, 283, 276),
)
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)

# Points that expressions barely move: forehead, nose bridge and tip, eye corners, face sides.
STABLE = (
    10, 151, 9, 8, 338, 297, 109, 67, 108, 337, 69, 299,
    168, 6, 197, 195, 5, 4, 98, 327, 129, 358,
    33, 133, 263, 362,
    234, 454, 127, 356, 93, 323,
)

# Head-space eye geometry (mm).
IRIS_DIAMETER_MM = 11.7
EYEBALL_RADIUS_MM = 12.0
# The limbus (the visible iris's rim) lies on the eyeball, so the visible iris centre turns on this
# smaller radius about the eyeball centre: sqrt(12^2 - 5.85^2) = 10.48 mm.
LIMBUS_DEPTH_MM = float(np.sqrt(EYEBALL_RADIUS_MM ** 2 - (IRIS_DIAMETER_MM / 2) ** 2))
# The cornea's centre of curvature lies this far in front of the eyeball centre. A light at the camera
# is reflected where the cornea faces the camera: the corneal reflex is seen over that centre, so it
# moves with the gaze by this radius where the visible iris centre moves by LIMBUS_DEPTH_MM.
CORNEA_OFFSET_MM = 5.2


def lid_ring(eye: int) -> tuple[int, ...]:
    """The closed lid-margin loop of one eye: upper lid outer->inner, then lower lid back."""
    return UPPER_LID[eye] + LOWER_LID[eye][-2:0:-1]


def neighbours(triangles: np.ndarray, indices: tuple[int, ...]) -> np.ndarray:
    """Vertices that share a triangle with ``indices`` but are not in it.

    triangles : (m, 3) int
    """
    inside = np.zeros(N_MESH, bool)
    inside[list(indices)] = True
    touching = inside[triangles].any(axis=1)
    ring = np.unique(triangles[touching])
    return ring[~inside[ring]]
