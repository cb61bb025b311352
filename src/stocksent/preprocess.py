"""Message normalisation: raw StockTwits text -> a list of word tokens.

Pure functions, no I/O. The rules follow the O'Reilly article's `preprocess_ST_message`
(lower-case, entity tokens, strip HTML entities and punctuation), with two deliberate
differences: links are matched before cashtags and users (so `https://x.com/@a/$b` stays one
link), and emoji can be kept as tokens of their own instead of being deleted.
"""
from __future__ import annotations

import re
import string

TICKER, USER, LINK, PRICE, NUMBER = "<TICKER>", "<USER>", "<LINK>", "<PRICE>", "<NUMBER>"
SPECIAL_TOKENS = (TICKER, USER, LINK, PRICE, NUMBER)

# The text is lower-cased before these run, so upper-case placeholders cannot collide with words.
_LINK = re.compile(r"(?:https?://|www\.)\S+")
_USER = re.compile(r"@\w+")
_TICKER = re.compile(r"\$[a-z]+")
# "$2.50" or "2.50$", but not a percentage such as "$5%".
_PRICE = re.compile(r"\$[0-9]*\.?[0-9]+(?![0-9%])|[0-9]*\.?[0-9]+\$")
_NUMBER = re.compile(r"[0-9]*\.?[0-9]+")
_HTML_ENTITY = re.compile(r"&#?\w+;?")

# Pictographs, dingbats, arrows and flags; skin tones, joiners and variation selectors are
# dropped so that "👍🏻" and "👍" are the same token.
_EMOJI = re.compile(
    "[\u2190-\u21ff\u2300-\u23ff\u25a0-\u27bf\u2b00-\u2bff\U0001f000-\U0001f3fa\U0001f400-\U0001faff]"
)
_EMOJI_NOISE = re.compile("[\u200d\ufe0e\ufe0f\U0001f3fb-\U0001f3ff]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_PUNCTUATION = re.compile("[" + re.escape(string.punctuation) + "]")
_NOT_ASCII_OR_EMOJI = re.compile("[^\x00-\x7f" + _EMOJI.pattern[1:])
_PLACEHOLDER = re.compile("\x00([A-E])\x00")
_PLACEHOLDER_TOKEN = {code: f" {token} " for code, token in zip("ABCDE", SPECIAL_TOKENS)}


def normalize(text: str, keep_emoji: bool = True) -> str:
    """Return the message as space-separated tokens, entities replaced by special tokens."""
    # Entities go first so that "&#8217;" does not leave a <NUMBER> behind.
    text = _HTML_ENTITY.sub("", text.replace("\x00", " ").lower())
    text = _LINK.sub(" \x00C\x00 ", text)
    text = _USER.sub(" \x00B\x00 ", text)
    text = _TICKER.sub(" \x00A\x00 ", text)
    text = _PRICE.sub(" \x00D\x00 ", text)
    text = _NUMBER.sub(" \x00E\x00 ", text)
    if keep_emoji:
        text = _EMOJI_NOISE.sub("", text)
        text = _EMOJI.sub(lambda m: f" {m.group()} ", text)
        text = _NOT_ASCII_OR_EMOJI.sub("", text)
    else:
        text = _NON_ASCII.sub("", text)
    # Placeholders are control characters, so punctuation removal cannot touch them.
    text = _PUNCTUATION.sub("", text)
    text = _PLACEHOLDER.sub(lambda m: _PLACEHOLDER_TOKEN[m.group(1)], text)
    return " ".join(text.split())


def tokenize(text: str, keep_emoji: bool = True) -> list[str]:
    """Normalise a raw message and split it into tokens."""
    return normalize(text, keep_emoji).split()
