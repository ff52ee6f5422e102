//! `cargo run -p gatehouse-e2e --bin watch-backends`: DynamoDB Local, the
//! WeChat emulator and the Tencent captcha and SMS emulators where
//! `events/watch.env` points, for `cargo lambda watch --env-file events/watch.env` (`docs/deploy-and-operations.md`,
//! "Local replays"). Stops, DynamoDB Local with it, on Ctrl-C.

use std::process::ExitCode;

use gatehouse_e2e::watch_backends::{
    EVENT_SESSION_OPENID, WatchBackends, parse_env_file, watch_env_path,
};

#[tokio::main]
async fn main() -> ExitCode {
    let path = watch_env_path();
    let env = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| parse_env_file(&text))
    {
        Ok(env) => env,
        Err(e) => {
            eprintln!("watch-backends: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let backends = match WatchBackends::start(&env).await {
        Ok(backends) => backends,
        Err(e) => {
            eprintln!("watch-backends: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "DynamoDB Local at {} with table {} (the events' bearer token is a session of {EVENT_SESSION_OPENID})\n\
         WeChat emulator at {} (code `replay-<user>` always logs in)\n\
         Tencent captcha emulator at {} (ticket `force-pass~<anything>` passes once)\n\
         Tencent SMS emulator at {sms} (a number's messages: curl -s '{sms}/emulator/sms?mobile=%2B8613800138000')\n\
         Now run `cargo lambda watch --env-file events/watch.env`; Ctrl-C stops these.",
        backends.dynamo.endpoint(),
        env["TABLE_NAME"],
        backends.wechat.base_url(),
        backends.tencent.base_url(),
        sms = backends.sms.base_url(),
    );
    match tokio::signal::ctrl_c().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("watch-backends: {e}");
            ExitCode::FAILURE
        }
    }
}
