// pages/qr-confirm: the confirm page of scan-to-log-in (issue 16), against the fake service's qr-login routes.
// The time shown is the phone's local time: jest.config.js fixes the zone to Asia/Shanghai (UTC+8, so a time
// formatted in UTC would not pass).

const fs = require('fs');
const path = require('path');
const { ROOT, renderPage, simulate } = require('./helpers/page');
const { BASE, installWx, allow, err } = require('./helpers/fake-wx');

// A base64url id with both of its non-alphanumerics; WeChat may hand them percent-encoded, as here.
const ID = 'Qr-Login_Id0123456789-';
const SCENE = ID.replace(/-/g, '%2D').replace(/_/g, '%5F');
const SCAN = `/api/v1/qr-login/${ID}/scan`;
const CONFIRM = `/api/v1/qr-login/${ID}/confirm`;
const DENY = `/api/v1/qr-login/${ID}/deny`;
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) '
  + 'Chrome/131.0.0.0 Safari/537.36';
const CREATED = 1795846985; // 2026-11-28 14:23:05 in Asia/Shanghai

let env;
let auth;

beforeEach(() => {
  jest.resetModules();
  env = installWx({ openid: 'o-dave' });
  require('../config').baseUrl = BASE;
  auth = require('../utils/auth');
  env.wx.navigateBack = jest.fn();
  global.getCurrentPages = jest.fn(() => [{}]);
  env.service.addQrLogin(ID, {
    ip: '198.51.100.23', userAgent: CHROME, origin: 'https://app.example.com', createdAt: CREATED,
  });
});

async function settle() {
  for (let i = 0; i < 12; i += 1) await simulate.sleep(0); // a few request round trips of the fake
}

async function open(options = { scene: SCENE }, app) {
  const page = renderPage('pages/qr-confirm/qr-confirm', { app });
  await page.instance.onLoad(options);
  await settle();
  return page;
}

// A user the service knows, logged in before the page opens; the calls of that login are forgotten.
async function loggedIn() {
  env.service.users.set('o-dave', '13800138000');
  await auth.launch();
  env.service.calls.length = 0;
}

// The app launched from the code: app.js's onLaunch starts the silent login.
function launchApp() {
  const app = { globalData: {} };
  global.App = (def) => Object.assign(app, def);
  require('../app');
  app.onLaunch();
  return app;
}

const paths = () => env.service.calls.map((c) => `${c.method} ${c.path}`);
const text = (page, selector) => page.querySelector(selector).dom.textContent.trim();

// j-component delivers a tap in a microtask: taps dispatched one after the other all land before any answer.
function tap(page, selector) {
  page.querySelector(selector).dispatchEvent('tap');
}

function tapPhone(page, detail) {
  page.querySelector('#phone-number').querySelector('#phone-number-button').dispatchEvent('getphonenumber', { detail });
}

// Holds wx.request's calls to `route` until release(): a request in flight for as long as the test needs.
function hold(route) {
  const held = [];
  const request = env.wx.request.getMockImplementation();
  env.wx.request.mockImplementation((opts) => {
    if (opts.url === BASE + route) held.push(() => request(opts));
    else request(opts);
  });
  return () => held.splice(0).forEach((send) => send());
}

const requestsTo = (route) => env.wx.request.mock.calls.filter(([opts]) => opts.url === BASE + route);
const wait = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

describe('the scene', () => {
  test.each([
    ['percent-encoded (%2D, %5F): decoded once', SCENE],
    ['that needs no decoding: taken as it is', ID],
  ])('a scene %s; with a stored session the scan goes straight to the id', async (_, scene) => {
    expect(SCENE).not.toBe(ID);
    await loggedIn();
    const page = await open({ scene });
    expect(paths()).toEqual([`POST ${SCAN}`]);
    expect(page.data.state).toBe('ready');
  });

  test.each([
    ['no scene', {}],
    ['empty', { scene: '' }],
    ['too short', { scene: ID.slice(1) }],
    ['too long', { scene: `${ID}A` }],
    ['not base64url', { scene: encodeURIComponent(`${ID.slice(0, 21)}/`) }],
    ['a path', { scene: encodeURIComponent('../../../api/v1/me?x=1') }],
    ['encoded twice', { scene: encodeURIComponent(SCENE) }],
    ['a malformed encoding', { scene: `${ID.slice(0, 19)}%E0%A` }],
    ['key=value', { scene: 'a%3D1%26b%3D2' }],
    ['not a string', { scene: 12345 }],
  ])('%s → 二维码无效, no request and no login', async (_, options) => {
    const page = await open(options);
    expect(page.data.state).toBe('error');
    expect(text(page, '#qr-error')).toBe('二维码无效');
    expect(page.querySelector('#qr-retry')).toBeUndefined();
    expect(env.wx.request).not.toHaveBeenCalled();
    expect(env.wx.login).not.toHaveBeenCalled();

    tap(page, '#qr-leave');
    await settle();
    expect(env.wx.reLaunch).toHaveBeenCalledWith({ url: '/pages/index/index' });
  });
});

