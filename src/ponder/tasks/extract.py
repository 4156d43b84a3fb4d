"""Pulling the final answer out of a solution's text.

The forms tried, in order: the last `\\boxed{...}` (or `\\fbox{...}`), braces
nested to any depth; GSM8K's `#### n`; a closing sentence "The (final) answer
is ...". Each returns the answer as written, trimmed; grading decides equivalence.
"""

from __future__ import annotations

import re

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HASHES = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
_SENTENCE = re.compile(
    r"(?:the\s+)?(?:final\s+)?answer\s+is\s*[:\-]?\s*(.+?)\s*(?:\.\s*$|\.\s+|\n|$)",
    re.IGNORECASE,
)
_SENTENCE_START = re.compile(r"(?:the\s+)?(?:final\s+)?answer\s+is", re.IGNORECASE)


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` in `text`; None when there is none or it is open."""
    found = None
    for match in _BOX.finditer(text):
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    found = text[start:i]
                    break
    return found.strip() if found is not None else None


def _clean(answer: str) -> str | None:
    answer = answer.strip().strip("$").strip()
    answer = answer.removeprefix("\\(").removesuffix("\\)").strip()
    return answer or None


def extract_answer(text: str) -> str | None:
    """The final answer stated in `text`, or None when it states none."""
    boxed = last_boxed(text)
    if boxed is not None:
        return _clean(boxed)
    hashes = _HASHES.findall(text)
    if hashes:
        return _clean(hashes[-1].replace(",", ""))
    # The last statement wins, even when it runs into an earlier one on the same line
    # ("The answer is 55The answer is 3."): match from the last start, not the last match.
    starts = [m.start() for m in _SENTENCE_START.finditer(text)]
    for start in reversed(starts):
        found = _SENTENCE.match(text, start)
        if found is not None:
            return _clean(found.group(1))
    return None
