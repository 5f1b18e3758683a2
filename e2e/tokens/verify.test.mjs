// wxlogin's access tokens verified by a third party, Node's `jose`, through what the service publishes: the
// discovery document (/.well-known/openid-configuration) gives the issuer and jwks_uri, createRemoteJWKSet fetches
// the keys, jwtVerify checks signature, typ, iss, aud and exp (no clock tolerance). Every refusal is paired with an
// acceptance in the same test, so a check that refuses everything cannot pass.
//
// Then malformed and forged tokens sent to the service itself (GET /api/v1/me and GET /auth/verify): each must be
// a 401 with our error shape, never a 5xx.
//
// Needs a running sandbox-mode service: WXLOGIN_URL (e2e/tokens/run starts one). WXLOGIN_ISSUER and
// WXLOGIN_AUDIENCE override the expected issuer (default: WXLOGIN_URL) and audience (default: "wxlogin").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, createPublicKey } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createRemoteJWKSet, jwtVerify, decodeJwt, decodeProtectedHeader, generateKeyPair, exportJWK, SignJWT,
} from 'jose';

const BASE = (process.env.WXLOGIN_URL || '').replace(/\/$/, '');
if (!BASE) throw new Error('set WXLOGIN_URL to a running sandbox-mode wxlogin');
const ISSUER = process.env.WXLOGIN_ISSUER || BASE;
const AUDIENCE = process.env.WXLOGIN_AUDIENCE || 'wxlogin';

// ---- the service ----

async function post(path, body) {
  const res = await fetch(BASE + path, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.ok, `POST ${path} ${JSON.stringify(body)} -> ${res.status} ${text}`);
  return JSON.parse(text);
}

/** A sandbox user logged in (the README's walk-through): the /api/getPhone answer's data. */
async function login(phoneNumber = '13800138000') {
  const { openid } = await post('/sandbox/v1/users', { phoneNumber });
  const { code: loginCode } = await post('/sandbox/v1/login-code', { openid });
  const { code: phoneCode } = await post('/sandbox/v1/phone-code', { openid });
  const answer = await post('/api/getPhone', { loginCode, phoneCode });
  assert.equal(answer.code, 0, JSON.stringify(answer));
  return answer.data;
}

/** A fresh access token for the session of `refreshToken`: { token, refreshToken } (the refresh token rotates). */
async function refresh(refreshToken) {
  const answer = await post('/api/v1/refresh', { refreshToken });
  assert.equal(answer.code, 0, JSON.stringify(answer));
  return answer.data;
}

const discovery = await (await fetch(`${BASE}/.well-known/openid-configuration`)).json();
const JWKS = createRemoteJWKSet(new URL(discovery.jwks_uri));
const options = (over = {}) => ({
  issuer: discovery.issuer, audience: AUDIENCE, typ: 'at+jwt', algorithms: ['ES256'],
  requiredClaims: ['exp', 'iss', 'aud', 'sub'], clockTolerance: 0, ...over,
});
const verify = (token, over) => jwtVerify(token, JWKS, options(over));

/** jwtVerify must refuse `token` with the error `code` (and, for a claim check, that `claim`). */
async function refused(token, code, over = {}, claim) {
  await assert.rejects(verify(token, over), (err) => {
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    if (claim) assert.equal(err.claim, claim, err.message);
    return true;
  });
}

// ---- JWT pieces ----

const b64 = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const parts = (token) => {
  const [h, p, s] = token.split('.');
  return { h, p, s, header: JSON.parse(Buffer.from(h, 'base64url')), payload: JSON.parse(Buffer.from(p, 'base64url')) };
};

// ---- jose against the published documents ----

test('discovery names this issuer and its jwks_uri; the JWKS holds ES256 P-256 keys with kids', async () => {
  assert.equal(discovery.issuer, ISSUER);
  assert.equal(discovery.jwks_uri, `${ISSUER}/.well-known/jwks.json`);
  const jwks = await (await fetch(discovery.jwks_uri)).json();
  assert.ok(jwks.keys.length >= 1);
  for (const key of jwks.keys) {
    assert.equal(key.kty, 'EC');
    assert.equal(key.crv, 'P-256');
    assert.equal(key.alg, 'ES256');
    assert.ok(key.kid);
    assert.equal(key.d, undefined, 'a private key part is published');
  }
});

