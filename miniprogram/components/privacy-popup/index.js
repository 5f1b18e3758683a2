// The privacy-authorization popup WeChat asks for (in force since 2023-10-17): before a privacy API such as the
// phone button runs, wx.onNeedPrivacyAuthorization hands us `resolve`; we show our own popup and answer with
// {event:'agree', buttonId} from a button with open-type="agreePrivacyAuthorization", or {event:'disagree'}.
// https://developers.weixin.qq.com/miniprogram/dev/framework/user-privacy/PrivacyAuthorize.html
//
// wx.onNeedPrivacyAuthorization keeps one listener for the whole app, so the component registers itself when it
// is attached and again whenever its page shows: the visible page's popup is the one that answers.
const AGREE_BUTTON_ID = 'privacy-agree'; // the id of the agree button in index.wxml

Component({
  options: {
    styleIsolation: 'isolated',
  },

  data: {
    show: false,
    contractName: '《隐私保护指引》',
  },

  lifetimes: {
    attached() {
      this.listen();
    },
    detached() {
      // A popup that goes away without an answer must not leave WeChat waiting.
      this.answer({ event: 'disagree' });
    },
  },

  pageLifetimes: {
    show() {
      this.listen();
    },
  },

  methods: {
    listen() {
      if (typeof wx.onNeedPrivacyAuthorization !== 'function') return; // base library < 2.32.3
      wx.onNeedPrivacyAuthorization((resolve) => {
        this.answer({ event: 'disagree' }); // an older request still open
        this.pendingResolve = resolve;
        this.setData({ show: true });
        resolve({ event: 'exposureAuthorization' });
      });
      if (typeof wx.getPrivacySetting === 'function') {
        wx.getPrivacySetting({
          success: (res) => {
            if (res && res.privacyContractName) this.setData({ contractName: res.privacyContractName });
          },
        });
      }
    },

    answer(result) {
      const resolve = this.pendingResolve;
      this.pendingResolve = null;
      if (resolve) resolve(result);
    },

    // bindagreeprivacyauthorization of the open-type="agreePrivacyAuthorization" button.
    onAgree() {
      this.answer({ event: 'agree', buttonId: AGREE_BUTTON_ID });
      this.setData({ show: false });
      this.triggerEvent('agree');
    },

    onDisagree() {
      this.answer({ event: 'disagree' });
      this.setData({ show: false });
      this.triggerEvent('disagree');
    },

    noop() {},

    openContract() {
      if (typeof wx.openPrivacyContract !== 'function') return;
      wx.openPrivacyContract({
        fail: () => wx.showToast({ title: '无法打开隐私保护指引', icon: 'none' }),
      });
    },
  },
});
