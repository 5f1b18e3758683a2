"""wxlogin's access tokens verified by a third party, Python's PyJWT, through what the service publishes.

The discovery document (/.well-known/openid-configuration) gives the issuer and jwks_uri; PyJWKClient fetches the
keys and picks the token's kid; jwt.decode checks the ES256 signature, iss, aud and exp (leeway 0, exp/iss/aud/sub
required). Every refusal is paired with an acceptance in the same test, so a check that refuses everything cannot
pass.

Needs a running sandbox-mode service: WXLOGIN_URL (e2e/tokens/run starts one). WXLOGIN_ISSUER and WXLOGIN_AUDIENCE
override the expected issuer (default: WXLOGIN_URL) and audience (default: "wxlogin").
"""

import base64
import json
import os
import time
import unittest
import urllib.request

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

BASE = os.environ["WXLOGIN_URL"].rstrip("/")
ISSUER = os.environ.get("WXLOGIN_ISSUER", BASE)
AUDIENCE = os.environ.get("WXLOGIN_AUDIENCE", "wxlogin")


def get(url):
    with urllib.request.urlopen(url, timeout=10) as res:
        return json.load(res)


def post(path, body):
    req = urllib.request.Request(
        BASE + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.load(res)


def ok(answer):
    """The data of a {"code":0,"msg":"success","data":…} answer."""
    assert answer.get("code") == 0, answer
    return answer["data"]


def login(phone_number="13800138000"):
    """A sandbox user logged in (the README's walk-through): the /api/getPhone answer's data."""
    openid = post("/sandbox/v1/users", {"phoneNumber": phone_number})["openid"]
    login_code = post("/sandbox/v1/login-code", {"openid": openid})["code"]
    phone_code = post("/sandbox/v1/phone-code", {"openid": openid})["code"]
    return ok(post("/api/getPhone", {"loginCode": login_code, "phoneCode": phone_code}))


def refresh(refresh_token):
    """A fresh access token for the session: the /api/v1/refresh answer's data (token, refreshToken)."""
    return ok(post("/api/v1/refresh", {"refreshToken": refresh_token}))


def b64(value):
    raw = value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(segment):
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


DISCOVERY = get(f"{BASE}/.well-known/openid-configuration")
JWKS = jwt.PyJWKClient(DISCOVERY["jwks_uri"])


def verify(token, issuer=None, audience=None):
    """What a backend does with a wxlogin access token."""
    header = jwt.get_unverified_header(token)
    assert header.get("typ", "").lower() in ("at+jwt", "application/at+jwt"), header
    key = JWKS.get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key,
        algorithms=["ES256"],
        audience=audience or AUDIENCE,
        issuer=issuer or DISCOVERY["issuer"],
        leeway=0,
        options={"require": ["exp", "iss", "aud", "sub"]},
    )


class PyJWTVerifiesWxlogin(unittest.TestCase):
    def test_discovery(self):
        self.assertEqual(DISCOVERY["issuer"], ISSUER)
        self.assertEqual(DISCOVERY["jwks_uri"], f"{ISSUER}/.well-known/jwks.json")
        keys = get(DISCOVERY["jwks_uri"])["keys"]
        self.assertTrue(keys)
        for key in keys:
            self.assertEqual((key["kty"], key["crv"], key["alg"]), ("EC", "P-256", "ES256"))
            self.assertTrue(key["kid"])
            self.assertNotIn("d", key, "a private key part is published")

    def test_fresh_token_accepted_with_the_login_claims(self):
        data = login()
        claims = verify(data["token"])
        header = jwt.get_unverified_header(data["token"])
        self.assertEqual((header["typ"], header["alg"]), ("at+jwt", "ES256"))
        self.assertTrue(header["kid"])
        self.assertEqual(claims["iss"], ISSUER)
        self.assertEqual(claims["sub"], data["accountId"])
        self.assertEqual(claims["aud"], AUDIENCE)
        self.assertEqual(claims["client_id"], data["appid"])
        self.assertEqual(claims["azp"], data["appid"])
        self.assertEqual(claims["exp"] - claims["iat"], data["expiresIn"])
        self.assertTrue(claims["jti"] and claims["sid"])

    def test_wrong_issuer_refused(self):
        token = login()["token"]
        verify(token)
        for issuer in (f"{ISSUER}/other", "https://evil.example"):
            with self.assertRaises(jwt.InvalidIssuerError):
                verify(token, issuer=issuer)

    def test_wrong_audience_refused(self):
        token = login()["token"]
        verify(token)
        with self.assertRaises(jwt.InvalidAudienceError):
            verify(token, audience="another-api")

    def test_tampered_refused(self):
        token = login()["token"]
        verify(token)
        h, p, s = token.split(".")
        tampered = f"{h}.{b64({**unb64(p), 'sub': 'acc_000000000000000000000000'})}.{s}"
        self.assertNotEqual(tampered, token)
        with self.assertRaises(jwt.InvalidSignatureError):
            verify(tampered)

    def test_another_key_refused(self):
        token = login()["token"]
        verify(token)
        h, p, _ = token.split(".")
        other = ec.generate_private_key(ec.SECP256R1())
        forged = jwt.encode(unb64(p), other, algorithm="ES256", headers={"kid": unb64(h)["kid"], "typ": "at+jwt"})
        self.assertEqual(jwt.get_unverified_header(forged), {**unb64(h)})
        # Well formed and valid under the other key: refused only because the key is not the service's.
        jwt.decode(
            forged, other.public_key(), algorithms=["ES256"], audience=AUDIENCE, issuer=ISSUER, leeway=0
        )
        with self.assertRaises(jwt.InvalidSignatureError):
            verify(forged)

    def test_expired_refused_refreshed_accepted(self):
        data = login()
        claims = verify(data["token"])
        while time.time() < claims["exp"]:  # until the clock reaches exp
            time.sleep(0.05)
        with self.assertRaises(jwt.ExpiredSignatureError):
            verify(data["token"])
        fresh = verify(refresh(data["refreshToken"])["token"])
        self.assertEqual(fresh["sub"], data["accountId"])
        self.assertGreater(fresh["exp"], claims["exp"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
