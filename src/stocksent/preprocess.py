"""Message normalisation: raw StockTwits text -> a list of word tokens.

Pure functions, no I/O. The rules follow the O'Reilly article's `preprocess_ST_message`
(lower-case, entity tokens, strip HTML entities and punctuation), with two deliberate
differences: links are matched before cashtags and users (so `https://x.com/@a/$b` stays one
link), and emoji can be kept as tokens of their own instead of being deleted.

It runs on every message scored, so it is written for speed: each entity pattern starts with
a single character class (Python's regex engine then skips ahead to candidate positions
instead of trying every one), runs only on text that can hold it, and plain-ASCII messages
lose their punctuation in one bytes.translate. The readable definitions of the patterns live in
tests/test_preprocess.py, which checks these against them.
"""
from __future__ import annotations

import re
import string

TICKER, USER, LINK, PRICE, NUMBER = "<TICKER>", "<USER>", "<LINK>", "<PRICE>", "<NUMBER>"
SPECIAL_TOKENS = (TICKER, USER, LINK, PRICE, NUMBER)

# Entities are first replaced by an upper-case letter standing alone: the text is lower-cased
# before, so a lone upper-case letter can only be one of these codes.
_CODE_TOKEN = {"L": LINK, "U": USER, "T": TICKER, "P": PRICE, "N": NUMBER}

# (pattern, code, a substring the text must hold for the pattern to match; None: always try)
_ENTITIES = [
    (re.compile(r"(?:https?://|www\.)\S+"), " L ", ("http", "www.")),
    (re.compile(r"@\w+"), " U ", ("@",)),
    (re.compile(r"\$[a-z]+"), " T ", ("$",)),
    # "$2.50" or "2.50$", not a percentage such as "$5%": [$0-9.] is the first character, and
    # the look-behinds pick the branch it started.
    (re.compile(r"[$0-9.](?:(?<=\$)[0-9]*\.?[0-9]+(?![0-9%])"
                r"|(?<=[0-9])[0-9]*(?:\.[0-9]+)?\$|(?<=\.)[0-9]+\$)"), " P ", ("$",)),
    # "12", "1.5", ".5"
    (re.compile(r"[0-9.](?:(?<=[0-9])[0-9]*(?:\.[0-9]+)?|(?<=\.)[0-9]+)"), " N ", None),
]
_HTML_ENTITY = re.compile(r"&#?\w+;?")

# Pictographs, dingbats, arrows and flags; skin tones, joiners and variation selectors are
# dropped so that "👍🏻" and "👍" are the same token.
_EMOJI_CLASS = "\u2190-\u21ff\u2300-\u23ff\u25a0-\u27bf\u2b00-\u2bff\U0001f000-\U0001f3fa\U0001f400-\U0001faff"
_EMOJI = re.compile(f"[{_EMOJI_CLASS}]")
_EMOJI_NOISE = re.compile("[\u200d\ufe0e\ufe0f\U0001f3fb-\U0001f3ff]")
_NOT_ASCII = re.compile("[^\x00-\x7f]")
_NOT_ASCII_OR_EMOJI = re.compile(f"[^\x00-\x7f{_EMOJI_CLASS}]")

# Punctuation is deleted; control characters separate words rather than join them.
_PUNCTUATION = string.punctuation.encode()
_CONTROLS = bytes([*range(32), 127])
_BYTE_TABLE = bytes.maketrans(_CONTROLS, b" " * len(_CONTROLS))
_STR_TABLE = str.maketrans({**{p: None for p in string.punctuation}, **{chr(c): " " for c in _CONTROLS}})


def tokenize(text: str, keep_emoji: bool = True) -> list[str]:
    """Normalise a raw message and split it into tokens."""
    text = text.lower()
    ascii_only = text.isascii()
    if "&" in text:  # entities go first so that "&#8217;" does not leave a <NUMBER> behind
        text = _HTML_ENTITY.sub("", text)
    for pattern, code, needles in _ENTITIES:
        if needles is None or any(n in text for n in needles):
            text = pattern.sub(code, text)
    if ascii_only:
        words = text.encode("ascii").translate(_BYTE_TABLE, _PUNCTUATION).decode("ascii").split()
    else:
        text = _emoji_tokens(text) if keep_emoji else _NOT_ASCII.sub("", text)
        words = text.translate(_STR_TABLE).split()
    return [_CODE_TOKEN.get(w, w) for w in words]


def normalize(text: str, keep_emoji: bool = True) -> str:
    """Return the message as space-separated tokens, entities replaced by special tokens."""
    return " ".join(tokenize(text, keep_emoji))


def _emoji_tokens(text: str) -> str:
    text = _EMOJI_NOISE.sub("", text)
    text = _EMOJI.sub(r" \g<0> ", text)
    return _NOT_ASCII_OR_EMOJI.sub("", text)
