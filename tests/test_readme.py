"""The README's worked signing example must be exactly what the signer computes."""

import hashlib
import re

from apps.apikeys.signer import signed_headers

from .servers import ROOT


def test_worked_example_values() -> None:
    readme = (ROOT / "README.md").read_text()
    body = re.search(r"^body\s+(\{.*\})$", readme, re.MULTILINE).group(1).encode()
    body_hash = re.search(r"^body hash\s+([0-9a-f]{64})$", readme, re.MULTILINE).group(1)
    signature = re.search(r"^X-RTCstack-Signature: (sha256=[0-9a-f]{64})$", readme, re.MULTILINE).group(1)
    assert hashlib.sha256(body).hexdigest() == body_hash
    headers = signed_headers("rk_demo", "s3cret", "POST", "/v1/token", body, timestamp=1700000000)
    assert headers == {
        "X-Api-Key": "rk_demo",
        "X-RTCstack-Timestamp": "1700000000",
        "X-RTCstack-Signature": signature,
    }
