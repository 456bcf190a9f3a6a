"""Duration strings as used in Rollout specs: `30s`, `5m`, `2h`, `1d`, compounds like `1h30m`."""

from __future__ import annotations

import re
from datetime import datetime

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# Also the CRD's OpenAPI pattern, so the API server and kulta accept exactly the same strings.
DURATION_PATTERN = r"^([0-9]{1,9}[smhd])+$"
_PART = re.compile(r"([0-9]+)([smhd])")
_WHOLE = re.compile(DURATION_PATTERN)
MAX_DURATION_SECONDS = 366 * 86400


class DurationError(ValueError):
    """A duration string that is not a positive `<number><unit>` sequence."""


def parse_duration(text: str) -> int:
    """Returns the number of seconds in `text`.

    Raises:
        DurationError: for empty strings, unknown units, signs, decimals, zero, or more than a year.
    """
    if not isinstance(text, str) or not _WHOLE.match(text):
        raise DurationError(
            f"invalid duration {text!r}: expected a positive number with a unit s, m, h or d "
            "(for example 30s, 5m, 1h30m)"
        )
    seconds = sum(int(n) * UNIT_SECONDS[unit] for n, unit in _PART.findall(text))
    if seconds <= 0:
        raise DurationError(f"invalid duration {text!r}: must be greater than zero")
    if seconds > MAX_DURATION_SECONDS:
        raise DurationError(f"invalid duration {text!r}: longer than 366 days")
    return seconds


def format_duration(seconds: float) -> str:
    """Renders seconds compactly for people: 330 -> `5m30s`."""
    total = max(0, round(seconds))
    if total == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def iso_time(moment: datetime) -> str:
    """A moment as Kubernetes writes times in status (RFC 3339, whole seconds, UTC)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
