"""Stream the text of a custom tool's input while its function-form arguments
(`{"input": "..."}`) arrive as JSON fragments: each fragment yields the characters of the
string decoded so far, never splitting an escape sequence or a surrogate pair."""
from __future__ import annotations

import re

import orjson

# How the arguments open when `input` is their first key (what models send for a
# one-parameter function). Anything else is left to the final, whole-value read.
_HEAD = re.compile(r'\s*\{\s*"input"\s*:\s*"')
_GIVE_UP_AFTER = 64   # characters without that opening: not the shape we can stream


class InputStream:
    """Decodes the `input` string of `{"input": "..."}` from its fragments."""

    def __init__(self) -> None:
        self._buf = ""
        self._start = -1      # index just after the value's opening quote
        self._safe = -1       # value decoded and emitted up to here (raw index)
        self._scan = -1       # where scanning resumes (start of an incomplete escape)
        self._over = False    # value closed, or the arguments are of another shape
        self.text = ""        # everything emitted so far

    def feed(self, fragment: str) -> str:
        """The newly decoded characters of the value ("" when none are complete yet)."""
        if self._over or not fragment:
            return ""
        self._buf += fragment
        if self._start < 0:
            m = _HEAD.match(self._buf)
            if m is None:
                self._over = len(self._buf) > _GIVE_UP_AFTER
                return ""
            self._start = self._safe = self._scan = m.end()
        return self._advance()

    def _advance(self) -> str:
        buf, i, n = self._buf, self._scan, len(self._buf)
        safe = self._safe
        while i < n:
            c = buf[i]
            if c == '"':
                self._over = True
                break
            if c != "\\":
                i += 1
            elif i + 1 >= n:
                break
            elif buf[i + 1] != "u":
                i += 2
            elif i + 6 > n:
                break
            else:
                try:
                    code = int(buf[i + 2:i + 6], 16)
                except ValueError:
                    self._over = True
                    return ""
                width = 12 if 0xD800 <= code < 0xDC00 else 6  # a pair travels whole
                if i + width > n:
                    break
                i += width
            safe = i
        self._scan = i
        if safe <= self._safe:
            return ""
        try:
            piece: str = orjson.loads(f'"{buf[self._safe:safe]}"')
        except orjson.JSONDecodeError:
            self._over = True
            return ""
        self._safe = safe
        self.text += piece
        return piece
