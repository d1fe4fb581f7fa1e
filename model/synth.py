"""Procedural 3-D scenes, ray cast in numpy: RGB, metric depth, instance masks and optical flow.

    python -m model.synth --out DIR --videos N --seed S [--size 64 --frames 8 ...]

A scene is a room (ground plane and four walls, textured procedurally or with photographs
that ship inside scikit-image) holding 3-8 objects (spheres, ellipsoids, boxes, cylinders)
that slide and collide on the ground, filmed by an orbiting, bobbing camera under one sun
with hard shadows. Every pixel has a finite depth (no sky). Masks (0 = background,
1..K = objects, stable over the clip) are written for evaluation only; training never sees
them. Clip i of a data set with seed S is rendered from SeedSequence([S, i]), so any clip
can be re-rendered alone and a data set is bit-reproducible.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from functools import cache
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from tqdm import tqdm

GENERATOR_VERSION = 1

# the room, in metres: objects move inside |x|, |z| < ARENA; walls stand at |x|, |z| = ROOM
ARENA, ROOM = 3.2, 11.0
CAMERA_RADIUS = (5.5, 7.5)  # distance of the camera from the room's centre
CAMERA_ELEVATION = (np.radians(22), np.radians(48))
FOV = np.radians(50)  # vertical field of view
ORBIT_SPEED = 0.25  # radians per second at camera_motion = 1
SPEED = (0.3, 1.6)  # object speeds, m/s
STATIC_PROB = 0.25  # share of objects that do not move
AMBIENT = (0.28, 0.45)
SPECULAR, SHININESS = 0.35, 24.0
EPS = 1e-4  # ray offset that keeps shadow rays from hitting their own surface
PHOTO_NAMES = [
    "brick",
    "grass",
    "gravel",
    "coffee",
    "rocket",
    "astronaut",
    "chelsea",
    "coins",
    "moon",
]
SHAPES = ["sphere", "ellipsoid", "box", "cylinder"]


@dataclass
class SceneConfig:
    size: int = 64  # square frames, H = W = size
    frames: int = 8
    min_objects: int = 3
    max_objects: int = 8
    camera_motion: float = 1.0  # 0 = static camera
    texture_prob: float = 0.5  # probability that an object is textured
    photo_prob: float = 0.5  # probability that the ground / walls use a photograph
    aa: int = 1  # supersampling factor for RGB (depth, masks and flow use the centre sample)
    fps: float = 12.0
    shadows: bool = True  # off only to test that shadows darken what they fall on


# ---- scene sampling ---------------------------------------------------------------------


@dataclass
class Obj:
    shape: str
    size: np.ndarray  # half extents (x, y, z) before the yaw; radius = size[0] for round shapes
    color: np.ndarray  # (3,) in [0, 1]
    texture: str  # solid | checker | stripes
    tex_color: np.ndarray
    tex_scale: float
    pos: np.ndarray  # (T, 3) centre over time
    yaw: np.ndarray  # (T,) rotation about the vertical axis


@cache
def _photo(name: str) -> np.ndarray:
    """A photograph from scikit-image's bundled data as float RGB in [0, 1] (never downloaded)."""
    import skimage.data

    img = getattr(skimage.data, name)().astype(np.float32) / 255.0
    return np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img[..., :3]


def _photos_available() -> list[str]:
    names = []
    for n in PHOTO_NAMES:
        try:
            _photo(n)
            names.append(n)
        except Exception:  # scikit-image missing, or an image that would need a download
            continue
    return names


def _random_color(rng: np.random.Generator) -> np.ndarray:
    import colorsys

    return np.array(
        colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.45, 1.0), rng.uniform(0.55, 1.0)),
        np.float32,
    )


