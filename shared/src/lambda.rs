//! Every Lambda of the bundle starts and serves the same way, here: its
//! `main` is the one call
//!
//! ```ignore
//! #[tokio::main]
//! async fn main() -> Result<(), gatehouse::lambda::Error> {
//!     gatehouse::lambda::run(const { Function::CreateCaptcha.lambda() }).await
//! }
//! ```
//!
//! [`run`] installs logging ([`crate::telemetry`]) and the metrics recorder
//! ([`crate::metrics`]), builds the function's services from its
//! environment (`TABLE_NAME` and the settings of [`Function::settings`]),
//! validated before the first event, and serves: every HTTP request routed
//! through the function's rows of the route table ([`crate::api`]) under
//! its deadline ([`crate::deadline`]), measured; for the authorizer, every
//! event under its deadline (denied when it passes), measured. So no
//! function can start without metrics or a deadline (a test reads every
//! `main`).
//!
//! [`Function::lambda`] is a `const fn`, evaluated by the compiler in each
//! `main`: the [`Lambda`] it makes holds the function's start-up, its serve
//! loop and a copy of its own rows, so each binary links its own domain
//! only. A `match` on the function at run time, or a look into the whole
//! table (whose rows point at every handler), would link every domain into
//! every binary.
//!
//! The domain modules never read the environment for the store: only this
//! module builds a [`DynamoStore`], and only this module fetches a
//! function's secrets ([`crate::secrets`]), once, concurrently with the
//! store's set-up.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

pub use lambda_http::Error;
use lambda_http::lambda_runtime::{self, LambdaEvent};
use lambda_http::{Body, Context, Request, Response};

use crate::api::{self, Access, BoxFuture, Function, ROUTES, Route, Services};
use crate::captcha::{CaptchaService, CaptchaVerifier, Renderer};
use crate::config::{ConfigError, process_env};
use crate::guard::config::GUARD_ROUTES;
use crate::guard::{
    Authorizer, AuthorizerRequest, AuthorizerResponse, ChallengeJudge, Guard, GuardConfig,
    GuardRoutes,
};
use crate::http::{error_response, route_key};
use crate::lang::Lang;
use crate::metrics::{self, Events, Outcome};
use crate::options::ServiceOptions;
use crate::ratelimit::RateLimitConfig;
use crate::secrets::{self, SecretSource, Secrets};
use crate::settings::{ConfigPart, Settings};
use crate::sms::{SmsConfig, SmsSender, SmsVerifier};
use crate::store::Store;
use crate::store::dynamo::DynamoStore;
use crate::tencent::{TencentConfig, TicketService};
use crate::wechat::risk::RiskRanks;
use crate::wechat::{LoginService, PhoneService, SessionService, WxConfig};

/// Starts the function `lambda` describes and serves its events until the
/// runtime stops (see the module).
pub async fn run(lambda: Lambda) -> Result<(), Error> {
    crate::telemetry::init();
    metrics::init();
    // Built once for the life of the process, and never dropped (so no
    // binary links the drop code of another function's services).
    let services: &'static Services = Box::leak(Box::new((lambda.start)().await?));
    (lambda.serve)(lambda, services).await
}

/// Most rows of the route table one function serves (the session
/// function's five); a function with more stops the build.
pub const MAX_ROUTES_PER_FUNCTION: usize = 5;

/// Builds a function's services from its environment.
pub type Start = fn() -> Started;

/// What a [`Start`] gives: the services, or why they could not be built.
pub type Started = BoxFuture<'static, Result<Services, Error>>;

