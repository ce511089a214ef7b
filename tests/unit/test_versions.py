import pytest

from reconciler.pins.versions import MAX_VERSION, parse_version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("1", "1", id="one"),
        pytest.param("15", "15", id="plain"),
        pytest.param(" 7 ", "7", id="spaces"),
        pytest.param(str(MAX_VERSION), str(MAX_VERSION), id="largest"),
    ],
)
def test_plain_digits_are_versions(text: str, expected: str) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        pytest.param("010", "without leading zeros", id="octal"),
        pytest.param("0", "start at 1", id="zero"),
        pytest.param("0x10", "plain digits", id="hex"),
        pytest.param("1_000", "plain digits", id="underscore"),
        pytest.param("1.0", "plain digits", id="float"),
        pytest.param("+3", "plain digits", id="sign"),
        pytest.param("-3", "plain digits", id="negative"),
        pytest.param(str(MAX_VERSION + 1), "largest", id="too-big"),
        pytest.param("", "plain digits", id="empty"),
        pytest.param("١٢", "plain digits", id="arabic-digits"),
    ],
)
def test_other_spellings_say_what_to_write(text: str, hint: str) -> None:
    with pytest.raises(ValueError, match=hint):
        parse_version(text)