def _sample_objects(rng: np.random.Generator, cfg: SceneConfig) -> list[Obj]:
    """Objects placed without overlap, then simulated as discs sliding on the ground."""
    count = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    objs, radii, xz = [], [], []
    for _ in range(count):
        shape = SHAPES[rng.integers(len(SHAPES))]
        r = rng.uniform(0.35, 0.8)
        if shape == "sphere":
            size = np.array([r, r, r])
        elif shape == "ellipsoid":
            size = np.array([r, rng.uniform(0.5, 1.3) * r, rng.uniform(0.5, 1.0) * r])
        elif shape == "box":
            size = np.array([r, rng.uniform(0.5, 1.2) * r, rng.uniform(0.6, 1.0) * r])
        else:  # cylinder: radius, half height
            size = np.array([r, rng.uniform(0.5, 1.5) * r, r])
        bound = float(np.hypot(size[0], size[2]))  # radius of the disc that encloses the footprint
        for _ in range(50):  # rejection sampling of a free spot
            p = rng.uniform(-ARENA + bound, ARENA - bound, 2)
            if all(np.hypot(*(p - q)) > bound + rb + 0.05 for q, rb in zip(xz, radii, strict=True)):
                break
        else:
            continue  # the arena is full
        textured = rng.random() < cfg.texture_prob
        objs.append(
            Obj(
                shape=shape,
                size=size,
                color=_random_color(rng),
                texture=["checker", "stripes"][rng.integers(2)] if textured else "solid",
                tex_color=_random_color(rng),
                tex_scale=rng.uniform(3.0, 7.0),
                pos=np.zeros((cfg.frames, 3)),
                yaw=np.full(cfg.frames, rng.uniform(0, np.pi))
                + rng.uniform(-0.6, 0.6) * np.arange(cfg.frames) / cfg.fps * (shape == "box"),
            )
        )
        radii.append(bound)
        xz.append(p)
    _simulate(rng, objs, np.array(xz), np.array(radii), cfg)
    return objs


def _simulate(rng, objs: list[Obj], xz: np.ndarray, radii: np.ndarray, cfg: SceneConfig) -> None:
    """Elastic collisions between discs (mass ~ area) and with the arena's edge."""
    angle = rng.uniform(0, 2 * np.pi, len(objs))
    speed = rng.uniform(*SPEED, len(objs)) * (rng.random(len(objs)) > STATIC_PROB)
    vel = np.stack([np.cos(angle), np.sin(angle)], 1) * speed[:, None]
    mass = radii**2
    dt = 1.0 / cfg.fps
    for t in range(cfg.frames):
        for o, p in zip(objs, xz, strict=True):
            o.pos[t] = [p[0], o.size[1], p[1]]  # resting on the ground
        xz = xz + vel * dt
        for i in range(len(objs)):
            for axis in range(2):  # bounce off the arena's edge
                if abs(xz[i, axis]) > ARENA - radii[i]:
                    xz[i, axis] = np.sign(xz[i, axis]) * (ARENA - radii[i])
                    vel[i, axis] *= -1
            for j in range(i + 1, len(objs)):
                d = xz[j] - xz[i]
                dist = np.hypot(*d)
                if dist < radii[i] + radii[j] and dist > 0:
                    n = d / dist
                    rel = np.dot(vel[i] - vel[j], n)
                    if rel > 0:  # approaching: exchange momentum along the normal
                        impulse = 2 * rel / (mass[i] + mass[j])
                        vel[i] -= impulse * mass[j] * n
                        vel[j] += impulse * mass[i] * n
                    overlap = radii[i] + radii[j] - dist
                    xz[i] -= n * overlap / 2
                    xz[j] += n * overlap / 2


# ---- camera -----------------------------------------------------------------------------


@dataclass
class Camera:
    pos: np.ndarray  # (T, 3)
    rot: np.ndarray  # (T, 3, 3) rows: right, up, forward (world -> camera)
    focal: float  # in units of half the image height


