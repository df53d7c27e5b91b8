from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.exceptions import ValidationError
from django.utils import translation

from tenants.jwks import MAX_JWKS_BYTES, MAX_KEYS, PublicKey, validate_jwks

NOW = datetime.datetime(2025, 6, 1, 12, 0, tzinfo=datetime.UTC)


def b64url(number: int, length: int | None = None) -> str:
    if length is None:
        length = max(1, (number.bit_length() + 7) // 8)
    return base64.urlsafe_b64encode(number.to_bytes(length, "big")).rstrip(b"=").decode("ascii")


def rsa_jwk(
    key: rsa.RSAPrivateKey, kid: str = "rsa-1", alg: str = "RS256", *, private: bool = False
) -> dict[str, Any]:
    public = key.public_key().public_numbers()
    jwk: dict[str, Any] = {"kty": "RSA", "kid": kid, "alg": alg, "n": b64url(public.n)}
    jwk["e"] = b64url(public.e)
    if private:
        numbers = key.private_numbers()
        jwk.update(
            d=b64url(numbers.d),
            p=b64url(numbers.p),
            q=b64url(numbers.q),
            dp=b64url(numbers.dmp1),
            dq=b64url(numbers.dmq1),
            qi=b64url(numbers.iqmp),
        )
    return jwk


def ec_jwk(
    key: ec.EllipticCurvePrivateKey, kid: str = "ec-1", alg: str = "ES256", *, private: bool = False
) -> dict[str, Any]:
    crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[key.curve.name]
    length = (key.curve.key_size + 7) // 8
    public = key.public_key().public_numbers()
    jwk: dict[str, Any] = {"kty": "EC", "kid": kid, "alg": alg, "crv": crv}
    jwk.update(x=b64url(public.x, length), y=b64url(public.y, length))
    if private:
        jwk["d"] = b64url(key.private_numbers().private_value, length)
    return jwk


def refusal(value: Any, *, now: datetime.datetime = NOW) -> ValidationError:
    with pytest.raises(ValidationError) as excinfo:
        validate_jwks(value, now=now)
    return excinfo.value


def codes(error: ValidationError) -> list[str | None]:
    return [e.code for e in error.error_list]


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """The messages are asserted in their English source form, whatever LANGUAGE_CODE says."""
    with translation.override("en"):
        yield


@pytest.fixture(scope="module")
def rsa_2048() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_2048_other() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_1024() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - refused


@pytest.fixture(scope="module")
def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def p384() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def p521() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP521R1())


def test_a_valid_rs256_key_is_accepted_and_normalised(rsa_2048: rsa.RSAPrivateKey) -> None:
    jwk = rsa_jwk(rsa_2048, kid="signing-2025")

    [key] = validate_jwks({"keys": [jwk]}, now=NOW)

    assert key == PublicKey(
        kid="signing-2025",
        kty="RSA",
        alg="RS256",
        jwk={
            "kty": "RSA",
            "kid": "signing-2025",
            "alg": "RS256",
            "use": "sig",
            "n": jwk["n"],
            "e": "AQAB",
        },
        expires_at=None,
    )


@pytest.mark.parametrize(
    ("curve_fixture", "alg", "crv"), [("p256", "ES256", "P-256"), ("p384", "ES384", "P-384")]
)
def test_a_valid_ec_key_on_the_curve_its_alg_needs_is_accepted(
    request: pytest.FixtureRequest, curve_fixture: str, alg: str, crv: str
) -> None:
    jwk = ec_jwk(request.getfixturevalue(curve_fixture), kid="ec", alg=alg)

    [key] = validate_jwks({"keys": [jwk]}, now=NOW)

    assert (key.kid, key.kty, key.alg) == ("ec", "EC", alg)
    assert key.jwk == {
        "kty": "EC",
        "kid": "ec",
        "alg": alg,
        "use": "sig",
        "crv": crv,
        "x": jwk["x"],
        "y": jwk["y"],
    }


