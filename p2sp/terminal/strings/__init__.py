"""Every string the terminal client shows a person, in English and Chinese.

One flat table per language, keyed by a dotted message id, with
``str.format`` placeholders: ``en.py`` and ``zh.py`` in this package, plus
``codes.py`` (the protocol's codes in words, both languages side by side),
merged here into ``EN`` and ``ZH``. Keeping them here (and nowhere else)
means a translation is one file, a wording change is one line, and tests can
check that the tables agree. A new display format (a whisper, a system message, a
group line ...) is just another key in both tables.

Naming: ``cmd.<name>.usage`` / ``cmd.<name>.help`` describe commands,
``event.<type>...`` render server pushes, ``message.<kind>`` render chat
messages, ``notice.<kind>`` render system notices from their ``notice``
object (docs/protocol.md, "Events"), ``code.<code>`` put every code of the
protocol (a refusal, a framing error, a kick reason) into words,
``reason.<code>`` the reasons only this client's SDK gives for a dropped
connection, ``check.*`` the rules the client checks before it sends
anything, ``error.*`` report failures.

Limits (name lengths, the password rule, the group limit ...) are read from
``p2sp.common.limits`` and ``p2sp.common.usernames``, never written out here,
so a limit changed there changes every sentence that states it.

The language is ``--lang`` if given, else the locale (``LC_ALL``, then
``LC_MESSAGES``, then ``LANG``, the POSIX precedence: the first one set
wins; a value starting with ``zh`` means Chinese), else English. A key
missing in Chinese falls back to English; a key missing everywhere shows the
key itself, so a gap in a table is visible but never crashes the client.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from typing import Any, Final

from p2sp.terminal.strings.codes import EN_CODES, ZH_CODES
from p2sp.terminal.strings.en import EN as _EN
from p2sp.terminal.strings.zh import ZH as _ZH

DEFAULT_LANGUAGE: Final = "en"
LANGUAGES: Final = ("en", "zh")
_LOCALE_VARS: Final = ("LC_ALL", "LC_MESSAGES", "LANG")

EN: Final[dict[str, str]] = {**_EN, **EN_CODES}
ZH: Final[dict[str, str]] = {**_ZH, **ZH_CODES}
TABLES: Final[dict[str, dict[str, str]]] = {"en": EN, "zh": ZH}


def normalize_language(value: str | None) -> str | None:
    """``zh_CN.UTF-8`` -> ``zh``, ``en-US`` -> ``en``; None for anything unsupported."""
    if not value:
        return None
    head = value.strip().lower().replace("-", "_").split("_", 1)[0].split(".", 1)[0]
    return head if head in TABLES else None


def detect_language(environ: Mapping[str, str] | None = None) -> str:
    """The language the locale asks for: ``zh`` if it starts with ``zh``, else ``en``.

    Only the first locale variable that is set counts (``LC_ALL=C`` with
    ``LANG=zh_CN`` means the user overrode Chinese), as in POSIX.
    """
    env = os.environ if environ is None else environ
    for var in _LOCALE_VARS:
        value = env.get(var)
        if value:
            return "zh" if value.strip().lower().startswith("zh") else DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def resolve_language(option: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """``--lang`` when it names a supported language, else the locale's."""
    return normalize_language(option) or detect_language(environ)


class _KeepMissing(dict[str, Any]):
    """Leaves an unknown ``{placeholder}`` in place instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Strings:
    """The message table of one language, with English as the fallback."""

    def __init__(self, lang: str = DEFAULT_LANGUAGE) -> None:
        self.lang = normalize_language(lang) or DEFAULT_LANGUAGE
        self._table = TABLES[self.lang]

    def has(self, key: str) -> bool:
        return key in self._table or key in EN

    def fields(self, key: str) -> set[str]:
        """The placeholder names of message ``key`` in this language (empty if unknown)."""
        template = self._table.get(key, EN.get(key, ""))
        return {name for _, name, _, _ in string.Formatter().parse(template) if name}

    def get(self, key: str, /, **params: Any) -> str:
        """The message ``key`` with its placeholders filled in."""
        template = self._table.get(key)
        if template is None:
            template = EN.get(key)
        if template is None:
            return key
        try:
            return template.format_map(_KeepMissing(params))
        except (ValueError, IndexError, TypeError):
            # A format spec that does not fit the value (``{usage:<30}`` fed a
            # non-string ...): show the template rather than crash the UI.
            return template

    __call__ = get
