//! The HTTP API Lambda authorizer (payload format 2.0, simple responses):
//! the door of every protected route.
//!
//! - A route listed in `GUARD_ROUTES` (matched on the event's `routeKey`)
//!   is admitted only when its requirements hold: a pass of its scene in
//!   `X-Gatehouse-Pass` as its `pass` rule and the scene's level ask
//!   (redeemed, so it opens one door once; of the device and IP that
//!   earned it when it says `bindDevice`, `bindIp`), and a live bearer
//!   session when it says `session: true`. In place of a pass it takes the
//!   challenge itself (SPEC §13: `X-Gatehouse-Captcha` with `X-Device-Id`,
//!   or `X-Gatehouse-Ticket` + `X-Gatehouse-Randstr`), judged and spent
//!   here, once, and counted as any request of the scene. A malformed
//!   `X-Device-Id`, a malformed challenge, or a pass and a challenge
//!   together are denied, nothing spent or counted.
//! - Any other route keeps the plain session check: a live bearer session.
//!
//! An admitted request reaches its route with the authorizer's context in
//! `requestContext.authorizer.lambda`: `scene`, `level`, `reasons` (the
//! codes that set a level above `none`, comma-separated: `failures`,
//! `requests`, `always`), `degraded` (admitted by a degraded ticket pass,
//! or without the store by `onStoreError: "admit"`), `passKind`,
//! `deviceId`, `passIp`, `evilLevel`, `mobile` (for a redeemed pass; the
//! number, E.164, for an SMS pass), `openid`,
//! `unionid` and `phoneNumber` (for a checked session; the number once
//! `POST /wx/phone` kept one with it). Read it with [`authorizer_context`].
//! A session check is one DynamoDB GetItem that projects the session's
//! `session_key` out.
//! A denial is API Gateway's 403 (HTTP APIs allow no custom body): the
//! client asks `GET /guard/status` what is needed.
//!
//! Configure it with result caching off (TTL 0), so that an ended session
//! or a spent pass stops passing at once; the template gives protected
//! routes `SessionAuthorizer` (identity source `Authorization`) and guarded
//! ones `GuardAuthorizer` (no identity source: a pass alone may open them).

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde_json::{Map, Value};

pub use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerSimpleResponse as AuthorizerResponse;
pub use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request as AuthorizerRequest;

use super::config::{GuardRoutes, GuardedRoute, Level, StoreErrorPolicy};
use super::service::{Admission, Client, Guard, Observed, Proof, named_device};
use crate::error::ApiError;
use crate::http::{MAX_HEADER_VALUE_BYTES, parse_bearer};
use crate::metrics::{Event, Events, Outcome};
use crate::store::SessionRecord;
use crate::wechat::SessionService;

/// The header that carries a pass.
pub const PASS_HEADER: &str = "x-gatehouse-pass";

/// Everything the authorizer decides with, built once at start-up.
#[derive(Clone)]
pub struct Authorizer {
    sessions: SessionService,
    guard: Guard,
    routes: GuardRoutes,
}

impl Authorizer {
    pub fn new(sessions: SessionService, guard: Guard, routes: GuardRoutes) -> Self {
        Self {
            sessions,
            guard,
            routes,
        }
    }

    /// The same authorizer deciding with `guard` (one whose doors judge
    /// challenges, say).
    pub fn with_guard(self, guard: Guard) -> Self {
        Self { guard, ..self }
    }

    /// What `route_key` (`"POST /demo/guarded"`) requires, when it is
    /// guarded.
    pub fn guarded(&self, route_key: &str) -> Option<&GuardedRoute> {
        self.routes.get(route_key)
    }
}

/// A header of the event, when present, valid text and not over the cap.
fn header<'e>(event: &'e AuthorizerRequest, name: &str) -> Option<&'e str> {
    let value = event.headers.get(name)?;
    if value.len() > MAX_HEADER_VALUE_BYTES {
        return None;
    }
    value.to_str().ok().map(str::trim)
}

/// The bearer token of an authorizer request: from the `Authorization`
/// header, or failing that the first identity source.
fn token_of(event: &AuthorizerRequest) -> Option<&str> {
    if event.headers.contains_key(http::header::AUTHORIZATION) {
        return header(event, "authorization").and_then(parse_bearer);
    }
    event
        .identity_source
        .as_ref()
        .and_then(|sources| sources.first())
        .filter(|source| source.len() <= MAX_HEADER_VALUE_BYTES)
        .and_then(|source| parse_bearer(source))
}

