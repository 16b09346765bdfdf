"""The toy translation task of the DAG models: French number phrases to English ones, 0 to 999 999.

The English side is multimodal on purpose: each example picks, at random, an article ("one thousand" or "a thousand",
for a leading one before hundred or thousand) and for each group of three digits a style ("two hundred forty-three"
or British "two hundred and forty-three"; each "and" is optional in English, so each group chooses its own).
Renderings of one length can differ in where their "and" is ("two hundred and forty-three thousand four hundred
five" / "two hundred forty-three thousand four hundred and five"), so a model that picks each position's token on
its own (a plain non-autoregressive one, once it has chosen the length) can mix them. A prediction is correct if it
equals any valid rendering; it is "mixed" if it is not, but takes each token from one valid rendering of its length
or another: the failure a non-autoregressive model makes when each position picks its own mode.

Why the style is chosen per group: keeping one style through the whole phrase is a long-range dependency (the
second group's "and" depends on the first's), which a DAG's first-order transitions cannot carry; a DA-Transformer
trained that way mixed styles in a fifth of its outputs (docs/BENCHMARKS.md). A third choice, from 1100 to 9999
"four thousand two hundred" or "forty-two hundred" (two renderings of one length that differ in three tokens), was
tried and dropped: the DA-Transformer, trained on this CPU, put both on one chain of vertices and mixed them in
over half of those numbers (docs/BENCHMARKS.md).

Numbers are split into training and held-out sets by a fixed hash, so held-out numbers are never seen in training.
Everything here is generated; nothing is read from anywhere.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass

MAX_NUMBER = 999_999
HELDOUT_EVERY = 20  # one number in 20 (by hash) is held out

FR_UNITS = ("zéro un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize "
            "dix-sept dix-huit dix-neuf").split()
FR_TENS = {2: "vingt", 3: "trente", 4: "quarante", 5: "cinquante", 6: "soixante"}
EN_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
            "sixteen seventeen eighteen nineteen").split()
EN_TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy", 8: "eighty", 9: "ninety"}
STYLES = ("plain", "and")  # per group: "and" is British, "two hundred and five", "one thousand and five"
ARTICLES = ("one", "a")    # "a": "a hundred", "a thousand" for a leading one


def french_below_100(n: int) -> str:
    if n < 20:
        return FR_UNITS[n]
    tens, unit = divmod(n, 10)
    if tens in FR_TENS:
        base = FR_TENS[tens]
        return base if unit == 0 else f"{base} et un" if unit == 1 else f"{base}-{FR_UNITS[unit]}"
    if tens == 7:  # soixante-dix, soixante et onze, soixante-douze...
        return "soixante et onze" if unit == 1 else f"soixante-{FR_UNITS[10 + unit]}"
    if n == 80:
        return "quatre-vingts"
    return f"quatre-vingt-{FR_UNITS[n - 80]}"  # quatre-vingt-un ... quatre-vingt-dix-neuf


def french_below_1000(n: int, final: bool) -> str:
    """`final`: nothing follows (only then do "cents" and "quatre-vingts" take their plural s)."""
    hundreds, rest = divmod(n, 100)
    words = []
    if hundreds:
        cent = "cents" if hundreds > 1 and rest == 0 and final else "cent"
        words += [cent] if hundreds == 1 else [FR_UNITS[hundreds], cent]
    if rest:
        words.append(french_below_100(rest) if final or rest != 80 else "quatre-vingt")
    return " ".join(words)


def french(n: int) -> str:
    check_number(n)
    if n == 0:
        return FR_UNITS[0]
    thousands, rest = divmod(n, 1000)
    words = []
    if thousands:
        words += ["mille"] if thousands == 1 else [french_below_1000(thousands, final=False), "mille"]
    if rest:
        words.append(french_below_1000(rest, final=True))
    return " ".join(words)


FR_VALUES = {**{w: i for i, w in enumerate(FR_UNITS) if "-" not in w}, **{w: 10 * t for t, w in FR_TENS.items()},
             "vingts": 20}


def parse_french(phrase: str) -> int | None:
    """The number a French phrase names, or None if it is not one as `french` writes it (checked by writing it
    back, so a phrase in any other form is None): sums word values, "cent" multiplies what came before it in its
    group, "mille" closes the thousands."""
    words = [w for w in re.split(r"[\s-]+", phrase.strip().lower()) if w and w != "et"]
    total = group = 0
    for i, word in enumerate(words):
        if word in ("cent", "cents"):
            group = max(group, 1) * 100
        elif word == "mille":
            total, group = total + max(group, 1) * 1000, 0
        elif word in ("vingt", "vingts") and i and words[i - 1] == "quatre":
            group += 80 - 4  # quatre-vingt: the "quatre" already counted
        elif word in FR_VALUES:
            group += FR_VALUES[word]
        else:
            return None
    n = total + group
    return n if n <= MAX_NUMBER and french(n) == " ".join(phrase.lower().split()) else None


def english_below_100(n: int) -> str:
    if n < 20:
        return EN_UNITS[n]
    tens, unit = divmod(n, 10)
    return EN_TENS[tens] if unit == 0 else f"{EN_TENS[tens]}-{EN_UNITS[unit]}"


def english_below_1000(n: int, style: str, article: str, leading: bool) -> list[str]:
    hundreds, rest = divmod(n, 100)
    words = []
    if hundreds:
        one = article if leading else "one"
        words += [one if hundreds == 1 else EN_UNITS[hundreds], "hundred"]
    if rest:
        if hundreds and style == "and":
            words.append("and")
        words.append(english_below_100(rest))
    return words


def english(n: int, styles: tuple[str, str] = ("plain", "plain"), article: str = "one") -> str:
    """One rendering of `n` in English: `styles` of the thousands group and of the last group, and the article."""
    check_number(n)
    if n == 0:
        return EN_UNITS[0]
    upper, style = styles
    thousands, rest = divmod(n, 1000)
    words = []
    if thousands == 1:
        words += [article, "thousand"]
    elif thousands:
        words += english_below_1000(thousands, upper, article, leading=True) + ["thousand"]
    if rest:
        if thousands and rest < 100 and style == "and":
            words.append("and")
        words += english_below_1000(rest, style, article, leading=not thousands)
    return " ".join(words)


def renderings(n: int) -> set[str]:
    """Every valid English rendering of `n`."""
    return {english(n, styles, article) for styles, article in
            itertools.product(itertools.product(STYLES, repeat=2), ARTICLES)}


def pieces(text: str) -> list[str]:
    """Words and hyphens, as the tokenizer splits them."""
    return re.findall(r"[^\s-]+|-", text)


def judge(prediction: str, n: int) -> str:
    """'correct' (any valid rendering), 'mixed' (each token from one valid rendering of that length or another)
    or 'wrong'."""
    prediction = " ".join(prediction.split())
    valid = renderings(n)
    if prediction in valid:
        return "correct"
    mine = pieces(prediction)
    same_length = [pieces(v) for v in valid if len(pieces(v)) == len(mine)]
    mixed = len(same_length) > 1 and all(any(v[i] == w for v in same_length) for i, w in enumerate(mine))
    return "mixed" if mixed else "wrong"


def check_number(n: int) -> None:
    if not (isinstance(n, int) and 0 <= n <= MAX_NUMBER):
        raise ValueError(f"numbers run from 0 to {MAX_NUMBER}, got {n!r}")


def is_heldout(n: int) -> bool:
    """A fixed multiplicative hash: about one number in HELDOUT_EVERY from 100 up, spread over every magnitude.
    Numbers below 100 are the task's vocabulary (every larger number is built from them), so all are trained on."""
    return n >= 100 and (n * 2654435761) % 2**32 % HELDOUT_EVERY == 0


