#!/usr/bin/env python3
"""A second, independent generator of TASKS.md data (morphology, lens, segmentation, regression and deblend tasks).

Independent of SkySim: galaxy profiles, PSFs and pixel integration come from GalSim, the
lensing (SIE + external shear ray shooting, the lensed Sersic source) from lenstronomy,
spiral arms from this file's own arm model, noise from numpy's PCG64 (true Poisson draws
plus Gaussian sky). It writes the data layout of TASKS.md ("Files"): a folder of FITS files
(float32, primary HDU; lens cubes NAXIS3 = 3 in band order g, r, i) with the observation
keywords the pipelines read (PIXSCALE, PSF_FWHM, GAIN, SKYSIG, MAGZERO; lens FWHM_G/R/I,
SKYSIG_G/R/I, BANDS) and the truth, plus catalog.csv with `file,label` (segmentation: 256 x 256
maps with the uint8 class map in a second HDU, EXTNAME TRUTH, and catalog.csv with `file`;
regression: one Sersic galaxy per 64 x 64 cutout, truth in SERSIC_N, R_E, Q, MAG and catalog.csv
with `file,sersic_n,r_e,q,mag`; deblend: task 6's blends with the central galaxy alone, noiseless,
in a second HDU, EXTNAME TRUTH, and catalog.csv with `file,sersic_n,r_e,q,mag,nneigh`). So

    astrolabe evaluate pipelines/classify-galaxies.yaml --input OUT/catalog.csv --report R

works on it unchanged (regression: `astrolabe evaluate pipelines/regress-sersic.yaml`; deblend:
`astrolabe evaluate pipelines/deblend-galaxies.yaml`).

`--surroundings` (morphology) gives each cutout, uniformly, one of: 1-3 neighbours (stars or
Sersic galaxies 2.5-8" away), the object's light truncated at 3-5 r_e (GalSim's Sersic
truncation; the spiral disk and stars cut in the image, stars at 1.5-3 FWHM), both, or none;
EFFECT, NNEIGH and TRUNC_K record it. Real cutouts have these; TASKS.md's do not. For
`--task regression` it gives every galaxy 1-3 such neighbours (the galaxies, PSFs and sky
noise levels are those of the same seed without it).

`--outside` (morphology) draws galaxies that belong to none of TASKS.md's five classes, as real
surveys have them, half each: `s0`, a bulge (Sersic n 3-5, r_e 0.3-1.0", q 0.6-1) on a smooth
exponential disk (r_e 1-3", q 0.3-1) without arms, bulge-to-total 0.3-0.7; `clumpy_spiral`, a
task-1 spiral (arms, bulge) with 3-8 star-forming clumps (Gaussian, sigma 0.05-0.15", 3-8 % of
the light each) spread over its disk. KIND records which; catalog.csv has `file,kind`. Run a
class pipeline on the folder to see what the model makes of them (which class, how sure, and
whether the rows say `atypical` or `unfamiliar`).

PSF (`--psf`):
  gaussian  TASKS.md exactly: circular Gaussian, FWHM uniform in [0.6, 1.0]".
  varied    what real data has and TASKS.md's Gaussian does not: per image (per band for
            lenses) a Moffat with beta uniform in [2.5, 6] (60 %) or a Gaussian (40 %),
            made elliptical (|e| uniform in [0, 0.12], random angle) half of the time; the
            FWHM is still uniform in [0.6, 1.0]" and written in PSF_FWHM. PSFTYPE, PSFBETA,
            PSF_E (and per band for lenses) record the draw.

What else is drawn differently from SkySim (all inside TASKS.md's freedom): the spiral arm
profile (arm width exponent, fade-in radius, phase), the irregulars' flux split, component
layout and clump placement, the companion direction, and true Poisson noise.

`--score PREDICTIONS.csv --out DATA` scores a classify/lens pipeline's predictions against a
data set's catalog (ours or this script's): accuracy, macro-F1, per-class counts, ROC AUC, TPR
at 1 % FPR, binomial standard errors, and the same split by PSF type, noise and seeing.

Examples:
  python3 scripts/independent_sim.py --task morphology --count 1000 --seed 101 --out /tmp/ind/morph
  python3 scripts/independent_sim.py --task lens --count 1000 --seed 102 --psf varied --out /tmp/ind/lens-v
  python3 scripts/independent_sim.py --task regression --count 1000 --seed 104 --out /tmp/ind/regression
  python3 scripts/independent_sim.py --task deblend --count 1000 --seed 106 --out /tmp/ind/deblend
  python3 scripts/independent_sim.py --out /tmp/ind/morph --score eval/predictions.csv
  python3 scripts/independent_sim.py --out /tmp/ind/morph --sheet sheet.png [--score eval/predictions.csv]
"""
import argparse
import csv
import math
import os
import sys
import time

import numpy as np

PIXSCALE = 0.2  # arcsec / pixel
SIZE = 64
MAGZERO = 30.0
MORPH_CLASSES = ["elliptical", "spiral", "edge_on", "irregular", "star"]
LENS_CLASSES = ["non_lens", "lens"]
TASK_IDS = {"morphology": 1, "lens": 2, "segmentation": 3, "regression": 4, "deblend": 6}


def flux_of(mag):
    return 10.0 ** (0.4 * (MAGZERO - mag))


# ---------------------------------------------------------------- PSF
def draw_psf_params(rng, mode):
    """One PSF draw: dict with fwhm (arcsec), type, beta, e, e_angle (rad)."""
    fwhm = rng.uniform(0.6, 1.0)
    if mode == "gaussian":
        return {"fwhm": fwhm, "type": "gaussian", "beta": 0.0, "e": 0.0, "angle": 0.0}
    moffat = rng.uniform() < 0.6
    beta = rng.uniform(2.5, 6.0) if moffat else 0.0
    elliptical = rng.uniform() < 0.5
    e = rng.uniform(0.0, 0.12) if elliptical else 0.0
    return {"fwhm": fwhm, "type": "moffat" if moffat else "gaussian", "beta": beta, "e": e,
            "angle": rng.uniform(0.0, math.pi)}


def make_psf(p):
    import galsim
    if p["type"] == "moffat":
        psf = galsim.Moffat(beta=p["beta"], fwhm=p["fwhm"], trunc=6.0 * p["fwhm"])
    else:
        psf = galsim.Gaussian(fwhm=p["fwhm"])
    if p["e"] > 0:
        psf = psf.shear(e=p["e"], beta=p["angle"] * galsim.radians)
    return psf


def gsparams():
    import galsim
    return galsim.GSParams(maximum_fft_size=16384, folding_threshold=2e-3)


