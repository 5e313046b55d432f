"""``policy.apply_policy`` and ``callers.load_callers``/``CallersStore`` as pure code, no processes.

The merge table follows policy.py's docstring and the README's "Per-caller routing policy":
defaults fill only what the request left unset; limits are ceilings (an unset field receives
the ceiling); ``reject`` refuses with PERMISSION_DENIED naming the rule, ``narrow`` intersects
lists and lowers caps, and nothing is ever widened.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from routerpc import pb
from routerpc._gen import enums
from routerpc_gateway.callers import Caller, CallersFile, CallersStore, hash_token, load_callers
from routerpc_gateway.errors import GatewayError
from routerpc_gateway.policy import apply_policy

Q = enums.Quantization
DENY, ALLOW = enums.DataCollection.DENY, enums.DataCollection.ALLOW

README_POLICY: dict[str, Any] = {
    "defaults": {"data_collection": "deny", "zdr": True, "quantizations": ["fp8", "fp16"]},
    "limits": {
        "mode": "reject",
        "models": ["openai/*", "meta-llama/*"],
        "quantizations": ["fp8", "fp16", "bf16"],
        "providers": ["azure", "deepinfra"],
        "ignored_providers": ["chutes"],
        "max_price": {"prompt": 5, "completion": 15},
        "max_tokens": 4096,
    },
}


def caller(**policy: Any) -> Caller:
    return Caller.model_validate(policy)


def limits(mode: str = "reject", **ceilings: Any) -> Caller:
    return caller(limits={"mode": mode, **ceilings})


def request(
    model: str = "openai/gpt-4o",
    *,
    models: tuple[str, ...] = (),
    max_tokens: int | None = None,
    max_completion_tokens: int | None = None,
    **provider: Any,
) -> pb.ChatRequest:
    built = pb.ChatRequest(model=model, models=list(models))
    built.messages.add(role=enums.Role.USER, text="hi")
    if max_tokens is not None:
        built.max_tokens = max_tokens
    if max_completion_tokens is not None:
        built.max_completion_tokens = max_completion_tokens
    if provider:
        price = provider.pop("max_price", None)
        built.provider.CopyFrom(pb.ProviderConfig(**provider))
        if price is not None:
            built.provider.max_price.CopyFrom(pb.MaxPrice(**price))
    return built


def shaped_like(base: pb.ChatRequest, change: Callable[[pb.ChatRequest], None]) -> pb.ChatRequest:
    expected = pb.ChatRequest()
    expected.CopyFrom(base)
    change(expected)
    return expected


# Defaults -------------------------------------------------------------------------------------

DEFAULTS = caller(defaults=README_POLICY["defaults"])


def test_defaults_fill_what_the_request_left_unset() -> None:
    shaped = apply_policy(request(), DEFAULTS)
    assert shaped.provider.data_collection == DENY
    assert shaped.provider.HasField("zdr")
    assert shaped.provider.zdr is True
    assert list(shaped.provider.quantizations) == [Q.FP8, Q.FP16]


@pytest.mark.parametrize(
    ("setting", "check"),
    [
        ({"data_collection": ALLOW}, lambda p: p.data_collection == ALLOW),
        ({"zdr": False}, lambda p: p.HasField("zdr") and p.zdr is False),
        ({"quantizations": [Q.BF16]}, lambda p: list(p.quantizations) == [Q.BF16]),
    ],
    ids=["data_collection", "zdr-false", "quantizations"],
)
def test_a_value_the_request_set_wins_over_the_default(
    setting: dict[str, Any], check: Callable[[pb.ProviderConfig], bool]
) -> None:
    shaped = apply_policy(request(**setting), DEFAULTS)
    assert check(shaped.provider)
    # the other defaults still fill the fields the request left unset
    assert shaped.provider.HasField("zdr")
    assert shaped.provider.data_collection != enums.DataCollection.UNSPECIFIED


def test_every_default_field_and_price_caps_per_dimension() -> None:
    everything = caller(
        defaults={
            "order": ["azure"],
            "allow_fallbacks": False,
            "require_parameters": True,
            "enforce_distillable_text": True,
            "only": ["azure", "openai"],
            "ignore": ["chutes"],
            "sort": "throughput",
            "max_price": {"prompt": 3, "completion": 9},
        }
    )
    shaped = apply_policy(request(), everything)
    p = shaped.provider
    assert (list(p.order), list(p.only), list(p.ignore)) == (
        ["azure"],
        ["azure", "openai"],
        ["chutes"],
    )
    assert (p.allow_fallbacks, p.require_parameters, p.enforce_distillable_text) == (
        False,
        True,
        True,
    )
    assert p.sort_strategy == enums.SortStrategy.THROUGHPUT
    assert (p.max_price.prompt, p.max_price.completion) == (3, 9)

    mine = request(
        order=["openai"],
        sort_config=pb.SortConfig(by=enums.SortStrategy.PRICE),
        max_price={"prompt": 1},
    )
    p = apply_policy(mine, everything).provider
    assert list(p.order) == ["openai"]
    assert p.WhichOneof("sort") == "sort_config", "a sort the request chose is kept"
    assert (p.max_price.prompt, p.max_price.completion) == (1, 9), "per-dimension fill"


# Limits: one table for both modes -------------------------------------------------------------

DENIED = "denied"
CEILINGS: dict[str, Any] = {k: v for k, v in README_POLICY["limits"].items() if k != "mode"}


def _quants(*values: Any) -> Callable[[pb.ChatRequest], None]:
    def change(r: pb.ChatRequest) -> None:
        del r.provider.quantizations[:]
        r.provider.quantizations.extend(values)

    return change


def _set(path: str, value: Any) -> Callable[[pb.ChatRequest], None]:
    def change(r: pb.ChatRequest) -> None:
        *parents, name = path.split(".")
        target: Any = r
        for parent in parents:
            target = getattr(target, parent)
        if isinstance(value, list):
            del getattr(target, name)[:]
            getattr(target, name).extend(value)
        elif hasattr(value, "DESCRIPTOR"):
            getattr(target, name).CopyFrom(value)
        else:
            setattr(target, name, value)

    return change


# (id, ceiling, request, reject-mode outcome, narrow-mode outcome); an outcome is DENIED plus the
# rule, or a change applied to the request (None: sent unchanged).
LIMIT_CASES: list[tuple[str, dict[str, Any], pb.ChatRequest, Any, Any]] = [
    (
        "quantizations-unset-gets-the-allowed-list",
        {"quantizations": ["fp8", "fp16", "bf16"]},
        request(),
        _quants(Q.FP8, Q.FP16, Q.BF16),
        _quants(Q.FP8, Q.FP16, Q.BF16),
    ),
    (
        "quantizations-within",
        {"quantizations": ["fp8", "fp16", "bf16"]},
        request(quantizations=[Q.BF16]),
        None,
        None,
    ),
    (
        "quantizations-partly-outside",
        {"quantizations": ["fp8", "fp16", "bf16"]},
        request(quantizations=[Q.INT4, Q.FP8]),
        (DENIED, "limits.quantizations"),
        _quants(Q.FP8),
    ),
    (
        "quantizations-nothing-left",
        {"quantizations": ["fp8", "fp16", "bf16"]},
        request(quantizations=[Q.INT4]),
        (DENIED, "limits.quantizations"),
        (DENIED, "limits.quantizations"),
    ),
    (
        "model-allowed",
        {"models": ["openai/*", "meta-llama/*"]},
        request("meta-llama/llama-3.3-70b-instruct"),
        None,
        None,
    ),
    ("model-variant-allowed", {"models": ["openai/*"]}, request("openai/gpt-4o:nitro"), None, None),
    (
        "primary-model-refused-in-both-modes",
        {"models": ["openai/*", "meta-llama/*"]},
        request("anthropic/claude-sonnet-4.5"),
        (DENIED, "limits.models"),
        (DENIED, "limits.models"),
    ),
    (
        "account-default-model-refused",
        {"models": ["openai/*"]},
        request(""),
        (DENIED, "limits.models"),
        (DENIED, "limits.models"),
    ),
    (
        "fallback-models",
        {"models": ["openai/*", "meta-llama/*"]},
        request(models=("anthropic/claude-sonnet-4.5", "openai/gpt-4o-mini")),
        (DENIED, "limits.models"),
        _set("models", ["openai/gpt-4o-mini"]),
    ),
    (
        "providers-unset-gets-the-allowed-list",
        {"providers": ["azure", "deepinfra"]},
        request(),
        _set("provider.only", ["azure", "deepinfra"]),
        _set("provider.only", ["azure", "deepinfra"]),
    ),
    (
        "providers-only-partly-outside",
        {"providers": ["azure", "deepinfra"]},
        request(only=["azure", "chutes"]),
        (DENIED, "limits.providers"),
        _set("provider.only", ["azure"]),
    ),
    (
        "providers-only-nothing-left",
        {"providers": ["azure", "deepinfra"]},
        request(only=["chutes"]),
        (DENIED, "limits.providers"),
        (DENIED, "limits.providers"),
    ),
    (
        "providers-order-outside",
        {"providers": ["azure", "deepinfra"]},
        request(only=["azure"], order=["chutes", "azure"]),
        (DENIED, "limits.providers"),
        _set("provider.order", ["azure"]),
    ),
    (
        "ignored-providers-added",
        {"ignored_providers": ["chutes"]},
        request(ignore=["novita"]),
        _set("provider.ignore", ["novita", "chutes"]),
        _set("provider.ignore", ["novita", "chutes"]),
    ),
    (
        "ignored-providers-not-duplicated",
        {"ignored_providers": ["chutes"]},
        request(ignore=["chutes"]),
        None,
        None,
    ),
    (
        "max-price-unset-gets-the-ceiling",
        {"max_price": {"prompt": 5, "completion": 15}},
        request(),
        _set("provider.max_price", pb.MaxPrice(prompt=5, completion=15)),
        _set("provider.max_price", pb.MaxPrice(prompt=5, completion=15)),
    ),
    (
        "max-price-prompt-above",
        {"max_price": {"prompt": 5, "completion": 15}},
        request(max_price={"prompt": 20, "completion": 1}),
        (DENIED, "limits.max_price.prompt"),
        _set("provider.max_price.prompt", 5.0),
    ),
    (
        "max-price-completion-above",
        {"max_price": {"prompt": 5, "completion": 15}},
        request(max_price={"prompt": 1, "completion": 16}),
        (DENIED, "limits.max_price.completion"),
        _set("provider.max_price.completion", 15.0),
    ),
    (
        "max-price-partly-set",
        {"max_price": {"prompt": 5, "completion": 15}},
        request(max_price={"prompt": 2}),
        _set("provider.max_price.completion", 15.0),
        _set("provider.max_price.completion", 15.0),
    ),
    (
        "max-tokens-unset-gets-the-ceiling",
        {"max_tokens": 4096},
        request(),
        _set("max_completion_tokens", 4096),
        _set("max_completion_tokens", 4096),
    ),
    (
        "max-tokens-above",
        {"max_tokens": 4096},
        request(max_tokens=10000),
        (DENIED, "limits.max_tokens"),
        _set("max_tokens", 4096),
    ),
    (
        "max-completion-tokens-above",
        {"max_tokens": 4096},
        request(max_completion_tokens=5000),
        (DENIED, "limits.max_tokens"),
        _set("max_completion_tokens", 4096),
    ),
    ("max-tokens-within", {"max_tokens": 4096}, request(max_tokens=100), None, None),
    (
        "narrower-than-every-ceiling-is-never-widened",
        CEILINGS,
        request(
            quantizations=[Q.FP8],
            only=["azure"],
            ignore=["chutes"],
            max_price={"prompt": 1, "completion": 2, "request": 0.01},
            max_tokens=50,
        ),
        None,
        None,
    ),
]


@pytest.mark.parametrize("mode", ["reject", "narrow"])
@pytest.mark.parametrize(
    ("ceiling", "given", "on_reject", "on_narrow"),
    [case[1:] for case in LIMIT_CASES],
    ids=[case[0] for case in LIMIT_CASES],
)
def test_limits(
    mode: str, ceiling: dict[str, Any], given: pb.ChatRequest, on_reject: Any, on_narrow: Any
) -> None:
    outcome = on_reject if mode == "reject" else on_narrow
    before = pb.ChatRequest()
    before.CopyFrom(given)
    policy = limits(mode, **ceiling)
    if isinstance(outcome, tuple):
        with pytest.raises(GatewayError) as refused:
            apply_policy(given, policy)
        assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert refused.value.reason == "POLICY_VIOLATION"
        assert refused.value.metadata == {"rule": outcome[1]}
        assert outcome[1] in refused.value.message
    else:
        shaped = apply_policy(given, policy)
        expected = given if outcome is None else shaped_like(given, outcome)
        assert shaped == expected
    assert given == before, "the caller's request object is never modified"


def test_readme_table_with_defaults_and_limits_together() -> None:
    """Defaults first, then limits: nothing set → the default list, which already fits."""
    readme = caller(**README_POLICY)
    shaped = apply_policy(request(), readme)
    p = shaped.provider
    assert list(p.quantizations) == [Q.FP8, Q.FP16]
    assert (p.data_collection, p.zdr) == (DENY, True)
    assert list(p.only) == ["azure", "deepinfra"]
    assert list(p.ignore) == ["chutes"]
    assert (p.max_price.prompt, p.max_price.completion) == (5, 15)
    assert shaped.max_completion_tokens == 4096
    assert list(apply_policy(request(quantizations=[Q.BF16]), readme).provider.quantizations) == [
        Q.BF16
    ]


def test_no_caller_or_no_policy_leaves_the_very_same_object() -> None:
    given = request(quantizations=[Q.INT4])
    assert apply_policy(given, None) is given
    assert apply_policy(given, caller(token_sha256=[hash_token("x")])) is given


def test_a_policy_that_changes_nothing_sends_no_empty_provider_object() -> None:
    shaped = apply_policy(request(), limits("reject", max_tokens=10))
    assert not shaped.HasField("provider")
    assert shaped.max_completion_tokens == 10


# The callers file -----------------------------------------------------------------------------

TOKEN = "canary-token-unit0a1b2c3d"
OTHER = "canary-token-unit9f8e7d6c"

YAML_FILE = f"""
require_auth: true
callers:
  team-x:
    token_sha256: ["{hash_token(TOKEN).upper()}"]
    mtls_subjects: ["team-x"]
    byok: true
    defaults:
      data_collection: deny
      zdr: true
      quantizations: [fp8, fp16]
    limits:
      mode: narrow
      models: ["openai/*"]
      quantizations: [fp8, fp16, bf16]
      providers: [azure]
      ignored_providers: [chutes]
      max_price: {{prompt: 5, completion: 15}}
      max_tokens: 4096
  team-y:
    token_sha256: ["{hash_token(OTHER)}"]
