// Scan-to-log-in (issue 16): a web page shows a mini program code, the user scans it with WeChat, and this page asks
// whether to log that web page in with the user's account. A phishing page can show our code too (it asks the
// service for one and relays it), so this page is what stands between the user and handing the account over: it
// shows what is asking (IP, browser, origin, when) with a warning, and nothing but the scan is sent before a tap.
//
// Flow: options.scene (the code's id) → a session (the launch's silent login; the phone step when the service does
// not know the user) → POST /api/v1/qr-login/{id}/scan → 确认登录 (…/confirm) or 取消 (…/deny). Every call goes
// through auth.authorizedRequest, which adds the Bearer token, refreshes (single-flight) and repeats once on a 401.
const auth = require('../../utils/auth');
const config = require('../../config');
const { describeUserAgent } = require('../../utils/user-agent');

// The service's code id: 22 chars base64url (128 random bits). Checked before anything is sent: it goes into the
// request path, and anything else in a scene is not one of our codes.
const QR_ID = /^[A-Za-z0-9_-]{22}$/;

// After 取消 the cancelled state shows this long before the page goes away.
const LEAVE_DELAY_MS = 1000;

// The raw User-Agent is the web client's free text: shown small, and no longer than this.
const MAX_UA_CHARS = 512;

const INVALID = '二维码无效';

// The service's error ids (the `error` field, as utils/auth.js keys on them) of the qr-login routes: what the page
// says, and the button under it. `retry`: the page can try again itself (a new scan); otherwise only a new code
// from the computer helps.
const ERRORS = {
  qr_login_expired: { message: '二维码已过期，请在电脑上刷新', retry: false },
  qr_login_used: { message: '该二维码已被使用', retry: false },
  qr_login_not_found: { message: INVALID, retry: false },
  // Confirm or deny reached the service without our scan (e.g. it was lost): scan again, and the user sees what is
  // asking and decides again.
  qr_login_not_scanned: { message: '登录请求已失效，请重新扫码确认', retry: true, retryText: '重新扫码' },
};

// options.scene → our id, or '' when it is none. WeChat hands the scene URL-encoded; a malformed encoding makes
// decodeURIComponent throw, which is an invalid code like any other.
function sceneId(options) {
  const raw = options && options.scene;
  if (typeof raw !== 'string') return '';
  let id;
  try {
    id = decodeURIComponent(raw);
  } catch (e) {
    return '';
  }
  return QR_ID.test(id) ? id : '';
}

function pad(n) {
  return n < 10 ? `0${n}` : String(n);
}

