//! `POST /wx/phone` and the shared access token (SPEC §10) against the
//! WeChat emulator, on the embedded store and on DynamoDB Local: the phone
//! flow, the errcode mapping, one `stable_token` call for 50 cold
//! instances, stale tokens refreshed once and the call retried, WeChat's
//! force-refresh limits, and (DynamoDB only) the requests one phone request
//! makes, warm and cold.

use std::sync::Arc;

use gatehouse::clock::china_day;
use gatehouse::secret::Secret;
use gatehouse::store::{AccessTokenRecord, Store, TokenSwap};
use gatehouse::wechat::token::REFRESH_MARGIN_MS;
use serde_json::json;

use crate::wechat_rig::{APPID, WxRig};

mod cases {
    use super::*;

    /// A rig on `store` where `user` has logged in and been answered one
    /// phone number (`number`): the access token is in the table.
    async fn with_a_token(store: Arc<dyn Store>, user: &str, number: &str) -> (WxRig, String) {
        let rig = WxRig::new(store).await;
        let token = rig.login(user).await;
        assert_eq!(rig.phone_number(&token, number).await.0, 200);
        (rig, token)
    }

    /// The (pure) phone number kept with the session of `token`.
    async fn stored_phone(rig: &WxRig, token: &str) -> String {
        let row = rig
            .store
            .get_session(&gatehouse::wechat::crypto::token_hash(token))
            .await
            .unwrap()
            .expect("the session row");
        row.phone.expect("a phone number").pure_phone_number
    }

    /// The access token's row in the table.
    async fn token_row(rig: &WxRig) -> AccessTokenRecord {
        rig.store.get_access_token(APPID).await.unwrap().unwrap()
    }

    /// The row counts one force refresh, on today's China day.
    async fn one_force_refresh_today(rig: &WxRig) {
        let row = token_row(rig).await;
        assert_eq!(
            (row.force_count, row.force_day),
            (1, china_day(rig.clock.now_ms()))
        );
    }

    /// The clock four minutes before the token in the row expires, inside
    /// the five-minute margin: the row as it was.
    async fn near_expiry(rig: &WxRig) -> AccessTokenRecord {
        let old = token_row(rig).await;
        rig.clock
            .advance(old.expires_ms - rig.clock.now_ms() - REFRESH_MARGIN_MS + 60_000);
        old
    }

    /// A phone request for `number` while WeChat refuses the token: 502,
    /// and no force refresh (`why`).
    async fn refused_without_a_refresh(rig: &WxRig, token: &str, number: &str, why: &str) {
        let before = rig.emu.calls();
        let (status, body) = rig.phone_number(token, number).await;
        assert_eq!(
            (status, body["errCode"].as_str()),
            (502, Some("wx-upstream-error"))
        );
        assert_eq!(rig.emu.calls().stable_token, before.stable_token, "{why}");
    }

    pub async fn the_phone_number_is_answered_and_kept_with_the_session(store: Arc<dyn Store>) {
        let rig = WxRig::new(store).await;
        let token = rig.login("alice").await;
        let code = rig.emu.issue_phone_code("13800138000");
        let (status, body) = rig.phone(&token, &code).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({"errCode": 0, "errMsg": "成功", "phoneNumber": "13800138000",
                   "purePhoneNumber": "13800138000", "countryCode": "86"})
        );
        assert_eq!(stored_phone(&rig, &token).await, "13800138000");

        // The authorizer hands it to protected routes.
        let admitted = rig.authorize(&token).await;
        assert!(admitted.is_authorized);
        assert_eq!(admitted.context["phoneNumber"], "13800138000");
        assert_eq!(admitted.context["openid"], rig.emu.openid_for("alice"));

        // A code works once; the session stays.
        let (status, body) = rig.phone(&token, &code).await;
        assert_eq!(
            (status, body["errCode"].as_str()),
            (400, Some("wx-phone-code-invalid"))
        );
        assert_eq!(rig.status_of(&token).await, 200);