"""

TOML_FILE = f"""
require_auth = true

[callers.team-x]
token_sha256 = ["{hash_token(TOKEN).upper()}"]
mtls_subjects = ["team-x"]
byok = true

[callers.team-x.defaults]
data_collection = "deny"
zdr = true
quantizations = ["fp8", "fp16"]

[callers.team-x.limits]
mode = "narrow"
models = ["openai/*"]
quantizations = ["fp8", "fp16", "bf16"]
providers = ["azure"]
ignored_providers = ["chutes"]
max_price = {{prompt = 5, completion = 15}}
max_tokens = 4096

[callers.team-y]
token_sha256 = ["{hash_token(OTHER)}"]
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "callers.yaml").write_text(YAML_FILE)
    (tmp_path / "callers.toml").write_text(TOML_FILE)
    return {"yaml": tmp_path / "callers.yaml", "toml": tmp_path / "callers.toml"}


def test_hash_token_is_plain_sha256_hex() -> None:
    assert hash_token(TOKEN) == hashlib.sha256(TOKEN.encode()).hexdigest()


@pytest.mark.parametrize("kind", ["yaml", "toml"])
def test_load_and_look_up_by_token_and_subject(files: dict[str, Path], kind: str) -> None:
    config = load_callers(files[kind])
    x = config.callers["team-x"]
    assert x.token_sha256 == [hash_token(TOKEN)], "digests are normalised to lower case"
    assert x.byok is True
    assert x.limits is not None
    assert x.limits.mode == "narrow"
    assert x.defaults is not None
    assert x.defaults.quantizations == ["fp8", "fp16"]

    store = CallersStore(files[kind])
    assert store.auth_required
    assert store.by_token(TOKEN) == ("team-x", x)
    assert store.by_token(OTHER) == ("team-y", config.callers["team-y"])
    assert store.by_token("canary-token-wrong") is None
    assert store.by_token(hash_token(TOKEN)) is None, "the stored digest is not a credential"
    assert store.by_token(TOKEN.upper()) is None
    assert store.by_subject("team-x") == ("team-x", x)
    assert store.by_subject("team-y") is None
    assert store.by_subject("CN=team-x") is None


