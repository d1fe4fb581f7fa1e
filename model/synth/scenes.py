"""Scenes: where they play (room, table top, open ground, a hand's close-up), how they look,
how their objects move, and how the camera films them.

Every random draw of a version 1 scene (room, orbiting camera, basic shapes) happens in the
same order as in version 1, so its clips are bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np

from .config import (
    AMBIENT,
    EPS,
    FOV,
    ORBIT_SPEED,
    ROOM,
    STAGES,
    STATIC_PROB,
    SceneConfig,
    Stage,
)
from .shapes import (
    BUILDERS,
    EXTRA_SHAPES,
    EXTRA_SHARE,
    SHAPES,
    Material,
    Obj,
    Part,
    footprint,
    hand,
    intersect_primitive,
    random_color,
    random_material,
)

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
# surfaces of the background (ids 0 in the masks)
GROUND, TABLE, SKY = 0, 5, -1  # 1..4 are the walls

# ---- looks ------------------------------------------------------------------------------


@cache
def _photo(name: str) -> np.ndarray:
    """A photograph from scikit-image's bundled data as float RGB in [0, 1] (never downloaded)."""
    import skimage.data

    img = getattr(skimage.data, name)().astype(np.float32) / 255.0
    return np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img[..., :3]


@cache
def photos_available() -> tuple[str, ...]:
    names = []
    for n in PHOTO_NAMES:
        try:
            _photo(n)
            names.append(n)
        except Exception:  # scikit-image missing, or an image that would need a download
            continue
    return tuple(names)


@dataclass
class Look:
    """How the background looks: per surface a photo (name) or a procedural pattern, the light."""

    ground: tuple  # (kind, params...)
    walls: tuple
    light: np.ndarray  # unit vector towards the sun
    ambient: float
    sun: float
    table: tuple | None = None  # table top (table and hand scenes)
    sky: tuple | None = None  # (horizon colour, zenith colour, cloud colour, cloud cover)
    fog: float = 0.0  # metres; 0 = none (open ground fades into the horizon's colour)


def _surface(rng, photo_prob, photos, pattern_choices) -> tuple:
    if photos and rng.random() < photo_prob:
        return (
            "photo",
            photos[rng.integers(len(photos))],
            rng.uniform(4.0, 9.0),
            random_color(rng) * 0.4 + 0.6,
        )
    kind = pattern_choices[rng.integers(len(pattern_choices))]
    return (
        kind,
        random_color(rng) * 0.6 + 0.2,
        random_color(rng) * 0.6 + 0.2,
        rng.uniform(0.6, 2.0),
    )


def _scaled(spec: tuple, scale: float) -> tuple:
    """The same surface with its pattern `scale` times smaller (table tops are small)."""
    if scale == 1.0:
        return spec
    i = 2 if spec[0] == "photo" else 3
    return (*spec[:i], spec[i] * scale, *spec[i + 1 :])


def sample_look(rng, cfg: SceneConfig, photos, kind: str = "room") -> Look:
    azim, elev = rng.uniform(0, 2 * np.pi), rng.uniform(np.radians(35), np.radians(70))
    light = np.array([np.cos(elev) * np.cos(azim), np.sin(elev), np.cos(elev) * np.sin(azim)])
    ground = _surface(rng, cfg.photo_prob, photos, ["checker", "tiles", "noise"])
    walls = _surface(rng, cfg.photo_prob, photos, ["stripes", "gradient", "noise"])
    look = Look(ground, walls, light, rng.uniform(*AMBIENT), rng.uniform(0.8, 1.1))
    if kind in ("table", "hand"):
        s = STAGES[kind].scale
        look.ground, look.walls = _scaled(ground, s * 2), _scaled(walls, s * 2)
        wood = ["stripes", "noise", "tiles", "checker"]
        look.table = _scaled(_surface(rng, cfg.photo_prob * 0.5, photos, wood), s)
    elif kind == "ground":
        outdoor = [n for n in photos if n in ("grass", "gravel", "brick", "moon")]
        look.ground = _surface(rng, cfg.photo_prob, outdoor, ["noise", "checker", "tiles"])
        horizon = np.array([0.75, 0.82, 0.9]) + rng.uniform(-0.12, 0.08, 3)
        zenith = np.array([0.25, 0.45, 0.85]) * rng.uniform(0.7, 1.1) + rng.uniform(-0.08, 0.08, 3)
        cloud = np.full(3, rng.uniform(0.85, 1.0))
        look.sky = (np.clip(horizon, 0, 1), np.clip(zenith, 0, 1), cloud, rng.uniform(0.0, 0.7))
        look.fog = rng.uniform(60.0, 200.0)
    return look