def sample_number(rng: random.Random, heldout: bool) -> int:
    """A number with a uniformly chosen count of digits (so small numbers are not drowned), from one split."""
    while True:
        digits = rng.randint(1 if not heldout else 3, 6)
        n = rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10 ** digits - 1)
        if is_heldout(n) == heldout:
            return n


@dataclass(frozen=True)
class Example:
    number: int
    source: str  # French
    target: str  # one English rendering, chosen at random


def example(n: int, rng: random.Random) -> Example:
    styles = (rng.choice(STYLES), rng.choice(STYLES))
    return Example(n, french(n), english(n, styles, rng.choice(ARTICLES)))


def examples(count: int, seed: int, heldout: bool) -> list[Example]:
    """`count` examples from one split; distinct numbers for the held-out set (the test set)."""
    rng = random.Random(seed)
    if not heldout:
        return [example(sample_number(rng, False), rng) for _ in range(count)]
    seen, out = set(), []
    while len(out) < count:
        n = sample_number(rng, True)
        if n not in seen:
            seen.add(n)
            out.append(example(n, rng))
    return out


def words() -> list[str]:
    """Every word either language uses (a number's words all appear among 0-999 and the multiples of 1000)."""
    found = set()
    for n in itertools.chain(range(1000), range(1000, MAX_NUMBER + 1, 1000)):
        found.update(french(n).split())
        for text in renderings(n):
            found.update(text.split())
    return sorted(found)
