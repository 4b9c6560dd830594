#!/usr/bin/env python3
"""A third-party ISO 8583 acquirer for shanfu's end-to-end tests.

Nothing here comes from shanfu: the codec is pyiso8583 4.0.1 from PyPI (import name
`iso8583`), configured from its own `default_ascii` spec to speak the wire format that
shanfu calls `ascii87` (iso8583/README.md, docs/host.md):

    2-byte big-endian length frame | 4 ASCII digit MTI | 16 upper-case hex char bitmap(s) |
    ASCII fields, LL / LLL ASCII length prefixes | DE 55 as LLLVAR upper-case hex text whose
    length counts hex characters | DE 35 ASCII with '='

It answers every request with an approval (or with `--rc NN` for 0200/0100); it knows no
issuer keys, so it never sends DE 55 / tag 91 (the terminal reports `arpc: ABSENT`).

    python3 pyiso_host.py --port 0 [--rc 05] [--max-seconds 60] [--capture FILE]

The first stdout line is `listening 127.0.0.1:PORT` (flushed); nothing else is ever written
to stdout (a test may close its end of the pipe after that line). Logs go to stderr. The
process exits by itself after --max-seconds, and on SIGTERM / SIGINT.
"""

import argparse
import asyncio
import copy
import itertools
import json
import re
import signal
import sys
import time

try:
    import iso8583
    from iso8583.specs import default_ascii
except ImportError:  # pragma: no cover
    sys.exit(
        "pyiso_host: pyiso8583 is not installed; see tests/thirdparty/README.md "
        "(python3 -m venv target/pyiso-venv && target/pyiso-venv/bin/pip install pyiso8583==4.0.1)"
    )

# --------------------------------------------------------------------------------------------
# The spec: pyiso8583's default_ascii, adjusted to shanfu's ascii87 field table
# (iso8583/src/iso87.rs). Fields are keyed as pyiso8583 does: "t" MTI, "p" primary bitmap,
# "1" secondary bitmap, "2".."128" data elements.
# --------------------------------------------------------------------------------------------

# ascii87 field table: number -> (class, length type, maximum / fixed length in wire chars).
# Classes: n numeric digits, a printable ASCII, z track 2 (digits and '='), h binary carried
# as upper-case hex text (52, 55, 64, 128). For `h` the length is in hex characters, i.e. the
# number of ASCII bytes on the wire (b64 = 8 bytes = 16 hex chars; 55: LLL counts hex chars).
ASCII87_FIELDS = {
    2: ("n", "LL", 19),
    3: ("n", "F", 6),
    4: ("n", "F", 12),
    7: ("n", "F", 10),
    11: ("n", "F", 6),
    12: ("n", "F", 6),
    13: ("n", "F", 4),
    14: ("n", "F", 4),
    22: ("n", "F", 3),
    23: ("n", "F", 3),
    24: ("n", "F", 3),
    25: ("n", "F", 2),
    35: ("z", "LL", 37),
    37: ("a", "F", 12),
    38: ("a", "F", 6),
    39: ("a", "F", 2),
    41: ("a", "F", 8),
    42: ("a", "F", 15),
    43: ("a", "F", 40),
    49: ("n", "F", 3),
    52: ("h", "F", 16),
    54: ("a", "LLL", 120),
    55: ("h", "LLL", 999),
    60: ("a", "LLL", 999),
    62: ("a", "LLL", 999),
    63: ("a", "LLL", 999),
    64: ("h", "F", 16),
    70: ("n", "F", 3),
    74: ("n", "F", 10),
    76: ("n", "F", 10),
    86: ("n", "F", 16),
    88: ("n", "F", 16),
    90: ("n", "F", 42),
    95: ("a", "F", 42),
    97: ("a", "F", 17),
    128: ("h", "F", 16),
}

_LEN_TYPE = {"F": 0, "LL": 2, "LLL": 3}


def build_spec():
    """default_ascii with every ascii87 field forced to ASCII data, ASCII length prefix,
    the ascii87 length type and maximum, lengths counted in bytes (= characters)."""
    spec = copy.deepcopy(default_ascii)
    for key in ("t", "p", "1"):
        spec[key]["data_enc"] = "ascii"  # 4-digit MTI, 16 hex chars per bitmap
    for number, (_cls, ltype, length) in ASCII87_FIELDS.items():
        f = spec[str(number)]
        f["data_enc"] = "ascii"
        f["len_enc"] = "ascii"
        f["len_type"] = _LEN_TYPE[ltype]
        f["max_len"] = length
        f["len_count"] = "bytes"
    # DE 55 deserves a word: pyiso8583's `data_enc: "b"` means *raw bytes on the wire*, shown
    # to Python as a hex string. ascii87 puts hex *text* on the wire, so DE 55 must be
    # `data_enc: "ascii"`: the decoded value is then the upper-case hex string itself and the
    # 3-digit ASCII prefix counts its characters (2 per byte), max 999. default_ascii has
    # max_len 510 for 55 and 240 for 54; ascii87 allows 999 and 120.
    spec["55"]["desc"] = "ICC data (upper-case hex text, LLL counts hex chars)"
    return spec


