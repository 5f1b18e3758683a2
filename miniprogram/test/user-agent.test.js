// utils/user-agent.js: the short browser name the qr-confirm page shows beside the raw User-Agent.
const { describeUserAgent } = require('../utils/user-agent');

const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) '
  + 'Chrome/131.0.0.0 Safari/537.36';

test.each([
  [CHROME, 'Chrome 131 · Windows'],
  ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 '
    + 'Safari/605.1.15', 'Safari 17 · macOS'],
  ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 '
    + 'Safari/537.36 Edg/131.0.2903.86', 'Edge 131 · Windows'],
  ['Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0', 'Firefox 133 · Linux'],
  ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) '
    + 'Version/17.4 Mobile/15E148 Safari/604.1', 'Safari 17 · iOS'],
  ['Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile '
    + 'Safari/537.36', 'Chrome 131 · Android'],
  ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 '
    + 'Safari/537.36', 'Headless Chrome 131 · Linux'],
  ['Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.138 '
    + 'Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x63090c11)', '微信 7 · Windows'],
  ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 '
    + 'Safari/537.36 OPR/116.0.0.0', 'Opera 116 · Windows'],
  ['Mozilla/5.0 (Phone; OpenHarmony 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Safari/537.36 '
    + 'ArkWeb/4.1.6.1 Mobile', 'Chrome 114 · HarmonyOS'],
  ['Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
    'Chrome 131 · ChromeOS'],
  // No browser: nothing of the client's own text becomes the short name (the raw string is shown apart).
  ['curl/8.5.0', '未知浏览器'],
  ['Mozilla/5.0 (Windows NT 10.0) 官方安全登录/1.0', '未知浏览器 · Windows'],
  ['', '未知浏览器'],
  [undefined, '未知浏览器'],
])('%s → %s', (ua, name) => {
  expect(describeUserAgent(ua)).toBe(name);
});
