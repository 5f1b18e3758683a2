// pages/index: the page after login.
const { renderPage, simulate } = require('./helpers/page');
const { BASE, installWx, allow } = require('./helpers/fake-wx');

let env;
let auth;

beforeEach(async () => {
  jest.resetModules();
  env = installWx({ openid: 'o-carol' });
  require('../config').baseUrl = BASE;
  auth = require('../utils/auth');
  env.service.users.set('o-carol', '13800138000');
  await auth.launch();
});

async function open() {
  const page = renderPage('pages/index/index');
  await page.instance.onShow();
  await simulate.sleep(0);
  return page;
}

test('shows the masked phone from /api/v1/me, never the full number', async () => {
  const page = await open();
  expect(page.querySelector('#me-phone').dom.textContent).toBe('138****8000');
  expect(page.dom.textContent).not.toContain('13800138000');
  expect(env.service.callsTo('/api/v1/me')).toHaveLength(1);
});

test('no session → back to the login page', async () => {
  await auth.logout();
  await open();
  expect(env.wx.reLaunch).toHaveBeenCalledWith({ url: '/pages/login/login' });
});

test('change phone with the Bearer token', async () => {
  const page = await open();
  page.querySelector('#change-phone').querySelector('#phone-number-button')
    .dispatchEvent('getphonenumber', { detail: allow('13600002222') });
  for (let i = 0; i < 5; i += 1) await simulate.sleep(0);
  expect(page.querySelector('#me-phone').dom.textContent).toBe('136****2222');
  expect(env.toasts()).toEqual(['手机号已更新']);
});

test('a refresh that fails on the network: its toast, the page stays, the tokens are kept', async () => {
  const refreshToken = env.storage.get('wxlogin.refreshToken');
  env.storage.set('wxlogin.expiresAt', Date.now() - 1000);
  env.service.inject('/api/v1/refresh', { fail: { errMsg: 'request:fail ' } });
  await open();
  expect(env.toasts()).toEqual(['网络异常，请检查网络后重试']);
  expect(env.wx.reLaunch).not.toHaveBeenCalled();
  expect(env.storage.get('wxlogin.refreshToken')).toBe(refreshToken);
});

test('logout → the login page, waiting for a tap', async () => {
  const page = await open();
  await page.instance.onLogout();
  expect(env.service.callsTo('/oauth2/revoke')).toHaveLength(1);
  expect(auth.getSession()).toBeNull();
  expect(env.wx.reLaunch).toHaveBeenCalledWith({ url: '/pages/login/login?loggedOut=1' });
});

test('shows the account and the app the login landed on, and how many apps the account is in', async () => {
  expect(auth.getSession()).toMatchObject({ accountId: 'acc_o-carol', appid: 'wx00000000000000a1' });
  const page = await open();
  expect(page.querySelector('#me-account').dom.textContent).toBe('账号 acc_o-carol');
  expect(page.querySelector('#me-app').dom.textContent).toBe('小程序 wx00000000000000a1 · 已关联 2 个小程序');
});

test('logout forgets the account and the app with the token', async () => {
  await auth.logout();
  expect(env.wx.getStorageSync('wxlogin.accountId')).toBeFalsy();
  expect(env.wx.getStorageSync('wxlogin.appid')).toBeFalsy();
});

test('注销账号: after the confirm, DELETE /api/v1/me, the storage cleared, the login page; the next login is new', async () => {
  const page = await open();
  await page.instance.onDeleteAccount();
  expect(env.wx.showModal).toHaveBeenCalledTimes(1);
  expect(env.wx.showModal.mock.calls[0][0].title).toBe('注销账号');
  const deletes = env.service.calls.filter((c) => c.method === 'DELETE' && c.path === '/api/v1/me');
  expect(deletes).toHaveLength(1);
  expect(deletes[0].header.Authorization || deletes[0].header.authorization).toMatch(/^Bearer /);
  expect(auth.getSession()).toBeNull();
  expect(env.toasts()).toEqual(['账号已注销']);
  expect(env.wx.reLaunch).toHaveBeenCalledWith({ url: '/pages/login/login?loggedOut=1' });
  expect(env.service.users.has('o-carol')).toBe(false);
  // The same WeChat user, logging in again, is asked for the phone: the service no longer knows them.
  const again = await auth.launch();
  expect(again.status).toBe('phone_required');
});

test('注销账号 cancelled in the modal: nothing is sent, the session stays', async () => {
  const page = await open();
  env.device.modalConfirm = false;
  await page.instance.onDeleteAccount();
  expect(env.service.calls.filter((c) => c.method === 'DELETE')).toHaveLength(0);
  expect(auth.getSession()).not.toBeNull();
  expect(env.wx.reLaunch).not.toHaveBeenCalled();
});

test('注销账号 failing on the service: its toast, the session stays', async () => {
  const page = await open();
  env.service.inject('/api/v1/me', { statusCode: 503, body: { code: 3007, msg: '服务暂时不可用，请稍后再试', error: 'database_unavailable' } });
  await page.instance.onDeleteAccount();
  expect(env.toasts()).toEqual(['服务暂时不可用，请稍后再试']);
  expect(auth.getSession()).not.toBeNull();
  expect(env.wx.reLaunch).not.toHaveBeenCalled();
});
