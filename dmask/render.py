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

import numpy as np

from . import geometry, topology
from .types import MaskGeometry

# Colours, sRGB in [0, 1].
SKIN = (0.87, 0.70, 0.60)
UPPER_LASH = (0.17, 0.12, 0.10)  # lash line on the upper lid margin
LOWER_LASH = (0.45, 0.32, 0.28)
BROW = (0.33, 0.24, 0.19)
LIPS = (0.74, 0.42, 0.40)
MOUTH = (0.24, 0.08, 0.07)  # mouth interior
CONJUNCTIVA = (0.85, 0.62, 0.60)  # lid opening outside the eyeball (caruncle, eye corners)
SCLERA = (0.93, 0.89, 0.87)
IRIS_INNER = (0.62, 0.46, 0.20)  # hazel collarette around the pupil
IRIS_OUTER = (0.38, 0.23, 0.12)  # brown periphery
LIMBUS = (0.13, 0.09, 0.07)  # dark ring at the iris edge
PUPIL = (0.02, 0.02, 0.02)

# Lighting of the skin: ambient + Lambert + weak Blinn-Phong, light and viewer at the camera.
AMBIENT = 0.38
DIFFUSE = 0.62
SPECULAR = 0.06
SHININESS = 24.0

# Eye model (mm, on the 12 mm eyeball radius of topology.EYEBALL_RADIUS_MM).
PUPIL_RADIUS_MM = 2.0
CORNEA_OFFSET_MM = 5.2  # corneal centre of curvature in front of the eyeball centre
REFLEX_RADIUS_MM = 0.6  # corneal light reflex
MOUTH_DEPTH = 0.4  # mouth interior's centre behind the inner lips, in eye radii

DOME_SEGMENTS = 48  # the camera-facing half of the unit eyeball sphere
DOME_RINGS = 16

_CLIP = """
uniform vec3 u_ndc_scale;  // (2 / W, -2 / H, 1 / (4 max(W, H)))
vec4 to_clip(vec3 p) { return vec4(p * u_ndc_scale + vec3(-1.0, 1.0, 0.0), 1.0); }
"""
_SRGB = """
vec3 to_linear(vec3 c) { return pow(c, vec3(2.2)); }
vec3 to_srgb(vec3 c) { return pow(clamp(c, 0.0, 1.0), vec3(1.0 / 2.2)); }
"""

