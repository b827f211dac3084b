"""Render mask geometry with OpenGL: one plain shaded face, eyeballs seen through the lids, a dark mouth.

Every patient gets the same look (skin, iris, lighting); only the geometry moves. The output holds
nothing but rendered pixels on a plain background: the renderer never sees the original frames.

Geometry arrives in image space (x right, y down, z away from the camera, pixels) and is viewed
orthographically along +z with the light at the camera. One standalone EGL context per Renderer
(headless; Mesa's llvmpipe is enough). moderngl has no stencil API, so the few stencil calls and
the depth-stencil attachment go straight to GL through ctypes.
"""
from __future__ import annotations

import ctypes
import ctypes.util
from typing import Sequence

import moderngl
import numpy as np

from . import geometry, topology
from .types import MaskGeometry

# Colours, sRGB in [0, 1].
SKIN = (0.87, 0.70, 0.60)
UPPER_LASH = (0.17, 0.12, 0.10)  # lash line along the upper lid margin
LOWER_LASH = (0.45, 0.32, 0.28)
BROW = (0.42, 0.31, 0.24)
LIPS = (0.74, 0.42, 0.40)
MOUTH = (0.20, 0.06, 0.05)  # mouth interior, deep inside
MOUTH_RIM = (0.36, 0.13, 0.11)  # mouth interior just behind the lips
CONJUNCTIVA = (0.86, 0.72, 0.70)  # lid opening around the eyeball (the eyeball misses the corners)
CONJUNCTIVA_RIM = (0.64, 0.50, 0.48)  # along the lid margins, in their shadow
CARUNCLE = (0.80, 0.46, 0.46)  # inner eye corner
SCLERA = (0.93, 0.89, 0.87)
IRIS_INNER = (0.36, 0.22, 0.10)  # dark brown, the commonest iris: lighter collarette around the pupil
IRIS_OUTER = (0.22, 0.13, 0.07)  # darker periphery
LIMBUS = (0.08, 0.05, 0.03)  # dark ring at the iris edge
PUPIL = (0.02, 0.02, 0.02)

# Lighting of the skin: ambient + Lambert + weak Blinn-Phong, light and viewer at the camera.
AMBIENT = 0.38
DIFFUSE = 0.62
SPECULAR = 0.06
SHININESS = 24.0

# Eye model (mm, on the 12 mm eyeball radius of topology.EYEBALL_RADIUS_MM).
PUPIL_RADIUS_MM = 2.0
REFLEX_RADIUS_MM = 0.5  # corneal light reflex
MOUTH_DEPTH = 0.4  # mouth interior's centre behind the inner lips, in eye radii
# Lash lines: strips of fixed width (mm) along each lid margin, so the dark line stays thin however
# far the lid skin stretches (a colour gradient over the lid triangles widened as the lid fell and
# made half-closed eyes look open to a landmark detector). In the open eye a strip starts at the lid
# margin, so the edge of the opening that ``eyes.refine_lids`` finds is the lid itself.
LASH_WIDTH_MM = (2.0, 1.4)  # upper, lower
# As the upper lid comes down over the cornea its tarsus rotates and the lashes, which point forward
# and up in the open eye, point forward and down: seen from the front more of the lash line hangs
# over the opening. The upper overhang grows by LASH_DROOP_MM times the share of the opening closed
# (mid-lid gap against LASH_OPEN_GAP_MM, a typical open fissure). Without it MediaPipe read a lid
# lowered by 60 % as 52 % open (truth 40 %): the mask's incomplete blinks went unseen.
LASH_DROOP_MM = 0.6
LASH_OPEN_GAP_MM = 9.0
LASH_LIFT_MM = 0.5  # toward the camera, to stay in front of the lid skin

EYEBALL_SEGMENTS = 64  # of the eyeball's outline

_CLIP = """
uniform vec3 u_ndc_scale;  // (2 / W, -2 / H, 1 / (4 max(W, H)))
vec4 to_clip(vec3 p) { return vec4(p * u_ndc_scale + vec3(-1.0, 1.0, 0.0), 1.0); }
"""
_SRGB = """
// Shading runs on linear light; gamma 2 stands in for sRGB (cheap on a software rasteriser).
vec3 to_linear(vec3 c) { return c * c; }
vec3 to_srgb(vec3 c) { return sqrt(clamp(c, 0.0, 1.0)); }
"""

