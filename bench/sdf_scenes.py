"""Scenes from a second renderer, written apart from model/synth, to test the model on scenes
its training never saw.

    python -m bench.sdf_scenes --out data/sdf --videos 32 --seed 0
    python -m model.evaluate --data data/sdf --json runs/sdf.json

The project's renderer (model/synth) intersects rays with analytic shapes in rooms, on table
tops and on open ground; a model trained on it can learn that renderer's look instead of
objects. This one shares none of its code: shapes are signed distance fields (tori, capped
cones, capsules, octahedra, hexagonal prisms, blobby unions of spheres, rounded boxes) found
by sphere tracing; materials are plain, striped, checkered or two-toned; two coloured lights
with soft shadows and ambient occlusion; a sky with distance haze or a backdrop wall; cameras
with a drawn field of view and roll that stay still, dolly, truck, crane or arc; objects
that glide, turn and hop. Frames then go through the app's H.264 writer and reader, as an
upload would. Clips are written in model.synth's format (rgb; depth in metres along the
optical axis, 0 = sky; masks, 0 = background, 1..K = objects), so `model.evaluate --data`
scores them as they are. For evaluation only: nothing trains on these scenes.
"""

from __future__ import annotations

import argparse
import colorsys
import json
import time
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from tqdm import tqdm

SHAPES = ("torus", "cone", "capsule", "octahedron", "hex_prism", "blob", "rounded_box")
CAMERA_MOVES = ("static", "dolly", "truck", "crane", "arc")
FAR = 60.0  # metres: ground beyond it reads as unknown depth, as the sky does
NEAR = 0.05
MARCH_STEPS = 128
HIT_EPS = 5e-4  # a ray hits when the distance is below this fraction of its length
RELAX = 0.9  # step a little short: blobs and octahedra are bounds, not exact distances
STREAM = 0x5DF  # spawn key of this renderer's streams, apart from model.synth's clip seeds


# ----------------------------------------------------------------------------- shapes
# Distance functions after Inigo Quilez's catalogue; q: (P, 3) points in the shape's frame
# (y up, centred on the shape's origin); every one is 1-Lipschitz, which sphere tracing needs.


def sd_torus(q, major, minor):
    return np.hypot(np.hypot(q[:, 0], q[:, 2]) - major, q[:, 1]) - minor


def sd_capsule(q, half, radius):  # a vertical segment of half-length `half`, thickened
    axis = np.zeros_like(q)
    axis[:, 1] = np.clip(q[:, 1], -half, half)
    return np.linalg.norm(q - axis, axis=1) - radius


def sd_cone(q, half, r_bottom, r_top):  # capped cone along y
    qx, qy = np.hypot(q[:, 0], q[:, 2]), q[:, 1]
    kx, ky = r_top - r_bottom, 2 * half
    ax = qx - np.minimum(qx, np.where(qy < 0, r_bottom, r_top))
    ay = np.abs(qy) - half
    f = np.clip(((r_top - qx) * kx + (half - qy) * ky) / (kx * kx + ky * ky), 0, 1)
    bx, by = qx - r_top + kx * f, qy - half + ky * f
    sign = np.where((bx < 0) & (ay < 0), -1.0, 1.0)
    return sign * np.sqrt(np.minimum(ax * ax + ay * ay, bx * bx + by * by))


def sd_octahedron(q, size):  # a bound: exact on the axes, short elsewhere
    return (np.abs(q).sum(1) - size) * 0.57735027


def sd_hex_prism(q, radius, half):  # axis along y
    x, y, z = np.abs(q[:, 0]), np.abs(q[:, 2]), np.abs(q[:, 1])
    fold = 2 * np.minimum(-0.8660254 * x + 0.5 * y, 0)  # mirror into one sixth of the hexagon
    x, y = x + 0.8660254 * fold, y - 0.5 * fold
    dx = np.hypot(x - np.clip(x, -0.57735027 * radius, 0.57735027 * radius), y - radius)
    dx = dx * np.sign(y - radius)
    dz = z - half
    return np.minimum(np.maximum(dx, dz), 0) + np.hypot(np.maximum(dx, 0), np.maximum(dz, 0))


