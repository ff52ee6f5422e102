//! The captcha routes: `POST /captcha/create`, `/captcha/refresh` and
//! `/captcha/verify`. Each parses the request into domain values, calls
//! [`CaptchaService`] and answers with [`respond`].

use lambda_http::{Body, Request, Response};
use serde::Deserialize;

use super::code::normalize_answer;
use super::config::{HEIGHT_RANGE, WIDTH_RANGE};
use super::service::{CaptchaService, CaptchaTarget, ImageSize};
use crate::domain::Scene;
use crate::error::ApiError;
use crate::http::{device_id, json_body, respond, source_ip};
use crate::lang::Lang;
use crate::store::IssueMode;

/// Longest captcha answer looked at; anything longer cannot be right.
pub const MAX_ANSWER_CHARS: usize = 32;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CaptchaRequest {
    scene: Option<String>,
    device_id: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VerifyRequest {
    scene: Option<String>,
    device_id: Option<String>,
    captcha: Option<Answer>,
}

/// An answer as typed: text, or a number from a numeric input in math mode.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Answer {
    Text(String),
    Number(i64),
}

/// `POST /captcha/create`: a new captcha for the device and scene, replacing
/// any earlier one.
pub async fn create(svc: &CaptchaService, req: Request) -> Response<Body> {
    issue(svc, req, IssueMode::Create).await
}

/// `POST /captcha/refresh`: a new captcha in place of an existing one.
pub async fn refresh(svc: &CaptchaService, req: Request) -> Response<Body> {
    issue(svc, req, IssueMode::Refresh).await
}

/// `POST /captcha/verify`: checks an answer, passing at most once.
pub async fn verify(svc: &CaptchaService, req: Request) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let result = async {
        let body: VerifyRequest = json_body(&req)?;
        let target = target(&req, body.scene.as_deref(), body.device_id.as_deref())?;
        let answer = match body.captcha {
            Some(Answer::Text(text)) => normalize_answer(&text),
            Some(Answer::Number(n)) => n.to_string(),
            None => String::new(),
        };
        if answer.is_empty() {
            return Err(ApiError::TextRequired);
        }
        if answer.chars().count() > MAX_ANSWER_CHARS {
            return Err(ApiError::InvalidRequest(format!(
                "captcha is longer than {MAX_ANSWER_CHARS} characters"
            )));
        }
        svc.verify(&target, &answer).await
    };
    respond(lang, result.await)
}

async fn issue(svc: &CaptchaService, req: Request, mode: IssueMode) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let result = async {
        let body: CaptchaRequest = json_body(&req)?;
        let target = target(&req, body.scene.as_deref(), body.device_id.as_deref())?;
        let size = ImageSize {
            width: bounded("width", body.width, &WIDTH_RANGE)?,
            height: bounded("height", body.height, &HEIGHT_RANGE)?,
        };
        svc.issue(mode, target, size).await
    };
    respond(lang, result.await)
}

/// The scene, device and client IP of a captcha request.
fn target(
    req: &Request,
    scene: Option<&str>,
    device: Option<&str>,
) -> Result<CaptchaTarget, ApiError> {
    Ok(CaptchaTarget {
        scene: Scene::parse(scene.unwrap_or_default())?,
        device: device_id(device, req)?,
        ip: source_ip(req).map(str::to_owned),
    })
}