def test_several_valid_keys_are_all_returned_in_their_order(
    rsa_2048: rsa.RSAPrivateKey,
    rsa_2048_other: rsa.RSAPrivateKey,
    p256: ec.EllipticCurvePrivateKey,
    p384: ec.EllipticCurvePrivateKey,
) -> None:
    keys = [
        rsa_jwk(rsa_2048, kid="a", alg="RS256"),
        ec_jwk(p256, kid="b", alg="ES256"),
        rsa_jwk(rsa_2048_other, kid="c", alg="RS384"),
        ec_jwk(p384, kid="d", alg="ES384"),
    ]

    accepted = validate_jwks({"keys": keys}, now=NOW)

    assert [(k.kid, k.alg) for k in accepted] == [
        ("a", "RS256"),
        ("b", "ES256"),
        ("c", "RS384"),
        ("d", "ES384"),
    ]


def test_the_normalised_jwk_holds_only_public_members(rsa_2048: rsa.RSAPrivateKey) -> None:
    jwk = rsa_jwk(rsa_2048) | {
        "use": "sig",
        "key_ops": ["verify"],
        "exp": int((NOW + datetime.timedelta(days=30)).timestamp()),
        "x5c": ["MIIB..."],
        "note": "uploaded by ops",
    }

    [key] = validate_jwks({"keys": [jwk]}, now=NOW)

    assert set(key.jwk) == {"kty", "kid", "alg", "use", "n", "e"}
    assert key.jwk["use"] == "sig"


def test_key_validation_defaults_to_the_current_time(rsa_2048: rsa.RSAPrivateKey) -> None:
    # exp 1 is long past; only a real "now" (not None) can find that out.
    with pytest.raises(ValidationError) as excinfo:
        validate_jwks({"keys": [rsa_jwk(rsa_2048) | {"exp": 1}]})
    assert codes(excinfo.value) == ["jwk_expired"]


def test_an_rsa_key_below_2048_bits_is_refused_with_its_bit_length(
    rsa_1024: rsa.RSAPrivateKey,
) -> None:
    jwk = rsa_jwk(rsa_1024, kid="old")

    error = refusal({"keys": [jwk]})

    assert error.messages == [
        'Key 1 ("old"): the RSA modulus is 1024 bits; at least 2048 bits are required.'
    ]
    assert jwk["n"] not in " ".join(error.messages)


def test_an_rsa_modulus_that_cannot_be_a_key_is_refused() -> None:
    even_modulus = b64url((1 << 2047) + 2)

    error = refusal(
        {"keys": [{"kty": "RSA", "kid": "k", "alg": "RS256", "n": even_modulus, "e": "AQAB"}]}
    )

    assert error.messages == ['Key 1 ("k"): n and e do not form a valid RSA public key.']


@pytest.mark.parametrize(
    ("changes", "member"),
    [({"n": None}, "n"), ({"e": None}, "e"), ({"n": "ab+/cd=="}, "n"), ({"e": 65537}, "e")],
    ids=["n-missing", "e-missing", "n-plain-base64", "e-number"],
)
def test_missing_or_non_base64url_rsa_members_are_refused(
    rsa_2048: rsa.RSAPrivateKey, changes: dict[str, Any], member: str
) -> None:
    jwk = {k: v for k, v in (rsa_jwk(rsa_2048, kid="k") | changes).items() if v is not None}

    error = refusal({"keys": [jwk]})

    assert error.messages == [f'Key 1 ("k"): {member} is missing or not base64url-encoded.']


def test_a_p256_key_declared_as_es384_is_refused(p256: ec.EllipticCurvePrivateKey) -> None:
    error = refusal({"keys": [ec_jwk(p256, kid="k", alg="ES384")]})

    assert error.messages == ['Key 1 ("k"): alg ES384 needs curve P-384, but the key is on P-256.']


def test_a_p521_key_is_refused_for_its_curve_and_its_alg(p521: ec.EllipticCurvePrivateKey) -> None:
    error = refusal({"keys": [ec_jwk(p521, kid="k", alg="ES512")]})

    assert codes(error) == ["jwk_alg_unsupported", "jwk_crv_unsupported"]
    assert error.messages[1] == (
        'Key 1 ("k"): curve "P-521" is not accepted; it must be P-256 (ES256) or P-384 (ES384).'
    )


