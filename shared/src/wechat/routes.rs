//! `POST /wx/login`, the session routes (`GET`/`DELETE /wx/session`,
//! `DELETE /wx/sessions`, `POST /wx/session/refresh`) and `POST /wx/phone`:
//! each parses the request, calls the service and answers with [`respond`].

use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::Value;

use super::client::checked_code;
use super::crypto;
use super::phone::PhoneService;
use super::service::{
    EncryptedUserData, Login, LoginService, SessionData, SessionService, SignedUserData,
};
use crate::error::ApiError;
use crate::http::{NoData, bearer_token, json_body, respond, source_ip};
use crate::lang::Lang;

/// Longest `rawData` accepted (it is signed, then echoed as `userInfo`).
pub const MAX_RAW_DATA_CHARS: usize = 4 * 1024;

/// `POST /wx/login` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LoginRequest {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    encrypted_data: Option<String>,
    #[serde(default)]
    iv: Option<String>,
    #[serde(default)]
    raw_data: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    /// End the user's other sessions.
    #[serde(default)]
    single: Option<bool>,
}

/// `POST /wx/phone` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneRequest {
    #[serde(default)]
    code: Option<String>,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

impl LoginRequest {
    /// The login this body asks for, its user data checked for shape.
    fn parse(self) -> Result<Login, ApiError> {
        let code = non_empty(self.code).ok_or(ApiError::WxCodeRequired)?;
        let encrypted = match (non_empty(self.encrypted_data), non_empty(self.iv)) {
            (Some(data), Some(iv)) => Some((data, iv)),
            (None, None) => None,
            _ => {
                return Err(ApiError::InvalidRequest(
                    "encryptedData and iv go together".into(),
                ));
            }
        };
        let signed = match (self.raw_data, non_empty(self.signature)) {
            (Some(raw), Some(sig)) if !raw.is_empty() => Some((raw, sig)),
            (None, None) => None,
            _ => {
                return Err(ApiError::InvalidRequest(
                    "rawData and signature go together".into(),
                ));
            }
        };
        let raw_info = match &signed {
            Some((raw, _)) => {
                if raw.len() > MAX_RAW_DATA_CHARS {
                    return Err(ApiError::InvalidRequest(format!(
                        "rawData is longer than {MAX_RAW_DATA_CHARS} characters"
                    )));
                }
                match serde_json::from_str::<Value>(raw) {
                    Ok(Value::Object(map)) => Some(map),
                    _ => {
                        return Err(ApiError::InvalidRequest(
                            "rawData is not a JSON object".into(),
                        ));
                    }
                }
            }
            None => None,
        };
        if let Some((data, _)) = &encrypted
            && data.len() > crypto::MAX_ENCRYPTED_DATA_CHARS
        {
            return Err(ApiError::InvalidRequest(format!(
                "encryptedData is longer than {} characters",
                crypto::MAX_ENCRYPTED_DATA_CHARS
            )));
        }

        Ok(Login {
            single: self.single.unwrap_or(false),
            code,
            encrypted: encrypted.map(|(data, iv)| EncryptedUserData { data, iv }),
            signed: match (signed, raw_info) {
                (Some((raw_data, signature)), Some(user_info)) => Some(SignedUserData {
                    raw_data,
                    user_info,
                    signature,
                }),
                _ => None,
            },
        })
    }
}

/// `POST /wx/login`.
pub async fn login(svc: &LoginService, req: Request) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let result = async {
        let login = json_body::<LoginRequest>(&req)?.parse()?;
        svc.login(login, source_ip(&req)).await
    };
    respond(lang, result.await)
}

/// `GET /wx/session` (and the protected `GET /me`): the session a bearer
/// token stands for.
pub async fn check_session(svc: &SessionService, req: Request) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let result = async {
        let record = svc.check(session_token(&req)?).await?;
        Ok(SessionData {
            openid: record.openid,
            unionid: record.unionid,
            token_expired: record.expires_ms,
        })
    };
    respond(lang, result.await)
}

/// `DELETE /wx/session`: ends the bearer token's session.
pub async fn end_session(svc: &SessionService, req: Request) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let result = async { svc.end(session_token(&req)?).await.map(|()| NoData {}) };
    respond(lang, result.await)
}

/// `DELETE /wx/sessions`: ends every session of the bearer token's user.
pub async fn end_sessions(svc: &SessionService, req: Request) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let result = async { svc.end_all(session_token(&req)?).await.map(|()| NoData {}) };
    respond(lang, result.await)
}

/// `POST /wx/session/refresh`: swaps the bearer token for a new one.
pub async fn refresh_session(svc: &SessionService, req: Request) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let result = async { svc.refresh(session_token(&req)?).await };
    respond(lang, result.await)
}

/// The bearer token of a session route, or `session-required`.
fn session_token(req: &Request) -> Result<&str, ApiError> {
    bearer_token(req).ok_or(ApiError::SessionRequired)
}

