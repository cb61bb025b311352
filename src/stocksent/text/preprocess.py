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
ENTITY_CODES = {"L": LINK, "U": USER, "T": TICKER, "P": PRICE, "N": NUMBER}

_LINK_RE = re.compile(r"(?:https?://|www\.)\S+")
_USER_RE = re.compile(r"@\w+")
_TICKER_RE = re.compile(r"\$[a-z]+")
# "$2.50" or "2.50$", not a percentage such as "$5%": [$0-9.] is the first character, and
# the look-behinds pick the branch it started.
_PRICE_RE = re.compile(r"[$0-9.](?:(?<=\$)[0-9]*\.?[0-9]+(?![0-9%])"
                       r"|(?<=[0-9])[0-9]*(?:\.[0-9]+)?\$|(?<=\.)[0-9]+\$)")
# "12", "1.5", ".5"
_NUMBER_RE = re.compile(r"[0-9.](?:(?<=[0-9])[0-9]*(?:\.[0-9]+)?|(?<=\.)[0-9]+)")
ENTITY_PATTERNS = {LINK: _LINK_RE, USER: _USER_RE, TICKER: _TICKER_RE, PRICE: _PRICE_RE, NUMBER: _NUMBER_RE}
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
    return [ENTITY_CODES.get(w, w) for w in coded_words(text, keep_emoji)]


def coded_words(text: str, keep_emoji: bool = True) -> list[str]:
    """`tokenize` but for its last step: entities are left as their one-letter codes
    (ENTITY_CODES), for callers that map each word on through a table of their own anyway."""
    text = _lowered(text)
    ascii_only = text.isascii()
    text = _entity_codes(text)
    if ascii_only:
        return text.encode("ascii").translate(_BYTE_TABLE, _PUNCTUATION).decode("ascii").split()
    text = _emoji_tokens(text) if keep_emoji else _NOT_ASCII.sub("", text)
    return text.translate(_STR_TABLE).split()


def first_ticker(text: str) -> str:
    """The message's first cashtag as `tokenize` finds cashtags, upper-cased without its $; ""
    when it has none."""
    if "$" not in text:
        return ""
    found = _TICKER_RE.search(_link_and_user_codes(_lowered(text)))
    return found.group()[1:].upper() if found else ""


def normalize(text: str, keep_emoji: bool = True) -> str:
    """Return the message as space-separated tokens, entities replaced by special tokens."""
    return " ".join(tokenize(text, keep_emoji))


def _lowered(text: str) -> str:
    """Lower-cased, HTML entities gone: first, so that "&#8217;" does not leave a <NUMBER> behind."""
    text = text.lower()
    return _HTML_ENTITY.sub("", text) if "&" in text else text


def _entity_codes(text: str) -> str:
    text = _link_and_user_codes(text)
    if "$" in text:
        text = _PRICE_RE.sub(" P ", _TICKER_RE.sub(" T ", text))
    return _NUMBER_RE.sub(" N ", text)


def _link_and_user_codes(text: str) -> str:
    # Each pattern runs only on text that can hold it (plain substring tests are far cheaper
    # than a regex scan); links first, so that "https://x.com/@a/$b" stays one link and its $b
    # no cashtag.
    if "http" in text or "www." in text:
        text = _LINK_RE.sub(" L ", text)
    if "@" in text:
        text = _USER_RE.sub(" U ", text)
    return text


def _emoji_tokens(text: str) -> str:
    text = _EMOJI_NOISE.sub("", text)
    text = _EMOJI.sub(r" \g<0> ", text)
    return _NOT_ASCII_OR_EMOJI.sub("", text)
