// The project opens in WeChat DevTools as is: the files it needs exist and say what they must.
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const read = (p) => fs.readFileSync(path.join(ROOT, p), 'utf8');
const json = (p) => JSON.parse(read(p));

test('app.json: the privacy check, the login page first', () => {
  const app = json('app.json');
  expect(app.__usePrivacyCheck__).toBe(true);
  expect(app.pages[0]).toBe('pages/login/login');
  expect(app.pages).toContain('pages/index/index');
  // The scan-to-log-in code's page (the service's default qr_page): a page WeChat does not know fails the code.
  expect(app.pages).toContain('pages/qr-confirm/qr-confirm');
  expect(fs.existsSync(path.join(ROOT, app.sitemapLocation))).toBe(true);
});

test('every page and component has its four files, and every usingComponents path exists', () => {
  const units = json('app.json').pages.concat(['components/phone-number/index', 'components/privacy-popup/index']);
  for (const unit of units) {
    for (const ext of ['js', 'json', 'wxml', 'wxss']) {
      expect(fs.existsSync(path.join(ROOT, `${unit}.${ext}`))).toBe(true);
    }
    const using = json(`${unit}.json`).usingComponents || {};
    for (const target of Object.values(using)) {
      expect(fs.existsSync(path.join(ROOT, `${target.replace(/^\//, '')}.json`))).toBe(true);
    }
  }
});

test('project.config.json: a placeholder appid, tests and tooling kept out of the upload', () => {
  const project = json('project.config.json');
  expect(project.appid).toBe('touristappid');
  expect(project.compileType).toBe('miniprogram');
  const ignored = project.packOptions.ignore.map((i) => i.value);
  expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'test', 'package.json']));
});

test('project.config.json pins a current 3.x base library, past 3.0.0 and its spurious privacy errno', () => {
  const [major, minor] = json('project.config.json').libVersion.split('.').map(Number);
  expect(major).toBe(3);
  // 3.0.0 has a known spurious privacy errno for a correctly declared phone button; pin a recent 3.x (3.8.12)
  // so DevTools and the preview run the base library real users have.
  expect(minor).toBeGreaterThanOrEqual(8);
});

test('no tag or folder named wx-… (WeChat reserves the prefix)', () => {
  const wxml = ['pages/login/login', 'pages/index/index', 'pages/qr-confirm/qr-confirm']
    .map((p) => read(`${p}.wxml`).replace(/<!--[\s\S]*?-->/g, ''))
    .join('\n');
  expect(wxml).not.toMatch(/<wx-/);
  expect(fs.readdirSync(path.join(ROOT, 'components')).filter((d) => d.startsWith('wx-'))).toEqual([]);
});

test('the code shipped to the phone never writes to the console', () => {
  const files = ['app.js', 'config.js', 'utils/auth.js', 'utils/session.js', 'pages/login/login.js',
    'pages/index/index.js', 'pages/qr-confirm/qr-confirm.js', 'utils/user-agent.js', 'components/phone-number/index.js',
    'components/privacy-popup/index.js'];
  for (const f of files) expect(read(f)).not.toMatch(/console\./);
});

test('utils/*.js and config.js load as plain CommonJS with only relative requires (the sandbox runs them)', () => {
  for (const f of ['utils/auth.js', 'utils/session.js', 'config.js']) {
    const requires = [...read(f).matchAll(/require\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]);
    for (const r of requires) expect(r.startsWith('.')).toBe(true);
    expect(read(f)).not.toMatch(/getApp\(|\bimport\s/);
  }
});

test("the README's toast table says what auth.js shows", () => {
  const readme = read('README.md');
  const { TEXT } = require('../utils/auth');
  const shown = ['deny', 'no_quota', 'privacy_undeclared', 'privacy_denied', 'no_code', 'phone_code_invalid',
    'timeout', 'network', 'server'];
  for (const kind of shown) expect(readme).toContain(TEXT[kind]);
});
