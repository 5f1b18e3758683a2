//! The error table: each [`ApiError`] variant's HTTP status, stable `code`, `error` id, message and when it
//! happens, in one `match` the compiler checks.

use axum::http::StatusCode;
use strum::IntoEnumIterator;

use super::{ApiError, Row};

impl ApiError {
    /// This error's row of the table: one `match`, so a new variant does not compile until it has its row.
    pub fn row(&self) -> Row {
        use StatusCode as S;
        match self {
            Self::InvalidJson => Row {
                status: S::BAD_REQUEST,
                code: 1001,
                error: "invalid_json",
                msg: "请求格式错误：请求体必须是 JSON 对象",
                when: "the body is not JSON, or not a JSON object",
            },
            Self::InvalidField { .. } => Row {
                status: S::BAD_REQUEST,
                code: 1002,
                error: "invalid_field",
                msg: "请求参数错误",
                when: "a field is missing, empty, not a string, too long or malformed (msg names the field)",
            },
            Self::BodyTooLarge => Row {
                status: S::PAYLOAD_TOO_LARGE,
                code: 1003,
                error: "body_too_large",
                msg: "请求体过大",
                when: "the body is over 16 KiB",
            },
            Self::NotFound => Row {
                status: S::NOT_FOUND,
                code: 1004,
                error: "not_found",
                msg: "接口不存在",
                when: "no such route",
            },
            Self::MethodNotAllowed => Row {
                status: S::METHOD_NOT_ALLOWED,
                code: 1005,
                error: "method_not_allowed",
                msg: "请求方法不支持",
                when: "wrong HTTP method for the route",
            },
            Self::RequestTimeout => Row {
                status: S::REQUEST_TIMEOUT,
                code: 1006,
                error: "request_timeout",
                msg: "请求超时，请重试",
                when: "the request (headers, body and handling) took longer than --request-timeout (30 s)",
            },
            Self::AppRequired => Row {
                status: S::BAD_REQUEST,
                code: 1007,
                error: "app_required",
                msg: "请求缺少小程序 appid",
                when: "several apps are configured and the request names none (body `appid`, `X-WX-AppId`, or WeChat's Referer)",
            },
            Self::AppUnknown => Row {
                status: S::BAD_REQUEST,
                code: 1008,
                error: "app_unknown",
                msg: "小程序 appid 未配置",
                when: "the appid the request names (body, `X-WX-AppId` or Referer) is not one of this service's apps",
            },
            Self::LoginCodeInvalid => Row {
                status: S::BAD_REQUEST,
                code: 2001,
                error: "login_code_invalid",
                msg: "登录凭证无效或已过期，请重新登录",
                when: "WeChat 40029 on jscode2session: unknown, expired (5 min) or another app's login code",
            },
            Self::LoginCodeUsed => Row {
                status: S::BAD_REQUEST,
                code: 2002,
                error: "login_code_used",
                msg: "登录凭证已被使用，请重新登录",
                when: "WeChat 40163: the login code was used before",
            },
            Self::PhoneCodeInvalid => Row {
                status: S::BAD_REQUEST,
                code: 2003,
                error: "phone_code_invalid",
                msg: "手机号授权已失效，请重新点击按钮授权",
                when: "WeChat 40029 on getuserphonenumber: unknown, expired (5 min) or used phone code; 40013: another app's phone code",
            },
            Self::PhoneCodeMismatch => Row {
                status: S::FORBIDDEN,
                code: 2004,
                error: "phone_code_mismatch",
                msg: "手机号授权与当前微信用户不一致，请重新授权",
                when: "the phone code belongs to another WeChat user than the login (WeChat's openid check)",
            },
            Self::TicketInvalid => Row {
                status: S::UNAUTHORIZED,
                code: 2005,
                error: "ticket_invalid",
                msg: "登录已过期，请重新登录",
                when: "the ticket from /api/v1/login is unknown, used, another app's, older than 5 minutes, or spent by too many refused phone codes (`phone_failures_per_ticket`)",
            },
            Self::TicketInUse => Row {
                status: S::CONFLICT,
                code: 2008,
                error: "ticket_in_use",
                msg: "正在登录中，请稍候",
                when: "another /api/v1/phone request with this ticket is in flight (a double tap): its phone code was not spent; wait for the first request's answer, and only if that failed resend this phone code with the same ticket",
            },
            Self::PhoneInUse => Row {
                status: S::CONFLICT,
                code: 2009,
                error: "phone_in_use",
                msg: "该手机号已绑定其他账号",
                when: "the verified phone belongs to another account and `phone_conflict = \"deny\"`; nothing was written",
            },
            Self::Unauthorized => Row {
                status: S::UNAUTHORIZED,
                code: 2006,
                error: "unauthorized",
                msg: "未登录或登录已过期，请重新登录",
                when: "no, a forged, an expired or a logged-out session token",
            },
            Self::RefreshInvalid => Row {
                status: S::UNAUTHORIZED,
                code: 2010,
                error: "refresh_invalid",
                msg: "登录已过期，请重新登录",
                when: "the refresh token is unknown, malformed, expired (`refresh_token_ttl` since its last use, or `refresh_absolute_ttl` since the login), or its session ended (logout, revocation)",
            },
            Self::RefreshReused => Row {
                status: S::UNAUTHORIZED,
                code: 2011,
                error: "refresh_reused",
                msg: "登录状态异常，请重新登录",
                when: "a refresh token that was already used (rotated) was presented again: the whole session is ended, its newer refresh token too (reuse detection); log in again",
            },
            Self::QrLoginNotFound => Row {
                status: S::NOT_FOUND,
                code: 2012,
                error: "qr_login_not_found",
                msg: "二维码无效，请在电脑上刷新后重新扫码",
                when: "scan, confirm or deny of a scan-login id that does not exist (not a code of this service, or purged 10 minutes after it expired)",
            },
            // 409 like the other states a scan login can no longer leave (design.md's statuses have no 410).
            Self::QrLoginExpired => Row {
                status: S::CONFLICT,
                code: 2013,
                error: "qr_login_expired",
                msg: "二维码已过期，请在电脑上刷新后重新扫码",
                when: "scan, confirm or deny of a scan login created more than 120 s ago",
            },
            Self::QrLoginUsed => Row {
                status: S::CONFLICT,
                code: 2014,
                error: "qr_login_used",
                msg: "该二维码已被使用",
                when: "scan, confirm or deny of a scan login already confirmed or denied, or scanned by another WeChat user",
            },
            Self::QrLoginNotScanned => Row {
                status: S::CONFLICT,
                code: 2015,
                error: "qr_login_not_scanned",
                msg: "请先扫码",
                when: "confirm or deny before this WeChat user's scan (POST /api/v1/qr-login/{id}/scan)",
            },
            Self::PushNotConfigured => Row {
                status: S::NOT_FOUND,
                code: 4001,
                error: "push_not_configured",
                msg: "该小程序未配置消息推送",
                when: "`/wechat/push/{appid}` of an app this service does not serve, or one without `push_token`",
            },
            Self::PushSignatureInvalid => Row {
                status: S::UNAUTHORIZED,
                code: 4002,
                error: "push_signature_invalid",
                msg: "消息推送签名错误",
                when: "a WeChat push (or URL check) whose `signature`, or in safe mode `msg_signature`, is missing or not made with this app's `push_token`; nothing changed",
            },
            Self::PushMalformed => Row {
                status: S::BAD_REQUEST,
                code: 4003,
                error: "push_malformed",
                msg: "消息推送内容无法解析",
                when: "a signed push whose ciphertext does not decrypt with `push_aes_key`, names another appid inside, or is not the JSON or XML of an event; nothing changed",
            },
            Self::PushStale => Row {
                status: S::UNAUTHORIZED,
                code: 4004,
                error: "push_stale",
                msg: "消息推送已过期",
                when: "a push whose `timestamp` is more than 5 minutes from the service's clock (an old delivery replayed); nothing changed",
            },
            Self::PushReplayed => Row {
                status: S::CONFLICT,
                code: 4005,
                error: "push_replayed",
                msg: "消息推送重复",
                when: "the same delivery (signature, timestamp and nonce) a second time; the first was handled, nothing changed",
            },
            Self::UserBlocked => Row {
                status: S::FORBIDDEN,
                code: 2007,
                error: "user_blocked",
                msg: "当前微信账号存在风险，暂时无法登录",
                when: "WeChat 40226: high-risk user",
            },
            Self::RateLimited { .. } => Row {
                status: S::TOO_MANY_REQUESTS,
                code: 3001,
                error: "rate_limited",
                msg: "操作过于频繁，请稍后再试",
                when: "too many requests from this client IP, WeChat user or app (`[rate_limits]`), or WeChat 45011; retry after the `Retry-After` seconds",
            },
            Self::WechatBusy => Row {
                status: S::SERVICE_UNAVAILABLE,
                code: 3002,
                error: "wechat_busy",
                msg: "微信服务繁忙，请稍后再试",
                when: "WeChat -1 (busy) after the retries",
            },
            Self::WechatUnavailable => Row {
                status: S::SERVICE_UNAVAILABLE,
                code: 3003,
                error: "wechat_unavailable",
                msg: "暂时无法连接微信服务，请稍后再试",
                when: "WeChat unreachable, timed out, or a gateway error",
            },
            Self::WechatConfig => Row {
                status: S::SERVICE_UNAVAILABLE,
                code: 3004,
                error: "wechat_config",
                msg: "服务配置有误，请联系管理员",
                when: "WeChat refused this deployment: AppID/AppSecret or IP (40013, 40125, 41002, 41004, 40164), frozen secret or account (40243, 50004, 50007), API not entitled (48001), daily quota used (45009), admin confirmation (89501, 89503, 89506, 89507); logged with the errcode, an operator must act",
            },
            Self::WatermarkMismatch => Row {
                status: S::BAD_GATEWAY,
                code: 3005,
                error: "watermark_mismatch",
                msg: "手机号数据校验失败，请重试",
                when: "the phone data's watermark names another app",
            },
            Self::WechatError => Row {
                status: S::BAD_GATEWAY,
                code: 3006,
                error: "wechat_error",
                msg: "微信服务返回异常，请稍后再试",
                when: "any other WeChat errcode or an unreadable answer",
            },
            Self::DatabaseUnavailable => Row {
                status: S::SERVICE_UNAVAILABLE,
                code: 3007,
                error: "database_unavailable",
                msg: "服务暂时不可用，请稍后再试",
                when: "the database cannot be reached",
            },
            Self::Internal => Row {
                status: S::INTERNAL_SERVER_ERROR,
                code: 5000,
                error: "internal_error",
                msg: "服务内部错误，请稍后再试",
                when: "a bug or an unexpected failure (logged with the request id)",
            },
        }
    }

    /// Every row, in the order of the variants (for docs/errors.md and the uniqueness checks).
    pub fn table() -> impl Iterator<Item = Row> {
        Self::iter().map(|e| e.row())
    }
}
