"""One adapter per library; each runs in its own process and speaks JSON lines.

Run one as ``python -m benchmarks.peers LIB MODE [options]`` from the repository root.
"""
