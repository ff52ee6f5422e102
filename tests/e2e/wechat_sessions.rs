//! Sessions a user can end (SPEC §10), on the embedded store and on
//! DynamoDB Local: `DELETE /wx/sessions`, `"single": true`, `POST
//! /wx/session/refresh`, the per-user cap, and nothing secret in a response
//! or a log line.

use std::sync::Arc;

use gatehouse::store::Store;
use gatehouse::wechat::crypto::token_hash;
use gatehouse::wechat::sessions::MAX_SESSIONS_PER_USER;
use serde_json::json;

use crate::wechat_rig::{SECRET, WxRig};

mod cases {
    use super::*;

    pub async fn ending_every_session_ends_that_users_and_no_others(store: Arc<dyn Store>) {
        let rig = WxRig::new(store).await;
        let alice: Vec<String> = {
            let mut tokens = Vec::new();
            for _ in 0..3 {
                tokens.push(rig.login("alice").await);
            }
            tokens
        };
        let bob = rig.login("bob").await;
        let (status, body) = rig.session("DELETE", "/wx/sessions", &alice[1]).await;
        assert_eq!(
            (status, &body),
            (200, &json!({"errCode": 0, "errMsg": "成功"}))
        );
        for token in &alice {
            assert_eq!(
                rig.status_of(token).await,
                401,
                "every session of alice ended"
            );
            assert!(!rig.authorize(token).await.is_authorized);
        }
        assert_eq!(rig.status_of(&bob).await, 200, "bob's session lives");
        assert!(rig.authorize(&bob).await.is_authorized);
        // The caller's token is gone too: a second call is session-invalid.
        let (status, body) = rig.session("DELETE", "/wx/sessions", &alice[1]).await;
        assert_eq!(
            (status, body["errCode"].as_str()),
            (401, Some("session-invalid"))
        );
        // Alice can log in again.
        let again = rig.login("alice").await;
        assert_eq!(rig.status_of(&again).await, 200);
    }

    pub async fn a_session_made_just_before_the_end_does_not_survive_it(store: Arc<dyn Store>) {
        let rig = WxRig::new(store).await;
        let anchor = rig.login("carol").await;
        for round in 0..10 {
            let just_made = rig.login("carol").await;
            let (status, _) = rig.session("DELETE", "/wx/sessions", &just_made).await;
            assert_eq!(status, 200, "round {round}");
            assert_eq!(rig.status_of(&just_made).await, 401, "round {round}");
            if round == 0 {
                assert_eq!(rig.status_of(&anchor).await, 401);
            }
        }
        // Logins racing with an end leave no session that a later end
        // cannot find: every row written is indexed.
        let rig = Arc::new(rig);
        let ender = rig.login("carol").await;
        let logins: Vec<_> = (0..12)
            .map(|_| {
                let rig = rig.clone();
                tokio::spawn(async move { rig.login("carol").await })
            })
            .collect();
        let end = {
            let rig = rig.clone();
            tokio::spawn(async move { rig.session("DELETE", "/wx/sessions", &ender).await })
        };
        let mut tokens = Vec::new();
        for login in logins {
            tokens.push(login.await.unwrap());
        }
        assert_eq!(end.await.unwrap().0, 200);
        let last = rig.login("carol").await;
        assert_eq!(rig.session("DELETE", "/wx/sessions", &last).await.0, 200);
        for token in &tokens {
            assert_eq!(
                rig.store.get_session(&token_hash(token)).await.unwrap(),
                None,
                "a racing login's session outlived the final end"
            );
        }
    }

    pub async fn a_single_login_ends_the_users_other_sessions(store: Arc<dyn Store>) {
        let rig = WxRig::new(store).await;
        let first = rig.login("dave").await;
        let second = rig.login("dave").await;
        let erin = rig.login("erin").await;
        let (status, body) = rig
            .login_with(json!({"code": rig.emu.issue_code("dave"), "single": true}))
            .await;
        assert_eq!(status, 200, "{body}");
        let single = body["token"].as_str().unwrap().to_owned();
        assert_eq!(rig.status_of(&first).await, 401);
        assert_eq!(rig.status_of(&second).await, 401);
        assert_eq!(rig.status_of(&single).await, 200);
        assert_eq!(rig.status_of(&erin).await, 200, "another user is untouched");
        // A later ordinary login joins it, and an end takes both.
        let later = rig.login("dave").await;
        assert_eq!(rig.session("DELETE", "/wx/sessions", &later).await.0, 200);
        assert_eq!(rig.status_of(&single).await, 401);
        let (status, body) = rig
            .login_with(json!({"code": rig.emu.issue_code("dave"), "single": "yes"}))
            .await;
        assert_eq!(
            (status, body["errCode"].as_str()),
            (400, Some("invalid-request"))
        );
    }

