"""The message catalogue: every message in both languages with the same placeholders, and
numbers written each language's way."""

import pytest

from mnistlab.messages import LANGS, catalogue, number, placeholders, t


@pytest.mark.parametrize("key", sorted(catalogue()))
def test_every_message_is_in_every_language_with_the_same_placeholders(key):
    entry = catalogue()[key]
    assert set(entry) == set(LANGS), key
    assert all(entry[lang].strip() for lang in LANGS)
    assert placeholders(entry["en"]) == placeholders(entry["es"])


def test_numbers_are_written_the_languages_way():
    assert t("en", "method.seeds", n=3, seeds="0, 1, 2").startswith("Each configuration")
    assert "10,000 training images" in t("en", "method.data", dataset="mnist", train=10000,
                                         val=1000, val_where="x", test=10000)
    assert "10.000 imágenes" in t("es", "method.data", dataset="mnist", train=10000, val=1000,
                                  val_where="x", test=10000)
    assert number(89.156, ".2f", "es") == "89,16" and number(89.156, ".2f", "en") == "89.16"
    assert number(1234567.5, ",.1f", "es") == "1.234.567,5"
    # text placeholders are left alone, even when they hold digits and dots
    assert "lr=0.001" in t("es", "method.base", base="lr=0.001")
