//! The dev server's own answers, outside any handler: a body over its read
//! cap gets the API's JSON envelope like every other error.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use gatehouse::store::memory::MemoryStore;
use gatehouse_local::serve::MAX_SERVED_BODY_BYTES;
use gatehouse_local::server::{self, App};
use serde_json::Value;

#[tokio::test]
async fn an_oversized_body_gets_the_json_envelope() {
    let (app, _emulators) = App::from_env(Arc::new(MemoryStore::new()))
        .await
        .expect("build the dev server's services");
    let served = server::start(app, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("start the dev server");
    let url = format!("http://{}/captcha/create", served.addr);
    let client = reqwest::Client::new();
    for (lang, message) in [("en", "Invalid request"), ("zh-CN", "请求无效")] {
        let resp = client
            .post(&url)
            .header("accept-language", lang)
            .header("content-type", "application/json")
            .body(vec![b' '; MAX_SERVED_BODY_BYTES + 1])
            .send()
            .await
            .expect("the dev server answers");
        assert_eq!(resp.status(), 400);
        let headers = resp.headers().clone();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{headers:?}"
        );
        assert_eq!(headers["access-control-allow-origin"], "*");
        let body: Value = resp.json().await.expect("a JSON body");
        assert_eq!(body["errCode"], "invalid-request", "{body}");
        let msg = body["errMsg"].as_str().unwrap();
        assert!(msg.starts_with(message), "{msg}");
    }
}
