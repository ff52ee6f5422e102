//! Storage behind every route: one narrow trait per kind of row (captchas,
//! SMS codes, sessions, each user's session index, tickets, passes,
//! counters, the WeChat access token, cached WeChat risk ranks; [`Store`]
//! is all of them), the set of them each service holds (a service takes
//! only the traits it uses), a DynamoDB
//! implementation for Lambda and an embedded one for the dev server. Both
//! keep the same items in one table keyed by a string `pk`, every row
//! carrying a TTL attribute.
//!
//! Every method states how many requests a DynamoDB implementation may make:
//! the conformance suite (`tests/`) holds both implementations to the same
//! behaviour, and the counting test holds DynamoDB to those numbers.

use async_trait::async_trait;

use sha2::{Digest, Sha256};

use crate::domain::{DeviceId, Scene};
pub use crate::error::StoreError;
use crate::secret::Secret;
use crate::sms::mobile::Mobile;

pub mod dynamo;
mod guard_counts;
mod held_pass;
pub mod memory;

pub use guard_counts::*;
pub(crate) use held_pass::HeldPass;

/// The table's partition key attribute (a string).
pub const KEY_ATTRIBUTE: &str = "pk";
/// The table's TTL attribute: epoch seconds after which DynamoDB may delete
/// the row. Deletion lags by up to days, so every read checks expiry itself.
pub const TTL_ATTRIBUTE: &str = "ttl";

/// `state` of a captcha row, as in `opendb-verify-codes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptchaState {
    Pending = 0,
    Verified = 1,
    Void = 2,
}

impl CaptchaState {
    pub fn from_number(n: i64) -> Option<Self> {
        match n {
            0 => Some(Self::Pending),
            1 => Some(Self::Verified),
            2 => Some(Self::Void),
            _ => None,
        }
    }
}

/// One captcha: one row per device and scene, fields named as in uniCloud's
/// `opendb-verify-codes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptchaRecord {
    pub device_uuid: DeviceId,
    pub scene: Scene,
    /// The expected answer, normalised by [`crate::captcha::normalize_answer`].
    pub code: String,
    pub state: CaptchaState,
    pub ip: String,
    /// Epoch milliseconds.
    pub created_date: i64,
    /// Epoch milliseconds after which the captcha is overdue.
    pub expired_date: i64,
    /// Wrong answers so far.
    pub attempts: u32,
}

impl CaptchaRecord {
    pub fn key(&self) -> String {
        captcha_key(&self.scene, &self.device_uuid)
    }
}

/// The row key of a device's captcha for a scene: the SHA-256 of
/// `<scene>#<device>` (scenes never contain `#`, so it is unambiguous).
pub fn captcha_key(scene: &Scene, device: &DeviceId) -> String {
    let locator: [u8; 32] = Sha256::digest(format!("{scene}#{device}")).into();
    format!("captcha#{}", hex::encode(locator))
}

/// The longest a captcha lives (`expiresDate` is at most 86,400 s): a row
/// that a verify touches is kept at least this long from then, since the
/// verify does not know when its captcha expires.
pub const MAX_CAPTCHA_LIFETIME_MS: i64 = 86_400_000;

/// One SMS code: one row per scene and number, fields named as in
/// `opendb-verify-codes` (`mobile`, `scene`, `state`, `ip`,
/// `created_date`, `expired_date`), but never the code itself: its keyed
/// hash (see `crate::sms::code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsCodeRecord {
    pub mobile: Mobile,
    pub scene: Scene,
    /// Hex HMAC of the code keyed with the row's locator.
    pub code_hash: String,
    pub state: CaptchaState,
    pub ip: String,
    /// The device that asked, when it said.
    pub device: Option<DeviceId>,
    /// Epoch milliseconds.
    pub created_date: i64,
    /// Epoch milliseconds after which the code is overdue.
    pub expired_date: i64,
    /// Epoch milliseconds before which the number gets no new code in the
    /// scene.
    pub resend_after: i64,
    /// Wrong codes so far.
    pub attempts: u32,
    /// The id of the send that wrote the row (random): a failed send voids
    /// its own code only, and a retried write knows its own.
    pub send_id: String,
}

impl SmsCodeRecord {
    pub fn key(&self) -> String {
        sms_key_of(&sms_locator(&self.scene, &self.mobile))
    }
}

