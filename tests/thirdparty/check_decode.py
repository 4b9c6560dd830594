#!/usr/bin/env python3
"""Checks that pyiso8583 (with pyiso_host.SPEC) reads shanfu's ascii87 frames.

    python3 check_decode.py [CAPTURE.jsonl ...]

Always checks the 0200 example of iso8583/README.md byte for byte (decode, then re-encode to
the same bytes). With capture files (written by `pyiso_host.py --capture FILE`), also decodes
every frame in them, both directions, re-encodes each to the same bytes and reports anything
ascii87 would reject. Also shows why DE 55 cannot be declared `data_enc: "b"`.
Exit 0 when everything passed.
"""

import copy
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import iso8583  # noqa: E402
from pyiso_host import SPEC, ascii87_problems, decode_framed, frame  # noqa: E402

# iso8583/README.md, "Example: 0200 contactless sale, ascii87" (frame included).
README_0200 = bytes.fromhex(
    "009B30323030373032303034303032304330383230303136343736313733393030313031303131393030"
    "303030303030303030303030313030303030303132333037313337343736313733393030313031303131"
    "393D32353132323031313134333830343430303030305445524D303030314D45524348414E5430303030"
    "30303131353630323239463236303831313232333334343535363637373838"
)

failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures += 1


def round_trip(data, label):
    doc = decode_framed(data)
    _, doc_enc = iso8583.decode(bytes(data[2:]), SPEC)
    again, _ = iso8583.encode(copy.deepcopy(doc), SPEC)
    check(frame(again) == bytes(data), f"{label}: {doc['t']} decodes and re-encodes to the same bytes")
    problems = ascii87_problems(doc, doc_enc)
    check(not problems, f"{label}: {doc['t']} is valid ascii87 {problems or ''}")
    return doc


# 1. The documented vector.
doc = round_trip(README_0200, "README vector")
expected = {
    "t": "0200",
    "p": "7020040020C08200",
    "2": "4761739001010119",
    "3": "000000",
    "4": "000000001000",
    "11": "000123",
    "22": "071",
    "35": "4761739001010119=25122011143804400000",
    "41": "TERM0001",
    "42": "MERCHANT0000001",
    "49": "156",
    "55": "9F26081122334455667788",
}
check(doc == expected, "README vector: every field as documented")

# 2. Why DE 55 is declared data_enc "ascii": with "b" pyiso8583 takes the wire as raw bytes.
wrong = copy.deepcopy(SPEC)
wrong["55"]["data_enc"] = "b"
try:
    bad, _ = iso8583.decode(README_0200[2:], wrong)
    check(bad["55"] != expected["55"], f"data_enc 'b' misreads DE 55 as {bad['55'][:16]}... (hex of the hex)")
except iso8583.DecodeError as e:
    check(True, f"data_enc 'b' cannot read DE 55: {e}")
wrong["55"]["len_count"] = "nibbles"
try:
    bad, _ = iso8583.decode(README_0200[2:], wrong)
    check(bad["55"] != expected["55"], f"data_enc 'b' + nibbles misreads DE 55 as {bad['55']}")
except iso8583.DecodeError as e:
    check(True, f"data_enc 'b' + nibbles cannot read DE 55: {e}")

# 3. Captured traffic.
for path in sys.argv[1:]:
    with open(path, encoding="ascii") as f:
        for n, line in enumerate(f, 1):
            rec = json.loads(line)
            d = round_trip(bytes.fromhex(rec["frame"]), f"{os.path.basename(path)}:{n} {rec['dir']}")
            if d["t"] == "0200":
                check(
                    all(k in d for k in ("2", "3", "4", "11", "22", "35", "41", "42", "49", "55")),
                    f"{os.path.basename(path)}:{n}: 0200 carries 2 3 4 11 22 35 41 42 49 55 "
                    f"(DE 55 {len(d['55']) // 2} bytes, DE 35 has '=': {'=' in d.get('35', '')})",
                )

print("all passed" if not failures else f"{failures} failed")
sys.exit(1 if failures else 0)
