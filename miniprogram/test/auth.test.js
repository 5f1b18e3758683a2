// utils/auth.js against a mocked wx and a fake of the service (test/helpers/fake-wx.js).
const { BASE, installWx, allow, ok, err } = require('./helpers/fake-wx');

let env;
let auth;
let config;

function load({ openid = 'o-alice', flow = 'silent' } = {}) {
  jest.resetModules();
  env = installWx({ openid });
  config = require('../config');
  config.baseUrl = BASE;
  config.loginFlow = flow;
  auth = require('../utils/auth');
}

// A new launch of the app on the same phone: fresh module state, same storage and service.
function relaunch() {
  const { loginFlow, appid } = config;
  jest.resetModules();
  config = require('../config');
  config.baseUrl = BASE;
  config.loginFlow = loginFlow;
  config.appid = appid;
  auth = require('../utils/auth');
}

beforeEach(() => load());

describe('silent login (the default flow)', () => {
  test('a known user is logged in at launch with no tap, and only the masked phone is stored', async () => {
    env.service.users.set('o-alice', '13800138000');

    const r = await auth.launch();

    expect(r).toEqual({ status: 'ok', phone: '138****8000' });
    expect(env.service.callsTo('/api/v1/login')).toHaveLength(1);
    expect(env.service.callsTo('/api/v1/phone')).toHaveLength(0);
    expect(env.storage.get(auth.STORAGE.phone)).toBe('138****8000');
    expect(env.storage.get(auth.STORAGE.token)).toMatch(/^eyJ/);
    expect(env.storage.get(auth.STORAGE.refreshToken)).toMatch(/^wxr_/);
    expect(JSON.stringify([...env.storage.values()])).not.toContain('13800138000');
    expect(env.wx.showToast).not.toHaveBeenCalled();
  });

  test('an unknown user: phone_required → the button code goes with the ticket → bound', async () => {
    expect(await auth.launch()).toEqual({ status: 'phone_required' });

    const r = await auth.loginWithPhone(allow('13912345678'));

    expect(r).toEqual({ status: 'ok', phone: '139****5678' });
    const [phone] = env.service.callsTo('/api/v1/phone');
    expect(phone.data).toEqual({ phoneCode: 'pc:13912345678', ticket: expect.stringMatching(/^ticket-/) });
    expect(env.service.users.get('o-alice')).toBe('13912345678');
    expect(auth.getSession()).toMatchObject({ phone: '139****5678' });

    // The next launch: no tap, no phone request.
    relaunch();
    expect(await auth.launch()).toEqual({ status: 'ok', phone: '139****5678' });
    expect(env.service.callsTo('/api/v1/phone')).toHaveLength(1);
  });

  test('the realtime kind and the Skyline-nested detail are accepted', async () => {
    await auth.launch();
    const r = await auth.loginWithPhone({ detail: allow('13700001111', 'getRealtimePhoneNumber') });
    expect(r.status).toBe('ok');
    expect(env.service.callsTo('/api/v1/phone')[0].data.phoneCode).toBe('pc:13700001111');
  });

  test('concurrent launches share one silent login', async () => {
    env.service.users.set('o-alice', '13800138000');
    const [a, b] = await Promise.all([auth.launch(), auth.launch()]);
    expect(a).toBe(b);
    expect(env.service.callsTo('/api/v1/login')).toHaveLength(1);
  });

  test('phone_required drops a stale stored token', async () => {
    env.storage.set(auth.STORAGE.token, 'tok-old');
    env.storage.set(auth.STORAGE.phone, '138****8000');
    expect(await auth.launch()).toEqual({ status: 'phone_required' });
    expect(auth.getSession()).toBeNull();
  });
});

