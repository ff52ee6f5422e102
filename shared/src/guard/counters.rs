//! The guard's counters of a client in a scene: one row per *subject* (its
//! IP, IPv6 by /64 as for the rate limits; its device and its openid when
//! known), each holding the subject's requests and failures in their
//! windows (`crate::store::guard_counts`). A door counts a request in every
//! row at once and reads the failures in the same writes; a failure adds to
//! the same rows; `GET /guard/status` reads them.

use super::config::{GuardMode, GuardSettings};
use super::level::Counts;
use super::service::Client;
use crate::domain::Scene;
use crate::error::ApiError;
use crate::metrics::{Event, Events};
use crate::ratelimit::ip_key;
use crate::store::{
    CounterStore, GuardEvent, GuardStore, GuardTally, GuardWindows, RankCell, RiskRankRecord,
};

/// Whose a counter row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    /// The client's IP: its request thresholds are multiplied.
    Ip,
    /// Its device or openid: one user.
    User,
}

/// The rows of `client` in `scene`, IP first: its IP (requests without
/// one share a bucket), device and openid when known. Every part before
/// the last holds no `|` (dimensions are fixed words, scenes
/// `[A-Za-z0-9_-]`), so a name is unambiguous whatever its subject holds.
fn rows_of(scene: &Scene, client: &Client) -> Vec<(Subject, String)> {
    let ip = (
        Subject::Ip,
        format!("guard|ip|{scene}|{}", ip_key(client.ip.as_deref())),
    );
    let device = client
        .device
        .as_ref()
        .map(|device| (Subject::User, format!("guard|dev|{scene}|{device}")));
    let openid = client
        .openid
        .as_deref()
        .map(|openid| (Subject::User, openid_row(scene, openid)));
    std::iter::once(ip).chain(device).chain(openid).collect()
}

/// The counter row of `openid` in `scene`, where its cached WeChat risk
/// rank is kept too.
pub(super) fn openid_row(scene: &Scene, openid: &str) -> String {
    format!("guard|oid|{scene}|{openid}")
}

/// The windows of `settings` at `now_ms` (requests only where counted).
/// Where the scene asks WeChat for ranks (`wxRisk`), a written row is kept
/// `cacheSeconds` at least, so a rank cached in it outlives no row: every
/// write sets the row's TTL, and a rank written now expires by then.
pub(super) fn windows_of(settings: &GuardSettings, now_ms: i64) -> GuardWindows {
    let mut windows = GuardWindows::at(
        now_ms,
        settings
            .counts_requests()
            .then_some(settings.request_window_seconds),
        settings.failure_window_seconds,
    );
    if let Some(wx) = &settings.wx_risk {
        let cache_ms = i64::try_from(wx.cache_seconds)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        windows.keep_until_ms = windows.keep_until_ms.max(now_ms.saturating_add(cache_ms));
    }
    windows
}

/// The counts `tallies` of `rows` make; a throttled row counts as past
/// every threshold (and is told in `events`).
/// The counter rows one request at a door counts or reads: whose each is,
/// their names, and the windows they count in.
struct CounterRows {
    rows: Vec<(Subject, String)>,
    names: Vec<String>,
    windows: GuardWindows,
}

impl CounterRows {
    fn new(rows: Vec<(Subject, String)>, settings: &GuardSettings, now_ms: i64) -> Self {
        CounterRows {
            names: rows.iter().map(|(_, name)| name.clone()).collect(),
            rows,
            windows: windows_of(settings, now_ms),
        }
    }

    /// What the store answered of these rows, with the cached rank found.
    fn observed(
        &self,
        tallies: &[GuardTally],
        rank_row: Option<RiskRankRecord>,
        events: &mut Events,
    ) -> Observed {
        Observed {
            counts: counts_of(&self.rows, tallies, events),
            rank_row,
        }
    }
}

fn counts_of(rows: &[(Subject, String)], tallies: &[GuardTally], events: &mut Events) -> Counts {
    let mut counts = Counts::default();
    for ((subject, _), tally) in rows.iter().zip(tallies) {
        let GuardTally::Counted { requests, failures } = *tally else {
            events.push(Event::GuardThrottled);
            return Counts::SATURATED;
        };
        let row = match subject {
            Subject::Ip => Counts {
                ip_requests: requests,
                failures,
                ..Counts::default()
            },
            Subject::User => Counts {
                user_requests: requests,
                failures,
                ..Counts::default()
            },
        };
        counts = counts.max(row);
    }
    counts
}

