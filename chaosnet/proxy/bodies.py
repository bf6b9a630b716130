"""Request bodies of the control API, parsed and validated; every failure is a 400 naming the field.

Toxiproxy (Go) ignores unknown fields and accepts any number for ``toxicity``;
chaosnet rejects unknown toxic fields and attributes, out-of-range values and
wrong types, so a typo fails loudly instead of silently doing nothing. Proxy
bodies still ignore unknown fields, because Toxiproxy's own clients send the
proxy back with its ``toxics`` list when saving it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from chaosnet.proxy.addresses import parse_listen, parse_upstream
from chaosnet.proxy.datagram.proxy import MAX_FLOW_TIMEOUT_MS
from chaosnet.proxy.engine import ProxyConfig
from chaosnet.proxy.errors import BAD_REQUEST, ApiError, bad_request
from chaosnet.proxy.framers import Protocol, ProtocolError, parse_protocol
from chaosnet.proxy.toxics import REGISTRY
from chaosnet.proxy.toxics.base import (
    EXTENSION_FIELDS,
    MAX_BYTES,
    MESSAGE_SCOPES,
    STREAMS,
    TOXIPROXY_FIELDS,
    TRANSPORTS,
    FieldError,
    Toxic,
    ToxicSpec,
    Transport,
)
from chaosnet.seeds import MAX_SEED

TOXIC_FIELDS = frozenset({*TOXIPROXY_FIELDS, *EXTENSION_FIELDS})


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise bad_request("bad request body: empty")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise bad_request(f"bad request body: {exc}") from None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def expect_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request(f"bad request body: expected a JSON object, got {_kind(body)}")
    return body


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else "null"
    )


def _string(body: Mapping[str, Any], field: str, *, where: str = "") -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"bad request body: {field}{where} must be a string, got {_kind(value)}")
    return value


def _bool(body: Mapping[str, Any], field: str, *, where: str = "") -> bool | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise bad_request(f"bad request body: {field}{where} must be true or false, got {value!r}")
    return value


# -- proxies -------------------------------------------------------------------------------


def proxy_config(body: Any, *, where: str = "") -> ProxyConfig:
    """A create/populate entry: name and upstream required, listen and enabled optional."""
    body = expect_object(body)
    name = _string(body, "name", where=where)
    if not name:
        raise bad_request(f"missing required field: name{where}")
    upstream = _string(body, "upstream", where=where)
    if not upstream:
        raise bad_request(f"missing required field: upstream{where}")
    listen = _string(body, "listen", where=where) or ""
    enabled = _bool(body, "enabled", where=where)
    transport, flow_timeout = _transport(body, where)
    protocol = _protocol(body, where=where)
    return ProxyConfig(
        name,
        listen,
        upstream,
        True if enabled is None else enabled,
        transport,
        flow_timeout,
        protocol,
    )


def _transport(body: Mapping[str, Any], where: str) -> tuple[Transport, int | None]:
    """``transport`` (chaosnet: "tcp" or "udp") and the datagram-only ``flow_timeout``."""
    given = (_string(body, "transport", where=where) or "tcp").lower()
    transport = next((t for t in TRANSPORTS if t == given), None)
    if transport is None:
        raise bad_request(f'transport{where}: must be "tcp" or "udp", got {body["transport"]!r}')
    flow_timeout = None
    if body.get("flow_timeout") is not None:
        if transport != "udp":
            raise bad_request(
                f"flow_timeout{where}: only datagram proxies have flows (transport udp)"
            )
        flow_timeout = _count(
            body["flow_timeout"], f"flow_timeout{where}", minimum=1, maximum=MAX_FLOW_TIMEOUT_MS
        )
    if transport == "udp" and body.get("protocol") is not None:
        raise bad_request(
            f"protocol{where}: not supported on a datagram proxy (transport udp): "
            "no framer for datagrams"
        )
    return transport, flow_timeout


def _protocol(body: Mapping[str, Any], *, where: str = "") -> Protocol | None:
    try:
        return parse_protocol(body.get("protocol"), body.get("protocol_options"))
    except ProtocolError as exc:
        raise bad_request(f"{exc}{where}") from None


def check_addresses(config: ProxyConfig) -> None:
    """The addresses' syntax; the engine checks them again when it creates the proxy.

    Not part of :func:`proxy_config`: as in Toxiproxy, ``/populate`` creates the
    entries before one with a bad address, then reports it with those created.
    """
    parse_listen(config.listen)
    parse_upstream(config.upstream)


def populate_configs(body: Any) -> list[ProxyConfig]:
    if not isinstance(body, list):
        raise bad_request(f"bad request body: expected a JSON array of proxies, got {_kind(body)}")
    return [proxy_config(item, where=f" at proxy {i}") for i, item in enumerate(body, 1)]


def proxy_update(
    body: Any,
) -> tuple[str | None, str | None, bool | None, tuple[Protocol | None] | None]:
    """(listen, upstream, enabled, protocol); each None when absent (keep the current value).

    ``protocol`` is ``(new,)`` when the body has a ``protocol`` field (``null``: plain bytes).
    """
    body = expect_object(body)
    listen = _string(body, "listen")
    upstream = _string(body, "upstream")
    if listen is not None:
        parse_listen(listen)
    if upstream is not None:
        parse_upstream(upstream)
    protocol = (_protocol(body),) if "protocol" in body or "protocol_options" in body else None
    return listen, upstream, _bool(body, "enabled"), protocol


# -- toxics -------------------------------------------------------------------------------------


def new_toxic(body: Any, fits: Callable[[type[Toxic]], None] | None = None) -> ToxicSpec:
    """A toxic from a request body; ``fits`` (the proxy's) refuses a type that does not
    fit the proxy before its attributes are looked at."""
    body = expect_object(body)
    _reject_unknown_fields(body)
    given_stream = (_string(body, "stream") or "").lower()
    if given_stream and given_stream not in STREAMS:
        raise bad_request("stream was invalid, can be either upstream or downstream")
    type_name = _string(body, "type") or ""
    cls = REGISTRY.get(type_name)
    if cls is None:
        known = ", ".join(sorted(REGISTRY))
        raise ApiError(BAD_REQUEST, "invalid toxic type", f"{type_name!r} (known: {known})")
    if fits is not None:
        fits(cls)
    stream = given_stream or cls.default_stream()
    if stream not in cls.streams:
        raise bad_request(f"stream: {type_name} applies to {' and '.join(cls.streams)} only")
    name = _string(body, "name") or f"{type_name}_{stream}"
    defaults = {attr.name: attr.default for attr in cls.attributes}
    attributes = _attributes(cls, body.get("attributes"), defaults)
    skip, most, seed = _targeting(cls, body, 0, None, None)
    skip_messages, max_messages, scope = _message_targeting(body, 0, None, "connection")
    return ToxicSpec(
        name=name,
        cls=cls,
        stream=stream,
        toxicity=_toxicity(body, 1.0),
        attributes=attributes,
        skip_connections=skip,
        max_connections=most,
        seed=seed,
        skip_messages=skip_messages,
        max_messages=max_messages,
        message_scope=scope,
    )


def apply_toxic_update(
    spec: ToxicSpec, body: Any, check: Callable[[ToxicSpec], None] | None = None
) -> None:
    """Validate a PATCH body completely, then change ``spec`` (all or nothing).

    As in Toxiproxy, ``attributes`` are merged into the current ones and ``name``,
    ``type`` and ``stream`` cannot be changed (they are ignored). ``check`` sees the
    updated toxic before ``spec`` changes (the proxy's protocol checks).
    """
    body = expect_object(body)
    _reject_unknown_fields(body)
    attributes = _attributes(spec.cls, body.get("attributes"), dict(spec.attributes))
    toxicity = _toxicity(body, spec.toxicity)
    skip, most, seed = _targeting(
        spec.cls, body, spec.skip_connections, spec.max_connections, spec.seed
    )
    messages = _message_targeting(body, spec.skip_messages, spec.max_messages, spec.message_scope)
    if check is not None:
        check(
            ToxicSpec(
                name=spec.name,
                cls=spec.cls,
                stream=spec.stream,
                toxicity=toxicity,
                attributes=attributes,
                skip_messages=messages[0],
                max_messages=messages[1],
                message_scope=messages[2],
            )
        )
    spec.attributes = attributes
    spec.toxicity = toxicity
    spec.skip_connections, spec.max_connections, spec.seed = skip, most, seed
    spec.skip_messages, spec.max_messages, spec.message_scope = messages


def _reject_unknown_fields(body: Mapping[str, Any]) -> None:
    unknown = sorted(set(body) - TOXIC_FIELDS)
    if unknown:
        raise bad_request(
            f"bad request body: unknown toxic field {unknown[0]!r} "
            f"(known: {', '.join(sorted(TOXIC_FIELDS))})"
        )


def _attributes(cls: type[Toxic], given: Any, current: dict[str, object]) -> dict[str, object]:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise bad_request(f"bad request body: attributes must be an object, got {_kind(given)}")
    schema = {attr.name: attr for attr in cls.attributes}
    merged = dict(current)
    try:
        for key, value in given.items():
            attr = schema.get(key)
            if attr is None:
                known = ", ".join(schema) or "none"
                raise FieldError(
                    f"attributes.{key}: unknown attribute of {cls.type_name} (known: {known})"
                )
            merged[key] = attr.coerce(value)
        for attr in cls.attributes:  # defaults too: slicer has no usable average_size default
            attr.coerce(merged[attr.name])
        cls.check(merged)
    except FieldError as exc:
        raise bad_request(str(exc)) from None
    return merged


def _toxicity(body: Mapping[str, Any], default: float) -> float:
    value = body.get("toxicity")
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise bad_request(f"toxicity: must be a number between 0 and 1, got {value!r}")
    return float(value)


def _targeting(
    cls: type[Toxic],
    body: Mapping[str, Any],
    skip: int,
    most: int | None,
    seed: int | None,
) -> tuple[int, int | None, int | None]:
    if "skip_connections" in body:
        skip = _count(body["skip_connections"], "skip_connections", minimum=0) or 0
    if "max_connections" in body:
        most = _count(body["max_connections"], "max_connections", minimum=1)
        if most is not None and cls.phase == "listen":
            raise bad_request(
                f"max_connections: not supported by {cls.type_name}: the connections it "
                "refuses or stalls never reach the proxy, so they cannot be counted"
            )
    if "seed" in body:
        seed = _count(body["seed"], "seed", minimum=0, maximum=MAX_SEED)
    return skip, most, seed


def _message_targeting(
    body: Mapping[str, Any], skip: int, most: int | None, scope: str
) -> tuple[int, int | None, str]:
    if "skip_messages" in body:
        skip = _count(body["skip_messages"], "skip_messages", minimum=0) or 0
    if "max_messages" in body:
        most = _count(body["max_messages"], "max_messages", minimum=1)
    if "message_scope" in body:
        value = body["message_scope"]
        if value not in MESSAGE_SCOPES:
            raise bad_request(f"message_scope: must be connection or proxy, got {value!r}")
        scope = value
    return skip, most, scope


def _count(value: Any, field: str, *, minimum: int, maximum: int = MAX_BYTES) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise bad_request(
            f"{field}: must be a whole number from {minimum} to {maximum}, got {value!r}"
        )
    return value
