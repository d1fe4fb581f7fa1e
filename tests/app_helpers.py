"""Test clips and a launched app, shared by the app tests (defined in bench/harness.py, which
the benchmarks use too)."""

from bench.harness import ROOT, LaunchedApp, free_port, scene_frames, write_video

__all__ = ["ROOT", "LaunchedApp", "free_port", "scene_frames", "write_video"]
