"""What an attacker (or a confused client) types into a field: the input-abuse tables of tests/security.

Each table maps an id to a value. ``TEXT`` is what any form or JSON string field may receive; ``JSON_ONLY``
adds the values only JSON can carry (wrong types, nesting). A field must answer every one with a 4xx, no
traceback, and no change to what the store protects.
"""

from __future__ import annotations

from typing import Any

TEN_KB = "7" * 10_240

TEXT: dict[str, str] = {
    "empty": "",
    "space": " ",
    "spaces": "      ",
    "five-digits": "12345",
    "seven-digits": "1234567",
    "nine-digits": "123456789",
    "arabic-indic": "\u0661\u0662\u0663\u0664\u0665\u0666",
    "devanagari": "\u0967\u0968\u0969\u096a\u096b\u096c",
    "full-width": "\uff11\uff12\uff13\uff14\uff15\uff16",
    "mixed-width": "1\uff123\uff145\uff16",
    "superscript": "\u00b9\u00b2\u00b3\u2074\u2075\u2076",
    "plus-sign": "+12345",
    "minus-sign": "-12345",
    "exponent": "1e5000",
    "hex": "0x1e240",
    "leading-tab": "\t123456",
    "trailing-newline": "123456\n",
    "crlf": "123\r\n456",
    "no-break-space": "123\u00a0456",
    "zero-width-space": "123\u200b456",
    "rtl-override": "\u202e654321",
    "combining-mark": "1\u03012345",
    "leading-nul": "\x00123456",
    "trailing-nul": "123456\x00",
    "only-nul": "\x00" * 6,
    "bell-and-escape": "\x07\x1b[31m123456",
    "del": "12345\x7f",
    "lone-surrogate": "\ud800",
    "emoji": "\U0001f600" * 6,
    "recovery-shaped-wrong": "zzzzz-zzzzz",
    "recovery-too-long": "abcde-fghij-klmno",
    "sql": "' OR '1'='1' --",
    "html": "<script>alert(1)</script>",
    "template": "{{7*7}}${7*7}",
    "jndi": "${jndi:ldap://127.0.0.1/x}",
    "path": "../../../etc/passwd",
    "url-escaped-nul": "%00%00",
    "format-string": "%s%s%s%n",
    "json-text": '{"otp": "123456"}',
    "null-word": "null",
    "many-codes": "123456" * 20,
    "ten-kb": TEN_KB,
    "percent-encoded-digits": "%31%32%33%34%35%36",
}

JSON_ONLY: dict[str, Any] = {
    "integer": 123456,
    "float": 123456.0,
    "huge-integer": 10**400,
    "null": None,
    "true": True,
    "list": ["123456"],
    "object": {"$gt": ""},
    "nested": [[[[[[[[["123456"]]]]]]]]],
}

assert len(TEXT) >= 40, "the issue asks for at least 40 malformed values per field"