describe("the seed's one-call flow", () => {
  beforeEach(() => load({ flow: 'oneCall' }));

  test('launch asks for the phone without calling the service; the tap sends both codes to /api/getPhone', async () => {
    expect(await auth.launch()).toEqual({ status: 'phone_required' });
    expect(env.service.calls).toHaveLength(0);

    const r = await auth.loginWithPhone(allow('13800138000'));

    expect(r).toEqual({ status: 'ok', phone: '138****8000' });
    const [call] = env.service.callsTo('/api/getPhone');
    expect(call.data).toEqual({ phoneCode: 'pc:13800138000', loginCode: 'lc:o-alice:1' });
    expect(env.service.callsTo('/api/v1/login')).toHaveLength(0);
    expect(env.storage.get(auth.STORAGE.phone)).toBe('138****8000');
  });

  test('a stored session is checked with /api/v1/me at launch; one the service ended asks for the phone', async () => {
    await auth.loginWithPhone(allow('13800138000'));
    relaunch();
    expect(await auth.launch()).toEqual({ status: 'ok', phone: '138****8000' });

    env.service.endSessions();
    relaunch();
    expect(await auth.launch()).toEqual({ status: 'phone_required' });
    expect(auth.getSession()).toBeNull();
    expect(env.service.callsTo('/api/v1/refresh')).toHaveLength(1); // refused: no silent login in this flow
    expect(env.service.callsTo('/api/v1/login')).toHaveLength(0);
  });

  test('an expired access token is refreshed at launch: no tap, no /api/v1/login', async () => {
    await auth.loginWithPhone(allow('13800138000'));
    env.service.sessions.clear(); // every access token expired; the refresh token still works
    relaunch();
    expect(await auth.launch()).toEqual({ status: 'ok', phone: '138****8000' });
    expect(env.service.callsTo('/api/v1/refresh')).toHaveLength(1);
    expect(env.service.callsTo('/api/v1/login')).toHaveLength(0);
    expect(env.service.callsTo('/api/getPhone')).toHaveLength(1);
  });

  test('an invalid login code is retried once with a fresh one, with the same phone code', async () => {
    env.service.inject('/api/getPhone', err(400, 2001, 'login_code_invalid', '登录凭证无效'));
    const r = await auth.loginWithPhone(allow('13800138000'));
    expect(r.status).toBe('ok');
    const calls = env.service.callsTo('/api/getPhone');
    expect(calls.map((c) => c.data.loginCode)).toEqual(['lc:o-alice:1', 'lc:o-alice:2']);
    expect(calls.map((c) => c.data.phoneCode)).toEqual(['pc:13800138000', 'pc:13800138000']);
  });
});

describe('the button detail', () => {
  beforeEach(async () => {
    await auth.launch();
  });

  test.each([
    ['getPhoneNumber:fail user deny'],
    ['getPhoneNumber:fail:user deny'],
    ['getRealtimePhoneNumber:fail user deny'],
  ])('deny (%s) → the deny toast, no request', async (errMsg) => {
    const r = await auth.loginWithPhone({ errMsg });
    expect(r.status).toBe('denied');
    expect(env.toasts()).toEqual([auth.TEXT.deny]);
    expect(env.service.callsTo('/api/v1/phone')).toHaveLength(0);
  });

  test('a success without a code (base library < 2.21.2) → the upgrade toast', async () => {
    const r = await auth.loginWithPhone({ errMsg: 'getPhoneNumber:ok', encryptedData: 'x', iv: 'y' });
    expect(r.status).toBe('failed');
    expect(r.error.kind).toBe('no_code');
    expect(env.toasts()).toEqual([auth.TEXT.no_code]);
    expect(env.service.callsTo('/api/v1/phone')).toHaveLength(0);
  });

  test('errno 1400001 (no quota left) → the no-quota toast', async () => {
    const r = await auth.loginWithPhone({ errMsg: 'getPhoneNumber:fail no quota', errno: 1400001 });
    expect(r.error.kind).toBe('no_quota');
    expect(env.toasts()).toEqual([auth.TEXT.no_quota]);
  });

  test('the real-time button: its code goes with phoneKind realtime (billed 0.04 元, counted apart in /metrics)', async () => {
    config.phoneButtonKind = 'getRealtimePhoneNumber';
    expect(await auth.launch()).toEqual({ status: 'phone_required' });

    const r = await auth.loginWithPhone(allow('13912345678'));

    expect(r).toEqual({ status: 'ok', phone: '139****5678' });
    const [phone] = env.service.callsTo('/api/v1/phone');
    expect(phone.data).toEqual({ phoneCode: 'pc:13912345678', ticket: expect.stringMatching(/^ticket-/), phoneKind: 'realtime' });
  });

  test.each([
    [112, 'privacy_undeclared'],
    [104, 'privacy_denied'],
    [103, 'privacy_denied'],
  ])('privacy errno %i → %s', async (errno, kind) => {
    const r = await auth.loginWithPhone({ errMsg: 'getPhoneNumber:fail privacy permission is not authorized', errno });
    expect(r.error.kind).toBe(kind);
    expect(env.toasts()).toEqual([auth.TEXT[kind]]);
  });

  test('another fail text → the generic phone toast', async () => {
    const r = await auth.loginWithPhone({ errMsg: 'getPhoneNumber:fail no permission' });
    expect(r.error.kind).toBe('phone_fail');
    expect(env.toasts()).toEqual([auth.TEXT.phone_fail]);
  });

  test('a second tap while the first is in flight is ignored (a double tap may bring a deny)', async () => {
    const first = auth.loginWithPhone(allow('13800138000'));
    const second = await auth.loginWithPhone({ errMsg: 'getPhoneNumber:fail user deny' });
    expect(second).toEqual({ status: 'busy' });
    expect((await first).status).toBe('ok');
    expect(env.wx.showToast).not.toHaveBeenCalled();
  });
});