/// A client's width or height, accepted only inside the configured bounds.
fn bounded(
    key: &str,
    requested: Option<u32>,
    range: &std::ops::RangeInclusive<u32>,
) -> Result<Option<u32>, ApiError> {
    match requested {
        Some(value) if !range.contains(&value) => Err(ApiError::InvalidRequest(format!(
            "{key} {value} is outside {}..={}",
            range.start(),
            range.end()
        ))),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::captcha::{CaptchaConfig, CaptchaSettings, Renderer};
    use crate::clock::Clock;
    use crate::config::blocks::{PerScene, SceneBlocks};
    use crate::options::ServiceOptions;
    use crate::ratelimit::RateLimitConfig;
    use crate::store::CaptchaState;
    use crate::store::memory::MemoryStore;
    use lambda_http::RequestExt;
    use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
    use lambda_http::request::RequestContext;
    use serde_json::{Value, json};

    fn service(config: &str) -> (CaptchaService, Arc<MemoryStore>, Clock) {
        let store = Arc::new(MemoryStore::new());
        let clock = Clock::manual(1_700_000_000_000);
        let blocks = SceneBlocks::from_json(config).unwrap();
        let settings = CaptchaSettings {
            captcha: CaptchaConfig::from_blocks(&blocks).unwrap(),
            guard: blocks.per_scene().unwrap(),
        };
        let rate_limits: PerScene<RateLimitConfig> = blocks.per_scene().unwrap();
        let options = ServiceOptions::new(rate_limits).with_clock(clock.clone());
        let svc = CaptchaService::new(settings, Renderer::builtin(), store.clone(), &options);
        (svc, store, clock)
    }

    fn post(body: Value, headers: &[(&str, &str)]) -> Request {
        post_with(body, headers, "203.0.113.9")
    }

    fn post_from(body: Value, ip: &str) -> Request {
        post_with(body, &[], ip)
    }

    fn post_with(body: Value, headers: &[(&str, &str)], ip: &str) -> Request {
        let mut builder = http::Request::builder().method("POST").uri("/captcha");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        ctx.http.source_ip = Some(ip.into());
        builder
            .body(Body::Text(body.to_string()))
            .unwrap()
            .with_request_context(RequestContext::ApiGatewayV2(ctx))
    }

    fn parsed(resp: Response<Body>) -> (u16, Value) {
        let status = resp.status().as_u16();
        let Body::Text(text) = resp.body() else {
            panic!("expected a text body")
        };
        (status, serde_json::from_str(text).unwrap())
    }

    #[tokio::test]
    async fn create_then_verify_with_the_stored_answer_passes_once() {
        let (svc, store, _) = service("{}");
        let (status, body) =
            parsed(create(&svc, post(json!({"scene": "login", "deviceId": "d1"}), &[])).await);
        assert_eq!(status, 200, "{body}");
        assert!(
            body["captchaBase64"]
                .as_str()
                .unwrap()
                .starts_with("data:image/png;base64,")
        );

        let row = store.captcha("login", "d1").unwrap();
        assert_eq!(row.ip, "203.0.113.9");
        assert_eq!(row.expired_date - row.created_date, 180_000);
        let typed = format!("  {} ", row.code.to_uppercase());
        let verify_req = || {
            post(
                json!({"scene": "login", "deviceId": "d1", "captcha": typed}),
                &[],
            )
        };
        assert_eq!(parsed(verify(&svc, verify_req()).await).0, 200);
        let (status, body) = parsed(verify(&svc, verify_req()).await);
        assert_eq!(
            (status, body["errCode"].as_str()),
            (400, Some("uni-captcha-verify-fail"))
        );
    }

    #[tokio::test]
    async fn device_id_may_come_from_the_header() {
        let (svc, store, _) = service("{}");
        let req = post(json!({"scene": "login"}), &[("x-device-id", "hdr-device")]);
        assert_eq!(parsed(create(&svc, req).await).0, 200);
        assert!(store.captcha("login", "hdr-device").is_some());
    }

    #[tokio::test]
    async fn refresh_needs_an_existing_captcha_and_replaces_it() {
        let (svc, store, _) = service("{}");
        let body = json!({"scene": "pay", "deviceId": "d2"});
        let (status, reply) = parsed(refresh(&svc, post(body.clone(), &[])).await);
        assert_eq!(
            (status, reply["errCode"].as_str()),
            (404, Some("uni-captcha-refresh-fail"))
        );
        assert!(store.is_empty(), "a failed refresh writes nothing");

        create(&svc, post(body.clone(), &[])).await;
        let first = store.captcha("pay", "d2").unwrap();
        assert_eq!(parsed(refresh(&svc, post(body, &[])).await).0, 200);
        let second = store.captcha("pay", "d2").unwrap();
        assert_eq!(second.state, CaptchaState::Pending);
        assert!(first.code != second.code || first.created_date <= second.created_date);
    }

    #[tokio::test]
    async fn expired_captcha_is_overdue() {
        let (svc, store, clock) = service(r#"{"expiresDate": 60}"#);
        create(&svc, post(json!({"scene": "login", "deviceId": "d3"}), &[])).await;
        let code = store.captcha("login", "d3").unwrap().code;
        clock.advance(60_000);
        let (status, body) = parsed(
            verify(
                &svc,
                post(
                    json!({"scene": "login", "deviceId": "d3", "captcha": code}),
                    &[],
                ),
            )
            .await,
        );
        assert_eq!(
            (status, body["errCode"].as_str()),
            (400, Some("uni-captcha-verify-overdue"))
        );
    }

    #[tokio::test]
    async fn math_answers_may_be_sent_as_numbers() {
        let (svc, store, _) = service(r#"{"mathExpr": true}"#);
        create(&svc, post(json!({"scene": "math", "deviceId": "d4"}), &[])).await;
        let answer: i64 = store.captcha("math", "d4").unwrap().code.parse().unwrap();
        let req = post(
            json!({"scene": "math", "deviceId": "d4", "captcha": answer}),
            &[],
        );
        assert_eq!(parsed(verify(&svc, req).await).0, 200);
    }

    #[tokio::test]
    async fn bad_input_gets_the_spec_error_codes() {
        let (svc, _, _) = service("{}");
        let cases = [
            (json!({"deviceId": "d"}), "uni-captcha-scene-required"),
            (
                json!({"scene": "bad scene", "deviceId": "d"}),
                "uni-captcha-scene-required",
            ),
            (
                json!({"scene": "s".repeat(65), "deviceId": "d"}),
                "uni-captcha-scene-required",
            ),
            (json!({"scene": "login"}), "uni-captcha-deviceId-required"),
            (
                json!({"scene": "login", "deviceId": "d", "width": 5}),
                "invalid-request",
            ),
            (
                json!({"scene": "login", "deviceId": "d", "height": 100000}),
                "invalid-request",
            ),
            (
                json!({"scene": "login", "deviceId": "d", "width": "wide"}),
                "invalid-request",
            ),
            (
                json!({"scene": "login", "deviceId": "d", "extra": 1}),
                "invalid-request",
            ),
        ];
        for (body, code) in cases {
            let (status, reply) = parsed(create(&svc, post(body.clone(), &[])).await);
            assert_eq!(
                (status, reply["errCode"].as_str()),
                (400, Some(code)),
                "{body}"
            );
        }
        let verify_cases = [
            (
                json!({"scene": "login", "deviceId": "d"}),
                "uni-captcha-text-required",
            ),
            (
                json!({"scene": "login", "deviceId": "d", "captcha": "   "}),
                "uni-captcha-text-required",
            ),
            (
                json!({"scene": "login", "deviceId": "nobody", "captcha": "abcd"}),
                "uni-captcha-verify-fail",
            ),
            (
                json!({"scene": "login", "deviceId": "d", "captcha": ["a"]}),
                "invalid-request",
            ),
        ];
        for (body, code) in verify_cases {
            let (status, reply) = parsed(verify(&svc, post(body.clone(), &[])).await);
            assert_eq!(
                (status, reply["errCode"].as_str()),
                (400, Some(code)),
                "{body}"
            );
        }
    }

    #[tokio::test]
    async fn english_messages_follow_accept_language() {
        let (svc, _, _) = service("{}");
        let req = post(
            json!({"deviceId": "d"}),
            &[("accept-language", "en-US,en;q=0.9")],
        );
        let (_, body) = parsed(create(&svc, req).await);
        assert!(body["errMsg"].as_str().unwrap().is_ascii());
        let (_, body) = parsed(create(&svc, post(json!({"deviceId": "d"}), &[])).await);
        assert!(!body["errMsg"].as_str().unwrap().is_ascii());
    }

    #[tokio::test]
    async fn create_over_the_device_limit_is_429_and_writes_nothing() {
        let (svc, store, clock) = service(
            r#"{"rateLimit": {"windowSeconds": 60, "createPerDevice": 2, "createPerIp": 0}}"#,
        );
        let body = json!({"scene": "login", "deviceId": "flood"});
        for _ in 0..2 {
            assert_eq!(parsed(create(&svc, post(body.clone(), &[])).await).0, 200);
        }
        let before = store.captcha("login", "flood").unwrap();
        let rows = store.len();
        let resp = create(&svc, post(body.clone(), &[])).await;
        // 1_700_000_000_000 is 20 s into its 60 s window.
        assert_eq!(resp.headers()["retry-after"], "40");
        let (status, reply) = parsed(resp);
        assert_eq!(
            (status, reply["errCode"].as_str()),
            (429, Some("rate-limited"))
        );
        assert_eq!(
            store.captcha("login", "flood").unwrap(),
            before,
            "not replaced"
        );
        assert_eq!(store.len(), rows, "no row written");
        assert_eq!(
            store.counter("create|dev|*|1699999980|flood"),
            Some(2),
            "a refused request is not counted"
        );
        // Another device is not limited; the next window admits this one again.
        let other = json!({"scene": "login", "deviceId": "calm"});
        assert_eq!(parsed(create(&svc, post(other, &[])).await).0, 200);
        clock.advance(40_000);
        assert_eq!(parsed(create(&svc, post(body, &[])).await).0, 200);
    }

    #[tokio::test]
    async fn per_ip_limits_span_devices_and_unconfigured_scenes() {
        let (svc, _, _) = service(
            r#"{"rateLimit": {"createPerIp": 3}, "scene": {"pay": {"rateLimit": {"createPerIp": 1}}}}"#,
        );
        // Scenes without a block share one bucket: inventing names gains nothing.
        for (i, scene) in ["a", "b", "c"].iter().enumerate() {
            let body = json!({"scene": scene, "deviceId": format!("d{i}")});
            assert_eq!(parsed(create(&svc, post(body, &[])).await).0, 200);
        }
        let body = json!({"scene": "zzz", "deviceId": "d9"});
        assert_eq!(parsed(create(&svc, post(body.clone(), &[])).await).0, 429);
        // Another IP has its own allowance.
        assert_eq!(
            parsed(create(&svc, post_from(body, "198.51.100.7")).await).0,
            200
        );
        // A scene with its own block has its own counter and limit.
        let pay = json!({"scene": "pay", "deviceId": "p1"});
        assert_eq!(parsed(create(&svc, post(pay.clone(), &[])).await).0, 200);
        assert_eq!(parsed(create(&svc, post(pay, &[])).await).0, 429);
    }

    #[tokio::test]
    async fn refresh_and_verify_are_limited_too() {
        let (svc, store, _) = service(
            r#"{"maxAttempts": 10, "rateLimit": {"refreshPerDevice": 1, "verifyPerIp": 2}}"#,
        );
        let body = json!({"scene": "login", "deviceId": "r1"});
        create(&svc, post(body.clone(), &[])).await;
        assert_eq!(parsed(refresh(&svc, post(body.clone(), &[])).await).0, 200);
        let kept = store.captcha("login", "r1").unwrap();
        let (status, reply) = parsed(refresh(&svc, post(body, &[])).await);
        assert_eq!(
            (status, reply["errCode"].as_str()),
            (429, Some("rate-limited"))
        );
        assert_eq!(store.captcha("login", "r1").unwrap(), kept);

        let guess = |answer: &str| {
            post(
                json!({"scene": "login", "deviceId": "r1", "captcha": answer}),
                &[],
            )
        };
        assert_eq!(parsed(verify(&svc, guess("zzzz")).await).0, 400);
        assert_eq!(parsed(verify(&svc, guess("yyyy")).await).0, 400);
        // Past the limit even the right answer gets no verdict.
        let (status, reply) = parsed(verify(&svc, guess(&kept.code)).await);
        assert_eq!(
            (status, reply["errCode"].as_str()),
            (429, Some("rate-limited"))
        );
        let other_ip = post_from(
            json!({"scene": "login", "deviceId": "r1", "captcha": "xxxx"}),
            "198.51.100.8",
        );
        assert_eq!(parsed(verify(&svc, other_ip).await).0, 400);
    }

    #[tokio::test]
    async fn limits_can_be_switched_off() {
        let (svc, store, _) = service(r#"{"rateLimit": {"enabled": false, "createPerDevice": 1}}"#);
        let body = json!({"scene": "login", "deviceId": "free"});
        for _ in 0..3 {
            assert_eq!(parsed(create(&svc, post(body.clone(), &[])).await).0, 200);
        }
        assert_eq!(store.len(), 1, "no counter rows at all");
    }

    #[tokio::test]
    async fn requests_without_a_source_ip_share_the_unknown_bucket() {
        let (svc, store, _) = service(r#"{"rateLimit": {"createPerIp": 1, "createPerDevice": 0}}"#);
        let bare = |device: &str| {
            http::Request::builder()
                .method("POST")
                .uri("/captcha")
                .body(Body::Text(
                    json!({"scene": "s", "deviceId": device}).to_string(),
                ))
                .unwrap()
        };
        assert_eq!(parsed(create(&svc, bare("u1")).await).0, 200);
        assert_eq!(parsed(create(&svc, bare("u2")).await).0, 429);
        assert_eq!(store.counter("create|ip|*|1699999980|unknown"), Some(1));
    }

    #[tokio::test]
    async fn a_client_chooses_the_size_only_where_the_scene_allows_it() {
        let (svc, store, _) = service(r#"{"scene": {"sized": {"clientSize": true}}}"#);
        for body in [
            json!({"scene": "login", "deviceId": "d", "width": 200}),
            json!({"scene": "login", "deviceId": "d", "height": 60}),
        ] {
            let (status, answer) = parsed(create(&svc, post(body.clone(), &[])).await);
            assert_eq!(status, 400, "{body}");
            assert_eq!(answer["errCode"], "uni-captcha-size-not-allowed");
            let (_, answer) = parsed(refresh(&svc, post(body, &[])).await);
            assert_eq!(answer["errCode"], "uni-captcha-size-not-allowed");
        }
        assert_eq!(
            store.len(),
            0,
            "refused before anything is counted or written"
        );
        let sized = json!({"scene": "sized", "deviceId": "d", "width": 200, "height": 60});
        assert_eq!(parsed(create(&svc, post(sized.clone(), &[])).await).0, 200);
        assert_eq!(parsed(refresh(&svc, post(sized, &[])).await).0, 200);
        let plain = json!({"scene": "login", "deviceId": "d"});
        assert_eq!(parsed(create(&svc, post(plain, &[])).await).0, 200);
        // Out of bounds stays invalid-request, whatever the scene says.
        let huge = json!({"scene": "sized", "deviceId": "d", "width": 5000});
        let (_, answer) = parsed(create(&svc, post(huge, &[])).await);
        assert_eq!(answer["errCode"], "invalid-request");
    }

    #[tokio::test]
    async fn ipv6_clients_share_the_limit_of_their_64() {
        let (svc, store, _) = service(r#"{"rateLimit": {"createPerIp": 2, "createPerDevice": 0}}"#);
        let from =
            |device: &str, ip: &str| post_from(json!({"scene": "s", "deviceId": device}), ip);
        assert_eq!(
            parsed(create(&svc, from("a", "2001:db8:7:8::1")).await).0,
            200
        );
        assert_eq!(
            parsed(create(&svc, from("b", "2001:db8:7:8:ffff::2")).await).0,
            200
        );
        assert_eq!(
            parsed(create(&svc, from("c", "2001:db8:7:8:1234:5678:9abc:def0")).await).0,
            429,
            "a third address of the same /64"
        );
        assert_eq!(
            parsed(create(&svc, from("d", "2001:db8:7:9::1")).await).0,
            200
        );
        assert_eq!(
            store.counter("create|ip|*|1699999980|2001:db8:7:8::/64"),
            Some(2)
        );
        // IPv4 stays whole, and an IPv4-mapped address is that IPv4 address.
        assert_eq!(parsed(create(&svc, from("e", "198.51.100.1")).await).0, 200);
        assert_eq!(
            parsed(create(&svc, from("f", "::ffff:198.51.100.1")).await).0,
            200
        );
        assert_eq!(parsed(create(&svc, from("g", "198.51.100.1")).await).0, 429);
        assert_eq!(parsed(create(&svc, from("h", "198.51.100.2")).await).0, 200);
        // The captcha row keeps the client's own address.
        let row = store.captcha("s", "b").expect("stored");
        assert_eq!(row.ip, "2001:db8:7:8:ffff::2");
    }
}