        // A number from abroad keeps its country code.
        let abroad =
            rig.emu
                .issue_phone_code_with(gatehouse_local::wechat_emulator::EmulatedPhone {
                    pure_phone_number: "2025550123".into(),
                    country_code: "1".into(),
                });
        let (status, body) = rig.phone(&token, &abroad).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["phoneNumber"], "+12025550123");
        assert_eq!(body["countryCode"], "1");
        let admitted = rig.authorize(&token).await;
        assert_eq!(admitted.context["phoneNumber"], "+12025550123");
        assert_eq!(
            rig.emu.calls().stable_token,
            1,
            "one token for all three calls"
        );
    }

    pub async fn phone_errors_map_as_for_jscode2session(store: Arc<dyn Store>) {
        let rig = WxRig::new(store).await;
        let token = rig.login("bob").await;
        let cases = [
            ("errcode-40029", 400, "wx-phone-code-invalid", 1),
            ("errcode-45011", 429, "wx-rate-limited", 1),
            ("errcode-40013", 502, "wx-upstream-error", 1),
            ("errcode-99999", 502, "wx-upstream-error", 1),
            // -1 is retried twice, then given up.
            ("errcode--1", 502, "wx-upstream-error", 3),
            ("flaky-3-13900139000", 502, "wx-upstream-error", 3),
            ("not-json", 502, "wx-upstream-error", 1),
            // The watermark names another app: not our user's number.
            ("other-app-13900139000", 502, "wx-upstream-error", 1),
        ];
        for (code, status, err_code, calls) in cases {
            let before = rig.emu.phone_number_count();
            let (got, body) = rig.phone(&token, code).await;
            assert_eq!(
                (got, body["errCode"].as_str()),
                (status, Some(err_code)),
                "{code}: {body}"
            );
            assert_eq!(rig.emu.phone_number_count() - before, calls, "{code}");
        }
        let (status, body) = rig.phone(&token, "flaky-2-13900139000").await;
        assert_eq!(status, 200, "-1 twice, then the number: {body}");
        assert_eq!(stored_phone(&rig, &token).await, "13900139000");

        // Refused before WeChat is called.
        let before = rig.emu.phone_number_count();
        let refused = [
            (json!({}), "wx-phone-code-required", 400),
            (json!({"code": "  "}), "wx-phone-code-required", 400),
            (json!({"code": "with space"}), "wx-phone-code-invalid", 400),
            (
                json!({"code": "c".repeat(129)}),
                "wx-phone-code-invalid",
                400,
            ),
            (json!({"code": "x", "extra": 1}), "invalid-request", 400),
            (json!({"code": 5}), "invalid-request", 400),
        ];
        for (body, err_code, status) in refused {
            let (got, answer) = rig.phone_request(Some(&token), &body).await;
            assert_eq!(
                (got, answer["errCode"].as_str()),
                (status, Some(err_code)),
                "{body}"
            );
        }
        let code = rig.emu.issue_phone_code("13700137000");
        assert_eq!(
            rig.phone_request(None, &json!({ "code": code })).await.1["errCode"],
            "session-required"
        );
        let (status, body) = rig.phone(&"A".repeat(43), &code).await;
        assert_eq!(
            (status, body["errCode"].as_str()),
            (401, Some("session-invalid"))
        );
        rig.clock.advance(3 * 86_400_000);
        let (status, body) = rig.phone(&token, &code).await;
        assert_eq!(
            (status, body["errCode"].as_str()),
            (401, Some("session-expired"))
        );
        assert_eq!(
            rig.emu.phone_number_count(),
            before,
            "no code is spent without a live session"
        );
    }

    pub async fn fifty_cold_instances_make_one_stable_token_call(store: Arc<dyn Store>) {
        let rig = Arc::new(WxRig::new(store).await);
        let mut work = Vec::new();
        for i in 0..50 {
            let token = rig.login(&format!("user-{i}")).await;
            let code = rig.emu.issue_phone_code(&format!("1380013{i:04}"));
            work.push((token, code));
        }
        let tasks: Vec<_> = work
            .into_iter()
            .map(|(token, code)| {
                let rig = rig.clone();
                // Each request on an instance of its own: 50 cold starts.
                tokio::spawn(async move {
                    let cold = rig.phone_instance();
                    rig.phone_on(&cold, &token, &code).await
                })
            })
            .collect();
        for task in tasks {
            let (status, body) = task.await.unwrap();
            assert_eq!(status, 200, "{body}");
        }
        let calls = rig.emu.calls();
        assert_eq!(
            calls.stable_token, 1,
            "one upstream token call for 50 cold starts"
        );
        assert_eq!(calls.getuserphonenumber, 50);
    }

    pub async fn a_revoked_token_is_force_refreshed_once_and_the_call_retried(
        store: Arc<dyn Store>,
    ) {
        let (rig, token) = with_a_token(store, "carol", "13800000001").await;
        let first = rig.emu.calls();
        assert_eq!((first.stable_token, first.force_refresh), (1, 0));

        // Another back end force-refreshed: every token we hold is void.
        rig.emu.revoke_access_tokens();
        let (status, body) = rig.phone_number(&token, "13800000002").await;
        assert_eq!(status, 200, "{body}");
        let after = rig.emu.calls();
        assert_eq!(after.stable_token - first.stable_token, 1, "refreshed once");
        assert_eq!(after.force_refresh, 1, "with force_refresh");
        assert_eq!(
            after.getuserphonenumber - first.getuserphonenumber,
            2,
            "40001, then the retry"
        );
        // A cold instance takes the new token from the table.
        let cold = rig.phone_instance();
        let (status, _) = rig.phone_number_on(&cold, &token, "13800000003").await;
        assert_eq!(status, 200);
        assert_eq!(rig.emu.calls().stable_token, after.stable_token);
        one_force_refresh_today(&rig).await;
    }

    pub async fn an_expired_token_is_refreshed_once_and_the_call_retried(store: Arc<dyn Store>) {
        let (rig, token) = with_a_token(store, "dave", "13800000004").await;
        rig.emu.expire_access_tokens();
        let before = rig.emu.calls();
        let (status, body) = rig.phone_number(&token, "13800000005").await;
        assert_eq!(status, 200, "{body}");
        let after = rig.emu.calls();
        assert_eq!(after.stable_token - before.stable_token, 1);
        assert_eq!(
            after.getuserphonenumber - before.getuserphonenumber,
            2,
            "42001, then the retry"
        );

        // Refused again after the refresh: 502, and no second refresh.
        rig.emu.revoke_access_tokens();
        rig.clock.advance(10_000); // inside the 30 s spacing of force refreshes
        refused_without_a_refresh(
            &rig,
            &token,
            "13800000006",
            "no force refresh within 30 s of the last",
        )
        .await;
        rig.clock.advance(20_000);
        let (status, body) = rig.phone_number(&token, "13800000007").await;
        assert_eq!(status, 200, "30 s later a force refresh is allowed: {body}");
    }

    pub async fn twenty_force_refreshes_a_day_at_most(store: Arc<dyn Store>) {
        let (rig, token) = with_a_token(store, "erin", "13800000008").await;
        // Today's 20 force refreshes are used up (by this row's count).
        let row = token_row(&rig).await;
        let used_up = AccessTokenRecord {
            force_day: china_day(rig.clock.now_ms()),
            force_count: 20,
            ..row.clone()
        };
        assert_eq!(
            rig.store
                .swap_access_token(APPID, row.version, &used_up)
                .await
                .unwrap(),
            TokenSwap::Written
        );
        rig.emu.revoke_access_tokens();
        refused_without_a_refresh(&rig, &token, "13800000009", "no 21st force refresh").await;
        // The next China day counts afresh.
        rig.clock.advance(86_400_000);
        let (status, body) = rig.phone_number(&token, "13800000010").await;
        assert_eq!(status, 200, "a normal refresh of the expired token: {body}");
        rig.emu.revoke_access_tokens();
        let (status, body) = rig.phone_number(&token, "13800000013").await;
        assert_eq!(status, 200, "{body}");
        one_force_refresh_today(&rig).await;
    }

    pub async fn a_token_near_expiry_is_renewed_by_one_instance(store: Arc<dyn Store>) {
        let (rig, token) = with_a_token(store, "frank", "13800000011").await;
        let old = near_expiry(&rig).await;
        let instances: Vec<_> = (0..5).map(|_| rig.phone_instance()).collect();
        for instance in &instances {
            let (status, body) = rig.phone_number_on(instance, &token, "13800000012").await;
            assert_eq!(status, 200, "{body}");
        }
        let calls = rig.emu.calls();
        assert_eq!(calls.stable_token, 2, "one renewal for five instances");
        assert_eq!(calls.force_refresh, 0, "in normal mode");
        let new = token_row(&rig).await;
        assert_ne!(new.token, old.token);
        assert!(new.expires_ms > old.expires_ms);
        assert_eq!(new.lease_until_ms, 0, "the lease is given back");
    }

    pub async fn a_failed_renewal_keeps_the_old_token_while_it_lives(store: Arc<dyn Store>) {
        let (rig, token) = with_a_token(store, "gale", "13800000014").await;
        let old = near_expiry(&rig).await;
        rig.emu.fail_stable_token(&[45009]);
        let (status, body) = rig.phone_number(&token, "13800000015").await;
        assert_eq!(status, 200, "the old token still lives: {body}");
        let row = token_row(&rig).await;
        assert_eq!(
            (row.token, row.lease_until_ms),
            (old.token, 0),
            "lease given back"
        );
        // The next request renews it.
        let (status, _) = rig.phone_number(&token, "13800000016").await;
        assert_eq!(status, 200);
        assert_eq!(
            rig.emu.calls().stable_token,
            3,
            "first, failed renewal, renewal"
        );
        let renewed = token_row(&rig).await;
        assert!(renewed.expires_ms > old.expires_ms);
    }
}

