// Peer of the field for wxlogin's token side (bench scenarios e and f): node-oidc-provider 9 (OpenID Certified), its
// introspection endpoint (RFC 7662) and its token endpoint's refresh grant with rotation, as configured below and
// nothing else. Tokens are minted beforehand through the provider's own models (`POST /bench/mint`), since its
// only way to a first refresh token would otherwise be an interactive authorization code flow.
//
// Storage (env ADAPTER):
// - `memory` (the default): the provider's own in-memory adapter (lib/adapters/memory_adapter.js,
//   "development-only" in its docs), given a larger LRU bound than its default 1,000 entries so that tens of
//   thousands of pre-minted tokens are not evicted before they are used.
// - `redis`: redis_adapter.js, a persistent adapter on Redis (REDIS_URL), what the provider's docs point to for
//   production. Minting goes through the same models, so pre-minted tokens are written to Redis too.
//
// Env: PORT, ADAPTER (memory | redis), REDIS_URL (with ADAPTER=redis, e.g. redis://127.0.0.1:6379/0).
import http from 'node:http';

import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

import RedisAdapter, { ready } from './redis_adapter.js';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;

// The introspecting resource server (client_secret_basic), as wxlogin's [[clients]] entry.
const RS_ID = 'bench';
const RS_SECRET = '0123456789abcdef0123';
// The app whose users hold the tokens: a public client (token_endpoint_auth_method none), as wxlogin's
// /oauth2/token is for a mini program.
const APP_ID = 'app';

// One ES256 signing key, as wxlogin's: the refresh answer's id_token is signed with it.
const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: 'bench-es256' };

const ADAPTER = process.env.ADAPTER || 'memory';
let adapter;
if (ADAPTER === 'memory') {
  const store = new LRU({ maxSize: 10_000_000 });
  adapter = (model) => new MemoryAdapter(model, store);
} else if (ADAPTER === 'redis') {
  await ready(); // fail at start, not on the first request, when Redis is not there
  adapter = RedisAdapter;
} else {
  throw new Error(`ADAPTER=${ADAPTER}: memory or redis`);
}

const provider = new Provider(issuer, {
  adapter,
  jwks: { keys: [jwk] },
  clients: [
    {
      client_id: APP_ID,
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: ['https://app.example/cb'],
      id_token_signed_response_alg: 'ES256',
    },
    {
      client_id: RS_ID,
      client_secret: RS_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
      id_token_signed_response_alg: 'ES256',
    },
  ],
  // No database behind accounts: the account is its id (as the provider's own default, without its warning).
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  features: {
    devInteractions: { enabled: false },
    // As wxlogin's [[clients]]: the resource server `bench` may introspect any token.
    introspection: { enabled: true, allowedPolicy: async (ctx, client) => client.clientId === RS_ID },
  },
  rotateRefreshToken: true,
  // wxlogin's lifetimes: access tokens 15 minutes, refresh tokens (and the grant) 30 days.
  ttl: { AccessToken: 900, IdToken: 900, RefreshToken: 30 * 24 * 3600, Grant: 30 * 24 * 3600 },
  scopes: ['openid', 'offline_access'],
  cookies: { keys: ['bench-cookie-key-0123456789abcdef'] },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const SCOPE = 'openid offline_access';
const now = () => Math.floor(Date.now() / 1000);

// n new sessions (a Grant each, as a login would make), each with one token of `kind`; the token values. Up to
// 64 at a time (with Redis each save is a round trip; minting is before the measurement).
async function mint(kind, n) {
  const client = await provider.Client.find(APP_ID);
  const one = async (i) => {
    const accountId = `user-${kind}-${i}-${Math.random().toString(36).slice(2, 10)}`;
    const grant = new provider.Grant({ accountId, clientId: APP_ID });
    grant.addOIDCScope(SCOPE);
    const grantId = await grant.save();
    const common = { accountId, client, grantId, scope: SCOPE };
    const token = kind === 'refresh'
      ? new provider.RefreshToken({ ...common, gty: 'authorization_code', authTime: now(), rotations: 0 })
      : new provider.AccessToken({ ...common, gty: 'authorization_code' });
    return token.save();
  };
  const out = [];
  for (let i = 0; i < n; i += 64) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 64); j += 1) batch.push(one(j));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

const app = provider.callback();
const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ pid: process.pid, adapter: ADAPTER }));
    return;
  }
  if (url.pathname === '/bench/mint' && req.method === 'POST') {
    try {
      const kind = url.searchParams.get('kind');
      if (kind !== 'refresh' && kind !== 'access') throw new Error('kind: refresh or access');
      const tokens = await mint(kind, Number(url.searchParams.get('n')));
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(tokens.join('\n') + '\n');
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    }
    return;
  }
  app(req, res);
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');
