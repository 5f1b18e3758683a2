// Scan-to-log-in (issue 16) end to end in headless Chromium, against a running sandbox-mode wxlogin (WXLOGIN_URL)
// or e2e/mock-server.js (E2E_MOCK=1):
//   the sandbox's web page shows a code → the phone (logged in) scans it with 扫一扫 → the web page shows 已扫码 →
//   the phone confirms → the web page is logged in as the phone's account (its /api/v1/me beside the phone's);
//   the deny path (已取消, a new code); docs/examples/scan-login.html served from another origin (the service
//   must list it in cors_origins: run.sh starts it with WXLOGIN_CORS_ORIGINS=http://127.0.0.1:$E2E_STATIC_PORT).
// Saves e2e/artifacts/qr-login.png; with UPDATE_SCREENSHOT=1 also docs/qr-login.png.
const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { chromium } = require('playwright-core');

const ARTIFACTS = path.join(__dirname, '..', 'artifacts');
const DOCS = path.join(__dirname, '..', '..', 'docs');
const EXAMPLE = path.join(DOCS, 'examples', 'scan-login.html');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

let base;
let mock;
let browser;
let page;
let first; // the first test's phone and web sessions: {phone, web}
const pageErrors = [];

async function call(method, p, { body, token } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch (e) {
    // not JSON: left null, the caller's assertion shows the text
  }
  return { status: res.status, json, text };
}

async function api(method, p, body, token) {
  const r = await call(method, p, { body, token });
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${p} → HTTP ${r.status}: ${r.text}`);
  return r.json;
}

async function freshPhone() {
  const { users } = await api('GET', '/sandbox/v1/users');
  const taken = new Set((users || []).map((u) => u.purePhoneNumber || u.phoneNumber));
  for (;;) {
    const p = `137${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
    if (!taken.has(p)) return p;
  }
}

const mask = (p) => `${p.slice(0, 3)}****${p.slice(-4)}`;
const pathOf = (r) => new URL(r.url()).pathname;

// A phone session without the page, as a mini program gets one: the seed's one call with both codes.
async function phoneSessionByApi() {
  const user = await api('POST', '/sandbox/v1/users', { phoneNumber: await freshPhone() });
  const login = await api('POST', '/sandbox/v1/login-code', { openid: user.openid });
  const phone = await api('POST', '/sandbox/v1/phone-code', { openid: user.openid });
  const { data } = await api('POST', '/api/getPhone', { loginCode: login.code, phoneCode: phone.code });
  return { user, token: data.token };
}

// On the sandbox page: a new user, launched, 手机号快捷登录 → 允许 → the index page. Answers the phone's access
// token (from its storage) and the account /api/v1/me gives for it.
async function phoneLogsIn() {
  const phone = await freshPhone();
  const user = await api('POST', '/sandbox/v1/users', { phoneNumber: phone });
  await page.click('#refresh-users');
  await page.waitForSelector(`#user-select option[value="${user.openid}"]`, { state: 'attached' });
  await page.selectOption('#user-select', user.openid);
  const answered = page.waitForResponse((r) => pathOf(r) === '/api/v1/login');
  await page.click('#launch');
  await answered;
  await page.waitForSelector('#app-state[data-state="phone"]');
  await page.click('#phone-button');
  await page.click('#sheet-allow');
  await page.waitForSelector('#app-state[data-state="ok"]');
  await page.waitForFunction(() => /账号 acc_/.test(document.querySelector('#me-account').textContent));
  const token = await page.evaluate((o) => JSON.parse(localStorage.getItem(`wxsandbox:${o}:wxlogin.token`)), user.openid);
  const { data: me } = await api('GET', '/api/v1/me', undefined, token);
  assert.equal(me.phone, mask(phone));
  return { phone, user, token, me };
}

