//! The DynamoDB store of the Lambdas: every row in one table keyed by the
//! string `pk`, every row carrying the TTL attribute `ttl` (epoch seconds).
//!
//! Captcha rows use the field names of uniCloud's `opendb-verify-codes`
//! (`device_uuid`, `scene`, `code`, `state`, `ip`, `created_date`,
//! `expired_date`) plus `attempts`. Every state change is a conditional write
//! that asks for the old item when its condition fails
//! (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), so nothing is ever read
//! and then written: a create, a refresh and a passing verify are one request
//! each, and however many verifies race only one can pass.
//!
//! | row | `pk` | other attributes |
//! |---|---|---|
//! | captcha | `captcha#<scene>#<device>` | `device_uuid scene code state ip created_date expired_date attempts ttl` |
//! | session | `session#<sha256 of token>` | `token_hash openid unionid? session_key created_date expired_date ttl` |
//! | ticket | `ticket#<sha256 of ticket>` | `expired_date ttl` |
//! | counter | `rate#<name incl. window>` | `count expired_date ttl` |
//!
//! Times are epoch milliseconds except `ttl` (epoch seconds, see
//! [`ttl_seconds`]). TTL deletion lags, so every decision compares the
//! millisecond fields with the caller's `now_ms`, never trusts absence.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};

use super::*;

type Item = HashMap<String, AttributeValue>;

/// How often a wrong answer's attempt count is retried when other verifies
/// of the same captcha keep winning the race to count theirs. Each lost
/// round means another caller made progress, so this is never reached in
/// practice; it only bounds the loop.
const MAX_VERIFY_ROUNDS: usize = 64;

/// Client settings for a Lambda: a DynamoDB request normally answers in
/// milliseconds, so a slow attempt is retried soon and a whole operation,
/// retries included, gives up well inside a function's time-out.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(4);
const MAX_ATTEMPTS: u32 = 3;
const INITIAL_BACKOFF: Duration = Duration::from_millis(25);
/// Rounds of a rate-limited captcha write that DynamoDB cancelled because
/// another transaction held one of its counters (`TransactionConflict`).
/// Two racing requests of one client each need a counter at the same time;
/// after these rounds the request is answered `rate-limited`.
const MAX_CONFLICT_ROUNDS: u32 = 3;

/// A bad `TABLE_NAME` or `DYNAMODB_ENDPOINT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DynamoConfigError {
    #[error("TABLE_NAME is not set: it must name the DynamoDB table")]
    MissingTable,
    #[error(
        "TABLE_NAME={0:?} is not a DynamoDB table name (3 to 255 characters of A-Z a-z 0-9 _ - .)"
    )]
    InvalidTable(String),
    #[error("DYNAMODB_ENDPOINT={0:?} is not an http:// or https:// URL")]
    InvalidEndpoint(String),
}

/// What [`DynamoStore::from_env`] reads from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoSettings {
    /// `TABLE_NAME`, required.
    pub table: String,
    /// `DYNAMODB_ENDPOINT`, for DynamoDB Local; unset in AWS.
    pub endpoint: Option<String>,
}

impl DynamoSettings {
    /// Reads and validates the settings through `var` (the environment in
    /// [`DynamoStore::from_env`], a map in tests).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, DynamoConfigError> {
        let table = var("TABLE_NAME")
            .filter(|t| !t.trim().is_empty())
            .ok_or(DynamoConfigError::MissingTable)?;
        let valid_table = (3..=255).contains(&table.len())
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid_table {
            return Err(DynamoConfigError::InvalidTable(table));
        }
        let endpoint = match var("DYNAMODB_ENDPOINT").filter(|e| !e.trim().is_empty()) {
            None => None,
            Some(e) => {
                let e = e.trim().to_owned();
                let rest = e
                    .strip_prefix("http://")
                    .or_else(|| e.strip_prefix("https://"));
                match rest {
                    Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
                        Some(e)
                    }
                    _ => return Err(DynamoConfigError::InvalidEndpoint(e)),
                }
            }
        };
        Ok(Self { table, endpoint })
    }
}

/// The retry and time-out settings every [`DynamoStore`] client should use
/// (see [`DynamoStore::from_env`]); public so tests build clients the same way.
pub fn lambda_retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
}