def pattern(spec: tuple, u: np.ndarray, v: np.ndarray) -> np.ndarray:
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


def sky_color(look: Look, d: np.ndarray) -> np.ndarray:
    """Colour (P, 3) of the sky in directions d: horizon to zenith, clouds, the sun's glow."""
    horizon, zenith, cloud, cover = look.sky
    up = np.clip(d[:, 1], 0, 1)[:, None]
    color = horizon + (zenith - horizon) * np.sqrt(up)
    # clouds: smooth noise on a plane high above, thinning towards the horizon
    u, v = d[:, 0] / (up[:, 0] + 0.05), d[:, 2] / (up[:, 0] + 0.05)
    n = 0.5 + 0.25 * (np.sin(u * 2.1 + 1.3 * np.sin(v * 1.7)) + np.sin(v * 2.9 - u * 0.8))
    c = np.clip((n - (1 - cover)) * 3, 0, 1)[:, None] * np.clip(up * 4, 0, 1)
    color = color * (1 - c) + cloud * c
    glow = np.clip(d @ look.light, 0, 1) ** 300
    return np.clip(color + glow[:, None], 0, 1)


# ---- environments -----------------------------------------------------------------------


@dataclass
class Env:
    """The background geometry."""

    kind: str  # room | table | ground
    walls: float = ROOM  # walls at |x|, |z| = walls (room and table)
    floor: float = 0.0  # height of the floor
    table: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # boxes (size, centre)


TABLE_HEIGHT, TABLE_TOP = 0.74, 0.025  # metres; the top's upper face is at y = 0


