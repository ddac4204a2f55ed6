"""Unicode normalisation before scanning, and the offset map back to the original text."""

from __future__ import annotations

import random

from maestro.tools.pii.normalize import hidden_runs, is_invisible, normalize


def _tags(ascii_text: str) -> str:
    return "".join(chr(0xE0000 + ord(c)) for c in ascii_text)


def test_ascii_is_returned_unchanged() -> None:
    norm = normalize("plain ascii text, nothing to do")
    assert norm.text == norm.original
    assert not norm.changed
    assert norm.to_original(6, 11) == (6, 11)


def test_zero_width_characters_are_removed_and_spans_map_back() -> None:
    original = "mail jo\u200bhn@exam\u200dple.com\ufeff now"
    norm = normalize(original)
    assert norm.text == "mail john@example.com now"
    start = norm.text.index("john")
    end = start + len("john@example.com")
    o_start, o_end = norm.to_original(start, end)
    assert original[o_start:o_end] == "jo\u200bhn@exam\u200dple.com"


def test_every_format_character_is_invisible() -> None:
    for ch in ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\U000e0041"]:
        assert is_invisible(ch), hex(ord(ch))
    assert not is_invisible("a")


def test_tag_characters_are_stripped_and_decoded_as_hidden_text() -> None:
    original = "hello" + _tags("AKIA secret") + " world"
    norm = normalize(original)
    assert norm.text == "hello world"
    runs = hidden_runs(original)
    assert runs == [(5, 5 + len("AKIA secret"), "AKIA secret")]


def test_nfkc_folds_fullwidth_and_maps_each_character_back() -> None:
    original = "ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ"
    norm = normalize(original)
    assert norm.text == "john@example.com"
    assert norm.to_original(0, len(norm.text)) == (0, len(original))
    assert norm.to_original(1, 2) == (1, 2)


def test_combining_marks_compose_and_keep_their_cluster() -> None:
    original = "Jose\u0301 Garci\u0301a"
    norm = normalize(original)
    assert norm.text == "José García"
    assert norm.to_original(0, 4) == (0, 5)


def test_homoglyphs_fold_inside_mixed_script_words_only() -> None:
    assert normalize("j\u043ehn@ex\u0430mple.com").text == "john@example.com"  # Cyrillic о and а
    assert normalize("D\u0430vid").text == "David"
    assert (
        normalize("\u03a1\u0391\u03a5\u039f\u039b").text == "\u03a1\u0391\u03a5\u039f\u039b"
    )  # ΡΑΥΟΛ: Greek Λ
    assert normalize("Москва and ΑΓΛΑΝΤΖΙΑ").text == "Москва and ΑΓΛΑΝΤΖΙΑ"


def test_all_lookalike_words_fold() -> None:
    assert normalize("\u0440\u0430\u0443\u0440\u0430l").text == "paypal"


def test_offset_map_is_monotonic_and_in_bounds_on_random_text() -> None:
    alphabet = ["a", "B", " ", "@", ".", "\u200b", "\u0430", "ｅ", "\u0301", "\U000e0041", "ﬁ", "é", "7"]
    rng = random.Random(8)
    for _ in range(300):
        original = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        norm = normalize(original)
        for start in range(len(norm.text)):
            for end in range(start + 1, len(norm.text) + 1):
                o_start, o_end = norm.to_original(start, end)
                assert 0 <= o_start < o_end <= len(original)
        if norm.changed:
            assert list(norm.starts) == sorted(norm.starts)
