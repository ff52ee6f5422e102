//! The store conformance suite: every case is written once over
//! `Arc<dyn Store>` and run against the embedded `MemoryStore` and against
//! `DynamoStore` on DynamoDB Local (a fresh table per test, made from
//! template.yaml). The WeChat rows (sessions, session indexes, the access
//! token) have their cases in `store_conformance_wechat.rs`, the passes in
//! `store_conformance_passes.rs`.

use std::sync::Arc;

use gatehouse::domain::DeviceId;
use gatehouse::store::{AccessTokenStore, SessionIndexStore, SessionStore};
use gatehouse::store::{CaptchaStore, CounterStore, TicketStore};
use gatehouse::store::{Store, VerifyOutcome};
use gatehouse_e2e::fixtures::{CAPTCHA_LIFETIME_MS, passes_of_racing_right_answers, race};
use gatehouse_e2e::{NOW, captcha, device, scene};

type Shared = Arc<dyn Store>;

mod cases {
    use super::*;
    use VerifyOutcome::*;

    /// One scene's captcha of one device, in the store under test.
    #[derive(Clone)]
    struct Slot {
        store: Shared,
        scene: &'static str,
        device: &'static str,
    }

    fn slot(store: &Shared, scene: &'static str, device: &'static str) -> Slot {
        Slot {
            store: store.clone(),
            scene,
            device,
        }
    }

    impl Slot {
        /// Writes the fixture captcha (created [`NOW`]) whose answer is `code`.
        async fn create(&self, code: &str) {
            self.store
                .create_captcha(&captcha(self.scene, self.device, code))
                .await
                .unwrap();
        }

        /// Refreshes the captcha to a new `code`: whether there was one.
        async fn refresh(&self, code: &str) -> bool {
            self.store
                .refresh_captcha(&captcha(self.scene, self.device, code))
                .await
                .unwrap()
        }

        /// One answer to the captcha at `now_ms`.
        async fn verify(&self, answer: &str, now_ms: i64, max_attempts: u32) -> VerifyOutcome {
            self.store
                .verify_captcha(
                    &scene(self.scene),
                    &device(self.device),
                    answer,
                    now_ms,
                    max_attempts,
                )
                .await
                .unwrap()
        }
    }

    pub async fn create_replaces_the_older_captcha(store: Shared) {
        let login = slot(&store, "login", "dev-1");
        login.create("aaaa").await;
        login.create("bbbb").await;
        assert_eq!(
            login.verify("aaaa", *NOW + 1, 3).await,
            Wrong { attempts_left: 2 },
            "the older captcha's answer must not pass"
        );
        assert_eq!(login.verify("bbbb", *NOW + 2, 3).await, Passed);
        // A create also replaces a verified (or void) captcha, resetting it.
        let mut newer = captcha("login", "dev-1", "cccc");
        newer.created_date = *NOW + 10;
        newer.expired_date = *NOW + 10 + CAPTCHA_LIFETIME_MS;
        store.create_captcha(&newer).await.unwrap();
        assert_eq!(login.verify("bbbb", *NOW + 11, 1).await, Voided);
        store.create_captcha(&newer).await.unwrap();
        assert_eq!(login.verify("cccc", *NOW + 12, 1).await, Passed);
    }

    pub async fn refresh_needs_an_existing_captcha(store: Shared) {
        let login = slot(&store, "login", "dev-1");
        assert!(!login.refresh("aaaa").await);
        assert_eq!(
            login.verify("aaaa", *NOW, 3).await,
            NotFound,
            "a refresh without a captcha must write nothing"
        );

        login.create("aaaa").await;
        assert!(login.refresh("bbbb").await);
        assert_eq!(
            login.verify("aaaa", *NOW, 3).await,
            Wrong { attempts_left: 2 }
        );
        assert_eq!(login.verify("bbbb", *NOW, 3).await, Passed);
        // Any state: a verified captcha can be refreshed, and the new one is
        // pending with its attempts reset.
        assert!(login.refresh("cccc").await);
        assert_eq!(login.verify("cccc", *NOW, 3).await, Passed);
        // Void and expired captchas can be refreshed as well.
        let pay = slot(&store, "pay", "dev-1");
        pay.create("dddd").await;
        assert_eq!(pay.verify("xxxx", *NOW, 1).await, Voided);
        assert!(pay.refresh("eeee").await);
        assert_eq!(pay.verify("eeee", *NOW, 1).await, Passed);
        // (Expired by the verify's clock; its TTL is still ahead of the wall
        // clock, or DynamoDB Local would delete the row.)
        let bind = slot(&store, "bind", "dev-1");
        bind.create("ffff").await;
        assert_eq!(
            bind.verify("ffff", *NOW + CAPTCHA_LIFETIME_MS, 1).await,
            Expired
        );
        assert!(bind.refresh("gggg").await);
        assert_eq!(bind.verify("gggg", *NOW, 1).await, Passed);
    }

