//! The store conformance suite's SMS code rows, on the embedded store and on
//! DynamoDB Local alike: a send's write and its counters (the resend
//! window, a full counter: nothing written, nothing counted), the void of
//! an unsent code, the one-write verify (attempts, `maxAttempts`, expiry,
//! one pass however many race) and the sms pass it earns: a row of its
//! own that carries the number.

use std::sync::Arc;

use gatehouse::domain::Scene;
use gatehouse::guard::pass::PassToken;
use gatehouse::sms::Mobile;
use gatehouse::sms::code::code_hash;
use gatehouse::store::{
    CounterLimit, PassClaim, PassKind, Redemption, SmsIssue, Store, VerifyOutcome, sms_locator,
};
use gatehouse_e2e::fixtures::{passes_of_racing_right_answers, race};
use gatehouse_e2e::sms::sms_record;
use gatehouse_e2e::{NOW, pass_grant, scene};

type Shared = Arc<dyn Store>;

const MOBILE: &str = "+8613800138000";

fn mobile(text: &str) -> Mobile {
    Mobile::parse(text).unwrap()
}

/// The keyed hash of `code` for `MOBILE` in `scene_name`.
fn hash(scene_name: &str, code: &str) -> String {
    code_hash(&sms_locator(&scene(scene_name), &mobile(MOBILE)), code)
}

async fn verify(store: &Shared, scene_name: &str, code: &str, now: i64, max: u32) -> VerifyOutcome {
    store
        .verify_sms_code(
            &scene(scene_name),
            &mobile(MOBILE),
            &hash(scene_name, code),
            now,
            max,
        )
        .await
        .unwrap()
}

fn limit(name: &str, limit: u64) -> CounterLimit {
    CounterLimit {
        name: name.into(),
        limit,
        window_end_ms: *NOW + 86_400_000,
    }
}

/// What the counters of `limits` hold, read by counting each once more
/// (the store reads plain counters no other way): a later read sees one
/// more in each.
async fn counted(store: &Shared, limits: &[CounterLimit]) -> Vec<u64> {
    let mut counts = Vec::with_capacity(limits.len());
    for limit in limits {
        let after = store
            .increment_counter(&limit.name, limit.window_end_ms)
            .await
            .unwrap();
        counts.push(after - 1);
    }
    counts
}

/// The claim of an sms pass in `scene` at `now_ms`, by any device.
fn claim<'a>(hash: &'a str, scene: &'a Scene, now_ms: i64) -> PassClaim<'a> {
    PassClaim {
        kind: PassKind::Sms,
        secret_hash: hash,
        scene,
        device: None,
        bind_device: false,
        bind_ip_net: None,
        idempotency_key: None,
        replay_only: false,
        now_ms,
    }
}

mod cases {
    use super::*;
    use VerifyOutcome::*;

    pub async fn a_send_waits_out_its_resend_window_and_voids_the_last_code(store: Shared) {
        let now = *NOW;
        let first = sms_record("login", MOBILE, "111111", now);
        let limits = [limit("smsday|*|1|+8613800138000", 5)];
        assert_eq!(
            store.issue_sms_code(&first, &limits, now).await.unwrap(),
            SmsIssue::Written
        );
        let second = sms_record("login", MOBILE, "222222", now + 59_999);
        assert_eq!(
            store
                .issue_sms_code(&second, &limits, now + 59_999)
                .await
                .unwrap(),
            SmsIssue::TooSoon {
                resend_after_ms: now + 60_000
            }
        );
        assert_eq!(
            counted(&store, &limits).await,
            [1],
            "a refused send counts nothing"
        );
        assert_eq!(verify(&store, "login", "111111", now + 1, 5).await, Passed);
        // The window is the send's, verified or not: then a new code, and
        // the older one is gone.
        let third = sms_record("login", MOBILE, "333333", now + 60_000);
        assert_eq!(
            store
                .issue_sms_code(&third, &limits, now + 60_000)
                .await
                .unwrap(),
            SmsIssue::Written
        );
        assert_eq!(
            verify(&store, "login", "111111", now + 60_001, 5).await,
            Wrong { attempts_left: 4 }
        );
        assert_eq!(
            verify(&store, "login", "333333", now + 60_002, 5).await,
            Passed
        );
        // The first send, the read's own count, the third send.
        assert_eq!(counted(&store, &limits).await, [3]);
    }