SPEC = build_spec()

_HEX_UPPER = re.compile(r"[0-9A-F]*")
_DIGITS = re.compile(r"[0-9]*")
_TRACK2 = re.compile(r"[0-9=]*")


def ascii87_problems(doc_dec, doc_enc=None):
    """What shanfu's strict ascii87 unpacker would reject but pyiso8583 lets through
    (pyiso8583 does not check charsets, accepts lower-case hex bitmaps, length prefixes
    such as b" 9" or b"+9" (Python int()), a set bit 1 with an empty secondary bitmap, and
    knows fields that ascii87 does not define). Empty list = the message is valid ascii87."""
    problems = []
    for key, enc in (doc_enc or {}).items():
        if enc.get("len") and not _DIGITS.fullmatch(enc["len"].decode("latin-1")):
            problems.append(f"field {key}: length prefix {enc['len']!r} is not digits")
    if not _DIGITS.fullmatch(doc_dec.get("t", "")):
        problems.append("MTI is not 4 digits")
    for key in ("p", "1"):
        if key in doc_dec and not _HEX_UPPER.fullmatch(doc_dec[key]):
            problems.append(f"bitmap {key} is not upper-case hex")
    if "1" in doc_dec and int(doc_dec["1"][:16] or "0", 16) == 0:
        problems.append("bit 1 set with an all-zero secondary bitmap")
    for key, value in doc_dec.items():
        if not key.isdigit() or key == "1":
            continue
        number = int(key)
        if number not in ASCII87_FIELDS:
            problems.append(f"field {number} is not defined by ascii87")
            continue
        cls = ASCII87_FIELDS[number][0]
        if cls == "n" and not _DIGITS.fullmatch(value):
            problems.append(f"field {number}: not digits")
        elif cls == "z" and not _TRACK2.fullmatch(value):
            problems.append(f"field {number}: not track 2 (digits and '=')")
        elif cls == "h" and (len(value) % 2 or not _HEX_UPPER.fullmatch(value)):
            problems.append(f"field {number}: not upper-case hex of whole bytes")
        elif cls == "a" and not all(0x20 <= ord(c) <= 0x7E for c in value):
            problems.append(f"field {number}: not printable ASCII")
    return problems


def frame(body):
    return len(body).to_bytes(2, "big") + bytes(body)


def decode_framed(data):
    """Decodes one framed message (length prefix included). Returns pyiso8583's doc_dec."""
    n = int.from_bytes(data[:2], "big")
    if n != len(data) - 2:
        raise ValueError(f"frame says {n} bytes, {len(data) - 2} follow")
    doc_dec, _ = iso8583.decode(bytes(data[2:]), SPEC)
    return doc_dec


def mask(pan):
    return pan[:6] + "*" * max(0, len(pan) - 10) + pan[-4:] if len(pan) >= 13 else "*" * len(pan)


# --------------------------------------------------------------------------------------------
# The acquirer
# --------------------------------------------------------------------------------------------


