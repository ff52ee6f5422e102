//! The route table: every Lambda function of the bundle, the routes API
//! Gateway sends it, and the handler behind each. A route is one row of
//! [`ROUTES`] (method, path, function, access, handler) and one async fn in
//! its domain's `routes` module; the dev server, the replay of the documented
//! local invokes and every Lambda (`crate::lambda`) dispatch on this table,
//! and a test holds `template.yaml` to it.
//!
//! A handler is a plain fn pointer of one signature, [`Handler`]: it gets
//! the [`Services`] (one function's in a Lambda, every one on the dev
//! server), picks its own service and calls its domain's fn. A Lambda copies
//! its own rows out of the table at compile time (`Function::lambda`), so
//! its binary links its own handlers only.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use lambda_http::{Body, Context, Request, Response};

use crate::captcha::{self, CaptchaService};
use crate::error::ApiError;
use crate::guard::{self, Authorizer, AuthorizerRequest, AuthorizerResponse, Guard, Verdict};
use crate::http::{error_response, route_key};
use crate::lang::Lang;
use crate::sms::{self, SmsSender, SmsVerifier};
use crate::tencent::{self, TicketService};
use crate::wechat::{self, LoginService, PhoneService, SessionService};

/// A boxed future: what a fn pointer of the table can return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The handler of a route: one signature for every row of the table.
pub type Handler = for<'a> fn(&'a Services, Request) -> BoxFuture<'a, Response<Body>>;

/// One Lambda function of the bundle (`functions/<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    CreateCaptcha,
    RefreshCaptcha,
    VerifyCaptcha,
    WxLogin,
    Session,
    Authorizer,
    VerifyTicket,
    WxPhone,
    Guard,
    SendSms,
    VerifySms,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// A request the `authorizer` admits with a live bearer session
    /// (`SessionAuthorizer` in the template).
    Session,
    /// A request the `authorizer` admits as `GUARD_ROUTES` says
    /// (`GuardAuthorizer` in the template).
    Guard,
    /// A back end signing with SigV4 (`AWS_IAM` in the template; open on the
    /// dev server).
    Iam,
}

/// One route of the HTTP API: a row of [`ROUTES`].
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub function: Function,
    pub access: Access,
    /// What answers it (under its function's deadline: [`Services::handle`]).
    pub handler: Handler,
}

const fn route(
    method: &'static str,
    path: &'static str,
    function: Function,
    handler: Handler,
) -> Route {
    Route {
        method,
        path,
        function,
        access: Access::Public,
        handler,
    }
}

