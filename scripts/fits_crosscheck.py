#!/usr/bin/env python3
"""What astropy reads from real FITS files, for FITSCrosscheckTests to compare with.

    python3 scripts/fits_crosscheck.py --out expected.json [--fixtures DIR] [DATA_DIR_OR_FILE ...]

Default input: astropy's own test data (astropy/io/fits/tests/data of the installed
astropy). For every FITS file (.fits, .fits.gz) it writes, per HDU as astropy numbers
them: the kind, EXTNAME, the shape in header order (NAXIS1, NAXIS2, ...; tables:
[row bytes, rows]), every valued header card (first occurrence of a keyword; COMMENT,
HISTORY and blank cards as lists), and for images with data the pixel statistics of
the values after scaling (count, blanks, min, max, mean, std over the finite ones, in
float64) plus 64 sample pixels at fixed flat positions (FITS order: NAXIS1 fastest;
null for NaN). Files astropy cannot read (or only with a warning it turns into an
error under `output_verify='exception'`) are listed under "unreadable" with the reason;
the Swift test does not compare them.

--fixtures DIR writes the small regression fixtures of Tests/FITSTests/Fixtures that
cfitsio 4.2's header conversion failed on (tile-compressed with BSCALE/BZERO in the
table header, two EXTNAMEs): compressed_bzero.fits and compressed_two_ext.fits.

Versions used are recorded in the output ("versions").
"""
import argparse
import json
import os
import platform
import sys
import warnings

import numpy as np
import astropy
from astropy.io import fits

SAMPLES = 64


def astropy_data_dir():
    return os.path.join(os.path.dirname(astropy.__file__), "io", "fits", "tests", "data")


def fits_files(paths):
    out = []
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.lower().endswith((".fits", ".fits.gz")):
                    out.append(os.path.join(path, name))
        else:
            out.append(path)
    return out


def card_value(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if np.isfinite(value) else str(value)
    if isinstance(value, str):
        return value.rstrip()
    return None  # undefined values and complex numbers are not compared


def describe_header(header):
    cards, comments, history = {}, [], []
    for card in header.cards:
        keyword = card.keyword
        if keyword == "COMMENT":
            comments.append(str(card.value))
        elif keyword == "HISTORY":
            history.append(str(card.value))
        elif keyword and keyword not in cards:
            value = card_value(card.value)
            if value is not None:
                cards[keyword] = value
    return cards, comments, history


def pixel_summary(data):
    flat = np.asarray(data, dtype=np.float64).ravel()  # C order == FITS order
    finite = flat[np.isfinite(flat)]
    stats = {"count": int(flat.size), "blank": int(np.isnan(flat).sum())}
    if finite.size:
        stats.update(min=float(finite.min()), max=float(finite.max()), mean=float(finite.mean()),
                     std=float(finite.std()))
    positions = sorted(set(np.linspace(0, flat.size - 1, min(SAMPLES, flat.size)).astype(int).tolist()))
    samples = [[p, None if np.isnan(flat[p]) else float(flat[p])] for p in positions]
    return stats, samples


def describe(path):
    hdus = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(path, memmap=False) as hdul:
            hdul.verify("exception")
            for index, hdu in enumerate(hdul):
                header = hdu.header
                entry = {"index": index, "extname": hdu.name}
                cards, comments, history = describe_header(header)
                entry.update(cards=cards, comments=comments, history=history)
                if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)) and not isinstance(hdu, fits.CompImageHDU):
                    entry["kind"] = "bintable" if isinstance(hdu, fits.BinTableHDU) else "table"
                    entry["shape"] = [int(header["NAXIS1"]), int(header["NAXIS2"])]
                elif isinstance(hdu, fits.GroupsHDU):
                    entry["kind"] = "groups"
                    entry["shape"] = [int(header["NAXIS%d" % (i + 1)]) for i in range(header["NAXIS"])]
                else:
                    entry["kind"] = "image"
                    entry["compression"] = hdu.compression_type if isinstance(hdu, fits.CompImageHDU) else None
                    entry["shape"] = [int(header["NAXIS%d" % (i + 1)]) for i in range(header["NAXIS"])]
                    data = hdu.data
                    if data is not None and data.size:
                        entry["stats"], entry["samples"] = pixel_summary(data)
                hdus.append(entry)
    return hdus


