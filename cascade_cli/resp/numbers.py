"""Numbers as Redis reads and prints them.

- Doubles: `strtod` is C strtod over a whole argument (decimal, hex, inf; never NaN), with
  whether it hit a range error. commands.to_float (Redis's string2d), the score-range bounds of
  the sorted sets and SORT's scores are built on it.
- Long doubles: Redis computes INCRBYFLOAT, HINCRBYFLOAT and blocking timeouts in `long double`,
  x87 80-bit extended precision on x86-64 (64-bit significand, exponents -16382..16383). Values
  are kept as exact Fractions rounded like the hardware rounds: `ld_parse` is string2ld (strtold
  on the whole argument), `ld_round` one rounding to long double, `ld_format` the "%.17Lf"
  printing with the trailing zeros removed (ld2string LD_STR_HUMAN).
"""

from __future__ import annotations

import re
from fractions import Fraction
from math import inf

SPACE = b" \t\n\v\f\r"                 # C isspace

# --- doubles -------------------------------------------------------------------------------------

_DECIMAL = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPECIAL = re.compile(rb"[+-]?(?:inf(?:inity)?|0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?[0-9]+)?)",
                      re.IGNORECASE)


def strtod(text: bytes) -> tuple[float, bool] | None:
    """strtod over all of `text` (no leading space): (value, range_error) or None when the
    text is not entirely a number (NaN included). range_error: overflow to inf or underflow to
    zero (a subnormal result is not one)."""
    if _DECIMAL.fullmatch(text) is not None:
        value = float(text)
        if value == inf or value == -inf:
            return value, True
        if value == 0.0 and nonzero_mantissa(text):
            return value, True
        return value, False
    if _SPECIAL.fullmatch(text) is None:
        return None
    body = text.lstrip(b"+-")
    negative = text[:1] == b"-"
    if body[:1] in b"iI":
        return (-inf if negative else inf), False
    try:
        value = float.fromhex(text.decode())
    except OverflowError:
        return (-inf if negative else inf), True
    if value == 0.0 and body[2:].split(b"p")[0].split(b"P")[0].strip(b"0.") != b"":
        return value, True
    return value, False


def is_decimal(text: bytes) -> bool:
    """Is `text` entirely a decimal number (no hex, no inf)?"""
    return _DECIMAL.fullmatch(text) is not None


def nonzero_mantissa(text: bytes) -> bool:
    """Does a decimal number have a nonzero digit before its exponent?"""
    mantissa = text.split(b"e")[0].split(b"E")[0]
    return mantissa.strip(b"+-0.") != b""


# --- long doubles --------------------------------------------------------------------------------

LD_DIGITS = 64                  # significand bits
LD_MIN_EXP = -16382             # exponent of the smallest normal number
LD_OVERFLOW_EXP = 16384         # values >= 2**16384 overflow
MAX_LONG_DOUBLE_CHARS = 5 * 1024

_LD_DECIMAL = re.compile(r"([+-]?)(?=\.?[0-9])([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")
_LD_HEX = re.compile(r"([+-]?)0[xX](?=\.?[0-9a-fA-F])([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?"
                     r"(?:[pP]([+-]?[0-9]+))?")
_LD_SPECIAL = re.compile(r"([+-]?)(inf|infinity|nan|nan\([0-9a-zA-Z_]*\))", re.IGNORECASE)
_CHUNK = 4000
_E_CHUNK = 10**_CHUNK


def _digits_to_int(digits: str) -> int:
    """int(digits) without Python's limit on long decimal conversions."""
    if len(digits) <= _CHUNK:
        return int(digits) if digits else 0
    return _digits_to_int(digits[:-_CHUNK]) * _E_CHUNK + int(digits[-_CHUNK:])


def _int_to_digits(value: int) -> str:
    if value < _E_CHUNK:
        return str(value)
    high, low = divmod(value, _E_CHUNK)
    return _int_to_digits(high) + str(low).rjust(_CHUNK, "0")


