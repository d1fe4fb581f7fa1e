"""Objects: one primitive, or a rigid or articulated group of primitives (sphere, ellipsoid,
box, cylinder) that shares one instance id, and the rays that hit them.

Frames, as column vectors: an object's local point is q = R_yaw (x - pos); a part's local
point is r = Q (q - c), with c the part's centre in object coordinates and Q its rotation
(object -> part). An articulated part turns by angle[t] about an axis through a pivot.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np

from .config import EPS

SHAPES = ["sphere", "ellipsoid", "box", "cylinder"]  # version 1's primitives, one part each
# thin, composite, concave and articulated objects (SceneConfig.shapes = "all")
EXTRA_SHAPES = [
    "pole",
    "plank",
    "box_ball",
    "snowman",
    "mushroom",
    "l_shape",
    "arch",
    "ring",
    "figure",
    "turnstile",
]
EXTRA_SHARE = 0.6  # with shapes = "all", share of objects drawn from EXTRA_SHAPES


@dataclass
class Material:
    color: np.ndarray  # (3,) in [0, 1]
    texture: str  # solid | checker | stripes
    tex_color: np.ndarray
    tex_scale: float


@dataclass
class Part:
    shape: str  # sphere | ellipsoid | box | cylinder
    size: np.ndarray  # half extents (x, y, z) in the part's frame; radius = size[0] if round
    mat: Material
    centre: np.ndarray | None = None  # rest centre in object coordinates; None = the origin
    tilt: np.ndarray | None = None  # (3, 3) rest rotation object -> part; None = identity
    pivot: np.ndarray | None = None  # articulation: the part turns by angle[t] about `axis`
    axis: np.ndarray | None = None  # through `pivot` (object coordinates)
    angle: np.ndarray | None = None  # (T,) radians
    tex_unit: float | None = None  # length that texture coordinates count in (None: size[0])

    def reach(self) -> float:
        """Farthest distance of any point of the part from the object's origin, in any pose."""
        c = np.zeros(3) if self.centre is None else self.centre
        if self.pivot is not None:
            return float(np.linalg.norm(self.pivot) + np.linalg.norm(c - self.pivot))
        return float(np.linalg.norm(c))

    def extent(self) -> float:
        return float(np.linalg.norm(self.size))


@dataclass
class Obj:
    parts: list[Part]
    pos: np.ndarray  # (T, 3) origin over time
    yaw: np.ndarray  # (T,) rotation about the vertical axis
    rest: float  # height of the origin above the ground when the object stands on it
    bound: float  # radius of the disc that encloses the footprint (collisions)
    kind: str = ""
    radius: float = field(init=False)  # bounding sphere about the origin (ray culling)

    def __post_init__(self):
        self.radius = max(p.reach() + p.extent() for p in self.parts)

    def top(self) -> float:
        """Height of the highest point above the origin at rest (an estimate for tilted parts)."""
        tops = []
        for p in self.parts:
            c = np.zeros(3) if p.centre is None else p.centre
            tops.append(c[1] + (p.size[1] if p.tilt is None else p.extent()))
        return float(max(tops))


def random_color(rng: np.random.Generator) -> np.ndarray:
    return np.array(
        colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.45, 1.0), rng.uniform(0.55, 1.0)),
        np.float32,
    )


def random_material(rng: np.random.Generator, texture_prob: float) -> Material:
    textured = rng.random() < texture_prob
    return Material(
        color=random_color(rng),
        texture=["checker", "stripes"][rng.integers(2)] if textured else "solid",
        tex_color=random_color(rng),
        tex_scale=rng.uniform(3.0, 7.0),
    )


# ---- transforms -------------------------------------------------------------------------


def yaw_matrix(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])  # world -> object (rotation about y)


def axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Active rotation by `angle` about the unit `axis` (Rodrigues)."""
    x, y, z = axis
    K = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * (K @ K)


def align_y(direction: np.ndarray) -> np.ndarray:
    """Rotation object -> part that maps `direction` (object coordinates) to the part's +y:
    lays a cylinder (whose axis is its local y) along `direction`."""
    v = np.asarray(direction, float) / np.linalg.norm(direction)
    axis = np.cross(v, [0.0, 1.0, 0.0])
    s = np.linalg.norm(axis)
    if s < 1e-9:
        return np.eye(3) if v[1] > 0 else np.diag([1.0, -1.0, -1.0])
    return axis_rotation(axis / s, np.arctan2(s, v[1]))


def part_frame(obj: Obj, part: Part, t: int) -> tuple[np.ndarray, np.ndarray]:
    """World centre (3,) and world -> part rotation (3, 3) of a part at frame t."""
    R = yaw_matrix(obj.yaw[t])
    if part.centre is None and part.tilt is None and part.angle is None:
        return obj.pos[t], R  # version 1's single-part objects, arithmetic unchanged
    c = np.zeros(3) if part.centre is None else part.centre
    Q = np.eye(3) if part.tilt is None else part.tilt
    if part.angle is not None:
        A = axis_rotation(part.axis, part.angle[t])  # turns the part about the pivot
        c = part.pivot + A @ (c - part.pivot)
        Q = Q @ A.T
    return obj.pos[t] + c @ R, Q @ R


# ---- ray casting ------------------------------------------------------------------------


def intersect_primitive(
    shape: str, size: np.ndarray, centre: np.ndarray, R: np.ndarray, o: np.ndarray, d: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distance along each ray to the primitive (inf = miss) and the world normal.
    o (P, 3) or (3,) origins, d (P, 3) unit directions; R world -> primitive."""
    lo = (o - centre) @ R.T
    ld = d @ R.T
    P = len(d)
    lo = np.broadcast_to(lo, (P, 3))
    hit = np.full(P, np.inf)
    normal = np.zeros((P, 3))
    if shape in ("sphere", "ellipsoid"):
        so, sd = lo / size, ld / size  # a unit sphere in scaled space
        a = (sd * sd).sum(1)
        b = (so * sd).sum(1)
        c = (so * so).sum(1) - 1
        disc = b * b - a * c
        ok = disc > 0
        root = np.sqrt(np.where(ok, disc, 0))
        t0 = (-b - root) / a
        ok &= t0 > EPS
        hit = np.where(ok, t0, np.inf)
        normal = (lo + np.where(ok, hit, 0)[:, None] * ld) / size**2
    elif shape == "box":  # slab method
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / ld
            t1, t2 = (-size - lo) * inv, (size - lo) * inv
        tmin, tmax = np.nanmax(np.minimum(t1, t2), 1), np.nanmin(np.maximum(t1, t2), 1)
        ok = (tmax >= tmin) & (tmin > EPS)
        hit = np.where(ok, tmin, np.inf)
        p = lo + np.where(ok, hit, 0)[:, None] * ld
        face = np.argmax(np.abs(p) / size, 1)
        normal[np.arange(P), face] = np.sign(p[np.arange(P), face])
    else:  # cylinder along the local y axis, with caps
        r, hh = size[0], size[1]
        a = ld[:, 0] ** 2 + ld[:, 2] ** 2
        b = lo[:, 0] * ld[:, 0] + lo[:, 2] * ld[:, 2]
        c = lo[:, 0] ** 2 + lo[:, 2] ** 2 - r * r
        disc = b * b - a * c
        with np.errstate(divide="ignore", invalid="ignore"):
            t_side = (-b - np.sqrt(np.maximum(disc, 0))) / a
            y_side = lo[:, 1] + t_side * ld[:, 1]
            side_ok = (disc > 0) & (t_side > EPS) & (np.abs(y_side) <= hh)
            t_cap = (np.sign(lo[:, 1]) * hh - lo[:, 1]) / ld[:, 1]  # the cap facing the origin
            pc = lo + t_cap[:, None] * ld
            cap_ok = (t_cap > EPS) & (pc[:, 0] ** 2 + pc[:, 2] ** 2 <= r * r)
        hit = np.where(side_ok, t_side, np.inf)
        hit = np.where(cap_ok & (t_cap < hit), t_cap, hit)
        p = lo + np.where(np.isfinite(hit), hit, 0)[:, None] * ld
        is_cap = cap_ok & (hit == t_cap)
        normal = np.where(
            is_cap[:, None], [0.0, 1.0, 0.0] * np.sign(p[:, 1:2]), p * [1.0, 0.0, 1.0]
        )
    normal = normal @ R  # back to world space
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    return hit, normal