/// Every route of the HTTP API, in the README's route table's order. Each handler calls
/// one fn of its domain with its service ([`serve`]).
pub const ROUTES: &[Route] = &[
    route(
        "POST",
        "/captcha/create",
        Function::CreateCaptcha,
        |s, req| serve(&s.captcha, req, captcha::create),
    ),
    route(
        "POST",
        "/captcha/refresh",
        Function::RefreshCaptcha,
        |s, req| serve(&s.captcha, req, captcha::refresh),
    ),
    route(
        "POST",
        "/captcha/verify",
        Function::VerifyCaptcha,
        |s, req| serve(&s.captcha, req, captcha::verify),
    ),
    route("POST", "/wx/login", Function::WxLogin, |s, req| {
        serve(&s.login, req, wechat::login)
    }),
    route("GET", "/wx/session", Function::Session, |s, req| {
        serve(&s.sessions, req, wechat::check_session)
    }),
    route("DELETE", "/wx/session", Function::Session, |s, req| {
        serve(&s.sessions, req, wechat::end_session)
    }),
    // docs/wechat.md, "Sessions a user can end" and "The phone number". Each checks
    // the bearer session itself (and answers 401 with an errCode a client
    // can act on, which an authorizer's 403 cannot).
    route("DELETE", "/wx/sessions", Function::Session, |s, req| {
        serve(&s.sessions, req, wechat::end_sessions)
    }),
    route(
        "POST",
        "/wx/session/refresh",
        Function::Session,
        |s, req| serve(&s.sessions, req, wechat::refresh_session),
    ),
    route("POST", "/wx/phone", Function::WxPhone, |s, req| {
        serve(&s.phone, req, wechat::phone)
    }),
    // The protected example: the session function answers once the
    // authorizer has admitted the request.
    Route {
        access: Access::Session,
        ..route("GET", "/me", Function::Session, |s, req| {
            serve(&s.sessions, req, wechat::check_session)
        })
    },
    route(
        "POST",
        "/ticket/verify",
        Function::VerifyTicket,
        |s, req| serve(&s.tickets, req, tencent::verify_ticket),
    ),
    // With a bearer session, the user's WeChat risk rank counts too.
    route("GET", "/guard/status", Function::Guard, |s, req| {
        let sessions = s.sessions.as_deref();
        serve(&s.guard, req, move |guard, req| {
            guard::routes::status(guard, sessions, req)
        })
    }),
    Route {
        access: Access::Iam,
        ..route("POST", "/guard/check", Function::Guard, |s, req| {
            serve(&s.guard, req, guard::routes::check)
        })
    },
    Route {
        access: Access::Iam,
        ..route("POST", "/guard/report", Function::Guard, |s, req| {
            serve(&s.guard, req, guard::routes::report)
        })
    },
    // A door of its scene's guard of its own (the guard decides in-process,
    // so a refusal carries its errCode): API Gateway sees a public route.
    route("POST", "/sms/send", Function::SendSms, |s, req| {
        serve(&s.sms_sender, req, sms::routes::send)
    }),
    route("POST", "/sms/verify", Function::VerifySms, |s, req| {
        serve(&s.sms_verifier, req, sms::routes::verify)
    }),
    // The guarded example: users put their own routes behind the guard the
    // same way. It answers with what the authorizer handed it: no service.
    Route {
        access: Access::Guard,
        ..route("POST", "/demo/guarded", Function::Guard, |_, req| {
            Box::pin(guard::routes::demo(req))
        })
    },
];

/// `handler` on `req` with `service`; `internal-error` (logged) when the
/// service was not built.
fn serve<'a, S, Fut>(
    service: &'a Option<Arc<S>>,
    req: Request,
    handler: impl FnOnce(&'a S, Request) -> Fut,
) -> BoxFuture<'a, Response<Body>>
where
    Fut: Future<Output = Response<Body>> + Send + 'a,
{
    match service {
        Some(service) => Box::pin(handler(service, req)),
        None => {
            tracing::error!(route = %route_key(&req), "the route's service was not built");
            let resp = error_response(Lang::from_request(&req), &ApiError::Internal);
            Box::pin(std::future::ready(resp))
        }
    }
}

/// One DynamoDB permission of a function: `actions` on the rows whose key
/// (`pk`) begins with one of `key_prefixes`, touching only `attributes`
/// when it names any. The template grants each as one policy statement on
/// the table with a `dynamodb:LeadingKeys` condition (and a
/// `dynamodb:Attributes` one), so that code running in one function cannot
/// touch another's rows (a captcha function cannot forge a session) nor,
/// where two share rows, write what the other vouches for.
///
/// `dynamodb:Attributes` counts every attribute a request writes *and*
/// every one its condition reads, the key included; IAM cannot tell a SET
/// from a REMOVE, nor one value from another.
///
/// A transaction (`TransactWriteItems`) is authorised item by item as its
/// `PutItem`/`UpdateItem`, and a `BatchGetItem` by its own action with every
/// key it reads in `LeadingKeys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableGrant {
    /// IAM actions, `dynamodb:PutItem` and so on.
    pub actions: &'static [&'static str],
    /// Row key prefixes (see `store::*_key_of` and `ratelimit::Route`).
    pub key_prefixes: &'static [&'static str],
    /// The only attributes the actions may write or condition on (the key
    /// included); empty: any.
    pub attributes: &'static [&'static str],
}