    pub async fn verify_passes_exactly_once_under_a_race(store: Shared) {
        let racer = slot(&store, "login", "racer");
        racer.create("abcd").await;
        let outcomes = race(32, |_| {
            let racer = racer.clone();
            async move { racer.verify("abcd", *NOW + 5, 1).await }
        })
        .await;
        assert_eq!(
            passes_of_racing_right_answers(outcomes, "answer"),
            1,
            "exactly one of 32 racing verifies passes"
        );
        assert_eq!(racer.verify("abcd", *NOW + 6, 1).await, NotPending);
    }

    pub async fn racing_wrong_answers_each_count_once(store: Shared) {
        let guesser = slot(&store, "login", "guesser");
        guesser.create("abcd").await;
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (guesser, guess) = (guesser.clone(), format!("zz{i:02}"));
                tokio::spawn(async move { guesser.verify(&guess, *NOW + 5, 5).await })
            })
            .collect();
        let mut left = Vec::new();
        let (mut voided, mut not_pending) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Wrong { attempts_left } => left.push(attempts_left),
                Voided => voided += 1,
                NotPending => not_pending += 1,
                other => panic!("a racing wrong answer came to {other:?}"),
            }
        }
        left.sort_unstable();
        assert_eq!(left, [1, 2, 3, 4], "each wrong answer counts exactly once");
        assert_eq!((voided, not_pending), (1, 3));
        assert_eq!(
            guesser.verify("abcd", *NOW + 6, 5).await,
            NotPending,
            "a voided captcha never passes"
        );
    }

    pub async fn right_and_wrong_answers_racing_pass_once(store: Shared) {
        let mixed = slot(&store, "login", "mixed");
        mixed.create("abcd").await;
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let mixed = mixed.clone();
                tokio::spawn(async move {
                    let answer = if i % 2 == 0 { "abcd" } else { "dcba" };
                    (i % 2 == 0, mixed.verify(answer, *NOW + 5, 100).await)
                })
            })
            .collect();
        let (mut passed, mut counted) = (0, Vec::new());
        for task in tasks {
            match task.await.unwrap() {
                (true, Passed) => passed += 1,
                (_, NotPending) => {}
                (false, Wrong { attempts_left }) => counted.push(attempts_left),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(passed, 1, "exactly one right answer passes");
        counted.sort_unstable();
        counted.dedup();
        let wrong = counted.len();
        assert!(wrong <= 16);
        assert_eq!(
            counted,
            (100 - wrong as u32..100).collect::<Vec<_>>(),
            "every counted wrong answer counted once"
        );
    }

    pub async fn expired_is_overdue_while_the_row_exists(store: Shared) {
        let late = slot(&store, "login", "late");
        late.create("abcd").await;
        let expiry = *NOW + CAPTCHA_LIFETIME_MS;
        for (answer, now_ms, max_attempts, why) in [
            ("abcd", expiry, 3, "expired_date itself is overdue"),
            (
                "abcd",
                expiry + 86_400_000,
                3,
                "still overdue a day later, long past the TTL, while the row exists",
            ),
            (
                "wrong",
                expiry + 1,
                1,
                "a wrong answer on an expired captcha is overdue, not counted",
            ),
        ] {
            assert_eq!(
                late.verify(answer, now_ms, max_attempts).await,
                Expired,
                "{why}"
            );
        }
        // Nothing above changed the row: a moment earlier it still passes.
        assert_eq!(late.verify("abcd", expiry - 1, 3).await, Passed);
    }

    pub async fn max_attempts_voids_the_captcha(store: Shared) {
        let dev3 = slot(&store, "login", "dev-3");
        dev3.create("abcd").await;
        for (answer, outcome) in [
            ("xxxx", Wrong { attempts_left: 2 }),
            ("yyyy", Wrong { attempts_left: 1 }),
            ("zzzz", Voided),
            ("abcd", NotPending),
        ] {
            assert_eq!(dev3.verify(answer, *NOW, 3).await, outcome, "{answer}");
        }

        let dev1 = slot(&store, "login", "dev-1");
        dev1.create("abcd").await;
        assert_eq!(
            dev1.verify("abce", *NOW, 1).await,
            Voided,
            "with maxAttempts 1 the first wrong answer voids"
        );
        assert_eq!(dev1.verify("abcd", *NOW, 1).await, NotPending);

        let dev2 = slot(&store, "login", "dev-2");
        dev2.create("abcd").await;
        assert_eq!(
            dev2.verify("wxyz", *NOW, 2).await,
            Wrong { attempts_left: 1 }
        );
        assert_eq!(
            dev2.verify("abcd", *NOW, 2).await,
            Passed,
            "the right answer within maxAttempts passes"
        );
    }

    pub async fn unknown_device_or_scene_and_empty_answers_never_pass(store: Shared) {
        let known = slot(&store, "login", "known");
        known.create("abcd").await;
        assert_eq!(
            slot(&store, "login", "unknown")
                .verify("abcd", *NOW, 3)
                .await,
            NotFound
        );
        assert_eq!(
            slot(&store, "register", "known")
                .verify("abcd", *NOW, 3)
                .await,
            NotFound
        );
        // An empty device id never reaches the store: the boundary refuses it.
        assert_eq!(
            DeviceId::parse(""),
            Err(gatehouse::ApiError::DeviceIdRequired)
        );
        let empty = known.verify("", *NOW, 3).await;
        assert_ne!(empty, Passed, "an empty answer never passes");
        assert_eq!(empty, Wrong { attempts_left: 2 });

        // Not even against a row whose code is empty.
        let blank = slot(&store, "login", "blank");
        blank.create("").await;
        assert_eq!(blank.verify("", *NOW, 3).await, Wrong { attempts_left: 2 });
        assert_eq!(known.verify("abcd", *NOW, 3).await, Passed);
    }

    pub async fn scenes_are_isolated(store: Shared) {
        let (login, register) = (
            slot(&store, "login", "dev"),
            slot(&store, "register", "dev"),
        );
        login.create("aaaa").await;
        register.create("bbbb").await;
        assert_eq!(
            login.verify("bbbb", *NOW, 3).await,
            Wrong { attempts_left: 2 },
            "another scene's answer does not pass"
        );
        assert!(
            !slot(&store, "pay", "dev").refresh("cccc").await,
            "a captcha of another scene does not make a refresh possible"
        );
        assert_eq!(register.verify("bbbb", *NOW, 3).await, Passed);
        assert_eq!(register.verify("bbbb", *NOW, 3).await, NotPending);
        assert_eq!(
            login.verify("aaaa", *NOW, 3).await,
            Passed,
            "verifying one scene leaves the other pending"
        );
    }

    pub async fn tickets_are_claimed_once(store: Shared) {
        let expires = *NOW + 600_000;
        // (ticket, now, expiry, whether the claim wins), in turn.
        for (ticket, now_ms, expires_ms, wins) in [
            ("t1", *NOW, expires, true),
            ("t1", *NOW + 1, expires + 1, false),
            ("t1", expires - 1, expires + 1, false),
            ("t2", *NOW + 1, expires, true),
            // Once the record expired (even if the row is still there) it
            // may be claimed again.
            ("t1", expires, expires + 600_000, true),
            ("t1", expires + 1, expires + 600_000, false),
        ] {
            assert_eq!(
                store
                    .claim_ticket(ticket, now_ms, expires_ms)
                    .await
                    .unwrap(),
                wins,
                "claim of {ticket} at {now_ms}"
            );
        }

        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.claim_ticket("raced", *NOW, expires).await })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            won += usize::from(task.await.unwrap().unwrap());
        }
        assert_eq!(won, 1, "exactly one of 16 racing claims wins");
    }

    pub async fn counters_increment_atomically(store: Shared) {
        let window_end = *NOW + 60_000;
        for (key, count) in [
            ("ip:1:w1", 1),
            ("ip:1:w1", 2),
            ("ip:2:w1", 1),
            ("ip:1:w1", 3),
        ] {
            assert_eq!(
                store.increment_counter(key, window_end).await.unwrap(),
                count,
                "{key}"
            );
        }

        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.increment_counter("busy", window_end).await })
            })
            .collect();
        let mut counts = Vec::new();
        for task in tasks {
            counts.push(task.await.unwrap().unwrap());
        }
        counts.sort_unstable();
        assert_eq!(
            counts,
            (1..=32).collect::<Vec<u64>>(),
            "no increment is lost"
        );
    }
}