# ---------------------------------------------------------------- noise
def add_noise(rng, model, sigma):
    """Poisson draw of the source counts (gain 1) plus Gaussian sky noise of `sigma`."""
    counts = rng.poisson(np.clip(model, 0.0, None)).astype(np.float64)
    return counts + rng.normal(0.0, sigma, size=model.shape)


# ---------------------------------------------------------------- morphology
def draw_gs(profile, psf, offset):
    """PSF-convolved profile integrated over 0.2" pixels (GalSim's pixel convolution)."""
    conv = galsim_convolve(profile, psf)
    img = conv.drawImage(nx=SIZE, ny=SIZE, scale=PIXSCALE, offset=offset)
    return img.array.astype(np.float64)


def sersic(n, r_e, flux, q, pa, shift=(0.0, 0.0), trunc_k=0.0):
    """A sheared, shifted Sersic profile; with trunc_k > 0 its light stops at trunc_k r_e
    (GalSim's truncation, `flux` still the untruncated total, so the cut light is lost)."""
    import galsim
    if trunc_k > 0:
        g = galsim.Sersic(n=n, half_light_radius=r_e, flux=flux, trunc=trunc_k * r_e,
                          flux_untruncated=True, gsparams=gsparams())
    else:
        g = galsim.Sersic(n=n, half_light_radius=r_e, flux=flux, gsparams=gsparams())
    return g.shear(q=q, beta=pa * galsim.radians).shift(*shift)


# ---------------------------------------------------------------- surroundings
SURROUNDINGS = ["none", "neighbours", "truncated", "both"]


def cut_beyond(img, offset, radius_px):
    """Zero the pixels farther than radius_px from the object's centre (image-space cut, for
    the profiles GalSim cannot truncate: the spiral disk and the PSF of a star)."""
    c = (SIZE - 1) / 2.0
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    r = np.hypot(xx - c - offset[0], yy - c - offset[1])
    return np.where(r <= radius_px, img, 0.0)


def neighbour_light(srng, psf, offset):
    """1-3 neighbours: stars (35 %, m 16.5-22.5) or GalSim Sersic galaxies (n 0.5-4, r_e
    0.3-2.5", q 0.3-1, m 17.5-23.5), centred 2.5-8" from the object in a uniform direction."""
    count = int(srng.integers(1, 4))
    img = np.zeros((SIZE, SIZE))
    for _ in range(count):
        d = srng.uniform(2.5, 8.0) / PIXSCALE
        a = srng.uniform(0, 2 * math.pi)
        at = (offset[0] + d * math.cos(a), offset[1] + d * math.sin(a))
        if srng.uniform() < 0.35:
            img += psf.withFlux(flux_of(srng.uniform(16.5, 22.5))).drawImage(
                nx=SIZE, ny=SIZE, scale=PIXSCALE, offset=at).array.astype(np.float64)
        else:
            g = sersic(srng.uniform(0.5, 4.0), srng.uniform(0.3, 2.5), flux_of(srng.uniform(17.5, 23.5)),
                       srng.uniform(0.3, 1.0), srng.uniform(0, math.pi))
            img += draw_gs(g, psf, at)
    return img, count