const fn grant(
    actions: &'static [&'static str],
    key_prefixes: &'static [&'static str],
) -> TableGrant {
    TableGrant {
        actions,
        key_prefixes,
        attributes: &[],
    }
}

/// [`grant`] limited to `attributes`.
const fn grant_only(
    actions: &'static [&'static str],
    key_prefixes: &'static [&'static str],
    attributes: &'static [&'static str],
) -> TableGrant {
    TableGrant {
        actions,
        key_prefixes,
        attributes,
    }
}

/// The row key prefixes of [`TableGrant::key_prefixes`].
pub mod rows {
    /// A captcha (`store::captcha_key`).
    pub const CAPTCHA: &str = "captcha#";
    /// A presented ticket (`store::ticket_key_of`).
    pub const TICKET: &str = "ticket#";
    /// A pass a solved captcha earned, one a ticket earned, and one a
    /// right SMS code earned (`store::pass_key_of`).
    pub const PASS_CAPTCHA: &str = "pass#captcha#";
    pub const PASS_TICKET: &str = "pass#ticket#";
    pub const PASS_SMS: &str = "pass#sms#";
    /// A WeChat session (`store::session_key_of`).
    pub const SESSION: &str = "session#";
    /// Rate-limit counters of one route (`ratelimit::Route::as_str`).
    pub const RATE_CREATE: &str = "rate#create|";
    pub const RATE_REFRESH: &str = "rate#refresh|";
    pub const RATE_VERIFY: &str = "rate#verify|";
    pub const RATE_WXLOGIN: &str = "rate#wxlogin|";
    pub const RATE_TICKET: &str = "rate#ticket|";
    pub const RATE_WXPHONE: &str = "rate#wxphone|";
    /// A user's index of live sessions (`store::session_index_key_of`).
    pub const SESSION_INDEX: &str = "wxsessions#";
    /// The app's shared WeChat access token (`store::access_token_key_of`).
    pub const ACCESS_TOKEN: &str = "wxtoken#";
    /// The guard's failure counters (`guard::service`).
    pub const RATE_GUARD: &str = "rate#guard|";
    /// A number's SMS code in a scene (`store::sms_key_of`).
    pub const SMS: &str = "sms#";
    /// SMS sends and verifies per IP (`ratelimit::Route`).
    pub const RATE_SMS_SEND: &str = "rate#smssend|";
    pub const RATE_SMS_VERIFY: &str = "rate#smsverify|";
    /// Sends per number and day, and the scene's daily budget
    /// (`sms::service`).
    pub const RATE_SMS_DAY: &str = "rate#smsday|";
    pub const RATE_SMS_BUDGET: &str = "rate#smsbudget|";
    /// A user's cached WeChat risk rank (`store::risk_rank_key_of`).
    pub const WX_RISK: &str = "wxrisk#";
}

const PUT: &str = "dynamodb:PutItem";
const UPDATE: &str = "dynamodb:UpdateItem";
const GET: &str = "dynamodb:GetItem";
const DELETE: &str = "dynamodb:DeleteItem";
const BATCH_GET: &str = "dynamodb:BatchGetItem";
const BATCH_WRITE: &str = "dynamodb:BatchWriteItem";

impl Function {
    /// Every function, in the template's order.
    pub const ALL: [Function; 11] = [
        Function::CreateCaptcha,
        Function::RefreshCaptcha,
        Function::VerifyCaptcha,
        Function::WxLogin,
        Function::Session,
        Function::Authorizer,
        Function::VerifyTicket,
        Function::WxPhone,
        Function::Guard,
        Function::SendSms,
        Function::VerifySms,
    ];

