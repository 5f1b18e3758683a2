// components/phone-number: the seed's way 2 under our own tag.
const fs = require('fs');
const path = require('path');
const simulate = require('miniprogram-simulate');
const { installWx } = require('./helpers/fake-wx');

const ROOT = path.resolve(__dirname, '..');
const COMPONENT = path.join(ROOT, 'components/phone-number/index');
const WXML = fs.readFileSync(`${COMPONENT}.wxml`, 'utf8');

let env;

beforeEach(() => {
  jest.resetModules(); // loading the same component path twice in one file needs it (tooling-notes.md)
  env = installWx();
});

function render(props) {
  const id = simulate.load(COMPONENT, 'phone-number', { rootPath: ROOT });
  const comp = simulate.render(id, props);
  comp.attach(document.createElement('parent-wrapper'));
  const events = [];
  comp.addEventListener('phonenumberget', (e) => events.push(e.detail));
  return { comp, events };
}

test('the button is a getPhoneNumber button by default, with the privacy line', async () => {
  const { comp } = render();
  await simulate.sleep(0);
  // j-component drops unknown attributes of built-ins, so the open-type is read from the data it is bound to.
  expect(comp.data.openType).toBe('getPhoneNumber');
  expect(WXML).toMatch(/open-type="{{openType}}"/);
  expect(comp.querySelector('#phone-number-button').dom.textContent).toContain('手机号快捷登录');
  expect(comp.dom.textContent).toContain('《示例小程序隐私保护指引》');
});

test('getphonenumber → phonenumberget with {code, errMsg, errno}', async () => {
  const { comp, events } = render();
  comp.querySelector('#phone-number-button').dispatchEvent('getphonenumber', {
    detail: { code: 'pc:13800138000', errMsg: 'getPhoneNumber:ok', encryptedData: 'legacy', iv: 'legacy' },
  });
  await simulate.sleep(0);
  expect(events).toEqual([{ code: 'pc:13800138000', errMsg: 'getPhoneNumber:ok', errno: undefined }]);
});

test('the realtime kind: its own event name, the same detail', async () => {
  const { comp, events } = render({ kind: 'getRealtimePhoneNumber' });
  await simulate.sleep(0);
  const button = comp.querySelector('#phone-number-button');
  expect(comp.data.openType).toBe('getRealtimePhoneNumber');
  expect(WXML).toMatch(/bindgetrealtimephonenumber="onPhoneNumber"/);
  button.dispatchEvent('getrealtimephonenumber', {
    detail: { errMsg: 'getRealtimePhoneNumber:fail no quota', errno: 1400001 },
  });
  await simulate.sleep(0);
  expect(events).toEqual([{ code: undefined, errMsg: 'getRealtimePhoneNumber:fail no quota', errno: 1400001 }]);
});

test('the kind falls back to config.phoneButtonKind', async () => {
  require('../config').phoneButtonKind = 'getRealtimePhoneNumber';
  const { comp } = render();
  await simulate.sleep(0);
  expect(comp.data.openType).toBe('getRealtimePhoneNumber');
});

test('the Skyline-nested detail comes out flat', async () => {
  const { comp, events } = render();
  comp.querySelector('#phone-number-button').dispatchEvent('getphonenumber', {
    detail: { detail: { code: 'pc:13800138000', errMsg: 'getPhoneNumber:ok' } },
  });
  await simulate.sleep(0);
  expect(events[0].code).toBe('pc:13800138000');
});

test('the contract link opens wx.openPrivacyContract', async () => {
  const { comp } = render();
  comp.querySelector('#phone-number-contract').dispatchEvent('tap');
  await simulate.sleep(0);
  expect(env.wx.openPrivacyContract).toHaveBeenCalledTimes(1);
});
