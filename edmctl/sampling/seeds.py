"""Seed lists in NVlabs syntax: `0-63`, `1,2,5-10` (ranges inclusive)."""

import re
from collections import Counter

from edmctl.errors import UserError

SEED_LIMIT = 1 << 32  # seeds are 32-bit, as NVlabs' (np.random.RandomState): a larger one is refused, never aliased
MAX_SEEDS = 1_000_000  # images per command: 20x the paper's 50,000-image FID
_SEED = r"[0-9]+"  # ASCII digits only: str.isdigit() also accepts '²' and '١٢'
_RANGE = re.compile(rf"({_SEED})-({_SEED})")


def _seed(item: str, whole: str) -> int:
    seed = int(item)
    if seed >= SEED_LIMIT:
        raise UserError(f"seeds {whole!r}: seed {item} is not below 2**32 ({SEED_LIMIT}); seeds are 32-bit.")
    return seed


def _ranges(text: str) -> list[range]:
    """The items of `text` as ranges (a single seed is a range of one), before any list is built."""
    ranges = []
    for item in str(text).split(","):
        item = item.strip()
        if re.fullmatch(_SEED, item):
            first = _seed(item, text)
            ranges.append(range(first, first + 1))
        elif match := _RANGE.fullmatch(item):
            first, last = _seed(match[1], text), _seed(match[2], text)
            if last < first:
                raise UserError(f"seeds {text!r}: range {item!r} runs backwards; write it as {last}-{first}.")
            ranges.append(range(first, last + 1))
        else:
            raise UserError(f"seeds {text!r}: {item!r} is not a seed; use integers 0..2**32-1 and ranges, e.g. 0-63 or 1,2,5-10.")
    return ranges


def parse_seeds(text: str) -> list[int]:
    """`"1,2,5-10"` → [1, 2, 5, 6, 7, 8, 9, 10]; empty items, non-ASCII digits, seeds >= 2**32, more than
    MAX_SEEDS seeds, reversed ranges and repeats are UserErrors."""
    ranges = _ranges(text)
    count = sum(len(r) for r in ranges)
    if count > MAX_SEEDS:
        raise UserError(f"seeds {text!r}: {count} seeds, more than the {MAX_SEEDS} one command takes; split the work.")
    seeds = [seed for r in ranges for seed in r]
    repeated = [seed for seed, count in Counter(seeds).items() if count > 1]
    if repeated:
        raise UserError(f"seeds {text!r}: seed {repeated[0]} appears more than once; each seed names one image.")
    return seeds
