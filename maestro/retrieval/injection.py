"""Flag retrieved text that reads like instructions to a model (indirect prompt injection).

Heuristics only: they mark a chunk as *suspect* so the caller can quote it as data, drop it or ask for
review; they do not prove intent. Text is normalised first (invisible characters dropped, NFKC, Latin
look-alikes folded) so ``ig\\u200bnore previous instructions`` or fullwidth letters do not hide a phrase.

Signals are **strong** (one is enough: "ignore previous instructions", "you are now", requests to reveal
the system prompt, exfiltration, ``javascript:`` links, hidden Unicode tag text, invisible characters
inside words, Base64 that decodes to a strong phrase, chat-template markers) or **weak** (common in honest
documentation too: "open a pull request", "visit https://...", "call the tool", text addressed to an AI).
Two different weak signals make a chunk suspect. A Markdown image whose URL query carries a placeholder or
names conversation data (``![x](https://evil.example/p.png?data={chat})``) is strong; badge images are not.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass

__all__ = ["InjectionVerdict", "looks_like_instructions", "normalize_for_scan"]


@dataclass(frozen=True, slots=True)
class InjectionVerdict:
    """``suspect``: the text should be treated as untrusted instructions; ``reasons``: every signal found."""

    suspect: bool
    reasons: tuple[str, ...] = ()


_F = re.IGNORECASE | re.DOTALL

_STRONG: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "ignore_previous_instructions",
        re.compile(
            r"\b(?:ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}?\b(?:previous|prior|above|earlier|"
            r"preceding|all|any|your|the)\b[^.\n]{0,30}?\b(?:instructions?|prompts?|rules|directives|"
            r"guidelines|guardrails|messages?)\b",
            _F,
        ),
    ),
    (
        "role_reassignment",
        re.compile(
            r"\byou are now\b|\bfrom now on,? you (?:are|will|must)\b|\bnew (?:system )?instructions?\s*:|"
            r"\b(?:act|behave) as (?:an? )?(?:unrestricted|unfiltered|jailbroken|evil)\b|\bDAN mode\b",
            _F,
        ),
    ),
    (
        "system_prompt_request",
        re.compile(
            r"\b(?:reveal|print|show|output|repeat|leak|disclose|dump|send)\b[^.\n]{0,40}?\b(?:system prompt|"
            r"system message|developer message|hidden instructions|initial instructions)\b",
            _F,
        ),
    ),
    (
        "exfiltration",
        re.compile(
            r"\bexfiltrat\w*|\b(?:send|post|upload|forward|leak|email)\b[^.\n]{0,30}?\b(?:api[ _-]?keys?|"
            r"credentials|secrets?|passwords?|access tokens?|env(?:ironment)? variables|chat history|"
            r"conversation(?: history)?|system prompt)\b[^.\n]{0,40}?\b(?:to|at|via)\b",
            _F,
        ),
    ),
    (
        "conceal_from_user",
        re.compile(
            r"\b(?:do not|don't|never)\s+(?:tell|inform|mention (?:this )?to|alert|show)\s+(?:the\s+)?user\b|"
            r"\bwithout (?:telling|informing|asking) the user\b",
            _F,
        ),
    ),
    ("javascript_link", re.compile(r"\]\(\s*javascript:|\bhref\s*=\s*[\"']?\s*javascript:|<javascript:", _F)),
    (
        "chat_template_marker",
        re.compile(
            r"<\|im_start\|>\s*system|<\|system\|>|\[INST\]|<<SYS>>|^\s*#{2,3}\s*system\s*:",
            _F | re.M,
        ),
    ),
)

_WEAK: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "tool_call_request",
        re.compile(
            r"\b(?:call|invoke|execute|trigger)\s+(?:the\s+|this\s+)?[`'\"]?[\w.-]*[`'\"]?\s*tool\b", _F
        ),
    ),
    (
        "pull_request_request",
        re.compile(
            r"\b(?:open|create|submit|file|merge)\s+(?:an?\s+|the\s+)?(?:new\s+)?(?:pull|merge) request\b",
            _F,
        ),
    ),
    (
        "url_fetch_request",
        re.compile(
            r"\b(?:fetch|visit|browse to|navigate to|go to|curl|wget)\b[^.\n]{0,15}?https?://",
            _F,
        ),
    ),
    (
        "addressed_to_ai",
        re.compile(
            r"\b(?:if you are|as) an? (?:ai|llm|language model|assistant|chatbot)\b|"
            r"\b(?:note|message|instructions?) (?:to|for) (?:the |any )?"
            r"(?:ai|llm|assistant|model|agent|chatbot)\b|"
            r"\b(?:dear|attention|hey) (?:ai|llm|assistant|chatgpt|claude|gpt)\b",
            _F,
        ),
    ),
)

_IMAGE_WITH_QUERY = re.compile(r"!\[[^\]]*\]\(\s*<?(https?://[^)\s>]*\?[^)\s>]*)", re.IGNORECASE)
# An image URL whose query carries a placeholder or names data: the classic "render this image" leak.
_LEAKY_QUERY = re.compile(
    r"[{}<>$]|%7B|%24|\[|\b(?:data|secret|password|passwd|chat|history|conversation|prompt|"
    r"exfil|leak|content|info|q|msg)=",
    re.IGNORECASE,
)
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")
_MAX_BLOBS = 20
_MAX_BLOB_LEN = 8192

# --- normalisation ---------------------------------------------------------------------------------------
# A reduced copy of maestro.tools.pii.normalize (retrieval may not import tools: layering). Only what a
# phrase scan needs: drop invisible characters, NFKC, fold the commonest Cyrillic/Greek look-alikes.
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ѕ": "s", "ј": "j",
        "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
        "Х": "X", "ο": "o", "α": "a", "ε": "e", "ι": "i", "ν": "v", "ρ": "p", "τ": "t", "υ": "u",
    }
)  # fmt: skip
_TAG_START, _TAG_END = 0xE0000, 0xE007F
_LATIN = re.compile(r"[A-Za-z]")
_WORD = re.compile(r"\w+")


def _is_invisible(ch: str) -> bool:
    return _TAG_START <= ord(ch) <= _TAG_END or unicodedata.category(ch) == "Cf"


def normalize_for_scan(text: str) -> str:
    """Drop invisible characters, apply NFKC and fold Latin look-alikes inside mixed-script words."""
    if text.isascii():
        return text
    visible = "".join(ch for ch in text if not _is_invisible(ch))
    folded = unicodedata.normalize("NFKC", visible)

    def fold(match: re.Match[str]) -> str:
        word = match.group()
        return word.translate(_CONFUSABLES) if _LATIN.search(word) else word

    return _WORD.sub(fold, folded)


def _hidden_signals(text: str) -> list[str]:
    reasons: list[str] = []
    if text.isascii():
        return reasons
    tags = "".join(chr(ord(c) - _TAG_START) for c in text if 0xE0020 <= ord(c) <= 0xE007E)
    if tags:
        reasons.append("hidden_tag_characters")
    # Invisible characters *between letters* split words to dodge filters; ZWJ in emoji does not match.
    for i in range(1, len(text) - 1):
        ch = text[i]
        if ch.isascii() or not _is_invisible(ch):
            continue
        j = i
        while j < len(text) and _is_invisible(text[j]):
            j += 1
        if text[i - 1].isalpha() and j < len(text) and text[j].isalpha():
            reasons.append("invisible_characters_in_words")
            break
    return reasons


def _phrase_signals(text: str) -> tuple[list[str], list[str]]:
    strong = [name for name, pattern in _STRONG if pattern.search(text)]
    weak = [name for name, pattern in _WEAK if pattern.search(text)]
    for match in _IMAGE_WITH_QUERY.finditer(text):
        url = match.group(1)
        query = url.split("?", 1)[1]
        if _LEAKY_QUERY.search(query):
            strong.append("image_link_with_data_query")
            break
    return strong, weak


def _decoded_blobs(text: str) -> list[str]:
    decoded: list[str] = []
    for match in list(_BASE64.finditer(text))[:_MAX_BLOBS]:
        blob = match.group()[:_MAX_BLOB_LEN]
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        try:
            plain = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if plain and sum(c.isprintable() or c.isspace() for c in plain) / len(plain) > 0.9:
            decoded.append(plain)
    return decoded


def looks_like_instructions(text: str) -> InjectionVerdict:
    """Whether ``text`` (a retrieved chunk) reads like instructions aimed at a model, and why."""
    reasons = _hidden_signals(text)
    strong_hidden = bool(reasons)
    scan = normalize_for_scan(text)
    hidden_tag_text = "".join(chr(ord(c) - _TAG_START) for c in text if 0xE0020 <= ord(c) <= 0xE007E)
    strong, weak = _phrase_signals(scan + ("\n" + hidden_tag_text if hidden_tag_text else ""))
    for plain in _decoded_blobs(scan):
        inner_strong, _ = _phrase_signals(normalize_for_scan(plain))
        if inner_strong:
            strong.append("encoded_instructions")
            break
    reasons.extend(strong)
    reasons.extend(weak)
    unique = tuple(dict.fromkeys(reasons))
    suspect = strong_hidden or bool(strong) or len(set(weak)) >= 2
    return InjectionVerdict(suspect=suspect, reasons=unique)