/// What the authorizer decided about one event, with what its metrics
/// count: the answer API Gateway gets, its [`Outcome`] (`Passed`, `Denied`,
/// or for a denial the store or the deadline caused `StoreError` or
/// `DeadlineExceeded`) and the [`Events`] found on the way. An answer to
/// API Gateway has no room for either, so the verdict carries them back to
/// the Lambda's measured serve loop (`crate::lambda`).
#[derive(Debug, Clone)]
pub struct Verdict {
    pub response: AuthorizerResponse,
    pub outcome: Outcome,
    pub events: Events,
}

impl Verdict {
    fn admitted(context: Map<String, Value>, events: Events) -> Self {
        let mut response = AuthorizerResponse::default();
        response.is_authorized = true;
        response.context = Value::Object(context);
        Verdict {
            response,
            outcome: Outcome::Passed,
            events,
        }
    }

    /// A denial for `err` (logged with `route`).
    fn denied(route: &str, err: &ApiError, events: Events) -> Self {
        tracing::info!(route, reason = err.code(), "authorizer denied a request");
        let mut response = AuthorizerResponse::default();
        response.is_authorized = false;
        response.context = Value::Object(Map::new());
        let outcome = match Outcome::of(err.status().as_u16(), Some(err.code())) {
            outcome @ (Outcome::StoreError | Outcome::DeadlineExceeded) => outcome,
            _ => Outcome::Denied,
        };
        Verdict {
            response,
            outcome,
            events,
        }
    }
}

/// The live session behind the request's bearer token.
async fn session_of(
    sessions: &SessionService,
    event: &AuthorizerRequest,
) -> Result<SessionRecord, ApiError> {
    let token = token_of(event).ok_or(ApiError::SessionRequired)?;
    sessions.check(token).await
}

fn add_session(context: &mut Map<String, Value>, record: SessionRecord) {
    context.insert("openid".into(), Value::from(record.openid));
    if let Some(unionid) = record.unionid {
        context.insert("unionid".into(), Value::from(unionid));
    }
    // Kept with the session by POST /wx/phone.
    if let Some(phone) = record.phone {
        context.insert("phoneNumber".into(), Value::from(phone.phone_number));
    }
}

/// [`judge`] under a deadline (see [`crate::deadline`]): when `budget` runs
/// out first the request is denied (outcome `DeadlineExceeded`), so the
/// authorizer answers before its Lambda time-out (API Gateway would answer
/// 500 after it); a guarded route without a session whose scene says
/// `onStoreError: "admit"` is admitted `degraded` instead.
pub async fn judge_within(
    auth: &Authorizer,
    event: AuthorizerRequest,
    budget: std::time::Duration,
) -> Verdict {
    let route_key = event.route_key.clone().unwrap_or_default();
    if let Some(verdict) = crate::deadline::within(budget, judge(auth, event)).await {
        return verdict;
    }
    tracing::error!(
        budget_ms = budget.as_millis() as u64,
        "authorizer deadline passed"
    );
    let admits = auth.guarded(&route_key).filter(|route| {
        !route.session
            && auth.guard.config().scene(&route.door.scene).on_store_error
                == StoreErrorPolicy::Admit
    });
    match admits {
        Some(route) => {
            tracing::warn!(route = route_key, "admitted, degraded (onStoreError)");
            let mut context = Map::new();
            context.insert("scene".into(), Value::from(route.door.scene.as_str()));
            context.insert("level".into(), Value::from(Level::None.as_str()));
            context.insert("degraded".into(), Value::from(true));
            let mut events = Events::default();
            events.push(Event::GuardDegraded);
            Verdict::admitted(context, events)
        }
        None => Verdict::denied(&route_key, &ApiError::DeadlineExceeded, Events::default()),
    }
}

/// [`judge`]'s answer alone.
pub async fn authorize(auth: &Authorizer, event: AuthorizerRequest) -> AuthorizerResponse {
    judge(auth, event).await.response
}