    /// The function's name: its crate under `functions/`, its binary, its
    /// `BuildProperties.Binary` in the template.
    pub fn name(self) -> &'static str {
        match self {
            Function::CreateCaptcha => "create-captcha",
            Function::RefreshCaptcha => "refresh-captcha",
            Function::VerifyCaptcha => "verify-captcha",
            Function::WxLogin => "wx-login",
            Function::Session => "session",
            Function::Authorizer => "authorizer",
            Function::VerifyTicket => "verify-ticket",
            Function::WxPhone => "wx-phone",
            Function::Guard => "guard",
            Function::SendSms => "send-sms",
            Function::VerifySms => "verify-sms",
        }
    }

    /// The function's Lambda time-out (`Timeout` in `template.yaml`, its
    /// own or the Globals'; a test keeps them equal): the dev server's
    /// request deadline (see [`crate::deadline`]).
    pub fn timeout(self) -> std::time::Duration {
        let seconds = match self {
            Function::Authorizer | Function::Guard | Function::VerifySms => 5,
            Function::WxPhone => 15,
            Function::CreateCaptcha
            | Function::RefreshCaptcha
            | Function::VerifyCaptcha
            | Function::WxLogin
            | Function::Session
            | Function::VerifyTicket
            | Function::SendSms => 10,
        };
        std::time::Duration::from_secs(seconds)
    }

    pub fn from_name(name: &str) -> Option<Function> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The routes API Gateway sends this function (none for the authorizer,
    /// which API Gateway calls before a protected route).
    pub fn routes(self) -> impl Iterator<Item = &'static Route> {
        ROUTES.iter().filter(move |r| r.function == self)
    }

    /// The environment the function reads besides `TABLE_NAME` (what the
    /// template gives it).
    pub fn settings(self) -> &'static [&'static str] {
        const CAPTCHA: &[&str] = &["CAPTCHA_CONFIG"];
        match self {
            Function::CreateCaptcha | Function::RefreshCaptcha | Function::VerifyCaptcha => CAPTCHA,
            // Their part of CAPTCHA_CONFIG only (`settings::ConfigPart`); the
            // secrets from Secrets Manager (`crate::secrets`: the plain
            // WX_SECRET, TENCENT_SECRET_KEY and CAPTCHA_APP_SECRET_KEY serve
            // local runs, never the template).
            Function::WxLogin => &[
                "CAPTCHA_CONFIG",
                "WX_APPID",
                "WX_SECRET_ARN",
                "SESSION_TTL_SECONDS",
            ],
            Function::VerifyTicket => &[
                "CAPTCHA_CONFIG",
                "TENCENT_SECRET_ID",
                "TENCENT_SECRET_ARN",
                "CAPTCHA_APP_ID",
            ],
            // The access token needs the AppSecret; only the rateLimit
            // block of CAPTCHA_CONFIG matters (wxPhonePerIp).
            Function::WxPhone => &["CAPTCHA_CONFIG", "WX_APPID", "WX_SECRET_ARN"],
            // A scene's `guard.wxRisk` asks WeChat for a signed-in user's
            // risk rank, with the shared access token (the AppSecret); a
            // ticket at `/guard/check` is verified as verify-ticket does
            // (its Tencent settings, SPEC §13).
            Function::Guard => &[
                "CAPTCHA_CONFIG",
                "WX_APPID",
                "WX_SECRET_ARN",
                "TENCENT_SECRET_ID",
                "TENCENT_SECRET_ARN",
                "CAPTCHA_APP_ID",
            ],
            // The Tencent key from Secrets Manager, as verify-ticket's (with
            // the captcha app's, for a ticket at the send's door).
            Function::SendSms => &[
                "CAPTCHA_CONFIG",
                "TENCENT_SECRET_ID",
                "TENCENT_SECRET_ARN",
                "CAPTCHA_APP_ID",
                "SMS_SDK_APP_ID",
                "SMS_SIGN_NAME",
                "SMS_TEMPLATE_ID",
                "SMS_REGION",
            ],
            Function::VerifySms => CAPTCHA,
            // As the guard's: risk ranks, and tickets at its doors.
            Function::Authorizer => &[
                "CAPTCHA_CONFIG",
                "GUARD_ROUTES",
                "WX_APPID",
                "WX_SECRET_ARN",
                "TENCENT_SECRET_ID",
                "TENCENT_SECRET_ARN",
                "CAPTCHA_APP_ID",
            ],
            // Sessions need only the table: no WeChat secret.
            Function::Session => &[],
        }
    }
}

