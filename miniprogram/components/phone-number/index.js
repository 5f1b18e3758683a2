// <phone-number>: the seed's way 2. The seed used a <wx-phone-number> tag, which is no WeChat component (and the
// `wx-` prefix is WeChat's own), so this one has its own tag and keeps the seed's contract:
//   <wx-phone-number bindphonenumberget="h">  →  <phone-number bind:phonenumberget="h">
//   e.detail = { code, errMsg, errno }  (same as the bare button's, Skyline's extra nesting removed)
// It wraps <button open-type="getPhoneNumber|getRealtimePhoneNumber"> and shows the privacy line.
const config = require('../../config');
const { normalizePhoneDetail } = require('../../utils/auth');

Component({
  options: {
    styleIsolation: 'isolated',
  },

  properties: {
    // 'getPhoneNumber' (快速验证) or 'getRealtimePhoneNumber' (实时验证); empty: config.phoneButtonKind.
    kind: { type: String, value: '' },
    text: { type: String, value: '手机号快捷登录' },
    loading: { type: Boolean, value: false },
    disabled: { type: Boolean, value: false },
    showPrivacy: { type: Boolean, value: true },
  },

  data: {
    openType: config.phoneButtonKind,
    contractName: '《隐私保护指引》',
  },

  observers: {
    kind(kind) {
      this.setData({ openType: kind || config.phoneButtonKind });
    },
  },

  lifetimes: {
    attached() {
      if (typeof wx.getPrivacySetting !== 'function') return; // base library < 2.32.3
      wx.getPrivacySetting({
        success: (res) => {
          if (res && res.privacyContractName) this.setData({ contractName: res.privacyContractName });
        },
      });
    },
  },

  methods: {
    // Bound to both bindgetphonenumber and bindgetrealtimephonenumber: only the open-type's own event fires.
    onPhoneNumber(e) {
      this.triggerEvent('phonenumberget', normalizePhoneDetail(e.detail));
    },

    openContract() {
      if (typeof wx.openPrivacyContract !== 'function') return;
      wx.openPrivacyContract({
        fail: () => wx.showToast({ title: '无法打开隐私保护指引', icon: 'none' }),
      });
    },
  },
});
