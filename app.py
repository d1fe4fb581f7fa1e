"""Launch the slot decomposition studio: python app.py [--port 7860] [--device auto] [--weights weights]"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from app.limits import MAX_FILE_MB
from app.memory import limit_malloc_arenas


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    p.add_argument(
        "--share", action="store_true", help="also serve through a public gradio.live link"
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    p.add_argument(
        "--weights",
        default=str(Path(__file__).parent / "weights"),
        help="weights folder or Hub repo id",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="model passes at once (default: 1 on CPU, 2 on GPU)",
    )
    args = p.parse_args()
    limit_malloc_arenas()

    import torch

    from app.examples import ASSETS, example_paths
    from app.layout import HIDE_PLAYER_ERROR, build_demo
    from app.session import Decomposer, pick_device
    from app.zerogpu import on_gpu

    device = pick_device(args.device)
    try:  # safetensors only, strict: a corrupted or mismatched file stops here, clearly
        decomposer = Decomposer.from_weights(args.weights, device)
    except Exception as err:
        raise SystemExit(f"error: could not load weights from {args.weights}: {err}") from None
    model = decomposer.model
    # ZeroGPU on a Space: the GPU is borrowed per run, for a time estimated from the clip
    decomposer.stream, gpu_mode = on_gpu(decomposer.stream)
    concurrency = args.concurrency or (2 if device.type == "cuda" else 1)
    print(
        f"OC-SlotSSM: {sum(p.numel() for p in model.parameters()):,} parameters, {model.config.num_slots} slots, "
        f"short side {model.config.image_size} px; device {device} (torch {torch.__version__}); "
        f"weights sha256 {decomposer.weights_sha256}; {gpu_mode}"
    )
    # examples run through the model when clicked (not cached: results belong to a session)
    demo = build_demo(decomposer, example_paths(), concurrency=concurrency)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        max_file_size=f"{MAX_FILE_MB}mb",
        footer_links=["api", "gradio"],
        allowed_paths=[str(ASSETS)],
        js=HIDE_PLAYER_ERROR,
    )


if __name__ == "__main__":
    main()