def test_a_p521_key_is_refused_even_under_an_accepted_alg(
    p521: ec.EllipticCurvePrivateKey,
) -> None:
    error = refusal({"keys": [ec_jwk(p521, kid="k", alg="ES256")]})

    assert codes(error) == ["jwk_crv_unsupported"]


def test_an_ec_point_not_on_the_curve_is_refused(p256: ec.EllipticCurvePrivateKey) -> None:
    jwk = ec_jwk(p256, kid="k")
    y = p256.public_key().public_numbers().y
    jwk["y"] = b64url(y ^ 1, 32)

    error = refusal({"keys": [jwk]})

    assert error.messages == [
        'Key 1 ("k"): the point (x, y) is not on curve P-256, so it is not a valid public key.'
    ]
    assert jwk["x"] not in error.messages[0]
    assert jwk["y"] not in error.messages[0]


def test_a_symmetric_oct_key_is_refused_without_echoing_the_secret() -> None:
    secret = "c2hhcmVkLXNlY3JldC10aGF0LW11c3Qtbm90LWxlYWs"

    error = refusal({"keys": [{"kty": "oct", "kid": "hmac", "alg": "HS256", "k": secret}]})

    assert codes(error) == ["jwk_symmetric"]
    assert "symmetric (oct) keys are not accepted, only public keys" in error.messages[0]
    assert secret not in " ".join(error.messages)


def test_a_private_rsa_key_is_refused_without_echoing_any_private_value(
    rsa_2048: rsa.RSAPrivateKey,
) -> None:
    jwk = rsa_jwk(rsa_2048, kid="abc", private=True)

    error = refusal({"keys": [jwk]})

    assert error.messages == [
        'Key 1 ("abc"): contains private key material (d, dp, dq, p, q, qi); '
        "upload only the public key."
    ]
    everything = repr(error.error_list) + repr([e.params for e in error.error_list])
    for member in ("d", "p", "q", "dp", "dq", "qi", "n"):
        assert jwk[member] not in " ".join(error.messages)
        assert jwk[member] not in everything


def test_a_private_ec_key_is_refused_without_echoing_the_private_value(
    p256: ec.EllipticCurvePrivateKey,
) -> None:
    jwk = ec_jwk(p256, kid="abc", private=True)

    error = refusal({"keys": [jwk]})

    assert error.messages == [
        'Key 1 ("abc"): contains private key material (d); upload only the public key.'
    ]
    for member in ("d", "x", "y"):
        assert jwk[member] not in " ".join(error.messages)


def test_private_members_alone_are_named_even_on_an_otherwise_broken_key() -> None:
    distinctive = "TOP-SECRET-PRIVATE-EXPONENT-VALUE"

    error = refusal(
        {
            "keys": [
                {"kid": "k", "kty": "RSA", "alg": "RS256", "d": distinctive, "oth": [distinctive]}
            ]
        }
    )

    assert error.messages[0] == (
        'Key 1 ("k"): contains private key material (d, oth); upload only the public key.'
    )
    assert distinctive not in " ".join(error.messages)


def test_a_key_without_kid_is_refused(rsa_2048: rsa.RSAPrivateKey) -> None:
    jwk = rsa_jwk(rsa_2048)
    del jwk["kid"]

    error = refusal({"keys": [jwk]})

    assert error.messages == ["Key 1: has no kid; every key needs one."]


@pytest.mark.parametrize("kid", ["", 42, None])
def test_a_kid_that_is_not_a_non_empty_string_is_refused(
    rsa_2048: rsa.RSAPrivateKey, kid: Any
) -> None:
    error = refusal({"keys": [rsa_jwk(rsa_2048) | {"kid": kid}]})

    assert error.messages == ["Key 1: kid must be a non-empty string."]


def test_a_kid_longer_than_200_characters_is_refused_without_repeating_it(
    rsa_2048: rsa.RSAPrivateKey,
) -> None:
    kid = "k" * 201

    error = refusal({"keys": [rsa_jwk(rsa_2048, kid=kid)]})

    assert error.messages == ["Key 1: kid is 201 characters long; at most 200 are allowed."]


