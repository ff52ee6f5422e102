//! The DynamoDB store of the Lambdas: every row in one table keyed by the
//! string `pk`, every row carrying the TTL attribute `ttl` (epoch seconds).
//!
//! Captcha rows use the field names of uniCloud's `opendb-verify-codes`
//! (`device_uuid`, `scene`, `code`, `state`, `ip`, `created_date`,
//! `expired_date`) plus `attempts`. Every state change is a conditional write
//! that asks for the old item when its condition fails
//! (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), so nothing is ever read
//! and then written: a create, a refresh and a right captcha answer's
//! verify are one request each (the verify a transaction that writes the
//! answer's pass with it, a row of its own that only the verify functions
//! may create: `pass.rs`, `attempt.rs`), a wrong answer two, and however
//! many verifies race only one can pass.
//!
//! **Cost**: nothing on a route's way is a transaction (two write units per
//! item) but a right answer's verify (its captcha and its pass, which must
//! be written together) and the session refresh; a write that must go with
//! others only as far as limits go (a captcha and its rate-limit counters)
//! is sent alongside them instead, one unit per item (see `captcha.rs`).
//!
//! **Retries**: the client retries an attempt that timed out, which may have
//! been applied. Every conditional write therefore carries a request nonce
//! (the attributes marked *nonce* below) and recognises its own earlier
//! write in the old item its retry's condition refused; a session end,
//! whose row is then gone, makes its own attempts (`session.rs`); a
//! session replacement and a right answer's verify are transactions, with
//! an idempotency token (`ClientRequestToken`) that makes the SDK's retry of
//! an applied one succeed without writing again.
//!
//! | row | `pk` | other attributes |
//! |---|---|---|
//! | captcha | `captcha#<sha256 of scene#device>` | `device_uuid scene code state ip created_date expired_date attempts ttl`, `ok_<sha256 of code>` (the right answer, see `codec::answer_attribute`), `t<n>` (nonce of the n-th answer), `nonce` (of a rate-limited issue) |
//! | pass | `pass#<captcha or ticket>#<sha256 of secret>` | `kind scene device_uuid? ip? ip_net? evil_level? degraded? pass_created pass_expired ttl granted_by` (nonce), once redeemed `pass_redeemed redeemed_by` (nonce) `redeemed_key?` (see `pass.rs`) |
//! | session | `session#<sha256 of token>` | `token_hash openid unionid? session_key? phone_number? pure_phone_number? country_code? created_date expired_date ttl` |
//! | session index | `wxsessions#<openid>` | `openid`, one `s_<sha256 of token>` (expiry, ms) per session, `expired_date ttl` |
//! | access token | `wxtoken#<appid>` | `access_token? expired_date lease_until force_day force_count last_force version written_by ttl` (nonce) |
//! | ticket | `ticket#<sha256 of ticket>` | `expired_date claimed_by ttl` (nonce) |
//! | counter | `rate#<name incl. window>` | `count expired_date ttl`, `w0` … `w7` (nonces, see `counter.rs`) |
//! | guard counter | `rate#guard\|<ip, dev or oid>\|<scene>\|<subject>` | `r<window start>` (requests), `f<window start>` (failures), `ttl`, `w0` … `w7` (nonces; see `guard_counter.rs`); an openid's row also `wx<n>_rank` (0-4) or `wx<n>_failure`, `wx<n>_checked wx<n>_expired` (the user's cached WeChat risk rank in WeChat scene `<n>`, see `risk_rank.rs`) |
//! | risk rank alone (`RiskRanks::rank`) | `wxrisk#<WeChat scene 0 or 1>#<openid>` | `rank` (0-4) or `failure` (its name), `checked_date expired_date ttl` (see `risk_rank.rs`) |
//!
//! Times are epoch milliseconds except `ttl` (epoch seconds, see
//! [`ttl_seconds`]). TTL deletion lags, so every decision compares the
//! millisecond fields with the caller's `now_ms`, never trusts absence.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::KeysAndAttributes;