gatehouse_e2e::on_both_stores!(
    the_phone_number_is_answered_and_kept_with_the_session,
    phone_errors_map_as_for_jscode2session,
    fifty_cold_instances_make_one_stable_token_call,
    a_revoked_token_is_force_refreshed_once_and_the_call_retried,
    an_expired_token_is_refreshed_once_and_the_call_retried,
    twenty_force_refreshes_a_day_at_most,
    a_token_near_expiry_is_renewed_by_one_instance,
    a_failed_renewal_keeps_the_old_token_while_it_lives,
);

/// DynamoDB only: the requests and upstream calls of one phone request,
/// warm and cold, counted by an SDK interceptor and the emulator. The
/// figures of `docs/wechat.md` come from here:
/// `cargo test -p gatehouse-e2e --test e2e -- wechat_phone::costs --nocapture`.
mod costs {
    use super::*;
    use crate::dynamo_requests::counted_store;
    use gatehouse::ratelimit::RateLimitConfig;
    use gatehouse::store::SessionStore;

    /// One phone request through `svc`: the DynamoDB requests it made and
    /// the WeChat calls the emulator saw.
    async fn measured(
        rig: &WxRig,
        requests: &crate::dynamo_requests::RequestCounter,
        svc: &gatehouse::wechat::PhoneService,
        token: &str,
        number: &str,
    ) -> (usize, u64) {
        let code = rig.emu.issue_phone_code(number);
        requests.take();
        let before = rig.emu.calls();
        let (status, body) = rig.phone_on(svc, token, &code).await;
        assert_eq!(status, 200, "{body}");
        let after = rig.emu.calls();
        let upstream = (after.stable_token + after.getuserphonenumber)
            - (before.stable_token + before.getuserphonenumber);
        (requests.take(), upstream)
    }

