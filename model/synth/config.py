"""What a data set is made of: the scene config, its presets, and the constants of each stage.

The defaults reproduce generator version 1 (a room, an orbiting camera, four primitive
shapes, no camera effects) bit for bit: the project's data sets are defined by their seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GENERATOR_VERSION = 2  # 2: scene kinds, camera kinds, composite shapes, effects (defaults = 1)

# the room, in metres: objects move inside |x|, |z| < ARENA; walls stand at |x|, |z| = ROOM
ARENA, ROOM = 3.2, 11.0
CAMERA_RADIUS = (5.5, 7.5)  # distance of the camera from the room's centre
CAMERA_ELEVATION = (np.radians(22), np.radians(48))
FOV = np.radians(50)  # vertical field of view (non-square frames widen the horizontal one)
ORBIT_SPEED = 0.25  # radians per second at camera_motion = 1
SPEED = (0.3, 1.6)  # object speeds, m/s
STATIC_PROB = 0.25  # share of objects that do not move
AMBIENT = (0.28, 0.45)
SPECULAR, SHININESS = 0.35, 24.0
EPS = 1e-4  # ray offset that keeps shadow rays from hitting their own surface
# Depth 0 means unknown, as for the user's depth maps (model/data.py) and in the training
# loss: the sky has no depth, and neither has ground farther than a depth sensor would reach.
MAX_DEPTH = 100.0
SKY_DISTANCE = 1e4  # where the sky's points sit when flow is computed: at infinity, in effect
WIDTH_MULTIPLE = 8  # non-square frames: width rounded to this (H.264 and the model's patches)

SCENES = ("room", "table", "ground", "hand")
CAMERAS = ("orbit", "static", "pan", "zoom", "shake")
SHAPE_SETS = ("basic", "all")


@dataclass
class SceneConfig:
    size: int = 64  # frame height in pixels; the width is size * aspect
    frames: int = 8
    min_objects: int = 3
    max_objects: int = 8
    camera_motion: float = 1.0  # 0 = static camera, whatever its kind
    texture_prob: float = 0.5  # probability that an object is textured
    photo_prob: float = 0.5  # probability that the ground / walls use a photograph
    aa: int = 1  # supersampling factor for RGB (depth, masks and flow use the centre sample)
    fps: float = 12.0
    shadows: bool = True  # off only to test that shadows darken what they fall on
    # ---- generator version 2: every default below leaves version 1's output unchanged
    aspect: float = 1.0  # width / height; the width is rounded to a multiple of 8
    scenes: tuple[str, ...] = ("room",)  # each clip draws one kind (repeat a kind to weight it)
    cameras: tuple[str, ...] = ("orbit",)  # each clip draws one camera kind
    shapes: str = "basic"  # basic: sphere, ellipsoid, box, cylinder; all: + thin, composite,
    # concave and articulated objects (each one instance id)
    blur_prob: float = 0.0  # share of clips with motion blur (RGB only)
    blur_samples: int = 4  # sub-frame renders averaged into a blurred frame
    noise: float = 0.0  # sensor noise: each clip draws a level in [0, noise] (8-bit units)
    codec_prob: float = 0.0  # share of clips sent through H.264 and back (the app's reader)
    # x264 quality range (higher = worse). At 64 px even crf 0 moves RGB by ~10 levels on
    # average: 4:2:0 chroma at this size blurs colour edges over 2 pixels.
    codec_crf: tuple[int, int] = (18, 34)
    # the camera's distance to what it looks at, times the stage's: < 1 comes closer, so the
    # objects fill more of the frame (a close-up of a hand moving a mug, as a phone films it)
    camera_distance: float = 1.0
    # share of clips where a tall panel slides across in front of the camera (an extra
    # instance id, the last): objects behind it vanish for a few frames and come back
    occluder_prob: float = 0.0

    def __post_init__(self):
        self.scenes, self.cameras = tuple(self.scenes), tuple(self.cameras)
        self.codec_crf = tuple(int(c) for c in self.codec_crf)
        for name, kinds, known in (
            ("scene", self.scenes, SCENES),
            ("camera", self.cameras, CAMERAS),
            ("shapes", (self.shapes,), SHAPE_SETS),
        ):
            bad = [k for k in kinds if k not in known]
            if bad or not kinds:
                raise ValueError(f"unknown {name} kind {bad or kinds}: choose from {known}")

    @property
    def height(self) -> int:
        return self.size

    @property
    def width(self) -> int:
        if self.aspect == 1.0:
            return self.size
        return max(
            WIDTH_MULTIPLE, int(round(self.size * self.aspect / WIDTH_MULTIPLE)) * WIDTH_MULTIPLE
        )


# A preset names a config; flags given beside it override its fields.
PRESETS: dict[str, dict] = {
    "room": {},  # generator version 1, exactly
    "mixed": {
        "scenes": SCENES,
        "cameras": CAMERAS,
        "shapes": "all",
        "blur_prob": 0.25,
        "noise": 6.0,
        "codec_prob": 0.5,
    },
}


@dataclass(frozen=True)
class Stage:
    """Where a scene kind plays, in metres: the ground the objects move on and the camera."""

    arena: tuple[float, float]  # objects move inside |x| < arena[0], |z| < arena[1]
    object_radius: tuple[float, float]
    speed: tuple[float, float]  # m/s
    camera_radius: tuple[float, float]
    camera_elevation: tuple[float, float]  # radians
    target_height: float  # the camera looks at about this height above the stage's centre
    scale: float  # lengths of the camera's wobble and of background textures, room = 1


STAGES = {
    "room": Stage(
        arena=(ARENA, ARENA),
        object_radius=(0.35, 0.8),
        speed=SPEED,
        camera_radius=CAMERA_RADIUS,
        camera_elevation=CAMERA_ELEVATION,
        target_height=0.3,
        scale=1.0,
    ),
    # a table top seen from a sitting person's eyes; the arena is the table's (sampled)
    "table": Stage(
        arena=(0.5, 0.35),
        object_radius=(0.04, 0.1),
        speed=(0.04, 0.25),
        camera_radius=(0.6, 1.1),
        camera_elevation=(np.radians(28), np.radians(60)),
        target_height=0.03,
        scale=0.15,
    ),
    # open ground under the sky, seen from low so the horizon shows
    "ground": Stage(
        arena=(5.0, 5.0),
        object_radius=(0.4, 1.1),
        speed=(0.5, 2.2),
        camera_radius=(8.0, 13.0),
        camera_elevation=(np.radians(6), np.radians(20)),
        target_height=0.9,
        scale=1.5,
    ),
    # close-up of a table top where a hand moves one object (the others stand still)
    "hand": Stage(
        arena=(0.12, 0.12),
        object_radius=(0.025, 0.05),
        speed=(0.0, 0.0),
        camera_radius=(0.38, 0.6),
        camera_elevation=(np.radians(25), np.radians(52)),
        target_height=0.03,
        scale=0.1,
    ),
}
