// The page after login: the masked phone, the account and the app the login landed on (from storage at once, then
// from GET /api/v1/me, with the number of apps the account is linked in), change phone, logout, and 注销账号 (the
// account deleted on the service after a confirmation).
const auth = require('../../utils/auth');

Page({
  data: {
    phone: '',
    openid: '',
    accountId: '',
    appid: '',
    apps: 0,
    busy: false,
  },

  onShow() {
    const session = auth.getSession();
    if (!session) {
      wx.reLaunch({ url: '/pages/login/login' });
      return undefined;
    }
    this.setData({ phone: session.phone, accountId: session.accountId, appid: session.appid });
    return this.refresh();
  },

  async refresh() {
    try {
      const me = await auth.fetchMe();
      this.setData({
        phone: me.phone,
        openid: me.openid || '',
        accountId: me.accountId || '',
        appid: me.appid || '',
        apps: (me.identities || []).length,
      });
    } catch (err) {
      auth.showError(err);
      if (err.kind === 'unauthorized') wx.reLaunch({ url: '/pages/login/login' });
    }
  },

  async onChangePhone(e) {
    if (this.data.busy) return;
    this.setData({ busy: true });
    const result = await auth.changePhone(e.detail);
    this.setData({ busy: false });
    if (result.status === 'ok') {
      this.setData({ phone: result.phone });
      wx.showToast({ title: '手机号已更新', icon: 'success' });
    } else if (result.error && result.error.kind === 'unauthorized') {
      wx.reLaunch({ url: '/pages/login/login' });
    }
  },

  async onDeleteAccount() {
    if (this.data.busy) return;
    this.setData({ busy: true });
    const result = await auth.deleteAccount();
    this.setData({ busy: false });
    if (result.status === 'deleted') {
      wx.showToast({ title: '账号已注销', icon: 'success' });
      wx.reLaunch({ url: '/pages/login/login?loggedOut=1' });
    } else if (result.error && result.error.kind === 'unauthorized') {
      wx.reLaunch({ url: '/pages/login/login' });
    }
  },

  async onLogout() {
    await auth.logout();
    wx.reLaunch({ url: '/pages/login/login?loggedOut=1' });
  },
});
