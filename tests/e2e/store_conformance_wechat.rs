//! The conformance suite of the WeChat rows, on both stores (as
//! `store_conformance.rs`): sessions with their `session_key` and phone
//! number, all-or-nothing replacement, batch deletes, each user's session
//! index, the version-conditional access-token row, and cached WeChat
//! risk ranks (alone, and read with counters in one request).

use std::sync::Arc;

use gatehouse::secret::Secret;
use gatehouse::store::{
    AccessTokenRecord, GuardEvent, GuardTally, GuardWindows, IndexedSession, PhoneNumber, RankCell,
    RiskAnswer, RiskRankRecord, SessionEnd, SessionRecord, Store, TokenSwap,
};
use gatehouse_e2e::{NOW, captcha};

type Shared = Arc<dyn Store>;

const KEY: &str = "HyVFkGl5F5OQWJZZaNzBBg==";

fn session(hash: &str, openid: &str, lifetime_ms: i64) -> SessionRecord {
    SessionRecord {
        token_hash: hash.to_owned(),
        openid: openid.to_owned(),
        unionid: Some(format!("u-{openid}")),
        phone: None,
        created_ms: *NOW,
        expires_ms: *NOW + lifetime_ms,
    }
}

fn phone() -> PhoneNumber {
    PhoneNumber {
        phone_number: "+12025550123".into(),
        pure_phone_number: "2025550123".into(),
        country_code: "1".into(),
    }
}

fn entry(hash: &str, expires_ms: i64) -> IndexedSession {
    IndexedSession {
        token_hash: hash.to_owned(),
        expires_ms,
    }
}

fn hashes(entries: &[IndexedSession]) -> Vec<&str> {
    let mut out: Vec<&str> = entries.iter().map(|e| e.token_hash.as_str()).collect();
    out.sort_unstable();
    out
}

mod cases {
    use super::*;

    pub async fn sessions_round_trip_without_their_session_key(store: Shared) {
        let alice = SessionRecord {
            token_hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            ..session("x", "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", 3 * 86_400_000)
        };
        let no_union = SessionRecord {
            token_hash: "other".into(),
            unionid: None,
            ..alice.clone()
        };
        assert_eq!(store.get_session(&alice.token_hash).await.unwrap(), None);
        store
            .put_session(&alice, Some(&Secret::new(KEY)))
            .await
            .unwrap();
        store.put_session(&no_union, None).await.unwrap();
        assert_eq!(
            store.get_session(&alice.token_hash).await.unwrap(),
            Some(alice.clone())
        );
        assert_eq!(
            store.get_session("other").await.unwrap(),
            Some(no_union.clone())
        );
        // Only the one method made for it reads the session_key back.
        assert_eq!(
            store.session_key(&alice.token_hash).await.unwrap(),
            Some(Secret::new(KEY))
        );
        assert_eq!(store.session_key("other").await.unwrap(), None);
        assert_eq!(store.session_key("nobody").await.unwrap(), None);

        assert_eq!(
            store.delete_session(&alice.token_hash, *NOW).await.unwrap(),
            SessionEnd::Ended
        );
        assert_eq!(store.get_session(&alice.token_hash).await.unwrap(), None);
        assert_eq!(
            store.delete_session(&alice.token_hash, *NOW).await.unwrap(),
            SessionEnd::NotFound
        );
        assert_eq!(
            store.get_session("other").await.unwrap(),
            Some(no_union),
            "deleting one session leaves the others"
        );
        // An expired session is told apart, and deleted all the same.
        let at_expiry = *NOW + 3 * 86_400_000;
        assert_eq!(
            store.delete_session("other", at_expiry).await.unwrap(),
            SessionEnd::Expired
        );
        assert_eq!(store.get_session("other").await.unwrap(), None);
        // A captcha key is no session.
        store
            .create_captcha(&captcha("login", "dev", "abcd"))
            .await
            .unwrap();
        assert_eq!(store.get_session("login#dev").await.unwrap(), None);
        assert_eq!(
            store.delete_session("login#dev", *NOW).await.unwrap(),
            SessionEnd::NotFound
        );
    }