FACE_VERTEX = "#version 330\n" + _CLIP + """
in vec3 in_pos;
in vec3 in_normal;
in vec3 in_colour;
out vec3 v_normal;
out vec3 v_colour;
void main() {
    v_normal = in_normal;
    v_colour = in_colour;
    gl_Position = to_clip(in_pos);
}
"""
FACE_FRAGMENT = "#version 330\n" + _SRGB + """
uniform vec4 u_light;  // ambient, diffuse, specular, shininess
in vec3 v_normal;
in vec3 v_colour;
out vec4 f_colour;
void main() {
    float c = max(-normalize(v_normal).z, 0.0);  // cosine to the camera, which looks along +z
    vec3 lin = to_linear(v_colour) * (u_light.x + u_light.y * c) + u_light.z * pow(c, u_light.w);
    f_colour = vec4(to_srgb(lin), 1.0);
}
"""
FLAT_VERTEX = "#version 330\n" + _CLIP + """
in vec3 in_pos;
in float in_shade;
out float v_shade;
void main() {
    v_shade = in_shade;
    gl_Position = to_clip(in_pos);
}
"""
FLAT_FRAGMENT = """#version 330
uniform vec3 u_colour;
in float v_shade;
out vec4 f_colour;
void main() { f_colour = vec4(u_colour * v_shade, 1.0); }
"""
EYE_VERTEX = "#version 330\n" + _CLIP + """
uniform vec3 u_centre;
uniform float u_radius;
in vec3 in_pos;
out vec3 v_pos;
void main() {
    v_pos = u_centre + u_radius * in_pos;
    gl_Position = to_clip(v_pos);
}
"""
EYE_FRAGMENT = "#version 330\n" + _SRGB + """
uniform vec3 u_centre;
uniform float u_radius;
uniform vec3 u_gaze;
uniform vec4 u_eye;  // pupil and iris half-angles (rad), cornea offset (radii), reflex cosine
uniform vec3 u_sclera, u_iris_inner, u_iris_outer, u_limbus, u_pupil;
in vec3 v_pos;
out vec4 f_colour;

void main() {
    vec3 n = normalize(v_pos - u_centre);
    float a = acos(clamp(dot(n, u_gaze), -1.0, 1.0));  // angle from the visual axis
    float aa = max(fwidth(a), 1e-4);
    float t = clamp((a - u_eye.x) / (u_eye.y - u_eye.x), 0.0, 1.0);  // 0 pupil edge .. 1 limbus

    // Generic hazel-brown iris: radial striations, lighter collarette, dark limbal ring.
    vec3 h = abs(u_gaze.y) < 0.9 ? vec3(0.0, 1.0, 0.0) : vec3(1.0, 0.0, 0.0);
    vec3 e1 = normalize(cross(h, u_gaze));
    float phi = atan(dot(n, cross(u_gaze, e1)), dot(n, e1));
    float stria = sin(phi * 41.0 + 2.5 * sin(phi * 7.0)) * sin(phi * 23.0 + t * 3.0);
    vec3 iris = mix(u_iris_inner, u_iris_outer, smoothstep(0.1, 0.55, t));
    iris *= 0.85 + 0.2 * stria * (1.0 - 0.5 * t);
    iris = mix(iris, u_limbus, smoothstep(0.72, 1.0, t));

    vec3 col = mix(u_pupil, iris, smoothstep(u_eye.x - aa, u_eye.x + aa, a));
    col = mix(col, u_sclera, smoothstep(u_eye.y - aa, u_eye.y + aa, a));

    // Lit from the camera: darker toward the silhouette.
    float c = max(-n.z, 0.0);
    vec3 lin = to_linear(col) * (0.35 + 0.65 * c);

    // Corneal light reflex, from the cornea's own normal, so it moves less than the pupil.
    vec3 nc = normalize(v_pos - (u_centre + u_eye.z * u_radius * u_gaze));
    float cw = max(fwidth(nc.z), 1e-4);
    float reflex = smoothstep(u_eye.w - cw, u_eye.w + cw, -nc.z) * (1.0 - smoothstep(u_eye.y - aa, u_eye.y, a));
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
    colours[list(topology.LOWER_LID[0] + topology.LOWER_LID[1])] = LOWER_LASH
    colours[list(topology.UPPER_LID[0] + topology.UPPER_LID[1])] = UPPER_LASH
    return colours


def eye_dome(segments: int = DOME_SEGMENTS, rings: int = DOME_RINGS):
    """The camera-facing half of a unit sphere (pole at z = -1), as an indexed triangle mesh.

    The eyeball is never rotated as a mesh (gaze lives in the shader), so this half is all that can
    be seen. Returns vertices (1 + segments * rings, 3) float32, triangles (k, 3) int32.
    """
    theta = np.linspace(0, np.pi / 2, rings + 1)[1:]  # polar angle from the pole
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    ringv = np.stack(np.broadcast_arrays(st * np.cos(phi), st * np.sin(phi), -ct), axis=-1).reshape(-1, 3)
    verts = np.vstack([[0.0, 0.0, -1.0], ringv]).astype(np.float32)
    j = np.arange(segments)
    k = (j + 1) % segments
    tris = [np.stack([np.zeros(segments, int), 1 + j, 1 + k], axis=1)]
    for r in range(rings - 1):
        a, b = 1 + r * segments, 1 + (r + 1) * segments
        tris += [np.stack([a + j, b + j, b + k], axis=1), np.stack([a + j, b + k, a + k], axis=1)]
    return verts, np.vstack(tris).astype(np.int32)


def fan(loop: np.ndarray, push: float, rim_shade: float) -> np.ndarray:
    """Triangle-fan vertices (len(loop) + 2, 4) closing a loop (n, 3) from its centroid.

    The centroid is pushed ``push`` along +z (away from the camera). Columns: x, y, z, shade
    (1 at the centre, ``rim_shade`` on the loop).
    """
    centre = loop.mean(axis=0) + (0.0, 0.0, push)
    pts = np.vstack([centre, loop, loop[:1]])
    shade = np.full((len(pts), 1), rim_shade)
    shade[0] = 1.0
    return np.hstack([pts, shade])


class _GL:
    """The raw GL entry points moderngl does not wrap (stencil, depth-stencil attachment, masks)."""

    DEPTH_TEST, STENCIL_TEST, CULL_FACE = 0x0B71, 0x0B90, 0x0B44
    ALWAYS, EQUAL, KEEP, REPLACE = 0x0207, 0x0202, 0x1E00, 0x1E01
    COLOR_BIT, DEPTH_BIT, STENCIL_BIT = 0x4000, 0x0100, 0x0400
    FRAMEBUFFER, RENDERBUFFER = 0x8D40, 0x8D41
    DEPTH_STENCIL_ATTACHMENT, DEPTH24_STENCIL8, FRAMEBUFFER_COMPLETE = 0x821A, 0x88F0, 0x8CD5

    _SIGNATURES = {
        "glEnable": (None, ctypes.c_uint),
        "glDisable": (None, ctypes.c_uint),
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
        "glRenderbufferStorageMultisample": (None, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_int, ctypes.c_int),
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
        import moderngl  # heavy; only when a renderer is built

        triangles = np.asarray(triangles)
        if triangles.ndim != 2 or triangles.shape[1] != 3 or triangles.min() < 0 or triangles.max() >= topology.N_MESH:
            raise ValueError(f"triangles must be (m, 3) indices below {topology.N_MESH}, got {triangles.shape}")
        if width < 1 or height < 1:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        self.width, self.height = int(width), int(height)
        self.background = np.asarray(background, np.float32) / 255.0
        self._triangles = triangles.astype(np.int32)
        self._gl = _GL()
        try:
            self._ctx = moderngl.create_standalone_context(backend="egl", require=330)
        except Exception as exc:  # glcontext raises plain Exceptions
            raise RenderError(f"{_NO_GL}: {exc}") from exc
        self._released = False
        with self._ctx:
            self._build(moderngl, msaa)

    def _build(self, moderngl, msaa: int) -> None:
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
        cornea = r - CORNEA_OFFSET_MM  # radius of the corneal sphere around its centre of curvature
        self._eye_prog["u_eye"].value = (
            np.arcsin(PUPIL_RADIUS_MM / r),
            np.arcsin(topology.IRIS_DIAMETER_MM / 2 / r),
            CORNEA_OFFSET_MM / r,
            np.sqrt(1 - (REFLEX_RADIUS_MM / cornea) ** 2),
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
        self._fan_vbo = ctx.buffer(reserve=sum(self._fan_sizes) * 4 * 4, dynamic=True)
        self._fan_vao = ctx.vertex_array(self._flat_prog, [(self._fan_vbo, "3f 1f", "in_pos", "in_shade")])
        dome, dome_tris = eye_dome()
        self._eye_vao = ctx.vertex_array(
            self._eye_prog, [(ctx.buffer(dome), "3f", "in_pos")], index_buffer=ctx.buffer(dome_tris)
        )
        self._pixels = bytearray(self.width * self.height * 3)
        self._moderngl = moderngl

    def render(self, faces: Sequence[MaskGeometry]) -> np.ndarray:
        """Draw ``faces`` (image space) on the plain background. Returns (height, width, 3) uint8 RGB, row 0 on top."""
        if self._released:
            raise RenderError("renderer is closed")
        gl = self._gl
        with self._ctx:
            self._fbo.use()
            gl.ColorMask(1, 1, 1, 1)
            gl.DepthMask(1)
            gl.StencilMask(0xFF)
            gl.ClearColor(*self.background, 1.0)
            gl.ClearDepth(1.0)
            gl.ClearStencil(0)
            gl.Clear(gl.COLOR_BIT | gl.DEPTH_BIT | gl.STENCIL_BIT)
            gl.Enable(gl.DEPTH_TEST)
            ref = 0
            for face in faces:
                if ref + 2 > 255:  # stencil values run out: start over
                    gl.Clear(gl.STENCIL_BIT)
                    ref = 0
                self._draw_face(face, ref)
                ref += 2
            gl.Disable(gl.STENCIL_TEST)
            gl.Disable(gl.CULL_FACE)
            if self._fbo is not self._resolved:
                self._ctx.copy_framebuffer(self._resolved, self._fbo)
            self._resolved.read_into(self._pixels, components=3, alignment=1)
        image = np.frombuffer(self._pixels, np.uint8).reshape(self.height, self.width, 3)
        return image[::-1].copy()  # GL rows run bottom-up

    def _draw_face(self, face: MaskGeometry, ref: int) -> None:
        gl, mgl = self._gl, self._moderngl
        verts = np.asarray(face.vertices, np.float64)
        if verts.shape != (topology.N_MESH, 3):
            raise ValueError(f"face vertices must be ({topology.N_MESH}, 3), got {verts.shape}")
        normals = geometry.vertex_normals(verts, self._triangles)
        self._face_vbo.write(np.ascontiguousarray(np.hstack([verts, normals]), dtype="f4"))
        radius = float(face.eye_radius)
        fans = [fan(verts[list(topology.INNER_LIPS)], MOUTH_DEPTH * radius, 1.4)]
        fans += [fan(verts[list(topology.lid_ring(eye))], 0.0, 0.85) for eye in (0, 1)]
        self._fan_vbo.orphan()
        self._fan_vbo.write(np.ascontiguousarray(np.vstack(fans), dtype="f4"))

        # Face mesh, then the mouth interior behind the lips.
        gl.Disable(gl.STENCIL_TEST)
        gl.Enable(gl.CULL_FACE)
        self._face_vao.render(mgl.TRIANGLES)
        gl.Disable(gl.CULL_FACE)
        self._flat_prog["u_colour"].value = MOUTH
        self._fan_vao.render(mgl.TRIANGLE_FAN, vertices=self._fan_sizes[0])

        # Eyes. The lid opening, depth-tested against the face (a nose may hide it), is painted
        # conjunctiva and marks the stencil; the eyeball then shows only there, so the lid margins
        # always occlude it and a closed lid (an opening of no area) hides it completely.
        gl.Enable(gl.STENCIL_TEST)
        self._flat_prog["u_colour"].value = CONJUNCTIVA
        first = self._fan_sizes[0]
        for eye in (0, 1):
            value = ref + 1 + eye
            gl.Enable(gl.DEPTH_TEST)
            gl.StencilFunc(gl.ALWAYS, value, 0xFF)
            gl.StencilOp(gl.KEEP, gl.KEEP, gl.REPLACE)
            self._fan_vao.render(mgl.TRIANGLE_FAN, vertices=self._fan_sizes[1 + eye], first=first)
            first += self._fan_sizes[1 + eye]

            gl.Disable(gl.DEPTH_TEST)
            gl.StencilFunc(gl.EQUAL, value, 0xFF)
            gl.StencilOp(gl.KEEP, gl.KEEP, gl.KEEP)
            self._eye_prog["u_centre"].value = tuple(np.asarray(face.eye_centres[eye], float))
            self._eye_prog["u_radius"].value = radius
            self._eye_prog["u_gaze"].value = tuple(np.asarray(face.gaze[eye], float))
            self._eye_vao.render(mgl.TRIANGLES)
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
