//! Logging set-up for the Lambda functions.
//!
//! Lambda's advanced logging controls set `AWS_LAMBDA_LOG_FORMAT` (`JSON` or
//! `Text`) and `AWS_LAMBDA_LOG_LEVEL`; we honour both. Levels are a plain
//! level (`RUST_LOG` is read too when it is one), not an `EnvFilter`
//! directive: that keeps the regex engine out of every bootstrap.

use tracing_subscriber::filter::LevelFilter;

/// Installs the global subscriber once, at start-up; later calls do nothing.
pub fn init() {
    let level = ["AWS_LAMBDA_LOG_LEVEL", "RUST_LOG"]
        .iter()
        .find_map(|key| std::env::var(key).ok()?.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false);
    // An error means a subscriber is already installed: keep that one.
    let _ = if json {
        builder.json().with_current_span(false).try_init()
    } else {
        builder.try_init()
    };
}