class Host:
    def __init__(self, rc, capture):
        self.rc = rc
        self.capture = capture
        self.rrn_seq = itertools.count(1)
        self.auth_seq = itertools.count(1)
        self.connections = {}  # task -> writer, closed on shutdown

    def log_capture(self, direction, data):
        if self.capture:
            with open(self.capture, "a", encoding="ascii") as f:
                f.write(json.dumps({"dir": direction, "frame": bytes(data).hex().upper()}) + "\n")

    def rrn(self):
        # YDDDhh + 6-digit sequence = 12 characters (an12).
        t = time.gmtime()
        return f"{t.tm_year % 10}{t.tm_yday:03d}{t.tm_hour:02d}{next(self.rrn_seq) % 1000000:06d}"

    def auth_code(self):
        return f"PY{next(self.auth_seq) % 10000:04d}"  # an6

    def answer(self, req):
        """The response dict for a decoded request, or None to stay silent."""
        mti = req["t"]

        def echo(*fields):
            out = {}
            for f in fields:
                if str(f) in req:
                    out[str(f)] = req[str(f)]
            return out

        if mti in ("0200", "0100"):
            resp = echo(2, 3, 4, 11, 12, 13, 41, 42, 49)
            resp["t"] = "0210" if mti == "0200" else "0110"
            resp["37"] = self.rrn()
            rc = self.rc if mti == "0200" and self.rc else "00"
            resp["39"] = rc
            if rc == "00":
                resp["38"] = self.auth_code()
            # No DE 55 / tag 91: this host holds no issuer keys.
            return resp
        if mti in ("0400", "0401"):
            resp = echo(2, 3, 4, 11, 12, 13, 41, 42, 49)
            resp.update({"t": "0410", "39": "00"})
            return resp
        if mti == "0220":
            resp = echo(2, 3, 4, 11, 12, 13, 41, 42, 49)
            resp.update({"t": "0230", "39": "00"})
            return resp
        if mti == "0500":
            resp = echo(11, 41, 42, 49)
            resp.update({"t": "0510", "39": "00"})
            return resp
        if mti == "0800":
            resp = echo(7, 11, 41, 70)
            resp.update({"t": "0810", "39": "00"})
            return resp
        if len(mti) == 4 and mti.isdigit() and int(mti[2]) % 2 == 0:
            # Some other request class: format error, echoing what identifies it.
            resp = echo(11, 41)
            resp.update({"t": mti[:2] + str(int(mti[2]) + 1) + "0", "39": "30"})
            return resp
        return None

    async def serve(self, reader, writer):
        peer = writer.get_extra_info("peername")
        log(f"connection from {peer}")
        self.connections[asyncio.current_task()] = writer
        try:
            while True:
                try:
                    head = await reader.readexactly(2)
                except asyncio.IncompleteReadError:
                    break
                body = await reader.readexactly(int.from_bytes(head, "big"))
                self.log_capture("rx", head + body)
                try:
                    req, req_enc = iso8583.decode(body, SPEC)
                except iso8583.DecodeError as e:
                    log(f"undecodable frame ignored: {e}")
                    continue
                for p in ascii87_problems(req, req_enc):
                    log(f"{req.get('t')}: not ascii87: {p}")
                summary = f"rx {req['t']} stan={req.get('11')} tid={req.get('41')!r}"
                if "2" in req:
                    summary += f" pan={mask(req['2'])}"
                if "4" in req:
                    summary += f" amount={req['4']}"
                if "55" in req:
                    summary += f" de55={len(req['55']) // 2} bytes"
                log(summary)
                resp = self.answer(req)
                if resp is None:
                    log(f"no answer to {req['t']}")
                    continue
                try:
                    out, _ = iso8583.encode(resp, SPEC)
                except iso8583.EncodeError as e:
                    log(f"cannot encode the answer to {req['t']}: {e}")
                    continue
                data = frame(out)
                self.log_capture("tx", data)
                writer.write(data)
                await writer.drain()
                log(f"tx {resp['t']} stan={resp.get('11')} rc={resp.get('39')}")
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            log(f"connection {peer} ended: {e!r}")
        finally:
            self.connections.pop(asyncio.current_task(), None)
            writer.close()

    async def shutdown(self):
        """Closes open connections, so their tasks end on EOF rather than by cancellation."""
        for writer in list(self.connections.values()):
            writer.close()
        if self.connections:
            await asyncio.wait(list(self.connections), timeout=1.0)


def log(msg):
    print(f"pyiso_host: {msg}", file=sys.stderr, flush=True)


async def main_async(args):
    host = Host(args.rc, args.capture)
    server = await asyncio.start_server(host.serve, args.bind, args.port)
    addr = server.sockets[0].getsockname()
    print(f"listening {addr[0]}:{addr[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.max_seconds)
        log("signal: stopping")
    except asyncio.TimeoutError:
        log(f"--max-seconds {args.max_seconds} reached: stopping")
    server.close()
    await host.shutdown()


def main():
    ap = argparse.ArgumentParser(description="ISO 8583 (ascii87) test acquirer on pyiso8583")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = any free port")
    ap.add_argument("--rc", help="DE 39 for every 0200 (default 00)")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="exit after this long")
    ap.add_argument("--capture", help="append every frame, hex, as JSON lines to this file")
    args = ap.parse_args()
    if args.rc is not None and not re.fullmatch(r"[0-9A-Z]{2}", args.rc):
        ap.error("--rc takes two characters, e.g. 05")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