impl Function {
    /// What the function may do to the table, and nothing more (see
    /// [`TableGrant`]); `tests/e2e/template.rs` holds the template to it,
    /// and `tests/e2e/table_access.rs` the code.
    pub fn table_grants(self) -> &'static [TableGrant] {
        use crate::store::dynamo::{
            CAPTCHA_PASS_ATTRIBUTES, PHONE_ATTRIBUTES, REDEEM_ATTRIBUTES, SMS_PASS_ATTRIBUTES,
            TICKET_PASS_ATTRIBUTES,
        };
        use rows::*;
        // The captcha row, with the counters alongside when rate limits are
        // on; a request a counter refuses undoes its captcha (put back the
        // one it replaced, or delete its own) and its counts.
        const CREATE: &[TableGrant] = &[
            grant(&[PUT, DELETE], &[CAPTCHA]),
            grant(&[UPDATE], &[RATE_CREATE]),
        ];
        // A refused refresh puts back the captcha it replaced (there always
        // was one): no delete.
        const REFRESH: &[TableGrant] =
            &[grant(&[PUT], &[CAPTCHA]), grant(&[UPDATE], &[RATE_REFRESH])];
        // A right answer is one transaction of the captcha's conditional
        // update and its pass's conditional put (IAM authorises each item
        // as its own UpdateItem and PutItem); a wrong one, a conditional
        // update, and it counts the guard's failures. A pass is a row of its
        // own that only this function (captcha passes) and verify-ticket
        // (ticket passes) may create, by a put alone.
        const VERIFY: &[TableGrant] = &[
            grant(&[UPDATE], &[CAPTCHA, RATE_VERIFY, RATE_GUARD]),
            grant_only(&[PUT], &[PASS_CAPTCHA], CAPTCHA_PASS_ATTRIBUTES),
        ];
        // The session row, then its entry in the user's index; `single`
        // ends the user's other sessions.
        const WX_LOGIN: &[TableGrant] = &[
            grant(&[PUT, BATCH_WRITE], &[SESSION]),
            grant(&[UPDATE], &[SESSION_INDEX]),
            grant(&[UPDATE], &[RATE_WXLOGIN]),
        ];
        // Check and end one; end all (the index read and emptied, the
        // sessions deleted in batches); refresh (the new session in, the old out,
        // the index updated).
        const SESSIONS: &[TableGrant] = &[
            grant(&[GET, DELETE, PUT, BATCH_WRITE], &[SESSION]),
            grant(&[UPDATE], &[SESSION_INDEX]),
        ];
        // The session read and given its phone number (its key and the
        // number's attributes alone: it can neither make nor extend a
        // session); the shared access token read, and swapped by a
        // conditional put under its lease; the rate limit counted.
        const PHONE: &[TableGrant] = &[
            grant(&[GET], &[SESSION]),
            grant_only(&[UPDATE], &[SESSION], PHONE_ATTRIBUTES),
            grant(&[GET, PUT], &[ACCESS_TOKEN]),
            grant(&[UPDATE], &[RATE_WXPHONE]),
        ];
        // A pass redeemed: the attributes its redemption writes and
        // conditions on, none of those that make a row a pass.
        const REDEEM: TableGrant = grant_only(
            &[UPDATE],
            &[PASS_CAPTCHA, PASS_TICKET, PASS_SMS],
            REDEEM_ATTRIBUTES,
        );
        // Sessions read; the guard's counters counted (one UpdateItem per
        // row, answering the row; a refused pass counted as a failure) or,
        // where a scene counts no request, read with a user's cached risk
        // rank in the same request (one statement: IAM wants every key of a
        // request in one), else the rank read beside the counting; passes
        // redeemed; a rank missing from the cache asked of WeChat and
        // cached, with the shared access token (read, and swapped under its
        // lease).
        // A challenge judged at a door in place of a pass (SPEC §13), as
        // verify-captcha and verify-ticket judge it, without the pass they
        // write: an answer in the captcha's one conditional update (a wrong
        // one counting the guard's failures, granted beside); a ticket
        // claimed by a conditional put, counted per IP at the root's
        // `ticketPerIp`. No pass row: the doors only redeem them.
        const JUDGE_ANSWER: TableGrant = grant(&[UPDATE], &[CAPTCHA]);
        const JUDGE_TICKET: TableGrant = grant(&[PUT], &[TICKET]);
        const COUNT_TICKET: TableGrant = grant(&[UPDATE], &[RATE_TICKET]);
        const AUTHORIZER: &[TableGrant] = &[
            grant(&[GET], &[SESSION]),
            grant(&[BATCH_GET], &[RATE_GUARD, WX_RISK]),
            grant(&[UPDATE], &[RATE_GUARD]),
            REDEEM,
            JUDGE_ANSWER,
            JUDGE_TICKET,
            COUNT_TICKET,
            grant(&[GET, PUT], &[WX_RISK]),
            grant(&[GET, PUT], &[ACCESS_TOKEN]),
        ];
        // The ticket claimed (a conditional put), its pass granted, the rate
        // limit and the guard's failures counted.
        const TICKETS: &[TableGrant] = &[
            grant(&[PUT], &[TICKET]),
            grant_only(&[PUT], &[PASS_TICKET], TICKET_PASS_ATTRIBUTES),
            grant(&[UPDATE], &[RATE_TICKET, RATE_GUARD]),
        ];
        // Requests counted and levels read (with the risk rank, as the
        // authorizer's), passes redeemed, failures reported (and refused
        // passes counted), challenges judged; the bearer session of
        // `GET /guard/status` read; risk ranks as the authorizer's.
        const GUARD: &[TableGrant] = &[
            grant(&[GET], &[SESSION]),
            grant(&[BATCH_GET], &[RATE_GUARD, WX_RISK]),
            grant(&[UPDATE], &[RATE_GUARD]),
            REDEEM,
            JUDGE_ANSWER,
            JUDGE_TICKET,
            COUNT_TICKET,
            grant(&[GET, PUT], &[WX_RISK]),
            grant(&[GET, PUT], &[ACCESS_TOKEN]),
        ];
        // The door (the request counted in the guard's rows, or where the
        // scene counts no request its level read; a pass redeemed as the
        // guard's, a refused one counted as a failure; a challenge judged
        // as the guard's); the code's row put
        // (conditional on the resend window) with its counters, a refused
        // send's row put back or deleted, an unsent code voided.
        const SEND_SMS: &[TableGrant] = &[
            grant(&[BATCH_GET], &[RATE_GUARD]),
            grant(&[UPDATE], &[RATE_GUARD]),
            REDEEM,
            JUDGE_ANSWER,
            JUDGE_TICKET,
            COUNT_TICKET,
            grant(&[PUT, DELETE, UPDATE], &[SMS]),
            grant(&[UPDATE], &[RATE_SMS_SEND, RATE_SMS_DAY, RATE_SMS_BUDGET]),
        ];
        // A verify is one conditional update; a wrong code counts the
        // guard's failures; a right one earns a pass, a row of its own that
        // only this function may create (SMS passes, with the number), by
        // PutItem alone.
        const VERIFY_SMS: &[TableGrant] = &[
            grant(&[UPDATE], &[SMS, RATE_SMS_VERIFY, RATE_GUARD]),
            grant_only(&[PUT], &[PASS_SMS], SMS_PASS_ATTRIBUTES),
        ];
        match self {
            Function::CreateCaptcha => CREATE,
            Function::RefreshCaptcha => REFRESH,
            Function::VerifyCaptcha => VERIFY,
            Function::WxLogin => WX_LOGIN,
            Function::Session => SESSIONS,
            Function::Authorizer => AUTHORIZER,
            Function::VerifyTicket => TICKETS,
            Function::Guard => GUARD,
            Function::WxPhone => PHONE,
            Function::SendSms => SEND_SMS,
            Function::VerifySms => VERIFY_SMS,
        }
    }
}