/// Serves a started function's events until the runtime stops.
pub type Serve = fn(Lambda, &'static Services) -> Serving;

/// What a [`Serve`] gives: the runtime's loop (run on `main`'s own thread,
/// so it need not be `Send`).
pub type Serving = Pin<Box<dyn Future<Output = Result<(), Error>>>>;

/// One function's Lambda: made by the compiler ([`Function::lambda`]),
/// started by [`run`].
#[derive(Debug, Clone, Copy)]
pub struct Lambda {
    pub function: Function,
    pub start: Start,
    pub serve: Serve,
    /// The rows of the route table the function sees, in the table's order
    /// (read them with [`Lambda::routes`]).
    pub routes: [Option<Route>; MAX_ROUTES_PER_FUNCTION],
}

impl Function {
    /// The function's Lambda, for its `main`:
    /// `run(const { Function::X.lambda() })`. The function → start-up
    /// mapping is written here, once; the function → handlers mapping is the
    /// route table's.
    pub const fn lambda(self) -> Lambda {
        let (start, serve): (Start, Serve) = match self {
            Function::CreateCaptcha | Function::RefreshCaptcha | Function::VerifyCaptcha => {
                (start_captcha, serve_http)
            }
            Function::WxLogin => (start_login, serve_http),
            Function::Session => (start_sessions, serve_http),
            Function::WxPhone => (start_phone, serve_http),
            Function::VerifyTicket => (start_tickets, serve_http),
            Function::Guard => (start_guard, serve_http),
            Function::SendSms => (start_sms_sender, serve_http),
            Function::VerifySms => (start_sms_verifier, serve_http),
            Function::Authorizer => (start_authorizer, serve_authorizer),
        };
        Lambda {
            function: self,
            start,
            serve,
            routes: rows_of(self),
        }
    }
}

/// The rows of [`ROUTES`] `function`'s Lambda keeps (see
/// [`Lambda::routes`]), copied by value: a reference into the table would
/// bring every row, and so every handler, into the binary.
const fn rows_of(function: Function) -> [Option<Route>; MAX_ROUTES_PER_FUNCTION] {
    let mut rows = [None; MAX_ROUTES_PER_FUNCTION];
    let (mut i, mut kept) = (0, 0);
    while i < ROUTES.len() {
        let route = ROUTES[i];
        let keep = match function {
            Function::Authorizer => matches!(route.access, Access::Session | Access::Guard),
            _ => route.function as u8 == function as u8,
        };
        if keep {
            assert!(
                kept < MAX_ROUTES_PER_FUNCTION,
                "a function has more rows than MAX_ROUTES_PER_FUNCTION"
            );
            rows[kept] = Some(route);
            kept += 1;
        }
        i += 1;
    }
    rows
}

/// The route dimension of a request no row of its function serves.
const OTHER_ROUTE: &str = "other";

impl Lambda {
    /// The rows of the route table the function sees: those it serves, or
    /// for the authorizer those it stands in front of (`Access::Session` and
    /// `Access::Guard`), which only name its events in the metrics.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().flatten()
    }

    /// One HTTP request as the function's Lambda answers it: by the handler
    /// of its row, under the function's deadline (a route the function does
    /// not serve: not found, or 405, as [`api::find`] would say), measured
    /// (recorded; the serve loop flushes).
    pub async fn answer(&self, services: &Services, req: Request) -> Response<Body> {
        let started = Instant::now();
        let key = route_key(&req);
        let (method, path) = key.split_once(' ').unwrap_or((key.as_str(), ""));
        let (route, mut resp) = match api::find_in(self.routes(), method, path) {
            Ok(route) => (route_name(route), services.handle(route, req).await),
            Err(err) => {
                let resp = error_response(Lang::from_request(&req), &err);
                (OTHER_ROUTE.to_owned(), resp)
            }
        };
        let events = Events::take_from(&mut resp);
        self.record(&route, Outcome::of_response(&resp), started, &events);
        resp
    }

    /// One authorizer event as the authorizer's Lambda answers it: under
    /// the invocation's deadline (`context`), denied once it passes;
    /// measured by the route it protects, with the outcome and events of
    /// its [`crate::guard::Verdict`] (a denial the store or the deadline
    /// caused is no plain `Denied`).
    pub async fn authorize(
        &self,
        services: &Services,
        event: AuthorizerRequest,
        context: Option<&Context>,
    ) -> AuthorizerResponse {
        let started = Instant::now();
        let route = event
            .route_key
            .as_deref()
            .and_then(|key| key.split_once(' '))
            .and_then(|(method, path)| api::find_in(self.routes(), method, path).ok())
            .map_or_else(|| OTHER_ROUTE.to_owned(), route_name);
        let verdict = services.authorize(event, context).await;
        self.record(&route, verdict.outcome, started, &verdict.events);
        verdict.response
    }

    fn record(&self, route: &str, outcome: Outcome, started: Instant, events: &Events) {
        let function = self.function.name();
        metrics::record(function, route, outcome, started.elapsed());
        for event in events.iter() {
            metrics::record_event(function, event);
        }
    }
}