gatehouse_e2e::on_both_stores!(
    create_replaces_the_older_captcha,
    refresh_needs_an_existing_captcha,
    verify_passes_exactly_once_under_a_race,
    racing_wrong_answers_each_count_once,
    right_and_wrong_answers_racing_pass_once,
    expired_is_overdue_while_the_row_exists,
    max_attempts_voids_the_captcha,
    unknown_device_or_scene_and_empty_answers_never_pass,
    scenes_are_isolated,
    tickets_are_claimed_once,
    counters_increment_atomically,
);

/// DynamoDB only: the rows carry the `opendb-verify-codes` field names and
/// the TTL attribute, and the table's TTL is on, as template.yaml says.
mod dynamo_items {
    use super::*;
    use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
    use gatehouse::store::{KEY_ATTRIBUTE, TTL_ATTRIBUTE, captcha_key};

    #[tokio::test]
    async fn captcha_rows_use_opendb_field_names_and_ttl() {
        let table = gatehouse_e2e::dynamodb_local().await.fresh_table().await;
        let store = table.store();
        let record = captcha("login", "dev-9", "k7m2");
        store.create_captcha(&record).await.unwrap();
        assert_eq!(
            store
                .verify_captcha(&scene("login"), &device("dev-9"), "nope", *NOW, 3)
                .await
                .unwrap(),
            VerifyOutcome::Wrong { attempts_left: 2 }
        );

        let item = table
            .client
            .get_item()
            .table_name(&table.name)
            .key(
                KEY_ATTRIBUTE,
                AttributeValue::S(captcha_key(&scene("login"), &device("dev-9"))),
            )
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .expect("the captcha row");
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let n = |v: i64| AttributeValue::N(v.to_string());
        assert_eq!(item["device_uuid"], s("dev-9"));
        assert_eq!(item["scene"], s("login"));
        assert_eq!(item["code"], s("k7m2"));
        assert_eq!(item["state"], n(0));
        assert_eq!(item["ip"], s("203.0.113.7"));
        assert_eq!(item["created_date"], n(*NOW));
        assert_eq!(item["expired_date"], n(*NOW + CAPTCHA_LIFETIME_MS));
        assert_eq!(item["attempts"], n(1));
        // The verify write keeps the captcha's own TTL and carries the
        // attempt's request nonce (`t1`); it writes no pass (that is a row
        // of its own).
        assert_eq!(
            item[TTL_ATTRIBUTE],
            n((*NOW + CAPTCHA_LIFETIME_MS) / 1000 + 1)
        );
        assert!(item["t1"].as_s().is_ok_and(|nonce| nonce.len() == 16));
        let answer_attribute = item
            .keys()
            .filter(|k| k.starts_with("ok_"))
            .collect::<Vec<_>>();
        assert_eq!(answer_attribute.len(), 1, "the right answer's attribute");
        assert_eq!(item[answer_attribute[0].as_str()], n(1));
        assert!(!item.keys().any(|k| k.starts_with("pass")), "{item:?}");
        assert_eq!(item.len(), 12, "{item:?}");
    }

