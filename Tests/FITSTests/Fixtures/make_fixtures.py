#!/usr/bin/env python3
"""Reference FITS fixtures for Tests/FITSTests, written and read back by astropy.

Usage:
    python3 Tests/FITSTests/Fixtures/make_fixtures.py            # (re)write the fixtures
    python3 Tests/FITSTests/Fixtures/make_fixtures.py --check DIR [--report FILE]
        # read the files the Swift round-trip test wrote into DIR (described by
        # DIR/manifest.json) with astropy and compare data and keywords.

The fixtures are small (the folder stays well under 1 MB) and deterministic (seeded).
expected.json holds, per file and HDU, what astropy reads: the HDU layout, every pixel
value after scaling (null for NaN/BLANK, flattened in FITS order: NAXIS1 fastest),
and selected header values. The Swift tests compare their reads with it.
"""
import gzip
import json
import os
import platform
import sys

import numpy as np
import astropy
from astropy.io import fits

HERE = os.path.dirname(os.path.abspath(__file__))
VERSIONS = {"astropy": astropy.__version__, "numpy": np.__version__, "python": platform.python_version()}


def pixels(data):
    """FITS-order list of floats, None for NaN."""
    flat = np.asarray(data, dtype=np.float64).ravel()  # C order == FITS order (NAXIS1 fastest)
    return [None if np.isnan(v) else float(v) for v in flat]


def describe(path):
    """What astropy reads from every HDU of `path`."""
    out = []
    with fits.open(path) as hdul:
        for index, hdu in enumerate(hdul):
            entry = {"index": index, "extname": hdu.name,
                     "type": "image" if hdu.is_image else "bintable"}
            # Keywords before the data are touched: astropy rewrites BITPIX/BSCALE on scaling.
            keys = {}
            for card in hdu.header.cards:
                if card.keyword in ("COMMENT", "HISTORY", ""):
                    continue
                value = card.value
                if isinstance(value, (bool, np.bool_)):
                    keys[card.keyword] = bool(value)
                elif isinstance(value, (int, float, str)):
                    keys[card.keyword] = value
            if hdu.is_image:
                header = hdu.header
                entry["bitpix"] = int(header["BITPIX"])
                entry["naxis"] = [int(header["NAXIS%d" % (i + 1)]) for i in range(header["NAXIS"])]
                entry["compression"] = (hdu.compression_type if isinstance(hdu, fits.CompImageHDU)
                                        else None)
                if hdu.data is not None:
                    data = np.asarray(hdu.data, dtype=np.float64)
                    entry["data"] = pixels(data)
                    finite = data[np.isfinite(data)]
                    entry["stats"] = {"min": float(finite.min()), "max": float(finite.max()),
                                      "mean": float(finite.mean()), "std": float(finite.std()),
                                      "blank": int(np.isnan(data).sum())}
            else:
                entry["columns"] = {c.name: [v.strip() if isinstance(v, str) else float(v)
                                             for v in hdu.data[c.name].tolist()] for c in hdu.columns}
            entry["header"] = keys
            entry["comments"] = [str(c) for c in hdu.header.get("COMMENT", [])]
            entry["history"] = [str(c) for c in hdu.header.get("HISTORY", [])]
            out.append(entry)
    return out


def ramp(shape, dtype, scale=1.0, offset=0.0, seed=0):
    rng = np.random.default_rng(seed)
    count = int(np.prod(shape))
    values = (np.arange(count) * scale + offset + rng.integers(0, 5, count)).reshape(shape)
    return values.astype(dtype)


def write(name, hdul):
    hdul.writeto(os.path.join(HERE, name), overwrite=True, checksum=False)