    pub async fn a_phone_number_is_kept_only_with_a_live_session(store: Shared) {
        let live = session("live", "o-phone", 60_000);
        store.put_session(&live, None).await.unwrap();
        assert!(
            store
                .set_session_phone(&live, &phone(), *NOW + 59_999)
                .await
                .unwrap()
        );
        let read = store.get_session("live").await.unwrap().unwrap();
        assert_eq!(read.phone, Some(phone()));
        assert_eq!(read.openid, "o-phone", "the rest of the row is untouched");
        assert!(
            !store
                .set_session_phone(&live, &phone(), *NOW + 60_000)
                .await
                .unwrap(),
            "expired"
        );
        assert!(
            !store
                .set_session_phone(&session("gone", "o-gone", 60_000), &phone(), *NOW)
                .await
                .unwrap()
        );
        assert_eq!(
            store.get_session("gone").await.unwrap(),
            None,
            "no row is made for an unknown session"
        );
    }

    pub async fn a_replacement_is_all_or_nothing_and_wins_once(store: Shared) {
        let old = SessionRecord {
            phone: Some(phone()),
            ..session("old", "o-refresh", 60_000)
        };
        store
            .put_session(&old, Some(&Secret::new(KEY)))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                let new = SessionRecord {
                    token_hash: format!("new-{i}"),
                    ..old.clone()
                };
                tokio::spawn(async move { store.replace_session("old", &new, *NOW).await })
            })
            .collect();
        let mut winners = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            if task.await.unwrap().unwrap() {
                winners.push(format!("new-{i}"));
            }
        }
        assert_eq!(winners.len(), 1, "one of 16 racing refreshes wins");
        assert_eq!(store.get_session("old").await.unwrap(), None);
        let new = store.get_session(&winners[0]).await.unwrap().unwrap();
        assert_eq!(new.phone, Some(phone()));
        assert_eq!(store.session_key(&winners[0]).await.unwrap(), None);
        for i in 0..16 {
            let hash = format!("new-{i}");
            if hash != winners[0] {
                assert_eq!(store.get_session(&hash).await.unwrap(), None, "{hash}");
            }
        }
        // An expired session is not replaced, and nothing is written.
        let stale = session("stale", "o-refresh", 1);
        store.put_session(&stale, None).await.unwrap();
        let fresh = session("fresh", "o-refresh", 60_000);
        assert!(
            !store
                .replace_session("stale", &fresh, *NOW + 1)
                .await
                .unwrap()
        );
        assert_eq!(store.get_session("fresh").await.unwrap(), None);
        assert!(store.get_session("stale").await.unwrap().is_some());
    }

    pub async fn batch_deletes_take_every_listed_session(store: Shared) {
        let listed: Vec<String> = (0..60).map(|i| format!("batch-{i:02}")).collect();
        for hash in &listed[..55] {
            store
                .put_session(&session(hash, "o-batch", 60_000), None)
                .await
                .unwrap();
        }
        store
            .put_session(&session("keep", "o-batch", 60_000), None)
            .await
            .unwrap();
        // 60 hashes, 5 of them never stored, one listed twice.
        let mut asked = listed.clone();
        asked.push("batch-00".into());
        store.delete_sessions(&asked).await.unwrap();
        for hash in &listed {
            assert_eq!(store.get_session(hash).await.unwrap(), None, "{hash}");
        }
        assert!(store.get_session("keep").await.unwrap().is_some());
        store.delete_sessions(&[]).await.unwrap();
    }

    pub async fn session_indexes_list_reset_and_take(store: Shared) {
        let keep = *NOW + 86_400_000;
        let listed = store
            .index_session("o-idx", &entry("a", *NOW + 10), &[], keep)
            .await
            .unwrap();
        assert_eq!(listed, vec![entry("a", *NOW + 10)]);
        let listed = store
            .index_session("o-idx", &entry("b", *NOW + 20), &[], keep)
            .await
            .unwrap();
        assert_eq!(hashes(&listed), ["a", "b"]);
        let listed = store
            .index_session("o-idx", &entry("c", *NOW + 30), &["a".into()], keep)
            .await
            .unwrap();
        assert_eq!(hashes(&listed), ["b", "c"], "one write adds and removes");
        // Another user's index is its own.
        store
            .index_session("o-other", &entry("z", *NOW), &[], keep)
            .await
            .unwrap();

        store
            .unindex_sessions("o-idx", &["b".into(), "nope".into()])
            .await
            .unwrap();
        let before = store
            .reset_session_index("o-idx", &entry("d", *NOW + 40), keep)
            .await
            .unwrap();
        assert_eq!(before, vec![entry("c", *NOW + 30)]);
        let taken = store.take_session_index("o-idx").await.unwrap();
        assert_eq!(taken, vec![entry("d", *NOW + 40)]);
        assert!(store.take_session_index("o-idx").await.unwrap().is_empty());
        assert_eq!(
            store.take_session_index("o-other").await.unwrap(),
            vec![entry("z", *NOW)]
        );
        // Removing from a missing index makes none.
        store
            .unindex_sessions("o-idx", &["d".into()])
            .await
            .unwrap();
        assert!(store.take_session_index("o-idx").await.unwrap().is_empty());
        assert!(
            store
                .reset_session_index("o-new", &entry("e", *NOW), keep)
                .await
                .unwrap()
                .is_empty()
        );
    }

    pub async fn racing_index_writes_lose_no_entry(store: Shared) {
        let keep = *NOW + 86_400_000;
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .index_session("o-race", &entry(&format!("s{i:02}"), *NOW + i), &[], keep)
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(store.take_session_index("o-race").await.unwrap().len(), 24);
    }

    pub async fn access_token_writes_are_version_conditional(store: Shared) {
        assert_eq!(store.get_access_token("wxapp").await.unwrap(), None);
        let lease = AccessTokenRecord {
            lease_until_ms: *NOW + 8_000,
            ..AccessTokenRecord::default()
        };
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let store = store.clone();
                let lease = lease.clone();
                tokio::spawn(async move { store.swap_access_token("wxapp", 0, &lease).await })
            })
            .collect();
        let mut written = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                TokenSwap::Written => written += 1,
                TokenSwap::Lost(current) => {
                    assert_eq!(current.map(|c| c.lease_until_ms), Some(*NOW + 8_000));
                }
            }
        }
        assert_eq!(written, 1, "one of 32 racing leases is granted");
        let held = store.get_access_token("wxapp").await.unwrap().unwrap();
        assert_eq!(held.version, 1);
        assert_eq!(held.token, None);

        let stored = AccessTokenRecord {
            token: Some(Secret::new("t".repeat(600))),
            expires_ms: *NOW + 7_200_000,
            lease_until_ms: 0,
            force_day: 19_999,
            force_count: 3,
            last_force_ms: *NOW,
            version: 99, // ignored
        };
        assert_eq!(
            store.swap_access_token("wxapp", 1, &stored).await.unwrap(),
            TokenSwap::Written
        );
        let read = store.get_access_token("wxapp").await.unwrap().unwrap();
        assert_eq!(
            read,
            AccessTokenRecord {
                version: 2,
                ..stored.clone()
            }
        );
        assert_eq!(
            store.swap_access_token("wxapp", 1, &lease).await.unwrap(),
            TokenSwap::Lost(Some(read)),
            "a stale version loses, and learns what the row holds"
        );
        assert_eq!(store.get_access_token("wxother").await.unwrap(), None);
    }

    fn rank(answer: RiskAnswer, lifetime_ms: i64) -> RiskRankRecord {
        RiskRankRecord {
            answer,
            checked_ms: *NOW,
            expires_ms: *NOW + lifetime_ms,
        }
    }

    pub async fn risk_ranks_are_kept_per_user_and_scene(store: Shared) {
        let openid = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";
        assert_eq!(store.get_risk_rank(0, openid).await.unwrap(), None);
        let three = rank(RiskAnswer::Rank(3), 600_000);
        store.put_risk_rank(0, openid, &three).await.unwrap();
        assert_eq!(store.get_risk_rank(0, openid).await.unwrap(), Some(three));
        assert_eq!(
            store.get_risk_rank(1, openid).await.unwrap(),
            None,
            "each WeChat scene has its own rank"
        );
        assert_eq!(store.get_risk_rank(0, "o-other").await.unwrap(), None);

        // The later answer replaces the earlier, a failure included.
        let busy = rank(RiskAnswer::Failed("Busy".into()), 60_000);
        store.put_risk_rank(0, openid, &busy).await.unwrap();
        assert_eq!(store.get_risk_rank(0, openid).await.unwrap(), Some(busy));
        // An expired row is still answered: the reader judges freshness.
        let old = RiskRankRecord {
            answer: RiskAnswer::Rank(0),
            checked_ms: *NOW - 700_000,
            expires_ms: *NOW - 100_000,
        };
        store.put_risk_rank(1, openid, &old).await.unwrap();
        assert_eq!(store.get_risk_rank(1, openid).await.unwrap(), Some(old));
        // Whatever an openid holds, its row is its own.
        let odd = rank(RiskAnswer::Rank(4), 600_000);
        store.put_risk_rank(0, "a#1#b", &odd).await.unwrap();
        assert_eq!(store.get_risk_rank(0, "a#1#b").await.unwrap(), Some(odd));
        assert_eq!(store.get_risk_rank(1, "b").await.unwrap(), None);
    }

    pub async fn risk_ranks_are_read_with_counters(store: Shared) {
        let names = [
            "guard|ip|demo|203.0.113.7".to_owned(),
            "guard|oid|demo|o-read".to_owned(),
        ];
        let cell = |scene| RankCell {
            row: &names[1],
            scene,
        };
        let windows = GuardWindows::at(*NOW, Some(600), 900);
        let counted = |requests, failures| GuardTally::Counted { requests, failures };
        let count = |event| {
            let (store, names) = (store.clone(), names.clone());
            async move {
                let cell = RankCell {
                    row: &names[1],
                    scene: 0,
                };
                store
                    .count_guard_ranked(&names, &windows, event, cell)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            count(GuardEvent::Request).await,
            (vec![counted(1, 0), counted(1, 0)], None)
        );
        // A rank kept in the row leaves its counts as they are.
        let two = rank(RiskAnswer::Rank(2), 600_000);
        store
            .put_guard_rank(cell(0), &two, windows.keep_until_ms)
            .await
            .unwrap();
        assert_eq!(
            store
                .read_guard_ranked(&names, &windows, cell(0))
                .await
                .unwrap(),
            (vec![counted(1, 0), counted(1, 0)], Some(two.clone())),
            "read in the counters' one request"
        );
        assert_eq!(
            store
                .read_guard_ranked(&names, &windows, cell(1))
                .await
                .unwrap(),
            (vec![counted(1, 0), counted(1, 0)], None),
            "each WeChat scene has its own rank"
        );
        // Counting answers the rank, and keeps it.
        assert_eq!(
            count(GuardEvent::Request).await,
            (vec![counted(2, 0), counted(2, 0)], Some(two.clone()))
        );
        assert_eq!(
            count(GuardEvent::Failure).await,
            (vec![counted(2, 1), counted(2, 1)], Some(two.clone()))
        );
        // The later answer replaces the earlier, a failure included, and a
        // rank again replaces the failure.
        let busy = rank(RiskAnswer::Failed("Busy".into()), 60_000);
        store
            .put_guard_rank(cell(0), &busy, windows.keep_until_ms)
            .await
            .unwrap();
        assert_eq!(
            count(GuardEvent::Request).await,
            (vec![counted(3, 1), counted(3, 1)], Some(busy))
        );
        let four = rank(RiskAnswer::Rank(4), 600_000);
        store
            .put_guard_rank(cell(0), &four, windows.keep_until_ms)
            .await
            .unwrap();
        assert_eq!(
            store
                .read_guard_ranked(&names, &windows, cell(0))
                .await
                .unwrap()
                .1,
            Some(four)
        );
        // A row not yet counted: the rank makes it, its counts read 0.
        let fresh = ["guard|oid|demo|o-new".to_owned()];
        let new_cell = RankCell {
            row: &fresh[0],
            scene: 1,
        };
        let zero = rank(RiskAnswer::Rank(0), 600_000);
        store
            .put_guard_rank(new_cell, &zero, windows.keep_until_ms)
            .await
            .unwrap();
        assert_eq!(
            store
                .read_guard_ranked(&fresh, &windows, new_cell)
                .await
                .unwrap(),
            (vec![counted(0, 0)], Some(zero))
        );
        // The counts read as CounterStore::read_guard reads them; a rank
        // cached alone is another.
        assert_eq!(
            store.read_guard(&names, &windows).await.unwrap(),
            vec![counted(3, 1), counted(3, 1)]
        );
        assert_eq!(store.get_risk_rank(0, "o-read").await.unwrap(), None);
    }
}

gatehouse_e2e::on_both_stores!(
    sessions_round_trip_without_their_session_key,
    a_phone_number_is_kept_only_with_a_live_session,
    a_replacement_is_all_or_nothing_and_wins_once,
    batch_deletes_take_every_listed_session,
    session_indexes_list_reset_and_take,
    racing_index_writes_lose_no_entry,
    access_token_writes_are_version_conditional,
    risk_ranks_are_kept_per_user_and_scene,
    risk_ranks_are_read_with_counters,
);