    pub async fn a_full_counter_refuses_and_undoes_everything(store: Shared) {
        let now = *NOW;
        let limits = [
            limit("smssend|ip|*|0|203.0.113.7", 10),
            limit("smsbudget|*|1", 1),
        ];
        let first = sms_record("login", "+8613800138001", "121212", now);
        assert_eq!(
            store.issue_sms_code(&first, &limits, now).await.unwrap(),
            SmsIssue::Written
        );
        let refused = sms_record("login", MOBILE, "343434", now);
        assert_eq!(
            store.issue_sms_code(&refused, &limits, now).await.unwrap(),
            SmsIssue::Limited {
                index: 1,
                window_end_ms: limits[1].window_end_ms
            }
        );
        assert_eq!(counted(&store, &limits).await, [1, 1], "the IP's undone");
        assert_eq!(
            verify(&store, "login", "343434", now, 5).await,
            NotFound,
            "the refused code was never written (or is gone)"
        );
        // An earlier code of the number survives a refused send.
        let held = sms_record("pay", MOBILE, "565656", now);
        assert_eq!(
            store.issue_sms_code(&held, &[], now).await.unwrap(),
            SmsIssue::Written
        );
        let later = sms_record("pay", MOBILE, "787878", now + 60_000);
        assert!(matches!(
            store
                .issue_sms_code(&later, &limits, now + 60_000)
                .await
                .unwrap(),
            SmsIssue::Limited { index: 1, .. }
        ));
        assert_eq!(
            verify(&store, "pay", "565656", now + 60_001, 5).await,
            Passed
        );
    }

    pub async fn a_void_takes_its_own_code_only(store: Shared) {
        let now = *NOW;
        let record = sms_record("login", MOBILE, "101010", now);
        store.issue_sms_code(&record, &[], now).await.unwrap();
        let stranger = gatehouse::store::SmsCodeRecord {
            send_id: "0123456789abcdef".into(),
            ..record.clone()
        };
        store.void_sms_code(&stranger).await.unwrap();
        assert_eq!(
            verify(&store, "login", "202020", now, 5).await,
            Wrong { attempts_left: 4 },
            "another send's void leaves the code"
        );
        store.void_sms_code(&record).await.unwrap();
        assert_eq!(verify(&store, "login", "101010", now, 5).await, NotPending);
        // Voiding again, or a row that is gone, is no error.
        store.void_sms_code(&record).await.unwrap();
        let absent = sms_record("none", MOBILE, "101010", now);
        store.void_sms_code(&absent).await.unwrap();
    }

    pub async fn wrong_codes_count_until_max_attempts_and_expiry_is_checked(store: Shared) {
        let now = *NOW;
        store
            .issue_sms_code(&sms_record("login", MOBILE, "424242", now), &[], now)
            .await
            .unwrap();
        assert_eq!(
            verify(&store, "login", "000000", now, 3).await,
            Wrong { attempts_left: 2 }
        );
        assert_eq!(
            verify(&store, "login", "000001", now, 3).await,
            Wrong { attempts_left: 1 }
        );
        assert_eq!(verify(&store, "login", "000002", now, 3).await, Voided);
        assert_eq!(verify(&store, "login", "424242", now, 3).await, NotPending);

        store
            .issue_sms_code(&sms_record("pay", MOBILE, "434343", now), &[], now)
            .await
            .unwrap();
        assert_eq!(
            verify(&store, "pay", "434343", now + 300_000, 3).await,
            Expired
        );
        assert_eq!(verify(&store, "other", "434343", now, 3).await, NotFound);
    }

    pub async fn a_right_code_passes_once_under_a_race(store: Shared) {
        let now = *NOW;
        store
            .issue_sms_code(&sms_record("login", MOBILE, "989898", now), &[], now)
            .await
            .unwrap();
        let outcomes = race(32, |_| {
            let store = store.clone();
            async move { verify(&store, "login", "989898", now, 5).await }
        })
        .await;
        assert_eq!(passes_of_racing_right_answers(outcomes, "code"), 1);
    }

    pub async fn an_sms_pass_redeems_once_with_its_number(store: Shared) {
        let now = *NOW;
        let login = scene("login");
        let token = PassToken::issue(PassKind::Sms);
        let grant = pass_grant(&token, "login", None, "203.0.113.7");
        assert_eq!(grant.mobile, Some(mobile(MOBILE)));
        store.grant_pass(&grant).await.unwrap();
        let hash = token.secret_hash();
        // Another kind's claim of the same secret names another row.
        let as_captcha = PassClaim {
            kind: PassKind::Captcha,
            ..claim(&hash, &login, now)
        };
        assert_eq!(
            store.redeem_pass(&as_captcha).await.unwrap(),
            Redemption::Unknown
        );
        let Redemption::Redeemed(pass) =
            store.redeem_pass(&claim(&hash, &login, now)).await.unwrap()
        else {
            panic!("the sms pass is redeemable")
        };
        assert_eq!(pass.kind, PassKind::Sms);
        assert_eq!(pass.mobile, Some(mobile(MOBILE)));
        assert_eq!(pass.ip, "203.0.113.7");
        assert_eq!(
            store.redeem_pass(&claim(&hash, &login, now)).await.unwrap(),
            Redemption::Used
        );
    }
}

gatehouse_e2e::on_both_stores!(
    a_send_waits_out_its_resend_window_and_voids_the_last_code,
    a_full_counter_refuses_and_undoes_everything,
    a_void_takes_its_own_code_only,
    wrong_codes_count_until_max_attempts_and_expiry_is_checked,
    a_right_code_passes_once_under_a_race,
    an_sms_pass_redeems_once_with_its_number,
);