describe('failures become toasts', () => {
  test('a server error shows the service message', async () => {
    env.service.inject('/api/v1/login', err(503, 3003, 'wechat_unavailable', '微信服务暂时不可用，请稍后再试'));
    const r = await auth.launch();
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ kind: 'server', error: 'wechat_unavailable', statusCode: 503 });
    expect(env.toasts()).toEqual(['微信服务暂时不可用，请稍后再试']);
  });

  test('code ≠ 0 with HTTP 200, and a body that is not JSON, are server errors too', async () => {
    env.service.inject('/api/v1/login', { statusCode: 200, body: { code: 1, msg: '出错了' } });
    expect((await auth.launch()).status).toBe('failed');
    env.service.inject('/api/v1/login', { statusCode: 502, body: '<html>Bad Gateway</html>' });
    expect((await auth.launch()).status).toBe('failed');
    expect(env.toasts()).toEqual(['出错了', auth.TEXT.server]);
  });

  test('rate limited (429) shows the service message', async () => {
    await auth.launch();
    env.service.inject('/api/v1/phone', err(429, 3001, 'rate_limited', '操作太频繁，请稍后再试'));
    const r = await auth.loginWithPhone(allow('13800138000'));
    expect(r.status).toBe('failed');
    expect(env.toasts()).toEqual(['操作太频繁，请稍后再试']);
  });

  test('an expired or used phone code asks to tap again', async () => {
    await auth.launch();
    env.service.inject('/api/v1/phone', err(400, 2003, 'phone_code_invalid', '手机号凭证无效'));
    const r = await auth.loginWithPhone(allow('13800138000'));
    expect(r.error.error).toBe('phone_code_invalid');
    expect(env.toasts()).toEqual([auth.TEXT.phone_code_invalid]);
  });

  test('a network error', async () => {
    env.service.inject('/api/v1/login', { fail: { errMsg: 'request:fail ' } });
    const r = await auth.launch();
    expect(r.error.kind).toBe('network');
    expect(env.toasts()).toEqual([auth.TEXT.network]);
  });

  test('a timeout (by errMsg, and by errno 5)', async () => {
    env.service.inject('/api/v1/login', { fail: { errMsg: 'request:fail timeout' } });
    expect((await auth.launch()).error.kind).toBe('timeout');
    env.service.inject('/api/v1/login', { fail: { errMsg: 'request:fail', errno: 5 } });
    expect((await auth.launch()).error.kind).toBe('timeout');
    expect(env.toasts()).toEqual([auth.TEXT.timeout, auth.TEXT.timeout]);
  });

  test('wx.login failing', async () => {
    env.wx.login.mockImplementationOnce((opts) => opts.fail({ errMsg: 'login:fail' }));
    expect((await auth.launch()).error.kind).toBe('login_fail');
    expect(env.toasts()).toEqual([auth.TEXT.login_fail]);
  });
});

