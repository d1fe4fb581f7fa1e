"""What a panel passing in front of the camera does to the decoder's slots
(docs/experiments.md, "Objects that vanish and come back", thirty-sixth session)

    PYTHONPATH=. python scripts/panel_probe.py --weights weights [--data data/occ24]

On clips rendered with `model.synth --occluder-prob 1` (the panel is each clip's last instance
id), prints the decoder's video FG-ARI of the other objects (the panel's pixels counted as
background: does the panel disturb what is behind it?), the same with every frame run alone,
and how many slots share the panel (slots holding at least a tenth of its pixels, over the
frames where it covers more than 5% of the view).
"""

import argparse

import numpy as np

from model import OCSlotSSM
from model.data import load_folder
from model.evaluate import predict_clip
from model.metrics import fg_ari


def slots_on(panel: np.ndarray, ids: np.ndarray, share: float = 0.1) -> int:
    """How many labels hold at least `share` of the panel's pixels in one frame."""
    _, counts = np.unique(ids[panel], return_counts=True)
    return int((counts >= share * panel.sum()).sum())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--weights", default="weights")
    p.add_argument("--data", default="data/occ24")
    args = p.parse_args()
    model = OCSlotSSM.from_pretrained(args.weights).eval()
    behind, alone, shared = [], [], []
    for clip in load_folder(args.data, model.config.image_size):
        pred = predict_clip(model, clip.rgb)
        panel = clip.masks == clip.masks.max()
        objects = np.where(panel, 0, clip.masks)
        behind.append(fg_ari(objects, pred["slot_ids_decoded"]))
        alone.append(fg_ari(objects, pred["slot_ids_memoryless"]))
        shared += [
            slots_on(panel[t], pred["slot_ids_decoded"][t])
            for t in np.flatnonzero(panel.mean(axis=(1, 2)) > 0.05)
        ]
    print(f"{args.weights} on {args.data} ({len(behind)} clips)")
    print(f"decoder video FG-ARI, the panel as background: {np.nanmean(behind):.3f}")
    print(f"the same, every frame alone: {np.nanmean(alone):.3f}")
    print(f"slots holding >= 10% of the panel: {np.mean(shared):.2f} ({len(shared)} frames)")


if __name__ == "__main__":
    main()
