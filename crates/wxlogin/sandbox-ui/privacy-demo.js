// A person's data in the sandbox. On the phone, 注销账号 is the template's auth.deleteAccount() (a confirm, then
// DELETE /api/v1/me). In the panel, what the user does in WeChat's own settings: withdraw the phone authorization or
// close the WeChat account. WeChat then pushes user_authorization_revoke / user_authorization_cancellation to the
// app's push URL; here the simulator does (POST /sandbox/v1/users/revoke|cancel), signed and encrypted as WeChat
// does, to this service's /wechat/push/{appid} (sandbox mode wires its apps' pushes to itself).
(function () {
  'use strict';

  const $ = (sel) => document.querySelector(sel);
  const S = window.Sandbox;

  $('#delete-account').addEventListener('click', async () => {
    const result = await S.state.auth.deleteAccount();
    if (result.status !== 'deleted') return;
    S.note('—— 账号已注销：服务已删除该账号的全部数据 ——');
    S.toast('账号已注销');
    S.showScreen('idle');
    S.setAppState('idle', '账号已注销，再次启动将是新账号');
  });

  // What the push did to the logged-in phone shows on its next request (a 401, then the login page).
  async function inWechat(what, label) {
    const user = S.state.user;
    if (!user) {
      S.toast('请先选择用户');
      return;
    }
    try {
      const body = await S.device.deviceCall(`/sandbox/v1/users/${what}`, { openid: user.openid }, label);
      const answer = body.answer || {};
      S.note(`—— 微信推送 → /wechat/push：${answer.status} ${answer.body || ''} ——`);
      S.toast(answer.status === 200 ? `${label}：服务已处理` : `${label}：服务答 ${answer.status}`, 2500);
    } catch (e) {
      S.toast(`${label}失败：${e.message}`, 3000);
    }
  }

  $('#wechat-revoke').addEventListener('click', () => inWechat('revoke', '撤回手机号授权'));
  $('#wechat-cancel').addEventListener('click', () => inWechat('cancel', '注销微信账号'));
})();
