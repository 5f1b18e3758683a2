//! Sandbox mode: WeChat simulated in process, mounted under `/sandbox` (`/sandbox/wechat/...` is what the
//! client calls, over real HTTP; `/sandbox/v1/...` is the device API that plays the phone), plus the browser
//! sandbox page. Nothing here is mounted when real credentials are set.

use axum::Router;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The sandbox app's credentials and the simulator's identity seed, kept in the data dir so stored users,
/// sessions and the sandbox's WeChat users (same phone, same openid) stay valid across restarts.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredApp {
    appid: String,
    secret: String,
    identity_seed: String,
    /// Further apps under the same Open Platform account (one unionid per person), so linking accounts across
    /// apps can be tried in the sandbox. A data dir from before them gets one at its next start.
    #[serde(default)]
    more_apps: Vec<MoreApp>,
}

#[derive(Serialize, Deserialize)]
struct MoreApp {
    appid: String,
    secret: String,
}

/// The simulator configuration of sandbox mode, read from `path` or created there (mode 0600).
pub fn load_or_create_config(path: &Path) -> std::io::Result<wxsim::SimConfig> {
    let invalid = |why: String| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {why}", path.display()),
        )
    };
    let stored: StoredApp = match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let app = wxsim::AppCredentials::generate();
            let stored = StoredApp {
                appid: app.appid,
                secret: app.secret,
                identity_seed: hex::encode(rand::random::<[u8; 32]>()),
                more_apps: Vec::new(),
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            stored
        }
        Err(e) => return Err(e),
    };
    let stored = if stored.more_apps.is_empty() {
        let second = wxsim::AppCredentials::generate();
        let stored = StoredApp {
            more_apps: vec![MoreApp {
                appid: second.appid,
                secret: second.secret,
            }],
            ..stored
        };
        crate::private_file::replace(path, &serde_json::to_string_pretty(&stored)?)?;
        stored
    } else {
        stored
    };
    let seed: [u8; 32] = hex::decode(&stored.identity_seed)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| invalid("identitySeed must be 64 hex characters".into()))?;
    let mut apps = vec![wxsim::AppCredentials {
        appid: stored.appid,
        secret: stored.secret,
    }];
    apps.extend(
        stored
            .more_apps
            .into_iter()
            .map(|app| wxsim::AppCredentials {
                appid: app.appid,
                secret: app.secret,
            }),
    );
    let mut config = wxsim::SimConfig::with_apps(apps);
    config.identity_seed = Some(seed);
    Ok(config)
}

/// The sandbox's message push for `appid`: a fresh Token (and key) each start, and the simulator's push target
/// set to this service's `/wechat/push/{appid}`, so `POST /sandbox/v1/users/revoke` works out of the box. The
/// first app pushes in safe mode as JSON, the others in plaintext as XML: both of WeChat's ways are there to try.
pub fn push(
    sim: &wxsim::Simulator,
    appid: &str,
    host: std::net::SocketAddr,
    safe_json: bool,
) -> Result<weixin::push::PushKeys, String> {
    let token = hex::encode(rand::random::<[u8; 12]>());
    let key = safe_json.then(|| {
        use base64::Engine as _;
        let bytes = rand::random::<[u8; 32]>();
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)[..43]
            .replace(['+', '/'], "A")
    });
    let keys = weixin::push::PushKeys::new(&token, key.as_deref()).map_err(|e| e.to_string())?;
    sim.set_push_target(
        appid,
        wxsim::PushTarget {
            url: format!("http://{host}/wechat/push/{appid}"),
            token,
            encoding_aes_key: key,
            format: if safe_json {
                wxsim::PushFormat::Json
            } else {
                wxsim::PushFormat::Xml
            },
        },
    )
    .map_err(|e| e.to_string())?;
    Ok(keys)
}

/// The appids of the sandbox stored at `path`, if there is one (nothing is created).
pub fn appids(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(stored) = serde_json::from_str::<StoredApp>(&text) else {
        return Vec::new();
    };
    std::iter::once(stored.appid)
        .chain(stored.more_apps.into_iter().map(|a| a.appid))
        .collect()
}

/// The `/sandbox` routes.
pub fn routes(sim: &wxsim::Simulator) -> Router {
    Router::new()
        .nest("/sandbox/wechat", sim.wechat_router())
        .nest("/sandbox/v1", sim.device_router())
        .merge(crate::sandbox_ui::routes())
}
