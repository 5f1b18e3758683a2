// The browser sandbox end to end, in headless Chromium: the template's own utils/auth.js against a running
// sandbox-mode wxlogin (WXLOGIN_URL, e.g. http://127.0.0.1:18080), or against e2e/mock-server.js with E2E_MOCK=1.
//   allow → logged in with the right (masked) phone; relaunch → logged in with no tap and no new
//   getuserphonenumber call; deny → the deny toast and no /api/v1/phone request; the seed's one-call flow.
// Saves e2e/artifacts/sandbox.png; with UPDATE_SCREENSHOT=1 also docs/sandbox.png.
const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const ARTIFACTS = path.join(__dirname, '..', 'artifacts');
const DOCS_SHOT = path.join(__dirname, '..', '..', 'docs', 'sandbox.png');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const DENY_TOAST = '拒绝授权'; // part of auth.js TEXT.deny

let base;
let mock;
let browser;
let page;
const requests = []; // pathnames of every request the page made, in order
const pageErrors = [];

async function api(method, p, body) {
  const res = await fetch(base + p, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${p} → HTTP ${res.status}: ${text}`);
  return JSON.parse(text);
}

// A phone number no sandbox user has yet (the service's data dir may be reused between runs).
async function freshPhone() {
  const { users } = await api('GET', '/sandbox/v1/users');
  const taken = new Set((users || []).map((u) => u.purePhoneNumber || u.phoneNumber));
  for (;;) {
    const p = `139${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
    if (!taken.has(p)) return p;
  }
}

const mask = (p) => `${p.slice(0, 3)}****${p.slice(-4)}`;

async function phoneCalls() {
  const stats = await api('GET', '/sandbox/v1/stats');
  const r = (stats.routes || {})['/wxa/business/getuserphonenumber'];
  return r ? r.calls : 0;
}

async function pickUser(user) {
  await page.click('#refresh-users');
  await page.waitForSelector(`#user-select option[value="${user.openid}"]`, { state: 'attached' });
  await page.selectOption('#user-select', user.openid);
}

// Clicks 启动小程序 and waits for the launch's /api/v1/login answer.
async function launch() {
  const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/login');
  await page.click('#launch');
  await answered;
}

async function waitState(s) {
  await page.waitForSelector(`#app-state[data-state="${s}"]`);
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
  page = await browser.newPage({ viewport: { width: 1280, height: 860 }, locale: 'zh-CN' });
  page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`${base}/sandbox/`);
});

afterEach(async (t) => {
  if (page && !t.passed) {
    const name = `failed-${t.name.replace(/[^\w]+/g, '-').slice(0, 40)}.png`;
    await page.screenshot({ path: path.join(ARTIFACTS, name) }).catch(() => {});
  }
});

after(async () => {
  if (browser) await browser.close();
  if (mock) await mock.close();
});

test('a new user: launch → the phone button → 允许 → logged in with the masked phone', async () => {
  const phone = await freshPhone();
  const user = await api('POST', '/sandbox/v1/users', { phoneNumber: phone });
  await pickUser(user);

  await launch();
  await waitState('phone');
  assert.ok(await page.isVisible('#phone-button'), 'the phone button is shown for an unknown user');

  const bound = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/phone');
  await page.click('#phone-button');
  await page.waitForSelector('#sheet', { state: 'visible' });
  assert.equal(await page.textContent('#sheet-phone'), mask(phone));
  await page.click('#sheet-allow');
  assert.equal((await bound).status(), 200);

  await waitState('ok');
  await page.waitForFunction(
    (m) => document.querySelector('#me-phone').textContent === m
      && /openid/.test(document.querySelector('#me-openid').textContent),
    mask(phone),
  );
  // The account and the app the login landed on, as /api/v1/me answers them.
  await page.waitForFunction(() => /账号 acc_[0-9a-f]{24} · 小程序 wx[0-9a-f]{16}/.test(document.querySelector('#me-account').textContent));
  const stored = await page.evaluate(() => JSON.stringify(Object.entries(localStorage)));
  assert.ok(stored.includes(mask(phone)), 'the masked phone is stored');
  assert.ok(!stored.includes(phone), 'the full phone number is never stored');

  await page.waitForFunction(() => /getuserphonenumber\s+[1-9]/.test(document.querySelector('#stats').textContent));
  const shot = path.join(ARTIFACTS, 'sandbox.png');
  await page.screenshot({ path: shot });
  if (process.env.UPDATE_SCREENSHOT === '1') {
    fs.mkdirSync(path.dirname(DOCS_SHOT), { recursive: true });
    fs.copyFileSync(shot, DOCS_SHOT);
  }

  // Launch again: silent login, no tap, WeChat's getuserphonenumber not called again.
  const calls = await phoneCalls();
  const mark = requests.length;
  await launch();
  await waitState('ok');
  await page.waitForFunction((m) => document.querySelector('#me-phone').textContent === m, mask(phone));
  const since = requests.slice(mark);
  assert.ok(!since.includes('/api/v1/phone'), `no phone request on relaunch: ${since.join(' ')}`);
  assert.ok(!since.includes('/sandbox/v1/phone-code'), 'no button tap on relaunch');
  assert.ok(await page.isHidden('#phone-button'));
  assert.equal(await phoneCalls(), calls, 'getuserphonenumber calls unchanged');
});

