def test_smoke(pair):
    pair.both("PING")
    pair.both("ECHO", "x")
    pair.both("SELECT", "99")
    pair.both("NOPE", "a")
    pair.both_raw(b"PING\r\n")
