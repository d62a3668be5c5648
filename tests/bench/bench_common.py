"""bench_common.py - what every benchmark script reports about its run: the machine, a
peer's version, and (for delivery) how many messages landed in Maildirs."""

import os
import platform
import subprocess


def machine():
    """'2 CPUs, <model>, Linux <release>'."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), model)
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model}, {platform.system()} {platform.release()}"


def version(argv):
    """The first line a version command prints, or 'unknown'."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def count_landed(root):
    """Files in every new/ and cur/ under root: one per delivery."""
    n = 0
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) in ("new", "cur"):
            n += len(files)
    return n