/// The locator of a number's code in a scene: the SHA-256 of
/// `<scene>#<number>` (scenes hold no `#`). The code's hash is keyed with
/// it.
pub fn sms_locator(scene: &Scene, mobile: &Mobile) -> [u8; 32] {
    Sha256::digest(format!("{scene}#{mobile}")).into()
}

/// The row key of the SMS code at `locator`.
pub fn sms_key_of(locator: &[u8; 32]) -> String {
    format!("sms#{}", hex::encode(locator))
}

/// What [`SmsCodeStore::issue_sms_code`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsIssue {
    /// The code is written (any earlier one of the number in the scene is
    /// gone) and every counter counted.
    Written,
    /// The number's last code was sent less than its resend window ago:
    /// nothing written, nothing counted.
    TooSoon { resend_after_ms: i64 },
    /// Counter `limits[index]` was at its limit: nothing written, nothing
    /// counted.
    Limited { index: usize, window_end_ms: i64 },
}

/// Epoch seconds for the TTL attribute of something that expires at `ms`.
pub fn ttl_seconds(expires_ms: i64) -> i64 {
    expires_ms.div_euclid(1000) + 1
}

/// What a verify attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// Right answer on a pending, unexpired captcha: it is now verified.
    Passed,
    /// Wrong answer; the captcha stays pending with this many answers left.
    Wrong { attempts_left: u32 },
    /// Wrong answer that used up the last attempt: the captcha is now void.
    Voided,
    /// No captcha for this device and scene.
    NotFound,
    /// The captcha was verified or voided before.
    NotPending,
    /// The captcha is pending but past its `expired_date`.
    Expired,
}

/// A WeChat login session, stored under the SHA-256 of its token. The
/// `session_key` WeChat gave the login is stored with it (see
/// [`SessionStore::put_session`]) but is no field of this record: reading a
/// session never reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Hex SHA-256 of the bearer token; the token itself is never stored.
    pub token_hash: String,
    pub openid: String,
    pub unionid: Option<String>,
    /// The number `POST /wx/phone` confirmed for this session, if any.
    pub phone: Option<PhoneNumber>,
    /// Epoch milliseconds.
    pub created_ms: i64,
    /// Epoch milliseconds after which the session is expired.
    pub expires_ms: i64,
}

/// A phone number WeChat confirmed (`getuserphonenumber`), with WeChat's
/// field names. Personal data: `Debug` masks all but its last four digits,
/// so a record that reaches a log line does not carry the number.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    /// As WeChat gives it: local for mainland numbers, else with the
    /// country code.
    pub phone_number: String,
    /// Without the country code.
    pub pure_phone_number: String,
    /// The country code, digits only (`"86"`).
    pub country_code: String,
}

impl std::fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = &self.pure_phone_number;
        let tail = digits.get(digits.len().saturating_sub(4)..).unwrap_or("");
        write!(f, "PhoneNumber(+{} ***{tail})", self.country_code)
    }
}

/// What [`SessionStore::delete_session`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The session was live and is now gone.
    Ended,
    /// The session had expired (its row still existed); the row is gone too.
    Expired,
    /// No session under that hash.
    NotFound,
}

/// One entry of a user's session index: a session's token hash and expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedSession {
    pub token_hash: String,
    /// Epoch milliseconds.
    pub expires_ms: i64,
}

/// The shared WeChat access token of an app, with the lease and the
/// force-refresh bookkeeping every instance decides on (see
/// [`crate::wechat::token`]). Every write is conditional on `version`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessTokenRecord {
    /// The token; `None` until one was fetched.
    pub token: Option<Secret>,
    /// Epoch milliseconds at which WeChat said the token expires.
    pub expires_ms: i64,
    /// Epoch milliseconds until which one instance holds the right to
    /// fetch a new token (0: nobody does).
    pub lease_until_ms: i64,
    /// The day (China time, days since the epoch) `force_count` counts in.
    pub force_day: i64,
    /// Force refreshes made on `force_day`.
    pub force_count: u32,
    /// Epoch milliseconds of the last force refresh (0: never).
    pub last_force_ms: i64,
    /// Bumped by every write; 0 means "no row".
    pub version: u64,
}

/// How long an access-token row outlives its token: its force-refresh
/// counters must survive the day.
pub const ACCESS_TOKEN_ROW_SLACK_MS: i64 = 2 * 86_400_000;

