// A persistent storage adapter for node-oidc-provider on Redis (ioredis): what its docs point to for production
// (its in-memory adapter is development-only). Written for this benchmark against the documented adapter interface
// (constructor(name), upsert, find, findByUserCode, findByUid, consume, destroy, revokeByGrantId); the provider's
// own example adapter was read for the semantics, not copied. The production semantics kept:
//
// - TTLs: every record is written with the expiry the provider asks for (`expiresIn` seconds, SET … EX), so Redis
//   drops it when it expires; records without one (Client) live until destroyed.
// - Grant-id sets for revokeByGrantId: each token of a grant (access, refresh, authorization code, device code,
//   CIBA request, pre-authorized code) is also added to a set `grant:<grantId>` of its keys, whose TTL is the
//   longest of its members' (EXPIRE … NX, then … GT: Redis ≥ 7). revokeByGrantId deletes every key in the set and
//   the set itself — what the provider calls when a refresh token is reused, or a grant revoked.
// - consume marks `consumed`: single-use records (refresh tokens, codes) get the time of consumption (epoch
//   seconds) stored beside the payload, and find() returns it as `consumed`, which is how the provider detects a
//   rotated refresh token being replayed. Consuming a record that is gone does not recreate it.
// - Secondary indexes: `userCode:<code>` (device flow) and `uid:<uid>` (sessions) name the record's id, with the
//   record's TTL.
// - destroy deletes the record (a stale key left in a grant set is harmless: it names nothing, and the set expires).
//
// Layout: one hash per record, `oidc:<Model>:<id>` with field `payload` (the JSON the provider gave) and, once
// consumed, `consumed`. One ioredis connection (REDIS_URL), shared by every model, default options (no auto
// pipelining): each adapter call is one round trip (a MULTI where it writes several keys), except revokeByGrantId
// and the index lookups (two).
import Redis from 'ioredis';

const grantable = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

let client;

function redis() {
  if (!client) {
    if (!process.env.REDIS_URL) throw new Error('REDIS_URL is not set');
    client = new Redis(process.env.REDIS_URL, { keyPrefix: 'oidc:' });
    client.on('error', (err) => console.error('redis', err.message));
    // HSET only if the record is still there: consume() must not bring back a deleted or expired token.
    client.defineCommand('consumeIfPresent', {
      numberOfKeys: 1,
      lua: "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HSET', KEYS[1], 'consumed', ARGV[1]) end return 0",
    });
  }
  return client;
}

// Resolves once Redis answers; throws after `ms` (ioredis would otherwise queue commands and retry for ever).
export async function ready(ms = 10_000) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis (${process.env.REDIS_URL}) did not answer within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([redis().ping(), late]);
  } finally {
    clearTimeout(timer);
  }
}

const grantKey = (grantId) => `grant:${grantId}`;
const userCodeKey = (userCode) => `userCode:${userCode}`;
const uidKey = (uid) => `uid:${uid}`;
const epoch = () => Math.floor(Date.now() / 1000);

export default class RedisAdapter {
  constructor(name) {
    this.name = name;
  }

  key(id) {
    return `${this.name}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const ttl = typeof expiresIn === 'number' && expiresIn > 0 ? Math.ceil(expiresIn) : undefined;
    const tx = redis().multi();
    // A new write replaces the whole record (an upsert of a consumed record starts unconsumed).
    tx.del(key);
    tx.hset(key, 'payload', JSON.stringify(payload));
    if (ttl) tx.expire(key, ttl);
    if (grantable.has(this.name) && payload.grantId) {
      const set = grantKey(payload.grantId);
      tx.sadd(set, key);
      if (ttl) {
        tx.expire(set, ttl, 'NX'); // a new set takes this member's TTL
        tx.expire(set, ttl, 'GT'); // an existing one lives as long as its longest-lived member
      } else {
        tx.persist(set);
      }
    }
    if (payload.userCode) {
      if (ttl) tx.set(userCodeKey(payload.userCode), id, 'EX', ttl);
      else tx.set(userCodeKey(payload.userCode), id);
    }
    if (this.name === 'Session' && payload.uid) {
      if (ttl) tx.set(uidKey(payload.uid), id, 'EX', ttl);
      else tx.set(uidKey(payload.uid), id);
    }
    const results = await tx.exec();
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
  }

  async find(id) {
    const [payload, consumed] = await redis().hmget(this.key(id), 'payload', 'consumed');
    if (!payload) return undefined;
    const out = JSON.parse(payload);
    if (consumed) out.consumed = Number(consumed);
    return out;
  }

  async findByUserCode(userCode) {
    const id = await redis().get(userCodeKey(userCode));
    return id ? this.find(id) : undefined;
  }

  async findByUid(uid) {
    const id = await redis().get(uidKey(uid));
    return id ? this.find(id) : undefined;
  }

  async consume(id) {
    await redis().consumeIfPresent(this.key(id), epoch());
  }

  async destroy(id) {
    await redis().del(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const set = grantKey(grantId);
    const keys = await redis().smembers(set);
    // keyPrefix applies to every key argument, so the members (stored without the prefix) are named as they are.
    await redis().del(...keys, set);
  }
}
