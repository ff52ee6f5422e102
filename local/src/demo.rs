//! The demo page (`GET /`) and what it loads from the dev server: the JS
//! client itself (`GET /gatehouse-client.js`, the very ES module the package
//! ships, `clients/js/dist/index.mjs`, so the page runs the package) and
//! where the emulators are (`GET /demo/config.json`), and the page's own
//! back end (`POST /demo/report`, `POST /demo/check`). None of these is an API route: API
//! Gateway serves none of them.

use hyper::body::Bytes;
use serde::Serialize;

use crate::emulators::{DEV_CAPTCHA_APP_ID, Emulators};
use crate::serve::{HttpResponse, with_body};
use crate::tencent_emulator::SCRIPT_PATH;

/// The demo page served at `/`.
pub const DEMO_PAGE: &str = include_str!("demo.html");
/// `gatehouse-client`'s ES module, as published from `clients/js`.
pub const CLIENT_JS: &str = include_str!("../../clients/js/dist/index.mjs");
/// Where the page imports the client from.
pub const CLIENT_PATH: &str = "/gatehouse-client.js";
/// The page's stand-in for a business back end reporting a wrong password:
/// the dev server calls `POST /guard/report` in process for it, as a back
/// end would with its IAM credentials, which a browser must never hold.
pub const REPORT_PATH: &str = "/demo/report";
/// The page's stand-in for a business back end that signs a user in by
/// phone: the dev server calls `POST /guard/check` in process with the SMS
/// pass, as the back end would with its IAM credentials.
pub const CHECK_PATH: &str = "/demo/check";
/// Each of the page's back-end paths, and the `AWS_IAM` route it calls.
pub const BACK_END_PATHS: [(&str, &str); 2] =
    [(REPORT_PATH, "/guard/report"), (CHECK_PATH, "/guard/check")];
/// Where the page reads its [`DemoConfig`].
pub const CONFIG_PATH: &str = "/demo/config.json";
/// Tencent's own web SDK, for a dev server configured with real keys.
pub const TENCENT_SDK: &str = "https://turing.captcha.qcloud.com/TJCaptcha.js";

/// What the demo page needs to know about this dev server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoConfig {
    /// The scene the sign-up form is guarded in: that of `POST
    /// /demo/guarded` in `GUARD_ROUTES`.
    pub scene: String,
    /// The WeChat emulator's base URL, where the page's `wx.login` asks
    /// for a code; none when a real `WX_APPID` is configured.
    pub wechat_emulator: Option<String>,
    /// Where `TencentCaptcha` comes from: the Tencent emulator's stand-in,
    /// or Tencent's own SDK with real keys.
    pub tencent_script: String,
    /// The `CaptchaAppId` for `new TencentCaptcha(appId, …)`.
    pub captcha_app_id: String,
    /// The SMS emulator's base URL, whose inbox the page shows as a
    /// phone would; none when a real `SMS_SDK_APP_ID` is configured.
    pub sms_emulator: Option<String>,
}

impl DemoConfig {
    /// The page's configuration over `emulators` (the real services where
    /// one is missing), for the guarded `scene`.
    pub fn new(scene: &str, emulators: &Emulators) -> Self {
        let (tencent_script, captcha_app_id) = match &emulators.tencent {
            Some(tencent) => (
                format!("{}{SCRIPT_PATH}", tencent.base_url()),
                DEV_CAPTCHA_APP_ID.to_string(),
            ),
            None => (
                TENCENT_SDK.to_owned(),
                std::env::var("CAPTCHA_APP_ID").unwrap_or_default(),
            ),
        };
        Self {
            scene: scene.to_owned(),
            wechat_emulator: emulators.wechat.as_ref().map(|w| w.base_url()),
            tencent_script,
            captcha_app_id,
            sms_emulator: emulators.sms.as_ref().map(|s| s.base_url()),
        }
    }
}

/// The page, the client or the configuration, for a `GET` of their path.
pub fn handle(req: &http::Request<Bytes>, config: &DemoConfig) -> Option<HttpResponse> {
    if req.method() != http::Method::GET {
        return None;
    }
    let (content_type, body) = match req.uri().path() {
        "/" => (
            "text/html; charset=utf-8",
            Bytes::from_static(DEMO_PAGE.as_bytes()),
        ),
        CLIENT_PATH => (
            "text/javascript; charset=utf-8",
            Bytes::from_static(CLIENT_JS.as_bytes()),
        ),
        CONFIG_PATH => (
            "application/json",
            Bytes::from(serde_json::to_string(config).expect("the config serialises")),
        ),
        _ => return None,
    };
    Some(with_body(http::StatusCode::OK, content_type, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(path: &str, config: &DemoConfig) -> Option<(String, String)> {
        use http_body_util::BodyExt;
        let req = http::Request::get(path).body(Bytes::new()).unwrap();
        let resp = handle(&req, config)?;
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Some((content_type, String::from_utf8(bytes.to_vec()).unwrap()))
    }

    #[tokio::test]
    async fn serves_the_page_the_client_and_the_config() {
        let config = DemoConfig {
            scene: "demo".into(),
            wechat_emulator: Some("http://127.0.0.1:1".into()),
            tencent_script: "http://127.0.0.1:2/TJCaptcha.js".into(),
            captcha_app_id: "190000001".into(),
            sms_emulator: Some("http://127.0.0.1:3".into()),
        };
        let (kind, page) = get("/", &config).await.unwrap();
        assert!(kind.starts_with("text/html"));
        assert!(page.contains(CLIENT_PATH) && page.contains(CONFIG_PATH));
        let (kind, client) = get(CLIENT_PATH, &config).await.unwrap();
        assert!(kind.starts_with("text/javascript"));
        assert!(client.contains("createClient"));
        let (kind, json) = get(CONFIG_PATH, &config).await.unwrap();
        assert_eq!(kind, "application/json");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json).unwrap(),
            serde_json::json!({"scene": "demo", "wechatEmulator": "http://127.0.0.1:1",
                "tencentScript": "http://127.0.0.1:2/TJCaptcha.js", "captchaAppId": "190000001",
                "smsEmulator": "http://127.0.0.1:3"})
        );
        assert!(get("/captcha/create", &config).await.is_none());
        let post = http::Request::post("/").body(Bytes::new()).unwrap();
        assert!(handle(&post, &config).is_none());
    }
}
