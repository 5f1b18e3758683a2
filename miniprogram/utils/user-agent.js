// A short, readable name for a browser's User-Agent ("Chrome 131 · Windows"), for the scan-to-log-in confirm page:
// the user must recognise their own computer at a glance, and a raw User-Agent is unreadable. Only known tokens are
// named: the User-Agent is whatever the web page's client sent, so free text from it is never turned into the short
// name (the page shows the raw string apart, small). Major versions only; Windows 10 and 11 send the same token, so
// no Windows version is claimed.

// First match wins. Order matters: Edge, Opera, WeChat's and QQ's browsers, Samsung's all carry `Chrome/` and
// `Safari/` too; Chrome carries `Safari/`. A headless Chrome is named as such: a phishing relay that drives a browser
// by script often is one.
const BROWSERS = [
  ['Headless Chrome', /HeadlessChrome\/(\d+)/],
  ['Edge', /Edg(?:e|A|iOS)?\/(\d+)/],
  ['Opera', /(?:OPR|Opera)\/(\d+)/],
  ['微信', /MicroMessenger\/(\d+)/],
  ['QQ浏览器', /QQBrowser\/(\d+)/],
  ['Samsung Internet', /SamsungBrowser\/(\d+)/],
  ['Firefox', /(?:Firefox|FxiOS)\/(\d+)/],
  ['Chrome', /(?:Chrome|CriOS|Chromium)\/(\d+)/],
  ['Safari', /Version\/(\d+)[\d.]* (?:Mobile\/\S+ )?Safari\//],
];

// iOS before macOS ("like Mac OS X"), HarmonyOS before Android (older ones say both), Android and ChromeOS before
// Linux. An iPad on iPadOS 13+ asks for the desktop site and says Macintosh: it is named macOS, as its browser claims.
const SYSTEMS = [
  ['Windows', /Windows/],
  ['iOS', /iPhone|iPad|iPod/],
  ['HarmonyOS', /HarmonyOS|OpenHarmony/],
  ['Android', /Android/],
  ['ChromeOS', /CrOS/],
  ['macOS', /Mac OS X|Macintosh/],
  ['Linux', /Linux|X11/],
];

const UNKNOWN = '未知浏览器';

function firstMatch(table, ua) {
  for (let i = 0; i < table.length; i += 1) {
    const m = table[i][1].exec(ua);
    if (m) return { name: table[i][0], version: m[1] || '' };
  }
  return null;
}

// userAgent → "Chrome 131 · Windows", "Safari 17 · macOS", "未知浏览器" (curl, a script: nothing known to name).
function describeUserAgent(userAgent) {
  const ua = typeof userAgent === 'string' ? userAgent.trim() : '';
  if (!ua) return UNKNOWN;
  const browser = firstMatch(BROWSERS, ua);
  const system = firstMatch(SYSTEMS, ua);
  const parts = [browser ? `${browser.name} ${browser.version}` : UNKNOWN];
  if (system) parts.push(system.name);
  return parts.join(' · ');
}

module.exports = { describeUserAgent };