/// The route dimension of a row: `POST /captcha/create`.
fn route_name(route: &Route) -> String {
    format!("{} {}", route.method, route.path)
}

/// An HTTP function's events: API Gateway's requests, each
/// [`Lambda::answer`]ed, the metrics flushed after each.
fn serve_http(lambda: Lambda, services: &'static Services) -> Serving {
    Box::pin(lambda_http::run(lambda_http::service_fn(
        move |req: Request| async move {
            let resp = lambda.answer(services, req).await;
            metrics::flush();
            Ok::<_, Error>(resp)
        },
    )))
}

/// The authorizer's events, each [`Lambda::authorize`]d under the
/// invocation's deadline, the metrics flushed after each.
fn serve_authorizer(lambda: Lambda, services: &'static Services) -> Serving {
    Box::pin(lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<AuthorizerRequest>| async move {
            let verdict = lambda
                .authorize(services, event.payload, Some(&event.context))
                .await;
            metrics::flush();
            Ok::<_, Error>(verdict)
        },
    )))
}

/// The table of every function: `TABLE_NAME` (and `DYNAMODB_ENDPOINT` for
/// DynamoDB Local).
async fn table() -> Result<Arc<dyn Store>, ConfigError> {
    Ok(Arc::new(DynamoStore::from_env().await?))
}

/// The table and `source`'s secrets (from Secrets Manager when its ARN
/// variable is set, else none), set up concurrently.
async fn table_and_secrets(
    source: &SecretSource,
) -> Result<(Arc<dyn Store>, Secrets), ConfigError> {
    let (store, secrets) = tokio::join!(
        table(),
        secrets::load(source, process_env, secrets::sdk_config())
    );
    Ok((store?, secrets?))
}

/// Whether a door function verifies tickets: `CAPTCHA_APP_ID` is set (the
/// template sets it, with the rest of the Tencent settings, on every door).
fn tickets_configured(lookup: impl Fn(&str) -> Option<String>) -> bool {
    lookup("CAPTCHA_APP_ID").is_some_and(|id| !id.trim().is_empty())
}

/// The Tencent settings of a door's ticket judge, read through `lookup`
/// (the secret's keys from Secrets Manager, see [`secrets`]) when
/// [`tickets_configured`], checked as verify-ticket's; else none.
fn door_tencent(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<TencentConfig>, ConfigError> {
    if !tickets_configured(&lookup) {
        return Ok(None);
    }
    TencentConfig::from_lookup(lookup).map(Some)
}

/// The table, and the Tencent settings of a door's ticket judge: with
/// `CAPTCHA_APP_ID` set, the keys from `TENCENT_SECRET_ARN` (when set),
/// fetched concurrently with the table's set-up; without it, nothing
/// fetched and no ticket judge.
async fn table_and_door_tencent() -> Result<(Arc<dyn Store>, Option<TencentConfig>), Error> {
    if !tickets_configured(process_env) {
        return Ok((table().await?, None));
    }
    let (store, secrets) = table_and_secrets(&secrets::TENCENT).await?;
    Ok((store, door_tencent(secrets.over(process_env))?))
}

/// The judge of the challenges a door function (the authorizer, the
/// guard, send-sms) takes in place of a pass (SPEC §13), built once at
/// start-up over the function's table: answers by a [`CaptchaVerifier`]
/// of `settings`' captcha keys (no renderer, no font: the door draws
/// nothing), tickets by a [`TicketService`] of `tencent`'s settings and
/// `settings`' ticket policies, counted at the root's `ticketPerIp`. Without
/// `tencent` a ticket at the door is refused (`guard-tencent-required`).
pub fn door_judge(
    settings: &Settings,
    store: Arc<dyn Store>,
    tencent: Option<TencentConfig>,
    options: &ServiceOptions,
) -> Result<Arc<dyn ChallengeJudge>, ConfigError> {
    let captcha = CaptchaVerifier::new(settings.captcha_settings(), store.clone(), options);
    let tickets = match tencent {
        Some(config) => Some(Arc::new(TicketService::new(
            config,
            settings.ticket_settings(),
            store,
            options,
        )?)),
        None => None,
    };
    Ok(crate::door::judge(Some(Arc::new(captcha)), tickets))
}

/// [`door_judge`] with the rate limits of `settings` (the root's: tickets
/// count at `ticketPerIp`).
fn door_judge_of(
    settings: &Settings,
    store: Arc<dyn Store>,
    tencent: Option<TencentConfig>,
) -> Result<Arc<dyn ChallengeJudge>, ConfigError> {
    let options = ServiceOptions::new(settings.rate_limits.clone());
    door_judge(settings, store, tencent, &options)
}

impl CaptchaService {
    /// create-, refresh- and verify-captcha: `CAPTCHA_CONFIG`,
    /// `CAPTCHA_FONT`, the table.
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let (settings, renderer) = (Settings::from_env()?, Renderer::from_env()?);
        let options = ServiceOptions::new(settings.rate_limits.clone());
        Ok(Self::new(
            settings.captcha_settings(),
            renderer,
            table().await?,
            &options,
        ))
    }
}

