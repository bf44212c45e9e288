"""Cleaning time against article length: each shape at n, 2n and 4n characters; linear time means about 2× per
doubling (quadratic: 4×).

    python benchmarks/clean_linear.py [--start 250000] [--repeats 3]

One article through every content and title rule and Lead-N (``clean_content``, ``clean_title``, ``lead_n``), best of
``--repeats`` runs per length. Shapes: real articles (the bundled sample, joined), and the hostile shapes that were
quadratic before. Goal: no doubling above about 2.3×. Results go in RESULTS.md with the machine's load (``uptime``).
"""

import argparse
import json
import subprocess
import time

from titlegen_assets.data.cleaning import clean_content, clean_title, lead_n
from titlegen_assets.data.sources import sample_path


def _sample_text(n: int) -> str:
    articles = [json.loads(line)["content"] for line in sample_path().read_text(encoding="utf-8").splitlines()]
    text = "\n".join(articles)
    return (text * (n // len(text) + 1))[:n]


SHAPES = {
    "sample articles joined": _sample_text,
    "unclosed <!-- then text": lambda n: "<!--" + "甲" * (n - 4),
    "<!-- repeated": lambda n: "<!--" * (n // 4),
    "nested <b>": lambda n: "<b>" * (n // 6) + "</b>" * (n // 8),
    "line breaks": lambda n: "颱風。" + "\n" * n,
    "blanks and tabs": lambda n: "颱風" + " \t" * (n // 2) + "甲",
    "entities &amp;": lambda n: "&amp;" * (n // 5),
    "! repeated": lambda n: "！" * n + "甲",
}


def seconds(text: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        lead_n(clean_content(text), 1200)
        clean_title(text)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=int, default=250_000, help="shortest length, in characters")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    lengths = [args.start, 2 * args.start, 4 * args.start]
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print("| shape | " + " | ".join(f"{n:,} chars" for n in lengths) + " | per doubling |")
    print("|---|" + "---|" * len(lengths) + "---|")
    for name, make in SHAPES.items():
        times = [seconds(make(n), args.repeats) for n in lengths]
        ratios = " / ".join(f"{b / a:.2f}×" for a, b in zip(times, times[1:]))
        print(f"| {name} | " + " | ".join(f"{t:.3f} s" for t in times) + f" | {ratios} |", flush=True)
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