def sd_blob(q, centres, radii, k):  # spheres melted together by a polynomial smooth minimum
    d = np.linalg.norm(q[:, None] - centres[None], axis=2) - radii
    out = d[:, 0]
    for i in range(1, d.shape[1]):
        h = np.maximum(k - np.abs(out - d[:, i]), 0) / k
        out = np.minimum(out, d[:, i]) - h * h * k / 4
    return out


def sd_rounded_box(q, half_sizes, radius):
    d = np.abs(q) - (half_sizes - radius)
    return np.linalg.norm(np.maximum(d, 0), axis=1) + np.minimum(d.max(1), 0) - radius


SDF = {
    "torus": sd_torus,
    "cone": sd_cone,
    "capsule": sd_capsule,
    "octahedron": sd_octahedron,
    "hex_prism": sd_hex_prism,
    "blob": sd_blob,
    "rounded_box": sd_rounded_box,
}


def draw_shape(kind: str, rng: np.random.Generator, size: float) -> dict:
    """Parameters of one shape about `size` metres across."""
    s = size / 2
    if kind == "torus":
        return {"major": s * 0.7, "minor": s * rng.uniform(0.2, 0.35)}
    if kind == "cone":
        return {
            "half": s * rng.uniform(0.7, 1.2),
            "r_bottom": s * rng.uniform(0.6, 1.0),
            "r_top": s * rng.uniform(0.0, 0.4),
        }
    if kind == "capsule":
        return {"half": s * rng.uniform(0.3, 0.9), "radius": s * rng.uniform(0.35, 0.55)}
    if kind == "octahedron":
        return {"size": s * 1.2}
    if kind == "hex_prism":
        return {"radius": s * rng.uniform(0.6, 0.9), "half": s * rng.uniform(0.3, 1.0)}
    if kind == "blob":
        n = int(rng.integers(2, 4))
        return {
            "centres": rng.uniform(-0.5, 0.5, (n, 3)) * s,
            "radii": rng.uniform(0.35, 0.6, n) * s,
            "k": 0.3 * s,
        }
    return {"half_sizes": s * rng.uniform(0.45, 1.0, 3), "radius": s * rng.uniform(0.05, 0.3)}


