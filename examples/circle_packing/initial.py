"""26 circles in the unit square, as large as possible: maximise the sum of their radii.

``pack()`` returns a (26, 3) array of rows (x, y, r). It builds starting layouts from rows of
circles, then optimises all of them at once with Adam on a penalised objective (minus the sum of
radii plus a growing penalty for overlaps and for crossing the square's sides), polishes the best
ones and makes the best of them strictly valid. The evaluator checks validity itself, exactly.
"""
import numpy as np

N = 26

# EVOLVE-BLOCK-START
ROWS = [5, 5, 6, 5, 5]      # circles per row of the starting layout (extras dropped, gaps filled at random)
STARTS = 24                 # starting layouts optimised together
JITTER = 0.02               # noise on the starting centres
START_RADIUS = 0.05
SEED = 0
SHAPE_STEPS = 1500          # first phase: find a layout, penalty PENALTY_START -> PENALTY_MID
SHAPE_RATE = 0.002
POLISH_STEPS = 3000         # second phase: settle it, penalty PENALTY_MID -> PENALTY_END
POLISH_RATE = 0.0002
PENALTY_START = 10.0
PENALTY_MID = 1e4
PENALTY_END = 1e7
KEEP = 4                    # best layouts given a final, finer polish
FINAL_STEPS = 2000
FINAL_RATE = 0.00005


def start_layouts(rng):
    """STARTS layouts of N centres: ROWS rows spread evenly, jittered."""
    points = []
    counts = [max(1, int(c)) for c in ROWS] or [N]
    for i, count in enumerate(counts):
        y = (i + 0.5) / len(counts)
        points += [((j + 0.5) / count, y) for j in range(count)]
    base = np.array(points[:N]).reshape(-1, 2)
    if len(base) < N:
        base = np.vstack([base, rng.uniform(0.1, 0.9, (N - len(base), 2))])
    layouts = np.empty((STARTS, N, 3))
    layouts[..., :2] = base[None] + rng.normal(0.0, JITTER, (STARTS, N, 2))
    layouts[..., 2] = START_RADIUS
    return layouts


def gradient(P, mu):
    """Gradient of -sum(r) + mu * (squared overlaps + squared excursions outside the square)."""
    x, y, r = P[..., 0], P[..., 1], P[..., 2]
    eye = np.eye(N, dtype=bool)
    dx = x[:, :, None] - x[:, None, :]
    dy = y[:, :, None] - y[:, None, :]
    d = np.sqrt(dx * dx + dy * dy) + eye
    over = np.where(eye, 0.0, np.maximum(r[:, :, None] + r[:, None, :] - d, 0.0))
    g = np.zeros_like(P)
    g[..., 2] = -1.0 + 2 * mu * over.sum(axis=2) - 2 * mu * np.maximum(-r, 0.0)
    push = 2 * mu * over / d
    g[..., 0] = -(push * dx).sum(axis=2)
    g[..., 1] = -(push * dy).sum(axis=2)
    for k, c in ((0, x), (1, y)):
        low = np.maximum(r - c, 0.0)
        high = np.maximum(c + r - 1.0, 0.0)
        g[..., k] += 2 * mu * (high - low)
        g[..., 2] += 2 * mu * (low + high)
    return g


def optimise(P, steps, rate, mu_from, mu_to):
    """Adam with a decaying step and a penalty growing geometrically from mu_from to mu_to."""
    steps = max(1, int(steps))
    m = np.zeros_like(P)
    v = np.zeros_like(P)
    growth = (mu_to / mu_from) ** (1.0 / steps)
    mu = mu_from
    for t in range(1, steps + 1):
        g = gradient(P, mu)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        step = rate * (1.0 - t / steps) + 1e-7
        P = P - step * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-12)
        mu *= growth
    return P


def make_valid(p):
    """The same centres with radii shrunk until nothing overlaps or leaves the square."""
    x, y = np.clip(p[:, 0], 0.0, 1.0), np.clip(p[:, 1], 0.0, 1.0)
    r = np.maximum(np.minimum.reduce([p[:, 2], x, 1 - x, y, 1 - y]), 0.0)
    d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :]) + 10 * np.eye(N)
    for _ in range(10 * N * N):
        over = r[:, None] + r[None, :] - d
        i, j = np.unravel_index(np.argmax(over), over.shape)
        if over[i, j] <= 0:
            break
        scale = d[i, j] / (r[i] + r[j])
        r[i] *= scale
        r[j] *= scale
    r = np.maximum(r * (1 - 1e-9) - 1e-12, 0.0)  # a margin against rounding in the checker
    return np.stack([x, y, r], axis=1)


def pack():
    rng = np.random.default_rng(SEED)
    P = start_layouts(rng)
    P = optimise(P, SHAPE_STEPS, SHAPE_RATE, PENALTY_START, PENALTY_MID)
    P = optimise(P, POLISH_STEPS, POLISH_RATE, PENALTY_MID, PENALTY_END)
    sums = np.array([make_valid(p)[:, 2].sum() for p in P])
    best = P[np.argsort(-sums)[:max(1, int(KEEP))]]
    best = optimise(best, FINAL_STEPS, FINAL_RATE, PENALTY_END, 10 * PENALTY_END)
    packings = [make_valid(p) for p in np.concatenate([best, P])]
    return max(packings, key=lambda q: q[:, 2].sum())
# EVOLVE-BLOCK-END