describe('logging in first', () => {
  test('no session: the silent login first, then the scan with its token; what is asking comes from the scan answer',
    async () => {
      env.service.users.set('o-dave', '13800138000');
      const page = await open();

      expect(paths()).toEqual(['POST /api/v1/login', `POST ${SCAN}`]);
      const [scan] = env.service.callsTo(SCAN);
      expect(scan.header.Authorization).toBe(`Bearer ${auth.getSession().token}`);
      expect(scan.data).toEqual({});

      expect(page.data.state).toBe('ready');
      expect(text(page, '#qr-ip')).toBe('198.51.100.23');
      expect(text(page, '#qr-browser')).toBe('Chrome 131 · Windows');
      expect(text(page, '#qr-ua')).toBe(CHROME);
      expect(text(page, '#qr-origin')).toBe('https://app.example.com');
      expect(text(page, '#qr-time')).toBe('2026-11-28 14:23:05');
      expect(text(page, '#qr-warning')).toBe('请确认是你本人在电脑上操作，勿扫描他人发来的二维码');
      expect(text(page, '#qr-confirm')).toBe('确认登录');
      expect(text(page, '#qr-deny')).toBe('取消');
      expect(env.service.qrLogins.get(ID).status).toBe('scanned');
      // Scanning is all: nothing is confirmed before a tap.
      expect(env.service.callsTo(CONFIRM)).toHaveLength(0);
    });

  test("the launch started by app.js is taken over, not repeated, and the scan waits for it", async () => {
    env.service.users.set('o-dave', '13800138000');
    const app = launchApp();
    await open({ scene: SCENE }, app);
    expect(paths()).toEqual(['POST /api/v1/login', `POST ${SCAN}`]);
    expect(app.globalData.launch).toBeNull();
  });

  test("a stored session that the launch's login finds is no longer this WeChat user's: the phone step, no scan",
    async () => {
      await loggedIn();
      env.device.openid = 'o-erin'; // another WeChat user on the phone, unknown to the service
      const page = await open({ scene: SCENE }, launchApp());
      expect(page.data.state).toBe('phone');
      expect(env.service.callsTo(SCAN)).toHaveLength(0);
    });

  test('an unknown user: the phone step as on the login page, then the scan', async () => {
    const page = await open();
    expect(page.data.state).toBe('phone');
    expect(env.service.callsTo(SCAN)).toHaveLength(0);

    tapPhone(page, allow('13912345678'));
    await settle();

    expect(paths()).toEqual(['POST /api/v1/login', 'POST /api/v1/phone', `POST ${SCAN}`]);
    expect(env.service.users.get('o-dave')).toBe('13912345678');
    expect(page.data.state).toBe('ready');
    expect(text(page, '#qr-ip')).toBe('198.51.100.23');
  });

  test('the phone denied: its toast, the button stays, nothing scanned', async () => {
    const page = await open();
    tapPhone(page, { errMsg: 'getPhoneNumber:fail user deny' });
    await settle();
    expect(env.toasts()).toEqual(['你已拒绝授权手机号，未登录']);
    expect(page.data).toMatchObject({ state: 'phone', busy: false });
    expect(env.service.callsTo(SCAN)).toHaveLength(0);
  });

  test('the login fails on the network: its toast and a retry button that goes on to the scan', async () => {
    env.service.users.set('o-dave', '13800138000');
    env.service.inject('/api/v1/login', { fail: { errMsg: 'request:fail ' } });
    const page = await open();
    expect(page.data.state).toBe('error');
    expect(env.toasts()).toEqual(['网络异常，请检查网络后重试']);
    expect(text(page, '#qr-error')).toBe('网络异常，请检查网络后重试');

    tap(page, '#qr-retry');
    await settle();
    expect(page.data.state).toBe('ready');
    expect(env.service.callsTo(SCAN)).toHaveLength(1);
  });
});