def rotation_y(angle: np.ndarray) -> np.ndarray:
    """(T,) angles -> (T, 3, 3) rotations about the vertical axis."""
    c, s, z, o = np.cos(angle), np.sin(angle), np.zeros_like(angle), np.ones_like(angle)
    return np.stack(
        [np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2
    )


def tilt_matrix(rng: np.random.Generator) -> np.ndarray:
    """A fixed pose: upright, lying on its side, or leaning."""
    a = rng.choice([0.0, np.pi / 2, rng.uniform(0.2, 0.6)])
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # about the z axis


# ----------------------------------------------------------------------------- the scene


@dataclass
class Object:
    kind: str
    params: dict
    rot: np.ndarray  # (T, 3, 3): shape frame -> world
    pos: np.ndarray  # (T, 3): the shape's origin in the world
    colours: np.ndarray  # (2, 3) linear RGB
    pattern: str  # plain | stripes | checker | halves
    scale: float  # pattern period, metres
    shine: float  # specular strength
    radius: float  # of its footprint on the ground, metres

    def local(self, p: np.ndarray, t: int) -> np.ndarray:
        return (p - self.pos[t]) @ self.rot[t]

    def distance(self, p: np.ndarray, t: int) -> np.ndarray:
        return SDF[self.kind](self.local(p, t), **self.params)


@dataclass
class Camera:
    pos: np.ndarray  # (T, 3)
    forward: np.ndarray  # (T, 3) unit
    right: np.ndarray  # (T, 3) unit
    up: np.ndarray  # (T, 3) unit
    tan_half_fov: float  # vertical


@dataclass
class Scene:
    objects: list[Object]
    camera: Camera
    frames: int
    height: int
    width: int
    backdrop: str  # sky | wall
    wall_point: np.ndarray  # a point of the backdrop wall
    wall_normal: np.ndarray  # facing the camera
    floor: dict  # ground material: pattern, colours, scale
    sun: np.ndarray  # unit vector towards the key light
    sun_colour: np.ndarray
    fill: np.ndarray
    fill_colour: np.ndarray
    sky_colours: np.ndarray  # (2, 3): horizon, zenith
    haze: float  # per metre
    plan: dict = field(default_factory=dict)  # what was drawn, for meta.json


def footprint(kind: str, params: dict, tilt: np.ndarray, size: float) -> tuple[float, float]:
    """(height of the origin above the ground when resting, horizontal radius) of a shape
    about `size` across, standing in pose `tilt`: from the points of a grid inside it."""
    g = np.linspace(-0.8 * size, 0.8 * size, 41)
    pts = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    inside = pts[SDF[kind](pts, **params) < 0] @ tilt.T
    return -inside[:, 1].min(), np.hypot(inside[:, 0], inside[:, 2]).max()


def colour(rng: np.random.Generator) -> np.ndarray:
    rgb = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.35, 0.9), rng.uniform(0.45, 0.95))
    return np.array(rgb) ** 2.2  # to linear light


def look_at(pos: np.ndarray, target: np.ndarray, roll: float) -> tuple[np.ndarray, ...]:
    f = target - pos
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    r = np.cross(f, [0.0, 1.0, 0.0])
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    u = np.cross(r, f)
    c, s = np.cos(roll), np.sin(roll)
    return f, c * r + s * u, c * u - s * r


