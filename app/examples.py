"""Render the bundled example videos with the project's scene generator:

    python -m app.examples            # writes assets/scene_*.mp4

Seeds are fixed (and held out of the training seeds), so the examples are reproducible.
"""

from __future__ import annotations

from pathlib import Path

from model.synth import SceneConfig, clip_seed, render_clip

from .video_io import Mp4Writer

ASSETS = Path(__file__).resolve().parents[1] / "assets"
EXAMPLE_SEED = 20241  # not a training seed
EXAMPLES = {  # name: (clip index, scene settings)
    "scene_few_objects": (
        0,
        SceneConfig(
            size=256,
            frames=48,
            min_objects=3,
            max_objects=4,
            texture_prob=0.2,
            photo_prob=0.0,
            aa=2,
        ),
    ),
    "scene_busy": (1, SceneConfig(size=256, frames=48, min_objects=6, max_objects=8, aa=2)),
    "scene_photo_room": (
        2,
        SceneConfig(size=256, frames=48, min_objects=4, max_objects=6, photo_prob=1.0, aa=2),
    ),
}


def main() -> None:
    ASSETS.mkdir(exist_ok=True)
    for name, (index, cfg) in EXAMPLES.items():
        clip = render_clip(clip_seed(EXAMPLE_SEED, index), cfg)
        with Mp4Writer(ASSETS / f"{name}.mp4", cfg.fps, (cfg.size, cfg.size), crf=20) as w:
            for frame in clip["rgb"]:
                w.write(frame)
        print(f"wrote {ASSETS / name}.mp4 ({len(clip['rgb'])} frames)")


if __name__ == "__main__":
    main()
