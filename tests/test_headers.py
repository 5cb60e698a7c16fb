"""Header block boundaries (leaktriage.mail.headers)."""


def test_find_header_end_is_the_first_blank_line_of_either_style():
    """find_header_end searches the block's own line-ending style first and the other only before
    it; the answer must stay the earliest blank line of either style."""
    import random
    from leaktriage.mail.headers import find_header_end

    def reference(buf, start, end):
        if start >= end:
            return end, end
        if buf[start:start + 1] == b"\n":
            return start, start + 1
        if buf[start:start + 2] == b"\r\n":
            return start, start + 2
        c = []
        i1, i2 = buf.find(b"\n\n", start, end), buf.find(b"\n\r\n", start, end)
        if i1 >= 0:
            c.append((i1 + 1, i1 + 2))
        if i2 >= 0:
            c.append((i2 + 1, i2 + 3))
        return min(c) if c else (end, end)

    rng = random.Random(822)
    pool = [b"a", b":", b" ", b"\r", b"\n", b"\r\n", b"\n\n", b"\r\n\r\n", b"\n\r\n"]
    for _ in range(30000):
        buf = b"".join(rng.choice(pool) for _ in range(rng.randint(0, 20)))
        s = rng.randint(0, len(buf))
        e = rng.randint(s, len(buf))
        assert find_header_end(buf, s, e) == reference(buf, s, e), (buf, s, e)
    big = b"H: v\r\n" + b"x" * 70000 + b"\r\n\r\nbody"   # past the 64 KiB window
    assert find_header_end(big, 0, len(big)) == reference(big, 0, len(big))
