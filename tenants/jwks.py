"""Vendors' client key sets (JWKS) for ``private_key_jwt`` client authentication.

The authorization server trusts every client assertion signed by a key in the set, so a weak,
mis-declared or private key accepted here becomes a credential problem there. The portal must
only ever hold public keys: a set that carries private material is refused as a whole, and the
messages never repeat a key's values, so a pasted secret does not travel further through logs,
e-mails or error pages.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import re
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.input_guard import CONTROL_IN_URL

MAX_KEYS = 5
MAX_JWKS_BYTES = 32 * 1024  # size of the JSON-serialised JWKS
ALLOWED_ALGS = {"RS256": "RSA", "RS384": "RSA", "ES256": "EC", "ES384": "EC"}
EC_CURVE_FOR_ALG = {"ES256": "P-256", "ES384": "P-384"}
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

MAX_KID_LENGTH = 200
MIN_RSA_BITS = 2048
# OpenSSL refuses to verify with a larger modulus, so such a key could never authenticate.
MAX_RSA_BITS = 16384

_CURVES: dict[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
# Longer or non-printable values are not repeated: they are not a kty, alg, crv or use anyway.
_MAX_SHOWN_LENGTH = 32


@dataclasses.dataclass(frozen=True)
class PublicKey:
    kid: str
    kty: str  # "RSA" | "EC"
    alg: str
    # The public JWK exactly as it will be sent to the authorization server.
    jwk: dict[str, Any]
    expires_at: datetime.datetime | None


def validate_jwks(value: Any, *, now: datetime.datetime | None = None) -> list[PublicKey]:
    """Raise ValidationError listing every problem; return the normalised keys.

    Problems with the set as a whole (its shape, its size, its number of keys) are reported alone:
    checking each key of a set that must shrink anyway would bury that message under many others.
    """
    keys = value.get("keys") if isinstance(value, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ValidationError(
            [
                ValidationError(
                    _(
                        "The key set must be a JSON object with a non-empty list of keys: "
                        '{"keys": [...]}.'
                    ),
                    code="jwks_shape",
                )
            ]
        )
    size = _serialised_size(value)
    if size is None:
        raise ValidationError(
            [ValidationError(_("The key set must contain only JSON values."), code="jwks_not_json")]
        )
    if size > MAX_JWKS_BYTES:
        raise ValidationError(
            [
                ValidationError(
                    _("The key set is %(size)d bytes; at most %(limit)d bytes are allowed."),
                    code="jwks_too_large",
                    params={"size": size, "limit": MAX_JWKS_BYTES},
                )
            ]
        )
    if len(keys) > MAX_KEYS:
        raise ValidationError(
            [
                ValidationError(
                    _("The key set has %(count)d keys; at most %(limit)d are allowed."),
                    code="jwks_too_many_keys",
                    params={"count": len(keys), "limit": MAX_KEYS},
                )
            ]
        )

    if now is None:
        now = timezone.now()
    elif timezone.is_naive(now):
        raise ValueError("now must be timezone-aware")
    errors: list[ValidationError] = []
    accepted: list[PublicKey] = []
    kid_owners: dict[str, int] = {}
    for index, jwk in enumerate(keys, start=1):
        key_errors, public_key = _check_key(index, jwk, now, kid_owners)
        errors.extend(key_errors)
        if public_key is not None:
            accepted.append(public_key)
    if errors:
        raise ValidationError(errors)
    return accepted


@dataclasses.dataclass
class _Problems:
    """The problems of one key, each message prefixed by the key's label."""

    label: str
    errors: list[ValidationError] = dataclasses.field(default_factory=list)

    def add(self, message: str, code: str, **params: Any) -> None:
        self.errors.append(
            ValidationError(message, code=code, params={"key": self.label, **params})
        )