    #[tokio::test]
    async fn requests_and_upstream_calls_per_phone_request() {
        let (store, requests) = counted_store().await;
        let rig = WxRig::new(Arc::new(store)).await;
        requests.take();
        let token = rig.login("gina").await;
        assert_eq!(requests.take(), 2, "a login: the session, its index entry");

        let mut rows = Vec::new();
        // Cold, no token in the table yet: the lease, stable_token, the token.
        let first = measured(&rig, &requests, &rig.phone, &token, "13800000020").await;
        rows.push(("cold, no token in the table yet", first));
        // Warm: the token is in memory.
        let warm = measured(&rig, &requests, &rig.phone, &token, "13800000021").await;
        rows.push(("warm", warm));
        // Cold, the token in the table.
        let cold = rig.phone_instance();
        let cold = measured(&rig, &requests, &cold, &token, "13800000022").await;
        rows.push(("cold, token in the table", cold));
        // With the default rate limit on, its counter rides along.
        let limited = rig.phone_instance_limited(RateLimitConfig::default());
        let limited_cold = measured(&rig, &requests, &limited, &token, "13800000023").await;
        rows.push(("cold, token in the table, rate limit on", limited_cold));
        let limited_warm = measured(&rig, &requests, &limited, &token, "13800000024").await;
        rows.push(("warm, rate limit on", limited_warm));

        for (what, (dynamo, upstream)) in &rows {
            println!("POST /wx/phone, {what}: {dynamo} DynamoDB requests, {upstream} WeChat calls");
        }
        let figures: Vec<(usize, u64)> = rows.iter().map(|(_, f)| *f).collect();
        assert_eq!(
            figures,
            [(5, 2), (2, 1), (3, 1), (4, 1), (3, 1)],
            "{rows:?}"
        );
    }