/// What [`AccessTokenStore::swap_access_token`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSwap {
    /// Written: the row now holds the record, at the expected version + 1.
    Written,
    /// Another writer came first; this is what the row holds now (`None`
    /// when there is no row).
    Lost(Option<AccessTokenRecord>),
}

pub fn session_key_of(token_hash: &str) -> String {
    format!("session#{token_hash}")
}

/// The row key of a user's session index (the openid is the key's only
/// variable part, so the key is unambiguous whatever it holds).
pub fn session_index_key_of(openid: &str) -> String {
    format!("wxsessions#{openid}")
}

/// The row key of an app's shared access token.
pub fn access_token_key_of(appid: &str) -> String {
    format!("wxtoken#{appid}")
}

/// The row key of a user's cached WeChat risk rank in WeChat scene `scene`
/// (`0` register, `1` marketing): the scene comes first, so the key is
/// unambiguous whatever the openid holds.
pub fn risk_rank_key_of(scene: u8, openid: &str) -> String {
    format!("wxrisk#{scene}#{openid}")
}

/// The row key of a presented ticket, by the hex SHA-256 of the ticket.
pub fn ticket_key_of(ticket_hash: &str) -> String {
    format!("ticket#{ticket_hash}")
}

pub fn counter_key_of(name: &str) -> String {
    format!("rate#{name}")
}

/// A fixed-window counter that a write must stay within: the write adds one
/// to `name` only while its count is below `limit` (see
/// [`CaptchaStore::issue_captcha`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterLimit {
    /// The counter's name, window included (see [`crate::ratelimit`]).
    pub name: String,
    /// Most requests the window admits.
    pub limit: u64,
    /// Epoch milliseconds at which the window ends (and the row expires).
    pub window_end_ms: i64,
}

/// What WeChat said of a user's risk (`getuserriskrank`), as the cache
/// keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RiskAnswer {
    /// `risk_rank`: 0 (no risk) to 4 (highest).
    Rank(u8),
    /// No rank: the name of the failure (see `crate::wechat::risk_rank`),
    /// kept briefly so that an outage is not asked again on every request.
    Failed(String),
}

/// A user's WeChat risk rank in one WeChat scene, cached for every instance
/// (see `crate::wechat::risk`). Its row is `wxrisk#<scene>#<openid>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskRankRecord {
    pub answer: RiskAnswer,
    /// Epoch milliseconds of WeChat's answer (each reader judges freshness
    /// by its own cache time from here).
    pub checked_ms: i64,
    /// Epoch milliseconds after which no reader uses it (and the row
    /// expires).
    pub expires_ms: i64,
}

/// Which captcha write [`CaptchaStore::issue_captcha`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueMode {
    /// Replace any earlier captcha (as [`CaptchaStore::create_captcha`]).
    Create,
    /// Replace an existing captcha only (as [`CaptchaStore::refresh_captcha`]).
    Refresh,
}

/// What [`CaptchaStore::issue_captcha`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueOutcome {
    /// The captcha is written and every counter counted.
    Written,
    /// A counter was at its limit: nothing written, nothing counted.
    RateLimited { window_end_ms: i64 },
    /// Refresh without a captcha to replace: nothing written, nothing counted.
    NotFound,
}

/// What earned a pass: an image captcha, a Tencent ticket or an SMS code.
/// Each kind
/// has a row key prefix of its own, so that IAM lets each verify function
/// write its own kind of pass and no other (`api::Function::table_grants`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassKind {
    Captcha,
    Ticket,
    /// A right SMS code: the pass also carries the number it proves.
    Sms,
}

impl PassKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PassKind::Captcha => "captcha",
            PassKind::Ticket => "ticket",
            PassKind::Sms => "sms",
        }
    }
}

/// The row key of a pass: `pass#<kind>#<hex SHA-256 of its secret>`. The
/// secret is the pass: whoever holds it finds the row, nobody else can.
pub fn pass_key_of(kind: PassKind, secret_hash: &str) -> String {
    format!("pass#{}#{secret_hash}", kind.as_str())
}