def test_a_kid_of_200_characters_is_accepted(rsa_2048: rsa.RSAPrivateKey) -> None:
    [key] = validate_jwks({"keys": [rsa_jwk(rsa_2048, kid="k" * 200)]}, now=NOW)

    assert key.kid == "k" * 200


def test_a_duplicate_kid_is_refused_naming_the_kid_and_its_first_use(
    rsa_2048: rsa.RSAPrivateKey, p256: ec.EllipticCurvePrivateKey
) -> None:
    keys = [rsa_jwk(rsa_2048, kid="k1"), ec_jwk(p256, kid="k2"), ec_jwk(p256, kid="k1")]

    error = refusal({"keys": keys})

    assert error.messages == [
        'Key 3 ("k1"): kid "k1" is already used by key 1; each key needs its own.'
    ]


def test_more_than_five_keys_are_refused(p256: ec.EllipticCurvePrivateKey) -> None:
    keys = [ec_jwk(p256, kid=f"k{i}") for i in range(MAX_KEYS + 1)]

    error = refusal({"keys": keys})

    assert error.messages == ["The key set has 6 keys; at most 5 are allowed."]


def test_five_keys_are_accepted(p256: ec.EllipticCurvePrivateKey) -> None:
    keys = [ec_jwk(p256, kid=f"k{i}") for i in range(MAX_KEYS)]

    assert len(validate_jwks({"keys": keys}, now=NOW)) == MAX_KEYS


def test_a_key_set_larger_than_32_kib_is_refused_naming_the_limit(
    rsa_2048: rsa.RSAPrivateKey,
) -> None:
    jwk = rsa_jwk(rsa_2048) | {"x5c": ["A" * MAX_JWKS_BYTES]}

    error = refusal({"keys": [jwk]})

    assert codes(error) == ["jwks_too_large"]
    assert "at most 32768 bytes are allowed" in error.messages[0]


@pytest.mark.parametrize("alg", ["PS256", "HS256", "none", "EdDSA"])
def test_an_alg_outside_the_allowed_list_is_refused_naming_the_list(
    rsa_2048: rsa.RSAPrivateKey, alg: str
) -> None:
    error = refusal({"keys": [rsa_jwk(rsa_2048, kid="k", alg=alg)]})

    assert error.messages == [
        f'Key 1 ("k"): alg "{alg}" is not accepted; it must be one of RS256, RS384, ES256, ES384.'
    ]


def test_a_key_without_alg_is_refused(rsa_2048: rsa.RSAPrivateKey) -> None:
    jwk = rsa_jwk(rsa_2048, kid="k")
    del jwk["alg"]

    error = refusal({"keys": [jwk]})

    assert error.messages == [
        'Key 1 ("k"): has no alg; it must be one of RS256, RS384, ES256, ES384.'
    ]


def test_an_alg_for_the_other_key_type_is_refused(p256: ec.EllipticCurvePrivateKey) -> None:
    error = refusal({"keys": [ec_jwk(p256, kid="k", alg="RS256")]})

    assert error.messages == ['Key 1 ("k"): alg RS256 needs an RSA key, but kty is EC.']


@pytest.mark.parametrize(
    ("kty", "message"),
    [
        ("OKP", 'Key 1 ("k"): kty "OKP" is not supported; it must be RSA or EC.'),
        (None, 'Key 1 ("k"): has no kty; it must be RSA or EC.'),
    ],
    ids=["okp", "missing"],
)
def test_a_key_type_other_than_rsa_or_ec_is_refused(kty: str | None, message: str) -> None:
    jwk: dict[str, Any] = {"kid": "k", "alg": "ES256", "crv": "Ed25519", "x": "AAAA"}
    if kty is not None:
        jwk["kty"] = kty

    error = refusal({"keys": [jwk]})

    assert error.messages == [message]


def test_a_key_for_encryption_is_refused(rsa_2048: rsa.RSAPrivateKey) -> None:
    error = refusal({"keys": [rsa_jwk(rsa_2048, kid="k") | {"use": "enc"}]})

    assert error.messages == [
        'Key 1 ("k"): use must be "sig" (got "enc"); these keys only sign client assertions.'
    ]


