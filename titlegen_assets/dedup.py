"""Near-duplicate articles by MinHash LSH (``datasketch``): the cost grows linearly with the corpus, even when every
article shares the same boilerplate, because only texts that collide in an LSH band are ever compared."""

from __future__ import annotations

from titlegen_assets.parallel import map_chunks

SHINGLE_CHARS = 5
NUM_PERM = 128
SEED = 1
_MULTIPLIER = 1_000_003  # odd, so the polynomial hash keeps every code point's low bits in play


def shingle_hashes(text: str, size: int = SHINGLE_CHARS) -> list[int]:
    """32-bit hashes of the character ``size``-grams of ``text`` (the whole text when it is shorter).

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
    # a repeated shingle repeats its hash, which cannot change a minimum: no need to deduplicate
    return ((hashes ^ (hashes >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).tolist()


def signatures(texts: list[str]) -> list:
    """One ``datasketch.LeanMinHash`` per text over its shingle hashes (``hashfunc=int``: they are hashes already).
    Lean sketches are small to keep and to send back from a worker process."""
    from datasketch import LeanMinHash, MinHash

    sketches = MinHash.generator((shingle_hashes(t) for t in texts), num_perm=NUM_PERM, seed=SEED, hashfunc=int)
    return [LeanMinHash(sketch) for sketch in sketches]


def near_duplicates(texts: list[str], threshold: float, workers: int = 1) -> dict[int, int]:
    """Map each near-duplicate text's index to the earliest kept index it repeats.

    Candidates come from ``MinHashLSH`` tuned for ``threshold``; a candidate counts only when the MinHash estimate
    of the character-shingle Jaccard similarity reaches ``threshold``. The first text of a group is kept.
    Sketches are computed in ``workers`` processes; the index is built in this one, in order.
    """
    from datasketch import MinHashLSH

    sketches = map_chunks(signatures, texts, workers)
    index = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    repeats: dict[int, int] = {}
    for i, sketch in enumerate(sketches):
        earlier = sorted(j for j in index.query(sketch) if sketch.jaccard(sketches[j]) >= threshold)
        if earlier:
            repeats[i] = earlier[0]
        else:
            index.insert(i, sketch, check_duplication=False)
    return repeats