def intersect(
    obj: Obj, t: int, o: np.ndarray, d: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest hit of any part: distance (P,) (inf = miss), world normal (P, 3), part (P,)."""
    P = len(d)
    if len(obj.parts) == 1:
        centre, R = part_frame(obj, obj.parts[0], t)
        hit, normal = intersect_primitive(obj.parts[0].shape, obj.parts[0].size, centre, R, o, d)
        return hit, normal, np.zeros(P, np.int64)
    hit, normal, part = np.full(P, np.inf), np.zeros((P, 3)), np.zeros(P, np.int64)
    oo = np.broadcast_to(o, (P, 3))
    idx = np.flatnonzero(_near_sphere(oo, d, obj.pos[t], obj.radius))
    for j, p in enumerate(obj.parts):
        centre, R = part_frame(obj, p, t)
        sub = idx[_near_sphere(oo[idx], d[idx], centre, p.extent())]  # this part's sphere
        if not len(sub):
            continue
        h, n = intersect_primitive(p.shape, p.size, centre, R, oo[sub], d[sub])
        closer = h < hit[sub]
        hit[sub[closer]] = h[closer]
        normal[sub[closer]] = n[closer]
        part[sub[closer]] = j
    return hit, normal, part


def _near_sphere(o: np.ndarray, d: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Which rays (o (P, 3), d (P, 3) unit) can meet the sphere (a cheap bounding test)."""
    rel = centre - o
    along = (rel * d).sum(1)
    return ((rel * rel).sum(1) - along**2 < radius**2) & (along > -radius)


def part_color(part: Part, centre: np.ndarray, R: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Colour (P, 3) of world points p on a part whose frame is (centre, R)."""
    m_ = part.mat
    if m_.texture == "solid":
        return np.broadcast_to(m_.color, p.shape)
    unit = part.size[0] if part.tex_unit is None else part.tex_unit
    local = (p - centre) @ R.T / unit * m_.tex_scale / 2
    if m_.texture == "checker":
        m = np.floor(local).sum(1) % 2
    else:
        m = np.floor(local[:, 1] + 0.5 * local[:, 0]) % 2
    return np.where(m[:, None] > 0, m_.color, m_.tex_color)


# ---- the catalogue ----------------------------------------------------------------------
# Each builder takes the random generator, a length r (about an object's half width), the
# materials to use and the clip's times (s); it returns the parts and the height of the
# origin at rest. Builders put the origin on the ground (rest 0) unless they are one part.


def _box(size, mat, centre, **kw) -> Part:
    return Part("box", np.array(size, float), mat, np.array(centre, float), **kw)


def _pole(rng, r, mats, times):
    size = np.array([r * rng.uniform(0.08, 0.16), r * rng.uniform(1.2, 2.2), 0.0])
    size[2] = size[0]
    return [Part("cylinder", size, mats[0], tex_unit=size[1] / 2)], size[1]


def _plank(rng, r, mats, times):
    if rng.random() < 0.5:  # lying flat
        size = np.array([r * rng.uniform(1.3, 2.2), r * rng.uniform(0.06, 0.12), r * 0.3])
    else:  # standing on its long edge, a thin wall
        size = np.array([r * rng.uniform(1.1, 1.8), r * rng.uniform(0.6, 1.0), r * 0.07])
    return [Part("box", size, mats[0], tex_unit=size[1] * 2)], size[1]


def _box_ball(rng, r, mats, times):
    half = np.array([r * rng.uniform(0.55, 0.85), r * rng.uniform(0.35, 0.75), 0.0])
    half[2] = half[0] * rng.uniform(0.7, 1.0)
    rs = r * rng.uniform(0.35, 0.6)
    return [
        _box(half, mats[0], [0, half[1], 0]),
        Part("sphere", np.full(3, rs), mats[1], np.array([0, 2 * half[1] + 0.9 * rs, 0])),
    ], 0.0


def _snowman(rng, r, mats, times):
    parts, y, radius = [], 0.0, r * rng.uniform(0.6, 0.8)
    for k in range(int(rng.integers(2, 4))):
        y += radius * (1.0 if k == 0 else 0.8)
        parts.append(Part("sphere", np.full(3, radius), mats[k % 2], np.array([0, y, 0])))
        y += radius * 0.8
        radius *= rng.uniform(0.6, 0.8)
    return parts, 0.0


def _mushroom(rng, r, mats, times):
    stem = np.array([r * rng.uniform(0.12, 0.25), r * rng.uniform(0.5, 0.9), 0.0])
    stem[2] = stem[0]
    cap = np.array([r * rng.uniform(0.7, 1.0), r * rng.uniform(0.2, 0.4), 0.0])
    cap[2] = cap[0]
    return [
        Part("cylinder", stem, mats[0], np.array([0, stem[1], 0])),
        Part("ellipsoid", cap, mats[1], np.array([0, 2 * stem[1] + 0.3 * cap[1], 0])),
    ], 0.0


def _l_shape(rng, r, mats, times):
    t, depth = r * rng.uniform(0.2, 0.35), r * rng.uniform(0.3, 0.6)
    height = r * rng.uniform(0.8, 1.3)
    return [
        _box([r, t, depth], mats[0], [0, t, 0]),
        _box([t, height, depth], mats[0], [-r + t, height, 0]),
    ], 0.0


def _arch(rng, r, mats, times):
    t, depth, height = r * rng.uniform(0.15, 0.25), r * rng.uniform(0.2, 0.4), r * 0.8
    return [
        _box([t, height, depth], mats[0], [-r + t, height, 0]),
        _box([t, height, depth], mats[0], [r - t, height, 0]),
        _box([r, t, depth], mats[1], [0, 2 * height + t, 0]),
    ], 0.0


def _ring(rng, r, mats, times, beads: int = 10):
    """A torus, approximated by beads (ellipsoids along the circle), lying or standing."""
    R, m = r * rng.uniform(0.6, 0.85), r * rng.uniform(0.15, 0.28)
    upright = rng.random() < 0.4
    M = axis_rotation(np.array([1.0, 0, 0]), np.pi / 2) if upright else np.eye(3)
    lift = np.array([0, R + m, 0]) if upright else np.array([0, m, 0])
    parts = []
    for phi in np.arange(beads) * 2 * np.pi / beads:
        size = np.array([m, m, R * np.sin(np.pi / beads) * 1.45])  # long axis along the circle
        centre = M @ np.array([R * np.cos(phi), 0, R * np.sin(phi)]) + lift
        parts.append(Part("ellipsoid", size, mats[0], centre, tilt=yaw_matrix(-phi) @ M.T))
    return parts, 0.0


def _figure(rng, r, mats, times):
    """A body, a head, two arms and two legs; arms and legs swing (walking) or one arm waves."""
    leg, body, head = r * 0.45, np.array([r * 0.38, r * 0.5, r * 0.22]), r * 0.26
    hip, shoulder = 2 * leg, 2 * leg + 2 * body[1] * 0.92
    freq = rng.uniform(1.2, 2.2) * 2 * np.pi  # steps per second
    amp, phase = rng.uniform(0.4, 0.8), rng.uniform(0, 2 * np.pi)
    swing = amp * np.sin(freq * times + phase)
    x_axis = np.array([1.0, 0, 0])
    parts = [
        _box(body, mats[0], [0, hip + body[1], 0]),
        Part("sphere", np.full(3, head), mats[1], np.array([0, hip + 2 * body[1] + head, 0])),
    ]
    for side in (-1, 1):
        ax = side * (body[0] + r * 0.09)
        parts.append(
            _box(
                [r * 0.08, r * 0.42, r * 0.08],
                mats[2],
                [ax, shoulder - r * 0.42, 0],
                pivot=np.array([ax, shoulder, 0]),
                axis=x_axis,
                angle=side * swing,
            )
        )
        lx = side * r * 0.17
        parts.append(
            _box(
                [r * 0.11, leg, r * 0.11],
                mats[2],
                [lx, leg, 0],
                pivot=np.array([lx, hip, 0]),
                axis=x_axis,
                angle=-side * swing,
            )
        )
    return parts, 0.0


def _turnstile(rng, r, mats, times):
    """A post with a bar that spins about the post (y) or about a horizontal axis (z)."""
    post = np.array([r * 0.1, r * rng.uniform(0.7, 1.0), r * 0.1])
    top = 2 * post[1] + r * 0.1
    spin = rng.choice([-1, 1]) * rng.uniform(1.5, 4.0) * times + rng.uniform(0, np.pi)
    axis = np.array([0, 1.0, 0]) if rng.random() < 0.5 else np.array([0, 0, 1.0])
    length = min(r * 1.1, top - r * 0.1) if axis[2] else r * 1.1
    return [
        Part("cylinder", post, mats[0], np.array([0, post[1], 0])),
        _box(
            [length, r * 0.07, r * 0.09],
            mats[1],
            [0, top, 0],
            pivot=np.array([0, top, 0]),
            axis=axis,
            angle=spin,
        ),
    ], 0.0


BUILDERS = {
    "pole": _pole,
    "plank": _plank,
    "box_ball": _box_ball,
    "snowman": _snowman,
    "mushroom": _mushroom,
    "l_shape": _l_shape,
    "arch": _arch,
    "ring": _ring,
    "figure": _figure,
    "turnstile": _turnstile,
}


def footprint(parts: list[Part]) -> float:
    """Radius of a disc about the origin that holds the parts' footprint in every pose."""
    out = 0.0
    for p in parts:
        c = np.zeros(3) if p.centre is None else p.centre
        if p.pivot is not None:  # anywhere on its circle about the pivot
            reach = np.hypot(p.pivot[0], p.pivot[2]) + np.linalg.norm(c - p.pivot) + p.extent()
        elif p.tilt is not None:
            reach = np.hypot(c[0], c[2]) + p.extent()
        else:
            reach = np.hypot(c[0], c[2]) + np.hypot(p.size[0], p.size[2])
        out = max(out, float(reach))
    return out


# ---- the hand ---------------------------------------------------------------------------

SKIN_HUE, SKIN_SAT, SKIN_VAL = (0.02, 0.09), (0.25, 0.6), (0.45, 0.95)


def hand(rng: np.random.Generator, curl: np.ndarray) -> list[Part]:
    """A skin-coloured hand and forearm, in metres. Origin at the palm's centre, fingers
    along +z, back of the hand up (+y); curl (T,) bends the fingers (radians, 0 = flat)."""
    skin = np.array(
        colorsys.hsv_to_rgb(rng.uniform(*SKIN_HUE), rng.uniform(*SKIN_SAT), rng.uniform(*SKIN_VAL)),
        np.float32,
    )

    def mat(shade=1.0):
        return Material(np.clip(skin * shade, 0, 1), "solid", skin, 1.0)

    k = rng.uniform(0.85, 1.15)  # hand size
    x_axis = np.array([1.0, 0, 0])
    arm_dir = np.array([0, rng.uniform(0.3, 0.6), -1.0])
    arm_dir /= np.linalg.norm(arm_dir)
    arm_len = 0.2
    parts = [
        Part("ellipsoid", np.array([0.042, 0.014, 0.05]) * k, mat()),
        Part(
            "cylinder",
            np.array([0.026, arm_len, 0.026]) * k,
            mat(0.95),
            np.array([0, 0.004, -0.045]) * k + arm_dir * arm_len * k,
            tilt=align_y(arm_dir),
        ),
    ]
    for i, x in enumerate((-0.03, -0.01, 0.01, 0.03)):
        length = (0.03, 0.036, 0.038, 0.034)[i]
        knuckle = np.array([x, 0, 0.045]) * k
        parts.append(
            Part(
                "ellipsoid",
                np.array([0.0095, 0.0085, length]) * k,
                mat(),
                knuckle + np.array([0, 0, length * k]),
                pivot=knuckle,
                axis=x_axis,
                angle=curl * rng.uniform(0.85, 1.15),
            )
        )
    thumb_base = np.array([0.04, -0.004, 0.0]) * k
    thumb_dir = np.array([0.55, -0.25, 0.8])
    thumb_dir /= np.linalg.norm(thumb_dir)
    parts.append(
        Part(
            "ellipsoid",
            np.array([0.0105, 0.0105, 0.028]) * k,
            mat(0.97),
            thumb_base + thumb_dir * 0.028 * k,
            tilt=align_y(thumb_dir)[[2, 0, 1]],
            pivot=thumb_base,
            axis=np.array([0, 0, 1.0]),
            angle=-0.6 * curl,
        )
    )
    return parts