def test_yaml_and_toml_describe_the_same_file(files: dict[str, Path]) -> None:
    assert load_callers(files["yaml"]) == load_callers(files["toml"])


def test_no_file_means_no_authentication() -> None:
    store = CallersStore(None)
    assert store.auth_required is False
    assert store.reload() is False
    assert CallersFile().require_auth is True, "a file that does not say otherwise requires auth"


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("unknown-field.yaml", "callers:\n  a:\n    tokens: [x]\n", "callers.a.tokens"),
        ("bad-digest.yaml", "callers:\n  a:\n    token_sha256: [abc]\n", "64-character hex"),
        ("not-hex.yaml", f"callers:\n  a:\n    token_sha256: ['{'z' * 64}']\n", "64-character hex"),
        ("invalid.yaml", "callers: [\n", "is not valid yaml"),
        ("invalid-mapping.yml", "a: b\n c: d: e\n", "is not valid yaml: mapping values"),
        ("invalid.toml", "callers = [\n", "is not valid toml"),
        ("bad-mode.yaml", "callers:\n  a:\n    limits: {mode: widen}\n", "callers.a.limits.mode"),
        ("bad-quant.yaml", "callers:\n  a:\n    limits: {quantizations: [fp7]}\n", "quantizations"),
        (
            "negative-price.yaml",
            "callers:\n  a:\n    limits: {max_price: {prompt: -1}}\n",
            "prompt",
        ),
        ("top-level-list.yaml", "- a\n- b\n", "valid dictionary"),
    ],
)
def test_invalid_files_raise_one_readable_line(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(expected)) as invalid:
        load_callers(path)
    message = str(invalid.value)
    assert expected in message
    assert "\n" not in message, "one line: the CLI prints it as its only line"
    assert "^" not in message, "no file excerpt with a caret"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        load_callers(tmp_path / "nowhere.yaml")


