#!/usr/bin/env python3
"""Paired accuracy of two classifiers on the same labelled files, with the exact McNemar test.

Each --set names one labelled image set and the two runs' predictions on it:
CATALOG.csv (`file,label`; label a class index or name) and two predictions CSVs as
`astrolabe evaluate` / `run` write them (`file,predicted,p_<class>...`). Over all sets
together it prints each model's accuracy, the files only one of them gets right, and the
two-sided exact McNemar p-value of that split (Binomial(n, 1/2), n the discordant files).

  python3 scripts/compare_classifiers.py \\
    --set /tmp/m/seed186/catalog.csv:new/seed186/predictions.csv:old/seed186/predictions.csv \\
    --set /tmp/m/seed187/catalog.csv:new/seed187/predictions.csv:old/seed187/predictions.csv
"""
import argparse
import csv
import sys
from math import comb


def mcnemar_p(only_a, only_b):
    """Two-sided exact McNemar p-value for the discordant counts."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)


def predictions(path):
    with open(path, newline="") as f:
        return {row["file"]: row["predicted"] for row in csv.DictReader(f)}


def labels(path, class_names):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "file" not in rows[0] or "label" not in rows[0]:
        raise SystemExit(f"{path}: expected a catalog with columns file,label")
    out = {}
    for row in rows:
        label = row["label"]
        if label.isdigit():
            index = int(label)
            if not 0 <= index < len(class_names):
                raise SystemExit(f"{path}: label {label} of {row['file']} is not one of the {len(class_names)} classes")
            label = class_names[index]
        out[row["file"]] = label
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", required=True, metavar="CATALOG:PRED_A:PRED_B",
                        help="a labelled set and the two models' predictions on it (repeatable)")
    parser.add_argument("--classes", default="elliptical,spiral,edge_on,irregular,star",
                        help="class names in label order (default: TASKS.md's morphology classes)")
    args = parser.parse_args(argv)
    class_names = args.classes.split(",")
    total = right_a = right_b = only_a = only_b = 0
    for spec in args.set:
        parts = spec.split(":")
        if len(parts) != 3:
            raise SystemExit(f"--set {spec}: expected CATALOG:PRED_A:PRED_B")
        truth = labels(parts[0], class_names)
        a, b = predictions(parts[1]), predictions(parts[2])
        for name, label in truth.items():
            if name not in a or name not in b:
                raise SystemExit(f"{name} of {parts[0]} has no prediction in {parts[1] if name not in a else parts[2]}")
            ok_a, ok_b = a[name] == label, b[name] == label
            total += 1
            right_a += ok_a
            right_b += ok_b
            only_a += ok_a and not ok_b
            only_b += ok_b and not ok_a
    print(f"files {total}: accuracy A {right_a / total:.4f}, B {right_b / total:.4f}; "
          f"right only with A {only_a}, only with B {only_b}; exact McNemar p {mcnemar_p(only_a, only_b):.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