/// See [`lambda_retry_config`].
pub fn lambda_timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store over `table` through `client` (whose configuration the caller
    /// owns: tests point it at DynamoDB Local and add interceptors).
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// The store of a Lambda: `TABLE_NAME` (required) and `DYNAMODB_ENDPOINT`
    /// (optional, for DynamoDB Local) from the environment, the AWS
    /// configuration loaded once, with [`lambda_retry_config`] and
    /// [`lambda_timeout_config`]. With `DYNAMODB_ENDPOINT` set and no
    /// `AWS_ACCESS_KEY_ID`, it uses dummy credentials (DynamoDB Local accepts
    /// any) and `AWS_REGION`/`AWS_DEFAULT_REGION` or else `us-east-1`, so a
    /// local run never waits on the instance metadata service.
    pub async fn from_env() -> Result<Self, DynamoConfigError> {
        let settings = DynamoSettings::from_lookup(|k| std::env::var(k).ok())?;
        Ok(Self::connect(&settings).await)
    }

    /// Builds the client for `settings` (see [`DynamoStore::from_env`]).
    pub async fn connect(settings: &DynamoSettings) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(lambda_retry_config())
            .timeout_config(lambda_timeout_config());
        if settings.endpoint.is_some() {
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
                loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                    "local",
                    "local",
                    None,
                    None,
                    "gatehouse-local",
                ));
            }
            // Not the default region chain: off AWS its last resort, the
            // instance metadata service, only costs time.
            let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .into_iter()
                .find_map(|k| std::env::var(k).ok().filter(|r| !r.trim().is_empty()))
                .unwrap_or_else(|| "us-east-1".to_owned());
            loader = loader.region(aws_sdk_dynamodb::config::Region::new(region));
        }
        let sdk = loader.load().await;
        let mut conf = aws_sdk_dynamodb::config::Builder::from(&sdk);
        if let Some(endpoint) = &settings.endpoint {
            conf = conf.endpoint_url(endpoint);
        }
        Self::new(Client::from_conf(conf.build()), settings.table.clone())
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn captcha_item(record: &CaptchaRecord) -> Item {
        HashMap::from([
            (KEY_ATTRIBUTE.to_owned(), s(record.key())),
            ("device_uuid".to_owned(), s(&record.device_uuid)),
            ("scene".to_owned(), s(&record.scene)),
            ("code".to_owned(), s(&record.code)),
            ("state".to_owned(), n(record.state as i64)),
            ("ip".to_owned(), s(&record.ip)),
            ("created_date".to_owned(), n(record.created_date)),
            ("expired_date".to_owned(), n(record.expired_date)),
            ("attempts".to_owned(), n(record.attempts)),
            (
                TTL_ATTRIBUTE.to_owned(),
                n(ttl_seconds(record.expired_date)),
            ),
        ])
    }

    /// One conditional UpdateItem that counts a wrong answer, guarded on the
    /// attempt count `seen` (so racing wrong answers each count once) and on
    /// the answer still being wrong. `Ok(Err(old))` when the guard failed.
    async fn count_attempt(
        &self,
        key: &str,
        answer: &str,
        now_ms: i64,
        seen: u32,
        max_attempts: u32,
    ) -> Result<Result<VerifyOutcome, Option<Item>>, StoreError> {
        let attempts = seen.saturating_add(1);
        let voided = attempts >= max_attempts;
        let new_state = if voided {
            CaptchaState::Void
        } else {
            CaptchaState::Pending
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(key))
            .update_expression("SET #attempts = :attempts, #state = :new_state")
            .condition_expression(
                "#state = :pending AND #attempts = :seen \
                 AND (#code <> :answer OR size(#code) = :zero) AND #expired > :now",
            )
            .expression_attribute_names("#attempts", "attempts")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#code", "code")
            .expression_attribute_names("#expired", "expired_date")
            .expression_attribute_values(":attempts", n(attempts))
            .expression_attribute_values(":new_state", n(new_state as i64))
            .expression_attribute_values(":pending", n(CaptchaState::Pending as i64))
            .expression_attribute_values(":seen", n(seen))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":answer", s(answer))
            .expression_attribute_values(":now", n(now_ms))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) if voided => Ok(Ok(VerifyOutcome::Voided)),
            Ok(_) => Ok(Ok(VerifyOutcome::Wrong {
                attempts_left: max_attempts - attempts,
            })),
            Err(err) => Ok(Err(update_condition_failed(
                err,
                "verify_captcha (count attempt)",
            )?)),
        }
    }
}