    /// A captcha row written by an older gatehouse (no right answer's
    /// attribute) still passes its right answer, in one more request, and
    /// still counts a wrong one.
    #[tokio::test]
    async fn captchas_of_an_older_gatehouse_still_pass() {
        let table = gatehouse_e2e::dynamodb_local().await.fresh_table().await;
        let store = table.store();
        let legacy = |device_id: &str| {
            let n = |v: i64| AttributeValue::N(v.to_string());
            let s = |v: &str| AttributeValue::S(v.to_owned());
            table
                .client
                .put_item()
                .table_name(&table.name)
                .item(
                    KEY_ATTRIBUTE,
                    s(&captcha_key(&scene("login"), &device(device_id))),
                )
                .item("device_uuid", s(device_id))
                .item("scene", s("login"))
                .item("code", s("k7m2"))
                .item("state", n(0))
                .item("ip", s("203.0.113.7"))
                .item("created_date", n(*NOW))
                .item("expired_date", n(*NOW + CAPTCHA_LIFETIME_MS))
                .item("attempts", n(0))
                .item(TTL_ATTRIBUTE, n((*NOW + CAPTCHA_LIFETIME_MS) / 1000 + 1))
                .send()
        };
        legacy("old-1").await.unwrap();
        let verify = |device_id: &'static str, answer: &'static str| {
            let store = store.clone();
            async move {
                store
                    .verify_captcha(&scene("login"), &device(device_id), answer, *NOW, 1)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(verify("old-1", "k7m2").await, VerifyOutcome::Passed);
        assert_eq!(verify("old-1", "k7m2").await, VerifyOutcome::NotPending);
        legacy("old-2").await.unwrap();
        assert_eq!(verify("old-2", "zzzz").await, VerifyOutcome::Voided);
        assert_eq!(verify("old-2", "k7m2").await, VerifyOutcome::NotPending);
    }

    #[tokio::test]
    async fn failures_are_store_errors() {
        let local = gatehouse_e2e::dynamodb_local().await;
        let missing =
            gatehouse::store::dynamo::DynamoStore::new(local.client(), "no-such-table".into());
        let record = captcha("login", "dev", "abcd");
        let err = missing.create_captcha(&record).await.unwrap_err();
        assert_eq!(
            err.0,
            "create_captcha: ResourceNotFoundException: Cannot do operations on a non-existent table"
        );
        assert!(missing.refresh_captcha(&record).await.is_err());
        assert!(
            missing
                .verify_captcha(&scene("login"), &device("dev"), "abcd", *NOW, 1)
                .await
                .is_err()
        );
        assert!(missing.claim_ticket("t", *NOW, *NOW + 1).await.is_err());
        assert!(missing.increment_counter("c", *NOW + 1).await.is_err());
        assert!(missing.get_session("s").await.is_err());
        assert!(missing.take_session_index("o").await.is_err());
        assert!(missing.get_access_token("wx").await.is_err());

        // Nothing listens on this port: connection refused, after the retries.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let client = aws_sdk_dynamodb::Client::from_conf(
            local
                .config_builder()
                .endpoint_url(format!("http://127.0.0.1:{port}"))
                .build(),
        );
        let unreachable = gatehouse::store::dynamo::DynamoStore::new(client, "t".into());
        let err = unreachable.create_captcha(&record).await.unwrap_err();
        assert!(err.0.starts_with("create_captcha:"), "{err}");
    }

    #[tokio::test]
    async fn the_table_has_ttl_on_the_ttl_attribute() {
        let local = gatehouse_e2e::dynamodb_local().await;
        let table = local.fresh_table().await;
        let ttl = table
            .client
            .describe_time_to_live()
            .table_name(&table.name)
            .send()
            .await
            .unwrap()
            .time_to_live_description
            .expect("a TTL description");
        assert_eq!(ttl.attribute_name(), Some(TTL_ATTRIBUTE));
        assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
        assert!(local.is_running());
    }
}

/// DynamoDB Local's Java process ends with the test process that started it,
/// however that ends: no orphaned `java` after `cargo test`.
mod dynamo_process {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    const PROBE_ENV: &str = "GATEHOUSE_E2E_JAVA_PROBE";

