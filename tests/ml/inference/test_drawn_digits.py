"""The default mnist cnn reads digits drawn the way users draw them: ≥ 90% with our preprocessing."""
from __future__ import annotations

import numpy as np
import torch
from drawn_digits import drawn_digit_set

from ml.data.transforms import normalize
from ml.inference import decode_upload

CAPS = {"max_bytes": 10_000_000, "max_pixels": 40_000_000}


def test_drawn_digits_are_read_correctly(mnist_predictor):
    samples = drawn_digit_set(n_per_digit=20, seed=0)  # 200 uploads: 8 canvases, PNG and JPEG
    images = [decode_upload(data, **CAPS) for _, _, data in samples]
    truth = [digit for digit, _, _ in samples]
    predicted = [p.class_index for p in mnist_predictor.predict(images, top_k=1)]
    accuracy = float(np.mean(np.array(predicted) == np.array(truth)))

    # The naive way: grayscale, resize to 28×28, normalise — what a tutorial endpoint does.
    naive = torch.stack([torch.from_numpy(np.array(img.convert("L").resize((28, 28))))[None] for img in images])
    naive_probs = mnist_predictor.probabilities(normalize(naive, mnist_predictor._mean, mnist_predictor._std))
    naive_accuracy = float((naive_probs.argmax(1) == torch.tensor(truth)).float().mean())

    misses = [(d, desc, p) for (d, desc, _), p in zip(samples, predicted) if d != p]
    print(f"\ndrawn digits: {accuracy:.1%} with MNIST-style preprocessing, {naive_accuracy:.1%} naive resize; "
          f"misses: {misses}")
    assert accuracy >= 0.90
    assert naive_accuracy < accuracy - 0.3  # the preprocessing is what makes it work