FACE_VERTEX = "#version 330\n" + _CLIP + """
in vec3 in_pos;
in vec3 in_normal;
in vec3 in_colour;
out vec3 v_normal;
out vec3 v_colour;  // linear
void main() {
    v_normal = in_normal;
    v_colour = in_colour * in_colour;
    gl_Position = to_clip(in_pos);
}
"""
FACE_FRAGMENT = "#version 330\n" + _SRGB + """
uniform vec4 u_light;  // ambient, diffuse, specular, shininess
in vec3 v_normal;
in vec3 v_colour;
out vec4 f_colour;
void main() {
    vec3 n = gl_FrontFacing ? v_normal : -v_normal;  // two-sided: the mesh is open
    float c = max(-normalize(n).z, 0.0);  // cosine to the camera, which looks along +z
    vec3 lin = v_colour * (u_light.x + u_light.y * c) + u_light.z * pow(c, u_light.w);
    f_colour = vec4(to_srgb(lin), 1.0);
}
"""
FLAT_VERTEX = "#version 330\n" + _CLIP + """
in vec3 in_pos;
in vec3 in_colour;
out vec3 v_colour;
void main() {
    v_colour = in_colour;
    gl_Position = to_clip(in_pos);
}
"""
FLAT_FRAGMENT = """#version 330
in vec3 v_colour;
out vec4 f_colour;
void main() { f_colour = vec4(v_colour, 1.0); }
"""
EYE_VERTEX = "#version 330\n" + _CLIP + """
uniform vec3 u_centre;
uniform float u_radius;
in vec2 in_pos;
out vec2 v_offset;
void main() {
    v_offset = in_pos;
    gl_Position = to_clip(u_centre + u_radius * vec3(in_pos, 0.0));
}
"""
EYE_FRAGMENT = "#version 330\n" + _SRGB + """
uniform vec3 u_centre;
uniform float u_radius;
uniform vec3 u_gaze;
uniform vec4 u_eye;  // pupil and iris half-angles (rad), cornea offset and reflex radius (eye radii)
uniform vec3 u_sclera, u_iris_inner, u_iris_outer, u_limbus, u_pupil;
in vec2 v_offset;  // image-plane offset from the eyeball centre, in radii
out vec4 f_colour;

void main() {
    // The view is orthographic, so the visible point of the sphere follows from x, y alone.
    vec3 n = vec3(v_offset, -sqrt(max(1.0 - dot(v_offset, v_offset), 0.0)));
    vec3 p = u_centre + u_radius * n;
    // The cornea: a clear dome (its own sphere, u_eye.z radii in front of the eyeball's centre)
    // that meets the eyeball at the limbus. The iris is seen through it, so where the view ray
    // meets the dome the iris is drawn at the dome point's distance from the visual axis: an
    // eye turned far keeps a round, full-looking iris, as real eyes do, instead of a thin ellipse.
    float limbus = sin(u_eye.y);
    float along = cos(u_eye.y);
    vec3 cc = u_eye.z * u_gaze;
    float disc = 1.0 + u_eye.z * u_eye.z - 2.0 * u_eye.z * along - dot(v_offset - cc.xy, v_offset - cc.xy);
    vec3 q = n;  // the surface point the colour is taken from
    float a = acos(clamp(dot(n, u_gaze), -1.0, 1.0));  // angle from the visual axis
    if (disc > 0.0) {
        vec3 dome = vec3(v_offset, cc.z - sqrt(disc));
        float ax = dot(dome, u_gaze);
        if (ax > along) {
            q = dome;
            a = asin(clamp(length(dome - ax * u_gaze), 0.0, limbus));
        }
    }
    float aa = max(fwidth(a), 1e-4);
    float t = clamp((a - u_eye.x) / (u_eye.y - u_eye.x), 0.0, 1.0);  // 0 pupil edge .. 1 limbus

    // Generic brown iris: radial striations, lighter collarette, dark limbal ring.
    vec3 h = abs(u_gaze.y) < 0.9 ? vec3(0.0, 1.0, 0.0) : vec3(1.0, 0.0, 0.0);
    vec3 e1 = normalize(cross(h, u_gaze));
    float phi = atan(dot(q, cross(u_gaze, e1)), dot(q, e1));
    float stria = sin(phi * 41.0 + 2.5 * sin(phi * 7.0)) * sin(phi * 23.0 + t * 3.0);
    vec3 iris = mix(u_iris_inner, u_iris_outer, smoothstep(0.1, 0.55, t));
    iris *= 0.85 + 0.2 * stria * (1.0 - 0.5 * t);
    iris = mix(iris, u_limbus, smoothstep(0.72, 1.0, t));

    vec3 col = mix(u_pupil, iris, smoothstep(u_eye.x - aa, u_eye.x + aa, a));
    col = mix(col, u_sclera, smoothstep(u_eye.y - aa, u_eye.y + aa, a));

    // Lit from the camera: darker toward the silhouette.
    float c = max(-n.z, 0.0);
    vec3 lin = to_linear(col) * (0.35 + 0.65 * c);

    // Corneal light reflex: where the cornea's normal faces the light at the camera. The cornea's
    // centre of curvature sits in front of the eyeball's, so the reflex moves less than the pupil.
    // Seen orthographically that is a small disk around the image of that centre (u_eye.w radii).
    vec3 cornea = u_centre + u_eye.z * u_radius * u_gaze;
    float d = length(p.xy - cornea.xy) / u_radius;
    float px = 0.5 / u_radius;  // half a pixel
    float reflex = (1.0 - smoothstep(u_eye.w - px, u_eye.w + px, d)) * (1.0 - smoothstep(u_eye.y - aa, u_eye.y, a));
    f_colour = vec4(to_srgb(mix(lin, vec3(1.0), reflex)), 1.0);
}
"""

