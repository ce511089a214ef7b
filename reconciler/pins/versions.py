"""What a model version is, everywhere one is read (pins, `promote --version`, the command line).

MLflow numbers versions 1, 2, 3… and stores them as 32-bit integers. A version is written as plain
decimal digits: YAML 1.1 (PyYAML) reads `010` as 8, `0x10` as 16 and `1_000` as 1000, so any other
spelling would plan a version nobody wrote. Callers pass the text as written, before YAML typing.
"""

from __future__ import annotations

import re

MAX_VERSION = 2**31 - 1  # MLflow's version column is a 32-bit integer
_DIGITS = re.compile(r"[1-9][0-9]*")


def parse_version(text: str) -> str:
    """The version `text` names, as MLflow's string form; ValueError saying what to write."""
    written = text.strip()
    if _DIGITS.fullmatch(written) and int(written) <= MAX_VERSION:
        return written
    if re.fullmatch(r"[0-9]+", written) and int(written) == 0:
        hint = "versions start at 1"
    elif re.fullmatch(r"0[0-7]+", written):
        hint = (
            f"write {int(written)} without leading zeros (unquoted, YAML 1.1 reads {written} "
            f"as octal: {int(written, 8)})"
        )
    elif re.fullmatch(r"0[0-9]+", written):
        hint = f"write {int(written)} without leading zeros"
    elif re.fullmatch(r"[0-9]+", written):
        hint = f"the largest version MLflow can store is {MAX_VERSION}"
    else:
        hint = "write the version as plain digits, e.g. 15"
    raise ValueError(f"{text!r} is not a model version: {hint}")
