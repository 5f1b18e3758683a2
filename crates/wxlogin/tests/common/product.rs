//! The product from outside: the real `wxlogin sim` with two apps under one Open Platform account and one unbound
//! app, and the real `wxlogin serve` in production mode with all three in `[[apps]]`.

use super::temp_dir;
use serde_json::{Value, json};

pub const A: &str = "wx00000000000000a1";
pub const B: &str = "wx00000000000000b2";
/// Not bound to the Open Platform account: no unionid until it is bound.
pub const C: &str = "wx00000000000000c3";
pub const SECRET_A: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
pub const SECRET_B: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
pub const SECRET_C: &str = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";
pub const DATA_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// A simulator and a service, both real processes, stopped on drop.
pub struct Product {
    pub sim: String,
    pub base: String,
    pub data_dir: std::path::PathBuf,
    pub http: reqwest::Client,
    // Both killed when the product is dropped (kill_on_drop).
    sim_child: Option<tokio::process::Child>,
    serve: Option<tokio::process::Child>,
    /// `None`: SQLite in the data dir (see [`Product::sqlite`]).
    pub database_url: Option<String>,
    /// The settings `serve` runs with: its flags (but the listen address) and environment, for the CLI.
    settings: Vec<String>,
    env: Vec<(String, String)>,
}