// 微信扫码登录 (or 刷新二维码) on the web page: resolves with the service's answer to POST /api/v1/qr-login once
// the code is on the page.
async function webShowsCode(button) {
  const created = page.waitForResponse((r) => pathOf(r) === '/api/v1/qr-login' && r.request().method() === 'POST');
  await page.click(button);
  const res = await created;
  assert.equal(res.status(), 200, `POST /api/v1/qr-login → ${await res.text()}`);
  const { data } = await res.json();
  assert.match(data.id, /^[\w-]+$/);
  assert.match(data.image, /^data:image\//);
  await page.waitForFunction((src) => {
    const img = document.querySelector('#web-code');
    return img.getAttribute('src') === src && img.complete && img.naturalWidth > 0;
  }, data.image);
  await page.waitForSelector('#web-status[data-status="pending"]');
  assert.equal(await page.textContent('#web-status'), '等待扫码');
  return data;
}

// 扫一扫 on the phone: the simulator reads the web page's code, the confirm screen asks.
async function phoneScans(id) {
  const launched = page.waitForResponse((r) => pathOf(r) === '/sandbox/v1/scan');
  const scanned = page.waitForResponse((r) => pathOf(r) === `/api/v1/qr-login/${id}/scan`);
  await page.click('#scan-button');
  const options = await (await launched).json();
  assert.equal(options.scene, 1047);
  assert.equal(decodeURIComponent(options.query.scene), id, 'the code carries the login request id as its scene');
  assert.equal((await scanned).status(), 200);
  await page.waitForSelector('#qr-screen[data-qr-state="ask"]');
  assert.ok(await page.isVisible('#qr-confirm'));
  assert.ok(await page.isVisible('#qr-deny'));
  assert.notEqual((await page.textContent('#qr-ip')).trim(), '');
  assert.match(await page.textContent('#qr-browser'), /Chrome/);
  assert.match(await page.textContent('#qr-time'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d（\d+ 秒内有效）$/);
}

before(async () => {
  if (process.env.WXLOGIN_URL) {
    base = process.env.WXLOGIN_URL.replace(/\/+$/, '');
  } else if (process.env.E2E_MOCK) {
    mock = await require('../mock-server').start(0);
    base = mock.url;
  } else {
    throw new Error('set WXLOGIN_URL to a running `wxlogin serve` in sandbox mode (or E2E_MOCK=1 for the mock)');
  }
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
  });
  page = await browser.newPage({ viewport: { width: 1440, height: 860 }, locale: 'zh-CN' });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`${base}/sandbox/`);
});

afterEach(async (t) => {
  if (page && !t.passed) {
    const name = `failed-qr-${t.name.replace(/[^\w]+/g, '-').slice(0, 40)}.png`;
    await page.screenshot({ path: path.join(ARTIFACTS, name) }).catch(() => {});
  }
});

after(async () => {
  if (browser) await browser.close();
  if (mock) await mock.close();
});

test('the web page shows a code, the phone scans it (已扫码), confirms: the web is logged in as the same account', async () => {
  const phone = await phoneLogsIn();
  const login = await webShowsCode('#web-start');

  await phoneScans(login.id);
  // Before any confirm: the web page's long poll has brought 已扫码.
  await page.waitForSelector('#web-status[data-status="scanned"]');
  assert.equal(await page.textContent('#web-status'), '已扫码，请在手机上确认');
  assert.equal(await page.getAttribute('#qr-screen', 'data-qr-state'), 'ask', 'the phone has not answered yet');

  const confirmedPoll = page.waitForResponse(
    (r) => pathOf(r) === `/api/v1/qr-login/${login.id}` && r.request().headers().authorization === `Bearer ${login.pollToken}`
      && r.status() === 200 && r.text().then((t) => JSON.parse(t).data.status === 'confirmed'),
  );
  const webMe = page.waitForResponse(
    (r) => pathOf(r) === '/api/v1/me' && r.request().headers().authorization !== `Bearer ${phone.token}`,
  );
  await page.click('#qr-confirm');
  await page.waitForSelector('#qr-screen[data-qr-state="confirmed"]');

  // The web's session came in the first 'confirmed' poll answer, its own token, not the phone's.
  const { data: session } = await (await confirmedPoll).json();
  assert.equal(session.accountId, phone.me.accountId);
  assert.equal(session.phone, phone.me.phone);
  assert.ok(session.token && session.token !== phone.token, 'the web gets a token of its own');
  assert.ok(session.refreshToken, 'and a refresh token');
  first = { phone, web: session };
  // What the web page's own /api/v1/me call answered: the phone's account.
  const meAnswer = await webMe;
  assert.equal(meAnswer.request().headers().authorization, `Bearer ${session.token}`);
  const { data: me } = await meAnswer.json();
  assert.equal(me.accountId, phone.me.accountId);
  await page.waitForFunction((acc) => document.querySelector('#web').dataset.me === acc, phone.me.accountId);
  assert.equal(await page.textContent('#web-status'), '已登录');
  assert.equal(await page.textContent('#web-account'), `账号 ${phone.me.accountId}`);
  assert.equal(await page.textContent('#web-phone'), phone.me.phone);

  // The request is spent: later polls carry no tokens, the phone cannot answer it again.
  const again = await api('GET', `/api/v1/qr-login/${login.id}`, undefined, login.pollToken);
  assert.deepEqual(again.data, { status: 'confirmed' });
  const reuse = await call('POST', `/api/v1/qr-login/${login.id}/confirm`, { body: {}, token: phone.token });
  assert.equal(reuse.status, 409, reuse.text);
  assert.equal(reuse.json.error, 'qr_login_used');

  await page.waitForFunction(() => document.querySelector('#toast').hidden); // the phone's 已登录网页版 toast has gone
  const shot = path.join(ARTIFACTS, 'qr-login.png');
  await page.screenshot({ path: shot });
  if (process.env.UPDATE_SCREENSHOT === '1') fs.copyFileSync(shot, path.join(DOCS, 'qr-login.png'));
});

