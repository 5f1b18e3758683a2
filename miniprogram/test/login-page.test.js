// pages/login: what the user sees at launch, with the phone button (way 2 and way 1) and the privacy popup.
const { renderPage, simulate } = require('./helpers/page');
const { BASE, installWx, allow, err } = require('./helpers/fake-wx');

let env;
let config;

beforeEach(() => {
  jest.resetModules();
  env = installWx({ openid: 'o-bob' });
  config = require('../config');
  config.baseUrl = BASE;
});

async function open(query = {}, app) {
  const page = renderPage('pages/login/login', { app });
  await page.instance.onLoad(query);
  await simulate.sleep(0);
  return page;
}

function tapPhone(page, detail) {
  const button = config.phoneButtonUi === 'button'
    ? page.querySelector('#phone-button')
    : page.querySelector('#phone-number').querySelector('#phone-number-button');
  button.dispatchEvent(config.phoneButtonKind.toLowerCase(), { detail });
}

async function settle() {
  for (let i = 0; i < 10; i += 1) await simulate.sleep(0); // a few request round trips of the fake
}

test('a known user: logged in silently, no phone button ever shown', async () => {
  env.service.users.set('o-bob', '13800138000');
  const page = await open();
  expect(page.querySelector('#phone-number')).toBeUndefined();
  expect(env.wx.reLaunch).toHaveBeenCalledWith({ url: '/pages/index/index' });
  expect(env.service.callsTo('/api/v1/phone')).toHaveLength(0);
});

test('an unknown user: the button → allow → bound, on to the index page', async () => {
  const page = await open();
  expect(page.data.state).toBe('phone');
  expect(page.querySelector('#phone-number')).toBeDefined();
  expect(env.wx.reLaunch).not.toHaveBeenCalled();

  tapPhone(page, allow('13912345678'));
  await settle();

  expect(env.service.users.get('o-bob')).toBe('13912345678');
  expect(env.wx.reLaunch).toHaveBeenCalledWith({ url: '/pages/index/index' });
  expect(env.storage.get('wxlogin.phone')).toBe('139****5678');
});

test('deny → the deny toast, still on the login page with the button', async () => {
  const page = await open();
  tapPhone(page, { errMsg: 'getPhoneNumber:fail:user deny' });
  await settle();
  expect(env.toasts()).toEqual(['你已拒绝授权手机号，未登录']);
  expect(env.wx.reLaunch).not.toHaveBeenCalled();
  expect(page.data).toMatchObject({ state: 'phone', busy: false });
  expect(env.service.callsTo('/api/v1/phone')).toHaveLength(0);
});

test('way 1, the bare button, with the realtime kind', async () => {
  config.phoneButtonUi = 'button';
  config.phoneButtonKind = 'getRealtimePhoneNumber';
  const page = await open();
  expect(page.querySelector('#phone-number')).toBeUndefined();
  tapPhone(page, allow('13912345678', 'getRealtimePhoneNumber'));
  await settle();
  expect(env.wx.reLaunch).toHaveBeenCalledWith({ url: '/pages/index/index' });
});

test("the seed's one-call flow from the page", async () => {
  config.loginFlow = 'oneCall';
  const page = await open();
  expect(env.service.calls).toHaveLength(0);
  tapPhone(page, allow('13800138000'));
  await settle();
  expect(env.service.callsTo('/api/getPhone')).toHaveLength(1);
  expect(env.wx.reLaunch).toHaveBeenCalledWith({ url: '/pages/index/index' });
});

test('the launch started by app.js is taken over, not repeated', async () => {
  env.service.users.set('o-bob', '13800138000');
  const app = { globalData: {} };
  global.App = (def) => Object.assign(app, def);
  require('../app');
  app.onLaunch();
  await open({}, app);
  expect(env.service.callsTo('/api/v1/login')).toHaveLength(1);
  expect(app.globalData.launch).toBeNull();
  expect(env.wx.reLaunch).toHaveBeenCalledTimes(1);
});

test('a failed launch → toast and a retry button that works', async () => {
  env.service.inject('/api/v1/login', { fail: { errMsg: 'request:fail ' } });
  const page = await open();
  expect(page.data.state).toBe('retry');
  expect(env.toasts()).toEqual(['网络异常，请检查网络后重试']);

  page.querySelector('#login-retry').dispatchEvent('tap');
  await settle();
  expect(page.data.state).toBe('phone');
});

test('a server error while binding → its toast, the button stays', async () => {
  const page = await open();
  env.service.inject('/api/v1/phone', err(503, 3002, 'wechat_busy', '微信繁忙，请稍后再试'));
  tapPhone(page, allow('13800138000'));
  await settle();
  expect(env.toasts()).toEqual(['微信繁忙，请稍后再试']);
  expect(page.data.state).toBe('phone');
});

test('after logout: no silent login until the user taps 微信登录', async () => {
  env.service.users.set('o-bob', '13800138000');
  const page = await open({ loggedOut: '1' });
  expect(env.service.calls).toHaveLength(0);
  page.querySelector('#login-again').dispatchEvent('tap');
  await settle();
  expect(env.wx.reLaunch).toHaveBeenCalledWith({ url: '/pages/index/index' });
});

test('the privacy popup is on the page and answers WeChat', async () => {
  const page = await open();
  const resolve = jest.fn();
  env.device.privacyListener(resolve, { referrer: 'getPhoneNumber' });
  await simulate.sleep(0);
  const popup = page.querySelector('#privacy-popup');
  expect(popup.data.show).toBe(true);
  popup.querySelector('#privacy-agree').dispatchEvent('agreeprivacyauthorization', { detail: {} });
  await simulate.sleep(0);
  expect(resolve).toHaveBeenLastCalledWith({ event: 'agree', buttonId: 'privacy-agree' });
});
