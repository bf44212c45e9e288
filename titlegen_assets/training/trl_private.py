"""TRL's private names in ``trl.trainer.utils`` that training swaps for the length of one loss computation.

TRL looks them up in that module's globals on every fused forward, so a swap there, undone when the loss is
computed, changes that computation and nothing else. Where a name is missing (another TRL than the pinned ones),
nothing is swapped, TRL's own path runs, and the log says which TRL lacks the name and what runs instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from titlegen_assets.training.environment import package_version


def has(name: str, log: Callable[[str], None], instead: str) -> bool:
    """Whether this TRL has ``trl.trainer.utils.<name>``; where not, ``log`` says so and what runs ``instead``."""
    from trl.trainer import utils as trl_utils

    if callable(getattr(trl_utils, name, None)):
        return True
    log(f"TRL {package_version('trl')} has no trl.trainer.utils.{name} (TRL 1.16 has it): {instead}")
    return False


@contextmanager
def swapped(name: str, replacement: Callable) -> Iterator[None]:
    """Inside the block ``trl.trainer.utils.<name>`` is ``replacement(TRL's own)``, and TRL's own again after it."""
    from trl.trainer import utils as trl_utils

    own = getattr(trl_utils, name)
    setattr(trl_utils, name, replacement(own))
    try:
        yield
    finally:
        setattr(trl_utils, name, own)
