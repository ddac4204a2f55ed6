"""Phone numbers and payment card numbers that do not fire on every other run of digits.

Presidio's own phone recognizer (python-phonenumbers over eight regions) both misses short national
formats (``78 651 450``) and fires on SSNs, IP addresses and card numbers. These detectors decide from the
shape of the number AND the words around it:

* **Phone**: 7..15 digits in groups separated by single spaces, dots or dashes, an optional ``+``/``00``
  country prefix, ``(0)`` trunk notation and an extension. Fires without context only for unambiguous
  shapes (``+CC ...``, ``00CC ...``, North-American ``(415) 555-0134`` / ``415-555-0134``); otherwise a
  phone word (phone, tel, mobile, fax, call, office, ...) must be near. Never fires on IPv4 addresses,
  dates (``2024-01-15``, ``15.01.2024``), SSN shapes, Luhn-valid card-length runs, prices (a currency
  sign or code just before), numbers glued to letters (git SHAs, UUIDs, digests) or after an
  order/invoice/tracking/version word.
* **Card**: 12..19 digits (single spaces or dashes allowed), Luhn-valid, not one repeated digit.
  With card context (card, credit, visa, cc, billing, ...) it fires; without context it needs a known
  issuer prefix and a length valid for that issuer, and no negative word (order, invoice, isbn, ...).
"""

from __future__ import annotations

import re

from maestro.tools.pii.entities import Span

__all__ = ["find_cards", "find_phones", "luhn_valid"]

# Groups of digits separated by exactly one separator (or a "(0)" trunk prefix); possessive quantifiers,
# so a long run of digits is consumed once instead of being split every possible way (no ReDoS).
_PHONE = re.compile(
    r"(?<![\w+/.:\-])"
    r"(?P<num>(?:\+|00)?(?:\(\d{1,4}\)\s?)?\d++(?:(?:[ .\-]|\s?\(0\)\s?|\s?\(\d{1,4}\)\s?)\d++){0,6}+)"
    r"(?P<ext>\s?(?:x|ext\.?|extension)\s?\d{1,6})?"
    r"(?![\w/]|[.,\-]\d)",
    re.IGNORECASE,
)
_NANP = re.compile(r"^(?:\+?1[ .\-]?)?(?:\(\d{3}\)\s?|\d{3}[ .\-])\d{3}[ .\-]\d{4}$")
_INTERNATIONAL = re.compile(r"^(?:\+|00)[1-9]\d{0,3}(?:[ .\-]|\(0\)|\s\(0\))")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_DATE = re.compile(r"^(?:\d{4}[\-./]\d{1,2}[\-./]\d{1,2}|\d{1,2}[\-./]\d{1,2}[\-./]\d{2,4})$")
_SSN = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_PHONE_WORDS = re.compile(
    r"\b(?:phones?|tel|tele|telephone|mobile|mob|cell|cellphone|fax|call|called|calling|dial|ring|sms"
    r"|whatsapp|landline|hotline|voicemail|texting|message|messages|answer|answering)\b",
    re.IGNORECASE,
)
# weaker words count only right next to the number
_PHONE_WORDS_NEAR = re.compile(r"\b(?:number|contact|reach|office|desk|home|work|text)\b", re.IGNORECASE)
_FOLLOWED_BY_NAME = re.compile(r"^,?\s+[A-Z][a-z]+")
_PHONE_NEGATIVE = re.compile(
    r"(?:\b(?:order|orders|invoice|inv|ticket|tracking|track|shipment|parcel|ref|reference|sku|serial"
    r"|isbn|ean|upc|account|acct|iban|routing|policy|passport|licen[cs]e|ssn|social|version|ver|v|build"
    r"|release|rev|revision|id|pid|port|price|total|amount|usd|eur|gbp|chf|jpy|card|visa|po)\b"
    r"(?:\s+(?:number|no|nr|num|id|code))?(?:\s+(?:is|was|of))?|[#$€£¥])[\s:#.\-]*$",
    re.IGNORECASE,
)
_CURRENCY_BEFORE = re.compile(r"(?:[$€£¥]|\b(?:USD|EUR|GBP|CHF|JPY|CAD|AUD))\s?$", re.IGNORECASE)