/// A pass as the verify that vouches for it writes it, in a row of its own
/// (so that nothing done to the captcha or ticket that earned it, a new
/// captcha for the same device say, touches it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassGrant {
    pub kind: PassKind,
    /// Hex SHA-256 of the pass's secret (never the secret).
    pub secret_hash: String,
    pub scene: Scene,
    /// The device it was earned with, if any (a ticket may name none).
    pub device: Option<DeviceId>,
    /// The client IP it was earned from, when known.
    pub ip: Option<String>,
    /// What a door that binds the IP compares (`crate::guard::pass::ip_net`:
    /// the IPv4 address, the IPv6 /64), when the IP is known.
    pub ip_net: Option<String>,
    /// Tencent's `EvilLevel` (tickets).
    pub evil_level: Option<i64>,
    /// Earned without Tencent's word (a disaster-recovery ticket, CaptchaCode
    /// 21 or 26, Tencent unreachable) where the scene's policy admits it.
    pub degraded: bool,
    /// The number a right SMS code proved the client holds (SMS passes).
    pub mobile: Option<Mobile>,
    /// Epoch milliseconds.
    pub created_ms: i64,
    /// Epoch milliseconds after which the pass is refused.
    pub expires_ms: i64,
}

impl PassGrant {
    pub fn key(&self) -> String {
        pass_key_of(self.kind, &self.secret_hash)
    }
}

/// A redemption: the pass of `kind` whose secret hashes to `secret_hash`,
/// presented to a door of `scene` at `now_ms`.
#[derive(Debug, Clone, Copy)]
pub struct PassClaim<'a> {
    pub kind: PassKind,
    pub secret_hash: &'a str,
    pub scene: &'a Scene,
    /// The device presenting it, when named: a pass earned with another
    /// device is refused (one earned without a device fits any).
    pub device: Option<&'a DeviceId>,
    /// Only the device that earned it may redeem it (`bindDevice`): `device`
    /// must be named and equal to the pass's.
    pub bind_device: bool,
    /// Only from the network it was earned from (`bindIp`): the presenter's
    /// [`PassGrant::ip_net`].
    pub bind_ip_net: Option<&'a str>,
    /// A retry of a redemption made under this key, within the pass's
    /// lifetime, redeems again (the same admission); another key is refused.
    pub idempotency_key: Option<&'a str>,
    /// Only such a retry may redeem: a pass not yet redeemed under
    /// `idempotency_key` stays unspent.
    pub replay_only: bool,
    pub now_ms: i64,
}

/// A redeemed pass: what it was earned with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemedPass {
    pub kind: PassKind,
    pub scene: Scene,
    pub device: Option<DeviceId>,
    /// The client IP it was earned from (empty when unknown).
    pub ip: String,
    pub evil_level: Option<i64>,
    /// A ticket pass earned without Tencent's word (see [`PassGrant`]).
    pub degraded: bool,
    /// The number an SMS pass proved the client holds.
    pub mobile: Option<Mobile>,
    /// Epoch milliseconds at which it was earned.
    pub created_ms: i64,
}

impl RedeemedPass {
    /// What a redemption of `grant` answers.
    pub fn of(grant: &PassGrant) -> Self {
        Self {
            kind: grant.kind,
            scene: grant.scene.clone(),
            device: grant.device.clone(),
            ip: grant.ip.clone().unwrap_or_default(),
            evil_level: grant.evil_level,
            degraded: grant.degraded,
            mobile: grant.mobile.clone(),
            created_ms: grant.created_ms,
        }
    }
}

/// What a redemption came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    Redeemed(RedeemedPass),
    /// No such pass (no row, or a row that is not a pass of that kind).
    Unknown,
    /// Redeemed before (under another idempotency key, or none).
    Used,
    Expired,
    /// Earned in another scene.
    OtherScene,
    /// Earned by another device than the one redeeming it (or, where the
    /// door binds the device, by none, or presented without one).
    OtherDevice,
    /// Earned from another IP (IPv6: another /64), where the door binds it.
    OtherIp,
}

impl Redemption {
    /// What the outcome was, for the log.
    pub fn reason(&self) -> &'static str {
        match self {
            Redemption::Redeemed(_) => "redeemed",
            Redemption::Unknown => "unknown",
            Redemption::Used => "used",
            Redemption::Expired => "expired",
            Redemption::OtherScene => "other scene",
            Redemption::OtherDevice => "other device",
            Redemption::OtherIp => "other IP",
        }
    }
}