_NO_GL = "no OpenGL: install Mesa EGL (apt-get install libegl1 libgl1-mesa-dri)"


class RenderError(RuntimeError):
    """OpenGL is unavailable or failed."""


def vertex_colours(triangles: np.ndarray) -> np.ndarray:
    """Per-vertex sRGB colours (468, 3) of the face mesh: skin, lash lines, brows, lips.

    triangles : (m, 3) int. The lip area is every vertex enclosed by the outer lip contour, found
    by flooding the mesh from the inner lips.
    """
    colours = np.tile(np.array(SKIN, np.float32), (topology.N_MESH, 1))
    lips, outer = set(topology.INNER_LIPS), set(topology.OUTER_LIPS)
    while ring := set(topology.neighbours(triangles, tuple(lips)).tolist()) - outer - lips:
        lips |= ring
    colours[sorted(lips | outer)] = LIPS
    colours[list(topology.BROWS[0] + topology.BROWS[1])] = BROW
    return colours


def lash_strips(vertices: np.ndarray, up: np.ndarray, mm: float) -> np.ndarray:
    """Triangles (k, 3) of the lash lines: per eye, a strip along the upper lid margin reaching up
    and one along the lower reaching down, LASH_WIDTH_MM wide along the head's up direction ``up``
    (3,) in image space; the upper one hangs over the opening as the lid closes (LASH_DROOP_MM).

    vertices : (468, 3) image space; mm : pixels per millimetre.
    """
    tris = []
    lift = np.array([0.0, 0.0, -LASH_LIFT_MM * mm])
    mid = topology.N_UPPER // 2
    for eye in (0, 1):
        upper, lower = topology.LID_POINTS[eye][mid], topology.LID_POINTS[eye][topology.N_UPPER + mid]
        gap = max(float((vertices[upper] - vertices[lower]) @ up) / mm, 0.0)
        closed = float(np.clip(1.0 - gap / LASH_OPEN_GAP_MM, 0.0, 1.0))
        droop = (LASH_DROOP_MM * closed, 0.0)
        for k, (lid, sign) in enumerate(((topology.UPPER_LID[eye], 1.0), (topology.LOWER_LID[eye], -1.0))):
            p = vertices[list(lid)] + lift - sign * droop[k] * mm * up
            q = p + sign * LASH_WIDTH_MM[k] * mm * up
            for j in range(len(lid) - 1):
                tris += [p[j], q[j], p[j + 1], q[j], q[j + 1], p[j + 1]]
    return np.array(tris)


