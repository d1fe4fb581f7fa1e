"""Ray casting a scene into frames (RGB, depth, instance ids, flow), and clips with the
camera's effects: motion blur, sensor noise, H.264."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .config import EPS, MAX_DEPTH, SHININESS, SKY_DISTANCE, SPECULAR, SceneConfig
from .effects import h264_roundtrip, sensor_noise
from .scenes import (
    GROUND,
    SKY,
    TABLE,
    Camera,
    Scene,
    add_occluder,
    hit_env,
    pattern,
    sample_scene,
    sky_color,
)
from .shapes import intersect, part_color, part_frame

# independent random streams of a clip, beside the scene's own (SeedSequence spawn keys)
KIND_STREAM, BLUR_STREAM, NOISE_STREAM, CODEC_STREAM, GRAIN_STREAM = 1, 2, 3, 4, 5
OCCLUDER_STREAM = 6  # its own stream: a clip with an occluder is the same scene without it, plus it


def rays(cam: Camera, t: int, H: int, W: int, aa: int) -> np.ndarray:
    """Unit ray directions (P, 3) for P = (H * aa) * (W * aa) samples in row-major order."""
    cy = (np.arange(H * aa) + 0.5) / aa  # sample centres in output pixel units
    cx = (np.arange(W * aa) + 0.5) / aa
    y, x = np.meshgrid(cy, cx, indexing="ij")
    u = (x.ravel() - W / 2) / (H / 2)  # the vertical field of view is fixed
    v = -(y.ravel() - H / 2) / (H / 2)
    d = np.stack([u, v, np.full_like(u, cam.focal[t])], 1) @ cam.rot[t]
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def project(points: np.ndarray, cam: Camera, t: int, H: int, W: int) -> np.ndarray:
    """World points (P, 3) -> pixel coordinates (P, 2) (x, y) in frame t's camera."""
    local = (points - cam.pos[t]) @ cam.rot[t].T
    z = np.maximum(local[:, 2], 1e-6)
    return np.stack(
        [
            local[:, 0] / z * cam.focal[t] * H / 2 + W / 2,
            -local[:, 1] / z * cam.focal[t] * H / 2 + H / 2,
        ],
        1,
    )


@dataclass
class Frame:
    rgb: np.ndarray  # (H, W, 3) float in [0, 1]
    depth: np.ndarray  # (H, W) float32 metres, 0 = unknown (sky, beyond MAX_DEPTH)
    ids: np.ndarray  # (H, W) uint8, 0 = background
    parts: np.ndarray  # (H * W,) part index within each pixel's object
    points: np.ndarray  # (H * W, 3) world point of each pixel (sky: far along the ray)