/// Captcha rows.
#[async_trait]
pub trait CaptchaStore: Send + Sync {
    /// Writes `record` as the device's captcha for the scene, replacing any
    /// earlier one whatever its state. Exactly one request.
    async fn create_captcha(&self, record: &CaptchaRecord) -> Result<(), StoreError>;

    /// Replaces the device's captcha for the scene with `record`, but only if
    /// one exists (in any state, expired or not). Returns `false`, writing
    /// nothing, when there was none. Exactly one (conditional) request.
    async fn refresh_captcha(&self, record: &CaptchaRecord) -> Result<bool, StoreError>;

    /// Writes `record` as [`CaptchaStore::create_captcha`] or
    /// [`CaptchaStore::refresh_captcha`] would, and adds one to every counter
    /// of `limits`, never past a limit: when a counter is at its limit the
    /// outcome is [`IssueOutcome::RateLimited`] (which wins over a missing
    /// captcha), and in the end nothing is counted or written. One round
    /// trip when written: the captcha's request and one per counter, sent
    /// at once, one write unit each (no transaction, which bills two per
    /// item). A refused request takes one more round trip to undo its
    /// writes, and meanwhile the device's earlier captcha is replaced (see
    /// the DynamoDB store's `issue_captcha`).
    async fn issue_captcha(
        &self,
        record: &CaptchaRecord,
        mode: IssueMode,
        limits: &[CounterLimit],
    ) -> Result<IssueOutcome, StoreError>;

    /// Checks `answer` (already normalised) against the device's captcha for
    /// the scene at `now_ms`, at most once per captcha however many callers
    /// race, and grants `pass` exactly when the answer passes: in the same
    /// atomic write, so that no right answer is left without its pass, and
    /// no pass is written for an answer that did not pass (see
    /// [`PassStore::grant_pass`] for what a grant is). Every answer is
    /// counted as an attempt in the same write that judges it (so no store
    /// failure hands out an uncounted guess): a right one sets the state to
    /// verified, a wrong one voids the captcha at `max_attempts`.
    ///
    /// Requests, with a pass: a right answer is one (a transaction of the
    /// captcha's conditional update and the pass's conditional put, two
    /// write units per item), a wrong answer two (that transaction,
    /// cancelled, then the conditional update that counts it). Without
    /// one: one conditional update, right or wrong (a captcha of an older
    /// gatehouse's right answer one more). Racing answers, and an answer
    /// after counted ones, take a request more each. A retry of the request
    /// after a lost response answers what its first attempt came to (and
    /// its pass is `pass`, which the caller holds).
    async fn verify_captcha_granting(
        &self,
        scene: &Scene,
        device: &DeviceId,
        answer: &str,
        now_ms: i64,
        max_attempts: u32,
        pass: Option<&PassGrant>,
    ) -> Result<VerifyOutcome, StoreError>;

    /// [`CaptchaStore::verify_captcha_granting`] without a pass: one
    /// conditional update, right answer or wrong.
    async fn verify_captcha(
        &self,
        scene: &Scene,
        device: &DeviceId,
        answer: &str,
        now_ms: i64,
        max_attempts: u32,
    ) -> Result<VerifyOutcome, StoreError> {
        self.verify_captcha_granting(scene, device, answer, now_ms, max_attempts, None)
            .await
    }
}

/// SMS code rows.
#[async_trait]
pub trait SmsCodeStore: Send + Sync {
    /// Writes `record` as its number's code in its scene, replacing any
    /// earlier one (a new send voids the previous code), unless that one's
    /// `resend_after` is still after `now_ms`; and adds one to every counter
    /// of `limits`, never past a limit. Refused, nothing is written or
    /// counted in the end (too soon wins over a full counter). One round
    /// trip when written: the row's conditional write and one conditional
    /// update per counter, sent at once, one write unit each; a refused
    /// request takes one more round trip to undo (as
    /// [`CaptchaStore::issue_captcha`]). A retry of the write after a lost
    /// response knows its own (`send_id`).
    async fn issue_sms_code(
        &self,
        record: &SmsCodeRecord,
        limits: &[CounterLimit],
        now_ms: i64,
    ) -> Result<SmsIssue, StoreError>;

    /// Voids the code `record` wrote while the row is still that send's
    /// (`send_id`), after Tencent did not send it: no code is left that
    /// could be verified, and the resend window stays. One conditional
    /// request.
    async fn void_sms_code(&self, record: &SmsCodeRecord) -> Result<(), StoreError>;

