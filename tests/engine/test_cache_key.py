"""The response cache's key: any change to what a request sends changes it, what is not
sent (the timeout, the attempt number, the API key, a URL's credentials) does not, and the
key material never holds a key."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine._cache import request_key
from engine.providers import CallRequest, make_provider
from engine.providers._base import Identifies

API_KEY = "sk-key-never-in-the-cache-0123456789"
WIRES = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
}


def identity_of(wire: str, base_url: str | None = None, key: str = API_KEY) -> Any:
    provider = make_provider(
        wire,
        base_url=base_url or WIRES[wire],
        key=key,
        transport=httpx.MockTransport(lambda request: httpx.Response(500)),
    )
    assert isinstance(provider, Identifies)
    return provider.request_identity


text = st.text(min_size=1, max_size=40)
numbers = st.floats(min_value=0, max_value=2, allow_nan=False)
json_values = st.one_of(st.integers(-5, 5), st.booleans(), text)
schemas = st.fixed_dictionaries(
    {"type": st.just("object"), "properties": st.dictionaries(text, st.just({"type": "string"}))}
)
CHANGES: dict[str, st.SearchStrategy[Any]] = {
    "model": st.from_regex(r"[a-z0-9][a-z0-9.\-]{0,30}", fullmatch=True),
    "prompt": text,
    "system": text,
    "max_tokens": st.integers(1, 100_000),
    "temperature": numbers,
    "stop": st.lists(text, min_size=1, max_size=3).map(tuple),
    "schema": schemas,
    "params": st.dictionaries(
        st.sampled_from(["top_p", "seed", "user", "logprobs"]), json_values, min_size=1
    ),
}
BASE = CallRequest(model="m-1", prompt="Classify: printer on fire", max_tokens=64)


@settings(max_examples=300, deadline=None)
@given(
    wire=st.sampled_from(sorted(WIRES)),
    field=st.sampled_from(sorted(CHANGES)),
    data=st.data(),
)
def test_changing_any_field_that_is_sent_changes_the_key(
    wire: str, field: str, data: st.DataObject
) -> None:
    identity = identity_of(wire)
    value = data.draw(CHANGES[field])
    before = getattr(BASE, field)
    changed = replace(BASE, **{field: value})
    if value == before:
        return
    assert request_key(identity(changed)) != request_key(identity(BASE)), (field, value)


@settings(max_examples=100, deadline=None)
@given(
    timeout=st.floats(1, 600), attempt=st.integers(1, 50), key=st.text("abcdef0123", min_size=20)
)
def test_what_is_not_sent_in_the_body_leaves_the_key_alone(
    timeout: float, attempt: int, key: str
) -> None:
    for wire in WIRES:
        other = replace(BASE, timeout_s=timeout, attempt=attempt)
        assert identity_of(wire, key=key)(other) == identity_of(wire)(BASE)


@pytest.mark.parametrize("wire", sorted(WIRES))
def test_the_provider_and_its_url_are_part_of_the_key(wire: str) -> None:
    here = request_key(identity_of(wire)(BASE))
    elsewhere = request_key(identity_of(wire, "https://proxy.example.com/v1")(BASE))
    assert here != elsewhere
    assert len({request_key(identity_of(w)(BASE)) for w in WIRES}) == len(WIRES)


def test_a_url_s_credentials_are_not_in_the_key_material() -> None:
    plain = identity_of("openai", "https://proxy.example.com/v1?api-version=2")
    secret = "s3cret-pass-0123456789"
    with_credentials = identity_of(
        "openai", f"https://user:{secret}@proxy.example.com/v1?api-version=2&api_key={secret}"
    )
    material = with_credentials(BASE)
    assert secret.encode() not in material and API_KEY.encode() not in material
    assert material == plain(BASE)
    assert b"api-version=2" in material  # a query that is not a credential is sent: it counts
