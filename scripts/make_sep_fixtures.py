"""Tests/PreprocessingTests/Fixtures/sep_blends.{bin,json}: blends of two or three galaxies
and stars with Gaussian noise, and what SEP (`sep.extract`, Barbary 2016: SExtractor's
detection, multi-threshold deblending) makes of them: the number of objects and the
segment of the object at the centre. The images are float32, little endian, one after the
other (48 x 48, row-major); the JSON holds per image the noise sigma, the object count and
the indices of the central object's segment pixels, and per object its centroid and Kron
radius (`sep.kron_radius` within 6 of its moment ellipse, other objects' pixels left out, as
SExtractor's AUTO aperture and `mask_neighbours` use it).

    pip install sep numpy
    python scripts/make_sep_fixtures.py
"""
import json
import pathlib
import numpy as np
import sep

rng = np.random.default_rng(11)
size = 48
yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)

def galaxy(x0, y0, flux, re, q, angle):
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = xx - x0, yy - y0
    u, v = c * dx + s * dy, -s * dx + c * dy
    r = np.sqrt(u * u * q + v * v / q)
    img = np.exp(-1.678 * r / re)
    return flux * img / img.sum()

def star(x0, y0, flux, sigma=1.6):
    img = np.exp(-0.5 * ((xx - x0) ** 2 + (yy - y0) ** 2) / sigma ** 2)
    return flux * img / img.sum()

images, meta = [], []
root = pathlib.Path(__file__).resolve().parent.parent / "Tests/PreprocessingTests/Fixtures"
for k in range(12):
    sigma = float(rng.uniform(5, 15))
    cx, cy = size / 2 - 0.5 + rng.uniform(-1.5, 1.5, 2)
    img = galaxy(cx, cy, rng.uniform(8e3, 4e4), rng.uniform(2, 5), rng.uniform(0.4, 1), rng.uniform(0, np.pi))
    for _ in range(1 + k % 2):
        d, a = rng.uniform(7, 18), rng.uniform(0, 2 * np.pi)
        x, y = cx + d * np.cos(a), cy + d * np.sin(a)
        if rng.uniform() < 0.3:
            img += star(x, y, rng.uniform(5e3, 5e4))
        else:
            img += galaxy(x, y, rng.uniform(5e3, 4e4), rng.uniform(1.5, 4), rng.uniform(0.4, 1), rng.uniform(0, np.pi))
    data = (img + rng.normal(0, sigma, img.shape)).astype(np.float32)
    objects, seg = sep.extract(data, 1.5, err=sigma, minarea=5, deblend_nthresh=32, deblend_cont=0.005,
                               clean=False, segmentation_map=True)
    centre = seg[size // 2, size // 2]
    if centre == 0:  # nearest object to the centre
        d2 = (objects["x"] - size / 2 + 0.5) ** 2 + (objects["y"] - size / 2 + 0.5) ** 2
        centre = int(np.argmin(d2)) + 1
    ids = np.arange(1, len(objects) + 1, dtype=np.int32)
    kron, _ = sep.kron_radius(data, objects["x"], objects["y"], objects["a"], objects["b"], objects["theta"], 6.0,
                              seg_id=ids, segmap=seg)
    images.append(data)
    meta.append({"sigma": sigma, "objects": int(len(objects)),
                 "central_segment": np.flatnonzero(seg.ravel() == centre).tolist(),
                 "x": objects["x"].tolist(), "y": objects["y"].tolist(), "kron": kron.tolist()})
np.stack(images).astype("<f4").tofile(root / "sep_blends.bin")
(root / "sep_blends.json").write_text(json.dumps({"size": size, "images": meta}))
print([m["objects"] for m in meta], [len(m["central_segment"]) for m in meta])