describe('retries', () => {
  test.each(['login_code_invalid', 'login_code_used'])('%s → one retry with a fresh login code', async (id) => {
    env.service.users.set('o-alice', '13800138000');
    env.service.inject('/api/v1/login', err(400, 2001, id, '登录凭证无效'));
    const r = await auth.launch();
    expect(r.status).toBe('ok');
    expect(env.wx.login).toHaveBeenCalledTimes(2);
    expect(env.service.callsTo('/api/v1/login').map((c) => c.data.loginCode)).toEqual([
      'lc:o-alice:1',
      'lc:o-alice:2',
    ]);
    expect(env.wx.showToast).not.toHaveBeenCalled();
  });

  test('only one retry: a second invalid login code is an error', async () => {
    env.service.inject('/api/v1/login', err(400, 2001, 'login_code_invalid', '登录凭证无效'));
    env.service.inject('/api/v1/login', err(400, 2001, 'login_code_invalid', '登录凭证无效'));
    const r = await auth.launch();
    expect(r.status).toBe('failed');
    expect(env.service.callsTo('/api/v1/login')).toHaveLength(2);
    expect(env.toasts()).toEqual(['登录凭证无效']);
  });

  test('ticket_invalid → a fresh silent login and the same phone code resent with the new ticket', async () => {
    await auth.launch();
    const firstTicket = [...env.service.tickets.keys()][0];
    env.service.tickets.clear(); // expired on the server while the user hesitated

    const r = await auth.loginWithPhone(allow('13800138000'));

    expect(r).toEqual({ status: 'ok', phone: '138****8000' });
    const phones = env.service.callsTo('/api/v1/phone');
    expect(phones.map((c) => c.data.phoneCode)).toEqual(['pc:13800138000', 'pc:13800138000']);
    expect(phones[0].data.ticket).toBe(firstTicket);
    expect(phones[1].data.ticket).not.toBe(firstTicket);
    expect(env.service.callsTo('/api/v1/login')).toHaveLength(2);
    expect(env.wx.showToast).not.toHaveBeenCalled();
  });

  test('ticket_invalid, and the fresh silent login already knows the user → done', async () => {
    await auth.launch();
    env.service.tickets.clear();
    env.service.users.set('o-alice', '13800138000'); // bound meanwhile (another tap, another device)

    const r = await auth.loginWithPhone(allow('13800138000'));

    expect(r).toEqual({ status: 'ok', phone: '138****8000' });
    expect(env.service.callsTo('/api/v1/phone')).toHaveLength(1);
  });

  test('a ticket known to be expired locally is renewed before the phone request', async () => {
    const now = Date.now();
    const clock = jest.spyOn(Date, 'now').mockReturnValue(now);
    await auth.launch();
    clock.mockReturnValue(now + 301 * 1000);

    const r = await auth.loginWithPhone(allow('13800138000'));

    expect(r.status).toBe('ok');
    expect(env.service.callsTo('/api/v1/login')).toHaveLength(2);
    expect(env.service.callsTo('/api/v1/phone')).toHaveLength(1);
    clock.mockRestore();
  });

  test('a second ticket_invalid is an error, not a loop', async () => {
    await auth.launch();
    env.service.inject('/api/v1/phone', err(401, 2005, 'ticket_invalid', '登录已过期，请重试'));
    env.service.inject('/api/v1/phone', err(401, 2005, 'ticket_invalid', '登录已过期，请重试'));
    const r = await auth.loginWithPhone(allow('13800138000'));
    expect(r.status).toBe('failed');
    expect(env.service.callsTo('/api/v1/phone')).toHaveLength(2);
    expect(env.toasts()).toEqual(['登录已过期，请重试']);
  });
});