def sample_scene(
    rng: np.random.Generator, frames: int, height: int, width: int, fps: float
) -> Scene:
    t = np.arange(frames) / fps
    fov = np.radians(rng.uniform(35, 70))
    tan_half = np.tan(fov / 2)
    arena = rng.uniform(1.1, 1.6)  # objects stay within this radius of the origin

    objects: list[Object] = []
    for _ in range(int(rng.integers(2, 7))):
        kind, size = str(rng.choice(SHAPES)), rng.uniform(0.45, 1.1)
        params = draw_shape(kind, rng, size)
        tilt = tilt_matrix(rng)
        lift, radius = footprint(kind, params, tilt, size)
        for _attempt in range(60):
            start = rng.uniform(-arena, arena, 2)
            speed = rng.uniform(0, 0.7) * (rng.uniform() < 0.8)
            heading = rng.uniform(0, 2 * np.pi)
            xz = start + speed * t[:, None] * [np.cos(heading), np.sin(heading)]
            clear = all(
                np.hypot(*(xz - o.pos[:, [0, 2]]).T).min() > radius + o.radius + 0.05
                for o in objects
            )
            if clear and np.abs(xz).max() < arena + 0.5:
                break
        else:
            continue  # no room for it
        hop = rng.uniform(0.1, 0.35) * np.abs(np.sin(rng.uniform(3, 6) * t))
        hop *= rng.uniform() < 0.25  # a quarter of the objects hop
        yaw = rng.uniform(0, 2 * np.pi) + rng.uniform(-2, 2) * t
        objects.append(
            Object(
                kind=kind,
                params=params,
                rot=rotation_y(yaw) @ tilt,
                pos=np.c_[xz[:, 0], lift + hop, xz[:, 1]],
                colours=np.stack([colour(rng), colour(rng)]),
                pattern=str(rng.choice(["plain", "plain", "stripes", "checker", "halves"])),
                scale=rng.uniform(0.06, 0.18),
                shine=rng.uniform(0, 0.6),
                radius=radius,
            )
        )

    # the camera looks at the arena from a distance at which it fits the view
    distance = np.full(frames, arena / tan_half * rng.uniform(0.8, 1.05))
    elevation = np.full(frames, np.radians(rng.uniform(12, 40)))
    azimuth = np.full(frames, rng.uniform(0, 2 * np.pi))
    target = np.tile([0.0, rng.uniform(0.1, 0.5), 0.0], (frames, 1))
    move = str(rng.choice(CAMERA_MOVES))
    ramp = t / max(t[-1], 1e-6) - 0.5  # -0.5 .. 0.5 over the clip
    if move == "dolly":
        distance = distance * (1 + rng.choice([-1, 1]) * rng.uniform(0.2, 0.4) * ramp)
    elif move == "crane":
        elevation = elevation + np.radians(rng.uniform(8, 15)) * rng.choice([-1, 1]) * ramp
    elif move == "arc":
        azimuth = azimuth + np.radians(rng.uniform(20, 45)) * rng.choice([-1, 1]) * ramp
    ce, se = np.cos(elevation), np.sin(elevation)
    pos = target + distance[:, None] * np.c_[ce * np.cos(azimuth), se, ce * np.sin(azimuth)]
    if move == "truck":  # sideways, camera and target together
        side = np.c_[-np.sin(azimuth), np.zeros(frames), np.cos(azimuth)]
        side *= rng.uniform(0.5, 1.0) * rng.choice([-1, 1])
        pos, target = pos + side * ramp[:, None], target + side * ramp[:, None]
    roll = np.radians(rng.uniform(-8, 8))
    camera = Camera(pos, *look_at(pos, target, roll), tan_half_fov=tan_half)

    f0 = camera.forward[0] * [1, 0, 1]
    f0 /= np.linalg.norm(f0)
    backdrop = "wall" if rng.uniform() < 0.4 else "sky"
    sun_elevation, sun_azimuth = np.radians(rng.uniform(25, 65)), rng.uniform(0, 2 * np.pi)
    sun = np.array(
        [
            np.cos(sun_elevation) * np.cos(sun_azimuth),
            np.sin(sun_elevation),
            np.cos(sun_elevation) * np.sin(sun_azimuth),
        ]
    )
    fill = np.array([-sun[0], 0.5, -sun[2]])
    floor_pattern = str(rng.choice(["tiles", "noise", "stripes", "plain"]))
    scene = Scene(
        objects=objects,
        camera=camera,
        frames=frames,
        height=height,
        width=width,
        backdrop=backdrop,
        wall_point=target[0] + f0 * (arena + rng.uniform(1.0, 3.0)),
        wall_normal=-f0,
        floor={
            "pattern": floor_pattern,
            "colours": np.stack([colour(rng), colour(rng)]) * 0.8,
            "scale": rng.uniform(0.3, 0.9),
            "noise": rng.uniform(size=(32, 32)),
        },
        sun=sun,
        sun_colour=np.array(colorsys.hsv_to_rgb(rng.uniform(0.05, 0.15), rng.uniform(0, 0.35), 1.0))
        * rng.uniform(0.9, 1.3),
        fill=fill / np.linalg.norm(fill),
        fill_colour=np.array(colorsys.hsv_to_rgb(rng.uniform(0.5, 0.7), rng.uniform(0, 0.5), 1.0))
        * rng.uniform(0.15, 0.35),
        sky_colours=np.stack([colour(rng) * 0.3 + 0.6, colour(rng) * 0.6 + [0.1, 0.2, 0.4]]),
        haze=rng.uniform(0.0, 0.03),
    )
    scene.plan = {
        "objects": [o.kind for o in objects],
        "patterns": [o.pattern for o in objects],
        "camera": move,
        "fov_degrees": round(float(np.degrees(fov)), 1),
        "backdrop": backdrop,
        "floor": floor_pattern,
    }
    return scene


