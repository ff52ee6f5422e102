//! `cargo run -p gatehouse-local`: every route on 127.0.0.1:3000 (`PORT`
//! changes it), the embedded store unless `TABLE_NAME` is set, and the demo
//! page at `/`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use gatehouse::store::Store;
use gatehouse::store::dynamo::DynamoStore;
use gatehouse::store::memory::MemoryStore;
use gatehouse_local::server::{self, App};
use gatehouse_local::test_hooks;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    if let Err(err) = run().await {
        eprintln!("gatehouse-local: {err}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(value) => value
            .parse()
            .map_err(|_| format!("PORT={value:?} is not a port number (1-65535)"))?,
        Err(_) => 3000,
    };
    let store: Arc<dyn Store> = if std::env::var_os("TABLE_NAME").is_some() {
        tracing::info!("using DynamoDB table from TABLE_NAME");
        if test_hooks::requested() {
            tracing::warn!("GATEHOUSE_TEST_HOOKS ignored: test hooks need the embedded store");
        }
        Arc::new(DynamoStore::from_env().await?)
    } else {
        tracing::info!("using the embedded store (set TABLE_NAME to use DynamoDB)");
        let store = Arc::new(MemoryStore::new());
        if test_hooks::install_from_env(&store) {
            tracing::warn!("GATEHOUSE_TEST_HOOKS=1: GET /__test/captcha reveals captcha answers");
        }
        store
    };
    let (app, emulators) = App::from_env(store).await?;
    let served = server::start(app, SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    println!(
        "gatehouse-local listening on http://{}/ (demo page at /)",
        served.addr
    );
    if let Some(wechat) = &emulators.wechat {
        println!(
            "WeChat emulator at {0} (no WX_APPID set): get a code with\n  curl -s -X POST {0}/emulator/wx.login\nand a phone code (for POST /wx/phone) with\n  curl -s -X POST {0}/emulator/getPhoneNumber\nand set a user's WeChat risk rank (0-4) with\n  curl -s -X POST {0}/emulator/riskRank -d '{{\"user\":\"demo\",\"rank\":3}}'",
            wechat.base_url()
        );
    }
    if let Some(tencent) = &emulators.tencent {
        println!(
            "Tencent captcha emulator at {0} (no TENCENT_SECRET_ID set): get a ticket with\n  curl -s -X POST {0}/emulator/ticket",
            tencent.base_url()
        );
    }
    if let Some(sms) = &emulators.sms {
        println!(
            "Tencent SMS emulator at {0} (no SMS_SDK_APP_ID set): read a number's messages with\n  curl -s '{0}/emulator/sms?mobile=%2B8613800138000'",
            sms.base_url()
        );
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}