describe('confirm and deny', () => {
  beforeEach(loggedIn);

  test('a double tap on 确认登录 sends one confirm, the buttons are disabled meanwhile, then 已在电脑上登录',
    async () => {
      const page = await open();
      const release = hold(CONFIRM);
      tap(page, '#qr-confirm');
      tap(page, '#qr-confirm');
      await settle();
      expect(page.data).toMatchObject({ busy: true, action: 'confirm', state: 'ready' });
      // The simulator renders no attribute of a built-in button: the template binds both to `busy`.
      const wxml = fs.readFileSync(path.join(ROOT, 'pages/qr-confirm/qr-confirm.wxml'), 'utf8');
      for (const id of ['qr-confirm', 'qr-deny']) {
        expect(wxml).toMatch(new RegExp(`id="${id}"[^>]*disabled="{{busy}}"`));
      }
      tap(page, '#qr-confirm'); // a third tap, and the other button, while the first confirm is on the wire
      tap(page, '#qr-deny');
      await settle();
      expect(requestsTo(CONFIRM)).toHaveLength(1);
      expect(requestsTo(DENY)).toHaveLength(0);

      release();
      await settle();
      expect(env.service.callsTo(CONFIRM)).toHaveLength(1);
      expect(env.service.callsTo(DENY)).toHaveLength(0);
      expect(env.service.callsTo(CONFIRM)[0].header.Authorization).toBe(`Bearer ${auth.getSession().token}`);
      expect(env.service.qrLogins.get(ID).status).toBe('confirmed');
      expect(page.data.state).toBe('confirmed');
      expect(text(page, '#qr-done-text')).toBe('已在电脑上登录');

      tap(page, '#qr-done');
      await settle();
      expect(env.wx.reLaunch).toHaveBeenCalledWith({ url: '/pages/index/index' });
    });

  test.each([
    ['the only page: reLaunch to the index', 1, 'reLaunch', { url: '/pages/index/index' }, 'navigateBack'],
    ['a page to go back to: navigateBack', 2, 'navigateBack', { delta: 1 }, 'reLaunch'],
  ])('取消 sends one deny, shows the cancelled state, then leaves; %s', async (_, stack, way, args, notWay) => {
    global.getCurrentPages = jest.fn(() => new Array(stack).fill({}));
    const page = await open();
    tap(page, '#qr-deny');
    tap(page, '#qr-deny');
    await settle();
    expect(env.service.callsTo(DENY)).toHaveLength(1);
    expect(env.service.callsTo(CONFIRM)).toHaveLength(0);
    expect(env.service.qrLogins.get(ID).status).toBe('denied');
    expect(text(page, '#qr-denied-text')).toBe('已取消登录');
    expect(env.wx[way]).not.toHaveBeenCalled(); // the cancelled state is seen first

    await wait(1100);
    expect(env.wx[way]).toHaveBeenCalledWith(args);
    expect(env.wx[notWay]).not.toHaveBeenCalled();
  });

  test('the page unloaded before the cancelled state ends: it does not navigate', async () => {
    const page = await open();
    tap(page, '#qr-deny');
    await settle();
    page.instance.onUnload();
    await wait(1100);
    expect(env.wx.reLaunch).not.toHaveBeenCalled();
  });

  test('a confirm that fails on the service: its toast, the request stays shown and 确认登录 works again', async () => {
    const page = await open();
    env.service.inject(CONFIRM, err(503, 3001, 'internal', '服务繁忙，请稍后再试'));
    tap(page, '#qr-confirm');
    await settle();
    expect(env.toasts()).toEqual(['服务繁忙，请稍后再试']);
    expect(page.data).toMatchObject({ state: 'ready', busy: false, action: '' });
    expect(env.service.qrLogins.get(ID).status).toBe('scanned');

    tap(page, '#qr-confirm');
    await settle();
    expect(env.service.callsTo(CONFIRM)).toHaveLength(2);
    expect(page.data.state).toBe('confirmed');
  });
});

