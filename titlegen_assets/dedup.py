"""Near-duplicate articles by MinHash LSH (``datasketch``): the cost grows linearly with the corpus, even when every
article shares the same boilerplate, because only texts that collide in an LSH band are ever compared."""

from __future__ import annotations

SHINGLE_CHARS = 5
NUM_PERM = 128
SEED = 1
_MULTIPLIER = 1_000_003  # odd, so the polynomial hash keeps every code point's low bits in play


def shingle_hashes(text: str, size: int = SHINGLE_CHARS) -> list[int]:
    """32-bit hashes of the distinct character ``size``-grams of ``text`` (the whole text when it is shorter).

    A polynomial hash over the code points, computed for all shingles at once with numpy: slicing and hashing
    each shingle in Python costs more than the MinHash itself. It is the same in every process and run (Python's
    own ``hash`` is salted per process), so a split is reproducible.
    """
    import numpy as np

    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(codes) < size:
        codes = np.pad(codes, (0, size - len(codes)))
    count = len(codes) - size + 1
    hashes = np.zeros(count, dtype=np.uint64)
    for offset in range(size):
        hashes = hashes * np.uint64(_MULTIPLIER) + codes[offset : offset + count]  # wraps modulo 2**64
    return np.unique((hashes ^ (hashes >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).tolist()


def signatures(texts: list[str]) -> list:
    """One ``datasketch.MinHash`` per text over its shingle hashes (``hashfunc=int``: they are hashes already)."""
    from datasketch import MinHash

    return list(MinHash.generator((shingle_hashes(t) for t in texts), num_perm=NUM_PERM, seed=SEED, hashfunc=int))


def near_duplicates(texts: list[str], threshold: float) -> dict[int, int]:
    """Map each near-duplicate text's index to the earliest kept index it repeats.

    Candidates come from ``MinHashLSH`` tuned for ``threshold``; a candidate counts only when the MinHash estimate
    of the character-shingle Jaccard similarity reaches ``threshold``. The first text of a group is kept.
    """
    from datasketch import MinHashLSH

    sketches = signatures(texts)
    index = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    repeats: dict[int, int] = {}
    for i, sketch in enumerate(sketches):
        earlier = sorted(j for j in index.query(sketch) if sketch.jaccard(sketches[j]) >= threshold)
        if earlier:
            repeats[i] = earlier[0]
        else:
            index.insert(i, sketch, check_duplication=False)
    return repeats