@pytest.mark.parametrize(
    "key_ops",
    [["sign"], ["verify", "encrypt"], [], "verify"],
    ids=["sign", "verify-and-encrypt", "empty", "not-a-list"],
)
def test_key_ops_other_than_verify_are_refused(rsa_2048: rsa.RSAPrivateKey, key_ops: Any) -> None:
    error = refusal({"keys": [rsa_jwk(rsa_2048, kid="k") | {"key_ops": key_ops}]})

    assert error.messages == ['Key 1 ("k"): key_ops may only contain "verify".']


def test_an_expired_key_is_refused(p256: ec.EllipticCurvePrivateKey) -> None:
    exp = int((NOW - datetime.timedelta(seconds=1)).timestamp())

    error = refusal({"keys": [ec_jwk(p256, kid="k") | {"exp": exp}]})

    assert error.messages == [
        'Key 1 ("k"): has already expired (exp is 2025-06-01T11:59:59+00:00).'
    ]


def test_a_future_exp_gives_a_timezone_aware_expiry(p256: ec.EllipticCurvePrivateKey) -> None:
    expected = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)

    [key] = validate_jwks({"keys": [ec_jwk(p256) | {"exp": int(expected.timestamp())}]}, now=NOW)

    assert key.expires_at == expected
    assert key.expires_at.utcoffset() == datetime.timedelta(0)
    assert "exp" not in key.jwk


@pytest.mark.parametrize("exp", ["2030-01-01", 1767225600.5, True, None])
def test_an_exp_that_is_not_an_integer_is_refused(
    p256: ec.EllipticCurvePrivateKey, exp: Any
) -> None:
    error = refusal({"keys": [ec_jwk(p256, kid="k") | {"exp": exp}]})

    assert error.messages == [
        'Key 1 ("k"): exp must be a whole number of seconds since 1970-01-01T00:00:00Z.'
    ]


def test_an_exp_beyond_any_date_is_refused(p256: ec.EllipticCurvePrivateKey) -> None:
    error = refusal({"keys": [ec_jwk(p256, kid="k") | {"exp": 10**20}]})

    assert error.messages == ['Key 1 ("k"): exp is out of range.']


@pytest.mark.parametrize(
    "value",
    [None, "keys", [], {}, {"keys": []}, {"keys": {"kid": "k"}}, {"keys": None}],
    ids=["null", "string", "list", "no-keys", "empty-keys", "keys-object", "keys-null"],
)
def test_a_value_that_is_not_a_jwks_object_with_keys_is_refused(value: Any) -> None:
    error = refusal(value)

    assert error.messages == [
        'The key set must be a JSON object with a non-empty list of keys: {"keys": [...]}.'
    ]


def test_a_key_that_is_not_an_object_is_refused(rsa_2048: rsa.RSAPrivateKey) -> None:
    error = refusal({"keys": [rsa_jwk(rsa_2048), "rsa-2"]})

    assert error.messages == ["Key 2: must be a JSON object."]


def test_several_problems_are_reported_together(
    rsa_1024: rsa.RSAPrivateKey, p256: ec.EllipticCurvePrivateKey
) -> None:
    keys = [
        rsa_jwk(rsa_1024, kid="k1", alg="PS256") | {"use": "enc"},
        ec_jwk(p256, kid="k1", private=True),
        {"kty": "oct", "kid": "k3", "k": "c2VjcmV0"},
    ]

    error = refusal({"keys": keys})

    assert error.messages == [
        'Key 1 ("k1"): alg "PS256" is not accepted; it must be one of RS256, RS384, ES256, ES384.',
        'Key 1 ("k1"): the RSA modulus is 1024 bits; at least 2048 bits are required.',
        'Key 1 ("k1"): use must be "sig" (got "enc"); these keys only sign client assertions.',
        'Key 2 ("k1"): kid "k1" is already used by key 1; each key needs its own.',
        'Key 2 ("k1"): contains private key material (d); upload only the public key.',
        'Key 3 ("k3"): symmetric (oct) keys are not accepted, only public keys (RSA or EC); '
        "do not upload the shared secret.",
    ]


def test_a_naive_now_is_a_programming_error(p256: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_jwks({"keys": [ec_jwk(p256)]}, now=datetime.datetime(2025, 1, 1))  # noqa: DTZ001
