// The phone's side of scan-to-log-in. 扫一扫 hands the web page's code image to WeChat (the simulator's
// POST /sandbox/v1/scan, with the picked user's openid), which answers the launch options the mini program's
// onLoad(options) gets; the confirm screen then does what pages/qr-confirm does with options.scene: tells the
// service it was scanned (POST /api/v1/qr-login/{id}/scan, which answers who is asking), shows that, and sends
// /confirm or /deny, every call with the phone's own session through the template's auth.authorizedRequest.
// The sandbox does not run WXML pages, so this screen plays the page, as sandbox.js plays pages/login.
(function () {
  'use strict';

  const $ = (sel) => document.querySelector(sel);
  const S = window.Sandbox;
  const qr = { id: null, busy: false };
  const QR_ID = /^[A-Za-z0-9_-]{22}$/; // what the service's ids look like: anything else is not our code
  // The page's own wording for the service's qr_login_* errors (as pages/qr-confirm shows them).
  const MESSAGES = {
    qr_login_not_found: '二维码无效，请在电脑上刷新',
    qr_login_expired: '二维码已过期，请在电脑上刷新',
    qr_login_used: '该二维码已被使用',
    qr_login_not_scanned: '登录请求已失效，请重新扫码确认',
  };

  function setQrState(s, hint) {
    $('#qr-screen').dataset.qrState = s;
    $('#qr-hint').textContent = hint || '';
    const when = s === 'ask' ? 'ask' : s === 'loading' ? '' : 'done';
    document.querySelectorAll('[data-qr-when]').forEach((el) => {
      el.hidden = el.dataset.qrWhen !== when;
    });
    $('#qr-details').hidden = s === 'loading' || (s === 'failed' && !$('#qr-ip').textContent);
  }

  // "Chrome 131 · Linux" from a User-Agent header; the whole header stays in the element's title.
  function browserName(ua) {
    const s = String(ua || '');
    const name = [['Edg/', 'Edge'], ['Firefox/', 'Firefox'], ['Chrome/', 'Chrome'], ['Version/', 'Safari']]
      .map(([tag, label]) => {
        const m = s.match(new RegExp(`${tag.replace('/', '\\/')}(\\d+)`));
        return m ? `${label} ${m[1]}` : null;
      })
      .find(Boolean);
    const os = [['Windows', 'Windows'], ['Mac OS X', 'macOS'], ['Android', 'Android'], ['iPhone', 'iOS'], ['Linux', 'Linux']]
      .find(([tag]) => s.includes(tag));
    return [name || (s ? s.slice(0, 40) : '未知'), os && os[1]].filter(Boolean).join(' · ');
  }

  function when(unix) {
    const d = new Date(Number(unix) * 1000);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  function showRequest(info) {
    $('#qr-ip').textContent = info.ip || '未知';
    $('#qr-browser').textContent = browserName(info.userAgent);
    $('#qr-browser').title = info.userAgent || '';
    $('#qr-origin').textContent = info.origin || '未知（非浏览器跨域请求）';
    $('#qr-time').textContent = `${when(info.createdAt)}（${info.expiresIn} 秒内有效）`;
  }

  function clearRequest() {
    ['#qr-ip', '#qr-browser', '#qr-origin', '#qr-time'].forEach((sel) => {
      $(sel).textContent = '';
    });
  }

  function failed(err) {
    // The service's own message (二维码已过期, 二维码已使用, …) is what the page shows.
    const msg = (err && (MESSAGES[err.error] || err.msg || err.toast || err.message)) || '操作失败';
    $('#qr-screen').dataset.qrError = (err && err.error) || '';
    setQrState('failed', msg);
    S.toast(msg, 2000);
  }

  // WeChat's scanner: the picture → the launch options, then the mini program opens the confirm page with them.
  async function scan() {
    const user = S.state.user;
    if (!user || !S.state.auth) {
      S.toast('请先启动小程序并登录', 1500);
      return;
    }
    const image = window.WebDemo && window.WebDemo.image();
    if (!image) {
      S.toast('网页上还没有二维码', 1500);
      return;
    }
    let options;
    try {
      options = await S.device.deviceCall('/sandbox/v1/scan', { openid: user.openid, image }, '扫一扫');
    } catch (e) {
      S.toast(`扫码失败：${e.message}`, 2000);
      return;
    }
    S.note(`—— 扫码打开 ${options.path}?scene=${options.query.scene}（场景值 ${options.scene}）——`);
    onLoad({ path: options.path, scene: options.scene, query: options.query });
  }

  // As pages/qr-confirm's onLoad(options): the code's scene is the login request's id.
  async function onLoad(options) {
    qr.id = decodeURIComponent((options.query && options.query.scene) || '');
    clearRequest();
    $('#qr-screen').dataset.qrError = '';
    S.showScreen('qr');
    S.setAppState('qr', '扫码登录：读取请求');
    setQrState('loading', '正在读取登录请求…');
    if (!QR_ID.test(qr.id)) {
      failed({ msg: '二维码无效' }); // nothing sent
      return;
    }
    try {
      const info = await S.state.auth.authorizedRequest(`/api/v1/qr-login/${encodeURIComponent(qr.id)}/scan`, { data: {} });
      showRequest(info);
      setQrState('ask', '有电脑正在请求登录你的账号，请核对：');
      S.setAppState('qr', '扫码登录：等待确认');
    } catch (err) {
      failed(err);
      S.setAppState('failed', '扫码登录失败');
    }
  }

  async function answer(confirm) {
    if (qr.busy || !qr.id) return;
    qr.busy = true;
    $('#qr-confirm').disabled = true;
    $('#qr-deny').disabled = true;
    const verb = confirm ? 'confirm' : 'deny';
    try {
      await S.state.auth.authorizedRequest(`/api/v1/qr-login/${encodeURIComponent(qr.id)}/${verb}`, { data: {} });
      setQrState(confirm ? 'confirmed' : 'denied', confirm ? '已在电脑上登录' : '已取消登录');
      S.setAppState(confirm ? 'ok' : 'denied', confirm ? '已确认网页登录' : '已取消网页登录');
      S.toast(confirm ? '已登录网页版' : '已取消', 1500);
    } catch (err) {
      failed(err);
      S.setAppState('failed', '扫码登录失败');
    } finally {
      qr.busy = false;
      $('#qr-confirm').disabled = false;
      $('#qr-deny').disabled = false;
      S.renderStats();
    }
  }

  $('#scan-button').addEventListener('click', scan);
  $('#qr-confirm').addEventListener('click', () => answer(true));
  $('#qr-deny').addEventListener('click', () => answer(false));
  $('#qr-back').addEventListener('click', () => {
    qr.id = null;
    S.showIndex();
  });
})();
