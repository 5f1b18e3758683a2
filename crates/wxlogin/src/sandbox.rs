//! Sandbox mode: WeChat simulated in process, mounted under `/sandbox` (`/sandbox/wechat/...` is what the
//! client calls, over real HTTP; `/sandbox/v1/...` is the device API that plays the phone), plus the browser
//! sandbox page. Nothing here is mounted when real credentials are set.

use axum::Router;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The sandbox app's credentials, kept in the data dir so users and sessions stay valid across restarts.
#[derive(Serialize, Deserialize)]
struct StoredApp {
    appid: String,
    secret: String,
}

/// Reads the sandbox app from `path`, or creates it (mode 0600).
pub fn load_or_create_app(path: &Path) -> std::io::Result<wxsim::AppCredentials> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let app: StoredApp = serde_json::from_str(&text)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            Ok(wxsim::AppCredentials {
                appid: app.appid,
                secret: app.secret,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let app = wxsim::AppCredentials::generate();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let text = serde_json::to_string_pretty(&StoredApp {
                appid: app.appid.clone(),
                secret: app.secret.clone(),
            })?;
            crate::private_file::create(path, &text)?;
            Ok(app)
        }
        Err(e) => Err(e),
    }
}

/// The `/sandbox` routes.
pub fn routes(sim: &wxsim::Simulator) -> Router {
    Router::new()
        .nest("/sandbox/wechat", sim.wechat_router())
        .nest("/sandbox/v1", sim.device_router())
        .merge(crate::sandbox_ui::routes())
}
