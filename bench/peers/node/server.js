// Node.js peer: the seed's POST /api/getPhone on Fastify, calling WeChat with the runtime's own fetch (undici,
// keep-alive by default) — the stack many mini-program teams write by hand.
//
// Settings (environment): WX_APPID, WX_SECRET, WECHAT_BASE_URL (the simulator), PORT, HOST. One process (Node's
// default; the benchmark pins every server to one core, so a cluster would only add processes to that core).
//
// Flow, as the seed: jscode2session, then getuserphonenumber, one after the other. The access token is cached the
// way such hand-written code usually does: in a module variable until 5 minutes before expires_in, fetched from
// /cgi-bin/token when missing — with no single-flight, so concurrent cold requests each fetch one.
// The session token is a random hex string kept in a Map in memory; nothing is written to a database.
'use strict';

const crypto = require('node:crypto');
const fastify = require('fastify')({ logger: false });

const APPID = process.env.WX_APPID;
const SECRET = process.env.WX_SECRET;
const BASE = process.env.WECHAT_BASE_URL.replace(/\/$/, '');
const SESSION_TTL = 30 * 24 * 3600;

let accessToken = null;
let accessTokenExpiresAt = 0;
const sessions = new Map();

async function wechat(path, init) {
  const res = await fetch(BASE + path, init);
  // jscode2session may answer JSON as text/plain: parse the body, not the header.
  const data = JSON.parse(await res.text());
  if (data.errcode) {
    const err = new Error(data.errmsg || 'wechat error');
    err.errcode = data.errcode;
    throw err;
  }
  return data;
}

async function getAccessToken() {
  if (accessToken && Date.now() < accessTokenExpiresAt) return accessToken;
  const q = new URLSearchParams({ grant_type: 'client_credential', appid: APPID, secret: SECRET });
  const data = await wechat(`/cgi-bin/token?${q}`);
  accessToken = data.access_token;
  accessTokenExpiresAt = Date.now() + (data.expires_in - 300) * 1000;
  return accessToken;
}

async function codeToSession(jsCode) {
  const q = new URLSearchParams({ appid: APPID, secret: SECRET, js_code: jsCode, grant_type: 'authorization_code' });
  return wechat(`/sns/jscode2session?${q}`);
}

async function getPhoneNumber(code) {
  const token = await getAccessToken();
  const data = await wechat(`/wxa/business/getuserphonenumber?access_token=${encodeURIComponent(token)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code }),
  });
  return data.phone_info;
}

fastify.get('/healthz', async () => ({ pid: process.pid }));

fastify.post('/api/getPhone', async (request, reply) => {
  const body = request.body || {};
  if (typeof body.loginCode !== 'string' || typeof body.phoneCode !== 'string') {
    return reply.code(400).send({ code: 400, msg: '参数错误' });
  }
  try {
    const session = await codeToSession(body.loginCode);
    const phone = await getPhoneNumber(body.phoneCode);
    const token = crypto.randomBytes(32).toString('hex');
    sessions.set(token, session.openid);
    return {
      code: 0,
      msg: 'success',
      data: { phone: phone.phoneNumber, openid: session.openid, token, expiresIn: SESSION_TTL },
    };
  } catch (err) {
    return reply.code(502).send({ code: err.errcode || -1, msg: '微信接口错误' });
  }
});

fastify.listen({ port: Number(process.env.PORT || 3000), host: process.env.HOST || '127.0.0.1' }).catch((err) => {
  console.error(err);
  process.exit(1);
});
