"""Property-based tests of the pure HTTP rules and the HTTP key builders.

Whatever bytes arrive, the rules raise nothing but their documented errors, bounded values
stay within bounds, and keys are injective: two requests that an app can tell apart never
share a key. Example counts are kept modest (EXAMPLES per property) so the file runs in
seconds; no deadline, since the machine is shared (the inputs themselves are bounded).
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from fastapi_cachekit.errors import SerializationError
from fastapi_cachekit.fastapi.http import (
    MAX_DELTA_SECONDS,
    CachePolicy,
    Header,
    age_header_value,
    canonical_url,
    decide_lookup,
    decide_storage,
    decode_entry,
    encode_entry,
    format_http_date,
    generate_etag,
    keyed_field_names,
    parse_cache_control,
    parse_delta_seconds,
    parse_entity_tags,
    parse_http_date,
    qualified_key,
    request_cache_control,
    request_key,
    strong_match,
    vary_field_names,
    vary_matches,
    vary_values,
    weak_match,
)
from fastapi_cachekit.fastapi.middleware.store import (
    decode_marker,
    encode_marker,
    marker_variants,
    variant_digest,
    variant_key,
)
from tests.fastapi.middleware_support import Harness, Origin

EXAMPLES = 100
fuzz = settings(max_examples=EXAMPLES, deadline=None)

T0 = 1_700_000_000.0
DIRECTIVES = [
    "max-age",
    "s-maxage",
    "max-stale",
    "min-fresh",
    "stale-while-revalidate",
    "stale-if-error",
    "no-cache",
    "no-store",
    "private",
    "public",
    "must-revalidate",
    "must-understand",
    "only-if-cached",
]
DELTA_FIELDS = (
    "max_age",
    "s_maxage",
    "max_stale",
    "min_fresh",
    "stale_while_revalidate",
    "stale_if_error",
)

field_bytes = st.binary(max_size=200)
long_digits = st.builds(
    lambda head, length, fill: head + fill * length,
    st.text("0123456789", max_size=12),
    st.integers(min_value=1, max_value=6000),
    st.sampled_from("0123456789"),
)
# Short numbers, and one past int()'s 4,300-digit limit: generating thousands of long
# strings per example would make the file slow without finding more.
digits = st.one_of(st.text("0123456789", min_size=1, max_size=12), st.just("9" * 5000))
directive = st.one_of(
    st.sampled_from(DIRECTIVES),
    st.builds(lambda name, value: f"{name}={value}", st.sampled_from(DIRECTIVES), digits),
    st.builds(lambda name, value: f'{name}="{value}"', st.sampled_from(DIRECTIVES), st.text()),
    st.text(max_size=40),
)
cache_control = st.lists(directive, max_size=8).map(lambda parts: ", ".join(parts).encode())
header_name = st.sampled_from(
    [
        *(b"cache-control", b"age", b"expires", b"date", b"etag", b"last-modified", b"vary"),
        *(b"content-length", b"set-cookie", b"accept-language", b"x-forwarded-host", b"pragma"),
    ]
)
header = st.tuples(header_name, st.one_of(field_bytes, cache_control, digits.map(str.encode)))
headers = st.lists(header, max_size=6)


def in_range(value: int | None) -> bool:
    return value is None or 0 <= value <= MAX_DELTA_SECONDS


# --- Cache-Control, delta-seconds, Age -------------------------------------------------------


@fuzz
@given(st.lists(st.one_of(cache_control, field_bytes), max_size=4))
def test_cache_control_parses_anything_within_bounds(values: list[bytes]) -> None:
    cc = parse_cache_control(values)
    assert all(in_range(getattr(cc, name)) for name in DELTA_FIELDS)
    assert not (cc.public and cc.private)


@fuzz
@given(long_digits)
def test_delta_seconds_of_any_length_saturate(text: str) -> None:
    significant = text.lstrip("0") or "0"  # int() refuses more than 4,300 digits, zeros too
    expected = MAX_DELTA_SECONDS if len(significant) > 10 else min(int(significant), 2**31)
    assert parse_delta_seconds(text) == expected


@fuzz
@given(st.text(max_size=50))
def test_delta_seconds_are_digits_or_nothing(text: str) -> None:
    value = parse_delta_seconds(text)
    assert in_range(value)
    if value is not None:
        assert text.strip('"').isdigit()


@fuzz
@given(st.lists(st.one_of(field_bytes, digits.map(str.encode)), max_size=4))
def test_age_is_within_bounds(values: list[bytes]) -> None:
    age = age_header_value(values)
    assert age is None or 0 <= age <= MAX_DELTA_SECONDS


@fuzz
@given(headers)
def test_request_directives_parse_anything(request_headers: list[Header]) -> None:
    cc = request_cache_control(request_headers)
    assert all(in_range(getattr(cc, name)) for name in DELTA_FIELDS)


# --- HTTP dates ------------------------------------------------------------------------------


@fuzz
@given(st.one_of(field_bytes, st.text(max_size=60)))
def test_dates_parse_anything(value: bytes | str) -> None:
    parsed = parse_http_date(value, now=T0)
    assert parsed is None or -62135596800 <= parsed <= 253402300799


@fuzz
@given(st.integers(min_value=0, max_value=253402300799))
def test_dates_round_trip(timestamp: int) -> None:
    assert parse_http_date(format_http_date(timestamp)) == timestamp


# --- ETag lists ------------------------------------------------------------------------------


@fuzz
@given(st.lists(field_bytes, max_size=4))
def test_entity_tag_lists_parse_anything(values: list[bytes]) -> None:
    _, tags = parse_entity_tags(values)
    for tag in tags:
        assert tag.endswith(b'"')
        assert tag.startswith((b'"', b'W/"'))
        assert weak_match(tag, tag)


@fuzz
@given(st.binary(max_size=100), st.binary(max_size=100))
def test_generated_etags_parse_back_and_tell_bodies_apart(a: bytes, b: bytes) -> None:
    tag = generate_etag(a)
    assert parse_entity_tags([b"W/" + tag + b", " + tag]) == (False, (b"W/" + tag, tag))
    assert strong_match(tag, generate_etag(b)) == (a == b)


# --- Vary ------------------------------------------------------------------------------------


@fuzz
@given(headers, headers)
def test_vary_values_match_their_own_request(response: list[Header], request: list[Header]) -> None:
    names = keyed_field_names(response, request)
    assert set(vary_field_names(response)) <= set(names)
    assert vary_matches(vary_values(names, request), request)


@fuzz
@given(
    st.lists(st.tuples(header_name, st.one_of(st.none(), field_bytes)), max_size=4),
    st.lists(st.tuples(header_name, st.one_of(st.none(), field_bytes)), max_size=4),
)
def test_variant_keys_are_injective(
    a: list[tuple[bytes, bytes | None]], b: list[tuple[bytes, bytes | None]]
) -> None:
    clean_a = tuple((n, None if v is None else v.replace(b"\0", b"")) for n, v in a)
    clean_b = tuple((n, None if v is None else v.replace(b"\0", b"")) for n, v in b)
    same = variant_key("k", clean_a) == variant_key("k", clean_b)
    assert same == (clean_a == clean_b)
    assert variant_digest(clean_a) in variant_key("k", clean_a)


@fuzz
@given(
    st.lists(st.binary(min_size=1, max_size=20).filter(lambda n: b"\0" not in n), min_size=1),
    st.lists(st.text("0123456789abcdef", min_size=32, max_size=32), max_size=8),
)
def test_vary_markers_round_trip(names: list[bytes], variants: list[str]) -> None:
    raw = encode_marker(names, variants)
    assert decode_marker(raw) == tuple(names)
    assert marker_variants(raw) == variants


# --- Storage decisions and stored entries ----------------------------------------------------


@fuzz
@given(st.integers(min_value=100, max_value=999), headers, headers, st.booleans())
def test_storage_and_lookup_decide_anything(
    status: int, response: list[Header], request: list[Header], ttl_mode: bool
) -> None:
    policy = CachePolicy(ttl=60.0 if ttl_mode else None, respect_request_cache_control=True)
    decision = decide_storage(
        "GET", request, status, response, policy=policy, request_time=T0, response_time=T0
    )
    if decision.plan is None:
        return
    entry = decision.plan.entry(b"body")
    if entry is None:
        return
    try:
        raw = encode_entry(entry)
    except SerializationError:
        return
    assert decode_entry(raw) == entry
    lookup = decide_lookup(entry, request, policy=policy, now=T0 + 30)
    assert lookup.action is not None


# --- Request keys ----------------------------------------------------------------------------

host = st.builds(
    lambda name, port: name + port,
    st.text("abcXYZ019.-_/?#%@[]:", min_size=1, max_size=12),
    st.sampled_from(["", ":80", ":443", ":8080"]),
)
path = st.text(max_size=20).map(lambda text: "/" + text)
query = st.lists(st.tuples(st.text(max_size=6), st.text(max_size=6)), max_size=4)


def encoded(pairs: list[tuple[str, str]]) -> bytes:
    return "&".join(f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in pairs).encode()


def meaning(
    scheme: str, host_value: str, path_value: str, pairs: list[tuple[str, str]]
) -> tuple[str, str, str, list[tuple[str, str]]]:
    """What an app sees of a request: the host without its scheme's default port, the path,
    and the query parameters ordered by name (a name's values keep their order)."""
    host_value = host_value.lower()
    default = ":80" if scheme == "http" else ":443"
    host_value = host_value.removesuffix(default) if host_value.endswith(default) else host_value
    return scheme, host_value, path_value, sorted(pairs, key=lambda pair: pair[0])


request = st.tuples(st.sampled_from(["http", "https"]), host, path, query)
Request = tuple[str, str, str, list[tuple[str, str]]]


@st.composite
def request_pairs(draw: st.DrawFn) -> tuple[Request, Request]:
    """Two requests: independent, or the second a rewording of the first (host case,
    parameters of different names reordered) that an app cannot tell apart."""
    a = draw(request)
    if draw(st.booleans()):
        return a, draw(request)
    pairs = sorted(a[3], key=lambda pair: (pair[0] == "", pair[0]))
    return a, (a[0], a[1].upper(), a[2], sorted(pairs, key=lambda pair: pair[0]))


@fuzz
@given(request_pairs())
def test_request_keys_are_injective(pair: tuple[Request, Request]) -> None:
    a, b = pair
    key_a = request_key(a[0], a[1], a[2], encoded(a[3]))
    key_b = request_key(b[0], b[1], b[2], encoded(b[3]))
    assert (key_a == key_b) == (meaning(*a) == meaning(*b))


@fuzz
@given(host, path, path)
def test_a_host_cannot_pose_as_a_path(host_value: str, left: str, right: str) -> None:
    # `Host: a/b` + `/c` and `Host: a` + `/b/c` are different requests.
    a = canonical_url("http", host_value + left.rstrip("/"), right)
    b = canonical_url("http", host_value, left.rstrip("/") + right)
    assert (a == b) == (left.rstrip("/") == "")


fields = st.lists(
    st.tuples(st.binary(max_size=8), st.lists(st.binary(max_size=8), max_size=3)), max_size=4
)


@fuzz
@given(fields, fields)
def test_qualified_keys_are_injective(
    a: list[tuple[bytes, list[bytes]]], b: list[tuple[bytes, list[bytes]]]
) -> None:
    assert (qualified_key("k", a) == qualified_key("k", b)) == (a == b)


# --- Through the middleware ----------------------------------------------------------------------

printable = st.binary(max_size=60).map(lambda raw: bytes(b for b in raw if 32 <= b < 127))
request_header = st.tuples(
    st.sampled_from(
        [
            *("cache-control", "pragma", "if-none-match", "if-modified-since"),
            *("accept-language", "x-forwarded-host", "age", "authorization"),
        ]
    ),
    st.one_of(printable, cache_control, digits.map(str.encode)),
)
response_header = st.tuples(
    st.sampled_from(["cache-control", "age", "expires", "date", "etag", "last-modified", "vary"]),
    st.one_of(printable, cache_control, digits.map(str.encode)),
)


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(st.lists(response_header, max_size=4), st.lists(request_header, max_size=4))
def test_nothing_a_client_or_the_app_sends_makes_a_500(
    response: list[tuple[str, bytes]], request: list[tuple[str, bytes]]
) -> None:
    origin = Origin(headers=[(name, value.decode("latin-1")) for name, value in response])
    sent = [(name.encode(), value.strip()) for name, value in request]

    async def exchange() -> list[int]:
        options = {"ttl": 60, "respect_request_cache_control": True}
        async with Harness(origin.app, **options) as h:
            return [(await h.client.get("/", headers=sent)).status_code for _ in range(2)]

    statuses = asyncio.run(exchange())
    assert all(status in (200, 304, 504) for status in statuses)
