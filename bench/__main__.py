"""python -m bench --json OUT [--quick | --tiny]: the efficiency benchmark of OC-SlotSSM against
its baselines (bench/scaling.py). The other benchmarks: bench.model_bench, bench.app_bench,
bench.load."""

from bench.scaling import main

main()