test('a fresh access token is accepted, with the claims of the login', async () => {
  const data = await login();
  const { payload, protectedHeader } = await verify(data.token);
  assert.equal(protectedHeader.typ, 'at+jwt');
  assert.equal(protectedHeader.alg, 'ES256');
  assert.ok(protectedHeader.kid);
  assert.equal(payload.iss, ISSUER);
  assert.equal(payload.sub, data.accountId);
  assert.equal(payload.aud, AUDIENCE);
  assert.equal(payload.client_id, data.appid);
  assert.equal(payload.azp, data.appid);
  assert.equal(payload.exp - payload.iat, data.expiresIn);
  assert.ok(payload.jti && payload.sid);
});

test('a wrong issuer is refused (the right one accepted)', async () => {
  const { token } = await login();
  await verify(token);
  await refused(token, 'ERR_JWT_CLAIM_VALIDATION_FAILED', { issuer: `${ISSUER}/other` }, 'iss');
  await refused(token, 'ERR_JWT_CLAIM_VALIDATION_FAILED', { issuer: 'https://evil.example' }, 'iss');
});

test('a wrong audience is refused (the right one accepted)', async () => {
  const { token } = await login();
  await verify(token);
  await refused(token, 'ERR_JWT_CLAIM_VALIDATION_FAILED', { audience: 'another-api' }, 'aud');
});

test('a tampered token (payload re-encoded with another sub, header and signature kept) is refused', async () => {
  const { token } = await login();
  await verify(token);
  const { h, s, payload } = parts(token);
  const tampered = `${h}.${b64({ ...payload, sub: 'acc_000000000000000000000000' })}.${s}`;
  assert.notEqual(tampered, token);
  await refused(tampered, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  // One character changed in the payload segment.
  const p = parts(token).p;
  const i = Math.floor(p.length / 2);
  const flipped = `${h}.${p.slice(0, i)}${p[i] === 'A' ? 'B' : 'A'}${p.slice(i + 1)}.${s}`;
  await assert.rejects(verify(flipped));
});

test('the same claims signed by another P-256 key under the real kid are refused', async () => {
  const { token } = await login();
  await verify(token);
  const { header, payload } = parts(token);
  const other = await generateKeyPair('ES256', { extractable: true });
  const forged = await new SignJWT(payload)
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: header.kid })
    .sign(other.privateKey);
  // Well formed and valid under the other key: refused only because the key is not the service's.
  await jwtVerify(forged, other.publicKey, options());
  await refused(forged, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
});

test('an expired token is refused (ERR_JWT_EXPIRED); a fresh one from /api/v1/refresh is accepted', async () => {
  const data = await login();
  const { exp } = decodeJwt(data.token);
  await verify(data.token);
  while (Date.now() < exp * 1000) await sleep(50); // until the clock reaches exp
  await refused(data.token, 'ERR_JWT_EXPIRED');
  const fresh = await refresh(data.refreshToken);
  const { payload } = await verify(fresh.token);
  assert.equal(payload.sub, data.accountId);
  assert.ok(payload.exp > exp);
});

// ---- malformed and forged tokens against the service ----

/** One request with `authorization`: the status and, for a JSON answer, the body. */
async function call(path, authorization) {
  const res = await fetch(BASE + path, { headers: { authorization } });
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: res.status, body };
}

const ROUTES = ['/api/v1/me', '/auth/verify'];

