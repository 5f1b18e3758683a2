// The login page: waits for the silent login started at launch, shows the phone button only when the service asks
// for the phone, and goes to pages/index once there is a session. The flow itself is in utils/auth.js.
const auth = require('../../utils/auth');
const config = require('../../config');

Page({
  data: {
    // 'loading' | 'phone' (show the phone button) | 'retry' (the launch failed) | 'loggedOut' (after logout)
    state: 'loading',
    kind: config.phoneButtonKind,
    ui: config.phoneButtonUi,
    busy: false,
  },

  onLoad(query) {
    if (query && query.loggedOut) {
      // After a logout a silent login would log the user straight back in: wait for a tap.
      this.setData({ state: 'loggedOut' });
      return;
    }
    const app = typeof getApp === 'function' ? getApp() : null;
    const started = app && app.globalData ? app.globalData.launch : null;
    if (app && app.globalData) app.globalData.launch = null;
    return this.follow(started || auth.launch());
  },

  async follow(launch) {
    this.setData({ state: 'loading' });
    this.show(await launch);
  },

  show(result) {
    if (result.status === 'ok') {
      wx.reLaunch({ url: '/pages/index/index' });
    } else if (result.status === 'phone_required') {
      this.setData({ state: 'phone' });
    } else {
      this.setData({ state: 'retry' }); // auth has shown the toast
    }
  },

  onRetry() {
    return this.follow(auth.launch());
  },

  // bindgetphonenumber / bindgetrealtimephonenumber of the bare button (way 1) and bind:phonenumberget of
  // <phone-number> (way 2): the same detail either way.
  async onPhoneNumber(e) {
    if (this.data.busy) return;
    this.setData({ busy: true });
    const result = await auth.loginWithPhone(e.detail);
    this.setData({ busy: false });
    if (result.status === 'ok') wx.reLaunch({ url: '/pages/index/index' });
  },

  openContract() {
    if (typeof wx.openPrivacyContract === 'function') wx.openPrivacyContract({});
  },
});