    pub async fn a_refresh_swaps_the_token_once(store: Arc<dyn Store>) {
        let rig = WxRig::new(store).await;
        let old = rig.login("frank").await;
        let code = rig.emu.issue_phone_code("13800000040");
        assert_eq!(rig.phone(&old, &code).await.0, 200);
        rig.clock.advance(3_600_000);
        let (status, body) = rig.session("POST", "/wx/session/refresh", &old).await;
        assert_eq!(status, 200, "{body}");
        let new = body["token"].as_str().unwrap().to_owned();
        assert_ne!(new, old);
        assert_eq!(
            body["tokenExpired"],
            rig.clock.now_ms() + 3 * 86_400_000,
            "the new session lives as long as a login's"
        );
        assert_eq!(rig.status_of(&old).await, 401, "the old token ended");
        let (status, me) = rig.session("GET", "/wx/session", &new).await;
        assert_eq!(status, 200);
        assert_eq!(me["openid"], rig.emu.openid_for("frank"));
        let admitted = rig.authorize(&new).await;
        assert_eq!(
            admitted.context["phoneNumber"], "13800000040",
            "the number stays"
        );

        // Racing refreshes of one token: one wins.
        let rig = Arc::new(rig);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let rig = rig.clone();
                let token = new.clone();
                tokio::spawn(
                    async move { rig.session("POST", "/wx/session/refresh", &token).await },
                )
            })
            .collect();
        let mut won = Vec::new();
        for task in tasks {
            let (status, body) = task.await.unwrap();
            match status {
                200 => won.push(body["token"].as_str().unwrap().to_owned()),
                401 => assert_eq!(body["errCode"], "session-invalid"),
                other => panic!("{other}: {body}"),
            }
        }
        assert_eq!(won.len(), 1, "one of 8 racing refreshes wins");
        // The refreshed session is indexed: ending every session finds it.
        let other = rig.login("frank").await;
        assert_eq!(rig.session("DELETE", "/wx/sessions", &other).await.0, 200);
        assert_eq!(rig.status_of(&won[0]).await, 401);

        // An expired session is not refreshed.
        let late = rig.login("frank").await;
        rig.clock.advance(3 * 86_400_000);
        let (status, body) = rig.session("POST", "/wx/session/refresh", &late).await;
        assert_eq!(
            (status, body["errCode"].as_str()),
            (401, Some("session-expired"))
        );
        // Methods these paths do not serve.
        let (status, body) = rig.session("GET", "/wx/sessions", &late).await;
        assert_eq!(
            (status, body["errCode"].as_str()),
            (405, Some("invalid-request"))
        );
        let (status, _) = rig.session("GET", "/wx/session/refresh", &late).await;
        assert_eq!(status, 405);
    }

    pub async fn a_user_keeps_at_most_the_capped_number_of_sessions(store: Arc<dyn Store>) {
        let rig = WxRig::new(store).await;
        let mut tokens = Vec::new();
        for _ in 0..MAX_SESSIONS_PER_USER + 3 {
            rig.clock.advance(1_000);
            tokens.push(rig.login("gina").await);
        }
        let mut live = 0;
        for (i, token) in tokens.iter().enumerate() {
            let status = rig.status_of(token).await;
            if i < 3 {
                assert_eq!(status, 401, "the oldest sessions ended ({i})");
            } else {
                assert_eq!(status, 200, "{i}");
                live += 1;
            }
        }
        assert_eq!(live, MAX_SESSIONS_PER_USER);
        assert_eq!(
            rig.session("DELETE", "/wx/sessions", &tokens[10]).await.0,
            200
        );
        for token in &tokens {
            assert_eq!(rig.status_of(token).await, 401);
        }
    }
}

gatehouse_e2e::on_both_stores!(
    ending_every_session_ends_that_users_and_no_others,
    a_session_made_just_before_the_end_does_not_survive_it,
    a_single_login_ends_the_users_other_sessions,
    a_refresh_swaps_the_token_once,
    a_user_keeps_at_most_the_capped_number_of_sessions,
);