/// Admits or denies one request (see the module docs). Anything but an
/// admission — no token or pass, unknown, expired, used, or a store failure
/// (logged) — is a denial, never an error. A guarded route counts the
/// request (admitted or not) for the client's IP and device at once, with
/// the session check when it has one, and then for the session's openid.
pub async fn judge(auth: &Authorizer, event: AuthorizerRequest) -> Verdict {
    let route_key = event.route_key.as_deref().unwrap_or_default();
    let Some(route) = auth.guarded(route_key) else {
        return match session_of(&auth.sessions, &event).await {
            Ok(record) => {
                let mut context = Map::new();
                add_session(&mut context, record);
                Verdict::admitted(context, Events::default())
            }
            Err(err) => Verdict::denied(route_key, &err, Events::default()),
        };
    };
    // A malformed device is refused before anything is spent or counted.
    let device = match named_device(None, &event.headers) {
        Ok(device) => device,
        Err(err) => return Verdict::denied(route_key, &err, Events::default()),
    };
    // A pass, or the challenge itself (SPEC §13); both at once, or a
    // malformed challenge, is refused before anything is spent or counted.
    let challenge = match super::challenge::from_headers(&event.headers) {
        Ok(challenge) => challenge,
        Err(err) => return Verdict::denied(route_key, &err, Events::default()),
    };
    let pass_sent = event.headers.contains_key(PASS_HEADER);
    let proof = match (header(&event, PASS_HEADER), &challenge) {
        (_, Some(_)) if pass_sent => {
            let both = ApiError::InvalidRequest("a pass and a challenge".into());
            return Verdict::denied(route_key, &both, Events::default());
        }
        (Some(token), _) => Some(Proof::Pass(token)),
        (None, challenge) => challenge.as_ref().map(Proof::Challenge),
    };
    let mut events = Events::default();
    let door = &route.door;
    let mut client = Client {
        ip: event
            .request_context
            .http
            .source_ip
            .as_ref()
            .map(ToString::to_string),
        device,
        openid: None,
        phone_number: None,
    };
    let guard = &auth.guard;
    let (observed, session) = match route.session {
        false => (guard.count(&door.scene, &client, &mut events).await, None),
        true => {
            let (by_client, session) = tokio::join!(
                guard.count(&door.scene, &client, &mut events),
                session_of(&auth.sessions, &event)
            );
            // The session is checked before the pass is spent: a request
            // without a live session must not use up its pass.
            let record = match session {
                Ok(record) => record,
                Err(err) => return Verdict::denied(route_key, &err, events),
            };
            let by_openid = guard
                .count_openid(&door.scene, &record.openid, &mut events)
                .await;
            client.openid = Some(record.openid.clone());
            client.phone_number = record.phone.as_ref().map(|p| p.phone_number.clone());
            (merged(by_client, by_openid), Some(record))
        }
    };
    let admission = guard
        .decide(door, proof, None, &client, observed, &mut events)
        .await;
    match admission {
        Ok(admission) => {
            let mut context = door_context(route, &admission);
            if let Some(record) = session {
                add_session(&mut context, record);
            }
            Verdict::admitted(context, events)
        }
        Err(refusal) => Verdict::denied(route_key, &refusal.error, events),
    }
}

/// Both observations, or the first failure.
fn merged(
    by_client: Result<Observed, ApiError>,
    by_openid: Result<Observed, ApiError>,
) -> Result<Observed, ApiError> {
    Ok(by_client?.merge(by_openid?))
}

/// The context of an admission at a guarded route: its scene, the level
/// and its reasons, and the pass redeemed.
fn door_context(route: &GuardedRoute, admission: &Admission) -> Map<String, Value> {
    let mut context = Map::new();
    context.insert("scene".into(), Value::from(route.door.scene.as_str()));
    context.insert("level".into(), Value::from(admission.level.as_str()));
    if !admission.reasons.is_empty() {
        // A context's values are strings: the codes, comma-separated.
        context.insert("reasons".into(), Value::from(admission.reasons.joined()));
    }
    if let Some(pass) = &admission.pass {
        context.insert("passKind".into(), Value::from(pass.kind.as_str()));
        if let Some(device) = &pass.device {
            context.insert("deviceId".into(), Value::from(device.as_str()));
        }
        context.insert("passIp".into(), Value::from(pass.ip.as_str()));
        if let Some(evil_level) = pass.evil_level {
            context.insert("evilLevel".into(), Value::from(evil_level));
        }
        if let Some(mobile) = &pass.mobile {
            // The number the client proved it holds (sign in by phone).
            context.insert("mobile".into(), Value::from(mobile.as_str()));
        }
    }
    // Earned without Tencent's word, or admitted without the store's: the
    // route decides.
    if admission.degraded || admission.pass.as_ref().is_some_and(|pass| pass.degraded) {
        context.insert("degraded".into(), Value::from(true));
    }
    context
}