describe('with a session', () => {
  beforeEach(async () => {
    env.service.users.set('o-alice', '13800138000');
    await auth.launch();
  });

  test('fetchMe sends the Bearer token and keeps the masked phone', async () => {
    const me = await auth.fetchMe();
    expect(me.phone).toBe('138****8000');
    expect(env.service.callsTo('/api/v1/me')[0].header.Authorization).toMatch(/^Bearer eyJtok-/);
  });

  test('401 and the session is over → the tokens are dropped, a silent login gets new ones, the call is repeated',
    async () => {
      const old = auth.getSession();
      env.service.endSessions();
      const me = await auth.fetchMe();
      expect(me.phone).toBe('138****8000');
      expect(auth.getSession().token).not.toBe(old.token);
      expect(auth.getSession().refreshToken).not.toBe(old.refreshToken);
      expect(env.service.callsTo('/api/v1/me')).toHaveLength(2);
      expect(env.service.callsTo('/api/v1/refresh')).toHaveLength(1);
      expect(env.service.callsTo('/api/v1/login')).toHaveLength(2);
    });

  test('401 and the user is gone → unauthorized', async () => {
    env.service.endSessions();
    env.service.users.clear();
    await expect(auth.fetchMe()).rejects.toMatchObject({ kind: 'unauthorized' });
    expect(auth.getSession()).toBeNull();
  });

  test('changePhone sends the phone code with the Bearer token, no ticket', async () => {
    const r = await auth.changePhone(allow('13600002222'));
    expect(r).toEqual({ status: 'ok', phone: '136****2222' });
    const [call] = env.service.callsTo('/api/v1/phone');
    expect(call.data).toEqual({ phoneCode: 'pc:13600002222' });
    expect(call.header.Authorization).toMatch(/^Bearer /);
  });

  test('logout revokes the refresh token, form-encoded, then clears the storage', async () => {
    const { refreshToken } = auth.getSession();
    await auth.logout();
    const [revoke] = env.service.callsTo('/oauth2/revoke');
    expect(revoke.method).toBe('POST');
    expect(revoke.header['content-type']).toBe('application/x-www-form-urlencoded');
    expect(revoke.data).toBe(`token=${encodeURIComponent(refreshToken)}&token_type_hint=refresh_token`);
    expect(env.service.refreshTokens.has(refreshToken)).toBe(false); // the session ended at the service
    expect(env.service.callsTo('/api/v1/logout')).toHaveLength(0);
    expect(auth.getSession()).toBeNull();
    expect(env.storage.size).toBe(0);
  });

  test.each([
    ['a network error', { fail: { errMsg: 'request:fail ' } }],
    ['a 500', err(500, 1000, 'internal', '服务异常')],
  ])('logout clears the storage when the revoke fails (%s), without a toast', async (_, answer) => {
    env.service.inject('/oauth2/revoke', answer);
    await auth.logout();
    expect(env.service.callsTo('/oauth2/revoke')).toHaveLength(1);
    expect(env.storage.size).toBe(0);
    expect(env.wx.showToast).not.toHaveBeenCalled();
  });
});