/// `POST /wx/phone` with `{code}` and a bearer session.
pub async fn phone(svc: &PhoneService, req: Request) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let result = async {
        let token = session_token(&req)?;
        let body = json_body::<PhoneRequest>(&req)?;
        let code = checked_code(
            body.code.as_deref().unwrap_or(""),
            ApiError::WxPhoneCodeRequired,
            ApiError::WxPhoneCodeInvalid,
        )?;
        svc.phone(token, code, source_ip(&req)).await
    };
    respond(lang, result.await)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::Clock;
    use crate::options::ServiceOptions;
    use crate::ratelimit::RateLimitConfig;
    use crate::secret::Secret;
    use crate::store::memory::MemoryStore;
    use crate::store::{SessionRecord, SessionStore};
    use crate::wechat::WxConfig;

    fn service(clock: Clock) -> (LoginService, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new());
        // Port 9 (discard) on loopback: these tests never reach WeChat.
        let config = WxConfig::new("wxtest", "secret")
            .unwrap()
            .with_api_base("http://127.0.0.1:9");
        let options = ServiceOptions::new(RateLimitConfig::default()).with_clock(clock);
        let svc = LoginService::new(config, store.clone(), &options).unwrap();
        (svc, store)
    }

    fn request(method: &str, auth: Option<&str>, body: &str) -> Request {
        let mut builder = http::Request::builder().method(method).uri("/wx/session");
        if let Some(auth) = auth {
            builder = builder.header("authorization", auth);
        }
        builder.body(Body::Text(body.to_owned())).unwrap()
    }

    fn body_of(resp: &Response<Body>) -> Value {
        match resp.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            other => panic!("unexpected body {other:?}"),
        }
    }

    async fn seed(store: &MemoryStore, token: &str, expires_ms: i64) {
        store
            .put_session(
                &SessionRecord {
                    token_hash: crypto::token_hash(token),
                    openid: "o-alice".into(),
                    unionid: Some("u-alice".into()),
                    phone: None,
                    created_ms: 0,
                    expires_ms,
                },
                Some(&Secret::new("HyVFkGl5F5OQWJZZaNzBBg==")),
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn session_get_checks_expiry_even_while_the_row_exists() {
        let clock = Clock::manual(1_000_000);
        let (svc, store) = service(clock.clone());
        let token = crypto::new_token();
        seed(&store, &token, 1_000_000 + 60_000).await;
        let auth = format!("Bearer {token}");

        let ok = check_session(svc.sessions(), request("GET", Some(&auth), "")).await;
        assert_eq!(ok.status(), 200);
        let v = body_of(&ok);
        assert_eq!(v["openid"], "o-alice");
        assert_eq!(v["unionid"], "u-alice");
        assert_eq!(v["tokenExpired"], 1_060_000);
        assert!(!v.to_string().contains("HyVF"));

        clock.advance(60_000);
        let expired = check_session(svc.sessions(), request("GET", Some(&auth), "")).await;
        assert_eq!(expired.status(), 401);
        assert_eq!(body_of(&expired)["errCode"], "session-expired");
        assert_eq!(store.len(), 1, "the row is still there");
    }

    #[tokio::test]
    async fn session_errors_and_delete() {
        let clock = Clock::manual(5_000);
        let (svc, store) = service(clock.clone());
        let token = crypto::new_token();
        seed(&store, &token, 50_000).await;
        let auth = format!("Bearer {token}");

        let cases = [
            (None, "session-required"),
            (Some("Basic abc"), "session-required"),
            (Some("Bearer short"), "session-invalid"),
            (
                Some("Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                "session-invalid",
            ),
        ];
        for (header, want) in cases {
            for method in ["GET", "DELETE"] {
                let req = request(method, header, "");
                let resp = match method {
                    "GET" => check_session(svc.sessions(), req).await,
                    _ => end_session(svc.sessions(), req).await,
                };
                assert_eq!(resp.status(), 401, "{header:?}");
                assert_eq!(body_of(&resp)["errCode"], want, "{method} {header:?}");
            }
        }
        // A method the path does not serve: `crate::lambda`'s tests (the
        // table answers it, before any handler).

        let del = end_session(svc.sessions(), request("DELETE", Some(&auth), "")).await;
        assert_eq!(del.status(), 200);
        assert_eq!(body_of(&del)["errCode"], 0);
        assert!(store.is_empty());
        let again = check_session(svc.sessions(), request("GET", Some(&auth), "")).await;
        assert_eq!(body_of(&again)["errCode"], "session-invalid");

        let old = crypto::new_token();
        seed(&store, &old, 5_000).await;
        let del = end_session(
            svc.sessions(),
            request("DELETE", Some(&format!("Bearer {old}")), ""),
        )
        .await;
        assert_eq!(body_of(&del)["errCode"], "session-expired");
        assert!(store.is_empty(), "an expired session is deleted too");
    }

    #[tokio::test]
    async fn login_validates_before_calling_wechat() {
        let (svc, _) = service(Clock::manual(0));
        let cases = [
            ("", "wx-code-required"),
            (r#"{"code":"  "}"#, "wx-code-required"),
            (r#"{"code":"c","extra":1}"#, "invalid-request"),
            (r#"{"code":"c","iv":"x"}"#, "invalid-request"),
            (r#"{"code":"c","encryptedData":"x"}"#, "invalid-request"),
            (r#"{"code":"c","rawData":"{}"}"#, "invalid-request"),
            (r#"{"code":"c","signature":"ab"}"#, "invalid-request"),
            (
                r#"{"code":"c","rawData":"[1]","signature":"ab"}"#,
                "invalid-request",
            ),
            (r#"{"code":"with space"}"#, "wx-code-invalid"),
            ("{", "invalid-request"),
        ];
        for (body, want) in cases {
            let resp = login(&svc, request("POST", None, body)).await;
            assert_eq!(body_of(&resp)["errCode"], want, "{body}");
        }
    }
}
