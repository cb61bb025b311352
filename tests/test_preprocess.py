import random
import re
import string

from stocksent.text import preprocess
from stocksent.text.preprocess import LINK, NUMBER, PRICE, SPECIAL_TOKENS, TICKER, USER, normalize, tokenize


def find(rows, needle):
    return next(r["message"] for r in rows if needle in r["message"])


def test_cashtags_become_ticker(real_rows):
    text = find(real_rows, "$TSLA seems to be runnning inverse")
    assert tokenize(text)[:4] == ["<TICKER>", "seems", "to", "be"]
    assert "tsla" not in tokenize(text)


def test_users_become_user(real_rows):
    text = find(real_rows, "@April0505 @AlexanderHandleton")
    assert tokenize(text)[:2] == ["<USER>", "<USER>"]


def test_links_become_link_whole(real_rows):
    text = find(real_rows, "http://www.zerohedge.com/news/2017-01-10/")
    tokens = tokenize(text)
    assert tokens.count("<LINK>") == 1
    assert "zerohedge" not in " ".join(tokens) and "<NUMBER>" not in tokens
    assert tokenize("see www.optionsvilla.com now") == ["see", "<LINK>", "now"]


def test_prices_and_numbers():
    assert tokenize("$SPY target $2420.50 or 2430$") == ["<TICKER>", "target", "<PRICE>", "or", "<PRICE>"]
    assert tokenize("up 5% on 1000 shares, q3") == ["up", "<NUMBER>", "on", "<NUMBER>", "shares", "q", "<NUMBER>"]


def test_real_price_message(real_rows):
    text = find(real_rows, "2420 to 2430 on $SPX")
    assert tokenize(text).count("<NUMBER>") == 2


def test_html_entities_and_punctuation_dropped(real_rows):
    text = next(r["message"] for r in real_rows if "S&P" in r["message"])
    assert "&" not in normalize(text)
    assert tokenize("bulls &amp; bears &gt; &#8217;") == ["bulls", "bears"]
    assert tokenize("Buy the D.I.P!!! don't...") == ["buy", "the", "dip", "dont"]


def test_lower_case(real_rows):
    text = find(real_rows, "The indexes are ROARING")
    assert tokenize(text) == ["the", "indexes", "are", "roaring", "<TICKER>", "<TICKER>"]


def test_emoji_kept_as_tokens_by_default(real_rows):
    text = find(real_rows, "tax reform hot off the presses LOL 😂")
    assert tokenize(text)[-2:] == ["lol", "😂"]
    assert tokenize("🚀🚀 moon 👍🏻") == ["🚀", "🚀", "moon", "👍"]


def test_emoji_dropped_as_the_article_does():
    assert tokenize("🚀🚀 moon 🐻", keep_emoji=False) == ["moon"]


def test_angle_brackets_only_survive_in_special_tokens():
    assert tokenize("<b>hi</b> <TICKER> <script>") == ["bhib", "ticker", "script"]


def test_every_special_token_is_produced():
    tokens = set(tokenize("$spy @bob https://x.co $3.5 42"))
    assert tokens == set(SPECIAL_TOKENS)


def test_garbage_gives_no_tokens():
    assert tokenize("!!! ... &amp; ’’ \x00") == []
    assert normalize("") == ""


def test_whole_data_set_average_length(real_rows):
    # The data README: 13.1 tokens on average after the article's normalisation.
    lengths = [len(tokenize(r["message"], keep_emoji=False)) for r in real_rows[:5000]]
    assert 12.0 < sum(lengths) / len(lengths) < 14.5


def test_lone_capitals_and_control_characters_cannot_forge_entities():
    assert tokenize("L U T P N") == ["l", "u", "t", "p", "n"]
    assert tokenize("buy\x01the\x7fdip\x00now") == ["buy", "the", "dip", "now"]


# The article's rules written plainly, one regex after another: the fast tokenizer must give
# exactly what these give.
_READABLE = [
    (re.compile(r"(?:https?://|www\.)\S+"), LINK),
    (re.compile(r"@\w+"), USER),
    (re.compile(r"\$[a-z]+"), TICKER),
    (re.compile(r"\$[0-9]*\.?[0-9]+(?![0-9%])|[0-9]*\.?[0-9]+\$"), PRICE),
    (re.compile(r"[0-9]*\.?[0-9]+"), NUMBER),
]