/// Nothing secret reaches a response or a log line on any SPEC §10 path:
/// not the AppSecret, not a `session_key`, not an access token, and not
/// the phone number in a log.
#[tokio::test(flavor = "current_thread")]
async fn secrets_never_reach_a_log_line_or_a_response() {
    let sink = gatehouse_e2e::capture_logs();
    let rig = WxRig::new(Arc::new(gatehouse::store::memory::MemoryStore::new())).await;
    let mut responses = String::new();
    let mut keys = Vec::new();
    let mut tokens = Vec::new();
    for single in [false, false, true] {
        let code = rig.emu.issue_code("kai");
        let (_, body) = rig
            .login_with(json!({"code": code, "single": single}))
            .await;
        keys.push(rig.emu.session_key_for_code(&code).unwrap());
        tokens.push(body["token"].as_str().unwrap().to_owned());
        responses.push_str(&body.to_string());
    }
    let token = tokens[2].clone();
    for code in [
        rig.emu.issue_phone_code("13912345678"),
        "errcode-40029".into(),
        "errcode--1".into(),
        "other-app-13912345678".into(),
        "not-json".into(),
    ] {
        responses.push_str(&rig.phone(&token, &code).await.1.to_string());
    }
    rig.emu.revoke_access_tokens();
    responses.push_str(
        &rig.phone(&token, &rig.emu.issue_phone_code("13912345678"))
            .await
            .1
            .to_string(),
    );
    rig.emu.fail_stable_token(&[40164]);
    rig.emu.expire_access_tokens();
    rig.clock.advance(3_600_000);
    responses.push_str(&rig.phone(&token, "replay-13912345678").await.1.to_string());
    let (_, refreshed) = rig.session("POST", "/wx/session/refresh", &token).await;
    responses.push_str(&refreshed.to_string());
    let new = refreshed["token"].as_str().unwrap().to_owned();
    responses.push_str(&rig.session("GET", "/wx/session", &new).await.1.to_string());
    responses.push_str(&serde_json::to_string(&rig.authorize(&new).await).unwrap());
    responses.push_str(
        &rig.session("DELETE", "/wx/sessions", &new)
            .await
            .1
            .to_string(),
    );

    let logs = sink.text();
    assert!(
        logs.contains("stable_token"),
        "the logs were captured: {logs}"
    );
    assert!(logs.contains("40164"), "the failures were logged: {logs}");
    let issued = rig.emu.access_tokens_issued();
    assert!(issued.len() >= 2, "tokens were handed out: {issued:?}");
    for needle in [SECRET.to_owned()].into_iter().chain(keys).chain(issued) {
        assert!(!logs.contains(&needle), "{needle} in logs:\n{logs}");
        assert!(!responses.contains(&needle), "{needle} in responses");
    }
    for needle in ["13912345678", "12345678"] {
        assert!(!logs.contains(needle), "the phone number in logs:\n{logs}");
    }
    assert!(
        responses.contains("13912345678"),
        "the number is in the answer (and only there)"
    );
    for token in tokens.iter().chain([&new]) {
        assert!(!logs.contains(token.as_str()), "a session token in logs");
    }
}

/// DynamoDB only: the requests of each session route, as `docs/wechat.md` states
/// them (`cargo test -p gatehouse-e2e --test e2e -- wechat_sessions::costs`).
mod costs {
    use super::*;
    use crate::dynamo_requests::counted_store;

    #[tokio::test]
    async fn requests_per_session_route() {
        let (store, requests) = counted_store().await;
        let rig = WxRig::new(Arc::new(store)).await;
        requests.take();
        let mut tokens = Vec::new();
        for _ in 0..3 {
            tokens.push(rig.login("lena").await);
        }
        assert_eq!(
            requests.take(),
            6,
            "a login: the session and its index entry"
        );
        assert!(rig.authorize(&tokens[0]).await.is_authorized);
        assert_eq!(requests.take(), 1, "the authorizer: one GetItem");
        assert_eq!(rig.status_of(&tokens[0]).await, 200);
        assert_eq!(requests.take(), 1, "GET /wx/session");
        let (_, body) = rig.session("POST", "/wx/session/refresh", &tokens[0]).await;
        let refreshed = body["token"].as_str().unwrap().to_owned();
        assert_eq!(
            requests.take(),
            3,
            "a refresh: the check, one transaction, the index"
        );
        assert_eq!(
            rig.session("DELETE", "/wx/session", &tokens[1]).await.0,
            200
        );
        assert_eq!(requests.take(), 1, "DELETE /wx/session");
        assert_eq!(
            rig.session("DELETE", "/wx/sessions", &refreshed).await.0,
            200
        );
        assert_eq!(
            requests.take(),
            4,
            "DELETE /wx/sessions: the check, the index read, its entries removed, one batch delete"
        );
        rig.login("lena").await;
        requests.take();
        let (status, _) = rig
            .login_with(json!({"code": rig.emu.issue_code("lena"), "single": true}))
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            requests.take(),
            4,
            "a single login: the session, the index read with it, the others' entries removed, one batch delete"
        );
    }
}