    /// Run by `java_dies_with_the_test_process` in a child test process:
    /// starts DynamoDB Local, prints the Java pid, and exits (normally, or
    /// by SIGKILL of itself when asked).
    #[tokio::test]
    #[ignore = "a helper process of java_dies_with_the_test_process"]
    async fn probe() {
        let Some(mode) = std::env::var_os(PROBE_ENV) else {
            return;
        };
        let local = gatehouse_e2e::dynamodb_local().await;
        assert!(local.is_running());
        println!("JAVA_PID={}", local.pid());
        if mode == "kill" {
            // SAFETY: raise sends a signal to this very process.
            unsafe { libc::raise(libc::SIGKILL) };
        }
    }

    fn alive(pid: u32) -> bool {
        // A zombie (state Z) is dead, only not yet reaped by its new parent.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
            Err(_) => false,
        }
    }

    fn run_probe(mode: &str) -> u32 {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store_conformance::dynamo_process::probe",
                "--ignored",
                "--nocapture",
            ])
            .env(PROBE_ENV, mode)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let pid = stdout
            .lines()
            .find_map(|l| l.strip_prefix("JAVA_PID="))
            .unwrap_or_else(|| {
                panic!(
                    "the probe printed no pid: {stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        pid.trim().parse().unwrap()
    }

    /// Waits (bounded) for the kernel to deliver the parent-death signal.
    fn wait_gone(pid: u32) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while alive(pid) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    #[test]
    fn java_dies_with_the_test_process() {
        for mode in ["exit", "kill"] {
            let pid = run_probe(mode);
            if !wait_gone(pid) {
                // Do not leave it behind for the next run either.
                // SAFETY: kill(2) on the pid the probe reported.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                panic!("java {pid} outlived its test process ({mode})");
            }
        }
    }
}
