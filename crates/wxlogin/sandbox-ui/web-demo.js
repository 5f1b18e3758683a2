// The web page beside the phone: a site's "微信扫码登录", as docs/scan-login.md describes it. It creates a login
// request (POST /api/v1/qr-login), shows the mini program code it answers, and long-polls
// GET /api/v1/qr-login/{id}?wait=25 with the poll token until the phone confirms, cancels, or the code expires;
// confirmed, it calls /api/v1/me with the web's own access token. It keeps its tokens in memory only.
(function () {
  'use strict';

  const $ = (sel) => document.querySelector(sel);
  const S = window.Sandbox;
  const WAIT = 25; // seconds the service may hold a poll

  const web = {
    gen: 0, // bumped by every new code and by a reset: an older poll loop sees it and stops
    controller: null, // aborts the poll in flight
    login: null, // {id, pollToken, image, expiresIn} of the shown code
    status: '',
    token: null, // the web's access token once confirmed
    refreshToken: null,
  };

  // The status line under the code, and what it means for the rest of the box.
  const STATUS = {
    pending: ['等待扫码', '请用微信扫一扫（沙箱：手机上的「扫一扫」）'],
    scanned: ['已扫码，请在手机上确认', '手机上已打开确认页'],
    confirmed: ['已登录', ''],
    denied: ['已取消', '手机上点了「取消」，可刷新二维码重试'],
    expired: ['已过期', '二维码 120 秒内有效，请刷新'],
    error: ['出错了', ''],
  };

  function show(part) {
    $('#web').dataset.web = part;
    document.querySelectorAll('[data-web-when]').forEach((el) => {
      el.hidden = el.dataset.webWhen !== part;
    });
  }

  function setStatus(status, detail) {
    web.status = status;
    const [text, hint] = STATUS[status] || [status, ''];
    const el = $('#web-status');
    el.dataset.status = status;
    el.textContent = text;
    $('#web-detail').textContent = detail || hint;
    $('[data-web-mask]').dataset.status = status;
    $('[data-web-mask]').textContent = status === 'pending' ? '' : text;
    // A new code is only needed once this one is of no more use.
    $('[data-web-refresh]').hidden = !['denied', 'expired', 'error'].includes(status);
  }

  // fetch with the answer's envelope opened: resolves with `data`, throws Error(msg) with .status and .error.
  async function call(method, path, { token, body, signal, label } = {}) {
    const entry = S.log({ kind: 'web', method, path, body, label });
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch (e) {
      entry.answer(0, e.name === 'AbortError' ? '（已中止）' : String(e.message));
      throw e;
    }
    const data = await res.json().catch(() => null);
    entry.answer(res.status, data);
    if (!res.ok || !data || data.code !== 0) {
      const err = new Error((data && data.msg) || `HTTP ${res.status}`);
      err.status = res.status;
      err.error = data && data.error;
      throw err;
    }
    return data.data || {};
  }

  function stop() {
    web.gen += 1;
    if (web.controller) web.controller.abort();
    web.controller = null;
  }

  // A new code: the previous one (if any) is left to expire; its poll loop stops.
  async function start() {
    stop();
    const gen = web.gen;
    web.login = null;
    show('code');
    $('#web-code').removeAttribute('src');
    setStatus('pending', '正在获取二维码…');
    try {
      web.login = await call('POST', '/api/v1/qr-login', { body: {}, label: '创建' });
    } catch (e) {
      if (gen === web.gen) setStatus('error', e.message);
      return;
    }
    if (gen !== web.gen) return;
    $('#web-code').src = web.login.image;
    setStatus('pending');
    poll(gen);
  }

  // The long-poll loop: each answer is the status now; the service holds a poll until the status changes.
  async function poll(gen) {
    const { id, pollToken } = web.login;
    while (gen === web.gen) {
      web.controller = new AbortController();
      let data;
      try {
        data = await call('GET', `/api/v1/qr-login/${encodeURIComponent(id)}?wait=${WAIT}`, {
          token: pollToken,
          signal: web.controller.signal,
          label: '轮询',
        });
      } catch (e) {
        if (gen === web.gen) setStatus('error', e.message);
        return;
      }
      if (gen !== web.gen) return;
      if (data.status === 'confirmed') {
        if (data.token) await loggedIn(data, gen);
        else setStatus('error', '登录结果已被取走（只在第一次应答里）');
        return;
      }
      setStatus(data.status);
      if (data.status === 'denied' || data.status === 'expired') return;
    }
  }

  async function loggedIn(data, gen) {
    web.token = data.token;
    web.refreshToken = data.refreshToken;
    S.note(`—— 网页已登录：账号 ${data.accountId} ——`);
    setStatus('confirmed');
    show('done');
    $('#web-phone').textContent = data.phone || '';
    $('#web-account').textContent = `账号 ${data.accountId || ''}`;
    $('#web-app').textContent = '正在读取 /api/v1/me…';
    try {
      // What a real site does next: its API calls with the web's own access token.
      const me = await call('GET', '/api/v1/me', { token: web.token, label: 'me' });
      if (gen !== web.gen) return;
      $('#web-phone').textContent = me.phone;
      $('#web-account').textContent = `账号 ${me.accountId}`;
      $('#web-app').textContent = `经小程序 ${me.appid || data.appid || ''} 扫码登录`;
      $('#web').dataset.me = me.accountId;
    } catch (e) {
      $('#web-app').textContent = `/api/v1/me 失败：${e.message}`;
    }
    S.renderStats();
  }

  async function logout() {
    const token = web.token;
    stop();
    web.token = null;
    web.refreshToken = null;
    web.login = null;
    delete $('#web').dataset.me;
    show('idle');
    if (token) await call('POST', '/api/v1/logout', { token, label: '退出' }).catch(() => {});
  }

  $('#web-start').addEventListener('click', start);
  $('#web-refresh').addEventListener('click', start);
  $('#web-logout').addEventListener('click', logout);
  show('idle');

  // For qr-scan.js: the image the phone's camera sees (null while no code is shown).
  window.WebDemo = { image: () => (web.login && $('#web').dataset.web === 'code' ? web.login.image : null) };
})();