    /// The `session` and `authorizer` functions' requests never carry a
    /// `session_key` back from DynamoDB (the reads project it out), while
    /// the row does hold one.
    #[tokio::test]
    async fn session_reads_never_bring_the_session_key_back() {
        use aws_sdk_dynamodb::config::interceptors::AfterDeserializationInterceptorContextRef;
        use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
        use aws_smithy_runtime_api::box_error::BoxError;
        use std::sync::Mutex;

        #[derive(Debug, Clone, Default)]
        struct Responses(Arc<Mutex<Vec<u8>>>);
        impl Intercept for Responses {
            fn name(&self) -> &'static str {
                "Responses"
            }
            fn read_after_deserialization(
                &self,
                context: &AfterDeserializationInterceptorContextRef<'_>,
                _: &RuntimeComponents,
                _: &mut ConfigBag,
            ) -> Result<(), BoxError> {
                if let Some(bytes) = context.response().body().bytes() {
                    self.0.lock().unwrap().extend_from_slice(bytes);
                }
                Ok(())
            }
        }

        let local = gatehouse_e2e::dynamodb_local().await;
        let table = local.fresh_table().await;
        let rig = WxRig::new(Arc::new(table.store())).await;
        let recorded = Responses::default();
        let watched = aws_sdk_dynamodb::Client::from_conf(
            local.config_builder().interceptor(recorded.clone()).build(),
        );
        let watched: Arc<dyn Store> = Arc::new(gatehouse::store::dynamo::DynamoStore::new(
            watched,
            table.name.clone(),
        ));
        let options = gatehouse::options::ServiceOptions::new(RateLimitConfig::disabled())
            .with_clock(rig.clock.clone());
        let sessions = gatehouse::wechat::SessionService::new(watched.clone(), &options);

        let mut keys = Vec::new();
        let mut tokens = Vec::new();
        for _ in 0..3 {
            let code = rig.emu.issue_code("hana");
            let (status, body) = rig.login_with(json!({ "code": code })).await;
            assert_eq!(status, 200);
            keys.push(rig.emu.session_key_for_code(&code).unwrap());
            tokens.push(body["token"].as_str().unwrap().to_owned());
        }
        let stored = table
            .store()
            .session_key(&gatehouse::wechat::crypto::token_hash(&tokens[0]))
            .await
            .unwrap();
        assert_eq!(
            stored,
            Some(Secret::new(keys[0].clone())),
            "the row holds it"
        );