def _sample_camera(rng, cfg: SceneConfig) -> Camera:
    t = np.arange(cfg.frames) / cfg.fps
    m = cfg.camera_motion
    radius = rng.uniform(*CAMERA_RADIUS) + m * 0.4 * np.sin(
        rng.uniform(0.5, 1.5) * t + rng.uniform(0, 6)
    )
    elev = rng.uniform(*CAMERA_ELEVATION) + m * 0.05 * np.sin(
        rng.uniform(0.8, 2.0) * t + rng.uniform(0, 6)
    )
    azim = (
        rng.uniform(0, 2 * np.pi)
        + m * rng.choice([-1, 1]) * rng.uniform(0.3, 1.0) * ORBIT_SPEED * t
    )
    pos = np.stack(
        [
            radius * np.cos(elev) * np.cos(azim),
            radius * np.sin(elev),
            radius * np.cos(elev) * np.sin(azim),
        ],
        1,
    )
    target = (
        np.array([0.0, 0.3, 0.0])
        + rng.uniform(-0.6, 0.6, 3) * [1, 0.3, 1]
        + m * 0.1 * rng.standard_normal((cfg.frames, 3)).cumsum(0) / np.sqrt(cfg.frames)
    )
    fwd = target - pos
    fwd /= np.linalg.norm(fwd, axis=1, keepdims=True)
    right = np.cross(fwd, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    up = np.cross(right, fwd)
    return Camera(pos=pos, rot=np.stack([right, up, fwd], 1), focal=1.0 / np.tan(FOV / 2))


def _rays(cam: Camera, t: int, size: int, aa: int) -> tuple[np.ndarray, np.ndarray]:
    """Ray directions (P, 3), unit length, for P = (size * aa)^2 pixels in row-major order,
    and the pixel coordinate (P, 2) of each sample (x, y), in output pixels."""
    n = size * aa
    c = (np.arange(n) + 0.5) / aa  # sample centres in output pixel units
    y, x = np.meshgrid(c, c, indexing="ij")
    u = (x.ravel() - size / 2) / (size / 2)
    v = -(y.ravel() - size / 2) / (size / 2)
    d = np.stack([u, v, np.full_like(u, cam.focal)], 1) @ cam.rot[t]
    return d / np.linalg.norm(d, axis=1, keepdims=True), np.stack([x.ravel(), y.ravel()], 1)


def _project(points: np.ndarray, cam: Camera, t: int, size: int) -> np.ndarray:
    """World points (P, 3) -> pixel coordinates (P, 2) in frame t's camera."""
    local = (points - cam.pos[t]) @ cam.rot[t].T
    z = np.maximum(local[:, 2], 1e-6)
    return np.stack(
        [
            local[:, 0] / z * cam.focal * size / 2 + size / 2,
            -local[:, 1] / z * cam.focal * size / 2 + size / 2,
        ],
        1,
    )


# ---- ray casting ------------------------------------------------------------------------


def _yaw_matrix(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])  # world -> object (rotation about y)