test('the same person in the second app, created there: launched → logged in silently as the same account', async (t) => {
  if (mock) {
    t.skip('the mock server has one app');
    return;
  }
  const apps = await api('GET', '/sandbox/v1/apps');
  assert.ok(apps.length >= 2, 'the sandbox has two apps under one Open Platform account');
  const phone = await freshPhone();

  // In app 1: the phone button, once.
  const first = await api('POST', '/sandbox/v1/users', { phoneNumber: phone, appid: apps[0].appid });
  await pickUser(first);
  await launch();
  await page.click('#phone-button');
  await page.waitForSelector('#sheet', { state: 'visible' });
  await page.click('#sheet-allow');
  await waitState('ok');
  await page.waitForFunction((appid) => {
    const text = document.querySelector('#me-account').textContent;
    return /账号 acc_[0-9a-f]{24}/.test(text) && text.includes(appid);
  }, apps[0].appid);
  const account = (await page.textContent('#me-account')).match(/acc_[0-9a-f]{24}/)[0];

  // In app 2, the same number, created on the page: WeChat gives the person the same unionid there.
  await page.selectOption('#new-app', apps[1].appid);
  await page.fill('#new-phone', phone);
  await page.click('#create-user');
  await page.waitForFunction(() => /^小程序 2 · /.test(
    (document.querySelector('#user-select').selectedOptions[0] || {}).textContent || '',
  ));
  const calls = await phoneCalls();
  const mark = requests.length;
  await launch();
  await waitState('ok');
  await page.waitForFunction(([acc, appid]) => {
    const text = document.querySelector('#me-account').textContent;
    return text.includes(acc) && text.includes(appid) && text.includes('已关联 2 个小程序');
  }, [account, apps[1].appid]);
  const since = requests.slice(mark);
  assert.ok(!since.includes('/api/v1/phone'), `no phone step in the second app: ${since.join(' ')}`);
  assert.equal(await phoneCalls(), calls, 'no phone code spent in the second app');
  await page.selectOption('#new-app', apps[0].appid);
});

test('another new user, created on the page: 拒绝 → the deny toast, no phone request', async () => {
  const phone = await freshPhone();
  await page.fill('#new-phone', phone);
  await page.click('#create-user');
  await page.waitForFunction(
    (p) => document.querySelector('#user-select').selectedOptions[0].textContent.includes(` · ${p} · `), phone);
  await launch();
  await waitState('phone');

  const mark = requests.length;
  await page.click('#phone-button');
  await page.click('#sheet-deny');
  await page.waitForSelector('#toast', { state: 'visible' });
  assert.match(await page.textContent('#toast'), new RegExp(DENY_TOAST));
  await waitState('denied');
  await page.waitForTimeout(300); // anything the deny might (wrongly) send would be under way by now
  const since = requests.slice(mark);
  assert.ok(!since.includes('/api/v1/phone'), `no /api/v1/phone after deny: ${since.join(' ')}`);
  assert.ok(!since.includes('/sandbox/v1/phone-code'), 'no phone code minted after deny');
  assert.ok(await page.isVisible('#phone-button'), 'the button stays for another try');
  await page.screenshot({ path: path.join(ARTIFACTS, 'sandbox-deny.png') });
});

