//! Secrets from AWS Secrets Manager (`gatehouse::secrets`), fetched from a
//! loopback fake that answers `GetSecretValue` as the service does: the
//! configuration reads the secret's keys, and every refusal names the
//! variable, the ARN and the key, never a secret's value.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use gatehouse::config::ConfigError;
use gatehouse::secrets::{self, Secrets};
use gatehouse::tencent::TencentConfig;
use gatehouse::wechat::WxConfig;
use gatehouse_local::serve::{Served, serve, with_body};
use serde_json::{Value, json};

const WX_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gatehouse/wx-AbCdEf";
const TENCENT_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:gatehouse/tencent-AbCdEf";
const SECRET: &str = "wx-app-secret-DO-NOT-LOG";

/// A Secrets Manager holding `secrets` (ARN → SecretString), recording the
/// targets it is asked for.
async fn fake(secrets: Vec<(&'static str, String)>) -> (Served, Arc<Mutex<Vec<String>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&asked);
    let served = serve(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), move |req, _| {
        let secrets = secrets.clone();
        let log = Arc::clone(&log);
        async move {
            let target = req
                .headers()
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body: Value = serde_json::from_slice(req.body()).unwrap_or_default();
            let id = body["SecretId"].as_str().unwrap_or_default().to_owned();
            log.lock().unwrap().push(format!("{target} {id}"));
            let json = "application/x-amz-json-1.1";
            match secrets.iter().find(|(arn, _)| *arn == id) {
                Some((arn, text)) if target == "secretsmanager.GetSecretValue" => with_body(
                    http::StatusCode::OK,
                    json,
                    json!({"ARN": arn, "Name": "n", "SecretString": text, "VersionId": "v"})
                        .to_string(),
                ),
                _ => with_body(
                    http::StatusCode::BAD_REQUEST,
                    json,
                    r#"{"__type":"AccessDeniedException","Message":"not allowed to read it"}"#,
                ),
            }
        }
    })
    .await
    .unwrap();
    (served, asked)
}

fn client(served: &Served) -> aws_sdk_secretsmanager::Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::from_static("us-east-1"))
        .credentials_provider(Credentials::new("t", "t", None, None, "tests"))
        .endpoint_url(format!("http://{}", served.addr))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

#[tokio::test]
async fn the_wechat_secret_is_read_from_secrets_manager() {
    let (served, asked) = fake(vec![(WX_ARN, json!({"WX_SECRET": SECRET}).to_string())]).await;
    let secrets = secrets::fetch(&secrets::WECHAT, WX_ARN, &client(&served))
        .await
        .unwrap();
    assert!(secrets.fetched());
    let env = |key: &str| match key {
        "WX_APPID" => Some("wxsecrets00000001".to_owned()),
        "WX_SECRET_ARN" => Some(WX_ARN.to_owned()),
        _ => None,
    };
    let config = WxConfig::from_lookup(secrets.over(env)).unwrap();
    assert_eq!(config.secret.expose(), SECRET);
    assert!(!format!("{config:?} {secrets:?}").contains(SECRET));
    assert_eq!(
        asked.lock().unwrap().as_slice(),
        [format!("secretsmanager.GetSecretValue {WX_ARN}")],
        "one request, for that secret"
    );
}

#[tokio::test]
async fn the_tencent_keys_are_read_from_secrets_manager() {
    let text = json!({"TENCENT_SECRET_KEY": "tc-key-DO-NOT-LOG",
                      "CAPTCHA_APP_SECRET_KEY": "app-key-DO-NOT-LOG",
                      "unrelated": 1})
    .to_string();
    let (served, _) = fake(vec![(TENCENT_ARN, text)]).await;
    let secrets = secrets::fetch(&secrets::TENCENT, TENCENT_ARN, &client(&served))
        .await
        .unwrap();
    let env = |key: &str| match key {
        "TENCENT_SECRET_ID" => Some("AKIDsecrets".to_owned()),
        "CAPTCHA_APP_ID" => Some("190000001".to_owned()),
        _ => None,
    };
    let config = TencentConfig::from_lookup(secrets.over(env)).unwrap();
    assert_eq!(config.secret_key.expose(), "tc-key-DO-NOT-LOG");
    assert_eq!(config.app_secret_key.expose(), "app-key-DO-NOT-LOG");
    assert_eq!(config.secret_id, "AKIDsecrets");
}

#[tokio::test]
async fn refusals_name_the_variable_the_arn_and_the_key_never_a_value() {
    let (served, _) = fake(vec![
        (WX_ARN, json!({"WX_SECRET": ""}).to_string()),
        (
            TENCENT_ARN,
            format!("not json {SECRET}"), // a secret pasted as plain text
        ),
    ])
    .await;
    let client = client(&served);
    let cases: Vec<(&secrets::SecretSource, &str, &str)> = vec![
        (
            &secrets::WECHAT,
            WX_ARN,
            "no non-empty string \"WX_SECRET\"",
        ),
        (&secrets::TENCENT, TENCENT_ARN, "the secret is not JSON"),
        (
            &secrets::WECHAT,
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf",
            "AccessDeniedException",
        ),
    ];
    for (source, arn, reason) in cases {
        let err = secrets::fetch(source, arn, &client).await.unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, ConfigError::Secret { key, .. } if *key == source.arn_var),
            "{text}"
        );
        assert!(text.contains(arn) && text.contains(reason), "{text}");
        assert!(!text.contains(SECRET), "{text}");
    }
}

#[tokio::test]
async fn without_an_arn_nothing_is_fetched_and_plain_variables_serve() {
    // No ARN: `load` never builds a client (the SDK configuration future is
    // never awaited).
    let env = |key: &str| (key == "WX_SECRET").then(|| "plain".to_owned());
    let secrets = secrets::load(&secrets::WECHAT, env, async {
        panic!("no ARN, so no Secrets Manager client")
    })
    .await
    .unwrap();
    assert!(!secrets.fetched());
    assert_eq!(secrets.over(env)("WX_SECRET").as_deref(), Some("plain"));
    let _ = Secrets::default();
}