def lash_colours() -> np.ndarray:
    """Vertex colours matching ``lash_strips``."""
    per_strip = 6 * (len(topology.UPPER_LID[0]) - 1)
    return np.array(([UPPER_LASH] * per_strip + [LOWER_LASH] * per_strip) * 2, np.float32)


def eyeball_outline(segments: int = EYEBALL_SEGMENTS) -> np.ndarray:
    """Triangle-fan vertices (segments + 2, 2) of the unit disk: the eyeball's silhouette.

    The view is orthographic and the eyeball turns only in the shader, so its visible half is
    the disk under its outline; the fragment shader puts each pixel on the exact sphere.
    """
    phi = np.linspace(0, 2 * np.pi, segments + 1)
    rim = np.stack([np.cos(phi), np.sin(phi)], axis=1)
    return np.vstack([[0.0, 0.0], rim]).astype(np.float32)


def fan(loop: np.ndarray, push: float = 0.0) -> np.ndarray:
    """Triangle-fan vertices (n + 2, 3) closing a loop (n, 3) from its centroid.

    The centroid is pushed ``push`` along +z (away from the camera).
    """
    return np.vstack([loop.mean(axis=0) + (0.0, 0.0, push), loop, loop[:1]])


def fan_colours() -> np.ndarray:
    """Vertex colours (k, 3) of the three fans of ``Renderer``: mouth, then the two lid openings."""
    mouth = [MOUTH] + [MOUTH_RIM] * (len(topology.INNER_LIPS) + 1)
    eyes = []
    for eye in (0, 1):
        ring = topology.lid_ring(eye)
        rim = [CARUNCLE if i == topology.INNER_CORNER[eye] else CONJUNCTIVA_RIM for i in ring]
        eyes += [CONJUNCTIVA] + rim + rim[:1]
    return np.array(mouth + eyes, np.float32)


class _GL:
    """The raw GL entry points moderngl does not wrap (stencil, depth-stencil attachment, masks)."""

    DEPTH_TEST, STENCIL_TEST, SCISSOR_TEST = 0x0B71, 0x0B90, 0x0C11
    ALWAYS, EQUAL, KEEP, REPLACE = 0x0207, 0x0202, 0x1E00, 0x1E01
    COLOR_BIT, DEPTH_BIT, STENCIL_BIT = 0x4000, 0x0100, 0x0400
    FRAMEBUFFER, RENDERBUFFER = 0x8D40, 0x8D41
    DEPTH_STENCIL_ATTACHMENT, DEPTH24_STENCIL8, FRAMEBUFFER_COMPLETE = 0x821A, 0x88F0, 0x8CD5

    _SIGNATURES = {
        "glEnable": (None, ctypes.c_uint),
        "glDisable": (None, ctypes.c_uint),
        "glScissor": (None,) + (ctypes.c_int,) * 4,
        "glStencilFunc": (None, ctypes.c_uint, ctypes.c_int, ctypes.c_uint),
        "glStencilOp": (None, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint),
        "glStencilMask": (None, ctypes.c_uint),
        "glColorMask": (None,) + (ctypes.c_ubyte,) * 4,
        "glDepthMask": (None, ctypes.c_ubyte),
        "glClearColor": (None,) + (ctypes.c_float,) * 4,
        "glClearDepth": (None, ctypes.c_double),
        "glClearStencil": (None, ctypes.c_int),
        "glClear": (None, ctypes.c_uint),
        "glGenRenderbuffers": (None, ctypes.c_int, ctypes.POINTER(ctypes.c_uint)),
        "glDeleteRenderbuffers": (None, ctypes.c_int, ctypes.POINTER(ctypes.c_uint)),
        "glBindRenderbuffer": (None, ctypes.c_uint, ctypes.c_uint),
        "glRenderbufferStorageMultisample": (None, ctypes.c_uint, ctypes.c_int, ctypes.c_uint) + (ctypes.c_int,) * 2,
        "glFramebufferRenderbuffer": (None, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint),
        "glCheckFramebufferStatus": (ctypes.c_uint, ctypes.c_uint),
    }

    def __init__(self):
        try:
            egl = ctypes.CDLL(ctypes.util.find_library("EGL") or "libEGL.so.1")
        except OSError as exc:
            raise RenderError(_NO_GL) from exc
        egl.eglGetProcAddress.restype = ctypes.c_void_p
        egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
        for name, (restype, *args) in self._SIGNATURES.items():
            address = egl.eglGetProcAddress(name.encode())
            if not address:
                raise RenderError(f"{_NO_GL} ({name} missing)")
            setattr(self, name[2:], ctypes.CFUNCTYPE(restype, *args)(address))


