// components/privacy-popup: wx.onNeedPrivacyAuthorization → our popup → agree / disagree.
const path = require('path');
const simulate = require('miniprogram-simulate');
const { installWx } = require('./helpers/fake-wx');

const ROOT = path.resolve(__dirname, '..');
const COMPONENT = path.join(ROOT, 'components/privacy-popup/index');

let env;

beforeEach(() => {
  jest.resetModules();
  env = installWx();
});

async function renderAndAsk() {
  const id = simulate.load(COMPONENT, 'privacy-popup', { rootPath: ROOT });
  const comp = simulate.render(id);
  comp.attach(document.createElement('parent-wrapper'));
  expect(env.wx.onNeedPrivacyAuthorization).toHaveBeenCalledTimes(1);
  expect(comp.querySelector('#privacy-agree')).toBeUndefined(); // hidden until WeChat asks

  const resolve = jest.fn();
  env.device.privacyListener(resolve, { referrer: 'getPhoneNumber' }); // WeChat: a privacy API is about to run
  await simulate.sleep(0);
  return { comp, resolve };
}

test('WeChat asks → the popup shows, with the contract name, and reports its exposure', async () => {
  const { comp, resolve } = await renderAndAsk();
  expect(comp.data.show).toBe(true);
  expect(comp.dom.textContent).toContain('《示例小程序隐私保护指引》');
  expect(resolve).toHaveBeenCalledWith({ event: 'exposureAuthorization' });
});

test('agree (open-type="agreePrivacyAuthorization") → resolve({event:"agree", buttonId}), popup closed', async () => {
  const { comp, resolve } = await renderAndAsk();
  const agreed = jest.fn();
  comp.addEventListener('agree', agreed);

  comp.querySelector('#privacy-agree').dispatchEvent('agreeprivacyauthorization', { detail: {} });
  await simulate.sleep(0);

  expect(resolve).toHaveBeenLastCalledWith({ event: 'agree', buttonId: 'privacy-agree' });
  expect(comp.data.show).toBe(false);
  expect(agreed).toHaveBeenCalledTimes(1);
});

test('disagree → resolve({event:"disagree"})', async () => {
  const { comp, resolve } = await renderAndAsk();
  comp.querySelector('#privacy-disagree').dispatchEvent('tap');
  await simulate.sleep(0);
  expect(resolve).toHaveBeenLastCalledWith({ event: 'disagree' });
  expect(comp.data.show).toBe(false);
});

test('the contract link opens wx.openPrivacyContract', async () => {
  const { comp } = await renderAndAsk();
  comp.querySelector('#privacy-contract').dispatchEvent('tap');
  await simulate.sleep(0);
  expect(env.wx.openPrivacyContract).toHaveBeenCalledTimes(1);
});

test('a popup removed without an answer does not leave WeChat waiting', async () => {
  const { comp, resolve } = await renderAndAsk();
  comp.detach();
  expect(resolve).toHaveBeenLastCalledWith({ event: 'disagree' });
});

test('an old base library without the privacy API: nothing breaks', async () => {
  delete env.wx.onNeedPrivacyAuthorization;
  delete env.wx.getPrivacySetting;
  const id = simulate.load(COMPONENT, 'privacy-popup', { rootPath: ROOT });
  const comp = simulate.render(id);
  comp.attach(document.createElement('parent-wrapper'));
  expect(comp.data.show).toBe(false);
});
