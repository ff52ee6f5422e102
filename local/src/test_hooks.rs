//! Test hooks of the dev server: a route that reveals a captcha's answer, so
//! that client tests (the JS client, the uni-app components in a browser) can
//! answer a captcha right over HTTP.
//!
//! **Never available without `GATEHOUSE_TEST_HOOKS=1`.** The hooks exist only
//! when the process was started with that environment variable **and** runs
//! on the embedded store ([`MemoryStore`]): `main.rs` installs them in that
//! case alone, never with `TABLE_NAME` (DynamoDB), and no Lambda function has
//! them. Without them, `/__test/…` gets the dev server's ordinary 404 JSON.
//!
//! - `GET /__test/captcha?scene=<scene>&deviceId=<device>` →
//!   `{"code": "<stored answer>"}`: the normalised answer (lower-case text,
//!   or the result of a math captcha), whatever the captcha's state; 404 JSON
//!   when there is no captcha for that scene and device.

use std::sync::{Arc, OnceLock};

use gatehouse::store::memory::MemoryStore;
use hyper::body::Bytes;

use crate::serve::{HttpResponse, with_body};

/// The environment variable that switches the hooks on (value `1`).
pub const ENV_VAR: &str = "GATEHOUSE_TEST_HOOKS";

static STORE: OnceLock<Arc<MemoryStore>> = OnceLock::new();

/// Whether the environment asks for the hooks (`GATEHOUSE_TEST_HOOKS=1`).
pub fn requested() -> bool {
    std::env::var(ENV_VAR).as_deref() == Ok("1")
}

/// Installs the hooks over `store` when [`requested`]; returns whether the
/// hooks are on. Only `main.rs` calls this, with its embedded store.
pub fn install_from_env(store: &Arc<MemoryStore>) -> bool {
    requested() && (STORE.set(Arc::clone(store)).is_ok() || STORE.get().is_some())
}

/// The hook's answer to `req`, or `None` when the hooks are off or `req` is
/// not a hook (then the dev server routes it as usual).
pub fn handle(req: &http::Request<Bytes>) -> Option<HttpResponse> {
    answer(STORE.get().map(Arc::as_ref), req)
}

fn answer(store: Option<&MemoryStore>, req: &http::Request<Bytes>) -> Option<HttpResponse> {
    let store = store?;
    if req.method() != http::Method::GET || req.uri().path() != "/__test/captcha" {
        return None;
    }
    let (mut scene, mut device) = (None, None);
    for pair in req.uri().query().unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "scene" => scene = Some(percent_decode(value)),
            "deviceId" => device = Some(percent_decode(value)),
            _ => {}
        }
    }
    let record = match (scene, device) {
        (Some(scene), Some(device)) => store.captcha(&scene, &device),
        _ => None,
    };
    Some(match record {
        Some(record) => json(
            http::StatusCode::OK,
            serde_json::json!({ "code": record.code }),
        ),
        None => json(
            http::StatusCode::NOT_FOUND,
            serde_json::json!({
                "errCode": "not-found",
                "errMsg": "no captcha for this scene and deviceId",
            }),
        ),
    })
}

fn json(status: http::StatusCode, body: serde_json::Value) -> HttpResponse {
    with_body(status, "application/json", body.to_string())
}

/// `%XX` and `+` decoding of one query value (a bad escape is kept as is).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use gatehouse::domain::{DeviceId, Scene};
    use gatehouse::store::{CaptchaRecord, CaptchaState, CaptchaStore};
    use http_body_util::BodyExt;

    use super::*;

    fn get(uri: &str) -> http::Request<Bytes> {
        http::Request::get(uri).body(Bytes::new()).unwrap()
    }

    async fn body(resp: HttpResponse) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn reveals_the_stored_answer_only_when_installed() {
        let store = MemoryStore::new();
        store
            .create_captcha(&CaptchaRecord {
                device_uuid: DeviceId::parse("dev-1/x").unwrap(),
                scene: Scene::parse("login").unwrap(),
                code: "ab3x".into(),
                state: CaptchaState::Pending,
                ip: "127.0.0.1".into(),
                created_date: 0,
                expired_date: i64::MAX,
                attempts: 0,
            })
            .await
            .unwrap();
        let uri = "/__test/captcha?scene=login&deviceId=dev-1%2Fx";

        assert!(answer(None, &get(uri)).is_none(), "off without the store");

        let resp = answer(Some(&store), &get(uri)).unwrap();
        assert_eq!(resp.status(), http::StatusCode::OK);
        assert_eq!(body(resp).await, serde_json::json!({ "code": "ab3x" }));

        for missing in [
            "/__test/captcha?scene=login&deviceId=other",
            "/__test/captcha?scene=pay&deviceId=dev-1%2Fx",
            "/__test/captcha?scene=login",
        ] {
            let resp = answer(Some(&store), &get(missing)).unwrap();
            assert_eq!(resp.status(), http::StatusCode::NOT_FOUND, "{missing}");
            assert_eq!(body(resp).await["errCode"], "not-found");
        }
        assert!(answer(Some(&store), &get("/captcha/create")).is_none());
        let post = http::Request::post(uri).body(Bytes::new()).unwrap();
        assert!(answer(Some(&store), &post).is_none());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb+c%zz%4"), "a/b c%zz%4");
        assert_eq!(percent_decode("%E4%B8%AD"), "中");
    }
}
