"""Train a small character-level language model in plain numpy, within a CPU-time budget.

``train(text, alphabet, seconds)`` returns the weights of a window MLP (see evaluate.py for the
family the evaluator runs): the K previous characters, embedded, concatenated, one tanh hidden
layer, a softmax over the alphabet. Trained with Adam on random windows of the text until
``seconds`` of CPU time are spent (the sandbox stops anything that runs much longer). The
evaluator measures bits per character on text this function never sees.
"""
import time

import numpy as np

# EVOLVE-BLOCK-START
CONTEXT = 8            # characters in the window
EMBED = 12             # embedding size per character
HIDDEN = 128           # hidden units
BATCH = 64             # windows per step
LEARNING_RATE = 0.002  # Adam's step at the start
FINAL_RATE = 0.1       # share of LEARNING_RATE left at the end (linear decay over the budget)
BETA1 = 0.9
BETA2 = 0.99
INIT_SCALE = 1.0       # weights start at INIT_SCALE / sqrt(fan-in)
WEIGHT_DECAY = 0.0
SKIP = False           # a direct path from the window to the output
RESERVE = 0.3          # CPU seconds kept for handing the weights back


def init_weights(rng, vocab):
    fan = CONTEXT * EMBED
    w = {
        "embed": rng.normal(0.0, 1.0, (vocab, EMBED)),
        "w1": rng.normal(0.0, INIT_SCALE / np.sqrt(fan), (fan, HIDDEN)),
        "b1": np.zeros(HIDDEN),
        "w2": rng.normal(0.0, INIT_SCALE / np.sqrt(HIDDEN), (HIDDEN, vocab)),
        "b2": np.zeros(vocab),
    }
    if SKIP:
        w["skip"] = np.zeros((fan, vocab))
    return {k: v.astype(np.float32) for k, v in w.items()}


def batch(rng, codes):
    ends = rng.integers(CONTEXT, codes.size, BATCH)
    windows = codes[ends[:, None] - np.arange(CONTEXT, 0, -1)[None, :]]
    return windows, codes[ends]


def gradients(w, windows, targets):
    """Cross-entropy of the batch (nats per character) and its gradient for every weight."""
    n = windows.shape[0]
    x = w["embed"][windows].reshape(n, -1)
    h = np.tanh(x @ w["w1"] + w["b1"])
    logits = h @ w["w2"] + w["b2"]
    if "skip" in w:
        logits += x @ w["skip"]
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(n), targets] + 1e-12).mean()
    dlogits = p
    dlogits[np.arange(n), targets] -= 1.0
    dlogits /= n
    g = {"w2": h.T @ dlogits, "b2": dlogits.sum(axis=0)}
    dh = dlogits @ w["w2"].T
    da = dh * (1.0 - h * h)
    g["w1"] = x.T @ da
    g["b1"] = da.sum(axis=0)
    dx = da @ w["w1"].T
    if "skip" in w:
        g["skip"] = x.T @ dlogits
        dx += dlogits @ w["skip"].T
    g["embed"] = np.zeros_like(w["embed"])
    np.add.at(g["embed"], windows.ravel(), dx.reshape(-1, w["embed"].shape[1]))
    return loss, g


def train(text, alphabet, seconds):
    start = time.process_time()
    rng = np.random.default_rng(np.random.randint(2**31))
    codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    codes = np.searchsorted(np.frombuffer(alphabet.encode("ascii"), dtype=np.uint8), codes)
    w = init_weights(rng, len(alphabet))
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v = {k: np.zeros_like(v) for k, v in w.items()}
    budget = seconds - RESERVE
    t = 0
    while True:
        spent = (time.process_time() - start) / budget
        if spent >= 1.0:
            break
        t += 1
        rate = LEARNING_RATE * (1.0 - (1.0 - FINAL_RATE) * spent)
        _, g = gradients(w, *batch(rng, codes))
        for k in w:
            m[k] = BETA1 * m[k] + (1 - BETA1) * g[k]
            v[k] = BETA2 * v[k] + (1 - BETA2) * g[k] * g[k]
            step = (m[k] / (1 - BETA1**t)) / (np.sqrt(v[k] / (1 - BETA2**t)) + 1e-8)
            w[k] = w[k] - rate * (step + WEIGHT_DECAY * w[k])
    return w
# EVOLVE-BLOCK-END
