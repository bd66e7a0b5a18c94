"""Seed lists in NVlabs syntax: `0-63`, `1,2,5-10` (ranges inclusive)."""

import re
from collections import Counter

from edmctl.errors import UserError

_RANGE = re.compile(r"^(\d+)-(\d+)$")


def parse_seeds(text: str) -> list[int]:
    """`"1,2,5-10"` → [1, 2, 5, 6, 7, 8, 9, 10]; empty items, negatives, reversed ranges and repeats are UserErrors."""
    seeds: list[int] = []
    for item in str(text).split(","):
        item = item.strip()
        if item.isdigit():
            seeds.append(int(item))
        elif match := _RANGE.match(item):
            first, last = int(match[1]), int(match[2])
            if last < first:
                raise UserError(f"seeds {text!r}: range {item!r} runs backwards; write it as {last}-{first}.")
            seeds.extend(range(first, last + 1))
        else:
            raise UserError(f"seeds {text!r}: {item!r} is not a seed; use integers >= 0 and ranges, e.g. 0-63 or 1,2,5-10.")
    repeated = [seed for seed, count in Counter(seeds).items() if count > 1]
    if repeated:
        raise UserError(f"seeds {text!r}: seed {repeated[0]} appears more than once; each seed names one image.")
    return seeds