// Unix seconds → "2026-11-28 14:03:05" in the phone's local time.
function formatTime(seconds) {
  const ms = Number(seconds) * 1000;
  if (!seconds || !Number.isFinite(ms)) return '';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// The scan answer → what the page shows.
function describeRequest(data) {
  const userAgent = typeof data.userAgent === 'string' ? data.userAgent : '';
  return {
    ip: data.ip ? String(data.ip) : '未知',
    browser: describeUserAgent(userAgent),
    userAgent: userAgent.length > MAX_UA_CHARS ? `${userAgent.slice(0, MAX_UA_CHARS)}…` : userAgent,
    origin: data.origin ? String(data.origin) : '',
    time: formatTime(data.createdAt),
  };
}

Page({
  data: {
    // 'loading' | 'phone' (the service needs the phone first) | 'ready' (what is asking, and the two buttons)
    // | 'confirmed' | 'denied' | 'error' (message, and a retry button when trying again can help)
    state: 'loading',
    request: null,
    message: '',
    canRetry: false,
    retryText: '重试',
    kind: config.phoneButtonKind,
    busy: false, // a phone login, a confirm or a deny in flight: the buttons are disabled and taps ignored
    action: '', // 'confirm' | 'deny' in flight: that button shows loading
  },

  onLoad(options) {
    this.qrId = sceneId(options);
    if (!this.qrId) {
      // Nothing is sent; the launch's login (if any) is left to the page the user goes on to.
      this.fail({ message: INVALID, retry: false });
      return undefined;
    }
    // A launch from the code starts the app too, and app.js's silent login with it: take it over (as pages/login
    // does), so it runs once. It is awaited even with a stored session: it may find the service has no account for
    // this WeChat user any more, and auth.js then drops that session rather than let it confirm anything.
    const app = typeof getApp === 'function' ? getApp() : null;
    const started = app && app.globalData ? app.globalData.launch : null;
    if (app && app.globalData) app.globalData.launch = null;
    return this.start(started);
  },

  onUnload() {
    clearTimeout(this.leaveTimer);
  },

  // A session, then the scan.
  async start(started) {
    this.setData({ state: 'loading', request: null });
    const launch = started || (auth.getSession() ? null : auth.launch());
    if (launch) {
      const result = await launch;
      if (result.status === 'phone_required') {
        this.setData({ state: 'phone' });
        return;
      }
      if (result.status !== 'ok') {
        // auth has shown the toast.
        this.fail({ message: errorText(result.error), retry: true });
        return;
      }
    }
    await this.scan();
  },

  async scan() {
    this.setData({ state: 'loading', request: null });
    try {
      const data = await auth.authorizedRequest(`/api/v1/qr-login/${this.qrId}/scan`, { data: {} });
      this.setData({ state: 'ready', request: describeRequest(data) });
    } catch (err) {
      this.failWith(err);
    }
  },

  // <phone-number>'s detail → logged in → the scan. Done as pages/login does it; on a failure auth has shown the
  // toast and the button stays for another tap.
  async onPhoneNumber(e) {
    if (this.data.busy) return;
    this.setData({ busy: true });
    const result = await auth.loginWithPhone(e.detail);
    this.setData({ busy: false });
    if (result.status === 'ok') await this.scan();
  },

  onConfirm() {
    return this.decide('confirm');
  },

  onDeny() {
    return this.decide('deny');
  },

  // POST …/confirm or …/deny, once: `busy` is set before anything is awaited, so a second tap (a double tap, or the
  // other button) is ignored until the answer.
  async decide(action) {
    if (this.data.busy || this.data.state !== 'ready') return;
    this.setData({ busy: true, action });
    try {
      await auth.authorizedRequest(`/api/v1/qr-login/${this.qrId}/${action}`, { data: {} });
      if (action === 'confirm') {
        this.setData({ state: 'confirmed' });
      } else {
        this.setData({ state: 'denied' });
        this.leaveTimer = setTimeout(() => this.leave(), LEAVE_DELAY_MS);
      }
    } catch (err) {
      if (isKnown(err) || err.kind === 'unauthorized') {
        this.failWith(err);
      } else {
        // The network or the service failed: the request is still shown and the button taps again. (A confirm whose
        // answer was lost may have gone through; tried again, the service then answers qr_login_used.)
        auth.showError(err);
      }
    } finally {
      this.setData({ busy: false, action: '' });
    }
  },

  failWith(err) {
    if (err && err.kind === 'unauthorized') {
      // No session to be had: the renewal's silent login found no account for this WeChat user (or the session was
      // ended meanwhile). Log in with the phone, then scan again.
      this.setData({ state: 'phone', request: null });
      return;
    }
    const known = isKnown(err);
    if (known) {
      this.fail(known);
      return;
    }
    auth.showError(err);
    this.fail({ message: errorText(err), retry: true });
  },

  fail({ message, retry, retryText }) {
    this.setData({
      state: 'error', request: null, message, canRetry: Boolean(retry), retryText: retryText || '重试',
    });
  },

  onRetry() {
    if (this.data.state !== 'error' || !this.data.canRetry) return undefined;
    return this.start(null);
  },

  // Off this page: back where the user came from, else (opened from the code, the only page) to the index page.
  leave() {
    clearTimeout(this.leaveTimer);
    const pages = typeof getCurrentPages === 'function' ? getCurrentPages() : [];
    if (pages && pages.length > 1) wx.navigateBack({ delta: 1 });
    else wx.reLaunch({ url: '/pages/index/index' });
  },
});

function isKnown(err) {
  return (err instanceof auth.AuthError && ERRORS[err.error]) || null;
}

function errorText(err) {
  return err instanceof auth.AuthError ? err.toast : auth.TEXT.server;
}
