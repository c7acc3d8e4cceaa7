"""The webhook address guard sees through IPv6 addresses that carry an IPv4 address (issue 11, item 14).

6to4, Teredo, NAT64 and IPv4-compatible addresses reach the IPv4 address inside them; a URL naming one
must be judged by that address, or `http://[2002:7f00:1::]/` reaches the server's own loopback.
"""

from typing import Any

import pytest

from apps.webhooks import targets
from tests.conftest import SignedClient, problem


@pytest.mark.parametrize(
    ("url", "embedded", "kind"),
    [
        ("http://[2002:7f00:1::]/", "127.0.0.1", "loopback"),  # 6to4
        ("http://[2002:a9fe:a9fe::1]/latest/meta-data", "169.254.169.254", "link-local"),  # 6to4, cloud metadata
        ("http://[2002:a00:5::]:8080/hook", "10.0.0.5", "private"),  # 6to4
        ("http://[64:ff9b::7f00:1]/", "127.0.0.1", "loopback"),  # NAT64 well-known prefix
        ("http://[64:ff9b::c0a8:114]/", "192.168.1.20", "private"),  # NAT64
        ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "127.0.0.1", "loopback"),  # Teredo client 127.0.0.1
        ("http://[::7f00:1]/", "127.0.0.1", "loopback"),  # IPv4-compatible (deprecated)
        ("http://[::ffff:a9fe:a9fe]/", "169.254.169.254", "link-local"),  # IPv4-mapped
    ],
)
def test_ipv6_forms_embedding_a_non_public_ipv4_are_refused(
    api: SignedClient, url: str, embedded: str, kind: str
) -> None:
    response = api.post_json("/v1/webhooks", {"url": url, "events": ["*"]})
    assert response.status_code == 400, response.content
    message = problem(response)["errors"]["url"][0]
    assert f"a {kind} address" in message
    assert embedded in message
    assert "WEBHOOKS_ALLOW_PRIVATE_TARGETS" in message


def test_local_use_nat64_prefix_is_refused(api: SignedClient) -> None:
    """64:ff9b:1::/48 (RFC 8215) translates to a network's own IPv4 space, wherever the address sits."""
    response = api.post_json("/v1/webhooks", {"url": "http://[64:ff9b:1:7f00:1::]/", "events": ["*"]})
    assert response.status_code == 400
    assert "local-use NAT64" in problem(response)["errors"]["url"][0]


@pytest.mark.parametrize(
    "url",
    [
        "http://[2002:5db8:d70e::1]/hook",  # 6to4 of 93.184.215.14
        "http://[64:ff9b::5db8:d70e]/hook",  # NAT64 of 93.184.215.14 (an IPv6-only network's way to it)
        "http://[2606:4700:4700::1111]/hook",  # plain public IPv6
    ],
)
def test_ipv6_forms_of_public_addresses_are_accepted(api: SignedClient, url: str) -> None:
    assert api.post_json("/v1/webhooks", {"url": url, "events": ["*"]}).status_code == 201


def test_delivery_time_check_refuses_the_embedded_form_too(settings: Any) -> None:
    """The peer-address check at connect time uses the same judgement as the check on save."""
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(targets.TargetRefusedError, match=r"embeds 127\.0\.0\.1"):
        targets.refuse_if_not_public("hooks.example.com", "2002:7f00:1::")