_CARD = re.compile(r"(?<![\w.+/\-])(\d(?:[ \-]?\d){11,18})(?![\w/]|[.,\-]\d)")
_CARD_WORDS = re.compile(
    r"\b(?:card|cards|credit|debit|visa|mastercard|master\s?card|amex|american\s+express|discover|jcb"
    r"|diners|maestro|unionpay|cc|ccn|pan|payment|pay|paid|charge|charged|billing|billed|cvv|cvc|expir\w*)\b",
    re.IGNORECASE,
)
_CARD_NEGATIVE = re.compile(
    r"\b(?:order|invoice|tracking|shipment|parcel|isbn|ean|upc|ref|reference|id|timestamp|epoch|phone|tel"
    r"|mobile|fax|serial|sku)\b(?:\s+(?:number|no|nr|num|id|code))?(?:\s+(?:is|was|of))?[\s:#.\-]*$",
    re.IGNORECASE,
)
# (prefix range low, high, allowed lengths) per issuer; prefixes compared as integers of equal width.
_ISSUERS: tuple[tuple[int, int, frozenset[int]], ...] = (
    (4, 4, frozenset({13, 16, 19})),  # Visa
    (51, 55, frozenset({16})),  # Mastercard
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (34, 34, frozenset({15})),  # American Express
    (37, 37, frozenset({15})),
    (6011, 6011, frozenset({16, 17, 18, 19})),  # Discover
    (644, 649, frozenset({16, 17, 18, 19})),
    (65, 65, frozenset({16, 17, 18, 19})),
    (300, 305, frozenset({14, 16, 17, 18, 19})),  # Diners Club
    (36, 36, frozenset({14, 16, 17, 18, 19})),
    (38, 39, frozenset({14, 16, 17, 18, 19})),
    (3528, 3589, frozenset({16, 17, 18, 19})),  # JCB
    (62, 62, frozenset({16, 17, 18, 19})),  # UnionPay
    (2200, 2204, frozenset({16, 17, 18, 19})),  # Mir
    (50, 50, frozenset(range(13, 20))),  # Maestro
    (56, 69, frozenset(range(13, 20))),
)


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) checksum that every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _issuer_ok(digits: str) -> bool:
    for low, high, lengths in _ISSUERS:
        width = len(str(low))
        if low <= int(digits[:width]) <= high and len(digits) in lengths:
            return True
    return False


def _before(text: str, start: int, chars: int, lines: int = 2) -> str:
    window = text[max(0, start - chars) : start]
    return "\n".join(window.split("\n")[-lines:])


def _after(text: str, end: int, chars: int) -> str:
    return text[end : end + chars].split("\n", 1)[0]


def find_cards(text: str) -> list[Span]:
    """Payment card numbers in ``text`` (see the module docstring for the rule)."""
    found: list[Span] = []
    for match in _CARD.finditer(text):
        raw = match.group(1)
        digits = raw.replace(" ", "").replace("-", "")
        if not 12 <= len(digits) <= 19 or len(set(digits)) < 2 or not luhn_valid(digits):
            continue
        start, end = match.span(1)
        context = _before(text, start, 60) + " " + _after(text, end, 25)
        if _CARD_WORDS.search(context):
            found.append(Span("CREDIT_CARD", start, end, 0.9))
        elif (
            len(digits) >= 13
            and _issuer_ok(digits)
            and not _CARD_NEGATIVE.search(_before(text, start, 30, 1))
        ):
            found.append(Span("CREDIT_CARD", start, end, 0.6))
    return found


def _phone_shape_ok(num: str, digits: str) -> bool:
    if not 7 <= len(digits) <= 15:
        return False
    if _IPV4.match(num) or _DATE.match(num) or _SSN.match(num):
        return False
    if num.count(".") >= 1 and num.count(" ") == 0 and num.count("-") == 0:
        # dotted numbers: phones use 3 groups (930.167.3943) or pairs (01.84.17.61.18), never versions
        groups = num.split(".")
        if not (len(groups) == 3 or all(len(g) == 2 for g in groups)):
            return False
    return not (len(digits) >= 13 and "+" not in num and luhn_valid(digits))


def find_phones(text: str) -> list[Span]:
    """Phone numbers in ``text`` (see the module docstring for the rule)."""
    found: list[Span] = []
    for match in _PHONE.finditer(text):
        num = match.group("num")
        digits = re.sub(r"\D", "", num)
        if not _phone_shape_ok(num, digits):
            continue
        start = match.start("num")
        end = match.end()
        before_near = _before(text, start, 30, 1)
        if _PHONE_NEGATIVE.search(before_near) or _CURRENCY_BEFORE.search(before_near):
            continue
        strong = bool(_NANP.match(num) or _INTERNATIONAL.match(num)) and len(digits) >= 9
        after = _after(text, end, 25)
        if _PHONE_WORDS.search(_before(text, start, 80) + " " + after) or _PHONE_WORDS_NEAR.search(
            _before(text, start, 20, 1) + " " + after[:12]
        ):
            # "17031 2202 Rissik St": a number followed by a name is a street address, unless it looks
            # like a phone number on its own
            label = after.lstrip(" -,")
            if (
                strong
                or not _FOLLOWED_BY_NAME.match(after)
                or _PHONE_WORDS.match(label)
                or _PHONE_WORDS_NEAR.match(label)
            ):
                found.append(Span("PHONE_NUMBER", start, end, 0.75))
        elif strong:
            found.append(Span("PHONE_NUMBER", start, end, 0.6))
    return found
