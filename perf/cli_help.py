"""Wall time of ``mhpo-bench --help`` and of each subcommand's ``--help`` (a fresh interpreter each, best of 3),
against ``python -c pass`` measured in the same run (interpreter start-up, the floor).

    python perf/cli_help.py
"""

from __future__ import annotations

import subprocess
import sys
import time


def best(argv: list[str], repeats: int = 3) -> float:
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        t.append(time.perf_counter() - t0)
    return min(t)


def main() -> None:
    from mhpo.cli import COMMANDS

    floor = best([sys.executable, "-c", "pass"])
    print(f"{'command':<34} {'seconds':>8} {'x floor':>8}")
    print(f"{'python -c pass':<34} {floor:8.2f} {1.0:8.1f}")
    for cmd in [[]] + [[name] for name in COMMANDS]:
        t = best([sys.executable, "-m", "mhpo.cli", *cmd, "--help"])
        print(f"{' '.join(['mhpo-bench', *cmd, '--help']):<34} {t:8.2f} {t / floor:8.1f}")


if __name__ == "__main__":
    main()
