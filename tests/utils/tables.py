"""CSV tables with a known answer."""
from __future__ import annotations

import random

TRUE_W, TRUE_B = (3.0, -2.0), 5.0


def linear_csv(n: int = 400, noise: float = 0.01, seed: int = 0, bad_lines: bool = False) -> bytes:
    """x1,x2,target with target = 3·x1 − 2·x2 + 5 + noise; `bad_lines` adds rows that must be refused."""
    rng = random.Random(seed)
    lines = ["x1,x2,target"]
    for _ in range(n):
        x1, x2 = rng.gauss(0, 1), rng.gauss(0, 1)
        lines.append(f"{x1:.6f},{x2:.6f},{TRUE_W[0] * x1 + TRUE_W[1] * x2 + TRUE_B + rng.gauss(0, noise):.6f}")
    if bad_lines:
        lines[3] = "1.0,abc,2.0"  # line 4
        lines[5] = "1.0,2.0"  # line 6
        lines[7] = "1.0,nan,2.0"  # line 8
    return ("\n".join(lines) + "\n").encode()
