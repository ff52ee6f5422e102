#!/usr/bin/env python3
"""Measure how often an off-the-shelf OCR solver reads gatehouse captchas.

Generates N default captchas and N math captchas (with their answers) through
the `captcha_samples` example of crate gatehouse, runs ddddocr
(https://pypi.org/project/ddddocr/, offline) on every image and prints the
solve rate of each style. Not part of the test suite.

    python3 scripts/ocr_rate.py [--count 500] [--keep DIR] [--release|--debug]

Honours CAPTCHA_CONFIG and CAPTCHA_FONT like the Lambdas do. Installs the
pinned ddddocr (scripts/requirements-ocr.txt) with pip when it is missing.
"""

import argparse
import importlib
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def ensure_ddddocr():
    try:
        return importlib.import_module("ddddocr")
    except ImportError:
        req = os.path.join(HERE, "requirements-ocr.txt")
        print(f"installing ddddocr from {req} ...", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "-r", req])
        importlib.invalidate_caches()
        return importlib.import_module("ddddocr")


def generate(out_dir, count, style, profile):
    cmd = ["cargo", "run", "-q", "-p", "gatehouse", "--example", "captcha_samples"]
    if profile == "release":
        cmd.append("--release")
    cmd += ["--", out_dir, str(count), style]
    subprocess.check_call(cmd, cwd=ROOT)
    rows = []
    with open(os.path.join(out_dir, "answers.tsv"), encoding="utf-8") as f:
        for line in f:
            name, display, answer = line.rstrip("\n").split("\t")
            rows.append((os.path.join(out_dir, name), display, answer))
    return rows


def math_solved(read, display, answer):
    """A math captcha counts as solved when the reading gives the operands and
    operator (the answer then follows), or the answer itself."""
    read = read.replace(" ", "")
    expr = display[: -len("=?")] if display.endswith("=?") else display
    stripped = re.sub(r"[=?？]+$", "", read)
    return stripped == expr or read == answer


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--keep", help="write the samples here and keep them")
    ap.add_argument("--debug", action="store_true", help="build the example unoptimised")
    ap.add_argument("--show-misses", type=int, default=0, help="print this many readings per style")
    args = ap.parse_args()

    ddddocr = ensure_ddddocr()
    ocr = ddddocr.DdddOcr(show_ad=False)
    profile = "debug" if args.debug else "release"

    base = args.keep or tempfile.mkdtemp(prefix="gatehouse-ocr-")
    results = {}
    for style in ("default", "math"):
        out_dir = os.path.join(base, style)
        rows = generate(out_dir, args.count, style, profile)
        solved = 0
        loose = 0
        shown = 0
        for path, display, answer in rows:
            with open(path, "rb") as f:
                read = ocr.classification(f.read())
            if style == "math":
                ok = math_solved(read, display, answer)
            else:
                ok = read.strip().lower() == answer.lower()
            solved += ok
            # An attacker may also drop what cannot be part of an answer.
            kept = re.sub(r"[^0-9A-Za-z+\-=?]", "", read)
            loose += ok or (
                math_solved(kept, display, answer) if style == "math" else kept.lower() == answer.lower()
            )
            if shown < args.show_misses:
                print(f"  {style} {os.path.basename(path)} shown={display!r} read={read!r} {'SOLVED' if ok else ''}")
                shown += 1
        results[style] = (solved, loose, len(rows))
    for style, (solved, loose, total) in results.items():
        print(
            f"{style}: ddddocr solved {solved}/{total} = {100.0 * solved / total:.1f} % "
            f"(reading filtered to answer characters: {loose}/{total} = {100.0 * loose / total:.1f} %)"
        )
    if args.keep:
        print(f"samples kept in {base}")


if __name__ == "__main__":
    main()