/// What the authorizer handed a route (`requestContext.authorizer.lambda`),
/// if it ran.
pub fn authorizer_context(req: &Request) -> Option<Map<String, Value>> {
    let RequestContext::ApiGatewayV2(ctx) = req.request_context_ref()? else {
        return None;
    };
    let fields = &ctx.authorizer.as_ref()?.fields;
    Some(fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// The `openid` and `unionid` the authorizer handed to a protected route,
/// if it checked a session.
pub fn authorized_identity(req: &Request) -> Option<(String, Option<String>)> {
    let context = authorizer_context(req)?;
    let openid = context.get("openid")?.as_str()?.to_owned();
    let unionid = context
        .get("unionid")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some((openid, unionid))
}

/// The `phoneNumber` the authorizer handed to a protected route, if it
/// checked a session that has one.
pub fn authorized_phone_number(req: &Request) -> Option<String> {
    let context = authorizer_context(req)?;
    context.get("phoneNumber")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::Clock;
    use crate::config::blocks::SceneBlocks;
    use crate::domain::DeviceId;
    use crate::domain::Scene;
    use crate::guard::pass::PassToken;
    use crate::options::ServiceOptions;
    use crate::ratelimit::RateLimitConfig;
    use crate::store::memory::MemoryStore;
    use crate::store::{PassGrant, PassKind, PassStore, SessionStore};
    use crate::wechat::crypto;

    const NOW: i64 = 1_700_000_000_000;

    fn event(route_key: &str, headers: &[(&str, &str)]) -> AuthorizerRequest {
        let mut json = serde_json::json!({
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/$default/GET/me",
            "routeKey": route_key,
            "rawPath": "/me",
            "rawQueryString": "",
            "headers": {},
            "requestContext": {
                "http": {"method": "GET", "path": "/me", "protocol": "HTTP/1.1",
                         "sourceIp": "203.0.113.9", "userAgent": "test"},
                "requestId": "r1", "routeKey": route_key, "stage": "$default",
                "time": "01/Jan/2025:00:00:00 +0000", "timeEpoch": 1735689600000i64
            }
        });
        for (name, value) in headers {
            json["headers"][*name] = (*value).into();
            if *name == "authorization" {
                json["identitySource"] = serde_json::json!([value]);
            }
        }
        serde_json::from_value(json).unwrap()
    }

    struct Rig {
        auth: Authorizer,
        store: Arc<MemoryStore>,
        clock: Clock,
    }

    fn rig(config: &str, routes: &str) -> Rig {
        let clock = Clock::manual(NOW);
        let store = Arc::new(MemoryStore::new());
        let scenes = SceneBlocks::from_json(config).unwrap().per_scene().unwrap();
        let options = ServiceOptions::new(RateLimitConfig::disabled()).with_clock(clock.clone());
        let guard = Guard::new(scenes, store.clone(), &options);
        let sessions = SessionService::new(store.clone(), &options);
        let auth = Authorizer::new(sessions, guard, GuardRoutes::from_json(routes).unwrap());
        Rig { auth, store, clock }
    }

    async fn session(store: &MemoryStore, openid: &str, expires_ms: i64) -> String {
        let token = crypto::new_token();
        let record = SessionRecord {
            token_hash: crypto::token_hash(&token),
            openid: openid.into(),
            unionid: None,
            phone: None,
            created_ms: 0,
            expires_ms,
        };
        store.put_session(&record, None).await.unwrap();
        token
    }

    /// A pass of `kind` for `device` in `scene`, as a verify grants it.
    async fn granted(
        store: &MemoryStore,
        kind: PassKind,
        scene: &str,
        device: Option<&str>,
        degraded: bool,
    ) -> String {
        let token = PassToken::issue(kind);
        let grant = PassGrant {
            kind,
            secret_hash: token.secret_hash(),
            scene: Scene::parse(scene).unwrap(),
            device: device.map(|d| DeviceId::parse(d).unwrap()),
            ip: Some("203.0.113.9".into()),
            ip_net: Some("203.0.113.9".into()),
            evil_level: None,
            degraded,
            mobile: None,
            created_ms: NOW,
            expires_ms: NOW + 300_000,
        };
        store.grant_pass(&grant).await.unwrap();
        token.encode()
    }

    /// A solved captcha's pass for `device` in `scene`.
    async fn captcha_pass(store: &MemoryStore, scene: &str, device: &str) -> String {
        granted(store, PassKind::Captcha, scene, Some(device), false).await
    }

    #[tokio::test]
    async fn unguarded_routes_admit_live_sessions_only() {
        let Rig { auth, store, clock } = rig("{}", "{}");
        let token = session(&store, "o-bob", NOW + 10_000).await;
        let bearer = format!("Bearer {token}");
        let ok = authorize(&auth, event("GET /me", &[("authorization", &bearer)])).await;
        assert!(ok.is_authorized);
        assert_eq!(ok.context, serde_json::json!({"openid": "o-bob"}));
        let json = serde_json::to_value(&ok).unwrap();
        assert_eq!(json["isAuthorized"], true);
        assert!(!json.to_string().contains("HyVF"));

        for headers in [
            vec![],
            vec![("authorization", "Bearer nope")],
            vec![("authorization", token.as_str())],
        ] {
            let denied = authorize(&auth, event("GET /me", &headers)).await;
            assert!(!denied.is_authorized, "{headers:?}");
        }
        clock.advance(10_000);
        let expired = authorize(&auth, event("GET /me", &[("authorization", &bearer)])).await;
        assert!(!expired.is_authorized);
    }

    #[tokio::test]
    async fn an_always_route_admits_one_request_per_pass() {
        let Rig { auth, store, .. } = rig(
            "{}",
            r#"{"POST /signup": {"scene": "signup", "pass": "always"}}"#,
        );
        let denied = authorize(&auth, event("POST /signup", &[])).await;
        assert!(!denied.is_authorized, "no pass");
        let pass = captcha_pass(&store, "signup", "dev-1").await;
        let headers = [(PASS_HEADER, pass.as_str()), ("x-device-id", "dev-1")];
        let ok = authorize(&auth, event("POST /signup", &headers)).await;
        assert!(ok.is_authorized);
        assert_eq!(
            ok.context,
            serde_json::json!({"scene": "signup", "level": "image", "reasons": "always",
                               "passKind": "captcha",
                               "deviceId": "dev-1", "passIp": "203.0.113.9"})
        );
        let again = authorize(&auth, event("POST /signup", &headers)).await;
        assert!(!again.is_authorized, "a pass opens one door once");

        let other_scene = captcha_pass(&store, "login", "dev-1").await;
        let wrong = [(PASS_HEADER, other_scene.as_str())];
        assert!(
            !authorize(&auth, event("POST /signup", &wrong))
                .await
                .is_authorized
        );
        let other_device = captcha_pass(&store, "signup", "dev-2").await;
        let stolen = [
            (PASS_HEADER, other_device.as_str()),
            ("x-device-id", "dev-9"),
        ];
        assert!(
            !authorize(&auth, event("POST /signup", &stolen))
                .await
                .is_authorized
        );
        for junk in ["x", "é", &"A".repeat(2000)] {
            let headers = [(PASS_HEADER, junk)];
            assert!(
                !authorize(&auth, event("POST /signup", &headers))
                    .await
                    .is_authorized
            );
        }
    }

    #[tokio::test]
    async fn a_malformed_device_is_denied_and_spends_nothing() {
        let Rig { auth, store, .. } = rig(
            "{}",
            r#"{"POST /signup": {"scene": "signup", "pass": "always"}}"#,
        );
        let pass = captcha_pass(&store, "signup", "dev-1").await;
        let long = "d".repeat(129);
        for bad in ["Y Z", long.as_str(), "", "dév"] {
            let headers = [(PASS_HEADER, pass.as_str()), ("x-device-id", bad)];
            let denied = authorize(&auth, event("POST /signup", &headers)).await;
            assert!(!denied.is_authorized, "{bad:?} is no device, not none");
        }
        let headers = [(PASS_HEADER, pass.as_str()), ("x-device-id", "dev-1")];
        let ok = authorize(&auth, event("POST /signup", &headers)).await;
        assert!(ok.is_authorized, "the pass was left unspent");
    }

    #[tokio::test]
    async fn a_session_route_checks_the_session_before_spending_the_pass() {
        let Rig { auth, store, .. } = rig(
            "{}",
            r#"{"POST /pay": {"scene": "pay", "pass": "always", "session": true}}"#,
        );
        let pass = captcha_pass(&store, "pay", "dev-1").await;
        let no_session = authorize(&auth, event("POST /pay", &[(PASS_HEADER, &pass)])).await;
        assert!(!no_session.is_authorized);
        let token = session(&store, "o-amy", NOW + 60_000).await;
        let bearer = format!("Bearer {token}");
        let ok = authorize(
            &auth,
            event(
                "POST /pay",
                &[(PASS_HEADER, &pass), ("authorization", &bearer)],
            ),
        )
        .await;
        assert!(
            ok.is_authorized,
            "the pass was not spent by the denied request"
        );
        assert_eq!(ok.context["openid"], "o-amy");
        assert_eq!(ok.context["passKind"], "captcha");
    }

    #[tokio::test]
    async fn auto_routes_ask_for_a_pass_only_past_the_failure_threshold() {
        let Rig { auth, store, .. } = rig(
            r#"{"scene": {"demo": {"guard": {"mode": "adaptive", "imageAfterFailures": 2}}}}"#,
            r#"{"POST /demo/guarded": {"scene": "demo", "pass": "auto"}}"#,
        );
        let free = authorize(&auth, event("POST /demo/guarded", &[])).await;
        assert!(free.is_authorized);
        assert_eq!(
            free.context,
            serde_json::json!({"scene": "demo", "level": "none"})
        );
        let client = Client {
            ip: Some("203.0.113.9".into()),
            ..Client::default()
        };
        let scene = Scene::parse("demo").unwrap();
        for _ in 0..2 {
            auth.guard.report(&scene, &client).await.unwrap();
        }
        assert!(
            !authorize(&auth, event("POST /demo/guarded", &[]))
                .await
                .is_authorized
        );
        let pass = captcha_pass(&store, "demo", "dev-1").await;
        let ok = authorize(&auth, event("POST /demo/guarded", &[(PASS_HEADER, &pass)])).await;
        assert!(ok.is_authorized);
        assert_eq!(ok.context["level"], "image");
    }

    #[tokio::test]
    async fn a_degraded_ticket_pass_says_so_in_the_context() {
        let Rig { auth, store, .. } = rig(
            "{}",
            r#"{"POST /signup": {"scene": "signup", "pass": "always"}}"#,
        );
        let encoded = granted(&store, PassKind::Ticket, "signup", None, true).await;
        let ok = authorize(&auth, event("POST /signup", &[(PASS_HEADER, &encoded)])).await;
        assert!(ok.is_authorized);
        assert_eq!(
            ok.context,
            serde_json::json!({"scene": "signup", "level": "image", "reasons": "always",
                               "passKind": "ticket",
                               "passIp": "203.0.113.9", "degraded": true})
        );
    }

    #[tokio::test]
    async fn within_its_deadline_the_authorizer_answers_as_usual() {
        let Rig { auth, store, .. } = rig("{}", "{}");
        let token = session(&store, "o-deadline", NOW + 60_000).await;
        let bearer = format!("Bearer {token}");
        let headers = [("authorization", bearer.as_str())];
        let budget = std::time::Duration::from_secs(4);
        let ok = judge_within(&auth, event("GET /me", &headers), budget).await;
        assert!(ok.response.is_authorized);
        assert_eq!(ok.outcome, Outcome::Passed);
        let denied = judge_within(&auth, event("GET /me", &[]), budget).await;
        assert!(!denied.response.is_authorized);
        assert_eq!(denied.outcome, Outcome::Denied);
    }
}