# ----------------------------------------------------------------------------- rendering


def nearest_object(p: np.ndarray, objects: list[Object], t: int) -> tuple[np.ndarray, np.ndarray]:
    """(P,) distance to the nearest object and (P,) its index."""
    if not objects:
        return np.full(len(p), np.inf), np.zeros(len(p), np.int64)
    d = np.stack([o.distance(p, t) for o in objects], 1)
    k = d.argmin(1)
    return d[np.arange(len(p)), k], k


def sphere_trace(origin, dirs, limit, objects, t) -> tuple[np.ndarray, np.ndarray]:
    """Rays (P, 3) from `origin` marched until an object or `limit` (P,): (hit, distance)."""
    dist = np.full(len(dirs), NEAR)
    hit = np.zeros(len(dirs), bool)
    live = np.arange(len(dirs))
    for _ in range(MARCH_STEPS):
        d, _ = nearest_object(origin + dirs[live] * dist[live, None], objects, t)
        close = d < HIT_EPS * dist[live]
        hit[live[close]] = True
        dist[live] += np.where(close, 0, RELAX * d)
        live = live[~close & (dist[live] < limit[live])]
        if not live.size:
            break
    return hit & (dist < limit), dist


def soft_shadow(p, n, light, objects, t, sharpness=10.0) -> np.ndarray:
    """(P,) in [0, 1]: how much of the light reaches each point, penumbrae included."""
    lit = np.ones(len(p))
    s = np.full(len(p), 0.02)
    start = p + n * 2e-3
    for _ in range(40):
        d, _ = nearest_object(start + light * s[:, None], objects, t)
        lit = np.minimum(lit, sharpness * d / s)
        s += np.clip(d, 0.02, 0.4)
    return np.clip(lit, 0, 1)


def occlusion(p, n, objects, t) -> np.ndarray:
    """(P,) ambient light left after nearby surfaces (objects and the ground) block some."""
    blocked, weight = 0.0, 1.0
    for i in range(1, 5):
        h = 0.05 * i
        q = p + n * h
        d = np.minimum(nearest_object(q, objects, t)[0], q[:, 1])
        blocked = blocked + weight * (h - d)
        weight *= 0.6
    return np.clip(1 - 2.5 * blocked, 0, 1)


def value_noise(grid: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a periodic random grid at (u, v), in grid cells."""
    n = grid.shape[0]
    i, j = np.floor(u).astype(int), np.floor(v).astype(int)
    fu, fv = u - i, v - j
    fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
    row0 = grid[i % n, j % n] * (1 - fu) + grid[(i + 1) % n, j % n] * fu
    row1 = grid[i % n, (j + 1) % n] * (1 - fu) + grid[(i + 1) % n, (j + 1) % n] * fu
    return row0 * (1 - fv) + row1 * fv


def surface_albedo(floor: dict, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(P, 3) albedo of the ground or the wall at surface coordinates (u, v) in metres."""
    a, b = floor["colours"]
    s = floor["scale"]
    if floor["pattern"] == "tiles":
        fu, fv = (u / s) % 1, (v / s) % 1
        grout = (np.minimum(fu, 1 - fu) < 0.04) | (np.minimum(fv, 1 - fv) < 0.04)
        w = ((np.floor(u / s) + np.floor(v / s)) % 2) * 0.6
        w = np.where(grout, 1.0, w)
    elif floor["pattern"] == "noise":
        w = 0.65 * value_noise(floor["noise"], u / s, v / s) + 0.35 * value_noise(
            floor["noise"], 4 * u / s + 7, 4 * v / s
        )
    elif floor["pattern"] == "stripes":
        w = 0.5 + 0.5 * np.sin(2 * np.pi * (u + 0.3 * v) / s)
    else:
        w = 0.15 * value_noise(floor["noise"], u / (4 * s), v / (4 * s))
    return a * (1 - w[:, None]) + b * w[:, None]


def object_albedo(obj: Object, q: np.ndarray) -> np.ndarray:
    """(P, 3) albedo at points q in the object's own frame: patterns move with it."""
    if obj.pattern == "stripes":
        w = np.sin(2 * np.pi * q[:, 1] / obj.scale) > 0
    elif obj.pattern == "checker":
        w = np.floor(q / obj.scale).sum(1) % 2 > 0
    elif obj.pattern == "halves":
        w = q[:, 0] > 0
    else:
        w = np.zeros(len(q), bool)
    return np.where(w[:, None], obj.colours[1], obj.colours[0])


def normals(p: np.ndarray, ids: np.ndarray, objects: list[Object], t: int) -> np.ndarray:
    """(P, 3) unit normals of the objects hit (tetrahedral finite differences)."""
    n = np.zeros_like(p)
    h = 1e-3
    for e in np.array([[1, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, 1, 1]], float):
        for k, obj in enumerate(objects):
            sel = ids == k
            if sel.any():
                n[sel] += e * obj.distance(p[sel] + e * h, t)[:, None]
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)