describe('access and refresh tokens', () => {
  beforeEach(async () => {
    env.service.users.set('o-alice', '13800138000');
    await auth.launch();
  });

  const stored = () => ({
    token: env.storage.get(auth.STORAGE.token),
    refreshToken: env.storage.get(auth.STORAGE.refreshToken),
  });
  const bearers = (path) => env.service.callsTo(path).map((c) => c.header.Authorization);

  test('a login stores both tokens and when each ends', async () => {
    const now = Date.now();
    const clock = jest.spyOn(Date, 'now').mockReturnValue(now);
    relaunch();
    await auth.launch();
    clock.mockRestore();
    expect(stored().token).toMatch(/^eyJtok-/);
    expect(stored().refreshToken).toMatch(/^wxr_tok-/);
    expect(env.storage.get(auth.STORAGE.expiresAt)).toBe(now + 900 * 1000);
    expect(env.storage.get(auth.STORAGE.refreshExpiresAt)).toBe(now + 2592000 * 1000);
  });

  test('an access token within 60 s of its end is refreshed before the call, without a 401 first', async () => {
    const before = stored();
    env.storage.set(auth.STORAGE.expiresAt, Date.now() + 59 * 1000);

    await auth.fetchMe();

    const [refresh] = env.service.callsTo('/api/v1/refresh');
    expect(refresh.data).toEqual({ refreshToken: before.refreshToken });
    expect(bearers('/api/v1/me')).toEqual([`Bearer ${stored().token}`]);
    expect(stored().token).not.toBe(before.token);
    expect(env.storage.get(auth.STORAGE.phone)).toBe('138****8000'); // a refresh answer has no phone
  });

  test('an access token with more than 60 s left is sent as is', async () => {
    const before = stored();
    env.storage.set(auth.STORAGE.expiresAt, Date.now() + 61 * 1000);
    await auth.fetchMe();
    expect(env.service.callsTo('/api/v1/refresh')).toHaveLength(0);
    expect(bearers('/api/v1/me')).toEqual([`Bearer ${before.token}`]);
  });

  test('two concurrent calls with an expired access token share one refresh and both use the new token',
    async () => {
      const before = stored();
      env.storage.set(auth.STORAGE.expiresAt, Date.now() - 1000);
      env.service.sessions.delete(before.token);

      const [a, b] = await Promise.all([auth.fetchMe(), auth.fetchMe()]);

      expect([a.phone, b.phone]).toEqual(['138****8000', '138****8000']);
      expect(env.service.callsTo('/api/v1/refresh')).toHaveLength(1);
      const after = stored();
      expect(after.token).not.toBe(before.token);
      expect(bearers('/api/v1/me')).toEqual([`Bearer ${after.token}`, `Bearer ${after.token}`]);
      // The rotated refresh token is the one kept, and the only one the service still takes.
      expect(after.refreshToken).not.toBe(before.refreshToken);
      expect([...env.service.refreshTokens.keys()]).toEqual([after.refreshToken]);
    });

  test('two concurrent calls both answered 401 share one refresh and are both repeated with the new token',
    async () => {
      const before = stored();
      env.service.sessions.clear(); // the access token ended at the service before its stored end

      const [a, b] = await Promise.all([auth.fetchMe(), auth.fetchMe()]);

      expect([a.phone, b.phone]).toEqual(['138****8000', '138****8000']);
      expect(env.service.callsTo('/api/v1/refresh')).toHaveLength(1);
      const after = stored();
      expect(bearers('/api/v1/me')).toEqual([
        `Bearer ${before.token}`, `Bearer ${before.token}`, `Bearer ${after.token}`, `Bearer ${after.token}`,
      ]);
      expect(after.refreshToken).not.toBe(before.refreshToken);
      expect([...env.service.refreshTokens.keys()]).toEqual([after.refreshToken]);
    });

  test('a 401 that comes back after another call already refreshed is repeated with the new token, no second refresh',
    async () => {
      env.service.sessions.clear();
      const send = env.wx.request.getMockImplementation();
      let me = 0;
      env.wx.request.mockImplementation((opts) => {
        me += opts.url.endsWith('/api/v1/me') ? 1 : 0;
        if (me === 2 && opts.url.endsWith('/api/v1/me')) setTimeout(() => send(opts), 30); // slow on the wire
        else send(opts);
      });

      const old = stored().token;
      await Promise.all([auth.fetchMe(), auth.fetchMe()]);

      expect(env.service.callsTo('/api/v1/refresh')).toHaveLength(1);
      // In the order the service saw them: the first 401, its repeat, the slow one's 401, its repeat.
      const fresh = `Bearer ${stored().token}`;
      expect(bearers('/api/v1/me')).toEqual([`Bearer ${old}`, fresh, `Bearer ${old}`, fresh]);
    });

  test('a 401 on the repeated call too is an error, not a loop', async () => {
    env.service.inject('/api/v1/me', err(401, 2006, 'unauthorized', '请先登录'));
    env.service.inject('/api/v1/me', err(401, 2006, 'unauthorized', '请先登录'));
    await expect(auth.fetchMe()).rejects.toMatchObject({ error: 'unauthorized', statusCode: 401 });
    expect(env.service.callsTo('/api/v1/refresh')).toHaveLength(1);
    expect(env.service.callsTo('/api/v1/me')).toHaveLength(2);
  });

  test('a reused refresh token: the service ends the session, the tokens are dropped and one silent login follows',
    async () => {
      const spent = stored().refreshToken;
      env.storage.set(auth.STORAGE.expiresAt, Date.now() - 1000);
      await auth.fetchMe(); // rotates: `spent` is spent
      const rotated = stored().refreshToken;
      // An old copy of the storage comes back (a restored backup): the spent refresh token is presented again.
      env.storage.set(auth.STORAGE.refreshToken, spent);
      env.storage.set(auth.STORAGE.expiresAt, Date.now() - 1000);

      const [a, b] = await Promise.all([auth.fetchMe(), auth.fetchMe()]);

      expect([a.phone, b.phone]).toEqual(['138****8000', '138****8000']);
      const refreshes = env.service.callsTo('/api/v1/refresh');
      expect(refreshes.map((c) => c.data.refreshToken)).toEqual([spent, spent]); // no refresh after the refusal
      expect(env.service.refreshTokens.has(rotated)).toBe(false); // the whole session ended
      expect(env.service.callsTo('/api/v1/login')).toHaveLength(2); // the launch, then one silent login
      expect(stored().refreshToken).not.toBe(rotated);
      expect(env.service.refreshTokens.has(stored().refreshToken)).toBe(true);
      expect(env.wx.showToast).not.toHaveBeenCalled();
    });

  test.each(['refresh_reused', 'refresh_invalid'])('refresh answered 401 %s → the tokens are cleared', async (id) => {
    env.service.inject('/api/v1/refresh', err(401, 2008, id, '登录已失效，请重新登录'));
    env.service.inject('/api/v1/login', { fail: { errMsg: 'request:fail ' } }); // the silent login stores nothing
    env.storage.set(auth.STORAGE.expiresAt, Date.now() - 1000);

    await expect(auth.fetchMe()).rejects.toMatchObject({ kind: 'network' });

    expect(env.service.callsTo('/api/v1/refresh')).toHaveLength(1);
    expect(env.service.callsTo('/api/v1/login')).toHaveLength(2);
    expect(stored()).toEqual({ token: undefined, refreshToken: undefined });
    expect(auth.getSession()).toBeNull();
  });

  test('refresh refused and the user unknown to the service → unauthorized, no session', async () => {
    env.service.endSessions();
    env.service.users.clear();
    env.storage.set(auth.STORAGE.expiresAt, Date.now() - 1000);
    await expect(auth.fetchMe()).rejects.toMatchObject({ kind: 'unauthorized' });
    expect(env.service.callsTo('/api/v1/refresh')).toHaveLength(1);
    expect(auth.getSession()).toBeNull();
  });

  test.each([
    ['a network error', { fail: { errMsg: 'request:fail ' } }, { kind: 'network' }],
    ['a 503', err(503, 1003, 'unavailable', '服务暂时不可用'), { kind: 'server', statusCode: 503 }],
  ])('a refresh failing with %s keeps the tokens, and the next call refreshes', async (_, answer, error) => {
    const before = stored();
    env.storage.set(auth.STORAGE.expiresAt, Date.now() - 1000);
    env.service.inject('/api/v1/refresh', answer);

    await expect(auth.fetchMe()).rejects.toMatchObject(error);
    expect(stored()).toEqual(before);
    expect(env.service.callsTo('/api/v1/login')).toHaveLength(1); // no silent login

    await auth.fetchMe();
    expect(env.service.callsTo('/api/v1/refresh').map((c) => c.data.refreshToken))
      .toEqual([before.refreshToken, before.refreshToken]);
    expect(stored().refreshToken).not.toBe(before.refreshToken);
  });

  test('changePhone refreshes a stale access token first and resends nothing', async () => {
    env.storage.set(auth.STORAGE.expiresAt, Date.now() - 1000);
    const r = await auth.changePhone(allow('13600002222'));
    expect(r).toEqual({ status: 'ok', phone: '136****2222' });
    expect(env.service.callsTo('/api/v1/refresh')).toHaveLength(1);
    expect(env.service.callsTo('/api/v1/phone')).toHaveLength(1);
  });

  test('a logout while a refresh is in flight revokes the refresh token that refresh brought', async () => {
    env.storage.set(auth.STORAGE.expiresAt, Date.now() - 1000);
    const me = auth.fetchMe();
    await auth.logout();
    await me.catch(() => {});
    const [refresh] = env.service.callsTo('/api/v1/refresh');
    const [revoke] = env.service.callsTo('/oauth2/revoke');
    expect(new URLSearchParams(revoke.data).get('token')).not.toBe(refresh.data.refreshToken);
    expect(env.service.refreshTokens.size).toBe(0);
    expect(auth.getSession()).toBeNull();
  });
});