/// Where a verify stands, judged from the item a failed condition returned.
enum Seen {
    Final(VerifyOutcome),
    /// Pending, unexpired, and the answer matches: try to pass again.
    Matches,
    /// Pending, unexpired, wrong answer, with this many attempts counted.
    Wrong(u32),
}

fn classify(old: Option<&Item>, answer: &str, now_ms: i64) -> Result<Seen, StoreError> {
    let Some(item) = old else {
        return Ok(Seen::Final(VerifyOutcome::NotFound));
    };
    let state = get_n(item, "state")?;
    if CaptchaState::from_number(state) != Some(CaptchaState::Pending) {
        return Ok(Seen::Final(VerifyOutcome::NotPending));
    }
    if now_ms >= get_n(item, "expired_date")? {
        return Ok(Seen::Final(VerifyOutcome::Expired));
    }
    let code = get_s(item, "code")?;
    if !answer.is_empty() && code == answer {
        return Ok(Seen::Matches);
    }
    let attempts =
        u32::try_from(get_n(item, "attempts")?).map_err(|_| corrupt("attempts", "out of range"))?;
    Ok(Seen::Wrong(attempts))
}

#[async_trait]
impl Store for DynamoStore {
    async fn create_captcha(&self, record: &CaptchaRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::captcha_item(record)))
            .send()
            .await
            .map_err(|e| sdk_error("create_captcha", e))?;
        Ok(())
    }

    async fn refresh_captcha(&self, record: &CaptchaRecord) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::captcha_item(record)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", KEY_ATTRIBUTE)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => {
                put_condition_failed(err, "refresh_captcha")?;
                Ok(false)
            }
        }
    }

    async fn issue_captcha(
        &self,
        record: &CaptchaRecord,
        mode: IssueMode,
        limits: &[CounterLimit],
    ) -> Result<IssueOutcome, StoreError> {
        if limits.is_empty() {
            return Ok(match mode {
                IssueMode::Create => {
                    self.create_captcha(record).await?;
                    IssueOutcome::Written
                }
                IssueMode::Refresh if self.refresh_captcha(record).await? => IssueOutcome::Written,
                IssueMode::Refresh => IssueOutcome::NotFound,
            });
        }
        let built = |e: aws_sdk_dynamodb::error::BuildError| {
            StoreError(format!("issue_captcha: request not built: {e}"))
        };
        let mut items = Vec::with_capacity(limits.len() + 1);
        for limit in limits {
            let update = Update::builder()
                .table_name(&self.table)
                .key(KEY_ATTRIBUTE, s(counter_key_of(&limit.name)))
                .update_expression(
                    "ADD #count :one SET #ttl = if_not_exists(#ttl, :ttl), \
                     #expired = if_not_exists(#expired, :expired)",
                )
                .condition_expression("attribute_not_exists(#pk) OR #count < :limit")
                .expression_attribute_names("#pk", KEY_ATTRIBUTE)
                .expression_attribute_names("#count", "count")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_names("#expired", "expired_date")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":limit", n(limit.limit))
                .expression_attribute_values(":ttl", n(ttl_seconds(limit.window_end_ms)))
                .expression_attribute_values(":expired", n(limit.window_end_ms))
                .build()
                .map_err(built)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::captcha_item(record)));
        if mode == IssueMode::Refresh {
            put = put
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", KEY_ATTRIBUTE);
        }
        items.push(
            TransactWriteItem::builder()
                .put(put.build().map_err(built)?)
                .build(),
        );

        for round in 1..=MAX_CONFLICT_ROUNDS {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(IssueOutcome::Written),
                Err(err) => err,
            };
            let reasons: Vec<Option<String>> = match &err {
                SdkError::ServiceError(ctx) => match ctx.err() {
                    TransactWriteItemsError::TransactionCanceledException(cancelled) => cancelled
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().map(str::to_owned))
                        .collect(),
                    _ => return Err(sdk_error("issue_captcha", err)),
                },
                _ => return Err(sdk_error("issue_captcha", err)),
            };
            let failed =
                |i: usize, code: &str| reasons.get(i).and_then(Option::as_deref) == Some(code);
            if let Some(i) = (0..limits.len()).find(|&i| failed(i, "ConditionalCheckFailed")) {
                return Ok(IssueOutcome::RateLimited {
                    window_end_ms: limits[i].window_end_ms,
                });
            }
            if failed(limits.len(), "ConditionalCheckFailed") {
                return Ok(IssueOutcome::NotFound);
            }
            let conflict = (0..=limits.len()).any(|i| failed(i, "TransactionConflict"));
            if !conflict {
                return Err(sdk_error("issue_captcha", err));
            }
            if round == MAX_CONFLICT_ROUNDS {
                tracing::warn!(
                    rounds = round,
                    "issue_captcha kept conflicting on its counters"
                );
                return Ok(IssueOutcome::RateLimited {
                    window_end_ms: limits[0].window_end_ms,
                });
            }
            let jitter = rand::random_range(0..=20u64);
            tokio::time::sleep(Duration::from_millis(10 * u64::from(round) + jitter)).await;
        }
        unreachable!("the last round returns")
    }

    async fn verify_captcha(
        &self,
        scene: &str,
        device_uuid: &str,
        answer: &str,
        now_ms: i64,
        max_attempts: u32,
    ) -> Result<VerifyOutcome, StoreError> {
        let key = captcha_key(scene, device_uuid);
        let mut try_pass = true;
        let mut seen_attempts = 0;
        for _ in 0..MAX_VERIFY_ROUNDS {
            let old = if try_pass {
                // The pass: one conditional write. `size(#code) > 0` keeps an
                // empty answer from ever matching, whatever a row holds.
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key(KEY_ATTRIBUTE, s(&key))
                    .update_expression("SET #state = :verified")
                    .condition_expression(
                        "#state = :pending AND #code = :answer AND size(#code) > :zero \
                         AND #expired > :now",
                    )
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_names("#code", "code")
                    .expression_attribute_names("#expired", "expired_date")
                    .expression_attribute_values(":verified", n(CaptchaState::Verified as i64))
                    .expression_attribute_values(":pending", n(CaptchaState::Pending as i64))
                    .expression_attribute_values(":answer", s(answer))
                    .expression_attribute_values(":zero", n(0))
                    .expression_attribute_values(":now", n(now_ms))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .send()
                    .await;
                match result {
                    Ok(_) => return Ok(VerifyOutcome::Passed),
                    Err(err) => update_condition_failed(err, "verify_captcha")?,
                }
            } else {
                match self
                    .count_attempt(&key, answer, now_ms, seen_attempts, max_attempts)
                    .await?
                {
                    Ok(outcome) => return Ok(outcome),
                    Err(old) => old,
                }
            };
            match classify(old.as_ref(), answer, now_ms)? {
                Seen::Final(outcome) => return Ok(outcome),
                Seen::Matches => try_pass = true,
                Seen::Wrong(attempts) => {
                    try_pass = false;
                    seen_attempts = attempts;
                }
            }
        }
        tracing::error!(
            rounds = MAX_VERIFY_ROUNDS,
            "verify_captcha lost every round of its conditional writes"
        );
        Err(StoreError("verify_captcha: too much contention".into()))
    }

    async fn put_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let mut item = HashMap::from([
            (
                KEY_ATTRIBUTE.to_owned(),
                s(session_key_of(&session.token_hash)),
            ),
            ("token_hash".to_owned(), s(&session.token_hash)),
            ("openid".to_owned(), s(&session.openid)),
            ("session_key".to_owned(), s(&session.session_key)),
            ("created_date".to_owned(), n(session.created_ms)),
            ("expired_date".to_owned(), n(session.expires_ms)),
            (TTL_ATTRIBUTE.to_owned(), n(ttl_seconds(session.expires_ms))),
        ]);
        if let Some(unionid) = &session.unionid {
            item.insert("unionid".to_owned(), s(unionid));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("put_session", e))?;
        Ok(())
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(session_key_of(token_hash)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("get_session", e))?;
        out.item().map(session_from_item).transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(session_key_of(token_hash)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error("delete_session", e))?;
        out.attributes().map(session_from_item).transpose()
    }

    async fn claim_ticket(
        &self,
        ticket_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY_ATTRIBUTE, s(ticket_key_of(ticket_hash)))
            .item("expired_date", n(expires_ms))
            .item(TTL_ATTRIBUTE, n(ttl_seconds(expires_ms)))
            .condition_expression("attribute_not_exists(#pk) OR #expired <= :now")
            .expression_attribute_names("#pk", KEY_ATTRIBUTE)
            .expression_attribute_names("#expired", "expired_date")
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => {
                put_condition_failed(err, "claim_ticket")?;
                Ok(false)
            }
        }
    }

    async fn increment_counter(&self, name: &str, window_end_ms: i64) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(counter_key_of(name)))
            .update_expression(
                "ADD #count :one SET #ttl = if_not_exists(#ttl, :ttl), \
                 #expired = if_not_exists(#expired, :expired)",
            )
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_names("#expired", "expired_date")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(ttl_seconds(window_end_ms)))
            .expression_attribute_values(":expired", n(window_end_ms))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| sdk_error("increment_counter", e))?;
        let attrs = out
            .attributes()
            .ok_or_else(|| corrupt("count", "not returned"))?;
        u64::try_from(get_n(attrs, "count")?).map_err(|_| corrupt("count", "negative"))
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn corrupt(attribute: &str, what: &str) -> StoreError {
    tracing::error!(attribute, what, "unexpected item in the DynamoDB table");
    StoreError(format!("item attribute {attribute}: {what}"))
}