def make():
    rng = np.random.default_rng(42)
    shape = (12, 20)  # numpy (NAXIS2, NAXIS1): 20 x 12 images
    files = {}

    # Every BITPIX, unscaled.
    write("bitpix8.fits", fits.HDUList([fits.PrimaryHDU(ramp(shape, np.uint8))]))
    write("bitpix16.fits", fits.HDUList([fits.PrimaryHDU(ramp(shape, np.int16, 37.0, -4000))]))
    write("bitpix32.fits", fits.HDUList([fits.PrimaryHDU(ramp(shape, np.int32, 12345.0, -1_000_000))]))
    write("bitpix64.fits", fits.HDUList([fits.PrimaryHDU(ramp(shape, np.int64, 1001.0, -50_000))]))
    f32 = rng.normal(10, 3, shape).astype(np.float32)
    f32[3, 4] = np.nan
    write("bitpix-32.fits", fits.HDUList([fits.PrimaryHDU(f32)]))
    write("bitpix-64.fits", fits.HDUList([fits.PrimaryHDU(rng.normal(-2, 0.5, shape))]))

    # Scaled integers: BSCALE/BZERO with BLANK, and the unsigned convention.
    raw = ramp(shape, np.int16, 11.0, -1200)
    raw[0, 0] = raw[5, 7] = -999
    scaled = fits.PrimaryHDU(raw)
    scaled.header["BSCALE"] = 0.25
    scaled.header["BZERO"] = 100.0
    scaled.header["BLANK"] = -999
    write("scaled_int16.fits", fits.HDUList([scaled]))
    write("uint16.fits", fits.HDUList([fits.PrimaryHDU(ramp(shape, np.uint16, 200.0, 30000))]))

    # Multi-extension file with EXTNAMEs and a catalog table.
    primary = fits.PrimaryHDU()
    primary.header["OBSERVER"] = "Astrolabe"
    sci = fits.ImageHDU(rng.normal(100, 10, shape).astype(np.float32), name="SCI")
    err = fits.ImageHDU(np.full(shape, 2.5, np.float32), name="ERR")
    cat = fits.BinTableHDU.from_columns([
        fits.Column(name="ID", format="J", array=np.arange(4, dtype=np.int32)),
        fits.Column(name="FLUX", format="D", array=np.array([1.5, 2.25, -3.0, 1e10])),
        fits.Column(name="MAG", format="E", unit="mag", array=np.array([20.5, 21, 19.25, 18], np.float32)),
        fits.Column(name="NAME", format="8A", array=np.array(["m13", "ngc1300", "a", "b b"])),
    ], name="CAT")
    write("mef.fits", fits.HDUList([primary, sci, err, cat]))

    # A cube (NAXIS3 = 5).
    write("cube.fits", fits.HDUList([fits.PrimaryHDU(ramp((5, 12, 20), np.float32, 0.5))]))

    # Tile-compressed images.
    ints = ramp((40, 30), np.int16, 3.0, -100, seed=3)
    floats = rng.normal(50, 5, (40, 30)).astype(np.float32)
    mask = (ramp((40, 30), np.int32, 1.0, seed=4) % 7).astype(np.int32)
    write("rice.fits", fits.HDUList([fits.PrimaryHDU(),
                                     fits.CompImageHDU(ints, compression_type="RICE_1", name="RICEIMG")]))
    # (Each GZIP tile carries a time stamp, so gzip.fits differs between runs in those bytes only.)
    write("gzip.fits", fits.HDUList([fits.PrimaryHDU(),
                                     fits.CompImageHDU(floats, compression_type="GZIP_1", tile_shape=(10, 30),
                                                       dither_seed=1)]))
    write("hcompress.fits", fits.HDUList([fits.PrimaryHDU(),
                                          fits.CompImageHDU(ints, compression_type="HCOMPRESS_1")]))
    write("plio.fits", fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(mask, compression_type="PLIO_1")]))

    # A gzipped file.
    with open(os.path.join(HERE, "bitpix-32.fits"), "rb") as source:
        with gzip.GzipFile(os.path.join(HERE, "gzipped.fits.gz"), "wb", mtime=0) as target:
            target.write(source.read())

    # Header value types, COMMENT/HISTORY, CONTINUE long strings.
    hdu = fits.PrimaryHDU(np.zeros((4, 4), np.float32))
    header = hdu.header
    header["OBJECT"] = ("M13", "target name")
    header["EXPTIME"] = (120.5, "[s] exposure time")
    header["NCOMBINE"] = (7, "frames combined")
    header["FLAT"] = (True, "flat-fielded")
    header["DARK"] = (False, "")
    header["QUOTE"] = ("it's here", "embedded quote")
    header["SMALL"] = 1.5e-7
    header["LONGSTR"] = ("This is a long string value that is longer than sixty-eight characters "
                         "and so must be continued over several CONTINUE cards, as astropy writes it.",
                         "a long string")
    header["CTYPE1"] = "RA---TAN"
    header["CTYPE2"] = "DEC--TAN"
    header["CRVAL1"] = 250.4235
    header["CRVAL2"] = 36.4613
    header["CRPIX1"] = 2.5
    header["CRPIX2"] = 2.5
    header["CD1_1"] = -7.5e-5
    header["CD2_2"] = 7.5e-5
    header["RADESYS"] = "ICRS"
    header["EQUINOX"] = 2000.0
    header.add_comment("first comment")
    header.add_comment("second comment")
    header.add_history("made by make_fixtures.py")
    write("header.fits", fits.HDUList([hdu]))

    # Malformed inputs.
    with open(os.path.join(HERE, "bitpix-64.fits"), "rb") as source:
        whole = source.read()
    with open(os.path.join(HERE, "truncated.fits"), "wb") as target:
        target.write(whole[:2880 + 1000])  # full header, 1000 of 1920 data bytes
    with open(os.path.join(HERE, "garbage.fits"), "wb") as target:
        target.write(b"This is not a FITS file, just text pretending to be one.\n" * 60)
    open(os.path.join(HERE, "empty.fits"), "wb").close()

    names = ["bitpix8.fits", "bitpix16.fits", "bitpix32.fits", "bitpix64.fits", "bitpix-32.fits",
             "bitpix-64.fits", "scaled_int16.fits", "uint16.fits", "mef.fits", "cube.fits", "rice.fits",
             "gzip.fits", "hcompress.fits", "plio.fits", "gzipped.fits.gz", "header.fits"]
    for name in names:
        files[name] = describe(os.path.join(HERE, name))
    expected = {"generator": "make_fixtures.py", "versions": VERSIONS, "files": files}
    with open(os.path.join(HERE, "expected.json"), "w") as target:
        json.dump(expected, target, indent=1, sort_keys=True)
        target.write("\n")
    print("wrote %d fixtures and expected.json (astropy %s, numpy %s)"
          % (len(names) + 3, astropy.__version__, np.__version__))


