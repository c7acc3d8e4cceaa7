#!/usr/bin/env python3
# ruff: noqa - copy of the shared load harness (shared/bench/presign.py), only reformatted by ruff format
"""Pre-sign N distinct RTCstack-style requests for wrk (see signed.lua).

Signature scheme (RTCstack apps/api/src/plugins/auth.ts):
  X-Api-Key:             <api key>
  X-RTCstack-Timestamp:  <unix seconds>
  X-RTCstack-Signature:  "sha256=" + hex(HMAC-SHA256(secret,
                            METHOD + "\n" + PATH + "\n" + TIMESTAMP + "\n" + hex(SHA256(body))))
The reference implementation hashes JSON.stringify(parsed body), so bodies are compact JSON
(no spaces) with keys in a fixed order, which round-trips byte-identically.

Each request i has userId "<prefix><i>" -> distinct body -> distinct signature,
so a server that rejects replays sees no repeats as long as the load
generator does not wrap around (signed.lua reports wraps).

Output (--format raw, default; what signed.lua reads): a header line
  "RTCSTACK-PRESIGNED v1 <N>\n"
then N records, each "<byte length>\n<complete raw HTTP/1.1 request>", so the
Lua side does no parsing or formatting (keeps wrk's init() short).
Output (--format tsv): one request per line, tab separated:
  METHOD \t PATH \t APIKEY \t TIMESTAMP \t SIGNATURE \t BODY

Usage:
  presign.py --base-url http://127.0.0.1:3246 --path /v1/token \
             --key KEY --secret SECRET -n 400000 -o /tmp/reqs.tsv
  presign.py ... --curl 3     # also print 3 ready-to-run curl commands
"""

import argparse
import hashlib
import hmac
import json
import shlex
import sys
import time
from urllib.parse import urlsplit


def sign(secret: str, method: str, path: str, ts: str, body: bytes) -> str:
    body_hash = hashlib.sha256(body).hexdigest()
    canonical = f"{method}\n{path}\n{ts}\n{body_hash}".encode()
    return "sha256=" + hmac.new(secret.encode(), canonical, hashlib.sha256).hexdigest()


def make_body(i: int, prefix: str, room: str, role: str) -> bytes:
    obj = {"roomId": room, "userId": f"{prefix}{i}", "name": f"User {i}", "role": role}
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--base-url", default="http://127.0.0.1:3246", help="only used for --curl output and for a path prefix, if any"
    )
    ap.add_argument("--path", default="/v1/token", help="request path that is signed")
    ap.add_argument("--method", default="POST")
    ap.add_argument("--key", required=True, help="X-Api-Key value")
    ap.add_argument("--secret", required=True, help="HMAC secret (API_SECRET)")
    ap.add_argument("-n", type=int, default=100000, help="number of distinct requests")
    ap.add_argument("-o", "--out", default="-", help="output file ('-' = stdout)")
    ap.add_argument("--prefix", default="u", help="userId prefix (vary per run for global uniqueness)")
    ap.add_argument("--room", default="r1")
    ap.add_argument("--role", default="participant")
    ap.add_argument("--ts", type=int, default=None, help="timestamp to use (default: now)")
    ap.add_argument(
        "--body-hash",
        choices=["body", "empty"],
        default="body",
        help="'body': hash the sent body (documented scheme). 'empty': hash the empty "
        "string, which is what the reference implementation actually verifies, because its "
        "auth runs in Fastify's onRequest hook before the body is parsed "
        "(req.body is undefined there); its own playground signs sha256('') too.",
    )
    ap.add_argument("--format", choices=["raw", "tsv"], default="raw")
    ap.add_argument("--curl", type=int, default=0, help="print K curl commands for the first K requests to stderr")
    a = ap.parse_args()

    # full signed path = base-url path prefix (if any) + --path
    base_path = urlsplit(a.base_url).path.rstrip("/")
    path = base_path + a.path
    method = a.method.upper()
    ts = str(a.ts if a.ts is not None else int(time.time()))

    out = sys.stdout.buffer if a.out == "-" else open(a.out, "wb")
    host = urlsplit(a.base_url).netloc.encode()
    if a.format == "raw":
        out.write(f"RTCSTACK-PRESIGNED v1 {a.n}\n".encode())
    t0 = time.time()
    curls = []
    for i in range(a.n):
        body = make_body(i, a.prefix, a.room, a.role)
        sig = sign(a.secret, method, path, ts, body if a.body_hash == "body" else b"")
        if a.format == "tsv":
            out.write(
                b"\t".join([method.encode(), path.encode(), a.key.encode(), ts.encode(), sig.encode(), body]) + b"\n"
            )
        else:
            raw = b"".join(
                [
                    method.encode(),
                    b" ",
                    path.encode(),
                    b" HTTP/1.1\r\n",
                    b"Host: ",
                    host,
                    b"\r\n",
                    b"Content-Type: application/json\r\n",
                    b"X-Api-Key: ",
                    a.key.encode(),
                    b"\r\n",
                    b"X-RTCstack-Timestamp: ",
                    ts.encode(),
                    b"\r\n",
                    b"X-RTCstack-Signature: ",
                    sig.encode(),
                    b"\r\n",
                    b"Content-Length: ",
                    str(len(body)).encode(),
                    b"\r\n",
                    b"\r\n",
                    body,
                ]
            )
            out.write(str(len(raw)).encode() + b"\n" + raw)
        if i < a.curl:
            url = a.base_url.rstrip("/") + a.path
            curls.append(
                " ".join(
                    [
                        "curl -s -w '\\nHTTP %{http_code}\\n'",
                        "-X",
                        method,
                        shlex.quote(url),
                        "-H",
                        shlex.quote("Content-Type: application/json"),
                        "-H",
                        shlex.quote(f"X-Api-Key: {a.key}"),
                        "-H",
                        shlex.quote(f"X-RTCstack-Timestamp: {ts}"),
                        "-H",
                        shlex.quote(f"X-RTCstack-Signature: {sig}"),
                        "--data-binary",
                        shlex.quote(body.decode()),
                    ]
                )
            )
    if out is not sys.stdout.buffer:
        out.close()
    print(
        f"presign: {a.n} requests ({a.format}), ts={ts}, path={path}, body-hash={a.body_hash}, {time.time() - t0:.2f}s",
        file=sys.stderr,
    )
    for c in curls:
        print(c, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