fn get_s<'a>(item: &'a Item, attribute: &str) -> Result<&'a str, StoreError> {
    match item.get(attribute) {
        Some(AttributeValue::S(v)) => Ok(v),
        Some(_) => Err(corrupt(attribute, "not a string")),
        None => Err(corrupt(attribute, "missing")),
    }
}

fn get_n(item: &Item, attribute: &str) -> Result<i64, StoreError> {
    match item.get(attribute) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| corrupt(attribute, "not an integer")),
        Some(_) => Err(corrupt(attribute, "not a number")),
        None => Err(corrupt(attribute, "missing")),
    }
}

fn session_from_item(item: &Item) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        token_hash: get_s(item, "token_hash")?.to_owned(),
        openid: get_s(item, "openid")?.to_owned(),
        unionid: match item.get("unionid") {
            None | Some(AttributeValue::Null(_)) => None,
            Some(_) => Some(get_s(item, "unionid")?.to_owned()),
        },
        session_key: get_s(item, "session_key")?.to_owned(),
        created_ms: get_n(item, "created_date")?,
        expires_ms: get_n(item, "expired_date")?,
    })
}

/// Logs an SDK failure (operation and cause; requests carry no secrets, and
/// the SDK's error context holds none) and turns it into a [`StoreError`].
fn sdk_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let cause = match &err {
        // The service's own code and message (the raw response adds nothing).
        SdkError::ServiceError(ctx) => format!(
            "{}: {}",
            ctx.err().code().unwrap_or("unknown error"),
            ctx.err().message().unwrap_or("no message")
        ),
        other => DisplayErrorContext(other).to_string(),
    };
    tracing::error!(operation, error = %cause, "DynamoDB request failed");
    StoreError(format!("{operation}: {cause}"))
}