def test_reload_swaps_the_file_and_keeps_the_old_one_when_the_new_one_is_bad(
    files: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    path = files["yaml"]
    store = CallersStore(path)
    assert store.by_token(TOKEN) is not None

    path.write_text(yaml.safe_dump({"callers": {"only-y": {"token_sha256": [hash_token(OTHER)]}}}))
    with caplog.at_level(logging.INFO, logger="routerpc.gateway"):
        assert store.reload() is True
    assert store.by_token(TOKEN) is None
    assert store.by_token(OTHER) is not None
    assert store.by_token(OTHER)[0] == "only-y"
    assert "callers file reloaded: 1 callers" in caplog.text

    caplog.clear()
    path.write_text("callers: {only-y: {token_sha256: [nothex]}}\n")
    with caplog.at_level(logging.INFO, logger="routerpc.gateway"):
        assert store.reload() is False
    assert "not reloaded" in caplog.text
    assert store.by_token(OTHER) is not None
    assert store.by_token(OTHER)[0] == "only-y"
    assert store.by_token(TOKEN) is None

    path.unlink()
    assert store.reload() is False
    assert store.by_token(OTHER) is not None, "a vanished file keeps the last good one too"


@pytest.mark.parametrize(
    "callers",
    [
        {"a": {"token_sha256": [hash_token(TOKEN)]}, "b": {"token_sha256": [hash_token(TOKEN)]}},
        {"a": {"mtls_subjects": ["team-x"]}, "b": {"mtls_subjects": ["team-x"]}},
    ],
    ids=["token", "subject"],
)
def test_one_credential_belongs_to_one_caller(tmp_path: Path, callers: dict[str, Any]) -> None:
    """Otherwise the caller (and policy) a credential gets would depend on the file's order."""
    path = tmp_path / "callers.yaml"
    path.write_text(yaml.safe_dump({"callers": callers}))
    with pytest.raises(
        ValueError, match=r"callers: Value error, b: a \w+ entry is already listed for a$"
    ) as invalid:
        load_callers(path)
    assert hash_token(TOKEN) not in str(invalid.value)
    same_caller_twice = {"a": {"token_sha256": [hash_token(TOKEN)], "mtls_subjects": ["a", "a"]}}
    path.write_text(yaml.safe_dump({"callers": same_caller_twice}))
    assert load_callers(path).callers["a"].mtls_subjects == ["a", "a"]
