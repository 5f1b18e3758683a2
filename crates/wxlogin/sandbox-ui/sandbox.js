// The sandbox page: plays the mini program's login and index pages (as pages/login/login.js and
// pages/index/index.js do: call utils/auth.js, show what it answers) on a phone frame, and WeChat's phone sheet.
(function () {
  'use strict';

  const $ = (sel) => document.querySelector(sel);
  const TEMPLATE_FILES = ['utils/auth.js']; // and what it requires (utils/session.js, config.js)

  const state = {
    apps: [], // [{appid, bound}]: the sandbox's mini programs (one Open Platform account)
    users: [],
    user: null, // the picked sandbox user: {openid, unionid, phoneNumber, …}
    auth: null, // utils/auth.js of the current launch
    config: null,
    screen: 'idle',
    toastTimer: null,
  };

  // --- the device the shim talks to -------------------------------------------------------------------------

  const device = {
    user: () => state.user,
    log,
    toast,
    loading(title) {
      const el = $('#loading');
      el.hidden = !title;
      el.textContent = title || '';
    },
    navigate(url) {
      if (url.indexOf('/pages/index/index') === 0) showIndex();
      else showLogin('loading');
    },
    storageChanged: renderStored,
    async deviceCall(path, body, label) {
      const entry = log({ kind: 'device', method: 'POST', path, body, label });
      const res = await fetch(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const data = await res.json().catch(() => null);
      entry.answer(res.status, data);
      if (!res.ok) {
        const err = new Error((data && (data.msg || data.errmsg || data.error)) || `HTTP ${res.status}`);
        // The errno a button callback carries (1400001: the app's phone-verification quota is used up).
        if (data && data.errno) err.errno = data.errno;
        throw err;
      }
      return data;
    },
  };

  window.wx = window.createWxShim(device);

  // --- log of what went over the wire -----------------------------------------------------------------------

  // Compact JSON, tokens cut short (they are long and secret-looking); the phone numbers stay, they are the
  // sandbox's own.
  function redact(value) {
    const short = (k, v) => ['token', 'refreshToken', 'Authorization'].includes(k) && typeof v === 'string' && v.length > 12;
    return JSON.stringify(value, (k, v) => (short(k, v) ? `${v.slice(0, 10)}…` : v));
  }

  function log({ kind, method, path, body, label }) {
    const li = document.createElement('li');
    li.className = `log__entry log__entry--${kind}`;
    li.dataset.path = path;
    li.innerHTML = '<div class="log__line"><span class="log__who"></span><span class="log__req"></span>'
      + '<span class="log__status">…</span></div><pre class="log__body"></pre><pre class="log__answer"></pre>';
    const who = { device: `设备 ${label || ''}`, web: `网页 ${label || 'fetch'}` };
    li.querySelector('.log__who').textContent = who[kind] || 'wx.request';
    li.querySelector('.log__req').textContent = `${method} ${path}`;
    li.querySelector('.log__body').textContent = body === undefined ? '' : redact(body);
    $('#log').prepend(li);
    return {
      answer(status, data) {
        const s = li.querySelector('.log__status');
        s.textContent = status ? String(status) : 'network error';
        const failed = data && typeof data.code === 'number' && data.code !== 0;
        s.dataset.ok = String(status >= 200 && status < 300 && !failed);
        li.querySelector('.log__answer').textContent = typeof data === 'string' ? data : redact(data);
      },
    };
  }

  function note(text) {
    const li = document.createElement('li');
    li.className = 'log__note';
    li.textContent = text;
    $('#log').prepend(li);
  }

  function toast(title, duration) {
    const el = $('#toast');
    el.textContent = title;
    el.hidden = false;
    clearTimeout(state.toastTimer);
    state.toastTimer = setTimeout(() => {
      el.hidden = true;
    }, Math.max(duration, 2500));
    const li = document.createElement('li');
    li.textContent = title;
    $('#toasts').append(li);
    note(`toast：${title}`);
  }

  // --- the phone's screens ----------------------------------------------------------------------------------

  function setAppState(s, text) {
    $('#app-state').dataset.state = s;
    $('#app-state').textContent = text;
    $('#screen').dataset.state = s;
  }

  function showScreen(name) {
    state.screen = name;
    document.querySelectorAll('[data-screen]').forEach((el) => {
      el.hidden = el.dataset.screen !== name;
    });
    $('#nav-title').textContent = { index: '我的', qr: '确认登录' }[name] || '登录';
  }

  function showLogin(when) {
    showScreen('login');
    document.querySelectorAll('.login__actions [data-when]').forEach((el) => {
      el.hidden = el.dataset.when !== when;
    });
    const labels = { loading: '正在登录', phone: '等待手机号授权', retry: '登录失败' };
    setAppState(when, labels[when] || when);
  }

  async function showIndex() {
    showScreen('index');
    const session = state.auth.getSession();
    $('#me-phone').textContent = session ? session.phone : '';
    $('#me-openid').textContent = '';
    $('#me-account').textContent = session && session.accountId ? `账号 ${session.accountId}` : '';
    setAppState('ok', '已登录');
    try {
      const me = await state.auth.fetchMe(); // as pages/index does on show
      $('#me-phone').textContent = me.phone;
      $('#me-openid').textContent = `openid ${me.openid || ''}`;
      // Which account and app the login landed on: one account per person across the product's apps.
      const apps = (me.identities || []).length;
      $('#me-account').textContent = `账号 ${me.accountId || ''} · 小程序 ${me.appid || ''}${apps > 1 ? ` · 已关联 ${apps} 个小程序` : ''}`;
    } catch (err) {
      state.auth.showError(err);
    }
    renderStored();
    renderStats();
  }

  // As pages/login does with what auth.launch() resolves.
  function apply(result) {
    if (result.status === 'ok') device.navigate('/pages/index/index');
    else if (result.status === 'phone_required') showLogin('phone');
    else showLogin('retry'); // auth has shown the toast
    renderStats();
  }

  // A launch: a new app process (fresh module state), the same phone storage.
  async function launch() {
    if (!state.user) {
      toast('请先选择沙箱用户', 1500);
      return;
    }
    note(`—— 启动小程序（${state.user.phoneNumber}）——`);
    await window.MiniProgramLoader.prefetch(TEMPLATE_FILES[0]);
    const mp = window.MiniProgramLoader.instance();
    state.config = mp.require('config.js');
    state.config.baseUrl = location.origin;
    state.config.loginFlow = $('#opt-flow').value;
    state.config.phoneButtonKind = $('#opt-kind').value;
    state.auth = mp.require('utils/auth.js');
    showLogin('loading');
    apply(await state.auth.launch());
  }

  // --- WeChat's phone sheet ---------------------------------------------------------------------------------

  // Outcomes where WeChat answers the tap at once, with no sheet.
  const NO_SHEET = {
    noQuota: { errno: 1400001, text: 'fail no quota' },
    privacy112: { errno: 112, text: 'fail api scope is not declared in the privacy agreement' },
    privacy104: { errno: 104, text: 'fail privacy permission is not authorized' },
  };

  function openSheet() {
    if (!state.auth) return;
    const outcome = NO_SHEET[$('#opt-outcome').value];
    if (outcome) {
      deliver({ errMsg: `${state.config.phoneButtonKind}:${outcome.text}`, errno: outcome.errno });
      return;
    }
    const p = state.user.purePhoneNumber || state.user.phoneNumber || '';
    $('#sheet-phone').textContent = p.length >= 8 ? `${p.slice(0, 3)}****${p.slice(-4)}` : p;
    $('#sheet').hidden = false;
  }

  async function answerSheet(allow) {
    $('#sheet').hidden = true;
    const kind = state.config.phoneButtonKind;
    const outcome = $('#opt-outcome').value;
    let detail;
    if (allow) {
      try {
        // Each kind of button spends its own quota in the simulator.
        const quota = kind === 'getRealtimePhoneNumber' ? 'realtime' : 'quick';
        const body = await device.deviceCall('/sandbox/v1/phone-code', { openid: state.user.openid, kind: quota }, '按钮 允许');
        detail = { code: body.code, errMsg: `${kind}:ok` };
      } catch (e) {
        detail = e.errno === 1400001
          ? { errMsg: `${kind}:fail no quota`, errno: e.errno }
          : { errMsg: `${kind}:fail ${e.message}` };
      }
    } else {
      detail = { errMsg: outcome === 'android' ? `${kind}:fail:user deny` : `${kind}:fail user deny` };
    }
    deliver(outcome === 'skyline' ? { detail } : detail);
  }

  // The button's callback: e.detail handed to auth.loginWithPhone, as pages/login does.
  async function deliver(detail) {
    note(`按钮回调 e.detail = ${JSON.stringify(detail)}`);
    $('#phone-button').disabled = true;
    const result = await state.auth.loginWithPhone(detail);
    $('#phone-button').disabled = false;
    // As pages/login does with what auth.loginWithPhone() resolves: on to the index page, or stay with the button.
    if (result.status === 'ok') device.navigate('/pages/index/index');
    else if (result.status === 'denied') setAppState('denied', '用户拒绝授权');
    else if (result.status === 'failed') setAppState('failed', '登录失败');
    renderStats();
  }

  // --- users, storage, stats --------------------------------------------------------------------------------

  // "小程序 1", "小程序 2": which of the sandbox's apps a WeChat user belongs to.
  function appLabel(appid) {
    const i = state.apps.findIndex((a) => a.appid === appid);
    return i < 0 ? appid : `小程序 ${i + 1}`;
  }

  function userLabel(u) {
    return `${appLabel(u.appid)} · ${u.phoneNumber} · ${u.openid}`;
  }

  async function loadApps() {
    try {
      state.apps = await (await fetch('/sandbox/v1/apps')).json();
    } catch (e) {
      state.apps = [];
    }
    const sel = $('#new-app');
    sel.innerHTML = '';
    for (const a of state.apps) {
      const o = document.createElement('option');
      o.value = a.appid;
      o.textContent = `${appLabel(a.appid)}（${a.appid}${a.bound ? '' : '，未绑定开放平台'}）`;
      sel.append(o);
    }
  }

  function renderUsers() {
    const sel = $('#user-select');
    const keep = state.user && state.user.openid;
    sel.innerHTML = '<option value="">— 选择用户 —</option>';
    for (const u of state.users) {
      const o = document.createElement('option');
      o.value = u.openid;
      o.textContent = userLabel(u);
      sel.append(o);
    }
    sel.value = keep || '';
  }

  async function loadUsers() {
    try {
      const res = await fetch('/sandbox/v1/users');
      const body = await res.json();
      state.users = body.users || [];
    } catch (e) {
      toast('读取沙箱用户失败', 1500);
    }
    renderUsers();
  }

  function pickUser(openid) {
    state.user = state.users.find((u) => u.openid === openid) || null;
    state.auth = null;
    $('#sheet').hidden = true;
    showScreen('idle');
    setAppState('idle', state.user ? '未启动' : '未选择用户');
    renderStored();
  }

  async function createUser() {
    const phone = $('#new-phone').value.trim();
    if (!/^\d{5,15}$/.test(phone)) {
      toast('请输入手机号', 1500);
      return;
    }
    try {
      const body = { phoneNumber: phone };
      if ($('#new-app').value) body.appid = $('#new-app').value;
      const user = await device.deviceCall('/sandbox/v1/users', body, '创建用户');
      if (!state.users.some((u) => u.openid === user.openid)) state.users.push(user);
      renderUsers();
      $('#user-select').value = user.openid;
      pickUser(user.openid);
      $('#new-phone').value = '';
    } catch (e) {
      toast(`创建失败：${e.message}`, 2000);
    }
  }

  function randomPhone() {
    const prefixes = ['135', '136', '137', '138', '139', '150', '151', '186', '188'];
    const p = prefixes[Math.floor(Math.random() * prefixes.length)];
    return p + String(Math.floor(Math.random() * 1e8)).padStart(8, '0');
  }

  function renderStored() {
    if (!state.user) {
      $('#stored').textContent = '—';
      return;
    }
    const prefix = `wxsandbox:${state.user.openid}:`;
    const out = {};
    for (let i = 0; i < localStorage.length; i += 1) {
      const k = localStorage.key(i);
      if (k.startsWith(prefix)) out[k.slice(prefix.length)] = JSON.parse(localStorage.getItem(k));
    }
    if (out['wxlogin.token']) out['wxlogin.token'] = `${String(out['wxlogin.token']).slice(0, 10)}…`;
    if (out['wxlogin.refreshToken']) out['wxlogin.refreshToken'] = `${String(out['wxlogin.refreshToken']).slice(0, 10)}…`;
    if (out['wxlogin.expiresAt']) out['wxlogin.expiresAt'] = new Date(out['wxlogin.expiresAt']).toISOString();
    $('#stored').textContent = Object.keys(out).length ? JSON.stringify(out, null, 2) : '（空）';
  }

  async function renderStats() {
    try {
      const s = await (await fetch('/sandbox/v1/stats')).json();
      const routes = s.routes || {};
      const calls = (p) => (routes[p] ? `${routes[p].calls}（错误 ${routes[p].errors}）` : '0');
      $('#stats').textContent = [
        `jscode2session          ${calls('/sns/jscode2session')}`,
        `getuserphonenumber      ${calls('/wxa/business/getuserphonenumber')}`,
        `access tokens issued    ${s.tokensIssued === undefined ? '—' : s.tokensIssued}`,
      ].join('\n');
    } catch (e) {
      $('#stats').textContent = '—';
    }
  }

  function clearStorage() {
    if (!state.user) return;
    const prefix = `wxsandbox:${state.user.openid}:`;
    Object.keys(localStorage).filter((k) => k.startsWith(prefix)).forEach((k) => localStorage.removeItem(k));
    note('—— 已清除本机存储 ——');
    renderStored();
  }

  // --- wiring -----------------------------------------------------------------------------------------------

  $('#user-select').addEventListener('change', (e) => pickUser(e.target.value));
  $('#refresh-users').addEventListener('click', loadUsers);
  $('#random-phone').addEventListener('click', () => {
    $('#new-phone').value = randomPhone();
  });
  $('#create-user').addEventListener('click', createUser);
  $('#launch').addEventListener('click', () => launch().catch((e) => toast(`启动失败：${e.message}`, 3000)));
  $('#login-retry').addEventListener('click', () => launch());
  $('#clear-storage').addEventListener('click', clearStorage);
  $('#clear-log').addEventListener('click', () => {
    $('#log').innerHTML = '';
  });
  $('#phone-button').addEventListener('click', openSheet);
  $('#sheet-allow').addEventListener('click', () => answerSheet(true));
  $('#sheet-deny').addEventListener('click', () => answerSheet(false));
  $('#privacy-link').addEventListener('click', (e) => {
    e.preventDefault();
    window.wx.openPrivacyContract({});
  });
  $('#logout').addEventListener('click', async () => {
    await state.auth.logout();
    note('—— 已退出登录 ——');
    showIndexGone();
  });

  function showIndexGone() {
    showScreen('idle');
    setAppState('idle', '已退出，可再次启动');
    renderStored();
  }

  // For web-demo.js (the web page beside the phone) and qr-scan.js (the phone's scan and confirm screen).
  window.Sandbox = { state, device, log, note, toast, showScreen, showIndex, setAppState, renderStats };

  showScreen('idle');
  loadApps().then(loadUsers).then(renderStats);
})();