test('the web logs out: its session ends, the phone stays logged in', async () => {
  assert.ok(first, 'the first test logged the web in');
  const loggedOut = page.waitForResponse((r) => pathOf(r) === '/api/v1/logout');
  await page.click('#web-logout');
  assert.equal((await loggedOut).status(), 200);
  await page.waitForSelector('#web-start', { state: 'visible' });
  const refresh = await call('POST', '/api/v1/refresh', { body: { refreshToken: first.web.refreshToken } });
  assert.equal(refresh.status, 401, `the web's session is over: ${refresh.text}`);
  const me = await api('GET', '/api/v1/me', undefined, first.phone.token);
  assert.equal(me.data.accountId, first.phone.me.accountId, "the phone's own session is another one");
});

test('the phone cancels: the web page shows 已取消 and a new code on 刷新二维码', async () => {
  await page.click('#qr-back');
  await page.waitForSelector('#scan-button', { state: 'visible' });
  const login = await webShowsCode('#web-start');
  await phoneScans(login.id);
  await page.waitForSelector('#web-status[data-status="scanned"]');

  const denied = page.waitForResponse((r) => pathOf(r) === `/api/v1/qr-login/${login.id}/deny`);
  await page.click('#qr-deny');
  assert.equal((await denied).status(), 200);
  await page.waitForSelector('#qr-screen[data-qr-state="denied"]');
  await page.waitForSelector('#web-status[data-status="denied"]');
  assert.equal(await page.textContent('#web-status'), '已取消');
  assert.ok(await page.isVisible('#web-refresh'), 'a refresh button for a new code');
  assert.equal((await api('GET', `/api/v1/qr-login/${login.id}`, undefined, login.pollToken)).data.status, 'denied');

  const fresh = await webShowsCode('#web-refresh');
  assert.notEqual(fresh.id, login.id);
  assert.ok(await page.isHidden('#web-refresh'));
  // The denied request is spent: another WeChat user scanning it is refused.
  const { json } = await call('POST', `/api/v1/qr-login/${login.id}/scan`, { body: {}, token: (await phoneSessionByApi()).token });
  assert.equal(json.error, 'qr_login_used');
});

// docs/examples/scan-login.html from another origin, as a team's own site would serve it.
test('docs/examples/scan-login.html on another origin: scanned and confirmed → shows the account', async () => {
  const port = Number(process.env.E2E_STATIC_PORT || (mock ? 0 : NaN));
  assert.ok(Number.isInteger(port), 'set E2E_STATIC_PORT (the service must list http://127.0.0.1:<port> in cors_origins; run.sh does)');
  const server = http.createServer((req, res) => {
    if (req.url.split('?')[0] === '/scan-login.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(fs.readFileSync(EXAMPLE));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const site = await browser.newPage({ locale: 'zh-CN' });
  const siteErrors = [];
  site.on('pageerror', (e) => siteErrors.push(String(e)));
  try {
    const created = site.waitForResponse((r) => pathOf(r) === '/api/v1/qr-login' && r.request().method() === 'POST');
    await site.goto(`${origin}/scan-login.html?api=${encodeURIComponent(base)}`);
    const answer = await created;
    assert.equal(answer.headers()['access-control-allow-origin'], origin, 'the service allows the site by CORS');
    await site.waitForFunction(() => /^data:image\//.test(document.querySelector('#code').getAttribute('src') || ''));
    await site.waitForFunction(() => document.querySelector('#status').textContent === '请用微信扫码');
    const image = await site.getAttribute('#code', 'src');

    // The phone: a WeChat user with a session scans the picture, its mini program sends /scan and /confirm.
    const phone = await phoneSessionByApi();
    const options = await api('POST', '/sandbox/v1/scan', { openid: phone.user.openid, image });
    const id = decodeURIComponent(options.query.scene);
    const scanned = await api('POST', `/api/v1/qr-login/${id}/scan`, {}, phone.token);
    assert.equal(scanned.data.status, 'scanned');
    assert.equal(scanned.data.origin, origin, 'the phone is told which site asks');
    await site.waitForFunction(() => document.querySelector('#status').textContent === '已扫码，请在手机上确认');
    await api('POST', `/api/v1/qr-login/${id}/confirm`, {}, phone.token);

    const { data: me } = await api('GET', '/api/v1/me', undefined, phone.token);
    await site.waitForFunction(() => document.querySelector('#status').textContent === '已登录');
    await site.waitForFunction((acc) => document.querySelector('#me').textContent.includes(`账号 ${acc}`), me.accountId);
    assert.match(await site.textContent('#me'), new RegExp(`手机 ${me.phone.replace(/\*/g, '\\*')}`));
    const stored = await site.evaluate(() => sessionStorage.getItem('wxlogin.token'));
    assert.ok(stored && stored !== phone.token, 'the site keeps a token of its own');
    assert.deepEqual(siteErrors, []);
  } finally {
    await site.close();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('no script error on the sandbox page', () => {
  assert.deepEqual(pageErrors, []);
});
