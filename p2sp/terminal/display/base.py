"""``Renderer``: what every part of the display shares (strings, time zone, safe fields).

Times (``sent_at``, ``last_seen``) are shown in the local time zone unless
the renderer is given another one (tests pass UTC).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from p2sp.terminal.display.neutralise import field_text as _text
from p2sp.terminal.display.neutralise import safe_body as _body
from p2sp.terminal.display.neutralise import safe_group as _group
from p2sp.terminal.display.neutralise import safe_name as _name
from p2sp.terminal.strings import Strings


class Renderer:
    """The string table of one language, a time zone, and the safe forms of fields."""

    def __init__(self, strings: Strings, *, tz: dt.tzinfo | None = None) -> None:
        self.strings = strings
        #: time zone for displayed times; None is the local one
        self.tz = tz

    def reason(self, code: object) -> str:
        """A protocol code or an SDK reason in words; unknown ones are shown as they are."""
        text = _text(code, "?")
        for key in (f"code.{text}", f"reason.{text}"):
            if self.strings.has(key):
                return self.strings(key)
        return _name(text)

    def code_text(
        self, code: object, message: object = "", data: Mapping[str, Any] | None = None
    ) -> str:
        """What a code means, in the user's language; the server's message if we have no words.

        ``rate_limited`` says how long to wait (``retry_after`` in ``data``).
        """
        text = _text(code)
        if text == "rate_limited":
            wait = (data or {}).get("retry_after")
            if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0:
                return self.strings("code.rate_limited", seconds=max(1, round(wait)))
            return self.strings("code.rate_limited_later")
        key = f"code.{text}"
        if text and self.strings.has(key):
            return self.strings(key)
        return _body(message) or _name(text or "?")

    def clock(self, ms: object) -> str:
        """``HH:MM`` of a protocol timestamp (ms since the epoch); ``--:--`` if unreadable."""
        when = self._datetime(ms)
        return when.strftime("%H:%M") if when is not None else "--:--"

    def date_time(self, ms: object) -> str:
        """``YYYY-MM-DD HH:MM`` of a protocol timestamp; ``?`` if unreadable."""
        when = self._datetime(ms)
        return when.strftime("%Y-%m-%d %H:%M") if when is not None else "?"

    def _datetime(self, ms: object) -> dt.datetime | None:
        if isinstance(ms, bool) or not isinstance(ms, int | float):
            return None
        try:
            when = dt.datetime.fromtimestamp(ms / 1000, tz=self.tz or dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
        return when if self.tz is not None else when.astimezone()

    def name(self, value: object, default: str = "?") -> str:
        """A user name for a line of ours (see ``neutralise``)."""
        return _name(value, default)

    def group(self, value: object, default: str = "?") -> str:
        """A group name for a line of ours (see ``neutralise``)."""
        return _group(value, default)

    def body(self, value: object) -> str:
        """Text for a line of ours, continuation lines marked (see ``neutralise``)."""
        return _body(value)

    def notice_text(self, payload: Mapping[str, Any]) -> str:
        """A system message's text: the notice in our words when we have them, else ``text``.

        Our wording is used only if every name it needs is in the notice, so
        a notice with a field missing still shows the server's sentence.
        """
        fallback = _body(payload.get("text"))
        notice = payload.get("notice")
        if not isinstance(notice, Mapping):
            return fallback
        kind = notice.get("kind")
        key = f"notice.{kind}"
        if not isinstance(kind, str) or not self.strings.has(key):
            return fallback
        params: dict[str, str] = {}
        for name in self.strings.fields(key):
            value = notice.get(name)
            if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
                return fallback
            params[name] = _group(value) if name == "group_name" else _name(value)
        return self.strings(key, **params)