test('no quota left (errno 1400001): its toast at once, no sheet, nothing sent', async () => {
  // Continues with the user who denied: still on the login page with the button.
  await page.selectOption('#opt-outcome', 'noQuota');
  try {
    const mark = requests.length;
    await page.click('#phone-button');
    await page.waitForFunction(() => /暂不可用/.test(document.querySelector('#toast').textContent));
    assert.ok(await page.isHidden('#sheet'));
    await page.waitForTimeout(300);
    const since = requests.slice(mark);
    assert.ok(!since.some((p) => p === '/api/v1/phone' || p === '/sandbox/v1/phone-code'), since.join(' '));
  } finally {
    await page.selectOption('#opt-outcome', 'normal');
  }
});

test("the seed's one-call flow: 允许 → POST /api/getPhone → logged in", async () => {
  const phone = await freshPhone();
  const user = await api('POST', '/sandbox/v1/users', { phoneNumber: phone });
  await pickUser(user);
  await page.selectOption('#opt-flow', 'oneCall');
  try {
    const mark = requests.length;
    await page.click('#launch');
    await waitState('phone');
    assert.ok(!requests.slice(mark).some((p) => p.startsWith('/api/')), 'no service call before the tap');

    const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/getPhone');
    await page.click('#phone-button');
    await page.click('#sheet-allow');
    assert.equal((await answered).status(), 200);
    await waitState('ok');
    await page.waitForFunction((m) => document.querySelector('#me-phone').textContent === m, mask(phone));
  } finally {
    await page.selectOption('#opt-flow', 'silent');
  }
});

test('WeChat pushes the phone revoke (the phone is asked again), then 注销账号 deletes the account', async (t) => {
  if (mock) {
    t.skip('the mock has no WeChat pushes');
    return;
  }
  await page.selectOption('#opt-flow', 'silent');
  const phone = await freshPhone();
  const user = await api('POST', '/sandbox/v1/users', { phoneNumber: phone });
  await pickUser(user);
  const allowPhone = async () => {
    await launch();
    await waitState('phone');
    const bound = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/phone');
    await page.click('#phone-button');
    await page.waitForSelector('#sheet', { state: 'visible' });
    await page.click('#sheet-allow');
    assert.equal((await bound).status(), 200);
    await waitState('ok');
    // The account id, once /api/v1/me has filled the line in (before, it shows what storage had).
    await page.waitForFunction(() => /账号 acc_[0-9a-f]{24} · 小程序 wx[0-9a-f]{16}/
      .test(document.querySelector('#me-account').textContent));
    return page.evaluate(() => document.querySelector('#me-account').textContent.match(/acc_[0-9a-f]{24}/)[0]);
  };
  const account = await allowPhone();

  // In WeChat's settings the user withdraws the phone: WeChat pushes it, safe mode, to /wechat/push/{appid}.
  const pushed = page.waitForResponse((r) => new URL(r.url()).pathname === '/sandbox/v1/users/revoke');
  await page.click('#wechat-revoke');
  const delivery = await (await pushed).json();
  assert.deepEqual(delivery.answer, { status: 200, body: 'success' });
  assert.match(delivery.sent.url, /\/wechat\/push\/wx[0-9a-f]{16}\?.*encrypt_type=aes&msg_signature=/);
  // The account lost its phone and its sessions: the next launch asks for the phone again, same account after.
  assert.equal(await allowPhone(), account);

  // 注销账号: the confirm, DELETE /api/v1/me; the next launch is somebody new.
  page.once('dialog', (d) => d.accept());
  const deleted = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/me'
    && r.request().method() === 'DELETE');
  await page.click('#delete-account');
  assert.equal((await deleted).status(), 200);
  await waitState('idle');
  assert.notEqual(await allowPhone(), account);
});

test('no script error on the page', () => {
  assert.deepEqual(pageErrors, []);
});