use crate::config::{ConfigError, Env, process_env};
use crate::store::{KEY_ATTRIBUTE, StoreError};

mod access_token;
mod attempt;
mod captcha;
mod codec;
mod counter;
mod guard_counter;
mod issue;
mod pass;
mod risk_rank;
mod session;
mod session_index;
mod sms;
mod ticket;

pub use pass::{
    CAPTCHA_PASS_ATTRIBUTES, REDEEM_ATTRIBUTES, SMS_PASS_ATTRIBUTES, TICKET_PASS_ATTRIBUTES,
};
pub use session::PHONE_ATTRIBUTES;

/// How often a verify's rounds are tried when other verifies of the same
/// captcha keep winning the race to count theirs (or hold its row in a
/// transaction). Each lost
/// round means another caller made progress, so this is never reached in
/// practice; it only bounds the loop.
const MAX_VERIFY_ROUNDS: usize = 64;

/// Rounds of a BatchGetItem whose keys came back unprocessed.
const MAX_BATCH_ROUNDS: usize = 3;

/// Client settings for a Lambda: a DynamoDB request normally answers in
/// milliseconds, so a slow attempt is retried soon (after 1.5 s, up to three
/// attempts) and a whole operation, retries included, gives up well inside
/// a function's time-out. Retrying writes is safe: see **Retries** above.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(4);
const MAX_ATTEMPTS: u32 = 3;
const INITIAL_BACKOFF: Duration = Duration::from_millis(25);
/// Rounds of a session replacement (a transaction) that DynamoDB cancelled
/// because another transaction held one of its items
/// (`TransactionConflict`).
const MAX_CONFLICT_ROUNDS: u32 = 3;

/// Runs `futures` concurrently (in this task) and returns their outputs in
/// order: what lets a request's independent writes share one round trip.
/// Not `futures_util::future::join_all` (already in the tree): it was
/// measured at about 8 KB more in every arm64 bootstrap, and wx-login has
/// 34 KB left under the 6,000,000-byte limit.
pub(super) async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// One write of a refused request's undo (see `captcha.rs`, `sms.rs`).
pub(super) type Undo<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// Runs `undo` at once (one round trip); a write that could not be undone
/// stays, logged (a limit then errs on the strict side).
pub(super) async fn run_undo(undo: Vec<Undo<'_>>, operation: &'static str) {
    for failed in join_all(undo).await.into_iter().filter_map(Result::err) {
        tracing::warn!(error = %failed, operation, "a refused request's write stays");
    }
}

/// Why [`DynamoStore::batch_get`] found nothing.
pub(super) enum BatchGetError {
    Throttled,
    Store(StoreError),
}

