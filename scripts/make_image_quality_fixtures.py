"""Tests/AstroBaseTests/Fixtures/image_quality.json: TASKS.md task 6's PSNR, SSIM and flux error
from scikit-image / numpy for a few (prediction, truth) pairs, one of them not square.

    pip install scikit-image
    python scripts/make_image_quality_fixtures.py
"""
import json
import pathlib
import numpy as np
from skimage.metrics import structural_similarity

rng = np.random.default_rng(3)
cases = []
for (h, w), noise in [((48, 48), 5.0), ((48, 48), 50.0), ((23, 31), 2.0)]:
    yy, xx = np.mgrid[0:h, 0:w]
    truth = 500 * np.exp(-np.hypot((xx - w / 2) / 3.0, (yy - h / 2) / 2.0)).astype(np.float32)
    truth[2, 3] += 40  # asymmetry, so that a transposed reading fails
    pred = (truth * 0.97 + rng.normal(0, noise, truth.shape)).astype(np.float32)
    t, p = truth.astype(np.float64), pred.astype(np.float64)
    mse = np.mean((p - t) ** 2)
    cases.append({
        "width": w, "height": h, "truth": [float(f"{v:.9g}") for v in truth.ravel()], "prediction": [float(f"{v:.9g}") for v in pred.ravel()],
        "psnr": float(10 * np.log10(t.max() ** 2 / mse)),
        "ssim": float(structural_similarity(t, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                            data_range=t.max() - t.min())),
        "flux_error": float(-2.5 * np.log10(p.sum() / t.sum())),
    })
out = pathlib.Path(__file__).resolve().parent.parent / "Tests/AstroBaseTests/Fixtures/image_quality.json"
out.write_text(json.dumps(cases))
print("wrote", out, [round(c["ssim"], 4) for c in cases])