        let phone = rig.phone_instance_on(watched.clone());
        let code = rig.emu.issue_phone_code("13800000030");
        assert_eq!(rig.phone_on(&phone, &tokens[0], &code).await.0, 200);
        sessions.check(&tokens[0]).await.unwrap();
        let admitted = crate::wechat_rig::authorize_on(
            &sessions,
            watched.clone(),
            crate::wechat_rig::authorizer_event(&tokens[0]),
        )
        .await;
        assert!(admitted.is_authorized);
        let refreshed = sessions.refresh(&tokens[1]).await.unwrap();
        sessions.end(&tokens[2]).await.unwrap();
        sessions.end_all(&refreshed.token).await.unwrap();

        let seen = String::from_utf8_lossy(&recorded.0.lock().unwrap()).into_owned();
        assert!(
            seen.contains("openid"),
            "the responses were recorded: {seen}"
        );
        for key in &keys {
            assert!(
                !seen.contains(key.as_str()),
                "{key} came back from DynamoDB: {seen}"
            );
        }
    }
}

/// The emulator keeps WeChat's own `stable_token` rules, so the paths above
/// meet what WeChat would do.
mod emulator {
    use gatehouse::clock::Clock;
    use serde_json::{Value, json};

    use crate::wechat_rig::{APPID, SECRET, emulator};

    async fn stable_token(base: &str, force: bool) -> Value {
        let body = json!({"grant_type": "client_credential", "appid": APPID,
                          "secret": SECRET, "force_refresh": force});
        post_stable_token(base, &body).await
    }

    async fn post_stable_token(base: &str, body: &Value) -> Value {
        reqwest::Client::new()
            .post(format!("{base}/cgi-bin/stable_token"))
            .json(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn stable_token_keeps_wechat_s_modes_and_limits() {
        let clock = Clock::manual(1_700_000_000_000);
        let emu = emulator(&clock).await;
        let base = emu.base_url();
        let first = stable_token(&base, false).await;
        assert_eq!(first["expires_in"], 7200);
        assert!(first["access_token"].as_str().unwrap().len() >= 100);
        clock.advance(600_000);
        let again = stable_token(&base, false).await;
        assert_eq!(
            again["access_token"], first["access_token"],
            "normal mode: same token"
        );
        assert_eq!(again["expires_in"], 6600);
        // Within five minutes of expiry a new one comes; the old one stays valid.
        clock.advance(6_400_000);
        let renewed = stable_token(&base, false).await;
        assert_ne!(renewed["access_token"], first["access_token"]);
        assert_eq!(renewed["expires_in"], 7200);

        let forced = stable_token(&base, true).await;
        assert_ne!(forced["access_token"], renewed["access_token"]);
        clock.advance(29_999);
        let too_soon = stable_token(&base, true).await;
        assert_eq!(
            too_soon["access_token"], forced["access_token"],
            "within 30 s: no refresh"
        );
        for _ in 1..20 {
            clock.advance(30_000);
            assert!(stable_token(&base, true).await["access_token"].is_string());
        }
        clock.advance(30_000);
        assert_eq!(
            stable_token(&base, true).await["errcode"],
            45009,
            "the 21st of the day"
        );
        assert!(stable_token(&base, false).await["access_token"].is_string());

        for (body, errcode) in [
            (
                json!({"grant_type": "client_credential", "appid": "wxother", "secret": SECRET}),
                40013,
            ),
            (
                json!({"grant_type": "client_credential", "appid": APPID, "secret": "nope"}),
                40125,
            ),
            (
                json!({"grant_type": "password", "appid": APPID, "secret": SECRET}),
                40002,
            ),
        ] {
            let answer = post_stable_token(&base, &body).await;
            assert_eq!(answer["errcode"], errcode, "{body}");
        }
        emu.fail_stable_token(&[-1, 40164]);
        assert_eq!(stable_token(&base, false).await["errcode"], -1);
        assert_eq!(stable_token(&base, false).await["errcode"], 40164);
        assert_eq!(emu.calls().force_refresh, 22);
    }
}