impl LoginService {
    /// wx-login: `WX_*` (the AppSecret from `WX_SECRET_ARN` when set),
    /// `SESSION_TTL_SECONDS`, the root `rateLimit` (and nothing else of
    /// `CAPTCHA_CONFIG`), the table.
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let settings = Settings::from_env_part(ConfigPart::RateLimit)?;
        let (store, secrets) = table_and_secrets(&secrets::WECHAT).await?;
        let config = WxConfig::from_lookup(secrets.over(process_env))?;
        Ok(Self::new(
            config,
            store,
            &ServiceOptions::new(settings.rate_limits),
        )?)
    }
}

impl PhoneService {
    /// wx-phone: `WX_*` (the access token needs the AppSecret, from
    /// `WX_SECRET_ARN` when set), the root `rateLimit` (and nothing else of
    /// `CAPTCHA_CONFIG`), the table.
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let settings = Settings::from_env_part(ConfigPart::RateLimit)?;
        let (store, secrets) = table_and_secrets(&secrets::WECHAT).await?;
        let config = WxConfig::from_lookup(secrets.over(process_env))?;
        Ok(Self::new(
            config,
            store,
            &ServiceOptions::new(settings.rate_limits),
        )?)
    }
}

/// The options of the functions whose services read no rate limit
/// (session, guard, authorizer): the clock (and, for WeChat risk ranks,
/// the upstream time-out) is all they read of them.
fn uncounted() -> ServiceOptions {
    ServiceOptions::new(RateLimitConfig::disabled())
}

impl SessionService {
    /// session and authorizer: the table alone.
    pub async fn from_lambda_env() -> Result<Self, Error> {
        Ok(Self::new(table().await?, &uncounted()))
    }
}

impl TicketService {
    /// verify-ticket: the Tencent credentials and captcha app (the keys from
    /// `TENCENT_SECRET_ARN` when set), the root
    /// `rateLimit` and the scenes' guard settings of `CAPTCHA_CONFIG` (and
    /// nothing else of it), the table.
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let settings = Settings::from_env_part(ConfigPart::RateLimitAndGuard)?;
        let (store, secrets) = table_and_secrets(&secrets::TENCENT).await?;
        let config = TencentConfig::from_lookup(secrets.over(process_env))?;
        let options = ServiceOptions::new(settings.rate_limits.clone());
        Ok(Self::new(
            config,
            settings.ticket_settings(),
            store,
            &options,
        )?)
    }
}

impl Guard {
    /// guard, and Rust business Lambdas: the scenes' guard settings of
    /// `CAPTCHA_CONFIG` (and nothing else of it), the table, and WeChat's
    /// risk ranks where a scene asks for them ([`RiskRanks::from_lambda_env`]).
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let settings = Settings::from_env_part(ConfigPart::Guard)?;
        Self::with_table(settings.guard, table().await?).await
    }

    /// [`Guard::from_lambda_env`] over `store`.
    async fn with_table(config: GuardConfig, store: Arc<dyn Store>) -> Result<Self, Error> {
        let ranks = RiskRanks::from_lambda_env(&config, store.clone()).await?;
        Ok(Self::new(config, store, &uncounted()).with_risk_ranks(ranks))
    }
}

