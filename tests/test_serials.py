"""Standard-issue serials: O is always a zero, I and Q only inside a digit block."""

import pytest

from recognizers.serials import standard_issue


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        ("UH1FOF", "UH1F0F"),  # O is never a letter on a US standard plate
        ("OFWU250", "0FWU250"),
        ("6XIU641", "6XIU641"),  # California letter block: I between letters stays
        ("5TQY867", "5TQY867"),
        ("4PCI264", "4PCI264"),  # a letter on one side: still a letter block
        ("59CADI", "59CADI"),
        ("7I23456", "7123456"),  # digits on both sides: a one
        ("ABC12Q4", "ABC1204"),
        ("I23", "123"),  # at the edge, next to a digit
        ("IQ", "10"),  # I and Q do not count as letters for each other
        ("", ""),
    ],
)
def test_standard_issue(read: str, expected: str) -> None:
    assert standard_issue(read) == expected
