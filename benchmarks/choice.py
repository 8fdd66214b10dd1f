"""Answers by type: multiple choice (an option letter) or free form (``benchmarks.scoring``, math-verify).

    from benchmarks import choice
    choice.is_correct("The answer is (B).", gold="B", answer_type="multi_choice", choices=["1", "2"])  # True
    choice.is_correct("\\boxed{3}", gold="3", answer_type="free_form")                                # math-verify

Multiple choice: the predicted option is read as a letter ("B", "(B)", "B.", "Answer: B", ``\\boxed{B}``) or as
an option's text, and compared with the gold letter (a gold given as option text is mapped to its letter first).
With no letter, an equivalent value of the gold option (e.g. "145" for "145°") still counts. Free form:
``benchmarks.scoring.is_correct``. Text benchmarks are free form; VL benchmarks say per row (registry
``answer_type``).
"""

from __future__ import annotations

import re

from benchmarks import scoring

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


def is_correct(completion: str, gold: str, answer_type: str = "free_form", choices: list[str] | None = None,
               timeout: float | None = None) -> bool:
    """Score one completion by ``answer_type`` (``multi_choice`` or ``free_form``; see the module docstring)."""
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"answer_type must be 'multi_choice' or 'free_form'; got {answer_type!r}")
    kw = {"timeout": timeout} if timeout else {}
    if answer_type == "free_form":
        return scoring.is_correct(str(completion), str(gold), **kw)
    gold_letter = option_letter(gold, choices)
    if gold_letter is None:
        raise ValueError(f"multiple-choice gold {gold!r} is neither a letter nor one of the choices {choices!r}")
    picked = extract_choice(completion, choices)
    if picked is not None:
        return picked == gold_letter
    if choices:  # no letter: an equivalent value of the gold option (e.g. "145" for "145°") still counts
        gold_text = choices[LETTERS.index(gold_letter)]
        extracted = scoring.extract_answer(str(completion))
        if extracted is not None and normalize_text(extracted) == normalize_text(gold_text):
            return True
        return scoring.is_correct(str(completion), normalize_text(gold_text) or gold_text, **kw)
    return False


def extracted_answer(completion: str, answer_type: str = "free_form", choices: list[str] | None = None) -> str | None:
    """What the scorer read from a completion (the records' ``extracted`` field, and maj@k)."""
    if answer_type == "multi_choice":
        return extract_choice(completion, choices) or scoring.extract_answer(str(completion))
    return scoring.extract_answer(str(completion))