def spiral_disk_image(rng, flux, r_e, q, pa, psf, offset, sub=4, margin=12):
    """Exponential disk with logarithmic arms, I = D [1 - c T + c T S / <S>_phi].

    Rendered on a grid `sub` times finer than the pixels (margin pixels around the stamp),
    convolved with the PSF drawn at that scale, then summed in sub x sub blocks: the pixel
    integral of the PSF-convolved profile. Returns (image, arms, pitch, arm fraction)."""
    import galsim
    from scipy.signal import fftconvolve
    m = int(rng.integers(2, 5))
    pitch = math.radians(rng.uniform(10.0, 30.0))
    frac = rng.uniform(0.2, 0.5)
    width_p = rng.uniform(1.0, 4.0)          # arm profile S = ((1 + cos(m psi)) / 2)^p
    h = r_e / 1.6783469900166605 / math.sqrt(q)   # major-axis scale length (circularised r_e)
    r_t = rng.uniform(0.4, 1.0) * h           # arms fade in as T = 1 - exp(-(R / r_t)^2)
    phase = rng.uniform(0.0, 2 * math.pi)
    winding = 1.0 if rng.uniform() < 0.5 else -1.0   # trailing arms either way on the sky
    n_sub = (SIZE + 2 * margin) * sub
    step = PIXSCALE / sub
    c0 = (n_sub - 1) / 2.0
    yy, xx = np.mgrid[0:n_sub, 0:n_sub].astype(np.float64)
    x = (xx - c0) * step - offset[0] * PIXSCALE
    y = (yy - c0) * step - offset[1] * PIXSCALE
    cp, sp = math.cos(pa), math.sin(pa)
    xd = x * cp + y * sp
    yd = (-x * sp + y * cp) / q
    R = np.hypot(xd, yd)
    phi = np.arctan2(yd, xd)
    D = np.exp(-R / h)
    T = 1.0 - np.exp(-(R / r_t) ** 2)
    psi = phi - winding * np.log(np.maximum(R, 1e-3 * h) / h) / math.tan(pitch) - phase
    S = ((1.0 + np.cos(m * psi)) / 2.0) ** width_p
    mean_S = math.gamma(width_p + 0.5) / (math.sqrt(math.pi) * math.gamma(width_p + 1.0))
    # c so that the arm term c T S/<S> D holds `frac` of the disk light: c = frac / <T>_D,
    # with <T>_D the disk-light-weighted mean of T (1-D integral over R); c <= 1 keeps I >= 0.
    rr = np.linspace(0, 40 * h, 40001)
    w = rr * np.exp(-rr / h)
    t_mean = float(np.sum(w * (1 - np.exp(-(rr / r_t) ** 2))) / np.sum(w))
    c = min(frac / t_mean, 1.0)
    frac = c * t_mean
    I = D * (1.0 - c * T + c * T * S / mean_S)
    norm = flux / (2 * math.pi * h * h * q)   # total of the untruncated disk (arms keep it)
    grid = I * norm * step * step
    half = int(math.ceil(3.0 * psf_fwhm_guess(psf) / step))
    kern = psf.drawImage(nx=2 * half + 1, ny=2 * half + 1, scale=step, method="no_pixel").array
    kern = kern / kern.sum()
    conv = fftconvolve(grid, kern, mode="same")
    conv = conv.reshape(n_sub // sub, sub, n_sub // sub, sub).sum(axis=(1, 3))
    return conv[margin:margin + SIZE, margin:margin + SIZE], m, math.degrees(pitch), frac


def psf_fwhm_guess(psf):
    try:
        return psf.calculateFWHM()
    except Exception:
        return 1.0


def make_morphology(rng, psf_mode, srng=None):
    """One cutout. With `srng` (a generator of its own) the cutout also gets one of
    SURROUNDINGS, uniformly: neighbours, the object's light truncated at 3-5 r_e (stars at
    1.5-3 FWHM), both, or none; EFFECT, NNEIGH and TRUNC_K record the draw."""
    import galsim
    label = int(rng.integers(0, 5))
    pp = draw_psf_params(rng, psf_mode)
    psf = make_psf(pp)
    sigma = rng.uniform(5.0, 15.0)
    offset = (rng.uniform(-2, 2), rng.uniform(-2, 2))
    truth = {}
    effect = SURROUNDINGS[int(srng.integers(0, 4))] if srng is not None else "none"
    trunc_k = srng.uniform(3.0, 5.0) if effect in ("truncated", "both") else 0.0
    if trunc_k > 0:
        truth["TRUNC_K"] = trunc_k
    if label == 4:
        mag = rng.uniform(16.0, 21.0)
        img = psf.withFlux(flux_of(mag)).drawImage(nx=SIZE, ny=SIZE, scale=PIXSCALE,
                                                    offset=offset).array.astype(np.float64)
        if trunc_k > 0:   # 3-5 maps to 1.5-3 FWHM
            img = cut_beyond(img, offset, (1.5 + 0.75 * (trunc_k - 3.0)) * pp["fwhm"] / PIXSCALE)
    else:
        mag = rng.uniform(17.0, 21.0)
        flux = flux_of(mag)
        pa = rng.uniform(0.0, math.pi)
        if label == 0:
            n, r_e, q = rng.uniform(3, 5), rng.uniform(0.5, 2.0), rng.uniform(0.6, 1.0)
            img = draw_gs(sersic(n, r_e, flux, q, pa, trunc_k=trunc_k), psf, offset)
            truth.update({"SERSIC_N": n, "R_E": r_e, "Q": q})
        elif label == 2:
            r_e, q = rng.uniform(1.0, 3.0), rng.uniform(0.10, 0.25)
            img = draw_gs(sersic(1.0, r_e, flux, q, pa, trunc_k=trunc_k), psf, offset)
            truth.update({"SERSIC_N": 1.0, "R_E": r_e, "Q": q})
        elif label == 1:
            r_e, q = rng.uniform(1.0, 3.0), rng.uniform(0.5, 1.0)
            bt = rng.uniform(0.0, 0.3)
            b_re, b_q = rng.uniform(0.2, 0.5), rng.uniform(max(q, 0.7), 1.0)
            disk, arms, pitch, frac = spiral_disk_image(rng, flux * (1 - bt), r_e, q, pa, psf, offset)
            img = disk
            if bt > 0:
                img = img + draw_gs(sersic(4.0, b_re, flux * bt, b_q, pa), psf, offset)
            if trunc_k > 0:
                img = cut_beyond(img, offset, trunc_k * r_e / math.sqrt(q) / PIXSCALE)
            truth.update({"R_E": r_e, "Q": q, "BT": bt, "ARMS": arms, "PITCH": pitch, "ARMFRAC": frac})
        else:
            k = int(rng.integers(2, 4))
            ns = rng.uniform(0.5, 2.0, k)
            res = rng.uniform(0.3, 1.5, k)
            qs = rng.uniform(0.3, 1.0, k)
            pas = rng.uniform(0.0, math.pi, k)
            mean_re = float(res.mean())
            pos = [np.zeros(2)]
            for _ in range(1, k):   # each new centre 0.5-2.5 mean r_e from a random earlier one
                base = pos[int(rng.integers(0, len(pos)))]
                d = rng.uniform(0.5, 2.5) * mean_re
                a = rng.uniform(0, 2 * math.pi)
                pos.append(base + d * np.array([math.cos(a), math.sin(a)]))
            n_clumps = int(rng.integers(0, 6))
            clump_f = rng.uniform(0.02, 0.08, n_clumps)
            w = rng.dirichlet(np.full(k, 2.0))
            comp_flux = flux * (1 - clump_f.sum()) * w
            centroid = sum(wi * p for wi, p in zip(w, pos))
            parts = []
            for i in range(k):
                parts.append(sersic(ns[i], res[i], comp_flux[i], qs[i], pas[i],
                                    tuple(pos[i] - centroid), trunc_k=trunc_k))
            for j in range(n_clumps):
                i = int(rng.integers(0, k))
                r = res[i] * math.sqrt(rng.uniform(0, 1.5 ** 2))
                a = rng.uniform(0, 2 * math.pi)
                at = pos[i] - centroid + r * np.array([math.cos(a), math.sin(a)])
                parts.append(galsim.Gaussian(sigma=rng.uniform(0.03, 0.12),
                                             flux=flux * clump_f[j]).shift(*at))
            img = draw_gs(galsim.Add(parts), psf, offset)
            truth.update({"NCOMP": k, "NCLUMPS": n_clumps})
    if effect in ("neighbours", "both"):
        light, count = neighbour_light(srng, psf, offset)
        img = img + light
        truth["NNEIGH"] = count
    if srng is not None:
        truth["EFFECT"] = effect
    data = add_noise(rng, img, sigma)
    header = {"PSF_FWHM": pp["fwhm"], "SKYSIG": sigma, "LABEL": label,
              "CLASS": MORPH_CLASSES[label], "MAG": mag,
              "OBJ_X": SIZE / 2 + 0.5 + offset[0], "OBJ_Y": SIZE / 2 + 0.5 + offset[1],
              "PSFTYPE": pp["type"], "PSFBETA": pp["beta"], "PSF_E": pp["e"]}
    header.update(truth)
    return data.astype(np.float32), label, header


OUTSIDE_KINDS = ["s0", "clumpy_spiral"]


def make_outside(rng, psf_mode):
    """A galaxy of none of the five classes (`--outside`): an S0 or a clumpy spiral."""
    import galsim
    kind = OUTSIDE_KINDS[int(rng.integers(0, 2))]
    pp = draw_psf_params(rng, psf_mode)
    psf = make_psf(pp)
    sigma = rng.uniform(5.0, 15.0)
    offset = (rng.uniform(-2, 2), rng.uniform(-2, 2))
    mag = rng.uniform(17.0, 21.0)
    flux = flux_of(mag)
    pa = rng.uniform(0.0, math.pi)
    r_e, q = rng.uniform(1.0, 3.0), rng.uniform(0.3 if kind == "s0" else 0.5, 1.0)
    truth = {"R_E": r_e, "Q": q}
    if kind == "s0":
        bt = rng.uniform(0.3, 0.7)
        b_n, b_re, b_q = rng.uniform(3, 5), rng.uniform(0.3, 1.0), rng.uniform(0.6, 1.0)
        img = draw_gs(galsim.Add([sersic(1.0, r_e, flux * (1 - bt), q, pa), sersic(b_n, b_re, flux * bt, b_q, pa)]),
                      psf, offset)
        truth.update({"BT": bt, "BULGE_N": b_n, "BULGE_RE": b_re})
    else:
        bt = rng.uniform(0.0, 0.3)
        n_clumps = int(rng.integers(3, 9))
        clump_f = rng.uniform(0.03, 0.08, n_clumps)
        disk_flux = flux * (1 - bt) * (1 - clump_f.sum())
        img, arms, pitch, frac = spiral_disk_image(rng, disk_flux, r_e, q, pa, psf, offset)
        parts = [galsim.Gaussian(sigma=rng.uniform(0.05, 0.15), flux=flux * f).shift(
                     *_disk_point(rng, r_e, q, pa)) for f in clump_f]
        if bt > 0:
            parts.append(sersic(4.0, rng.uniform(0.2, 0.5), flux * bt, rng.uniform(max(q, 0.7), 1.0), pa))
        img = img + draw_gs(galsim.Add(parts), psf, offset)
        truth.update({"BT": bt, "ARMS": arms, "NCLUMPS": n_clumps})
    data = add_noise(rng, img, sigma)
    header = {"PSF_FWHM": pp["fwhm"], "SKYSIG": sigma, "KIND": kind, "MAG": mag,
              "OBJ_X": SIZE / 2 + 0.5 + offset[0], "OBJ_Y": SIZE / 2 + 0.5 + offset[1],
              "PSFTYPE": pp["type"], "PSFBETA": pp["beta"], "PSF_E": pp["e"]}
    header.update(truth)
    return data.astype(np.float32), kind, header


def _disk_point(rng, r_e, q, pa):
    """A point of an exponential disk of half-light radius r_e (arcsec), axis ratio q, angle pa."""
    h = r_e / 1.6783469900166605
    r = rng.gamma(2.0, h)            # radius drawn with the disk's light, r e^(-r/h)
    a = rng.uniform(0, 2 * math.pi)
    x, y = r * math.cos(a), r * math.sin(a) * q
    return (x * math.cos(pa) - y * math.sin(pa), x * math.sin(pa) + y * math.cos(pa))


# ---------------------------------------------------------------- lens
def e1e2(q, angle):
    e = (1 - q) / (1 + q)
    return e * math.cos(2 * angle), e * math.sin(2 * angle)


def lensed_source(lens_xy, theta_e, mass_q, mass_pa, g1, g2, src, fluxes, psfs, sub=5):
    """Per band the lensed Sersic source: lenstronomy ray shooting and surface brightness on
    a grid `sub` times finer than the pixels, convolved with each band's PSF (GalSim,
    drawn at the fine scale), summed over sub x sub blocks."""
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel
    from scipy.signal import fftconvolve
    from scipy.special import gammaincinv, gamma
    margin = 8
    n_sub = (SIZE + 2 * margin) * sub
    step = PIXSCALE / sub
    c0 = (n_sub - 1) / 2.0
    yy, xx = np.mgrid[0:n_sub, 0:n_sub].astype(np.float64)
    x = ((xx - c0) * step).ravel()
    y = ((yy - c0) * step).ravel()
    me1, me2 = e1e2(mass_q, mass_pa)
    lens = LensModel(["SIE", "SHEAR"])
    kw = [{"theta_E": theta_e, "e1": me1, "e2": me2, "center_x": lens_xy[0], "center_y": lens_xy[1]},
          {"gamma1": g1, "gamma2": g2, "ra_0": lens_xy[0], "dec_0": lens_xy[1]}]
    bx, by = lens.ray_shooting(x, y, kw)
    light = LightModel(["SERSIC_ELLIPSE"])
    n, r_e = 1.0, src["r_e"]
    b = gammaincinv(2 * n, 0.5)
    unit = 2 * math.pi * n * math.exp(b) * b ** (-2 * n) * gamma(2 * n) * r_e ** 2
    se1, se2 = e1e2(src["q"], src["pa"])
    sb = light.surface_brightness(bx, by, [{"amp": 1.0 / unit, "R_sersic": r_e, "n_sersic": n,
                                            "e1": se1, "e2": se2, "center_x": src["x"],
                                            "center_y": src["y"]}]).reshape(n_sub, n_sub)
    sb = sb * step * step  # flux per fine pixel for a unit-flux source
    out = []
    for f, psf in zip(fluxes, psfs):
        half = int(math.ceil(3.0 * psf_fwhm_guess(psf) / step))
        kern = psf.drawImage(nx=2 * half + 1, ny=2 * half + 1, scale=step, method="no_pixel").array
        kern = kern / kern.sum()
        conv = fftconvolve(sb * f, kern, mode="same")
        conv = conv.reshape(n_sub // sub, sub, n_sub // sub, sub).sum(axis=(1, 3))
        out.append(conv[margin:margin + SIZE, margin:margin + SIZE])
    return out


def make_lens(rng, psf_mode):
    label = int(rng.integers(0, 2))
    pps = [draw_psf_params(rng, psf_mode) for _ in range(3)]
    psfs = [make_psf(p) for p in pps]
    sigmas = rng.uniform(5.0, 15.0, 3)
    offset = (rng.uniform(-2, 2), rng.uniform(-2, 2))
    lens_xy = (offset[0] * PIXSCALE, offset[1] * PIXSCALE)
    # lens light
    l_i = rng.uniform(18.0, 20.0)
    l_gr, l_ri = rng.uniform(0.7, 0.9), rng.uniform(0.3, 0.5)
    l_r = l_i + l_ri
    l_mags = [l_r + l_gr, l_r, l_i]
    l_re, l_q, l_pa = rng.uniform(0.8, 1.6), rng.uniform(0.6, 1.0), rng.uniform(0, math.pi)
    bands = [draw_gs(sersic(4.0, l_re, flux_of(m), l_q, l_pa), psf, offset)
             for m, psf in zip(l_mags, psfs)]
    # background source population (lensed source or companion)
    s_g = rng.uniform(21.0, 24.0)
    s_gr, s_ri = rng.uniform(0.1, 0.3), rng.uniform(0.0, 0.2)
    s_mags = [s_g, s_g - s_gr, s_g - s_gr - s_ri]
    s_q, s_pa = rng.uniform(0.4, 1.0), rng.uniform(0, math.pi)
    header = {}
    companion = False
    if label == 1:
        theta_e = rng.uniform(0.8, 2.5)
        mass_q, mass_pa = rng.uniform(0.6, 1.0), rng.uniform(0, math.pi)
        g, ga = rng.uniform(0.0, 0.05), rng.uniform(0, math.pi)
        g1, g2 = g * math.cos(2 * ga), g * math.sin(2 * ga)
        rad = 0.5 * theta_e * math.sqrt(rng.uniform())
        a = rng.uniform(0, 2 * math.pi)
        src = {"r_e": rng.uniform(0.1, 0.4), "q": s_q, "pa": s_pa,
               "x": lens_xy[0] + rad * math.cos(a), "y": lens_xy[1] + rad * math.sin(a)}
        arcs = lensed_source(lens_xy, theta_e, mass_q, mass_pa, g1, g2, src,
                             [flux_of(m) for m in s_mags], psfs)
        bands = [b + s for b, s in zip(bands, arcs)]
        header.update({"THETA_E": theta_e, "MASS_Q": mass_q, "SHEAR": g, "SRC_RE": src["r_e"],
                       "SRC_MAGG": s_g})
    elif rng.uniform() < 0.5:
        companion = True
        c_re = rng.uniform(0.2, 0.6)
        sep = rng.uniform(2.0, 4.0)
        a = rng.uniform(0, 2 * math.pi)
        shift = (sep * math.cos(a), sep * math.sin(a))
        bands = [b + draw_gs(sersic(1.0, c_re, flux_of(m), s_q, s_pa, shift), psf, offset)
                 for b, m, psf in zip(bands, s_mags, psfs)]
        header.update({"COMP_RE": c_re, "COMP_SEP": sep, "SRC_MAGG": s_g})
    cube = np.stack([add_noise(rng, b, s) for b, s in zip(bands, sigmas)])
    header.update({"PSF_FWHM": float(np.mean([p["fwhm"] for p in pps])),
                   "SKYSIG": float(np.mean(sigmas)), "BANDS": "g,r,i",
                   "FWHM_G": pps[0]["fwhm"], "FWHM_R": pps[1]["fwhm"], "FWHM_I": pps[2]["fwhm"],
                   "SKYSIG_G": sigmas[0], "SKYSIG_R": sigmas[1], "SKYSIG_I": sigmas[2],
                   "LABEL": label, "CLASS": LENS_CLASSES[label], "LENS_MAG": l_i,
                   "LENS_RE": l_re, "LENS_Q": l_q, "COMPANIO": companion,
                   "OBJ_X": SIZE / 2 + 0.5 + offset[0], "OBJ_Y": SIZE / 2 + 0.5 + offset[1],
                   "PSFTYPE": pps[0]["type"]})
    for p, bname in zip(pps, "GRI"):
        header[f"PSFBETA{bname}"] = p["beta"]
        header[f"PSF_E_{bname}"] = p["e"]
        header[f"PSFTYP_{bname}"] = p["type"]
    return cube.astype(np.float32), label, header


# ---------------------------------------------------------------- segmentation
SEG_SIZE = 256
SEG_STAMP = 160  # px: each source is drawn on a 32" stamp about its centre, clipped to the map


def make_segmentation(rng, psf_mode):
    """A 256 x 256 map of 10-60 sources (30 % stars) and its per-pixel class map: a pixel
    belongs to the source whose noiseless PSF-convolved flux there is largest among those
    above 1 SKYSIG."""
    pp = draw_psf_params(rng, psf_mode)
    psf = make_psf(pp)
    sigma = rng.uniform(5.0, 15.0)
    n_src = int(rng.integers(10, 61))
    model = np.zeros((SEG_SIZE, SEG_SIZE))
    best = np.zeros((SEG_SIZE, SEG_SIZE))
    truth = np.zeros((SEG_SIZE, SEG_SIZE), dtype=np.uint8)
    n_star = 0
    half = SEG_STAMP // 2
    for _ in range(n_src):
        x, y = rng.uniform(0, SEG_SIZE, 2)
        star = rng.uniform() < 0.3
        if star:
            n_star += 1
            prof = psf.withFlux(flux_of(rng.uniform(16.0, 22.0)))
        else:
            prof = galsim_convolve(sersic(rng.uniform(0.5, 5.0), rng.uniform(0.3, 2.0),
                                          flux_of(rng.uniform(17.0, 23.0)), rng.uniform(0.3, 1.0),
                                          rng.uniform(0, math.pi)), psf)
        ix, iy = int(math.floor(x)), int(math.floor(y))
        stamp = prof.drawImage(nx=SEG_STAMP, ny=SEG_STAMP, scale=PIXSCALE,
                               offset=(x - ix - 0.5, y - iy - 0.5)).array.astype(np.float64)
        x0, y0 = ix - half, iy - half
        sx0, sy0 = max(0, -x0), max(0, -y0)
        mx0, my0 = max(0, x0), max(0, y0)
        mx1, my1 = min(SEG_SIZE, x0 + SEG_STAMP), min(SEG_SIZE, y0 + SEG_STAMP)
        if mx1 <= mx0 or my1 <= my0:
            continue
        part = stamp[sy0:sy0 + (my1 - my0), sx0:sx0 + (mx1 - mx0)]
        model[my0:my1, mx0:mx1] += part
        win = (part > sigma) & (part > best[my0:my1, mx0:mx1])
        best[my0:my1, mx0:mx1][win] = part[win]
        truth[my0:my1, mx0:mx1][win] = 1 if star else 2
    data = add_noise(rng, model, sigma)
    header = {"PSF_FWHM": pp["fwhm"], "SKYSIG": sigma, "NSOURCE": n_src, "NSTAR": n_star,
              "NGALAXY": n_src - n_star, "TRUTHLEV": 1.0,
              "PSFTYPE": pp["type"], "PSFBETA": pp["beta"], "PSF_E": pp["e"]}
    return data.astype(np.float32), truth, header


# ---------------------------------------------------------------- regression
def make_regression(rng, psf_mode, srng=None):
    """TASKS.md task 4: one Sersic galaxy, every parameter uniform over its range. With `srng`
    (a generator of its own, so the galaxies are those of the set without it) 1-3 neighbours
    are added (`neighbour_light`; no truncation: a cut galaxy's magnitude has no single truth);
    NNEIGH records how many."""
    n, r_e, q, mag = rng.uniform(0.5, 6.0), rng.uniform(0.3, 3.0), rng.uniform(0.2, 1.0), rng.uniform(17.0, 22.0)
    pa = rng.uniform(0.0, math.pi)
    offset = (rng.uniform(-2, 2), rng.uniform(-2, 2))
    pp = draw_psf_params(rng, psf_mode)
    sigma = rng.uniform(5.0, 15.0)
    model = draw_gs(sersic(n, r_e, flux_of(mag), q, pa), make_psf(pp), offset)
    neighbours = 0
    if srng is not None:
        light, neighbours = neighbour_light(srng, make_psf(pp), offset)
        model = model + light
    data = add_noise(rng, model, sigma)
    header = {"PSF_FWHM": pp["fwhm"], "SKYSIG": sigma, "SERSIC_N": n, "R_E": r_e, "Q": q, "MAG": mag,
              "PA": math.degrees(pa), "XOFF": offset[0], "YOFF": offset[1],
              "PSFTYPE": pp["type"], "PSFBETA": pp["beta"], "PSF_E": pp["e"], "NNEIGH": neighbours}
    return data.astype(np.float32), (n, r_e, q, mag), header


def make_deblend(rng):
    """TASKS.md task 6: a central Sersic galaxy (n [0.5, 6], r_e [0.3, 2]", q [0.3, 1], m [18, 21],
    centred within +-2 px) and 1 or 2 neighbours at 1-5" in a uniform direction, each a star
    (m [16, 22]) with probability 0.2, else a Sersic galaxy of the central's population with
    m [17.5, 22.5]. Returns the blend, the central alone (noiseless, PSF-convolved) and the header."""
    import galsim
    offset = (rng.uniform(-2, 2), rng.uniform(-2, 2))
    fwhm, sigma = rng.uniform(0.6, 1.0), rng.uniform(5.0, 15.0)
    psf = galsim.Gaussian(fwhm=fwhm)

    def galaxy(mag_lo, mag_hi, shift):
        n, r_e, q = rng.uniform(0.5, 6.0), rng.uniform(0.3, 2.0), rng.uniform(0.3, 1.0)
        mag, pa = rng.uniform(mag_lo, mag_hi), rng.uniform(0.0, math.pi)
        return sersic(n, r_e, flux_of(mag), q, pa, shift), (n, r_e, q, mag, pa)

    central, (n, r_e, q, mag, pa) = galaxy(18.0, 21.0, (0.0, 0.0))
    truth = draw_gs(central, psf, offset)
    model = truth.copy()
    count = 1 if rng.uniform() < 0.5 else 2
    header = {"PSF_FWHM": fwhm, "SKYSIG": sigma, "SERSIC_N": n, "R_E": r_e, "Q": q, "MAG": mag,
              "PA": math.degrees(pa), "NNEIGH": count, "PSFTYPE": "gaussian",
              "OBJ_X": (SIZE + 1) / 2 + offset[0], "OBJ_Y": (SIZE + 1) / 2 + offset[1]}
    for k in range(1, count + 1):
        distance, direction = rng.uniform(1.0, 5.0), rng.uniform(0.0, 2 * math.pi)
        shift = (distance * math.cos(direction), distance * math.sin(direction))
        if rng.uniform() < 0.2:
            nmag = rng.uniform(16.0, 22.0)
            light = draw_gs(galsim.DeltaFunction(flux=flux_of(nmag)).shift(*shift), psf, offset)
            header[f"NB{k}_TYP"] = "star"
        else:
            profile, (nn, nre, _, nmag, _) = galaxy(17.5, 22.5, shift)
            light = draw_gs(profile, psf, offset)
            header.update({f"NB{k}_TYP": "galaxy", f"NB{k}_N": nn, f"NB{k}_RE": nre})
        header.update({f"NB{k}_MAG": nmag, f"NB{k}_X": header["OBJ_X"] + shift[0] / PIXSCALE,
                       f"NB{k}_Y": header["OBJ_Y"] + shift[1] / PIXSCALE})
        model += light
    return add_noise(rng, model, sigma).astype(np.float32), truth.astype(np.float32), (n, r_e, q, mag, count), header


def galsim_convolve(profile, psf):
    import galsim
    return galsim.Convolve(profile, psf, gsparams=gsparams())


# ---------------------------------------------------------------- files
def write_fits(path, data, header, task, seed, index, psf_mode, truth=None):
    from astropy.io import fits
    hdu = fits.PrimaryHDU(data)
    h = hdu.header
    h["TASK"] = (task, "TASKS.md task")
    h["SIMULATR"] = ("independent_sim.py (GalSim, lenstronomy)", "generator")
    h["SIMSEED"] = (str(seed), "data set seed")
    h["SIMINDEX"] = (index, "image index in the data set")
    h["PSFMODE"] = (psf_mode, "gaussian (TASKS.md) or varied PSFs")
    h["PIXSCALE"] = (PIXSCALE, "pixel scale [arcsec/pixel]")
    h["GAIN"] = (1.0, "gain [e-/ADU]")
    h["MAGZERO"] = (MAGZERO, "magnitude zero point")
    h["BUNIT"] = ("count", "sky-subtracted counts (ADU)")
    for k, v in header.items():
        h[k] = float(v) if isinstance(v, (np.floating,)) else (int(v) if isinstance(v, np.integer) else v)
    hdus = [hdu]
    if truth is not None:
        t = fits.ImageHDU(truth, name="TRUTH")
        if task == "segmentation":
            t.header["CLASSES"] = ("0 background, 1 star, 2 galaxy", "pixel codes")
        else:
            t.header["BUNIT"] = ("count", "central galaxy alone, noiseless, PSF-convolved")
        hdus.append(t)
    tmp = path + ".tmp"
    fits.HDUList(hdus).writeto(tmp, overwrite=True)
    os.replace(tmp, path)


def make_one(args):
    task, seed, index, psf_mode, out, surroundings = args
    rng = np.random.default_rng([seed, TASK_IDS[task], index])
    name = f"{task}_{index:06d}.fits"
    if task == "segmentation":
        data, truth, header = make_segmentation(rng, psf_mode)
        write_fits(os.path.join(out, name), data, header, task, seed, index, psf_mode, truth)
        return name, None
    if task == "regression":
        srng = np.random.default_rng([seed, TASK_IDS[task], index, 7]) if surroundings else None
        data, truth, header = make_regression(rng, psf_mode, srng)
        write_fits(os.path.join(out, name), data, header, task, seed, index, psf_mode)
        return (name,) + tuple(f"{v:.6f}" for v in truth)
    if task == "deblend":
        data, truth, values, header = make_deblend(rng)
        write_fits(os.path.join(out, name), data, header, task, seed, index, psf_mode, truth)
        return (name,) + tuple(f"{v:.6f}" for v in values[:4]) + (str(values[4]),)
    if task == "morphology" and surroundings == "outside":
        data, kind, header = make_outside(np.random.default_rng([seed, TASK_IDS[task], index, 11]), psf_mode)
        write_fits(os.path.join(out, name), data, header, task, seed, index, psf_mode)
        return name, kind
    if task == "morphology":
        srng = np.random.default_rng([seed, TASK_IDS[task], index, 7]) if surroundings else None
        data, label, header = make_morphology(rng, psf_mode, srng)
    else:
        data, label, header = make_lens(rng, psf_mode)
    write_fits(os.path.join(out, name), data, header, task, seed, index, psf_mode)
    return name, label


# ---------------------------------------------------------------- scoring
def score(data_dir, predictions, by=("PSFTYPE", "EFFECT")):
    """Metrics of a pipeline's predictions CSV against the data set's catalog, with binomial
    standard errors, per class and per value of the header keys in `by` (any data set in the
    TASKS.md layout: ours or this script's)."""
    from astropy.io import fits
    truth = {}
    with open(os.path.join(data_dir, "catalog.csv")) as f:
        for r in csv.DictReader(f):
            truth[r["file"]] = int(r["label"])
    with open(predictions) as f:
        preds = list(csv.DictReader(f))
    files = [r["file"] for r in preds]
    y = np.array([truth[f] for f in files])
    heads = [fits.getheader(os.path.join(data_dir, f)) for f in files]
    lens = "p_lens" in preds[0]

    def se(p, n):
        return math.sqrt(max(p * (1 - p), 0.0) / n) if n else float("nan")

    if not lens:
        names = MORPH_CLASSES
        yp = np.array([names.index(r["predicted"]) for r in preds])
        ok = y == yp
        acc = ok.mean()
        f1s = []
        for c in range(5):
            tp = np.sum((yp == c) & (y == c))
            prec = tp / max(np.sum(yp == c), 1)
            rec = tp / max(np.sum(y == c), 1)
            f1s.append(2 * prec * rec / max(prec + rec, 1e-12))
        print(f"files {len(y)}: accuracy {acc:.4f} +- {se(acc, len(y)):.4f}, macro-F1 {np.mean(f1s):.4f}")
        for c, nm in enumerate(names):
            m = y == c
            wrong = np.bincount(yp[m & ~ok], minlength=5)
            to = ", ".join(f"{names[k]} {wrong[k]}" for k in range(5) if wrong[k])
            print(f"  {nm:11s} {ok[m].sum():4d}/{m.sum():4d} = {ok[m].mean():.3f} +- {se(ok[m].mean(), m.sum()):.3f}"
                  f"  F1 {f1s[c]:.3f}" + (f"  (as {to})" if to else ""))
        for key in by:
            vals = [str(h.get(key, "-")) for h in heads]
            for v in sorted(set(vals)):
                m = np.array([x == v for x in vals])
                print(f"  {key}={v}: {ok[m].sum()}/{m.sum()} = {ok[m].mean():.3f} +- {se(ok[m].mean(), m.sum()):.3f}")
        types = np.array([str(h.get("PSFTYPE", "-")) for h in heads])
        ell = np.array([float(h.get("PSF_E", 0.0)) > 0 for h in heads])
        if len(set(types)) > 1 or ell.any():
            for c, nm in enumerate(names):
                cells = []
                for t in sorted(set(types)):
                    for e, en in ((False, "round"), (True, "elliptical")):
                        m = (y == c) & (types == t) & (ell == e)
                        cells.append(f"{t} {en} {ok[m].sum()}/{m.sum()}")
                print(f"  {nm:11s} by PSF: " + ", ".join(cells))
            beta = np.array([float(h.get("PSFBETA", 0.0)) for h in heads])
            mag = np.array([float(h.get("MAG", 0.0)) for h in heads])
            for nm, sel in (("stars", y == 4), ("galaxies", y < 4)):
                m = sel & (types == "moffat")
                cells = [f"beta [{lo:g}, {hi:g}) {ok[m & (beta >= lo) & (beta < hi)].sum()}/{(m & (beta >= lo) & (beta < hi)).sum()}"
                         for lo, hi in ((2.5, 3.5), (3.5, 4.5), (4.5, 6.01))]
                print(f"  Moffat {nm}: " + ", ".join(cells))
            m = (y == 4) & (types == "moffat")
            cells = [f"m [{lo:g}, {hi:g}) {ok[m & (mag >= lo) & (mag < hi)].sum()}/{(m & (mag >= lo) & (mag < hi)).sum()}"
                     for lo, hi in ((16, 17.5), (17.5, 19), (19, 21.01))]
            print("  Moffat stars by magnitude: " + ", ".join(cells))
        for key, edges in (("SKYSIG", (5, 8.33, 11.67, 15.01)), ("PSF_FWHM", (0.6, 0.733, 0.867, 1.001))):
            v = np.array([float(h[key]) for h in heads])
            for lo, hi in zip(edges[:-1], edges[1:]):
                m = (v >= lo) & (v < hi)
                print(f"  {key} [{lo:g}, {hi:g}): {ok[m].sum()}/{m.sum()} = {ok[m].mean():.3f}")
        return
    p = np.array([float(r["p_lens"]) for r in preds])
    pos, neg = p[y == 1], p[y == 0]
    order = np.sort(neg)
    auc = (np.sum(pos[:, None] > neg[None, :]) + 0.5 * np.sum(pos[:, None] == neg[None, :])) / (len(pos) * len(neg))
    # threshold: the smallest score with at most 1 % of negatives above it
    k = int(math.floor(0.01 * len(neg)))
    thr = order[len(neg) - k - 1]
    tpr = float(np.mean(pos > thr))
    fpr = float(np.mean(neg > thr))
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)   # Hanley & McNeil (1982) standard error
    auc_se = math.sqrt((auc * (1 - auc) + (len(pos) - 1) * (q1 - auc * auc)
                        + (len(neg) - 1) * (q2 - auc * auc)) / (len(pos) * len(neg)))
    print(f"files {len(y)} ({len(pos)} lenses, {len(neg)} non-lenses): ROC AUC {auc:.4f} +- {auc_se:.4f}, "
          f"TPR {tpr:.4f} +- {se(tpr, len(pos)):.4f} at FPR {fpr:.4f} (threshold p_lens > {thr:.4g})")
    comp = np.array([bool(h.get("COMPANIO", False)) for h in heads])
    for nm, m in (("lens alone", (y == 0) & ~comp), ("with companion", (y == 0) & comp)):
        print(f"  non-lens {nm}: {np.sum(p[m] > thr)}/{m.sum()} above the threshold")
    miss = (y == 1) & (p <= thr)
    for key in ("THETA_E", "SRC_MAGG", "SRC_RE"):
        v = np.array([float(h.get(key, np.nan)) for h in heads])
        print(f"  missed lenses: median {key} {np.nanmedian(v[miss]) if miss.any() else float('nan'):.3g}"
              f" (all lenses {np.nanmedian(v[y == 1]):.3g})")
    for key in by:
        vals = np.array([str(h.get(key, "-")) for h in heads])
        for v in sorted(set(vals)):
            m = (vals == v) & (y == 1)
            print(f"  lenses {key}={v}: TPR {np.mean(p[m] > thr):.3f} ({np.sum(p[m] > thr)}/{m.sum()});"
                  f" non-lenses above threshold {np.sum(p[(vals == v) & (y == 0)] > thr)}/{np.sum((vals == v) & (y == 0))}")


def contact_sheet(data_dir, png, per_class=6, predictions=None):
    """The first `per_class` images of each class of a data set (asinh stretch at 2 SKYSIG; lens
    cubes as i, r, g -> red, green, blue); titles give the class, the PSF type and EFFECT, and
    with a classify pipeline's `predictions` CSV the predicted class and its probability."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.io import fits
    with open(os.path.join(data_dir, "catalog.csv")) as f:
        rows = [(r["file"], int(r["label"])) for r in csv.DictReader(f)]
    labels = sorted({l for _, l in rows})
    predicted = {}
    if predictions:
        with open(predictions) as f:
            for r in csv.DictReader(f):
                if "predicted" in r:
                    predicted[r["file"]] = (r["predicted"], float(r.get("p_" + r["predicted"], "nan")))
    fig, ax = plt.subplots(len(labels), per_class, figsize=(1.5 * per_class, 1.6 * len(labels)),
                           squeeze=False)
    for i, c in enumerate(labels):
        for j, name in enumerate([n for n, l in rows if l == c][:per_class]):
            with fits.open(os.path.join(data_dir, name)) as h:
                data, hd = h[0].data.astype(np.float64), h[0].header
            x = np.arcsinh(data / (2 * hd["SKYSIG"]))
            if x.ndim == 3:
                x = np.clip(np.stack([x[2], x[1], x[0]], -1) / max(np.percentile(x, 99.5), 1e-9), 0, 1)
                ax[i, j].imshow(x, origin="lower")
            else:
                ax[i, j].imshow(x, origin="lower", cmap="gray")
            title = f"{hd['CLASS']} {hd.get('PSFTYPE', '')} {hd.get('EFFECT', '')}".strip()
            if name in predicted:
                title += "\n-> %s %.2f" % predicted[name]
            ax[i, j].set_title(title, fontsize=7)
        for j in range(per_class):
            ax[i, j].axis("off")
    fig.tight_layout()
    fig.savefig(png, dpi=70)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=sorted(TASK_IDS))
    ap.add_argument("--score", metavar="PREDICTIONS_CSV",
                    help="instead of generating: score a pipeline's predictions against --out's catalog "
                         "(with --sheet: show them on the sheet)")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--psf", choices=["gaussian", "varied"], default="gaussian")
    ap.add_argument("--surroundings", action="store_true",
                    help="morphology: give each cutout neighbours, truncated light, both or none "
                         "(uniformly; EFFECT records which), as real cutouts have and TASKS.md's do not; "
                         "regression: 1-3 neighbours for every galaxy (NNEIGH)")
    ap.add_argument("--outside", action="store_true",
                    help="morphology: galaxies of none of the five classes (S0s, clumpy spirals; KIND records which)")
    ap.add_argument("--sheet", metavar="PNG", help="instead of generating: contact sheet of --out")
    ap.add_argument("--out", required=True, help="output folder (FITS files + catalog.csv)")
    ap.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    a = ap.parse_args(argv)
    if a.sheet:   # with --score: the sheet shows those predictions
        contact_sheet(a.out, a.sheet, predictions=a.score)
        return
    if a.score:
        score(a.out, a.score)
        return
    if not a.task:
        ap.error("--task is required when generating")
    os.makedirs(a.out, exist_ok=True)
    if a.surroundings and a.task not in ("morphology", "regression"):
        ap.error("--surroundings is for --task morphology or regression")
    if a.outside and (a.task != "morphology" or a.surroundings):
        ap.error("--outside is for --task morphology, without --surroundings")
    jobs = [(a.task, a.seed, i, a.psf, a.out, "outside" if a.outside else a.surroundings) for i in range(a.count)]
    rows = []
    start = time.time()

    def progress(done):
        el = time.time() - start
        eta = el / done * (a.count - done) if done else 0
        print(f"\r{a.task}: {done}/{a.count} files, {el:.0f} s, ETA {eta:.0f} s", end="",
              file=sys.stderr, flush=True)

    if a.workers > 1:
        from multiprocessing import Pool
        with Pool(a.workers) as pool:
            for k, r in enumerate(pool.imap(make_one, jobs, chunksize=4)):
                rows.append(r)
                if (k + 1) % 10 == 0 or k + 1 == a.count:
                    progress(k + 1)
    else:
        for k, job in enumerate(jobs):
            rows.append(make_one(job))
            if (k + 1) % 10 == 0 or k + 1 == a.count:
                progress(k + 1)
    print(file=sys.stderr)
    with open(os.path.join(a.out, "catalog.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        if a.task == "segmentation":
            w.writerow(["file"])
            w.writerows([[r[0]] for r in rows])
        elif a.task == "regression":
            w.writerow(["file", "sersic_n", "r_e", "q", "mag"])
            w.writerows(rows)
        elif a.task == "deblend":
            w.writerow(["file", "sersic_n", "r_e", "q", "mag", "nneigh"])
            w.writerows(rows)
        elif a.outside:
            w.writerow(["file", "kind"])
            w.writerows(rows)
        else:
            w.writerow(["file", "label"])
            w.writerows(rows)
    if a.outside:
        print(f"wrote {a.count} galaxies of no TASKS.md class and catalog.csv to {a.out}", file=sys.stderr)
        return
    if a.task in ("segmentation", "regression", "deblend"):
        what = {"segmentation": "maps", "regression": "galaxies", "deblend": "blends"}[a.task]
        print(f"wrote {a.count} {what} and catalog.csv to {a.out}", file=sys.stderr)
        return
    counts = np.bincount([r[1] for r in rows], minlength=5 if a.task == "morphology" else 2)
    names = MORPH_CLASSES if a.task == "morphology" else LENS_CLASSES
    print(f"wrote {a.count} files and catalog.csv to {a.out}; per class: "
          + ", ".join(f"{n} {c}" for n, c in zip(names, counts)), file=sys.stderr)


if __name__ == "__main__":
    main()