/// The old item of an UpdateItem whose condition failed (`None` when there
/// was no item); any other failure is a [`StoreError`].
fn update_condition_failed(
    err: SdkError<UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
    operation: &'static str,
) -> Result<Option<Item>, StoreError> {
    match err {
        SdkError::ServiceError(ctx) => match ctx.err() {
            UpdateItemError::ConditionalCheckFailedException(failed) => Ok(failed.item().cloned()),
            _ => Err(sdk_error(operation, SdkError::ServiceError(ctx))),
        },
        other => Err(sdk_error(operation, other)),
    }
}

/// `Ok` when a PutItem failed only because its condition did.
fn put_condition_failed(
    err: SdkError<PutItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
    operation: &'static str,
) -> Result<(), StoreError> {
    match err {
        SdkError::ServiceError(ctx) if ctx.err().is_conditional_check_failed_exception() => Ok(()),
        other => Err(sdk_error(operation, other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn settings_require_a_valid_table_name() {
        assert_eq!(
            DynamoSettings::from_lookup(lookup(&[])),
            Err(DynamoConfigError::MissingTable)
        );
        assert_eq!(
            DynamoSettings::from_lookup(lookup(&[("TABLE_NAME", "  ")])),
            Err(DynamoConfigError::MissingTable)
        );
        assert_eq!(
            DynamoSettings::from_lookup(lookup(&[("TABLE_NAME", "a b")])),
            Err(DynamoConfigError::InvalidTable("a b".into()))
        );
        let err = DynamoSettings::from_lookup(lookup(&[("TABLE_NAME", "x")])).unwrap_err();
        assert!(err.to_string().contains("TABLE_NAME=\"x\""), "{err}");
        assert_eq!(
            DynamoSettings::from_lookup(lookup(&[("TABLE_NAME", "gatehouse-Table_1.x")])),
            Ok(DynamoSettings {
                table: "gatehouse-Table_1.x".into(),
                endpoint: None
            })
        );
    }

    #[test]
    fn settings_check_the_endpoint() {
        let ok = DynamoSettings::from_lookup(lookup(&[
            ("TABLE_NAME", "tbl"),
            ("DYNAMODB_ENDPOINT", "http://127.0.0.1:8000"),
        ]))
        .unwrap();
        assert_eq!(ok.endpoint.as_deref(), Some("http://127.0.0.1:8000"));
        for bad in ["127.0.0.1:8000", "http://", "ftp://x"] {
            assert_eq!(
                DynamoSettings::from_lookup(lookup(&[
                    ("TABLE_NAME", "tbl"),
                    ("DYNAMODB_ENDPOINT", bad)
                ])),
                Err(DynamoConfigError::InvalidEndpoint(bad.into()))
            );
        }
    }

    #[test]
    fn captcha_items_use_the_opendb_field_names() {
        let record = CaptchaRecord {
            device_uuid: "dev".into(),
            scene: "login".into(),
            code: "ab3d".into(),
            state: CaptchaState::Pending,
            ip: "203.0.113.9".into(),
            created_date: 1_700_000_000_000,
            expired_date: 1_700_000_180_500,
            attempts: 0,
        };
        let item = DynamoStore::captcha_item(&record);
        let mut names: Vec<_> = item.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "attempts",
                "code",
                "created_date",
                "device_uuid",
                "expired_date",
                "ip",
                "pk",
                "scene",
                "state",
                "ttl"
            ]
        );
        assert_eq!(item["pk"], s("captcha#login#dev"));
        assert_eq!(item["state"], n(0));
        assert_eq!(item["ttl"], n(1_700_000_181));
    }

    #[test]
    fn classify_follows_the_memory_store_order() {
        let mut item = DynamoStore::captcha_item(&CaptchaRecord {
            device_uuid: "d".into(),
            scene: "s".into(),
            code: "abcd".into(),
            state: CaptchaState::Pending,
            ip: String::new(),
            created_date: 0,
            expired_date: 1000,
            attempts: 2,
        });
        assert!(matches!(
            classify(None, "abcd", 0),
            Ok(Seen::Final(VerifyOutcome::NotFound))
        ));
        assert!(matches!(
            classify(Some(&item), "abcd", 10),
            Ok(Seen::Matches)
        ));
        assert!(matches!(classify(Some(&item), "", 10), Ok(Seen::Wrong(2))));
        assert!(matches!(
            classify(Some(&item), "abcd", 1000),
            Ok(Seen::Final(VerifyOutcome::Expired))
        ));
        item.insert("state".into(), n(1));
        assert!(matches!(
            classify(Some(&item), "abcd", 1000),
            Ok(Seen::Final(VerifyOutcome::NotPending))
        ));
        item.remove("code");
        item.insert("state".into(), n(0));
        assert!(classify(Some(&item), "abcd", 10).is_err());
    }
}
