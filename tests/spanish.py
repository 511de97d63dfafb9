"""What an English reader would recognise in text meant to be Spanish: the catalogue's own
English words (each message's English text, cut at its placeholders, pieces of two words or
more that its Spanish does not share)."""

from __future__ import annotations

import re
from functools import cache

from mnistlab.messages import catalogue


@cache
def english_pieces() -> tuple[str, ...]:
    pieces = set()
    for entry in catalogue().values():
        if entry["en"] == entry["es"]:
            continue
        for piece in re.split(r"\{[^}]*\}|\*\*|`", entry["en"]):
            piece = piece.strip(" .,;:()[]'\"-–—→·")
            if len(piece) >= 10 and " " in piece and piece not in entry["es"]:
                pieces.add(piece)
    return tuple(sorted(pieces))


def english_in(text: str) -> list[str]:
    """The catalogue's English pieces found in `text` (should be none in Spanish output)."""
    return [piece for piece in english_pieces() if piece in text]
