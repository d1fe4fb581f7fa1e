"""Procedural 3-D scenes, ray cast in numpy: RGB, metric depth, instance masks and optical flow.

    python -m model.synth --out DIR --videos N --seed S [--preset room|mixed] [--size 64 ...]

Scenes (--scenes, one drawn per clip): a room (ground plane and four walls, textured
procedurally or with photographs that ship inside scikit-image); a table top seen from close
by (a table with legs in a small room, centimetre-sized objects); open ground under a sky
(depth 0 = unknown for the sky and for ground beyond 100 m, as for a depth sensor); a
close-up where a skin-coloured hand comes in, grips one object and carries it.
Objects (--shapes): spheres, ellipsoids, boxes and cylinders, and with `all` also thin ones
(poles, planks), composites (a box with a ball on it, a snowman, a mushroom), concave ones (an
L, an arch, a ring), and ones with moving parts (a walking or waving figure, a turnstile);
each object, however many parts, has one instance id. Objects slide and collide on the
ground under one sun with hard shadows.
Cameras (--cameras, one drawn per clip): orbit (circling and bobbing), static, pan, zoom,
shake (hand-held). Effects, each drawn per clip: motion blur (--blur-prob: RGB averaged over
sub-frame renders), sensor noise (--noise), H.264 (--codec-prob: encoded by the app's writer
and decoded by the app's reader). --aspect 16:9 renders 64x112 frames at --size 64.
Occlusion (--occluder-prob): a tall panel slides across in front of the camera once, so what
is behind it vanishes for a few frames and comes back (model.evaluate scores whether the same
slot takes it back).

Masks (0 = background, 1..K = objects, stable over the clip) are written for evaluation only;
training never sees them. Clip i of a data set with seed S is rendered from
SeedSequence([S, i]), so any clip can be re-rendered alone and a data set is
bit-reproducible. The default (--preset room) renders exactly what generator version 1 did.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, fields
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .config import CAMERAS, GENERATOR_VERSION, PRESETS, SCENES, SHAPE_SETS, SceneConfig
from .render import clip_plan, render_clip

__all__ = [
    "GENERATOR_VERSION",
    "PRESETS",
    "SceneConfig",
    "clip_plan",
    "clip_seed",
    "contact_sheet",
    "load_clip",
    "main",
    "render_clip",
    "write_dataset",
]


def clip_seed(seed: int, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, index])


def _write_one(job: tuple[Path, int, int, SceneConfig]) -> None:
    out, seed, index, cfg = job
    clip = render_clip(clip_seed(seed, index), cfg)
    np.savez_compressed(
        out / f"clip_{index:05d}.npz",
        rgb=clip["rgb"],
        depth=clip["depth"],
        masks=clip["masks"],
        flow=clip["flow"].astype(np.float16),
        held=clip["held"],
    )


def write_dataset(
    out: str | Path, videos: int, seed: int, cfg: SceneConfig, workers: int = 1, preset: str = ""
) -> dict:
    """out/clip_00000.npz ... (rgb uint8, depth float32, masks uint8, flow float16, held: the
    id of the object a hand carries, 0 = none) and
    out/meta.json (the config, and each clip's scene, camera and effects). Returns the meta."""
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
        "preset": preset,
        "config": asdict(cfg),
        "frame_size": [cfg.height, cfg.width],
        "wall_seconds": round(wall, 2),
        "clips_per_second": round(videos / wall, 2),
        "workers": workers,
        "clips": [clip_plan(clip_seed(seed, i), cfg) for i in range(videos)],
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
            "held": np.uint8(z["held"]) if "held" in z else np.uint8(0),  # older data sets: none
        }


def contact_sheet(clip: dict[str, np.ndarray], frames: int = 4) -> np.ndarray:
    """Rows of frames: RGB | depth (colour-mapped, unknown black) | masks | flow magnitude.
    (rows*H, 4*W, 3) uint8."""
    import cv2

    from ..palette import colorize_ids

    rows = []
    T = len(clip["rgb"])
    for t in np.linspace(0, T - 1, min(frames, T)).astype(int):
        known = clip["depth"][t] > 0
        d = np.log(np.where(known, clip["depth"][t], 1.0))
        lo, hi = (d[known].min(), d[known].max()) if known.any() else (0.0, 1.0)
        d = (255 * (d - lo) / max(hi - lo, 1e-6)).clip(0, 255).astype(np.uint8)
        depth = cv2.applyColorMap(255 - d, cv2.COLORMAP_INFERNO)[..., ::-1] * known[..., None]
        mag = np.linalg.norm(clip["flow"][t], axis=-1)
        flow = cv2.applyColorMap(
            (255 * mag / max(mag.max(), 1e-6)).astype(np.uint8), cv2.COLORMAP_VIRIDIS
        )[..., ::-1]
        rows.append(
            np.concatenate([clip["rgb"][t], depth, colorize_ids(clip["masks"][t]), flow], 1)
        )
    return np.concatenate(rows, 0)