/// The route for `method` and `path`, or why there is none: `RouteNotFound`,
/// or `MethodNotAllowed` naming the methods the path does serve.
pub fn find(method: &str, path: &str) -> Result<&'static Route, ApiError> {
    find_in(ROUTES, method, path)
}

/// [`find`] among `routes` (a Lambda's own rows).
pub fn find_in<'r>(
    routes: impl IntoIterator<Item = &'r Route>,
    method: &str,
    path: &str,
) -> Result<&'r Route, ApiError> {
    let mut allowed = Vec::new();
    for route in routes.into_iter().filter(|r| r.path == path) {
        if route.method == method {
            return Ok(route);
        }
        allowed.push(route.method);
    }
    if allowed.is_empty() {
        return Err(ApiError::RouteNotFound {
            method: method.to_owned(),
            path: path.to_owned(),
        });
    }
    Err(ApiError::MethodNotAllowed {
        method: method.to_owned(),
        allow: allowed.join(", "),
    })
}

/// The services behind the table: every one on the dev server, one
/// function's in a Lambda (its `start`, see `crate::lambda`).
#[derive(Default, Clone)]
pub struct Services {
    pub captcha: Option<Arc<CaptchaService>>,
    pub login: Option<Arc<LoginService>>,
    pub sessions: Option<Arc<SessionService>>,
    pub tickets: Option<Arc<TicketService>>,
    pub phone: Option<Arc<PhoneService>>,
    pub guard: Option<Arc<Guard>>,
    pub authorizer: Option<Arc<Authorizer>>,
    pub sms_sender: Option<Arc<SmsSender>>,
    pub sms_verifier: Option<Arc<SmsVerifier>>,
}

