//! The dev server's own answers, outside any handler: a body over its read
//! cap, or a request head hyper refuses (a character HTTP does not allow in
//! a header, more headers than it reads), gets the API's JSON envelope with
//! CORS headers like every other error.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use gatehouse::store::memory::MemoryStore;
use gatehouse_local::emulators::Emulators;
use gatehouse_local::serve::{MAX_SERVED_BODY_BYTES, Served};
use gatehouse_local::server::{self, App};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The dev server as `cargo run -p gatehouse-local` starts it, on a free
/// loopback port, with its emulators.
async fn start() -> (Served, Emulators) {
    let (app, emulators) = App::from_env(Arc::new(MemoryStore::new()))
        .await
        .expect("build the dev server's services");
    let served = server::start(app, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("start the dev server");
    (served, emulators)
}

#[tokio::test]
async fn an_oversized_body_gets_the_json_envelope() {
    let (served, _emulators) = start().await;
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

/// Sends `raw` on a fresh connection and reads the answer to its end (the
/// server closes after refusing a head).
async fn raw_exchange(addr: SocketAddr, raw: &[u8]) -> (u16, String, Value) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(raw).await.expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    parse_answer(&answer)
}

/// The status, the head and the JSON body of one HTTP/1.1 answer.
fn parse_answer(answer: &[u8]) -> (u16, String, Value) {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let status = head[9..12].parse().expect("a status");
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, head.to_ascii_lowercase(), body)
}

#[tokio::test]
async fn a_head_hyper_refuses_gets_the_json_envelope() {
    let (served, _emulators) = start().await;
    let request = |accept_language: &str, extra: &str| {
        format!(
            "GET /guard/status?scene=login HTTP/1.1\r\nhost: x\r\n\
             accept-language: {accept_language}\r\n{extra}\r\n"
        )
    };
    let too_many: String = (0..120).map(|i| format!("x-h{i}: {i}\r\n")).collect();
    for (what, raw, status, message) in [
        (
            "a control character",
            request("en", "x-bad: a\x01b\r\n"),
            400,
            "Invalid request",
        ),
        (
            "more headers than hyper reads",
            request("zh-CN", &too_many),
            431,
            "请求无效",
        ),
    ] {
        let (got, head, body) = raw_exchange(served.addr, raw.as_bytes()).await;
        assert_eq!(got, status, "{what}: {head}");
        assert!(
            head.contains("content-type: application/json"),
            "{what}: {head}"
        );
        assert!(
            head.contains("access-control-allow-origin: *"),
            "{what}: {head}"
        );
        assert_eq!(body["errCode"], "invalid-request", "{what}: {body}");
        let msg = body["errMsg"].as_str().unwrap();
        assert!(msg.starts_with(message), "{what}: {msg}");
    }

    // On a kept-alive connection: the first request answered by its
    // handler, the next one's bad head in the envelope.
    let mut stream = TcpStream::connect(served.addr).await.expect("connect");
    let good = request("en", "");
    stream.write_all(good.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let (status, head, body) = loop {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "the first answer is whole");
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n")
            && let Some(length) = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")?
                    .parse::<usize>()
                    .ok()
            })
            && body.len() >= length
        {
            break parse_answer(&answer);
        }
    };
    assert_eq!(status, 200, "{head}: {body}");
    assert_eq!(body["level"], "none", "{body}");
    stream
        .write_all(request("en", "x-bad: \x7f\r\n").as_bytes())
        .await
        .expect("send");
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.expect("read");
    let (status, _, body) = parse_answer(&rest);
    assert_eq!(status, 400);
    assert_eq!(body["errCode"], "invalid-request", "{body}");
}

/// The dev server's services from the variables of `vars` alone.
async fn app_with(vars: &[(&str, &str)]) -> Result<(App, Emulators), String> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    App::from_lookup(Arc::new(MemoryStore::new()), move |key| {
        vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    })
    .await
    .map_err(|err| err.to_string())
}

/// A `GUARD_ROUTES` scene that `CAPTCHA_CONFIG` does not declare stops the
/// start, naming the route and the scene (issue 21 point 6); the built-in
/// demo route brings its own scene, so any `CAPTCHA_CONFIG` starts.
#[tokio::test]
async fn a_guarded_route_of_an_undeclared_scene_stops_the_start() {
    let config = r#"{"scene": {"signup": {"guard": {"mode": "always"}}}}"#;
    let err = app_with(&[
        ("CAPTCHA_CONFIG", config),
        (
            "GUARD_ROUTES",
            r#"{"POST /signup": {"scene": "Signup", "pass": "auto"}}"#,
        ),
    ])
    .await
    .err()
    .expect("a typo stops the start");
    for part in ["GUARD_ROUTES", "POST /signup.scene", "\"Signup\"", "signup"] {
        assert!(err.contains(part), "{part}: {err}");
    }
    let declared = r#"{"POST /signup": {"scene": "signup", "pass": "auto"}}"#;
    assert!(
        app_with(&[("CAPTCHA_CONFIG", config), ("GUARD_ROUTES", declared)])
            .await
            .is_ok()
    );

    // No GUARD_ROUTES: the demo route, whose scene no CAPTCHA_CONFIG here
    // declares, and the server guards it.
    let (app, _emulators) = app_with(&[("CAPTCHA_CONFIG", config)]).await.unwrap();
    let served = server::start(app, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("start the dev server");
    let resp = reqwest::Client::new()
        .post(format!("http://{}/demo/guarded", served.addr))
        .header("x-device-id", "Y Z")
        .send()
        .await
        .expect("the dev server answers");
    assert_eq!(
        resp.status(),
        403,
        "a malformed device is denied at the door"
    );
    let resp = reqwest::Client::new()
        .post(format!("http://{}/demo/guarded", served.addr))
        .header("x-device-id", "dev-1")
        .send()
        .await
        .expect("the dev server answers");
    assert_eq!(
        resp.status(),
        200,
        "the demo scene's root settings: no pass"
    );
}