def _kinds(known: tuple[str, ...]):
    def parse(text: str) -> tuple[str, ...]:
        kinds = tuple(k.strip() for k in text.split(",") if k.strip())
        bad = [k for k in kinds if k not in known]
        if bad or not kinds:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(known)} (comma-separated)")
        return kinds

    return parse


def _aspect(text: str) -> float:
    try:
        w, h = (float(x) for x in text.split(":")) if ":" in text else (float(text), 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError("an aspect is W:H (16:9) or a number (1.78)") from None
    if not (w > 0 and h > 0 and 0.25 <= w / h <= 4):
        raise argparse.ArgumentTypeError("the aspect (width / height) must be in [0.25, 4]")
    return w / h


def _crf(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("a quality range is LO,HI (e.g. 18,34)") from None
    if not 0 <= lo <= hi <= 51:
        raise argparse.ArgumentTypeError("x264 quality needs 0 <= LO <= HI <= 51")
    return lo, hi


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
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="room",
        help="room: generator version 1 exactly (default); mixed: every scene kind, camera, "
        "shape and effect. Flags given beside a preset override it.",
    )
    d = SceneConfig()
    # defaults of None: a flag that is not given leaves the preset's value
    p.add_argument("--size", type=int, help=f"frame height in pixels (default {d.size})")
    p.add_argument("--aspect", type=_aspect, help="width:height, e.g. 16:9 (default 1:1)")
    p.add_argument("--frames", type=int, help=f"frames per clip (default {d.frames})")
    p.add_argument("--min-objects", type=int, help=f"default {d.min_objects}")
    p.add_argument("--max-objects", type=int, help=f"default {d.max_objects}")
    p.add_argument("--camera-motion", type=float, help="0 = static camera (default 1)")
    p.add_argument("--texture-prob", type=float, help=f"default {d.texture_prob}")
    p.add_argument("--photo-prob", type=float, help=f"default {d.photo_prob}")
    p.add_argument("--aa", type=int, help="RGB supersampling factor (default 1)")
    p.add_argument("--fps", type=float, help=f"default {d.fps}")
    p.add_argument("--scenes", type=_kinds(SCENES), help=f"of {','.join(SCENES)} (default room)")
    p.add_argument(
        "--cameras", type=_kinds(CAMERAS), help=f"of {','.join(CAMERAS)} (default orbit)"
    )
    p.add_argument("--shapes", choices=SHAPE_SETS, help="default basic")
    p.add_argument("--blur-prob", type=float, help="share of clips with motion blur (default 0)")
    p.add_argument(
        "--blur-samples", type=int, help=f"sub-frames per blurred frame (default {d.blur_samples})"
    )
    p.add_argument("--noise", type=float, help="most sensor noise, 8-bit levels (default 0)")
    p.add_argument("--codec-prob", type=float, help="share of clips through H.264 (default 0)")
    p.add_argument("--codec-crf", type=_crf, help="x264 quality range LO,HI (default 18,34)")
    p.add_argument(
        "--camera-distance",
        type=float,
        help="the camera's distance times the scene kind's; < 1 comes closer (default 1)",
    )
    p.add_argument(
        "--occluder-prob",
        type=float,
        help="share of clips where a panel passes in front of the camera, hiding what is "
        "behind it for a few frames (default 0)",
    )
    p.add_argument("--workers", type=int, default=1)
    p.add_argument(
        "--preview", action="store_true", help="also write preview.png, a contact sheet of clip 0"
    )
    a = p.parse_args(argv)
    names = {f.name for f in fields(SceneConfig)}
    given = {k: v for k, v in vars(a).items() if k in names and v is not None}
    cfg = SceneConfig(**{**PRESETS[a.preset], **given})
    if a.videos < 1:
        p.error("--videos must be >= 1")
    if cfg.size < 16:
        p.error("--size must be >= 16")
    if cfg.frames < 1:
        p.error("--frames must be >= 1")
    if not 1 <= cfg.min_objects <= cfg.max_objects:
        p.error("need 1 <= --min-objects <= --max-objects")
    if cfg.aa < 1 or a.workers < 1 or cfg.fps <= 0 or cfg.blur_samples < 1:
        p.error("--aa, --workers and --blur-samples must be >= 1 and --fps > 0")
    for name in ("texture_prob", "photo_prob", "blur_prob", "codec_prob", "occluder_prob"):
        if not 0 <= getattr(cfg, name) <= 1:
            p.error(f"--{name.replace('_', '-')} must be in [0, 1]")
    if cfg.noise < 0:
        p.error("--noise must be >= 0")
    if cfg.camera_distance <= 0:
        p.error("--camera-distance must be > 0")
    meta = write_dataset(a.out, a.videos, a.seed, cfg, a.workers, a.preset)
    if a.preview:
        import cv2

        sheet = contact_sheet(load_clip(Path(a.out) / "clip_00000.npz"))
        cv2.imwrite(str(Path(a.out) / "preview.png"), sheet[..., ::-1])
    print(
        f"wrote {a.videos} clips to {a.out} in {meta['wall_seconds']:.1f} s ({meta['clips_per_second']:.1f} clips/s)"
    )