def move_scaling_cards_up(path):
    """Moves BSCALE and BZERO of every compressed HDU's table header to just after
    TFIELDS, where astropy before 4.3 wrote them (astropy's compressed_float_bzero.fits,
    comp.fits, double_ext.fits). The file stays valid; only the card order changes."""
    with open(path, "rb") as handle:
        data = bytearray(handle.read())
    offset = 0
    while offset < len(data):
        cards = []
        while True:
            card = bytes(data[offset + 80 * len(cards):offset + 80 * (len(cards) + 1)])
            cards.append(card)
            if card.startswith(b"END     "):
                break
        header_bytes = (80 * len(cards) + 2879) // 2880 * 2880
        keywords = [c[:8].decode().strip() for c in cards]
        if "ZIMAGE" in keywords:
            scaling = [c for c in cards if c[:8].decode().strip() in ("BSCALE", "BZERO")]
            rest = [c for c in cards if c not in scaling]
            at = [c[:8].decode().strip() for c in rest].index("TFIELDS") + 1
            cards = rest[:at] + scaling + rest[at:]
            data[offset:offset + 80 * len(cards)] = b"".join(cards)
        values = {k: c[10:30].decode().strip() for k, c in zip(keywords, cards)}
        size = 0
        if int(values.get("NAXIS", "0")) > 0:
            size = abs(int(values["BITPIX"])) // 8 * int(values.get("GCOUNT", "1"))
            count = 1
            for axis in range(int(values["NAXIS"])):
                count *= int(dict((c[:8].decode().strip(), c[10:30].decode().strip()) for c in cards)["NAXIS%d" % (axis + 1)])
            size *= count + int(values.get("PCOUNT", "0"))
        offset += header_bytes + (size + 2879) // 2880 * 2880
    with open(path, "wb") as handle:
        handle.write(data)


def write_fixtures(directory):
    """Tile-compressed files whose headers cfitsio 4.2's fits_convert_hdr2str rejects:
    BSCALE/BZERO before ZIMAGE in the table header, as older astropy wrote them."""
    rng = np.random.default_rng(14)
    # uint16 image stored as int16 + BZERO 32768: astropy writes BSCALE/BZERO before ZIMAGE.
    data = rng.integers(0, 65535, size=(6, 5)).astype(np.uint16)
    hdu = fits.CompImageHDU(data, compression_type="RICE_1", name="UINT")
    path = os.path.join(directory, "compressed_bzero.fits")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
    move_scaling_cards_up(path)
    # Two compressed extensions, the second scaled and float, with a header of its own.
    first = fits.CompImageHDU(rng.normal(100, 5, size=(8, 7)).astype(np.float32), compression_type="GZIP_1",
                              name="SCI", quantize_level=0)
    first.header["EXPTIME"] = (30.0, "seconds")
    second = fits.CompImageHDU((rng.integers(0, 1000, size=(4, 9)) - 500).astype(np.int16),
                               compression_type="RICE_1", name="DQ")
    second.header["BUNIT"] = "counts"
    second.scale("int16", bzero=1000, bscale=2)
    path = os.path.join(directory, "compressed_two_ext.fits")
    fits.HDUList([fits.PrimaryHDU(), first, second]).writeto(path, overwrite=True)
    move_scaling_cards_up(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--out")
    parser.add_argument("--fixtures")
    args = parser.parse_args()
    if args.fixtures:
        write_fixtures(args.fixtures)
        if not args.out:
            return
    files, unreadable = {}, {}
    for path in fits_files(args.paths or [astropy_data_dir()]):
        try:
            files[os.path.basename(path)] = describe(path)
        except Exception as error:  # anything astropy refuses is not compared
            unreadable[os.path.basename(path)] = "%s: %s" % (type(error).__name__, str(error).splitlines()[0][:200])
    out = {"folder": os.path.dirname(os.path.abspath(fits_files(args.paths or [astropy_data_dir()])[0])),
           "versions": {"astropy": astropy.__version__, "numpy": np.__version__,
                        "python": platform.python_version()},
           "files": files, "unreadable": unreadable}
    with open(args.out, "w") as handle:
        json.dump(out, handle, separators=(",", ":"))
    print("fits_crosscheck: %d files read by astropy, %d not" % (len(files), len(unreadable)), file=sys.stderr)


if __name__ == "__main__":
    main()