/// The rows of a request that names `client`, or only the row of `openid`
/// (a session door counts it once the session is known).
#[derive(Debug, Clone, Copy)]
pub(super) enum Whose<'a> {
    Client(&'a Client),
    Openid(&'a str),
}

impl Whose<'_> {
    fn rows(self, scene: &Scene) -> Vec<(Subject, String)> {
        match self {
            Whose::Client(client) => rows_of(scene, client),
            Whose::Openid(openid) => vec![(Subject::User, openid_row(scene, openid))],
        }
    }
}

/// The cached WeChat risk rank a door reads with its counter rows: the
/// one `openid`'s counter row holds for WeChat scene `scene`
/// (`crate::wechat::risk`).
#[derive(Debug, Clone, Copy)]
pub(super) struct RankRow<'a> {
    pub scene: u8,
    pub openid: &'a str,
}

impl RankRow<'_> {
    /// The rank's cell among `rows` (`None`: the openid's row is not
    /// among them).
    fn cell<'r>(&self, scene: &Scene, rows: &'r CounterRows) -> Option<RankCell<'r>> {
        let name = openid_row(scene, self.openid);
        rows.names
            .iter()
            .find(|row| **row == name)
            .map(|row| RankCell {
                row,
                scene: self.scene,
            })
    }
}

/// What a door's requests to the store found: the counts and, where a rank
/// was asked for, the one cached (`None`: not cached).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub counts: Counts,
    pub rank_row: Option<RiskRankRecord>,
}

impl Observed {
    /// Both observations at once: the larger counts, the cached rank found.
    pub fn merge(self, other: Observed) -> Observed {
        Observed {
            counts: self.counts.max(other.counts),
            rank_row: self.rank_row.or(other.rank_row),
        }
    }
}

/// Counts one request at a door of `scene` in every row of `whose`, and
/// answers the rows' counts, this request included, and the rank `rank`
/// asks for, which the openid's row holds: one write per row, all at
/// once. Where the scene counts no request (both thresholds 0) the rows
/// are read instead, the rank with them (one request); where its guard is
/// off, nothing is asked.
pub(super) async fn count_request(
    store: &dyn GuardStore,
    settings: &GuardSettings,
    scene: &Scene,
    whose: Whose<'_>,
    rank: Option<RankRow<'_>>,
    now_ms: i64,
    events: &mut Events,
) -> Result<Observed, ApiError> {
    if !settings.counts_requests() {
        return read(store, settings, scene, whose, rank, now_ms, events).await;
    }
    let rows = CounterRows::new(whose.rows(scene), settings, now_ms);
    let event = GuardEvent::Request;
    let (tallies, rank_row) = match rank.and_then(|rank| rank.cell(scene, &rows)) {
        None => (
            store.count_guard(&rows.names, &rows.windows, event).await?,
            None,
        ),
        Some(cell) => {
            store
                .count_guard_ranked(&rows.names, &rows.windows, event, cell)
                .await?
        }
    };
    Ok(rows.observed(&tallies, rank_row, events))
}

/// The counts of the rows of `whose` in `scene`, counting nothing, and the
/// rank `rank` asks for with them: one request, none where the scene's
/// guard is off.
pub(super) async fn read(
    store: &dyn GuardStore,
    settings: &GuardSettings,
    scene: &Scene,
    whose: Whose<'_>,
    rank: Option<RankRow<'_>>,
    now_ms: i64,
    events: &mut Events,
) -> Result<Observed, ApiError> {
    if settings.mode == GuardMode::Off {
        return Ok(Observed::default());
    }
    let rows = CounterRows::new(whose.rows(scene), settings, now_ms);
    let (tallies, rank_row) = match rank.and_then(|rank| rank.cell(scene, &rows)) {
        None => (store.read_guard(&rows.names, &rows.windows).await?, None),
        Some(cell) => {
            store
                .read_guard_ranked(&rows.names, &rows.windows, cell)
                .await?
        }
    };
    Ok(rows.observed(&tallies, rank_row, events))
}