impl Services {
    /// Runs `route`'s handler on `req`, as its Lambda would, under the
    /// request's deadline (see [`crate::deadline`]).
    pub async fn handle(&self, route: &Route, req: Request) -> Response<Body> {
        crate::deadline::answer_within(route.function.timeout(), req, |req| {
            (route.handler)(self, req)
        })
        .await
    }

    /// Runs the authorizer on `event` under the invocation's deadline
    /// (`context`; none on the dev server: the authorizer's time-out) less
    /// the margin (see [`crate::deadline`]); denies when it was not built or
    /// the deadline passed.
    pub async fn authorize(&self, event: AuthorizerRequest, context: Option<&Context>) -> Verdict {
        match &self.authorizer {
            Some(auth) => {
                let budget = crate::deadline::budget_of(Function::Authorizer.timeout(), context);
                guard::judge_within(auth, event, budget).await
            }
            None => {
                tracing::error!("the authorizer's service was not built");
                let mut denied = AuthorizerResponse::default();
                denied.context = serde_json::json!({});
                Verdict {
                    response: denied,
                    outcome: crate::metrics::Outcome::InternalError,
                    events: Default::default(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_every_route_has_a_function() {
        for function in Function::ALL {
            assert_eq!(Function::from_name(function.name()), Some(function));
        }
        assert_eq!(Function::from_name("nope"), None);
        assert_eq!(Function::Authorizer.routes().count(), 0);
        assert_eq!(Function::Session.routes().count(), 5);
        assert_eq!(Function::WxPhone.routes().count(), 1);
    }

    #[test]
    fn row_prefixes_are_the_stores_keys() {
        use crate::domain::{DeviceId, Scene};
        use crate::ratelimit::{RateLimitConfig, Route as Limited};
        use crate::store::{
            PassKind, captcha_key, counter_key_of, pass_key_of, risk_rank_key_of, session_key_of,
            sms_key_of, sms_locator, ticket_key_of,
        };
        let scene = Scene::parse("login").unwrap();
        let device = DeviceId::parse("d").unwrap();
        assert!(captcha_key(&scene, &device).starts_with(rows::CAPTCHA));
        let mobile = crate::sms::Mobile::parse("13800138000").unwrap();
        assert!(sms_key_of(&sms_locator(&scene, &mobile)).starts_with(rows::SMS));
        assert!(pass_key_of(PassKind::Captcha, "ab").starts_with(rows::PASS_CAPTCHA));
        assert!(pass_key_of(PassKind::Ticket, "ab").starts_with(rows::PASS_TICKET));
        assert!(pass_key_of(PassKind::Sms, "ab").starts_with(rows::PASS_SMS));
        assert!(ticket_key_of("ab").starts_with(rows::TICKET));
        assert!(session_key_of("ab").starts_with(rows::SESSION));
        assert!(risk_rank_key_of(1, "o").starts_with(rows::WX_RISK));
        for (route, prefix) in [
            (Limited::Create, rows::RATE_CREATE),
            (Limited::Refresh, rows::RATE_REFRESH),
            (Limited::Verify, rows::RATE_VERIFY),
            (Limited::WxLogin, rows::RATE_WXLOGIN),
            (Limited::Ticket, rows::RATE_TICKET),
            (Limited::SmsSend, rows::RATE_SMS_SEND),
            (Limited::SmsVerify, rows::RATE_SMS_VERIFY),
        ] {
            let counters =
                RateLimitConfig::default().counters(route, "*", Some("1.2.3.4"), Some("d"), 0);
            assert!(!counters.is_empty());
            for counter in counters {
                let key = counter_key_of(&counter.name);
                assert!(key.starts_with(prefix), "{key} under {prefix}");
            }
        }
    }

    #[test]
    fn every_function_has_grants_and_no_prefix_is_a_wildcard() {
        for function in Function::ALL {
            let grants = function.table_grants();
            assert!(!grants.is_empty(), "{function:?}");
            for grant in grants {
                assert!(grant.actions.iter().all(|a| a.starts_with("dynamodb:")));
                assert!(
                    grant
                        .key_prefixes
                        .iter()
                        .all(|p| p.ends_with(['#', '|']) && !p.contains(['*', '?'])),
                    "{grant:?}"
                );
                // IAM wants the key among the attributes, or nothing works.
                assert!(
                    grant.attributes.is_empty()
                        || grant.attributes.contains(&crate::store::KEY_ATTRIBUTE),
                    "{grant:?}"
                );
            }
        }
    }

    #[test]
    fn find_tells_unknown_paths_from_wrong_methods() {
        assert_eq!(
            find("POST", "/captcha/create").unwrap().function,
            Function::CreateCaptcha
        );
        assert_eq!(find("GET", "/me").unwrap().access, Access::Session);
        let wrong = find("PUT", "/wx/session").unwrap_err();
        assert_eq!(wrong.status(), 405);
        assert_eq!(
            wrong,
            ApiError::MethodNotAllowed {
                method: "PUT".into(),
                allow: "GET, DELETE".into()
            }
        );
        assert_eq!(find("GET", "/captcha/create").unwrap_err().status(), 405);
        assert_eq!(
            find("DELETE", "/wx/sessions").unwrap().function,
            Function::Session
        );
        assert_eq!(find("GET", "/wx/phone").unwrap_err().status(), 405);
        assert_eq!(find("GET", "/nope").unwrap_err().status(), 404);
    }
}