impl DynamoStore {
    /// A strongly consistent GetItem of the row at `key`, to send once its
    /// projection (if any) is set.
    pub(super) fn get_row(
        &self,
        key: impl Into<String>,
    ) -> aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder {
        self.client
            .get_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, codec::s(key))
            .consistent_read(true)
    }

    /// The items at `keys` (at most 100), strongly consistent, each with
    /// its key and `attributes` alone: one BatchGetItem, asked again for
    /// the keys DynamoDB hands back unprocessed under load (a bounded
    /// number of times). Keys without an item are absent from the answer.
    pub(super) async fn batch_get(
        &self,
        operation: &'static str,
        keys: &[String],
        attributes: &[&str],
    ) -> Result<HashMap<String, codec::Item>, BatchGetError> {
        let mut found = HashMap::new();
        if keys.is_empty() {
            return Ok(found);
        }
        let items: Vec<codec::Item> = keys
            .iter()
            .map(|key| HashMap::from([(KEY_ATTRIBUTE.to_owned(), codec::s(key))]))
            .collect();
        // `#a0, #a1 …`: no attribute name can clash with a reserved word.
        let projection = std::iter::once("#pk".to_owned())
            .chain((0..attributes.len()).map(|i| format!("#a{i}")))
            .collect::<Vec<_>>()
            .join(", ");
        let mut wanted = KeysAndAttributes::builder()
            .set_keys(Some(items))
            .consistent_read(true)
            .projection_expression(projection)
            .expression_attribute_names("#pk", KEY_ATTRIBUTE);
        for (i, attribute) in attributes.iter().enumerate() {
            wanted = wanted.expression_attribute_names(format!("#a{i}"), *attribute);
        }
        let mut wanted = wanted.build().map_err(|e| {
            BatchGetError::Store(StoreError(format!("{operation}: request not built: {e}")))
        })?;
        for _ in 0..MAX_BATCH_ROUNDS {
            let out = match self
                .client
                .batch_get_item()
                .request_items(&self.table, wanted.clone())
                .send()
                .await
            {
                Ok(out) => out,
                Err(err) if codec::throttled(&err) => return Err(BatchGetError::Throttled),
                Err(err) => return Err(BatchGetError::Store(codec::sdk_error(operation, err))),
            };
            for item in out
                .responses()
                .and_then(|r| r.get(&self.table))
                .into_iter()
                .flatten()
            {
                let key = codec::get_s(item, KEY_ATTRIBUTE).map_err(BatchGetError::Store)?;
                found.insert(key.to_owned(), item.clone());
            }
            match out.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                Some(rest) if !rest.keys().is_empty() => wanted = rest.clone(),
                _ => return Ok(found),
            }
        }
        // Keys DynamoDB keeps handing back under load: throttled.
        Err(BatchGetError::Throttled)
    }
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
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(var);
        let table = env.require("TABLE_NAME", "the DynamoDB table of every row")?;
        let valid_table = (3..=255).contains(&table.len())
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid_table {
            return Err(ConfigError::env(
                "TABLE_NAME",
                &table,
                "not a DynamoDB table name (3 to 255 characters of A-Z a-z 0-9 _ - .)",
            ));
        }
        let endpoint = match env.get("DYNAMODB_ENDPOINT") {
            None => None,
            Some(e) => {
                let rest = e
                    .strip_prefix("http://")
                    .or_else(|| e.strip_prefix("https://"));
                match rest {
                    Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
                        Some(e)
                    }
                    _ => {
                        return Err(ConfigError::env(
                            "DYNAMODB_ENDPOINT",
                            &e,
                            "not an http:// or https:// URL",
                        ));
                    }
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
    pub async fn from_env() -> Result<Self, ConfigError> {
        let settings = DynamoSettings::from_lookup(process_env)?;
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

    pub fn table(&self) -> &str {
        &self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup_in as lookup;

    #[test]
    fn settings_require_a_valid_table_name() {
        let missing = |err: Result<DynamoSettings, ConfigError>| {
            matches!(
                err,
                Err(ConfigError::Missing {
                    key: "TABLE_NAME",
                    ..
                })
            )
        };
        assert!(missing(DynamoSettings::from_lookup(lookup(&[]))));
        assert!(missing(DynamoSettings::from_lookup(lookup(&[(
            "TABLE_NAME",
            "  "
        )]))));
        let err = DynamoSettings::from_lookup(lookup(&[("TABLE_NAME", "a b")])).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Env { key: "TABLE_NAME", shown, .. } if shown == "\"a b\""),
            "{err}"
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
            let err = DynamoSettings::from_lookup(lookup(&[
                ("TABLE_NAME", "tbl"),
                ("DYNAMODB_ENDPOINT", bad),
            ]))
            .unwrap_err();
            assert!(
                matches!(&err, ConfigError::Env { key: "DYNAMODB_ENDPOINT", shown, .. } if *shown == format!("{bad:?}")),
                "{err}"
            );
        }
    }
}