def render_frame(scene: Scene, t: int, cfg: SceneConfig) -> Frame:
    H, W, aa = cfg.height, cfg.width, cfg.aa
    cam, look, objs = scene.cam, scene.look, scene.objs
    d = rays(cam, t, H, W, aa)
    o = cam.pos[t]
    dist, normal, surface = hit_env(scene.env, o, d)
    ids = np.zeros(len(d), np.int64)
    parts = np.zeros(len(d), np.int64)
    for k, obj in enumerate(objs, start=1):
        h, n, j = intersect(obj, t, o, d)
        closer = h < dist
        dist = np.where(closer, h, dist)
        normal[closer] = n[closer]
        ids[closer] = k
        parts[closer] = j[closer]
    sky = (ids == 0) & (surface == SKY)
    if sky.any():
        dist = np.where(sky, SKY_DISTANCE, dist)
    p = o + dist[:, None] * d

    # base colour
    color = np.zeros((len(d), 3))
    g = (ids == 0) & (surface == GROUND)
    color[g] = pattern(look.ground, p[g, 0], p[g, 2])
    for axis, idx in ((2, [1, 2]), (0, [3, 4])):  # walls facing x use z as u, and vice versa
        w = (ids == 0) & np.isin(surface, idx)
        color[w] = pattern(look.walls, p[w, axis] + scene.env.walls, p[w, 1])
    tb = (ids == 0) & (surface == TABLE)
    if tb.any():
        color[tb] = pattern(look.table, p[tb, 0] - p[tb, 1], p[tb, 2] + p[tb, 1])
    for k, obj in enumerate(objs, start=1):
        m = ids == k
        if not m.any():
            continue
        for j, part in enumerate(obj.parts):
            mj = m if len(obj.parts) == 1 else m & (parts == j)
            if mj.any():
                centre, R = part_frame(obj, part, t)
                color[mj] = part_color(part, centre, R, p[mj])

    # sun: Lambert + Blinn-Phong, hard shadows from every object
    lit = np.ones(len(d), bool)
    origin = p + normal * EPS * 10
    for obj in objs if cfg.shadows else []:
        h, _, _ = intersect(obj, t, origin, np.broadcast_to(look.light, (len(d), 3)))
        lit &= ~np.isfinite(h)
    lambert = np.clip(normal @ look.light, 0, 1) * lit
    half = look.light - d
    half /= np.linalg.norm(half, axis=1, keepdims=True)
    spec = SPECULAR * np.clip((normal * half).sum(1), 0, 1) ** SHININESS * lit * (ids > 0)
    rgb = color * (look.ambient + look.sun * lambert)[:, None] + spec[:, None]
    if look.fog:  # open ground fades into the horizon's colour
        f = (1 - np.exp(-dist / look.fog))[:, None]
        rgb = rgb * (1 - f) + look.sky[0] * f
    if sky.any():
        rgb[sky] = sky_color(look, d[sky])
    rgb = np.clip(rgb, 0, 1).reshape(H, aa, W, aa, 3).mean((1, 3))

    cy, cx = np.arange(H) * aa + aa // 2, np.arange(W) * aa + aa // 2  # depth, ids, flow
    sel = (cy[:, None] * W * aa + cx[None, :]).ravel()
    depth = ((p[sel] - o) @ cam.rot[t][2]).reshape(H, W)
    if scene.env.kind != "room":  # a room is never deeper than MAX_DEPTH
        depth = np.where(sky[sel].reshape(H, W) | (depth > MAX_DEPTH), 0.0, depth)
    return Frame(
        rgb, depth.astype(np.float32), ids[sel].reshape(H, W).astype(np.uint8), parts[sel], p[sel]
    )


def flow(scene: Scene, t: int, frame: Frame, cfg: SceneConfig) -> np.ndarray:
    """Forward flow (H, W, 2) in pixels: where each pixel's surface point is at frame t+1."""
    H, W = cfg.height, cfg.width
    points = frame.points
    moved = points.copy()
    flat = frame.ids.ravel()
    for k, obj in enumerate(scene.objs, start=1):
        m = flat == k
        for j, part in enumerate(obj.parts):
            mj = m if len(obj.parts) == 1 else m & (frame.parts == j)
            if mj.any():  # rigid motion of the part: undo this frame's pose, apply the next one's
                c0, R0 = part_frame(obj, part, t)
                c1, R1 = part_frame(obj, part, t + 1)
                moved[mj] = (points[mj] - c0) @ R0.T @ R1 + c1
    before = project(points, scene.cam, t, H, W)
    after = project(moved, scene.cam, t + 1, H, W)
    return (after - before).reshape(H, W, 2).astype(np.float32)


# ---- motion blur ------------------------------------------------------------------------


def _lerp(a: np.ndarray, tf: float) -> np.ndarray:
    """a (T, ...) at fractional frame tf, linear (extrapolated past the ends); (1, ...)."""
    if len(a) == 1:
        return a[:1]
    i = int(np.clip(np.floor(tf), 0, len(a) - 2))
    w = tf - i
    return (a[i] * (1 - w) + a[i + 1] * w)[None]


def scene_at(scene: Scene, tf: float) -> Scene:
    """The scene at a fractional time, as a one-frame scene."""
    objs = [
        replace(
            o,
            pos=_lerp(o.pos, tf),
            yaw=_lerp(o.yaw, tf),
            parts=[p if p.angle is None else replace(p, angle=_lerp(p.angle, tf)) for p in o.parts],
        )
        for o in scene.objs
    ]
    u, _, vt = np.linalg.svd(_lerp(scene.cam.rot, tf)[0])  # the nearest rotation
    cam = Camera(_lerp(scene.cam.pos, tf), (u @ vt)[None], _lerp(scene.cam.focal, tf))
    return replace(scene, objs=objs, cam=cam)