describe("an earlier release's token (wxs_…, no refresh token)", () => {
  beforeEach(async () => {
    env.service.users.set('o-alice', '13800138000');
    env.service.legacy = true;
    await auth.launch();
    env.service.legacy = false; // the service is upgraded; the tokens it gave out keep working to their end
  });

  test('is used as before, even close to its end, and no refresh is attempted', async () => {
    const { token } = auth.getSession();
    expect(token).toMatch(/^wxs_/);
    expect(env.storage.has(auth.STORAGE.refreshToken)).toBe(false);
    env.storage.set(auth.STORAGE.expiresAt, Date.now() + 30 * 1000);

    await auth.fetchMe();

    expect(env.service.callsTo('/api/v1/me').map((c) => c.header.Authorization)).toEqual([`Bearer ${token}`]);
    expect(env.service.callsTo('/api/v1/refresh')).toHaveLength(0);
  });

  test('a 401 → a silent login (no refresh), which brings the new tokens', async () => {
    env.service.sessions.clear();
    expect((await auth.fetchMe()).phone).toBe('138****8000');
    expect(env.service.callsTo('/api/v1/refresh')).toHaveLength(0);
    expect(env.service.callsTo('/api/v1/login')).toHaveLength(2);
    expect(auth.getSession()).toMatchObject({ token: expect.stringMatching(/^eyJ/), refreshToken: expect.any(String) });
  });

  test('past its end → a silent login before the call, no refresh', async () => {
    env.storage.set(auth.STORAGE.expiresAt, Date.now() - 1000);
    await auth.fetchMe();
    expect(env.service.callsTo('/api/v1/refresh')).toHaveLength(0);
    expect(env.service.callsTo('/api/v1/me').map((c) => c.header.Authorization)).toEqual([
      expect.stringMatching(/^Bearer eyJ/),
    ]);
  });

  test('logout: POST /api/v1/logout with Bearer, no revoke', async () => {
    const { token } = auth.getSession();
    await auth.logout();
    expect(env.service.callsTo('/api/v1/logout').map((c) => c.header.Authorization)).toEqual([`Bearer ${token}`]);
    expect(env.service.callsTo('/oauth2/revoke')).toHaveLength(0);
    expect(env.service.sessions.size).toBe(0);
    expect(env.storage.size).toBe(0);
  });
});

