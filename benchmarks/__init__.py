"""Lanternpath's load benchmark: virtual players against the real server (its own process)
and a scripted model (another process), measured side by side with the old sequential flow.
Run `python -m benchmarks --quick` or `python -m benchmarks --players 1,10,50,200 --chapters 3`."""