/** Both routes must answer 401 (or one of `also`), /api/v1/me with {"code":2006,"msg":…,"error":"unauthorized"}. */
async function unauthorized(what, authorization, also = []) {
  for (const path of ROUTES) {
    const { status, body } = await call(path, authorization);
    const sent = authorization.length > 300 ? `${authorization.slice(0, 120)}… (${authorization.length} chars)` : authorization;
    const msg = `${what}: GET ${path} with Authorization: ${sent} -> ${status} ${JSON.stringify(body).slice(0, 300)}`;
    assert.ok(status < 500, msg);
    if (also.includes(status)) continue;
    assert.equal(status, 401, msg);
    if (path === '/api/v1/me') {
      assert.equal(body.code, 2006, msg);
      assert.equal(body.error, 'unauthorized', msg);
      assert.equal(typeof body.msg, 'string', msg);
      assert.ok(body.msg.length > 0, msg);
    }
  }
}

/** The routes open with a live token: the refusals below are about the token, not a route refusing everyone. */
async function accepted(token) {
  for (const path of ROUTES) {
    const { status, body } = await call(path, `Bearer ${token}`);
    assert.equal(status, 200, `GET ${path} with a fresh token -> ${status} ${JSON.stringify(body)}`);
  }
}

const hour = () => Math.floor(Date.now() / 1000) + 3600;

test('service: no token, other schemes, two segments, bad base64, not JSON -> 401', async () => {
  const data = await login();
  await accepted(data.token);
  const { h, p, s } = parts(data.token);
  const cases = {
    'no token': 'Bearer ',
    'Basic scheme': `Basic ${Buffer.from('a:b').toString('base64')}`,
    'token without scheme': data.token,
    'two segments': 'Bearer abc.def',
    'two segments of the real token': `Bearer ${h}.${p}`,
    'four segments': `Bearer ${data.token}.${s}`,
    'empty segments': 'Bearer ..',
    'bad base64 everywhere': 'Bearer !!!.@@@.###',
    'bad base64 header': `Bearer ${h.slice(0, 10)}*${h.slice(11)}.${p}.${s}`,
    'bad base64 payload': `Bearer ${h}.${p.slice(0, 10)}$${p.slice(11)}.${s}`,
    'bad base64 signature': `Bearer ${h}.${p}.${s.slice(0, 10)}%${s.slice(11)}`,
    'padded base64 (=) segments': `Bearer ${h}==.${p}=.${s}=`,
    'header not JSON': `Bearer ${b64('not json')}.${p}.${s}`,
    'header a JSON array': `Bearer ${b64([1, 2])}.${p}.${s}`,
    'payload not JSON': `Bearer ${h}.${b64('{"sub":')}.${s}`,
    'non-ASCII token': `Bearer ${h}.${p}.${s}é`,
  };
  for (const [what, authorization] of Object.entries(cases)) await unauthorized(what, authorization);
});

test('service: alg none (empty signature) -> 401', async () => {
  const data = await login();
  await accepted(data.token);
  const { header, payload } = parts(data.token);
  const claims = b64({ ...payload, exp: hour() });
  for (const alg of ['none', 'None', 'NONE']) {
    await unauthorized(`alg ${alg}`, `Bearer ${b64({ alg, typ: 'at+jwt', kid: header.kid })}.${claims}.`);
    await unauthorized(`alg ${alg}, no kid`, `Bearer ${b64({ alg, typ: 'at+jwt' })}.${claims}.`);
  }
});