describe('the app and the account a login lands on', () => {
  const APP2 = 'wx00000000000000b2';

  test('the session keeps accountId and appid from the answer (not personal data); no appid sent', async () => {
    env.service.users.set('o-alice', '13800138000');
    await auth.launch();
    expect(env.service.callsTo('/api/v1/login')[0].data).toEqual({ loginCode: expect.any(String) });
    expect(env.service.callsTo('/api/v1/login')[0].header['X-WX-AppId']).toBeUndefined();
    expect(env.storage.get(auth.STORAGE.accountId)).toBe('acc_o-alice');
    expect(env.storage.get(auth.STORAGE.appid)).toBe('wx00000000000000a1');
    expect(auth.getSession()).toMatchObject({ accountId: 'acc_o-alice', appid: 'wx00000000000000a1' });
  });

  test('config.appid goes in the body of every login route (login, phone with a ticket, change phone)', async () => {
    config.appid = APP2;
    expect(await auth.launch()).toEqual({ status: 'phone_required' });
    await auth.loginWithPhone(allow('13912345678'));
    await auth.changePhone(allow('13600002222'));
    relaunch();
    await auth.launch();

    const bodies = ['/api/v1/login', '/api/v1/phone'].flatMap((path) => env.service.callsTo(path).map((c) => c.data));
    expect(bodies).toHaveLength(4);
    for (const body of bodies) expect(body.appid).toBe(APP2);
    expect(auth.getSession()).toMatchObject({ accountId: 'acc_o-alice', appid: APP2 });
    // The routes that are not logins have no body: the header names the app (a service with several apps needs
    // one), on every call.
    env.storage.set(auth.STORAGE.expiresAt, Date.now()); // stale: refreshed first
    await auth.fetchMe();
    await auth.logout();
    const me = env.service.callsTo('/api/v1/me')[0];
    const refresh = env.service.callsTo('/api/v1/refresh')[0];
    const revoke = env.service.callsTo('/oauth2/revoke')[0];
    expect(me.data).toBeUndefined();
    expect(refresh.data).toEqual({ refreshToken: expect.stringMatching(/^wxr_/) });
    for (const call of [me, refresh, revoke]) expect(call.header['X-WX-AppId']).toBe(APP2);
    for (const call of env.service.callsTo('/api/v1/login')) expect(call.header['X-WX-AppId']).toBe(APP2);
  });

  test("config.appid goes with the seed's one call too", async () => {
    load({ flow: 'oneCall' });
    config.appid = APP2;
    await auth.loginWithPhone(allow('13912345678'));
    const [call] = env.service.callsTo('/api/getPhone');
    expect(call.data).toEqual({ phoneCode: 'pc:13912345678', loginCode: expect.any(String), appid: APP2 });
    expect(auth.getSession()).toMatchObject({ appid: APP2 });
  });
});

test('maskPhone', () => {
  expect(auth.maskPhone('13800138000')).toBe('138****8000');
  expect(auth.maskPhone('+85261234567')).toBe('+85****4567');
  expect(auth.maskPhone('138****8000')).toBe('138****8000');
  expect(auth.maskPhone('')).toBe('');
});