describe('errors by id', () => {
  beforeEach(loggedIn);

  test.each([
    ['qr_login_expired', () => { env.service.qrLogins.get(ID).expired = true; }, '二维码已过期，请在电脑上刷新'],
    ['qr_login_used (confirmed already)', () => { env.service.qrLogins.get(ID).status = 'confirmed'; },
      '该二维码已被使用'],
    ['qr_login_used (scanned by another WeChat user)',
      () => Object.assign(env.service.qrLogins.get(ID), { status: 'scanned', openid: 'o-mallory' }), '该二维码已被使用'],
    ['qr_login_not_found', () => env.service.qrLogins.delete(ID), '二维码无效'],
  ])('the scan answered %s → its message, no retry, no confirm possible', async (_, arrange, message) => {
    arrange();
    const page = await open();
    expect(page.data.state).toBe('error');
    expect(text(page, '#qr-error')).toBe(message);
    expect(page.querySelector('#qr-retry')).toBeUndefined();
    expect(page.querySelector('#qr-confirm')).toBeUndefined();
    expect(page.querySelector('#qr-leave')).toBeDefined();
    expect(env.service.callsTo(CONFIRM)).toHaveLength(0);
  });

  test.each([
    ['qr_login_expired', () => { env.service.qrLogins.get(ID).expired = true; }, '二维码已过期，请在电脑上刷新'],
    ['qr_login_used', () => { env.service.qrLogins.get(ID).status = 'denied'; }, '该二维码已被使用'],
  ])('the confirm answered %s → its message', async (_, arrange, message) => {
    const page = await open();
    arrange();
    tap(page, '#qr-confirm');
    await settle();
    expect(page.data.state).toBe('error');
    expect(text(page, '#qr-error')).toBe(message);
    expect(page.querySelector('#qr-retry')).toBeUndefined();
  });

  test('qr_login_not_scanned on confirm → 重新扫码 scans again, shows the request, and the user confirms again',
    async () => {
      const page = await open();
      Object.assign(env.service.qrLogins.get(ID), { status: 'pending', openid: null }); // the scan was lost
      tap(page, '#qr-confirm');
      await settle();
      expect(page.data.state).toBe('error');
      expect(text(page, '#qr-error')).toBe('登录请求已失效，请重新扫码确认');
      expect(text(page, '#qr-retry')).toBe('重新扫码');

      tap(page, '#qr-retry');
      await settle();
      expect(page.data.state).toBe('ready');
      expect(env.service.callsTo(CONFIRM)).toHaveLength(1); // not confirmed behind the user's back

      tap(page, '#qr-confirm');
      await settle();
      expect(paths()).toEqual([`POST ${SCAN}`, `POST ${CONFIRM}`, `POST ${SCAN}`, `POST ${CONFIRM}`]);
      expect(page.data.state).toBe('confirmed');
    });

  test.each([
    ['the network', { fail: { errMsg: 'request:fail ' } }, '网络异常，请检查网络后重试'],
    ['another error (rate_limited)', err(429, 1005, 'rate_limited', '请求过于频繁，请稍后再试'), '请求过于频繁，请稍后再试'],
  ])('the scan fails on %s → its toast and message, and 重试 scans again', async (_, answer, message) => {
    env.service.inject(SCAN, answer);
    const page = await open();
    expect(page.data.state).toBe('error');
    expect(env.toasts()).toEqual([message]);
    expect(text(page, '#qr-error')).toBe(message);
    expect(text(page, '#qr-retry')).toBe('重试');

    tap(page, '#qr-retry');
    await settle();
    expect(page.data.state).toBe('ready');
    expect(env.service.callsTo(SCAN)).toHaveLength(2);
  });
});

describe('a 401 on the scan goes through the template\'s renewal', () => {
  beforeEach(loggedIn);

  test('an expired access token: one refresh, the scan repeated with the new token', async () => {
    const old = auth.getSession().token;
    env.service.sessions.clear(); // every access token refused; the refresh token still works
    const page = await open();
    expect(paths()).toEqual([`POST ${SCAN}`, 'POST /api/v1/refresh', `POST ${SCAN}`]);
    const [first, second] = env.service.callsTo(SCAN);
    expect(first.header.Authorization).toBe(`Bearer ${old}`);
    expect(second.header.Authorization).toBe(`Bearer ${auth.getSession().token}`);
    expect(second.header.Authorization).not.toBe(first.header.Authorization);
    expect(page.data.state).toBe('ready');
  });

  test('the session is over: the refresh refused, a silent login, the scan repeated', async () => {
    env.service.endSessions();
    const page = await open();
    expect(paths()).toEqual([`POST ${SCAN}`, 'POST /api/v1/refresh', 'POST /api/v1/login', `POST ${SCAN}`]);
    expect(page.data.state).toBe('ready');
  });

  test('the service no longer knows the user: the phone step, then the scan', async () => {
    env.service.endSessions();
    env.service.users.clear();
    const page = await open();
    expect(page.data.state).toBe('phone');

    tapPhone(page, allow('13700001111'));
    await settle();
    expect(page.data.state).toBe('ready');
    expect(env.service.callsTo(SCAN)).toHaveLength(2);
  });

  test('a 401 on confirm: refreshed and repeated, confirmed once', async () => {
    const page = await open();
    env.service.sessions.clear();
    tap(page, '#qr-confirm');
    await settle();
    expect(paths()).toEqual([`POST ${SCAN}`, `POST ${CONFIRM}`, 'POST /api/v1/refresh', `POST ${CONFIRM}`]);
    expect(page.data.state).toBe('confirmed');
  });
});

test('no origin and an unknown client: no origin row, 未知浏览器, the raw User-Agent still there but cut short',
  async () => {
    await loggedIn();
    const ua = `python-requests/2.31.0 ${'x'.repeat(600)}`;
    Object.assign(env.service.qrLogins.get(ID), { origin: null, userAgent: ua });
    const page = await open();
    expect(page.querySelector('#qr-origin')).toBeUndefined();
    expect(text(page, '#qr-browser')).toBe('未知浏览器');
    expect(text(page, '#qr-ua')).toBe(`${ua.slice(0, 512)}…`);
  });