def _intersect(obj: Obj, t: int, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance along each ray to the object (inf = miss) and the object-space normal.
    o (P, 3) or (3,) origins, d (P, 3) unit directions."""
    R = _yaw_matrix(obj.yaw[t])
    lo = (o - obj.pos[t]) @ R.T
    ld = d @ R.T
    P = len(d)
    lo = np.broadcast_to(lo, (P, 3))
    hit = np.full(P, np.inf)
    normal = np.zeros((P, 3))
    if obj.shape in ("sphere", "ellipsoid"):
        so, sd = lo / obj.size, ld / obj.size  # a unit sphere in scaled space
        a = (sd * sd).sum(1)
        b = (so * sd).sum(1)
        c = (so * so).sum(1) - 1
        disc = b * b - a * c
        ok = disc > 0
        root = np.sqrt(np.where(ok, disc, 0))
        t0 = (-b - root) / a
        ok &= t0 > EPS
        hit = np.where(ok, t0, np.inf)
        normal = (lo + np.where(ok, hit, 0)[:, None] * ld) / obj.size**2
    elif obj.shape == "box":  # slab method
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / ld
            t1, t2 = (-obj.size - lo) * inv, (obj.size - lo) * inv
        tmin, tmax = np.nanmax(np.minimum(t1, t2), 1), np.nanmin(np.maximum(t1, t2), 1)
        ok = (tmax >= tmin) & (tmin > EPS)
        hit = np.where(ok, tmin, np.inf)
        p = lo + np.where(ok, hit, 0)[:, None] * ld
        face = np.argmax(np.abs(p) / obj.size, 1)
        normal[np.arange(P), face] = np.sign(p[np.arange(P), face])
    else:  # vertical cylinder with caps
        r, hh = obj.size[0], obj.size[1]
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


def _room(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closest of the ground (y = 0) and the four walls: distance (P,), normal (P, 3) and
    surface index (P,): 0 ground, 1..4 walls."""
    planes = [
        (1, 0.0, 1.0),
        (0, ROOM, -1.0),
        (0, -ROOM, 1.0),
        (2, ROOM, -1.0),
        (2, -ROOM, 1.0),
    ]  # axis, offset, normal sign
    best = np.full(len(d), np.inf)
    surface = np.zeros(len(d), np.int64)
    normal = np.zeros((len(d), 3))
    for k, (axis, off, sign) in enumerate(planes):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (off - o[..., axis]) / d[:, axis]
        closer = (t > EPS) & (t < best)
        best = np.where(closer, t, best)
        surface = np.where(closer, k, surface)
        normal[closer] = 0
        normal[closer, axis] = sign
    return best, normal, surface


# ---- shading ----------------------------------------------------------------------------


@dataclass
class Look:
    """How the room looks: per surface a photo (name) or a procedural pattern, plus the light."""

    ground: tuple  # (kind, params...)
    walls: tuple
    light: np.ndarray  # unit vector towards the sun
    ambient: float
    sun: float


def _sample_look(rng, cfg: SceneConfig, photos: list[str]) -> Look:
    def surface(pattern_choices):
        if photos and rng.random() < cfg.photo_prob:
            return (
                "photo",
                photos[rng.integers(len(photos))],
                rng.uniform(4.0, 9.0),
                _random_color(rng) * 0.4 + 0.6,
            )
        kind = pattern_choices[rng.integers(len(pattern_choices))]
        return (
            kind,
            _random_color(rng) * 0.6 + 0.2,
            _random_color(rng) * 0.6 + 0.2,
            rng.uniform(0.6, 2.0),
        )

    azim, elev = rng.uniform(0, 2 * np.pi), rng.uniform(np.radians(35), np.radians(70))
    light = np.array([np.cos(elev) * np.cos(azim), np.sin(elev), np.cos(elev) * np.sin(azim)])
    return Look(
        ground=surface(["checker", "tiles", "noise"]),
        walls=surface(["stripes", "gradient", "noise"]),
        light=light,
        ambient=rng.uniform(*AMBIENT),
        sun=rng.uniform(0.8, 1.1),
    )


def _pattern(spec: tuple, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Colour (P, 3) of a surface at texture coordinates (u, v) in metres."""
    kind = spec[0]
    if kind == "photo":
        _, name, scale, tint = spec
        img = _photo(name)
        h, w = img.shape[:2]
        iy = ((v / scale) % 1.0 * (h - 1)).astype(np.int64)
        ix = ((u / scale) % 1.0 * (w - 1)).astype(np.int64)
        return img[iy, ix] * tint
    _, c1, c2, scale = spec
    if kind == "checker":
        m = (np.floor(u / scale) + np.floor(v / scale)) % 2
    elif kind == "tiles":
        m = ((u / scale) % 1.0 < 0.92) & ((v / scale) % 1.0 < 0.92)
    elif kind == "stripes":
        m = (u / scale) % 1.0 < 0.5
    elif kind == "gradient":
        m = np.clip(v / 6.0, 0, 1)
    else:  # noise: a few summed sinusoids, cheap and smooth
        m = 0.5 + 0.25 * (
            np.sin(u * 2.3 / scale + 1.7 * np.sin(v * 1.3 / scale))
            + np.sin(v * 3.1 / scale - u * 0.7 / scale)
        )
    m = np.asarray(m, np.float32)[:, None]
    return c1 * m + c2 * (1 - m)


def _object_color(obj: Obj, t: int, p: np.ndarray) -> np.ndarray:
    if obj.texture == "solid":
        return np.broadcast_to(obj.color, p.shape)
    local = (p - obj.pos[t]) @ _yaw_matrix(obj.yaw[t]).T / obj.size[0] * obj.tex_scale / 2
    if obj.texture == "checker":
        m = np.floor(local).sum(1) % 2
    else:
        m = np.floor(local[:, 1] + 0.5 * local[:, 0]) % 2
    return np.where(m[:, None] > 0, obj.color, obj.tex_color)


def _render_frame(objs: list[Obj], look: Look, cam: Camera, t: int, cfg: SceneConfig):
    """One frame: rgb (S, S, 3) uint8, depth (S, S), ids (S, S) uint8, world points (S*S, 3)."""
    S, aa = cfg.size, cfg.aa
    d, _ = _rays(cam, t, S, aa)
    o = cam.pos[t]
    dist, normal, surface = _room(o, d)
    ids = np.zeros(len(d), np.int64)
    for k, obj in enumerate(objs, start=1):
        h, n = _intersect(obj, t, o, d)
        closer = h < dist
        dist = np.where(closer, h, dist)
        normal[closer] = n[closer]
        ids[closer] = k
    p = o + dist[:, None] * d

    # base colour
    color = np.zeros((len(d), 3))
    g = (ids == 0) & (surface == 0)
    color[g] = _pattern(look.ground, p[g, 0], p[g, 2])
    for axis, idx in ((2, [1, 2]), (0, [3, 4])):  # walls facing x use z as u, and vice versa
        w = (ids == 0) & np.isin(surface, idx)
        color[w] = _pattern(look.walls, p[w, axis] + ROOM, p[w, 1])
    for k, obj in enumerate(objs, start=1):
        m = ids == k
        if m.any():
            color[m] = _object_color(obj, t, p[m])

    # sun: Lambert + Blinn-Phong, hard shadows from every object
    lit = np.ones(len(d), bool)
    origin = p + normal * EPS * 10
    for obj in objs if cfg.shadows else []:
        h, _ = _intersect(obj, t, origin, np.broadcast_to(look.light, (len(d), 3)))
        lit &= ~np.isfinite(h)
    lambert = np.clip(normal @ look.light, 0, 1) * lit
    half = look.light - d
    half /= np.linalg.norm(half, axis=1, keepdims=True)
    spec = SPECULAR * np.clip((normal * half).sum(1), 0, 1) ** SHININESS * lit * (ids > 0)
    rgb = color * (look.ambient + look.sun * lambert)[:, None] + spec[:, None]
    rgb = np.clip(rgb, 0, 1).reshape(S, aa, S, aa, 3).mean((1, 3))

    centre = np.arange(S) * aa + aa // 2  # the sample that gives depth, ids and flow
    sel = (centre[:, None] * S * aa + centre[None, :]).ravel()
    depth = ((p[sel] - o) @ cam.rot[t][2]).reshape(S, S)
    return (
        (rgb * 255 + 0.5).astype(np.uint8),
        depth.astype(np.float32),
        ids[sel].reshape(S, S).astype(np.uint8),
        p[sel],
    )


def _flow(objs, cam: Camera, t: int, ids: np.ndarray, points: np.ndarray, size: int) -> np.ndarray:
    """Forward flow (S, S, 2) in pixels: where each pixel's surface point is at frame t+1."""
    moved = points.copy()
    flat = ids.ravel()
    for k, obj in enumerate(objs, start=1):
        m = flat == k
        if m.any():  # rigid motion: undo this frame's pose, apply the next one's
            local = (points[m] - obj.pos[t]) @ _yaw_matrix(obj.yaw[t]).T
            moved[m] = local @ _yaw_matrix(obj.yaw[t + 1]) + obj.pos[t + 1]
    before = _project(points, cam, t, size)
    after = _project(moved, cam, t + 1, size)
    return (after - before).reshape(size, size, 2).astype(np.float32)


# ---- clips and data sets ----------------------------------------------------------------


def clip_seed(seed: int, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, index])


def render_clip(seed: int | np.random.SeedSequence, cfg: SceneConfig) -> dict[str, np.ndarray]:
    """{'rgb': (T, S, S, 3) uint8, 'depth': (T, S, S) float32 metres (z along the optical
    axis), 'masks': (T, S, S) uint8, 'flow': (T, S, S, 2) float32 pixels (t -> t+1; the last
    frame repeats the previous frame's flow)}."""
    rng = np.random.default_rng(seed)
    look = _sample_look(rng, cfg, _photos_available())
    objs = _sample_objects(rng, cfg)
    cam = _sample_camera(rng, cfg)
    out = {"rgb": [], "depth": [], "masks": [], "flow": []}
    for t in range(cfg.frames):
        rgb, depth, ids, points = _render_frame(objs, look, cam, t, cfg)
        out["rgb"].append(rgb)
        out["depth"].append(depth)
        out["masks"].append(ids)
        if t + 1 < cfg.frames:
            out["flow"].append(_flow(objs, cam, t, ids, points, cfg.size))
    out["flow"].append(
        out["flow"][-1] if out["flow"] else np.zeros((cfg.size, cfg.size, 2), np.float32)
    )
    return {k: np.stack(v) for k, v in out.items()}


def _write_one(job: tuple[Path, int, int, SceneConfig]) -> None:
    out, seed, index, cfg = job
    clip = render_clip(clip_seed(seed, index), cfg)
    np.savez_compressed(
        out / f"clip_{index:05d}.npz",
        rgb=clip["rgb"],
        depth=clip["depth"],
        masks=clip["masks"],
        flow=clip["flow"].astype(np.float16),
    )


def write_dataset(
    out: str | Path, videos: int, seed: int, cfg: SceneConfig, workers: int = 1
) -> dict:
    """out/clip_00000.npz ... (rgb uint8, depth float32, masks uint8, flow float16) and
    out/meta.json. Returns the meta dict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(out, seed, i, cfg) for i in range(videos)]
    start = time.perf_counter()
    if workers > 1:
        with Pool(workers) as pool:
            list(tqdm(pool.imap_unordered(_write_one, jobs), total=videos, desc="render"))
    else:
        for job in tqdm(jobs, desc="render"):
            _write_one(job)
    wall = time.perf_counter() - start
    meta = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "videos": videos,
        "config": asdict(cfg),
        "wall_seconds": round(wall, 2),
        "clips_per_second": round(videos / wall, 2),
        "workers": workers,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def load_clip(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {
            "rgb": z["rgb"],
            "depth": z["depth"].astype(np.float32),
            "masks": z["masks"],
            "flow": z["flow"].astype(np.float32),
        }


def contact_sheet(clip: dict[str, np.ndarray], frames: int = 4) -> np.ndarray:
    """Rows of frames: RGB | depth (colour-mapped) | masks | flow magnitude. (rows*S, 4*S, 3) uint8."""
    import cv2

    from .palette import colorize_ids

    rows = []
    T = len(clip["rgb"])
    for t in np.linspace(0, T - 1, min(frames, T)).astype(int):
        d = np.log(clip["depth"][t])
        d = (255 * (d - d.min()) / max(np.ptp(d), 1e-6)).astype(np.uint8)
        depth = cv2.applyColorMap(255 - d, cv2.COLORMAP_INFERNO)[..., ::-1]
        mag = np.linalg.norm(clip["flow"][t], axis=-1)
        flow = cv2.applyColorMap(
            (255 * mag / max(mag.max(), 1e-6)).astype(np.uint8), cv2.COLORMAP_VIRIDIS
        )[..., ::-1]
        rows.append(
            np.concatenate([clip["rgb"][t], depth, colorize_ids(clip["masks"][t]), flow], 1)
        )
    return np.concatenate(rows, 0)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m model.synth",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--videos", type=int, required=True, help="number of clips")
    p.add_argument(
        "--seed", type=int, default=0, help="data set seed (clip i uses SeedSequence([seed, i]))"
    )
    d = SceneConfig()
    p.add_argument("--size", type=int, default=d.size, help="frame size in pixels (square)")
    p.add_argument("--frames", type=int, default=d.frames, help="frames per clip")
    p.add_argument("--min-objects", type=int, default=d.min_objects)
    p.add_argument("--max-objects", type=int, default=d.max_objects)
    p.add_argument("--camera-motion", type=float, default=d.camera_motion, help="0 = static camera")
    p.add_argument("--texture-prob", type=float, default=d.texture_prob)
    p.add_argument("--photo-prob", type=float, default=d.photo_prob)
    p.add_argument("--aa", type=int, default=d.aa, help="RGB supersampling factor")
    p.add_argument("--fps", type=float, default=d.fps)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument(
        "--preview", action="store_true", help="also write preview.png, a contact sheet of clip 0"
    )
    a = p.parse_args(argv)
    if a.videos < 1:
        p.error("--videos must be >= 1")
    if a.size < 16:
        p.error("--size must be >= 16")
    if a.frames < 1:
        p.error("--frames must be >= 1")
    if not 1 <= a.min_objects <= a.max_objects:
        p.error("need 1 <= --min-objects <= --max-objects")
    if a.aa < 1 or a.workers < 1 or a.fps <= 0:
        p.error("--aa and --workers must be >= 1 and --fps > 0")
    cfg = SceneConfig(
        a.size,
        a.frames,
        a.min_objects,
        a.max_objects,
        a.camera_motion,
        a.texture_prob,
        a.photo_prob,
        a.aa,
        a.fps,
    )
    meta = write_dataset(a.out, a.videos, a.seed, cfg, a.workers)
    if a.preview:
        import cv2

        sheet = contact_sheet(load_clip(Path(a.out) / "clip_00000.npz"))
        cv2.imwrite(str(Path(a.out) / "preview.png"), sheet[..., ::-1])
    print(
        f"wrote {a.videos} clips to {a.out} in {meta['wall_seconds']:.1f} s ({meta['clips_per_second']:.1f} clips/s)"
    )


if __name__ == "__main__":
    main()