def _serialised_size(value: Any) -> int | None:
    """Compact UTF-8 size, so whitespace the vendor pasted does not count against the limit."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return len(text.encode("utf-8"))
    except (TypeError, ValueError, RecursionError):
        return None


def _label(index: int, kid: Any) -> str:
    if isinstance(kid, str) and kid and len(kid) <= MAX_KID_LENGTH:
        return _('Key %(index)d ("%(kid)s")') % {"index": index, "kid": kid}
    return _("Key %(index)d") % {"index": index}


def _shown(value: Any) -> str:
    """A short string value quoted for a message; anything else is only described."""
    if isinstance(value, str) and len(value) <= _MAX_SHOWN_LENGTH and value.isprintable():
        return f'"{value}"'
    return _("(a value that is not shown)")


def _check_key(
    index: int, jwk: Any, now: datetime.datetime, kid_owners: dict[str, int]
) -> tuple[list[ValidationError], PublicKey | None]:
    if not isinstance(jwk, dict):
        problems = _Problems(_label(index, None))
        problems.add(_("%(key)s: must be a JSON object."), "jwk_not_object")
        return problems.errors, None

    kid = jwk.get("kid")
    problems = _Problems(_label(index, kid))
    _check_kid(jwk, index, kid_owners, problems)

    kty = jwk.get("kty")
    if kty == "oct":
        # The only member that matters, k, is the shared secret itself: nothing else to check.
        problems.add(
            _(
                "%(key)s: symmetric (oct) keys are not accepted, only public keys (RSA or EC); "
                "do not upload the shared secret."
            ),
            "jwk_symmetric",
        )
        return problems.errors, None

    private = sorted(PRIVATE_MEMBERS & jwk.keys())
    if private:
        problems.add(
            _("%(key)s: contains private key material (%(members)s); upload only the public key."),
            "jwk_private_material",
            members=", ".join(private),
        )

    alg = _check_alg(jwk, kty, problems)
    material: dict[str, str] | None = None
    if kty == "RSA":
        material = _rsa_material(jwk, problems)
    elif kty == "EC":
        material = _ec_material(jwk, alg, problems)
    elif "kty" not in jwk:
        problems.add(_("%(key)s: has no kty; it must be RSA or EC."), "jwk_kty_missing")
    else:
        problems.add(
            _("%(key)s: kty %(kty)s is not supported; it must be RSA or EC."),
            "jwk_kty_unsupported",
            kty=_shown(kty),
        )
    _check_use(jwk, problems)
    expires_at = _check_exp(jwk, now, problems)

    if problems.errors or material is None or alg is None:
        return problems.errors, None
    if not isinstance(kid, str) or not isinstance(kty, str):  # no error means both are checked
        return problems.errors, None
    public_jwk: dict[str, Any] = {"kty": kty, "kid": kid, "alg": alg, "use": "sig", **material}
    return [], PublicKey(kid=kid, kty=kty, alg=alg, jwk=public_jwk, expires_at=expires_at)


def _check_kid(
    jwk: dict[Any, Any], index: int, kid_owners: dict[str, int], problems: _Problems
) -> None:
    """The authorization server picks the verification key by kid, so it must be unambiguous."""
    if "kid" not in jwk:
        problems.add(_("%(key)s: has no kid; every key needs one."), "jwk_kid_missing")
        return
    kid = jwk["kid"]
    if not isinstance(kid, str) or not kid:
        problems.add(_("%(key)s: kid must be a non-empty string."), "jwk_kid_invalid")
        return
    if CONTROL_IN_URL.search(kid):  # it is shown on pages and sent to the authorization server
        problems.add(_("%(key)s: kid contains a control character."), "jwk_kid_control")
        return
    if len(kid) > MAX_KID_LENGTH:
        problems.add(
            _("%(key)s: kid is %(length)d characters long; at most %(limit)d are allowed."),
            "jwk_kid_too_long",
            length=len(kid),
            limit=MAX_KID_LENGTH,
        )
        return
    if kid in kid_owners:
        problems.add(
            _('%(key)s: kid "%(kid)s" is already used by key %(other)d; each key needs its own.'),
            "jwk_kid_duplicate",
            kid=kid,
            other=kid_owners[kid],
        )
        return
    kid_owners[kid] = index


def _check_alg(jwk: dict[Any, Any], kty: Any, problems: _Problems) -> str | None:
    """Require an explicit alg so that a key cannot be used with an algorithm nobody intended."""
    allowed = ", ".join(ALLOWED_ALGS)
    if "alg" not in jwk:
        problems.add(
            _("%(key)s: has no alg; it must be one of %(allowed)s."),
            "jwk_alg_missing",
            allowed=allowed,
        )
        return None
    alg = jwk["alg"]
    if not isinstance(alg, str) or alg not in ALLOWED_ALGS:
        problems.add(
            _("%(key)s: alg %(alg)s is not accepted; it must be one of %(allowed)s."),
            "jwk_alg_unsupported",
            alg=_shown(alg),
            allowed=allowed,
        )
        return None
    needed = ALLOWED_ALGS[alg]
    if kty in ("RSA", "EC") and kty != needed:
        problems.add(
            _("%(key)s: alg %(alg)s needs an %(needed)s key, but kty is %(kty)s."),
            "jwk_alg_kty_mismatch",
            alg=alg,
            needed=needed,
            kty=kty,
        )
        return None
    return alg


def _rsa_material(jwk: dict[Any, Any], problems: _Problems) -> dict[str, str] | None:
    n = _decode_uint(jwk.get("n"))
    e = _decode_uint(jwk.get("e"))
    for member, number in (("n", n), ("e", e)):
        if number is None:
            problems.add(
                _("%(key)s: %(member)s is missing or not base64url-encoded."),
                "jwk_rsa_member",
                member=member,
            )
    if n is None or e is None:
        return None
    bits = n.bit_length()
    if bits < MIN_RSA_BITS:
        problems.add(
            _("%(key)s: the RSA modulus is %(bits)d bits; at least %(minimum)d bits are required."),
            "jwk_rsa_too_small",
            bits=bits,
            minimum=MIN_RSA_BITS,
        )
        return None
    if bits > MAX_RSA_BITS:
        problems.add(
            _("%(key)s: the RSA modulus is %(bits)d bits; at most %(maximum)d bits are allowed."),
            "jwk_rsa_too_large",
            bits=bits,
            maximum=MAX_RSA_BITS,
        )
        return None
    try:
        if n % 2 == 0:  # a product of two odd primes; cryptography does not check this
            raise ValueError("even modulus")
        rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError:
        problems.add(_("%(key)s: n and e do not form a valid RSA public key."), "jwk_rsa_invalid")
        return None
    return {"n": _encode_uint(n), "e": _encode_uint(e)}


def _ec_material(
    jwk: dict[Any, Any], alg: str | None, problems: _Problems
) -> dict[str, str] | None:
    crv = jwk.get("crv")
    curve = _CURVES.get(crv) if isinstance(crv, str) else None
    if "crv" not in jwk:
        problems.add(
            _("%(key)s: has no crv; it must be P-256 (ES256) or P-384 (ES384)."),
            "jwk_crv_missing",
        )
    elif curve is None:
        problems.add(
            _("%(key)s: curve %(crv)s is not accepted; it must be P-256 (ES256) or P-384 (ES384)."),
            "jwk_crv_unsupported",
            crv=_shown(crv),
        )
    elif alg is not None and EC_CURVE_FOR_ALG[alg] != crv:
        problems.add(
            _("%(key)s: alg %(alg)s needs curve %(expected)s, but the key is on %(crv)s."),
            "jwk_crv_mismatch",
            alg=alg,
            expected=EC_CURVE_FOR_ALG[alg],
            crv=crv,
        )
    x = _decode_uint(jwk.get("x"))
    y = _decode_uint(jwk.get("y"))
    for member, number in (("x", x), ("y", y)):
        if number is None:
            problems.add(
                _("%(key)s: %(member)s is missing or not base64url-encoded."),
                "jwk_ec_member",
                member=member,
            )
    if not isinstance(crv, str) or curve is None or x is None or y is None:
        return None
    try:
        ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
    except ValueError:
        problems.add(
            _(
                "%(key)s: the point (x, y) is not on curve %(crv)s, "
                "so it is not a valid public key."
            ),
            "jwk_ec_not_on_curve",
            crv=crv,
        )
        return None
    # RFC 7518 section 6.2.1.2: coordinates keep the full length of the curve's field.
    length = (curve.key_size + 7) // 8
    return {"crv": crv, "x": _encode_uint(x, length), "y": _encode_uint(y, length)}


def _check_use(jwk: dict[Any, Any], problems: _Problems) -> None:
    """The keys only ever verify client assertions; a key meant for anything else is a mix-up."""
    if "use" in jwk and jwk["use"] != "sig":
        problems.add(
            _('%(key)s: use must be "sig" (got %(use)s); these keys only sign client assertions.'),
            "jwk_use",
            use=_shown(jwk["use"]),
        )
    if "key_ops" in jwk:
        ops = jwk["key_ops"]
        if not isinstance(ops, list) or not ops or any(op != "verify" for op in ops):
            problems.add(
                _('%(key)s: key_ops may only contain "verify".'),
                "jwk_key_ops",
            )


def _check_exp(
    jwk: dict[Any, Any], now: datetime.datetime, problems: _Problems
) -> datetime.datetime | None:
    """An expired key would be refused by the authorization server at the worst possible time."""
    if "exp" not in jwk:
        return None
    exp = jwk["exp"]
    if isinstance(exp, bool) or not isinstance(exp, int):
        problems.add(
            _("%(key)s: exp must be a whole number of seconds since 1970-01-01T00:00:00Z."),
            "jwk_exp_invalid",
        )
        return None
    try:
        expires_at = _EPOCH + datetime.timedelta(seconds=exp)
    except OverflowError:
        problems.add(_("%(key)s: exp is out of range."), "jwk_exp_invalid")
        return None
    if expires_at <= now:
        problems.add(
            _("%(key)s: has already expired (exp is %(expired)s)."),
            "jwk_expired",
            expired=expires_at.isoformat(),
        )
    return expires_at


def _decode_uint(value: Any) -> int | None:
    """Strict base64url without padding (RFC 7515 section 2), as a big-endian unsigned integer."""
    if not isinstance(value, str) or not _BASE64URL.fullmatch(value) or len(value) % 4 == 1:
        return None
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    return int.from_bytes(raw, "big")


def _encode_uint(number: int, length: int | None = None) -> str:
    """Re-encode rather than pass the vendor's text on, so the server gets canonical values."""
    if length is None:
        length = max(1, (number.bit_length() + 7) // 8)
    raw = number.to_bytes(length, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