/// Counts one failure of `client` in `scene` (in every row at once) when
/// the scene's guard is on; returns the largest failure count (past every
/// threshold when a row was throttled). Used by the captcha and ticket
/// routes for wrong answers and rejected tickets, and by
/// [`super::Guard::report`].
pub async fn count_failure(
    store: &dyn CounterStore,
    settings: &GuardSettings,
    scene: &Scene,
    client: &Client,
    now_ms: i64,
) -> Result<u64, ApiError> {
    if settings.mode == GuardMode::Off {
        return Ok(0);
    }
    let rows = CounterRows::new(rows_of(scene, client), settings, now_ms);
    let tallies = store
        .count_guard(&rows.names, &rows.windows, GuardEvent::Failure)
        .await?;
    Ok(counts_of(&rows.rows, &tallies, &mut Events::default()).failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DeviceId;

    #[test]
    fn rows_are_per_scene_ip_device_and_openid() {
        let scene = Scene::parse("login").unwrap();
        let client = Client {
            ip: Some("203.0.113.9".into()),
            device: Some(DeviceId::parse("d|1").unwrap()),
            openid: Some("o-1".into()),
            phone_number: None,
        };
        assert_eq!(
            rows_of(&scene, &client),
            [
                (Subject::Ip, "guard|ip|login|203.0.113.9".to_owned()),
                (Subject::User, "guard|dev|login|d|1".to_owned()),
                (Subject::User, "guard|oid|login|o-1".to_owned()),
            ]
        );
        let v6 = Client {
            ip: Some("2001:db8:5:6:1:2:3:4".into()),
            ..Client::default()
        };
        assert_eq!(
            rows_of(&scene, &v6),
            [(Subject::Ip, "guard|ip|login|2001:db8:5:6::/64".to_owned())]
        );
        assert_eq!(
            rows_of(&scene, &Client::default())[0].1,
            "guard|ip|login|unknown"
        );
    }

    #[test]
    fn a_wx_risk_scenes_rows_are_kept_as_long_as_a_rank_cached_in_them() {
        use crate::guard::wx_risk::WxRiskSettings;
        use crate::wechat::risk_rank::RiskScene;
        let now_ms = 1_700_000_000_500;
        let plain = GuardSettings::default();
        let windows = windows_of(&plain, now_ms);
        assert_eq!(
            windows.keep_until_ms,
            windows.failures.end_ms(),
            "the later window's end (900 s)"
        );
        let wx = WxRiskSettings {
            scene: RiskScene::Register,
            image_from_rank: Some(2),
            tencent_from_rank: Some(3),
            refuse_from_rank: None,
            cache_seconds: 3_600,
        };
        let ranked = GuardSettings {
            wx_risk: Some(wx),
            ..GuardSettings::default()
        };
        let kept = windows_of(&ranked, now_ms);
        assert_eq!(kept.keep_until_ms, now_ms + 3_600_000, "cacheSeconds on");
        assert_eq!(
            (kept.requests, kept.failures),
            (windows.requests, windows.failures)
        );
        // A short cache leaves the windows' end, which is later.
        let short = GuardSettings {
            wx_risk: Some(WxRiskSettings {
                cache_seconds: 60,
                ..wx
            }),
            ..GuardSettings::default()
        };
        assert_eq!(windows_of(&short, now_ms), windows);
    }

    #[test]
    fn a_throttled_row_is_past_every_threshold() {
        let rows = [
            (Subject::Ip, "a".to_owned()),
            (Subject::User, "b".to_owned()),
        ];
        let mut events = Events::default();
        let counted = [
            GuardTally::Counted {
                requests: 7,
                failures: 1,
            },
            GuardTally::Counted {
                requests: 2,
                failures: 3,
            },
        ];
        assert_eq!(
            counts_of(&rows, &counted, &mut events),
            Counts {
                user_requests: 2,
                ip_requests: 7,
                failures: 3
            }
        );
        assert_eq!(events, Events::default());
        let throttled = [counted[0], GuardTally::Throttled];
        assert_eq!(counts_of(&rows, &throttled, &mut events), Counts::SATURATED);
        assert_eq!(events.iter().collect::<Vec<_>>(), [&Event::GuardThrottled]);
    }
}
