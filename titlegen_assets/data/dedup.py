"""Near-duplicate articles by MinHash LSH (``rensa``, a MinHash in Rust): the cost grows linearly with the corpus,
even when every article shares the same boilerplate, because only texts that collide in an LSH band are ever
compared. (datasketch's pure-Python sketches were 6× slower per article here; see benchmarks/RESULTS.md.)"""

from __future__ import annotations

from titlegen_assets.data.parallel import map_chunks

SHINGLE_CHARS = 5
NUM_PERM = 128
#: 16 bands of 8 rows: a pair at Jaccard 0.8 becomes a candidate with probability 0.95, at 0.9 with 0.9998.
NUM_BANDS = 16
SEED = 1


def shingles(text: str, size: int = SHINGLE_CHARS) -> list[str]:
    """The character ``size``-grams of ``text`` (the whole text when it is shorter)."""
    return [text[i : i + size] for i in range(max(1, len(text) - size + 1))]


def signatures(texts: list[str]) -> list:
    """One ``rensa.RMinHash`` per text over its character shingles (the same in every process and run: rensa's
    hashing is seeded, not salted per process, so a split is reproducible; sketches pickle to worker processes)."""
    from rensa import RMinHash

    sketches = []
    for text in texts:
        sketch = RMinHash(num_perm=NUM_PERM, seed=SEED)
        sketch.update(shingles(text))
        sketches.append(sketch)
    return sketches


def near_duplicates(texts: list[str], threshold: float, workers: int = 1) -> dict[int, int]:
    """Map each near-duplicate text's index to the earliest kept index it repeats.

    Candidates come from ``RMinHashLSH``; a candidate counts only when the MinHash estimate of the
    character-shingle Jaccard similarity reaches ``threshold``. The first text of a group is kept.
    Sketches are computed in ``workers`` processes; the index is built in this one, in order.
    """
    from rensa import RMinHashLSH

    sketches = map_chunks(signatures, texts, workers)
    index = RMinHashLSH(threshold=threshold, num_perm=NUM_PERM, num_bands=NUM_BANDS)
    repeats: dict[int, int] = {}
    for i, sketch in enumerate(sketches):
        earlier = sorted(j for j in index.query(sketch) if sketch.jaccard(sketches[j]) >= threshold)
        if earlier:
            repeats[i] = earlier[0]
        else:
            index.insert(i, sketch)
    return repeats
