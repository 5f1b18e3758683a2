// Everything a deployment changes lives here (plain CommonJS: the browser sandbox loads this file as is).
module.exports = {
  // The wxlogin service. In WeChat DevTools tick "不校验合法域名" to use http://127.0.0.1; a release build needs an
  // https domain listed under 开发管理 → 服务器域名 → request 合法域名.
  baseUrl: 'http://127.0.0.1:8080',

  // 'silent': wx.login at launch → POST /api/v1/login; the phone button only when the service answers
  //           phone_required, and its code goes with the ticket to POST /api/v1/phone (the default, and cheaper:
  //           WeChat bills every phone-button success, and a returning user never taps again).
  // 'oneCall': the seed's flow, wx.login + phone code → POST /api/getPhone after every tap.
  loginFlow: 'silent',

  // 'getPhoneNumber' (手机号快速验证, 0.03 元 a success) or 'getRealtimePhoneNumber' (手机号实时验证, 0.04 元,
  // verified live on every use). Both answer with the same detail and the same server API.
  phoneButtonKind: 'getPhoneNumber',

  // 'component': <phone-number> (the seed's way 2, with the privacy line); 'button': a bare <button
  // open-type="…"> on the login page (the seed's way 1).
  phoneButtonUi: 'component',

  // wx.request timeout in milliseconds.
  requestTimeoutMs: 10000,

  // Which mini program the login routes are for, sent as body `appid` when set. Leave it empty in a real mini
  // program: WeChat's wx.request names the app in its Referer (servicewechat.com/{appid}/…), which the service reads.
  // It is for a page that has no such Referer (a web-view, a test) talking to a service that serves several apps.
  appid: '',
};