impl RiskRanks {
    /// authorizer and guard: WeChat risk ranks when a scene's guard block
    /// asks for them (`wxRisk`): `WX_*` (the AppSecret from
    /// `WX_SECRET_ARN` when set) and the function's table. `None`, with no
    /// secret fetched and nothing else read, when no scene does.
    pub async fn from_lambda_env(
        guard: &GuardConfig,
        store: Arc<dyn Store>,
    ) -> Result<Option<Self>, Error> {
        if guard.all().all(|scene| scene.wx_risk.is_none()) {
            return Ok(None);
        }
        let secrets = secrets::load(&secrets::WECHAT, process_env, secrets::sdk_config()).await?;
        let config = WxConfig::from_lookup(secrets.over(process_env))?;
        Ok(Some(Self::new(&config, store, &uncounted())?))
    }
}

impl SmsSender {
    /// send-sms: the Tencent key (from `TENCENT_SECRET_ARN` when set) and
    /// `SMS_*`, the scenes' `sms` blocks, guard settings and captcha keys
    /// and the root `rateLimit` of `CAPTCHA_CONFIG` (and nothing else of
    /// it), the table; its door judges challenges ([`door_judge`]), tickets
    /// where `CAPTCHA_APP_ID` is set (the captcha app's key then read from
    /// the same secret, in the one fetch).
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let settings = Settings::from_env_part(ConfigPart::SmsDoor)?;
        let source = match tickets_configured(process_env) {
            true => &secrets::TENCENT,
            false => &secrets::TENCENT_SMS,
        };
        let (store, secrets) = table_and_secrets(source).await?;
        let config = SmsConfig::from_lookup(secrets.over(process_env))?;
        let tencent = door_tencent(secrets.over(process_env))?;
        let judge = door_judge_of(&settings, store.clone(), tencent)?;
        let options = ServiceOptions::new(settings.rate_limits.clone());
        Ok(Self::new(config, settings.sms_settings(), store, &options)?.with_judge(judge))
    }
}

impl SmsVerifier {
    /// verify-sms: the same part of `CAPTCHA_CONFIG`, the table (no
    /// Tencent call, no secret).
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let settings = Settings::from_env_part(ConfigPart::Sms)?;
        let options = ServiceOptions::new(settings.rate_limits.clone());
        Ok(Self::new(settings.sms_settings(), table().await?, &options))
    }
}

impl GuardRoutes {
    /// `GUARD_ROUTES`; unset or empty: no guarded route.
    pub fn from_env() -> Result<Self, ConfigError> {
        match process_env(GUARD_ROUTES) {
            Some(json) if !json.trim().is_empty() => Self::from_json(&json),
            _ => Ok(Self::default()),
        }
    }
}

impl Authorizer {
    /// authorizer: `GUARD_ROUTES` (every route's scene declared in
    /// `CAPTCHA_CONFIG`), the scenes' guard settings, the table; its doors
    /// judge challenges ([`door_judge`]: the captcha keys, and the Tencent
    /// settings where `CAPTCHA_APP_ID` is set).
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let settings = Settings::from_env_part(ConfigPart::Door)?;
        let routes = GuardRoutes::from_env()?;
        routes.check_scenes(&settings.guard)?;
        let (store, tencent) = table_and_door_tencent().await?;
        let judge = door_judge_of(&settings, store.clone(), tencent)?;
        let guard = Guard::with_table(settings.guard.clone(), store.clone()).await?;
        Ok(Self::new(
            SessionService::new(store, &uncounted()),
            guard.with_judge(judge),
            routes,
        ))
    }
}

// Each function's start-up: its one service from the environment (the
// `from_lambda_env` above), in an otherwise empty [`Services`].

/// The service `build` makes, put in its place by `place`.
fn start_with<S: 'static>(
    build: impl Future<Output = Result<S, Error>> + Send + 'static,
    place: fn(Arc<S>) -> Services,
) -> Started {
    Box::pin(async move { Ok(place(Arc::new(build.await?))) })
}