def readable_tokenize(text: str, keep_emoji: bool) -> list[str]:
    text = re.sub(r"&#?\w+;?", "", text.lower())
    for code, (pattern, _) in zip("ABCDE", _READABLE):
        text = pattern.sub(f" \ue000{code}\ue000 ", text)
    if keep_emoji:
        text = re.sub("[\u200d\ufe0e\ufe0f\U0001f3fb-\U0001f3ff]", "", text)
        text = re.sub(f"[{preprocess._EMOJI_CLASS}]", lambda m: f" {m.group()} ", text)
    kept = "\ue000" + (preprocess._EMOJI_CLASS if keep_emoji else "")
    text = re.sub(f"[^\x00-\x7f{kept}]", "", text)
    text = re.sub("[" + re.escape(string.punctuation) + "]", "", text)
    text = re.sub("[\x00-\x1f\x7f]", " ", text)
    names = {code: token for code, (_, token) in zip("ABCDE", _READABLE)}
    return re.sub("\ue000([A-E])\ue000", lambda m: f" {names[m.group(1)]} ", text).split()


def test_fast_tokenizer_matches_the_readable_rules_on_real_messages(real_rows):
    for row in real_rows[:20000]:
        for keep_emoji in (True, False):
            assert tokenize(row["message"], keep_emoji) == readable_tokenize(row["message"], keep_emoji), row


def test_fast_entity_patterns_match_the_readable_ones_on_random_text():
    rng = random.Random(0)
    for _ in range(20000):
        text = "".join(rng.choice("0123456789..$$%a @:/ ") for _ in range(rng.randint(0, 12)))
        for pattern, token in _READABLE:
            assert preprocess.ENTITY_PATTERNS[token].sub("#", text) == pattern.sub("#", text), (token, text)


# Property tests over arbitrary Unicode. Each counts the inputs it was given, so the figure
# reported for it is what actually ran.
PROPERTY_EXAMPLES = 3000


def run_property(strategy, check, examples=PROPERTY_EXAMPLES):
    from hypothesis import HealthCheck, given, settings

    tried = []

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def prop(value):
        tried.append(1)
        check(value)

    prop()
    assert len(tried) >= examples
    return len(tried)


def _texts():
    from hypothesis import strategies as st

    # Any code point, plus the characters the rules care about, so entities turn up often.
    alphabet = st.one_of(st.characters(), st.sampled_from(list("$@&#;.:/0123456789 abcSPY<>%\n\t\u200d\ufe0f🚀🐻")))
    return st.one_of(st.text(), st.text(alphabet=alphabet, max_size=80))


def test_tokens_never_empty_or_holding_whitespace():
    def check(text):
        for keep_emoji in (True, False):
            tokens = tokenize(text, keep_emoji)
            assert all(t and t == "".join(t.split()) for t in tokens)
            assert all(t in SPECIAL_TOKENS or ("<" not in t and ">" not in t) for t in tokens)
            assert normalize(text, keep_emoji) == " ".join(tokens)
    run_property(_texts(), check)


def test_special_tokens_survive_any_surroundings():
    from hypothesis import strategies as st

    entities = [("$spy", TICKER), ("@trader", USER), ("https://x.co/a?b=1", LINK), ("$4.50", PRICE), ("12", NUMBER)]

    def check(case):
        left, right, k = case
        entity, token = entities[k]
        assert token in tokenize(f"{left} {entity} {right}")
    run_property(st.tuples(_texts(), _texts(), st.integers(0, len(entities) - 1)), check)


def test_normalising_is_stable():
    # The words left after normalising are lower-case, free of punctuation, digits and
    # entities: normalising them again changes nothing. (Special tokens are left out: as text,
    # "<TICKER>" is just a word in brackets.)
    def check(text):
        for keep_emoji in (True, False):
            words = [t for t in tokenize(text, keep_emoji) if t not in SPECIAL_TOKENS]
            assert tokenize(" ".join(words), keep_emoji) == words
    run_property(_texts(), check)


def test_a_message_s_ticker_is_its_first_cashtag_as_tokenize_finds_them(real_rows):
    from stocksent.text.preprocess import first_ticker

    assert first_ticker("$NIO to the moon, then $TSLA") == "NIO"
    assert first_ticker("see https://x.com/$fake first, then $aapl") == "AAPL"
    assert first_ticker("$BTC.X breaking out") == "BTC"
    assert first_ticker("bought at $5.50, no ticker here") == first_ticker("") == ""
    for row in real_rows[:5000]:
        assert (first_ticker(row["message"]) != "") == (TICKER in tokenize(row["message"])), row["message"]