def _planes(o: np.ndarray, d: np.ndarray, planes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def hit_env(env: Env, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closest background surface: distance (P,) (inf = sky), normal (P, 3), surface (P,):
    GROUND, 1..4 walls, TABLE or SKY."""
    if env.kind == "ground":
        dist, normal, surface = _planes(o, d, [(1, env.floor, 1.0)])
        return dist, normal, np.where(np.isfinite(dist), GROUND, SKY)
    w = env.walls
    planes = [(1, env.floor, 1.0), (0, w, -1.0), (0, -w, 1.0), (2, w, -1.0), (2, -w, 1.0)]
    dist, normal, surface = _planes(o, d, planes)  # axis, offset, normal sign
    for i, (size, centre) in enumerate(env.table):
        # the legs stand under the top: only rays that missed it can meet them
        idx = np.arange(len(d)) if i == 0 else np.flatnonzero(surface != TABLE)
        h, n = intersect_primitive("box", size, centre, np.eye(3), o, d[idx])
        closer = h < dist[idx]
        dist[idx[closer]] = h[closer]
        normal[idx[closer]] = n[closer]
        surface[idx[closer]] = TABLE
    return dist, normal, surface


def _sample_table(rng) -> tuple[Env, np.ndarray]:
    """A table (top and four legs) in a small room; returns the env and the top's half size."""
    half = np.array([rng.uniform(0.55, 0.85), TABLE_TOP, rng.uniform(0.4, 0.6)])
    boxes = [(half, np.array([0, -TABLE_TOP, 0]))]
    leg = np.array([0.03, (TABLE_HEIGHT - 2 * TABLE_TOP) / 2, 0.03])
    for sx in (-1, 1):
        for sz in (-1, 1):
            centre = [sx * (half[0] - 0.08), -2 * TABLE_TOP - leg[1], sz * (half[2] - 0.08)]
            boxes.append((leg, np.array(centre)))
    return Env("table", walls=rng.uniform(1.8, 3.0), floor=-TABLE_HEIGHT, table=boxes), half


# ---- objects ----------------------------------------------------------------------------


def sample_objects(
    rng, cfg: SceneConfig, stage: Stage, arena: np.ndarray, count: tuple[int, int]
) -> list[Obj]:
    """Objects placed without overlap, then simulated as discs sliding on the ground."""
    n = int(rng.integers(count[0], count[1] + 1))
    times = np.arange(cfg.frames) / cfg.fps
    objs, radii, xz = [], [], []
    for _ in range(n):
        extra = cfg.shapes == "all" and rng.random() < EXTRA_SHARE
        shape = (
            EXTRA_SHAPES[rng.integers(len(EXTRA_SHAPES))]
            if extra
            else SHAPES[rng.integers(len(SHAPES))]
        )
        r = rng.uniform(*stage.object_radius)
        if extra:
            mats = [random_material(rng, cfg.texture_prob) for _ in range(3)]
            if rng.random() < 0.5:  # one material for the whole object
                mats = mats[:1] * 3
            parts, rest = BUILDERS[shape](rng, r, mats, times)
            bound = footprint(parts)
        else:
            if shape == "sphere":
                size = np.array([r, r, r])
            elif shape == "ellipsoid":
                size = np.array([r, rng.uniform(0.5, 1.3) * r, rng.uniform(0.5, 1.0) * r])
            elif shape == "box":
                size = np.array([r, rng.uniform(0.5, 1.2) * r, rng.uniform(0.6, 1.0) * r])
            else:  # cylinder: radius, half height
                size = np.array([r, rng.uniform(0.5, 1.5) * r, r])
            bound = float(np.hypot(size[0], size[2]))  # radius of the footprint's disc
        for _ in range(50):  # rejection sampling of a free spot
            p = rng.uniform(-arena + bound, arena - bound)
            if all(
                np.hypot(*(p - q)) > bound + rb + 0.05 * stage.scale
                for q, rb in zip(xz, radii, strict=True)
            ):
                break
        else:
            continue  # the arena is full
        if extra:
            yaw = np.full(cfg.frames, rng.uniform(0, 2 * np.pi)) + rng.uniform(-0.6, 0.6) * times
            obj = Obj(parts, np.zeros((cfg.frames, 3)), yaw, rest, bound, shape)
        else:  # version 1's draws, in version 1's order
            textured = rng.random() < cfg.texture_prob
            mat = Material(
                color=random_color(rng),
                texture=["checker", "stripes"][rng.integers(2)] if textured else "solid",
                tex_color=random_color(rng),
                tex_scale=rng.uniform(3.0, 7.0),
            )
            yaw = np.full(cfg.frames, rng.uniform(0, np.pi)) + rng.uniform(-0.6, 0.6) * np.arange(
                cfg.frames
            ) / cfg.fps * (shape == "box")
            obj = Obj(
                [Part(shape, size, mat)], np.zeros((cfg.frames, 3)), yaw, size[1], bound, shape
            )
        objs.append(obj)
        radii.append(bound)
        xz.append(p)
    simulate(rng, objs, np.array(xz), np.array(radii), cfg, stage, arena)
    for o in objs:
        if o.kind == "figure":
            _face_heading(o)
    return objs


def simulate(rng, objs, xz, radii, cfg: SceneConfig, stage: Stage, arena) -> None:
    """Elastic collisions between discs (mass ~ area) and with the arena's edge."""
    angle = rng.uniform(0, 2 * np.pi, len(objs))
    speed = rng.uniform(*stage.speed, len(objs)) * (rng.random(len(objs)) > STATIC_PROB)
    vel = np.stack([np.cos(angle), np.sin(angle)], 1) * speed[:, None]
    mass = radii**2
    dt = 1.0 / cfg.fps
    for t in range(cfg.frames):
        for o, p in zip(objs, xz, strict=True):
            o.pos[t] = [p[0], o.rest, p[1]]  # resting on the ground
        xz = xz + vel * dt
        for i in range(len(objs)):
            for axis in range(2):  # bounce off the arena's edge
                if abs(xz[i, axis]) > arena[axis] - radii[i]:
                    xz[i, axis] = np.sign(xz[i, axis]) * (arena[axis] - radii[i])
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


def _face_heading(obj: Obj) -> None:
    """A walking figure faces where it goes (its local +z); a standing one waves one arm."""
    step = np.diff(obj.pos[:, [0, 2]], axis=0)
    moving = np.hypot(*step.T) > 1e-6
    if not moving.any():
        arm = obj.parts[2]
        arm.angle = np.pi - 0.5 + 0.5 * np.sin(arm.angle * 4)  # raised, waving
        for p in obj.parts[3:]:
            p.angle = p.angle * 0
        return
    heading = np.arctan2(step[:, 0], step[:, 1])  # (T - 1,): frame t -> t + 1
    first = int(np.argmax(moving))
    heading[:first] = heading[first]
    for t in range(first + 1, len(heading)):  # hold the heading over stops
        if not moving[t]:
            heading[t] = heading[t - 1]
    heading = np.append(heading, heading[-1])
    obj.yaw = np.unwrap(heading)


# ---- the hand ---------------------------------------------------------------------------


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def add_hand(rng, cfg: SceneConfig, objs: list[Obj], cam_pos: np.ndarray, half: np.ndarray) -> Obj:
    """A hand that comes in from the camera's side, grips objs[0] and carries it."""
    T, fps = cfg.frames, cfg.fps
    held = objs[0]
    p0 = held.pos[0].copy()
    grab = int(rng.integers(0, max(1, T // 3) + 1))  # frame at which the hand holds it
    # the hand arrives from one side, 35 to 110 degrees off the camera's line of sight (from
    # straight behind the camera its forearm would hide everything)
    towards = p0[[0, 2]] - cam_pos[[0, 2]]
    a = np.arctan2(towards[0], towards[1]) + rng.choice([-1, 1]) * rng.uniform(0.6, 1.9)
    approach = np.array([np.sin(a), 0, np.cos(a)])
    # the carried path: slide and lift
    heading = rng.uniform(0, 2 * np.pi)
    vel = np.array([np.cos(heading), 0, np.sin(heading)]) * rng.uniform(0.08, 0.25)
    lift = rng.uniform(0.0, 0.06)
    times = np.maximum(np.arange(T) - grab, 0) / fps
    path = p0 + vel * times[:, None]
    limit = half[[0, 2]] - held.bound
    path[:, [0, 2]] = np.clip(path[:, [0, 2]], -limit, limit)
    path[:, 1] += lift * _smoothstep(times / 0.5)
    held.pos = path
    held.yaw = held.yaw + rng.uniform(-0.8, 0.8) * times
    # the hand: palm above the object, fingers down its far side, curling shut at the grab
    t = np.arange(T)
    curl = 0.25 + rng.uniform(0.7, 1.1) * _smoothstep((t - grab + 2) / 2)
    parts = hand(rng, curl)
    # knuckles (4.5 cm ahead of the palm's centre) over the far edge, so the fingers come down
    # behind the object and the palm covers only the near part of its top
    grip = np.array([0, held.top() + 0.012, 0]) + approach * (held.bound - 0.055)
    pos = path + grip
    before = np.maximum(grab - t, 0) / fps  # seconds until the grab
    pos = pos - approach * rng.uniform(0.2, 0.35) * before[:, None]
    pos[:, 1] += 0.1 * before
    yaw = np.full(T, a) + 0.15 * np.sin(rng.uniform(1, 3) * t / fps + rng.uniform(0, 6))
    return Obj(parts, pos, yaw, 0.0, 0.1, "hand")


# ---- an occluder -------------------------------------------------------------------------


def add_occluder(rng, cfg: SceneConfig, cam: Camera) -> Obj:
    """A tall panel that passes in front of the camera (a pillar, a passer-by), so the objects
    behind it are hidden for a few frames and come back: what only a model that remembers
    them can keep in the same slot. Placed in frame 0's view, a quarter to two fifths of the
    way to what the camera looks at, sliding sideways across the whole view once; sized by
    the camera's geometry, so it works on every stage."""
    T = cfg.frames
    forward, right = cam.rot[0][2] * [1, 0, 1], cam.rot[0][0] * [1, 0, 1]
    forward, right = forward / np.linalg.norm(forward), right / np.linalg.norm(right)
    eye = cam.pos[0]
    # the camera looks down at its target: the horizontal distance to where its line of sight
    # meets the ground
    sight = cam.rot[0][2]
    reach = eye[1] / max(-sight[1], 0.05) * np.hypot(sight[0], sight[2])
    d = rng.uniform(0.25, 0.4) * reach
    view = d * cfg.width / cfg.height / cam.focal[0]  # half the view's width at distance d
    w = rng.uniform(0.3, 0.6) * view  # half the panel's width
    # up to the camera's eye and a little above: nothing behind it shows over its top
    tall = eye[1] * rng.uniform(1.05, 1.3)
    side = rng.choice([-1.0, 1.0])
    start = rng.uniform(-0.15, 0.25) * T  # frame at which it enters the view
    frames = rng.uniform(0.5, 0.9) * T  # frames it takes to cross
    travel = (view + w) * (2 * (np.arange(T) - start) / frames - 1)  # -(view + w) -> view + w
    pos = eye * [1, 0, 1] + forward * d + side * right * travel[:, None]
    pos[:, 1] = tall / 2
    size = np.array([w, tall / 2, 0.08 * w])
    yaw = np.full(T, np.arctan2(-right[2], right[0]))  # the panel's width along the view's
    return Obj([Part("box", size, random_material(rng, cfg.texture_prob))], pos, yaw, tall / 2, w)


# ---- cameras ----------------------------------------------------------------------------


@dataclass
class Camera:
    pos: np.ndarray  # (T, 3)
    rot: np.ndarray  # (T, 3, 3) rows: right, up, forward (world -> camera)
    focal: np.ndarray  # (T,) in units of half the image height


def look_at(pos: np.ndarray, target: np.ndarray) -> np.ndarray:
    fwd = target - pos
    fwd /= np.linalg.norm(fwd, axis=1, keepdims=True)
    right = np.cross(fwd, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    up = np.cross(right, fwd)
    return np.stack([right, up, fwd], 1)


def sample_camera(rng, cfg: SceneConfig, stage: Stage, kind: str, centre: np.ndarray) -> Camera:
    """orbit: circles the scene, bobbing (version 1); static: still; pan: turns about its own
    vertical axis; zoom: changes focal length; shake: a hand-held camera's jitter."""
    T = cfg.frames
    t = np.arange(T) / cfg.fps
    m, s = cfg.camera_motion, stage.scale
    focal = np.full(T, 1.0 / np.tan(FOV / 2))
    if kind == "orbit":
        radius = rng.uniform(*stage.camera_radius) + m * 0.4 * s * np.sin(
            rng.uniform(0.5, 1.5) * t + rng.uniform(0, 6)
        )
        elev = rng.uniform(*stage.camera_elevation) + m * 0.05 * np.sin(
            rng.uniform(0.8, 2.0) * t + rng.uniform(0, 6)
        )
        azim = (
            rng.uniform(0, 2 * np.pi)
            + m * rng.choice([-1, 1]) * rng.uniform(0.3, 1.0) * ORBIT_SPEED * t
        )
    else:
        radius = np.full(T, rng.uniform(*stage.camera_radius))
        elev = np.full(T, rng.uniform(*stage.camera_elevation))
        azim = np.full(T, rng.uniform(0, 2 * np.pi))
    radius = radius * cfg.camera_distance
    pos = np.stack(
        [
            radius * np.cos(elev) * np.cos(azim),
            radius * np.sin(elev),
            radius * np.cos(elev) * np.sin(azim),
        ],
        1,
    )
    if kind == "orbit":
        target = (
            centre
            + rng.uniform(-0.6, 0.6, 3) * [1, 0.3, 1] * s
            + m * 0.1 * s * rng.standard_normal((T, 3)).cumsum(0) / np.sqrt(T)
        )
        return Camera(pos=pos, rot=look_at(pos, target), focal=focal)
    pos = pos + centre * [1, 0, 1]
    target = np.broadcast_to(centre + rng.uniform(-0.6, 0.6, 3) * [1, 0.3, 1] * s, (T, 3))
    if kind == "pan":  # turn the line of sight about the vertical through the camera
        rate = m * rng.choice([-1, 1]) * rng.uniform(0.12, 0.45)  # rad/s
        tilt = m * rng.uniform(-0.08, 0.08)
        ang = rate * (t - t[-1] / 2)
        c, sn = np.cos(ang), np.sin(ang)
        v = target - pos
        v = np.stack([c * v[:, 0] - sn * v[:, 2], v[:, 1], sn * v[:, 0] + c * v[:, 2]], 1)
        v[:, 1] += tilt * (t - t[-1] / 2) * np.hypot(v[:, 0], v[:, 2])
        target = pos + v
    rot = look_at(pos, target)
    if kind == "zoom":  # focal length changes by up to 2x over a second, in or out
        rate = m * rng.choice([-1, 1]) * rng.uniform(0.25, 0.7)  # log focal per second
        focal = focal * np.exp(rate * (t - t[-1] / 2))
    elif kind == "shake":  # hand-held: smooth jitter of the angles and the position
        amp = m * np.radians(rng.uniform(0.4, 1.5))

        def wobble(k):
            f, ph = rng.uniform(0.5, 4.0, k), rng.uniform(0, 2 * np.pi, k)
            return np.sin(2 * np.pi * f * t[:, None] + ph).sum(1) / np.sqrt(k / 2)

        yaw, pitch, roll = amp * wobble(3), amp * wobble(3), 0.5 * amp * wobble(3)
        jitter = np.stack([wobble(2), wobble(2), wobble(2)], 1) * m * 0.01 * radius[:, None]
        pos = pos + jitter
        rot = look_at(pos, target + jitter)
        for i in range(T):  # small rotations in the camera's own frame
            cy, sy, cp, sp, cr, sr = (
                f(a) for a in (yaw[i], pitch[i], roll[i]) for f in (np.cos, np.sin)
            )
            Ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
            Rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
            Rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
            rot[i] = Rz @ Rx @ Ry @ rot[i]
    return Camera(pos=pos, rot=rot, focal=focal)


# ---- a whole scene ----------------------------------------------------------------------


@dataclass
class Scene:
    kind: str
    env: Env
    look: Look
    objs: list[Obj]
    cam: Camera
    # instance id (1-based index into objs) of the object a hand carries; 0: none. For
    # evaluation only: does one slot keep the object that the hand moves?
    held: int = 0


def sample_scene(rng, cfg: SceneConfig, kind: str = "room", camera: str = "orbit") -> Scene:
    stage = STAGES[kind]
    look = sample_look(rng, cfg, photos_available(), kind)
    count = (cfg.min_objects, cfg.max_objects)
    arena = np.array(stage.arena)
    centre = np.array([0.0, stage.target_height, 0.0])
    if kind == "room":
        env = Env("room")
    elif kind == "ground":
        env = Env("ground")
    else:
        env, half = _sample_table(rng)
        if kind == "table":
            arena = half[[0, 2]] - 0.04
        else:
            count = (1, max(1, min(3, cfg.max_objects - 1)))
    objs = sample_objects(rng, cfg, stage, arena, count)
    if kind == "hand" and objs:
        centre = centre + objs[0].pos[0] * [1, 0, 1]
    cam = sample_camera(rng, cfg, stage, camera, centre)
    held = 0
    if kind == "hand" and objs:
        objs.append(add_hand(rng, cfg, objs, cam.pos[0], half))
        held = 1  # add_hand grips objs[0]
    return Scene(kind, env, look, objs, cam, held)