def close(a, b, rel=1e-6):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-30)


def check(directory, report):
    """Compare the Swift-written files in `directory` with their manifest, via astropy."""
    with open(os.path.join(directory, "manifest.json")) as source:
        manifest = json.load(source)
    lines, failures = [], 0
    for item in manifest["files"]:
        path = os.path.join(directory, item["file"])
        problems = []
        try:
            read = describe(path)
        except Exception as error:  # noqa: BLE001 - any failure is a finding
            read, problems = [], ["astropy cannot read it: %s" % error]
        for want in item["hdus"]:
            if want["index"] >= len(read):
                problems.append("HDU %d missing" % want["index"])
                continue
            got = read[want["index"]]
            for field in ("type", "bitpix", "naxis", "compression", "extname"):
                if field in want and want[field] != got.get(field):
                    problems.append("HDU %d %s: wrote %r, astropy reads %r"
                                    % (want["index"], field, want[field], got.get(field)))
            if "data" in want:
                data = got.get("data", [])
                tolerance = want.get("tolerance", 0.0)
                if len(data) != len(want["data"]):
                    problems.append("HDU %d: %d pixels, expected %d" % (want["index"], len(data), len(want["data"])))
                else:
                    bad = [i for i, (a, b) in enumerate(zip(data, want["data"]))
                           if not ((a is None and b is None) or
                                   (a is not None and b is not None and abs(a - b) <= tolerance))]
                    if bad:
                        problems.append("HDU %d: %d pixels differ (first at %d: %r vs %r)"
                                        % (want["index"], len(bad), bad[0], data[bad[0]], want["data"][bad[0]]))
            for key, value in want.get("header", {}).items():
                if key not in got["header"] or not close(got["header"][key], value, 0.0):
                    problems.append("HDU %d keyword %s: wrote %r, astropy reads %r"
                                    % (want["index"], key, value, got["header"].get(key)))
            for key in ("comments", "history"):
                if key in want and want[key] != got.get(key):
                    problems.append("HDU %d %s: wrote %r, astropy reads %r" % (want["index"], key, want[key], got.get(key)))
            for name, values in want.get("columns", {}).items():
                column = got.get("columns", {}).get(name)
                if column is None or len(column) != len(values) or not all(close(a, b, 0.0) for a, b in zip(column, values)):
                    problems.append("HDU %d column %s: wrote %r, astropy reads %r" % (want["index"], name, values, column))
        failures += bool(problems)
        lines.append("%s %s" % ("FAIL" if problems else "ok  ", item["file"]))
        lines.extend("     " + p for p in problems)
    text = ("Round trip: files written by Astrolabe (FITS module), read back with astropy %s / numpy %s\n"
            % (astropy.__version__, np.__version__)) + "\n".join(lines) + "\n"
    text += "%d file(s), %d failure(s)\n" % (len(manifest["files"]), failures)
    print(text, end="")
    if report:
        with open(report, "w") as target:
            target.write(text)
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--check":
        report = sys.argv[sys.argv.index("--report") + 1] if "--report" in sys.argv else None
        sys.exit(check(sys.argv[2], report))
    make()
