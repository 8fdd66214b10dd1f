"""Multiple-choice answers: the options of a row, the gold's letter, the letter a completion picks.

    from benchmarks import choice
    choice.extract_choice("The answer is (B).", ["1", "2"])   # 'B'
    choice.option_letter("145°", ["90°", "145°"])             # 'B' (a gold given as option text)

The predicted option is read as a letter ("B", "(B)", "B.", "Answer: B", ``\\boxed{B}``) or as an option's
text. Scoring by answer type (:func:`benchmarks.scoring.is_correct_typed`) uses these. Pure text handling: the
registry imports it without loading the scorer.
"""

from __future__ import annotations

import re

ANSWER_TYPES = ("multi_choice", "free_form")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_BOXED = re.compile(r"\\(?:boxed|fbox)\{([^{}]*)\}")
_ANSWER_PHRASE = re.compile(r"\b(?:answer|option|choice)\s*(?:is|:)\s*[:\-]?\s*(.+)", re.IGNORECASE)
# A whole span that is one option letter: "B", "(B)", "B.", "B:", "B)", "(b)"; lower case only in parentheses
# (a bare "a" is an article far more often than an option).
_LETTER_ONLY = re.compile(r"^(?:\(\s*([A-Za-z])\s*\)|([A-Z])[.:)]?)$")
# A span that starts with a marked letter: "(B) 145°", "B. 3", "B: yes", "B) no" (not "A triangle ...").
_LETTER_LEAD = re.compile(r"^(?:\(([A-Z])\)|([A-Z])[.:)])\s*\S")


def normalize_text(s: str) -> str:
    """Lower-case, drop ``$``, LaTeX spacing, braces and surrounding punctuation, collapse spaces."""
    s = str(s).strip().replace("$", "")
    s = re.sub(r"\^\{?\\circ\}?|°|\\circ", "", s)  # degrees: "145°", "145^\\circ", "145^{\\circ}" -> "145"
    s = re.sub(r"\\(?:left|right|,|;|!|\s)", "", s)
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s)
    s = s.replace("{", "").replace("}", "")
    s = re.sub(r"\s+", " ", s).strip().strip(".;,").strip()
    return s.lower()


def parse_choices(value) -> list[str] | None:
    """Choices as a list of strings: lists pass through; We-Math's "A. x; B. y" strings are split."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, list):
        return [str(c) for c in value]
    parts = re.split(r"\s*;\s*(?=[A-Z][.:])", str(value).strip())
    out = [re.sub(r"^[A-Z][.:]\s*", "", p).strip() for p in parts if p.strip()]
    return out or None


def option_letter(gold: str, choices: list[str] | None) -> str | None:
    """The gold's letter: ``gold`` itself if it is a letter (``"B"``, ``"(B)"``), else the letter of the choice
    whose text equals ``gold`` after :func:`normalize_text`; None if neither."""
    g = str(gold).strip()
    m = _LETTER_ONLY.match(g)
    letter = (m.group(1) or m.group(2)).upper() if m else None
    if letter and (not choices or LETTERS.index(letter) < len(choices)):
        return letter
    if choices:
        ng = normalize_text(g)
        for i, c in enumerate(choices):
            if normalize_text(c) == ng:
                return LETTERS[i]
    return None


def _candidates(completion: str) -> list[str]:
    """Answer spans, most specific first: last \\boxed{}, text after the last "answer is"/"Answer:", last line."""
    text = str(completion).strip()
    out = []
    boxed = _BOXED.findall(text)
    if boxed:
        out.append(boxed[-1])
    phrases = list(_ANSWER_PHRASE.finditer(text))
    if phrases:
        out.append(phrases[-1].group(1).strip().split("\n")[0])
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if lines:
        out.append(lines[-1])
    return out


def extract_choice(completion: str, choices: list[str] | None, n_options: int | None = None) -> str | None:
    """The option letter a completion picks, or None. A span that is a single letter (``B``, ``(B)``, ``B.``),
    starts with one (``(B) 145°``, ``B. 3``), or equals an option's text counts; letters beyond the number of
    options (``n_options`` or ``len(choices)``; all 26 when both are unknown) do not."""
    limit = n_options or (len(choices) if choices else len(LETTERS))
    valid = set(LETTERS[:limit])
    for span in _candidates(completion):
        span = span.strip().strip("*").strip()
        m = _LETTER_ONLY.match(span) or _LETTER_LEAD.match(span)
        letter = (m.group(1) or m.group(2)).upper() if m else None
        if letter in valid:
            return letter
        if choices:
            ns = normalize_text(span)
            for i, c in enumerate(choices):
                if ns and normalize_text(c) == ns:
                    return LETTERS[i]
    return None