def blurred(scene: Scene, t: int, cfg: SceneConfig, shutter: float) -> np.ndarray:
    """RGB (H, W, 3) averaged over an open shutter of `shutter` frame intervals about t."""
    n = cfg.blur_samples
    times = t + shutter * ((np.arange(n) + 0.5) / n - 0.5)
    return np.mean([render_frame(scene_at(scene, tf), 0, cfg).rgb for tf in times], 0)


# ---- clips ------------------------------------------------------------------------------


def _stream(ss: np.random.SeedSequence, key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, key)))


def clip_plan(seed: int | np.random.SeedSequence, cfg: SceneConfig) -> dict:
    """What a clip is made of, without rendering it: scene and camera kinds, whether a panel
    passes in front of the camera (occluder), and the effects (shutter 0 = no motion blur,
    noise in 8-bit levels, crf None = no H.264)."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    kinds = _stream(ss, KIND_STREAM)
    scene = cfg.scenes[kinds.integers(len(cfg.scenes))] if len(cfg.scenes) > 1 else cfg.scenes[0]
    camera = (
        cfg.cameras[kinds.integers(len(cfg.cameras))] if len(cfg.cameras) > 1 else cfg.cameras[0]
    )
    blur, codec = _stream(ss, BLUR_STREAM), _stream(ss, CODEC_STREAM)
    shutter = blur.uniform(0.4, 1.0) if blur.random() < cfg.blur_prob else 0.0
    crf = int(codec.integers(cfg.codec_crf[0], cfg.codec_crf[1] + 1))
    occluder = cfg.occluder_prob > 0 and _stream(ss, OCCLUDER_STREAM).random() < cfg.occluder_prob
    return {
        "scene": scene,
        "camera": camera,
        "occluder": bool(occluder),
        "shutter": float(shutter) if cfg.blur_samples > 1 else 0.0,
        "noise": float(_stream(ss, NOISE_STREAM).uniform(0, cfg.noise)) if cfg.noise > 0 else 0.0,
        "crf": crf if codec.random() < cfg.codec_prob else None,
    }


def render_clip(seed: int | np.random.SeedSequence, cfg: SceneConfig) -> dict[str, np.ndarray]:
    """{'rgb': (T, H, W, 3) uint8, 'depth': (T, H, W) float32 metres (z along the optical
    axis; 0 = unknown), 'masks': (T, H, W) uint8, 'flow': (T, H, W, 2) float32 pixels (t ->
    t+1; the last frame repeats the previous frame's flow), 'held': uint8 id of the object a
    hand carries (0: none)}. H = cfg.size, W = cfg.width."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    plan = clip_plan(ss, cfg)
    scene = sample_scene(np.random.default_rng(ss), cfg, plan["scene"], plan["camera"])
    if plan["occluder"]:  # the last instance id; drawn after the coin that chose it
        occluder = _stream(ss, OCCLUDER_STREAM)
        occluder.random()
        scene.objs.append(add_occluder(occluder, cfg, scene.cam))
    out = {"rgb": [], "depth": [], "masks": [], "flow": []}
    for t in range(cfg.frames):
        frame = render_frame(scene, t, cfg)
        rgb = blurred(scene, t, cfg, plan["shutter"]) if plan["shutter"] else frame.rgb
        out["rgb"].append((rgb * 255 + 0.5).astype(np.uint8))
        out["depth"].append(frame.depth)
        out["masks"].append(frame.ids)
        if t + 1 < cfg.frames:
            out["flow"].append(flow(scene, t, frame, cfg))
    out["flow"].append(
        out["flow"][-1] if out["flow"] else np.zeros((cfg.height, cfg.width, 2), np.float32)
    )
    clip = {k: np.stack(v) for k, v in out.items()}
    clip["held"] = np.uint8(scene.held)
    if plan["noise"]:
        clip["rgb"] = sensor_noise(clip["rgb"], plan["noise"], _stream(ss, GRAIN_STREAM))
    if plan["crf"] is not None:
        clip["rgb"] = h264_roundtrip(clip["rgb"], plan["crf"], cfg.fps)
    return clip
