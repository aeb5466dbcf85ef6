"""Reading ``^GFA`` data back as a printer does: the tests' check on labels.zpl's compression."""

from __future__ import annotations


def decode_graphic(data: str, total: int, bytes_per_row: int) -> bytes:
    """The bitmap bytes of ``^GFA,total,total,bytes_per_row,data`` (plain hex or ZPL's ASCII compression)."""
    width = bytes_per_row * 2
    rows: list[str] = []
    row: list[str] = []
    count = 0
    for ch in data:
        if "G" <= ch <= "Y":
            count += ord(ch) - ord("F")
            continue
        if "g" <= ch <= "z":
            count += (ord(ch) - ord("f")) * 20
            continue
        if ch == ",":
            assert len(row) % 2 == 0, "',' may only follow whole bytes"
            row += ["0"] * (width - len(row))
        elif ch == "!":
            row += ["F"] * (width - len(row))
        elif ch == ":":
            assert not row and rows, "':' repeats a whole previous row"
            row = list(rows[-1])
        else:
            assert ch in "0123456789ABCDEF", f"not ZPL graphic data: {ch!r}"
            row += [ch] * (count or 1)
        assert count == 0 or ch not in ",!:", "a repeat count before a fill"
        count = 0
        assert len(row) <= width, "a run crosses the end of its row"
        if len(row) == width:
            rows.append("".join(row))
            row = []
    assert not row and count == 0, "data ends inside a row"
    assert len(rows) * bytes_per_row == total, "row count disagrees with the declared size"
    return bytes.fromhex("".join(rows))
