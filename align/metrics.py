"""Error rates between a reference text and what a model heard."""

from __future__ import annotations

from rapidfuzz.distance import Levenshtein


def char_errors(ref: str, hyp: str) -> int:
    """Edit distance in characters (substitutions, insertions, deletions)."""
    return Levenshtein.distance(ref, hyp)


def cer(ref: str, hyp: str) -> float:
    """Character error rate; 0 for two empty strings, 1 for hypotheses against nothing."""
    if not ref:
        return 0.0 if not hyp else 1.0
    return char_errors(ref, hyp) / len(ref)