/// What [`Product::start_with`] varies.
#[derive(Default)]
pub struct Options<'a> {
    /// The `[accounts]` table's body.
    pub accounts: &'a str,
    /// More lines for the `[[apps]]` entries of A, B and C.
    pub per_app: [&'a str; 3],
    /// More environment for `serve` (it gets no other: see `serve_command`).
    pub env: Vec<(&'a str, String)>,
    /// `WXLOGIN_DATABASE_URL` (default: SQLite in the data dir).
    pub database_url: Option<String>,
}

impl Product {
    /// `accounts`: the `[accounts]` table's body.
    pub async fn start(accounts: &str) -> Self {
        Self::start_with(Options {
            accounts,
            ..Options::default()
        })
        .await
    }

    pub async fn start_with(options: Options<'_>) -> Self {
        let bin = env!("CARGO_BIN_EXE_wxlogin");
        let http = reqwest::Client::new();
        let mut sim = tokio::process::Command::new(bin);
        sim.args(["sim", "--listen", "127.0.0.1:0"])
            .args([
                "--app",
                &format!("{A}:{SECRET_A}"),
                "--app",
                &format!("{B}:{SECRET_B}"),
            ])
            .args(["--app-unbound", &format!("{C}:{SECRET_C}")])
            .env("RUST_LOG", "warn");
        let (sim, sim_addr, _) = super::spawn_listening(sim, super::sim_announced).await;
        let sim_base = format!("http://{sim_addr}");
        let mut product = Product {
            sim: sim_base.clone(),
            base: String::new(),
            data_dir: temp_dir("product"),
            http: http.clone(),
            sim_child: Some(sim),
            serve: None,
            database_url: options.database_url.clone(),
            settings: Vec::new(),
            env: Vec::new(),
        };

        let config = product.data_dir.join("wxlogin.toml");
        let [extra_a, extra_b, extra_c] = options.per_app;
        std::fs::write(
            &config,
            format!(
                "[[apps]]\nappid = \"{A}\"\nsecret_env = \"SECRET_A\"\nname = \"商城\"\n{extra_a}\n\n\
                 [[apps]]\nappid = \"{B}\"\nsecret_env = \"SECRET_B\"\n{extra_b}\n\n\
                 [[apps]]\nappid = \"{C}\"\nsecret = \"{SECRET_C}\"\n{extra_c}\n\n\
                 [accounts]\n{}\n",
                options.accounts
            ),
        )
        .unwrap();
        let data = product.data_dir.join("data");
        let mut env = vec![
            ("SECRET_A", SECRET_A.to_owned()),
            ("SECRET_B", SECRET_B.to_owned()),
            ("WXLOGIN_DATA_KEY", DATA_KEY.to_owned()),
        ];
        env.extend(options.env.iter().map(|(k, v)| (*k, v.clone())));
        if let Some(url) = &options.database_url {
            env.push(("WXLOGIN_DATABASE_URL", url.clone()));
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let args = [
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
            "--data-dir".to_owned(),
            data.display().to_string(),
            "--wechat-base-url".to_owned(),
            sim_base.clone(),
            "--rate-limits".to_owned(),
            "off".to_owned(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (serve, addr, _) = super::spawn_listening(
            super::serve_command(&args, &env, super::SERVE_LOG),
            super::serve_announced,
        )
        .await;
        product.base = format!("http://{addr}");
        product.settings = vec![
            "--config".into(),
            config.display().to_string(),
            "--data-dir".into(),
            data.display().to_string(),
        ];
        product.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        product.serve = Some(serve);
        product
    }

    /// `wxlogin ARGS` with the service's own settings (its config file, data dir and environment): exit code,
    /// stdout, stderr.
    pub async fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_wxlogin"))
            .args(args)
            .args(&self.settings)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .await
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    pub async fn call(
        &self,
        url: String,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = match body {
            Some(body) => self.http.post(url).json(&body),
            None => self.http.get(url),
        };
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn device(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self
            .call(format!("{}/sandbox/v1{path}", self.sim), Some(body), &[])
            .await;
        assert!(status < 300, "{path}: {status} {answer}");
        answer
    }

    /// The person with this phone as a WeChat user of `appid`: their openid.
    pub async fn user(&self, appid: &str, phone: &str) -> String {
        let user = self
            .device("/users", json!({ "appid": appid, "phoneNumber": phone }))
            .await;
        user["openid"].as_str().unwrap().to_owned()
    }

    pub async fn login_code(&self, openid: &str) -> String {
        let code = self
            .device("/login-code", json!({ "openid": openid }))
            .await;
        code["code"].as_str().unwrap().to_owned()
    }

    /// A phone code; with `other`, for another number the user picks.
    pub async fn phone_code(&self, openid: &str, other: Option<&str>) -> String {
        let mut body = json!({ "openid": openid });
        if let Some(number) = other {
            body["phoneNumber"] = json!(number);
        }
        self.device("/phone-code", body).await["code"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(format!("{}{path}", self.base), Some(body), &[])
            .await
    }

    /// The seed's one call, as `appid`.
    pub async fn get_phone(&self, appid: &str, openid: &str, other: Option<&str>) -> (u16, Value) {
        let login = self.login_code(openid).await;
        let phone = self.phone_code(openid, other).await;
        self.post(
            "/api/getPhone",
            json!({ "appid": appid, "loginCode": login, "phoneCode": phone }),
        )
        .await
    }

    pub async fn silent(&self, appid: &str, openid: &str) -> (u16, Value) {
        let login = self.login_code(openid).await;
        self.post(
            "/api/v1/login",
            json!({ "appid": appid, "loginCode": login }),
        )
        .await
    }

    /// The phone step after a `phone_required` silent login.
    pub async fn phone_step(
        &self,
        appid: &str,
        openid: &str,
        ticket: &Value,
        other: Option<&str>,
    ) -> (u16, Value) {
        let phone = self.phone_code(openid, other).await;
        self.post(
            "/api/v1/phone",
            json!({ "appid": appid, "ticket": ticket, "phoneCode": phone }),
        )
        .await
    }

    pub async fn me(&self, appid: &str, token: &Value) -> (u16, Value) {
        let bearer = format!("Bearer {}", token.as_str().unwrap());
        self.call(
            format!("{}/api/v1/me", self.base),
            None,
            &[("authorization", &bearer), ("x-wx-appid", appid)],
        )
        .await
    }

    /// A number from the database itself.
    pub async fn count(&self, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.database_url {
            Some(url) => {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url)
                    .await
                    .unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
            None => {
                let pool = self.sqlite().await;
                let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
                pool.close().await;
                n
            }
        }
    }

    /// A blob from the database itself (one row, one column).
    pub async fn bytes(&self, sql: &str) -> Vec<u8> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.database_url {
            Some(url) => {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url)
                    .await
                    .unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
            None => {
                let pool = self.sqlite().await;
                let bytes = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
                pool.close().await;
                bytes
            }
        }
    }

    pub async fn sqlite(&self) -> sqlx::SqlitePool {
        let url = format!(
            "sqlite://{}?mode=ro",
            self.data_dir.join("data").join("wxlogin.db").display()
        );
        sqlx::SqlitePool::connect(&url).await.unwrap()
    }
}

impl Product {
    /// Rows in every table a login writes.
    pub async fn counts(&self) -> Vec<i64> {
        let mut counts = Vec::new();
        for table in ["accounts", "identities", "sessions", "audit_log"] {
            counts.push(self.count(&format!("SELECT COUNT(*) FROM {table}")).await);
        }
        counts
    }
}

pub fn ok(answer: &(u16, Value)) -> &Value {
    assert_eq!(answer.0, 200, "{}", answer.1);
    &answer.1["data"]
}

pub fn refused(answer: &(u16, Value), status: u16, error: &str) {
    assert_eq!(
        (answer.0, answer.1["error"].as_str()),
        (status, Some(error)),
        "{}",
        answer.1
    );
}