def ld_round(value: Fraction) -> Fraction | None:
    """Round an exact value to the nearest long double (ties to even); None on overflow."""
    if not value:
        return Fraction(0)
    n, d = value.numerator, value.denominator
    negative = n < 0
    if negative:
        n = -n
    e = n.bit_length() - d.bit_length()
    if (n < d << e) if e >= 0 else ((n << -e) < d):
        e -= 1                               # now 2**e <= n/d < 2**(e+1)
    e = max(e, LD_MIN_EXP)                       # subnormal: fixed quantum
    shift = LD_DIGITS - 1 - e
    if shift >= 0:
        num, den = n << shift, d
    else:
        num, den = n, d << -shift
    m, rest = divmod(num, den)
    rest *= 2
    if rest > den or (rest == den and m & 1):
        m += 1
    if m.bit_length() - 1 - shift >= LD_OVERFLOW_EXP:
        return None
    if negative:
        m = -m
    return Fraction(m << -shift) if shift < 0 else Fraction(m, 1 << shift)


def ld_parse(raw: bytes) -> Fraction | float | None:
    """A long double the way Redis's string2ld reads it (strtold on the whole argument):
    an exact Fraction of the rounded value, +-inf as a float, or None when invalid (spaces,
    trailing garbage, NaN, overflow, underflow to zero)."""
    if not raw or len(raw) >= MAX_LONG_DOUBLE_CHARS or raw[0] in SPACE or b"\0" in raw:
        return None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    match = _LD_DECIMAL.fullmatch(text)
    if match is not None:
        sign, whole, frac, exp = match.groups()
        frac = frac or ""
        digits = (whole + frac).lstrip("0")
        if not digits:
            return Fraction(0)
        exp_text = (exp or "0").lstrip("+-").lstrip("0")
        if len(exp_text) > 9:
            return None                      # overflow or underflow, whatever the digits
        exponent = (int(exp) if exp else 0) - len(frac)
        magnitude = len(digits) + exponent   # value < 10**magnitude
        if magnitude > 4933 or magnitude < -4960:
            return None
        mantissa = _digits_to_int(digits)
        exact = Fraction(mantissa * 10**exponent) if exponent >= 0 else Fraction(mantissa, 10**-exponent)
    else:
        match = _LD_HEX.fullmatch(text)
        if match is not None:
            sign, whole, frac, exp = match.groups()
            frac = frac or ""
            mantissa = int(whole + frac, 16) if whole + frac else 0
            if not mantissa:
                return Fraction(0)
            exp_text = (exp or "0").lstrip("+-").lstrip("0")
            if len(exp_text) > 9:
                return None
            exponent = (int(exp) if exp else 0) - 4 * len(frac)
            bits = mantissa.bit_length() + exponent
            if bits > LD_OVERFLOW_EXP + 1 or bits < -16500:
                return None
            exact = Fraction(mantissa << exponent) if exponent >= 0 else Fraction(mantissa, 1 << -exponent)
        else:
            match = _LD_SPECIAL.fullmatch(text)
            if match is None or match.group(2).lower().startswith("nan"):
                return None
            return -inf if match.group(1) == "-" else inf
    if sign == "-":
        exact = -exact
    rounded = ld_round(exact)
    if rounded is None or not rounded:       # ERANGE: overflow, or underflow to zero
        return None
    return rounded


def ld_format(value: Fraction) -> bytes:
    """printf("%.17Lf") with trailing zeros (and a trailing dot) removed; "-0" prints "0"."""
    negative = value < 0
    n, d = abs(value.numerator), value.denominator
    scaled, rest = divmod(n * 10**17, d)
    rest *= 2
    if rest > d or (rest == d and scaled & 1):
        scaled += 1
    digits = _int_to_digits(scaled).rjust(18, "0")
    whole, frac = digits[:-17], digits[-17:].rstrip("0")
    text = whole + "." + frac if frac else whole
    if negative and text != "0":
        text = "-" + text
    return text.encode()
