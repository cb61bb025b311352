import numpy as np
import pytest

from stocksent.text.labels import known_codes, label_codes, name_codes, recorded_classes, spelled, text_list


def test_label_names_are_compared_as_spelled():
    assert [spelled(v) for v in (" Bullish ", True, 1, None)] == ["bullish", "true", "1", ""]
    assert name_codes("Bearish", " BULLISH") == {"bearish": 0, "bullish": 1}


def test_names_put_the_negative_first_whatever_comes_first_and_other_values_sort():
    codes, classes = label_codes(["bullish", "bearish", "bullish"], 3, "bearish", "bullish")
    assert classes.tolist() == ["bearish", "bullish"] and codes.tolist() == [1, 0, 1]
    codes, classes = label_codes([1, 0, 0], 3, "bearish", "bullish")
    assert classes.tolist() == [0, 1] and codes.tolist() == [1, 0, 0]
    codes, classes = label_codes([True, False], 2, "bearish", "bullish")
    assert classes.tolist() == [False, True] and codes.tolist() == [1, 0]


@pytest.mark.parametrize("labels, n, match", [
    (["bullish", "bearish", "neutral"], 3, "3 distinct value"),
    (["bullish", "bullish"], 2, "1 distinct value"),
    (["bullish"], 2, "2 texts but 1 labels"),
    ("bullish", 7, "iterable of label values"),
])
def test_labels_that_cannot_be_two_classes_are_refused_with_the_reason(labels, n, match):
    with pytest.raises((ValueError, TypeError), match=match):
        label_codes(labels, n, "bearish", "bullish")


def test_known_codes_name_the_values_a_model_does_not_know():
    classes = np.asarray(["bearish", "bullish"])
    assert known_codes(["bullish", "bearish"], 2, classes).tolist() == [1, 0]
    with pytest.raises(ValueError, match="unknown label value.*'up'.*this model knows 'bearish', 'bullish'"):
        known_codes(["up", "bullish"], 2, classes)


def test_text_list_takes_any_iterable_of_strings_and_names_the_first_that_is_not():
    assert text_list(("a", "b")) == ["a", "b"] and text_list(np.asarray(["x"])) == ["x"]
    with pytest.raises(TypeError, match="item 1 is int"):
        text_list(["a", 3])
    with pytest.raises(TypeError, match="not str"):
        text_list("one string")


def test_recorded_classes_are_those_fit_saw_when_they_spell_the_labels():
    names = ("0", "1")
    assert recorded_classes(names, {"dataset": {"classes": [0, 1]}}).tolist() == [0, 1]
    assert recorded_classes(("bearish", "bullish"), {"dataset": {"classes": [0, 1]}}).tolist() == ["bearish",
                                                                                                   "bullish"]
    assert recorded_classes(("bearish", "bullish")).tolist() == ["bearish", "bullish"]