class Renderer:
    """Draws MaskGeometry faces into (height, width, 3) uint8 RGB frames. Build once per video.

    triangles : (m, 3) int over the 468 face-mesh vertices, counter-clockwise seen from the front.
    background : plain RGB 0-255. msaa : samples of multisample anti-aliasing (0 disables).
    """

    def __init__(self, width: int, height: int, triangles: np.ndarray, *, background=(74, 82, 94), msaa: int = 4):
        triangles = np.asarray(triangles)
        if triangles.ndim != 2 or triangles.shape[1] != 3 or triangles.min() < 0 or triangles.max() >= topology.N_MESH:
            raise ValueError(f"triangles must be (m, 3) indices below {topology.N_MESH}, got {triangles.shape}")
        if width < 1 or height < 1:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        self.width, self.height = int(width), int(height)
        self.background = np.asarray(background, np.uint8)
        self._blank = np.empty((self.height, self.width, 3), np.uint8)
        self._blank[:] = self.background
        self._triangles = triangles.astype(np.int32)
        self._gl = _GL()
        try:
            self._ctx = moderngl.create_standalone_context(backend="egl", require=330)
        except Exception as exc:  # glcontext raises plain Exceptions
            raise RenderError(f"{_NO_GL}: {exc}") from exc
        self._released = False
        try:
            with self._ctx:
                self._build(msaa)
        except Exception:
            self._ctx.release()
            raise

    def _build(self, msaa: int) -> None:
        ctx, gl, size = self._ctx, self._gl, (self.width, self.height)
        samples = min(int(msaa), ctx.max_samples) if msaa > 0 else 0
        self._resolved = ctx.framebuffer([ctx.renderbuffer(size, 4)])
        self._fbo = ctx.framebuffer([ctx.renderbuffer(size, 4, samples=samples)]) if samples else self._resolved
        self._depth_stencil = ctypes.c_uint(0)
        gl.GenRenderbuffers(1, ctypes.byref(self._depth_stencil))
        gl.BindRenderbuffer(gl.RENDERBUFFER, self._depth_stencil)
        gl.RenderbufferStorageMultisample(gl.RENDERBUFFER, samples, gl.DEPTH24_STENCIL8, *size)
        self._fbo.use()
        gl.FramebufferRenderbuffer(gl.FRAMEBUFFER, gl.DEPTH_STENCIL_ATTACHMENT, gl.RENDERBUFFER, self._depth_stencil)
        if gl.CheckFramebufferStatus(gl.FRAMEBUFFER) != gl.FRAMEBUFFER_COMPLETE:
            raise RenderError(f"OpenGL could not build a {size[0]}x{size[1]} framebuffer with {samples} samples")

        ndc = (2.0 / self.width, -2.0 / self.height, 1.0 / (4.0 * max(size)))
        self._face_prog = ctx.program(vertex_shader=FACE_VERTEX, fragment_shader=FACE_FRAGMENT)
        self._flat_prog = ctx.program(vertex_shader=FLAT_VERTEX, fragment_shader=FLAT_FRAGMENT)
        self._eye_prog = ctx.program(vertex_shader=EYE_VERTEX, fragment_shader=EYE_FRAGMENT)
        for prog in (self._face_prog, self._flat_prog, self._eye_prog):
            prog["u_ndc_scale"].value = ndc
        self._face_prog["u_light"].value = (AMBIENT, DIFFUSE, SPECULAR, SHININESS)
        r = topology.EYEBALL_RADIUS_MM
        self._eye_prog["u_eye"].value = (
            np.arcsin(PUPIL_RADIUS_MM / r),
            np.arcsin(topology.IRIS_DIAMETER_MM / 2 / r),
            topology.CORNEA_OFFSET_MM / r,
            REFLEX_RADIUS_MM / r,
        )
        for name, colour in (("u_sclera", SCLERA), ("u_iris_inner", IRIS_INNER), ("u_iris_outer", IRIS_OUTER),
                             ("u_limbus", LIMBUS), ("u_pupil", PUPIL)):
            self._eye_prog[name].value = colour

        self._face_vbo = ctx.buffer(reserve=topology.N_MESH * 6 * 4, dynamic=True)
        colours = ctx.buffer(vertex_colours(self._triangles).astype("f4"))
        self._face_vao = ctx.vertex_array(
            self._face_prog,
            [(self._face_vbo, "3f 3f", "in_pos", "in_normal"), (colours, "3f", "in_colour")],
            index_buffer=ctx.buffer(self._triangles),
        )
        self._fan_sizes = (len(topology.INNER_LIPS) + 2, len(topology.lid_ring(0)) + 2, len(topology.lid_ring(1)) + 2)
        self._fan_vbo = ctx.buffer(reserve=sum(self._fan_sizes) * 3 * 4, dynamic=True)
        self._fan_vao = ctx.vertex_array(
            self._flat_prog, [(self._fan_vbo, "3f", "in_pos"), (ctx.buffer(fan_colours()), "3f", "in_colour")]
        )
        self._eye_vao = ctx.vertex_array(self._eye_prog, [(ctx.buffer(eyeball_outline()), "2f", "in_pos")])
        lash_rgb = lash_colours()
        self._lash_vbo = ctx.buffer(reserve=len(lash_rgb) * 3 * 4, dynamic=True)
        self._lash_vao = ctx.vertex_array(
            self._flat_prog, [(self._lash_vbo, "3f", "in_pos"), (ctx.buffer(lash_rgb), "3f", "in_colour")]
        )

    def render(self, faces: Sequence[MaskGeometry]) -> np.ndarray:
        """Draw ``faces`` (image space) on the plain background. Returns (height, width, 3) uint8 RGB, row 0 on top."""
        if self._released:
            raise RenderError("renderer is closed")
        scenes = [self._prepare(face) for face in faces]
        image = self._blank.copy()
        box = self._box([scene[0] for scene in scenes])
        if box is None:
            return image
        # Only the faces' box is cleared, drawn, resolved and read back: the rest is background.
        gl = self._gl
        with self._ctx:
            self._fbo.use()
            gl.ColorMask(1, 1, 1, 1)
            gl.DepthMask(1)
            gl.StencilMask(0xFF)
            gl.Enable(gl.SCISSOR_TEST)
            gl.Scissor(*box)
            gl.ClearColor(*(self.background / 255.0), 1.0)
            gl.ClearDepth(1.0)
            gl.ClearStencil(0)
            gl.Clear(gl.COLOR_BIT | gl.DEPTH_BIT | gl.STENCIL_BIT)
            gl.Enable(gl.DEPTH_TEST)
            for i, scene in enumerate(scenes):
                ref = 2 * i % 254  # two stencil values per face; start over when they run out
                if i and ref == 0:
                    gl.Clear(gl.STENCIL_BIT)
                self._draw_face(*scene, ref)
            gl.Disable(gl.STENCIL_TEST)
            if self._fbo is not self._resolved:
                self._ctx.copy_framebuffer(self._resolved, self._fbo)
            gl.Disable(gl.SCISSOR_TEST)
            pixels = self._resolved.read(viewport=box, components=3, alignment=1)
        x, y, w, h = box
        top = self.height - y - h  # GL rows run bottom-up
        image[top : top + h, x : x + w] = np.frombuffer(pixels, np.uint8).reshape(h, w, 3)[::-1]
        return image

    def _prepare(self, face: MaskGeometry):
        """Vertex data of one face: mesh (468, 6) positions + normals, fans (k, 3), eye uniforms."""
        verts = np.asarray(face.vertices, np.float64)
        if verts.shape != (topology.N_MESH, 3) or not np.isfinite(verts).all():
            raise ValueError(f"face vertices must be finite ({topology.N_MESH}, 3), got {verts.shape}")
        mesh = np.hstack([verts, geometry.vertex_normals(verts, self._triangles)])
        radius = float(face.eye_radius)
        fans = [fan(verts[list(topology.INNER_LIPS)], MOUTH_DEPTH * radius)]
        fans += [fan(verts[list(topology.lid_ring(eye))]) for eye in (0, 1)]
        eyes = [(tuple(map(float, face.eye_centres[eye])), tuple(map(float, face.gaze[eye]))) for eye in (0, 1)]
        up = np.asarray(face.rotation, np.float64) @ np.array([0.0, 1.0, 0.0])
        lashes = lash_strips(verts, up, radius / topology.EYEBALL_RADIUS_MM)
        return mesh.astype("f4"), np.vstack(fans).astype("f4"), lashes.astype("f4"), radius, eyes

    def _box(self, meshes: list[np.ndarray]):
        """GL scissor box (x, y, w, h), bottom-left origin, around all faces; None when none is on screen."""
        if not meshes:
            return None
        xy = np.vstack([m[:, :2] for m in meshes])
        x0, y0 = np.maximum(np.floor(xy.min(axis=0)) - 2, 0).astype(int)
        x1, y1 = np.minimum(np.ceil(xy.max(axis=0)) + 2, (self.width, self.height)).astype(int)
        if x1 <= x0 or y1 <= y0:
            return None
        return int(x0), int(self.height - y1), int(x1 - x0), int(y1 - y0)

    def _draw_face(self, mesh: np.ndarray, fans: np.ndarray, lashes: np.ndarray, radius: float, eyes, ref: int) -> None:
        gl, mgl = self._gl, moderngl
        self._face_vbo.orphan()
        self._face_vbo.write(mesh)
        self._fan_vbo.orphan()
        self._fan_vbo.write(fans)
        self._lash_vbo.orphan()
        self._lash_vbo.write(lashes)

        # Face mesh with its lash lines, then the mouth interior behind the lips.
        gl.Disable(gl.STENCIL_TEST)
        self._face_vao.render(mgl.TRIANGLES)
        self._lash_vao.render(mgl.TRIANGLES)
        self._fan_vao.render(mgl.TRIANGLE_FAN, vertices=self._fan_sizes[0])

        # Eyes. The lid opening, depth-tested against the face (a nose may hide it), is painted
        # conjunctiva and marks the stencil; the eyeball then shows only there, so the lid margins
        # always occlude it and a closed lid (an opening of no area) hides it completely.
        gl.Enable(gl.STENCIL_TEST)
        self._eye_prog["u_radius"].value = radius
        first = self._fan_sizes[0]
        for eye, (centre, gaze) in enumerate(eyes):
            value = ref + 1 + eye
            gl.Enable(gl.DEPTH_TEST)
            gl.StencilFunc(gl.ALWAYS, value, 0xFF)
            gl.StencilOp(gl.KEEP, gl.KEEP, gl.REPLACE)
            self._fan_vao.render(mgl.TRIANGLE_FAN, vertices=self._fan_sizes[1 + eye], first=first)
            first += self._fan_sizes[1 + eye]

            gl.Disable(gl.DEPTH_TEST)
            gl.StencilFunc(gl.EQUAL, value, 0xFF)
            gl.StencilOp(gl.KEEP, gl.KEEP, gl.KEEP)
            self._eye_prog["u_centre"].value = centre
            self._eye_prog["u_gaze"].value = gaze
            self._eye_vao.render(mgl.TRIANGLE_FAN)
        gl.Enable(gl.DEPTH_TEST)

    def close(self) -> None:
        """Release the GL objects and the context. Safe to call twice."""
        if self._released:
            return
        self._released = True
        with self._ctx:
            self._gl.DeleteRenderbuffers(1, ctypes.byref(self._depth_stencil))
        self._ctx.release()

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