test('service: HS256 with the public key as the HMAC secret (key confusion) -> 401', async () => {
  const data = await login();
  await accepted(data.token);
  const { header, payload } = parts(data.token);
  const jwks = await (await fetch(discovery.jwks_uri)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} is not in the JWKS`);
  const publicKey = createPublicKey({ key: jwk, format: 'jwk' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' });
  const secrets = {
    'SPKI PEM': pem,
    'SPKI PEM without the final newline': pem.trimEnd(),
    'SPKI DER': publicKey.export({ type: 'spki', format: 'der' }),
    'the JWK as published': JSON.stringify(jwk),
    'the JWKS document': JSON.stringify(jwks),
    'the JWK x coordinate': Buffer.from(jwk.x, 'base64url'),
  };
  const claims = b64({ ...payload, exp: hour() });
  for (const alg of ['HS256', 'HS384', 'HS512']) {
    const head = b64({ alg, typ: 'at+jwt', kid: header.kid });
    for (const [what, secret] of Object.entries(secrets)) {
      const mac = createHmac(`sha${alg.slice(2)}`, secret).update(`${head}.${claims}`).digest('base64url');
      await unauthorized(`${alg} keyed with ${what}`, `Bearer ${head}.${claims}.${mac}`);
    }
  }
});

test('service: ES256 signed by another key (real kid, unknown kid) -> 401', async () => {
  const data = await login();
  await accepted(data.token);
  const { header, payload } = parts(data.token);
  const other = await generateKeyPair('ES256', { extractable: true });
  const sign = (kid) => new SignJWT({ ...payload, exp: hour() })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', ...(kid ? { kid } : {}) })
    .sign(other.privateKey);
  await unauthorized('ES256 by another key, real kid', `Bearer ${await sign(header.kid)}`);
  const otherKid = (await exportJWK(other.publicKey)).x;
  await unauthorized('ES256 by another key, its own kid', `Bearer ${await sign(otherKid)}`);
  await unauthorized('ES256 by another key, no kid', `Bearer ${await sign()}`);
  // A signature from another key that is valid under it (the forgery is well formed).
  await jwtVerify(await sign(header.kid), other.publicKey, options());
});

test('service: the real token tampered, re-typed (typ JWT, no typ), re-algorithmed -> 401', async () => {
  const data = await login();
  await accepted(data.token);
  const { h, p, s, header, payload } = parts(data.token);
  const reHead = (over) => {
    const next = { ...header, ...over };
    for (const [k, v] of Object.entries(next)) if (v === undefined) delete next[k];
    return `Bearer ${b64(next)}.${p}.${s}`;
  };
  await unauthorized('typ JWT', reHead({ typ: 'JWT' }));
  await unauthorized('typ application/jwt', reHead({ typ: 'application/jwt' }));
  await unauthorized('no typ', reHead({ typ: undefined }));
  await unauthorized('alg ES384', reHead({ alg: 'ES384' }));
  await unauthorized('alg RS256', reHead({ alg: 'RS256' }));
  await unauthorized('alg PS256', reHead({ alg: 'PS256' }));
  await unauthorized('no kid', reHead({ kid: undefined }));
  await unauthorized('jku pointing elsewhere', reHead({ jku: 'https://evil.example/jwks.json' }));
  await unauthorized('another sub', `Bearer ${h}.${b64({ ...payload, sub: 'acc_000000000000000000000000' })}.${s}`);
  await unauthorized('signature cut short', `Bearer ${h}.${p}.${s.slice(0, 43)}`);
  await unauthorized('no signature', `Bearer ${h}.${p}.`);
  await accepted((await refresh(data.refreshToken)).token); // the session still opens the routes
});

test('service: huge headers -> 401 (or 431 from hyper), never 5xx', async () => {
  const data = await login();
  await accepted(data.token);
  const { header, p, s } = parts(data.token);
  const big = b64({ ...header, x: 'A'.repeat(8 * 1024) });
  await unauthorized('JWT header of 8 KiB', `Bearer ${big}.${p}.${s}`, [431]);
  await unauthorized('Authorization of 8 KiB', `Bearer ${'A'.repeat(8 * 1024)}`, [431]);
  await unauthorized('Authorization of 64 KiB', `Bearer ${'A'.repeat(64 * 1024)}`, [431]);
  await unauthorized('token of 4097 characters', `Bearer ${'A'.repeat(4097)}`, [431]);
  await accepted((await refresh(data.refreshToken)).token);
});

test('service: an expired token -> 401 at the moment of its exp; a refreshed one opens the routes', async () => {
  const data = await login();
  const { exp } = decodeJwt(data.token);
  assert.equal(decodeProtectedHeader(data.token).typ, 'at+jwt');
  await accepted(data.token);
  while (Date.now() < exp * 1000) await sleep(50); // until the clock reaches exp
  await unauthorized('expired', `Bearer ${data.token}`);
  const fresh = await refresh(data.refreshToken);
  await accepted(fresh.token);
});