def render_frame(scene: Scene, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame t: rgb (H, W, 3) uint8 before the codec, depth (H, W) metres, ids (H, W) uint8."""
    H, W, cam = scene.height, scene.width, scene.camera
    y, x = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    u = (x.ravel() - W / 2) / (H / 2) * cam.tan_half_fov
    v = -(y.ravel() - H / 2) / (H / 2) * cam.tan_half_fov
    dirs = cam.forward[t] + u[:, None] * cam.right[t] + v[:, None] * cam.up[t]
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    o = cam.pos[t]

    # the ground (y = 0) and the wall are planes: intersected exactly, the objects traced
    ground = np.where(dirs[:, 1] < -1e-6, -o[1] / np.minimum(dirs[:, 1], -1e-6), np.inf)
    wall = np.full(len(dirs), np.inf)
    if scene.backdrop == "wall":
        denom = dirs @ scene.wall_normal
        wall = np.where(
            denom < -1e-6,
            ((scene.wall_point - o) @ scene.wall_normal) / np.minimum(denom, -1e-6),
            np.inf,
        )
    plane = np.minimum(np.minimum(ground, wall), FAR)
    hit, dist = sphere_trace(o, dirs, plane, scene.objects, t)
    dist = np.where(hit, dist, plane)
    p = o + dirs * dist[:, None]
    _, nearest = nearest_object(p, scene.objects, t)
    ids = np.where(hit, nearest + 1, 0)
    on_wall = ~hit & (wall <= ground) & (wall < FAR)
    on_ground = ~hit & ~on_wall & (ground < FAR)
    sky = ~hit & ~on_wall & ~on_ground

    albedo = np.zeros_like(p)
    n = np.zeros_like(p)
    shine = np.zeros(len(p))
    for k, obj in enumerate(scene.objects):
        sel = ids == k + 1
        albedo[sel] = object_albedo(obj, obj.local(p[sel], t))
        shine[sel] = obj.shine
    n[hit] = normals(p[hit], nearest[hit], scene.objects, t)
    albedo[on_ground] = surface_albedo(scene.floor, p[on_ground, 0], p[on_ground, 2])
    n[on_ground] = [0.0, 1.0, 0.0]
    wall_u = p[on_wall] @ np.cross(scene.wall_normal, [0.0, 1.0, 0.0])
    albedo[on_wall] = surface_albedo(scene.floor, wall_u, p[on_wall, 1]) * 0.9 + 0.05
    n[on_wall] = scene.wall_normal

    solid = ~sky
    ps, ns = p[solid], n[solid]
    sun = np.clip(ns @ scene.sun, 0, None) * soft_shadow(ps, ns, scene.sun, scene.objects, t)
    fill = np.clip(ns @ scene.fill, 0, None)
    ambient = 0.25 * occlusion(ps, ns, scene.objects, t)
    half = scene.sun - dirs[solid]
    half /= np.linalg.norm(half, axis=1, keepdims=True)
    spec = shine[solid] * np.clip((ns * half).sum(1), 0, 1) ** 40 * (sun > 0)
    light = sun[:, None] * scene.sun_colour + fill[:, None] * scene.fill_colour
    light += ambient[:, None] * scene.sky_colours[0]
    rgb = np.zeros_like(p)
    rgb[solid] = albedo[solid] * light + spec[:, None] * scene.sun_colour
    horizon, zenith = scene.sky_colours
    up = np.clip(dirs[:, 1], 0, 1)[:, None] ** 0.5
    sky_rgb = horizon * (1 - up) + zenith * up
    rgb[sky] = sky_rgb[sky]
    fog = 1 - np.exp(-scene.haze * dist[solid])  # distant things fade into the horizon
    rgb[solid] = rgb[solid] * (1 - fog[:, None]) + horizon * fog[:, None]

    depth = np.where(solid, (p - o) @ cam.forward[t], 0.0)
    image = (np.clip(rgb, 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)
    return (
        image.reshape(H, W, 3),
        depth.reshape(H, W).astype(np.float32),
        ids.reshape(H, W).astype(np.uint8),
    )


def render_clip(
    seed: int, index: int, size: int = 128, frames: int = 24, fps: float = 12.0, crf: int = 23
) -> dict:
    """Clip `index` of the set with `seed`: {'rgb', 'depth', 'masks', 'held', 'plan'}."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, STREAM]))
    scene = sample_scene(rng, frames, size, size, fps)
    rgb, depth, masks = (
        np.stack(x) for x in zip(*(render_frame(scene, t) for t in range(frames)), strict=True)
    )
    if crf > 0:
        from model.synth.effects import h264_roundtrip  # the app's own writer and reader

        rgb = h264_roundtrip(rgb, crf, fps)
    return {"rgb": rgb, "depth": depth, "masks": masks, "held": np.uint8(0), "plan": scene.plan}


def _write_one(job: tuple) -> dict:
    out, seed, index, size, frames, fps, crf = job
    clip = render_clip(seed, index, size, frames, fps, crf)
    plan = clip.pop("plan")
    np.savez_compressed(out / f"clip_{index:05d}.npz", **clip)
    return plan | {"index": index}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.sdf_scenes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--videos", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=128, help="frame side in pixels")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--fps", type=float, default=12.0)
    p.add_argument("--crf", type=int, default=23, help="H.264 quality of the round trip; 0 = none")
    p.add_argument("--workers", type=int, default=1)
    a = p.parse_args(argv)
    if a.videos < 1 or a.size < 16 or a.frames < 1 or a.workers < 1 or not 0 <= a.crf <= 51:
        p.error("need --videos >= 1, --size >= 16, --frames >= 1, --workers >= 1, 0 <= --crf <= 51")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(out, a.seed, i, a.size, a.frames, a.fps, a.crf) for i in range(a.videos)]
    start = time.perf_counter()
    if a.workers > 1:
        with Pool(a.workers) as pool:
            plans = list(tqdm(pool.imap(_write_one, jobs), total=a.videos, desc="render"))
    else:
        plans = [_write_one(job) for job in tqdm(jobs, desc="render")]
    wall = time.perf_counter() - start
    meta = {
        "renderer": "bench.sdf_scenes",
        "seed": a.seed,
        "videos": a.videos,
        "size": a.size,
        "frames": a.frames,
        "fps": a.fps,
        "crf": a.crf,
        "wall_seconds": round(wall, 2),
        "clips": plans,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {a.videos} clips to {out} in {wall:.1f} s ({a.videos / wall:.2f} clips/s)")


if __name__ == "__main__":
    main()