fn start_captcha() -> Started {
    start_with(CaptchaService::from_lambda_env(), |captcha| Services {
        captcha: Some(captcha),
        ..Services::default()
    })
}

fn start_login() -> Started {
    start_with(LoginService::from_lambda_env(), |login| Services {
        login: Some(login),
        ..Services::default()
    })
}

fn start_sessions() -> Started {
    start_with(SessionService::from_lambda_env(), |sessions| Services {
        sessions: Some(sessions),
        ..Services::default()
    })
}

fn start_phone() -> Started {
    start_with(PhoneService::from_lambda_env(), |phone| Services {
        phone: Some(phone),
        ..Services::default()
    })
}

fn start_tickets() -> Started {
    start_with(TicketService::from_lambda_env(), |tickets| Services {
        tickets: Some(tickets),
        ..Services::default()
    })
}

/// The guard, judging the challenges `POST /guard/check` takes
/// ([`door_judge`], as the authorizer's), and the sessions
/// `GET /guard/status` checks (the same table).
fn start_guard() -> Started {
    Box::pin(async {
        let settings = Settings::from_env_part(ConfigPart::Door)?;
        let (store, tencent) = table_and_door_tencent().await?;
        let judge = door_judge_of(&settings, store.clone(), tencent)?;
        let guard = Guard::with_table(settings.guard.clone(), store.clone()).await?;
        Ok(Services {
            sessions: Some(Arc::new(SessionService::new(store, &uncounted()))),
            guard: Some(Arc::new(guard.with_judge(judge))),
            ..Services::default()
        })
    })
}

fn start_sms_sender() -> Started {
    start_with(SmsSender::from_lambda_env(), |sms_sender| Services {
        sms_sender: Some(sms_sender),
        ..Services::default()
    })
}

fn start_sms_verifier() -> Started {
    start_with(SmsVerifier::from_lambda_env(), |sms_verifier| Services {
        sms_verifier: Some(sms_verifier),
        ..Services::default()
    })
}

