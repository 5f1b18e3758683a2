// The part of `wx` that utils/auth.js uses, played by the browser: wx.login asks the sandbox device API for a login
// code of the picked user, wx.request is fetch, storage is localStorage (one namespace per sandbox user: each user is
// a phone of its own), wx.showToast is a toast in the phone frame.
(function () {
  'use strict';

  // device: { user() → the picked sandbox user or null, log(entry), toast(title, duration), loading(title|null) }
  function createWxShim(device) {
    function done(opts, ok, res) {
      setTimeout(() => {
        if (ok && opts.success) opts.success(res);
        if (!ok && opts.fail) opts.fail(res);
        if (opts.complete) opts.complete(res);
      }, 0);
    }

    function storageKey(key) {
      const user = device.user();
      return `wxsandbox:${user ? user.openid : 'nobody'}:${key}`;
    }

    return {
      login(opts = {}) {
        const user = device.user();
        if (!user) {
          done(opts, false, { errMsg: 'login:fail no sandbox user picked' });
          return;
        }
        device
          .deviceCall('/sandbox/v1/login-code', { openid: user.openid }, 'wx.login')
          .then((body) => done(opts, true, { code: body.code, errMsg: 'login:ok' }))
          .catch((e) => done(opts, false, { errMsg: `login:fail ${e.message}` }));
      },

      request(opts = {}) {
        const method = (opts.method || 'GET').toUpperCase();
        const controller = new AbortController();
        let timedOut = false;
        const timer = opts.timeout
          ? setTimeout(() => {
              timedOut = true;
              controller.abort();
            }, opts.timeout)
          : null;
        const url = new URL(opts.url, location.href);
        const entry = device.log({ kind: 'request', method, path: url.pathname, body: opts.data });
        // WeChat's wx.request names the mini program in its Referer (servicewechat.com/{appid}/…); a page cannot set
        // a Referer, so the shim sends the equivalent header the service also reads.
        const user = device.user();
        const headers = Object.assign({}, opts.header || {});
        if (user && user.appid) headers['X-WX-AppId'] = user.appid;
        fetch(url, {
          method,
          headers,
          // wx.request sends a string as it is (a form-encoded body), anything else as JSON.
          body: method === 'GET' || opts.data === undefined ? undefined : typeof opts.data === 'string' ? opts.data : JSON.stringify(opts.data),
          signal: controller.signal,
        })
          .then(async (res) => {
            const text = await res.text();
            let data = text;
            try {
              data = JSON.parse(text);
            } catch (e) {
              // wx.request hands over the raw text when it is not JSON; so do we.
            }
            entry.answer(res.status, data);
            const header = Object.fromEntries(res.headers);
            done(opts, true, { statusCode: res.status, data, header, errMsg: 'request:ok' });
          })
          .catch((e) => {
            const res = timedOut
              ? { errMsg: 'request:fail timeout', errno: 5 }
              : { errMsg: `request:fail ${e.message}`, errno: 600001 };
            entry.answer(0, res.errMsg);
            done(opts, false, res);
          })
          .finally(() => clearTimeout(timer));
      },

      setStorageSync(key, value) {
        localStorage.setItem(storageKey(key), JSON.stringify(value));
        device.storageChanged();
      },
      getStorageSync(key) {
        const raw = localStorage.getItem(storageKey(key));
        return raw === null ? '' : JSON.parse(raw);
      },
      removeStorageSync(key) {
        localStorage.removeItem(storageKey(key));
        device.storageChanged();
      },

      showToast(opts = {}) {
        device.toast(opts.title || '', opts.duration || 1500);
        done(opts, true, { errMsg: 'showToast:ok' });
      },
      showLoading(opts = {}) {
        device.loading(opts.title || '加载中');
        done(opts, true, { errMsg: 'showLoading:ok' });
      },
      hideLoading(opts = {}) {
        device.loading(null);
        done(opts, true, { errMsg: 'hideLoading:ok' });
      },
      showModal(opts = {}) {
        // eslint-disable-next-line no-alert
        const confirm = window.confirm([opts.title, opts.content].filter(Boolean).join('\n'));
        done(opts, true, { confirm, cancel: !confirm, errMsg: 'showModal:ok' });
      },
      reLaunch(opts = {}) {
        device.navigate(opts.url || '');
        done(opts, true, { errMsg: 'reLaunch:ok' });
      },
      openPrivacyContract(opts = {}) {
        device.toast('（沙箱）此处打开《隐私保护指引》', 1500);
        done(opts, true, { errMsg: 'openPrivacyContract:ok' });
      },
    };
  }

  window.createWxShim = createWxShim;
})();
