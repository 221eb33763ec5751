"""Decoding a plain-text book: UTF-8 (with or without BOM), UTF-16, cp1252 and latin-1, or one clear error.

Single-byte encodings cannot be told apart by their bytes alone (a cp1252 file decodes without error as
cp852 or latin-1 too), so the decision follows what real Western books look like, then asks
charset-normalizer only for what is left:

1. a byte-order mark decides (UTF-8, UTF-16, UTF-32);
2. text that is valid UTF-8 is UTF-8 (a few stray bytes in otherwise valid UTF-8 are replaced and counted);
3. text whose bytes 0x80-0x9F are all cp1252 characters (curly quotes, dashes) is cp1252 - latin-1 would make
   them C1 control characters, which no book contains;
4. text with no byte in 0x80-0x9F decodes the same as latin-1 and cp1252: latin-1;
5. otherwise charset-normalizer's best guess, accepted only when it decodes without chaos.
"""

from __future__ import annotations

import codecs

from pydantic import Field

from ...errors import IngestError
from ...strict import Record

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
#: bytes that cp1252 leaves undefined: a file holding them is not cp1252.
_CP1252_UNDEFINED = frozenset({0x81, 0x8D, 0x8F, 0x90, 0x9D})
#: share of non-ASCII byte runs that must be valid UTF-8 for a file with stray bytes to count as UTF-8.
_UTF8_SHARE = 0.95


class Decoded(Record):
    """The decoded text and how the encoding was decided (recorded in the run's stats)."""

    text: str
    encoding: str
    reason: str
    replaced: int = Field(0, description="undecodable bytes replaced by U+FFFD")

    @property
    def decision(self) -> str:
        return f"{self.encoding} ({self.reason})"


def _utf8_share(data: bytes) -> tuple[float, int, int]:
    """(share of non-ASCII characters that decode as UTF-8, valid ones, invalid bytes)."""
    valid = invalid = 0
    for ch in data.decode("utf-8", errors="surrogateescape"):
        o = ord(ch)
        if o < 0x80:
            continue
        if 0xDC80 <= o <= 0xDCFF:
            invalid += 1
        else:
            valid += 1
    total = valid + invalid
    return (valid / total if total else 1.0), valid, invalid


def decode_text(data: bytes, source: str, encoding: str | None = None) -> Decoded:
    """Decode ``data`` (the bytes of ``source``, named in errors); ``encoding`` forces a codec."""
    if encoding:
        try:
            return Decoded(text=data.decode(encoding), encoding=encoding, reason="given by the recipe")
        except (LookupError, UnicodeDecodeError) as exc:
            raise IngestError(f"cannot decode as {encoding} ({exc})", path=source, step="ingest") from None
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return Decoded(text=data.decode(codec), encoding=codec, reason="byte-order mark")
            except UnicodeDecodeError as exc:
                raise IngestError(
                    f"has a {codec} byte-order mark but is not {codec} ({exc.reason} at byte {exc.start})",
                    path=source,
                    step="ingest",
                ) from None
    if b"\x00" in data[:65536]:
        raise IngestError(
            "not a text file: it holds NUL bytes (a binary file, or UTF-16 without a byte-order mark)",
            path=source,
            step="ingest",
        )
    try:
        return Decoded(text=data.decode("utf-8"), encoding="utf-8", reason="valid UTF-8")
    except UnicodeDecodeError:
        pass
    share, valid, invalid = _utf8_share(data)
    if valid >= 20 and share >= _UTF8_SHARE:
        text = data.decode("utf-8", errors="replace")
        return Decoded(
            text=text, encoding="utf-8", reason=f"UTF-8 with {invalid} undecodable bytes replaced", replaced=invalid
        )
    high = {b for b in data if 0x80 <= b <= 0x9F}
    if high and not high & _CP1252_UNDEFINED:
        return Decoded(
            text=data.decode("cp1252"),
            encoding="cp1252",
            reason="not UTF-8; its bytes 0x80-0x9F are cp1252 punctuation (latin-1 would make them control characters)",
        )
    if not high:
        return Decoded(
            text=data.decode("latin-1"),
            encoding="latin-1",
            reason="not UTF-8; no byte in 0x80-0x9F, so latin-1 and cp1252 agree",
        )
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a core dependency
        best = None
    else:
        best = from_bytes(data).best()
    if best is not None and best.percent_chaos <= 0.05:
        return Decoded(
            text=str(best),
            encoding=best.encoding,
            reason=f"detected by charset-normalizer (chaos {best.percent_chaos:.2f})",
        )
    raise IngestError(
        "cannot decide the text encoding: not UTF-8, holds bytes that cp1252 leaves undefined "
        f"({', '.join(f'0x{b:02x}' for b in sorted(high & _CP1252_UNDEFINED))}), and no other encoding decodes it "
        "cleanly; re-encode it as UTF-8 (iconv -f ENCODING -t utf-8) or set clean.books.<file>.encoding in the recipe",
        path=source,
        step="ingest",
    )