fn start_authorizer() -> Started {
    start_with(Authorizer::from_lambda_env(), |authorizer| Services {
        authorizer: Some(authorizer),
        ..Services::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn method_and_path(route: &Route) -> (&'static str, &'static str) {
        (route.method, route.path)
    }

    #[test]
    fn each_lambda_keeps_its_own_rows_of_the_table() {
        for function in Function::ALL {
            let lambda = function.lambda();
            assert_eq!(lambda.function, function);
            let kept: Vec<_> = lambda.routes().map(method_and_path).collect();
            let want: Vec<_> = match function {
                Function::Authorizer => ROUTES
                    .iter()
                    .filter(|r| matches!(r.access, Access::Session | Access::Guard))
                    .map(method_and_path)
                    .collect(),
                _ => function.routes().map(method_and_path).collect(),
            };
            assert!(!kept.is_empty(), "{function:?}");
            assert_eq!(kept, want, "{function:?}");
        }
    }

    #[tokio::test]
    async fn without_a_wx_risk_block_no_wechat_setting_is_read() {
        // Whatever the environment holds: nothing of it is read.
        let config =
            Settings::from_json_part(r#"{"guard": {"mode": "adaptive"}}"#, ConfigPart::Guard)
                .unwrap()
                .guard;
        let ranks = RiskRanks::from_lambda_env(&config, Arc::new(MemoryStore::new())).await;
        assert!(matches!(ranks, Ok(None)));
    }

    /// The Tencent settings of a door function, as the template sets them
    /// (the keys here plain, as they read from the fetched secret).
    const TENCENT_ENV: &[(&str, &str)] = &[
        ("TENCENT_SECRET_ID", "AKIDdoor"),
        ("TENCENT_SECRET_KEY", "door-secret-key"),
        ("CAPTCHA_APP_ID", "190000001"),
        ("CAPTCHA_APP_SECRET_KEY", "door-app-key"),
        // Nothing listens there: a ticket is judged, and Tencent unreachable.
        ("TENCENT_CAPTCHA_ENDPOINT", "http://127.0.0.1:9"),
    ];

    #[test]
    fn a_door_verifies_tickets_where_captcha_app_id_is_set() {
        use crate::config::lookup_in;
        // Unset (or blank): no ticket judge, whatever else is set, and no
        // secret to fetch.
        assert!(matches!(door_tencent(lookup_in(&[])), Ok(None)));
        let blank = [("CAPTCHA_APP_ID", " "), ("TENCENT_SECRET_ID", "AKIDdoor")];
        assert!(matches!(door_tencent(lookup_in(&blank)), Ok(None)));
        let config = door_tencent(lookup_in(TENCENT_ENV)).unwrap().unwrap();
        assert_eq!(config.captcha_app_id, 190_000_001);
        // Set, and the rest missing: the function does not start, and says
        // what is missing.
        let err = door_tencent(lookup_in(&[("CAPTCHA_APP_ID", "190000001")])).unwrap_err();
        assert!(err.to_string().contains("TENCENT_SECRET_ID"), "{err}");
    }

    #[tokio::test]
    async fn each_door_function_starts_with_its_judge() {
        use crate::config::lookup_in;
        use crate::domain::{DeviceId, Scene};
        use crate::error::ApiError;
        use crate::guard::{Challenge, Client};
        // Each door's part of the defaults, as the functions read it.
        let parts = [
            (Function::Authorizer, ConfigPart::Door),
            (Function::Guard, ConfigPart::Door),
            (Function::SendSms, ConfigPart::SmsDoor),
        ];
        let scene = Scene::parse("login").unwrap();
        let client = Client {
            ip: Some("203.0.113.9".into()),
            device: Some(DeviceId::parse("door-device").unwrap()),
            openid: None,
            phone_number: None,
        };
        let answer = Challenge::Answer("abcd".into());
        let ticket = Challenge::Ticket {
            ticket: "t03door".into(),
            randstr: Some("@door".into()),
            app_ids: Vec::new(),
        };
        for (function, part) in parts {
            let settings = Settings::from_json_part("{}", part).unwrap();
            for tencent in [None, door_tencent(lookup_in(TENCENT_ENV)).unwrap()] {
                let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
                let judge = door_judge_of(&settings, store, tencent.clone()).unwrap();
                // An answer is judged (the device has no captcha: a wrong
                // answer), never refused as no judge.
                let judged = judge.judge(&scene, &answer, &client).await;
                assert!(
                    matches!(judged, Err(ApiError::VerifyFail)),
                    "{function:?}: {judged:?}"
                );
                // A ticket: refused as before without Tencent's settings,
                // else verified (Tencent unreachable, the default policy
                // refuses).
                let judged = judge.judge(&scene, &ticket, &client).await;
                match tencent {
                    None => assert!(
                        matches!(judged, Err(ApiError::GuardTencentRequired)),
                        "{function:?}: {judged:?}"
                    ),
                    Some(_) => assert!(
                        matches!(judged, Err(ApiError::TicketUpstreamError)),
                        "{function:?}: {judged:?}"
                    ),
                }
            }
        }
    }

    #[tokio::test]
    async fn a_route_its_function_does_not_serve_is_answered_by_the_table() {
        let store = Arc::new(MemoryStore::new());
        let services = Services {
            sessions: Some(Arc::new(SessionService::new(store, &uncounted()))),
            ..Services::default()
        };
        let request = |method: &str, path: &str| {
            http::Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", format!("Bearer {}", "A".repeat(43)))
                .body(Body::Empty)
                .unwrap()
        };
        let body = |resp: &Response<Body>| match resp.body() {
            Body::Text(text) => serde_json::from_str::<serde_json::Value>(text).unwrap(),
            other => panic!("a JSON body, not {other:?}"),
        };
        let session = Function::Session.lambda();
        // A method the path does not serve: 405 before any handler.
        let put = session
            .answer(&services, request("PUT", "/wx/session"))
            .await;
        assert_eq!(put.status(), 405);
        assert_eq!(put.headers()["allow"], "GET, DELETE");
        assert_eq!(body(&put)["errCode"], "invalid-request");
        // Another function's route: not found here.
        let login = session
            .answer(&services, request("POST", "/wx/login"))
            .await;
        assert_eq!(login.status(), 404);
        // Its own: the handler.
        let get = session
            .answer(&services, request("GET", "/wx/session"))
            .await;
        assert_eq!(body(&get)["errCode"], "session-invalid");
    }
}