    /// Checks `answer_hash` (the keyed hash of the answer, see
    /// `crate::sms::code::code_hash`) against the number's code in the
    /// scene at `now_ms`, as [`CaptchaStore::verify_captcha`] checks a
    /// captcha: one conditional request that counts the attempt and judges
    /// it, passing at most once however many race, void at
    /// `max_attempts`. A retry after a lost response answers what its
    /// first attempt came to. The pass a right code earns is the caller's
    /// next write ([`PassStore::grant_pass`]).
    async fn verify_sms_code(
        &self,
        scene: &Scene,
        mobile: &Mobile,
        answer_hash: &str,
        now_ms: i64,
        max_attempts: u32,
    ) -> Result<VerifyOutcome, StoreError>;
}

/// WeChat login sessions. Nothing here returns a `session_key` but
/// [`SessionStore::session_key`]: the `session` and `authorizer` functions
/// never read one (DynamoDB projects it out).
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session, with the `session_key` of its login when given.
    /// One request.
    async fn put_session(
        &self,
        session: &SessionRecord,
        session_key: Option<&Secret>,
    ) -> Result<(), StoreError>;

    /// The session stored under `token_hash`, expired or not (the caller
    /// checks `expires_ms`), without its `session_key`. One request.
    async fn get_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// The `session_key` stored with a session, for code that decrypts
    /// WeChat data of the user (never called by `session` or `authorizer`).
    /// One request.
    async fn session_key(&self, token_hash: &str) -> Result<Option<Secret>, StoreError>;

    /// Deletes the session, telling a live one from an expired one without
    /// reading its `session_key`. One conditional request for a live
    /// session; up to three otherwise.
    async fn delete_session(&self, token_hash: &str, now_ms: i64)
    -> Result<SessionEnd, StoreError>;

    /// Deletes every session of `token_hashes` that exists (missing ones are
    /// no error). One request per 25 hashes, plus retries of what DynamoDB
    /// left unprocessed.
    async fn delete_sessions(&self, token_hashes: &[String]) -> Result<(), StoreError>;

    /// Keeps `phone` with `session` (as read) while it is live at `now_ms`:
    /// `false`, writing nothing, when it is gone or expired. A session's
    /// expiry never changes (a refresh makes a new row), so the one read is
    /// judged here and the write only needs the row to exist: it touches
    /// the key and the phone's attributes alone, which is all IAM lets
    /// `wx-phone` write (it can neither make nor extend a session). One
    /// conditional request for a live session, none for an expired one.
    async fn set_session_phone(
        &self,
        session: &SessionRecord,
        phone: &PhoneNumber,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Replaces the session `old_hash`, while it is live at `now_ms`, by
    /// `new`, all or nothing: `false`, writing nothing, when the old one is
    /// gone or expired (so of racing replacements one wins). `new` carries
    /// no `session_key`. One request (a transaction of two items).
    async fn replace_session(
        &self,
        old_hash: &str,
        new: &SessionRecord,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
}

/// Each user's session index: one row per openid listing the hashes (and
/// expiries) of its sessions, so that every session of a user can be found
/// with one strongly consistent request. The services write a session
/// before indexing it, so a session row is never left unlisted
/// (`docs/wechat.md`, "Sessions a user can end").
#[async_trait]
pub trait SessionIndexStore: Send + Sync {
    /// Lists `session` in `openid`'s index and removes `remove` from it, in
    /// one write, returning every entry the index then holds. The row lives
    /// until `keep_until_ms`. One request.
    async fn index_session(
        &self,
        openid: &str,
        session: &IndexedSession,
        remove: &[String],
        keep_until_ms: i64,
    ) -> Result<Vec<IndexedSession>, StoreError>;

    /// Removes `token_hashes` from `openid`'s index. One request.
    async fn unindex_sessions(
        &self,
        openid: &str,
        token_hashes: &[String],
    ) -> Result<(), StoreError>;

    /// Replaces `openid`'s index by `session` alone, returning the entries
    /// it held before (an entry added meanwhile is either returned or kept).
    /// Safe to retry: a retry returns the same entries. One request, and a
    /// second to remove the entries returned when there are any.
    async fn reset_session_index(
        &self,
        openid: &str,
        session: &IndexedSession,
        keep_until_ms: i64,
    ) -> Result<Vec<IndexedSession>, StoreError>;

    /// Empties `openid`'s index, returning the entries it held (as
    /// [`SessionIndexStore::reset_session_index`]: an entry added meanwhile
    /// is either returned or kept, and a retry returns the same entries).
    /// One request, and a second to remove the entries returned when there
    /// are any.
    async fn take_session_index(&self, openid: &str) -> Result<Vec<IndexedSession>, StoreError>;
}

/// The shared WeChat access token, one row per app.
#[async_trait]
pub trait AccessTokenStore: Send + Sync {
    /// The app's token row, strongly consistent. One request.
    async fn get_access_token(&self, appid: &str) -> Result<Option<AccessTokenRecord>, StoreError>;

    /// Writes `record` at version `expected + 1`, but only while the row is
    /// still at version `expected` (0: no row yet); else returns what the
    /// row holds now. `record.version` is ignored. One conditional request.
    async fn swap_access_token(
        &self,
        appid: &str,
        expected: u64,
        record: &AccessTokenRecord,
    ) -> Result<TokenSwap, StoreError>;
}

/// Presented Tencent tickets.
#[async_trait]
pub trait TicketStore: Send + Sync {
    /// Records a ticket hash until `expires_ms`. Returns `true` the first
    /// time (also when the request was retried after its first response was
    /// lost), `false` while an unexpired record of it exists. One request.
    async fn claim_ticket(
        &self,
        ticket_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<bool, StoreError>;
}

/// Passes, each in a row of its own ([`pass_key_of`]).
#[async_trait]
pub trait PassStore: Send + Sync {
    /// Writes a new pass, never over an existing row: one conditional
    /// request (a PutItem, the only write that makes a pass: see
    /// `api::Function::table_grants`; a captcha's pass is the same Put
    /// inside its verify's transaction, see
    /// [`CaptchaStore::verify_captcha_granting`]). A retry after a lost response
    /// recognises its own write; a row already there under the key (which
    /// 256 random bits make a store fault, not a collision) is an error.
    async fn grant_pass(&self, pass: &PassGrant) -> Result<(), StoreError>;

    /// Redeems a pass at most once, however many callers race (or again,
    /// under the same idempotency key: see [`PassClaim`]): one conditional
    /// request that marks it redeemed, its conditions the claim's scene,
    /// expiry, device and IP, so that a refused pass stays unspent. A retry
    /// of the request after a lost response still answers `Redeemed`. Only a
    /// row holding a pass's kind and creation time is a pass.
    async fn redeem_pass(&self, claim: &PassClaim<'_>) -> Result<Redemption, StoreError>;
}

/// Fixed-window counters: rate limits, and the guard's requests and
/// failures (see [`GuardTally`]).
#[async_trait]
pub trait CounterStore: Send + Sync {
    /// Adds one to the fixed-window counter `name` (the caller puts the
    /// window into the name) and returns the new count. The row expires at
    /// `window_end_ms`. One atomic request, which a retry after a lost
    /// response does not count again.
    async fn increment_counter(&self, name: &str, window_end_ms: i64) -> Result<u64, StoreError>;

    /// Counts one `event` in each guard counter row of `names` (one per
    /// subject: an IP, a device, an openid) in its window of
    /// `windows`, and answers every row's counts, this one included: one
    /// UpdateItem per row, all sent at once, one write unit each, which a
    /// retry after a lost response does not count again. A row DynamoDB
    /// throttles is [`GuardTally::Throttled`], not an error.
    async fn count_guard(
        &self,
        names: &[String],
        windows: &GuardWindows,
        event: GuardEvent,
    ) -> Result<Vec<GuardTally>, StoreError>;

    /// The counts of the guard counter rows `names` in `windows` (0 for a
    /// row or window not yet counted), counting nothing. One request,
    /// strongly consistent, whatever the number of names (at most 100).
    async fn read_guard(
        &self,
        names: &[String],
        windows: &GuardWindows,
    ) -> Result<Vec<GuardTally>, StoreError>;
}

/// Cached WeChat risk ranks, one row per user and WeChat scene. The guard
/// reads its failure counters and the rank row in one request
/// ([`RiskRankStore::counts_with_risk_rank`]); anything else reads the row
/// alone ([`RiskRankStore::get_risk_rank`]).
#[async_trait]
pub trait RiskRankStore: Send + Sync {
    /// The rank cached for `openid` in WeChat scene `scene`, expired or not
    /// (the caller checks). One request, strongly consistent.
    async fn get_risk_rank(
        &self,
        scene: u8,
        openid: &str,
    ) -> Result<Option<RiskRankRecord>, StoreError>;

    /// [`CounterStore::read_guard`] of `names` in `windows` and
    /// [`RiskRankStore::get_risk_rank`] together: one request (the rank
    /// row's key beside the counters' in one BatchGetItem, at most 99
    /// names), strongly consistent. Throttled, every row is
    /// [`GuardTally::Throttled`] and the rank unknown.
    async fn counts_with_risk_rank(
        &self,
        names: &[String],
        windows: &GuardWindows,
        scene: u8,
        openid: &str,
    ) -> Result<(Vec<GuardTally>, Option<RiskRankRecord>), StoreError>;

    /// Keeps `record` for `openid` in WeChat scene `scene`, replacing any
    /// earlier one (both are WeChat's word; the later wins), until
    /// `record.expires_ms`. One request, one write unit.
    async fn put_risk_rank(
        &self,
        scene: u8,
        openid: &str,
        record: &RiskRankRecord,
    ) -> Result<(), StoreError>;
}

/// What the captcha routes use: captcha rows, counters (rate limits, the
/// guard's failures) and the passes a right answer grants.
pub trait CaptchaServiceStore: CaptchaStore + CounterStore + PassStore {}
impl<T: CaptchaStore + CounterStore + PassStore> CaptchaServiceStore for T {}

/// What checking, ending and opening sessions uses: sessions and each
/// user's session index.
pub trait SessionServiceStore: SessionStore + SessionIndexStore {}
impl<T: SessionStore + SessionIndexStore> SessionServiceStore for T {}

/// What `POST /wx/login` uses: the sessions it opens and its rate limit.
pub trait LoginServiceStore: SessionServiceStore + CounterStore {}
impl<T: SessionServiceStore + CounterStore> LoginServiceStore for T {}

/// What `POST /wx/phone` uses: the sessions, its rate limit and the shared
/// access token.
pub trait PhoneServiceStore: SessionServiceStore + CounterStore + AccessTokenStore {}
impl<T: SessionServiceStore + CounterStore + AccessTokenStore> PhoneServiceStore for T {}

/// What `POST /ticket/verify` uses: ticket rows, counters (rate limit, the
/// guard's failures) and the passes it grants.
pub trait TicketServiceStore: TicketStore + CounterStore + PassStore {}
impl<T: TicketStore + CounterStore + PassStore> TicketServiceStore for T {}

/// What the guard uses: its failure counters and the passes it redeems.
pub trait GuardStore: CounterStore + PassStore + RiskRankStore {}
impl<T: CounterStore + PassStore + RiskRankStore> GuardStore for T {}

/// What the SMS routes use: code rows, counters (limits, the guard's
/// failures) and, at the send's door, the passes it redeems.
pub trait SmsServiceStore: SmsCodeStore + GuardStore {}
impl<T: SmsCodeStore + GuardStore> SmsServiceStore for T {}

/// What WeChat risk ranks use (`crate::wechat::risk`): the cached ranks and
/// the shared access token.
pub trait RiskRanksStore: RiskRankStore + AccessTokenStore {}
impl<T: RiskRankStore + AccessTokenStore> RiskRanksStore for T {}

/// Every capability at once: what a store implementation provides. A
/// service holds only the traits it uses (one of the sets above, or one
/// narrow trait); `Store` names every set too, so that an `Arc<dyn Store>`
/// converts to any of them.
pub trait Store:
    CaptchaStore
    + SmsCodeStore
    + SessionStore
    + SessionIndexStore
    + TicketStore
    + PassStore
    + CounterStore
    + AccessTokenStore
    + RiskRankStore
    + CaptchaServiceStore
    + LoginServiceStore
    + PhoneServiceStore
    + TicketServiceStore
    + GuardStore
    + SmsServiceStore
    + RiskRanksStore
{
}

impl<T> Store for T where
    T: CaptchaStore
        + SmsCodeStore
        + SessionStore
        + SessionIndexStore
        + TicketStore
        + PassStore
        + CounterStore
        + AccessTokenStore
        + RiskRankStore
{
}
