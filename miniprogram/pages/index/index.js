// The page after login: the masked phone (from storage at once, then from GET /api/v1/me), change phone, logout.
const auth = require('../../utils/auth');

Page({
  data: {
    phone: '',
    openid: '',
    busy: false,
  },

  onShow() {
    const session = auth.getSession();
    if (!session) {
      wx.reLaunch({ url: '/pages/login/login' });
      return undefined;
    }
    this.setData({ phone: session.phone });
    return this.refresh();
  },

  async refresh() {
    try {
      const me = await auth.fetchMe();
      this.setData({ phone: me.phone, openid: me.openid || '' });
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

  async onLogout() {
    await auth.logout();
    wx.reLaunch({ url: '/pages/login/login?loggedOut=1' });
  },
});
