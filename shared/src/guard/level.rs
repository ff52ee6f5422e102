//! How a level is made: each signal the guard has (the door's rule and the
//! scene's mode, the client's failures, its requests) asks for a level of
//! its own; the highest wins, and the signals that ask for it are its
//! [`Reasons`].
//!
//! Requests: a device's or openid's first `imageAfterRequests` requests of
//! a window pass at whatever the other signals ask; from the next one an
//! image pass, from the `tencentAfterRequests`-th on a ticket pass. An IP's
//! thresholds are those times `ipRequestFactor`. 0 turns a threshold off.

use serde::ser::{Serialize, SerializeSeq, Serializer};

use super::config::{GuardMode, GuardSettings, Level, PassRule};

/// A signal that set a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The client's failures in the scene's failure window.
    Failures,
    /// The requests the scene's doors saw of the client in its request
    /// window.
    Requests,
    /// The scene's `mode: always`, or a door's `pass: always`.
    Always,
    /// WeChat's risk rank of the signed-in user.
    WxRisk,
}

impl Reason {
    pub const ALL: [Reason; 4] = [
        Reason::Failures,
        Reason::Requests,
        Reason::Always,
        Reason::WxRisk,
    ];

    /// Its code in answers, contexts and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Failures => "failures",
            Reason::Requests => "requests",
            Reason::Always => "always",
            Reason::WxRisk => "wxRisk",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The signals that set a level: a set of [`Reason`]s, listed (and
/// serialised, as an array of codes) in [`Reason::ALL`]'s order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reasons(u8);

impl Reasons {
    pub fn contains(self, reason: Reason) -> bool {
        self.0 & reason.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Reason> {
        Reason::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    /// The codes joined by commas (`"failures,requests"`): how the
    /// authorizer's context, whose values are strings, carries them.
    pub fn joined(self) -> String {
        self.iter()
            .map(Reason::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl FromIterator<Reason> for Reasons {
    fn from_iter<I: IntoIterator<Item = Reason>>(reasons: I) -> Self {
        Reasons(reasons.into_iter().fold(0, |bits, r| bits | r.bit()))
    }
}

impl Serialize for Reasons {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for reason in self.iter() {
            seq.serialize_element(reason.as_str())?;
        }
        seq.end()
    }
}

/// Where a client stands at a door: the level it must pass and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub level: Level,
    /// Empty at level `none`.
    pub reasons: Reasons,
}

impl Standing {
    pub const NONE: Standing = Standing {
        level: Level::None,
        reasons: Reasons(0),
    };

    /// The same standing, with `reason` asking for `level`: the higher
    /// level wins, and the reasons of an equal one add up.
    pub fn with(self, level: Level, reason: Reason) -> Standing {
        match level.cmp(&self.level) {
            _ if level == Level::None => self,
            std::cmp::Ordering::Greater => Standing {
                level,
                reasons: Reasons(reason.bit()),
            },
            std::cmp::Ordering::Equal => Standing {
                level,
                reasons: Reasons(self.reasons.0 | reason.bit()),
            },
            std::cmp::Ordering::Less => self,
        }
    }
}

/// What a client's counter rows say: the largest counts among its
/// subjects. A door's counts include the request being judged; a read
/// (`GET /guard/status`) asks about the next one ([`Counts::next`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// The requests of the client's device or openid, whichever is larger.
    pub user_requests: u64,
    /// The requests of its IP (its IPv6 /64).
    pub ip_requests: u64,
    /// The failures of its IP, device or openid, whichever is largest.
    pub failures: u64,
}

impl Counts {
    /// Every count past every threshold: a counter DynamoDB throttled.
    pub const SATURATED: Counts = Counts {
        user_requests: u64::MAX,
        ip_requests: u64::MAX,
        failures: u64::MAX,
    };

    /// The larger of each count.
    pub fn max(self, other: Counts) -> Counts {
        Counts {
            user_requests: self.user_requests.max(other.user_requests),
            ip_requests: self.ip_requests.max(other.ip_requests),
            failures: self.failures.max(other.failures),
        }
    }

    /// The counts the client's next request would be judged by.
    pub fn next(self) -> Counts {
        Counts {
            user_requests: self.user_requests.saturating_add(1),
            ip_requests: self.ip_requests.saturating_add(1),
            ..self
        }
    }
}

impl GuardSettings {
    /// Whether the scene's doors count requests (its guard is on and a
    /// request threshold is).
    pub fn counts_requests(&self) -> bool {
        self.mode != GuardMode::Off
            && (self.image_after_requests > 0 || self.tencent_after_requests > 0)
    }

    /// The standing of a client with `counts` at a door of this scene
    /// whose rule is `rule`.
    pub fn standing(&self, rule: PassRule, counts: &Counts) -> Standing {
        if rule == PassRule::Never {
            return Standing::NONE;
        }
        let always = rule == PassRule::Always || self.mode == GuardMode::Always;
        let standing = Standing::NONE.with(
            if always { Level::Image } else { Level::None },
            Reason::Always,
        );
        if self.mode == GuardMode::Off {
            return standing;
        }
        standing
            .with(self.failure_level(counts.failures), Reason::Failures)
            .with(self.request_level(counts), Reason::Requests)
    }

    /// What `failures` alone ask for.
    fn failure_level(&self, failures: u64) -> Level {
        self.capped(if failures >= self.tencent_after_failures {
            Level::Tencent
        } else if failures >= self.image_after_failures {
            Level::Image
        } else {
            Level::None
        })
    }

    /// What the request counts alone ask for (the request judged included).
    fn request_level(&self, counts: &Counts) -> Level {
        let factor = self.ip_request_factor;
        let past = |threshold: u64, user: bool, ip: bool| threshold > 0 && (user || ip);
        let (image, tencent) = (self.image_after_requests, self.tencent_after_requests);
        self.capped(
            if past(
                tencent,
                counts.user_requests >= tencent,
                counts.ip_requests >= tencent.saturating_mul(factor),
            ) {
                Level::Tencent
            } else if past(
                image,
                counts.user_requests > image,
                counts.ip_requests > image.saturating_mul(factor),
            ) {
                Level::Image
            } else {
                Level::None
            },
        )
    }

    /// `level`, with `image` for `tencent` where the scene offers no
    /// Tencent captcha.
    pub fn capped(&self, level: Level) -> Level {
        match level {
            Level::Tencent if !self.tencent_enabled => Level::Image,
            level => level,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adaptive() -> GuardSettings {
        GuardSettings {
            mode: GuardMode::Adaptive,
            image_after_failures: 3,
            tencent_after_failures: 10,
            image_after_requests: 5,
            tencent_after_requests: 8,
            ip_request_factor: 10,
            ..GuardSettings::default()
        }
    }

    fn user(requests: u64) -> Counts {
        Counts {
            user_requests: requests,
            ip_requests: requests,
            ..Counts::default()
        }
    }

    fn codes(standing: Standing) -> (Level, Vec<&'static str>) {
        (
            standing.level,
            standing.reasons.iter().map(Reason::as_str).collect(),
        )
    }

    #[test]
    fn requests_pass_then_ask_for_an_image_then_a_ticket() {
        let settings = adaptive();
        let levels: Vec<Level> = (1..=9)
            .map(|n| settings.standing(PassRule::Auto, &user(n)).level)
            .collect();
        use Level::*;
        assert_eq!(
            levels,
            [None, None, None, None, None, Image, Image, Tencent, Tencent],
            "five pass, the sixth needs an image, the eighth on a ticket"
        );
        assert_eq!(
            codes(settings.standing(PassRule::Auto, &user(6))),
            (Image, vec!["requests"])
        );
        // An IP's thresholds are ten times a device's.
        let ip = |n| Counts {
            ip_requests: n,
            ..Counts::default()
        };
        assert_eq!(settings.standing(PassRule::Auto, &ip(50)).level, None);
        assert_eq!(settings.standing(PassRule::Auto, &ip(51)).level, Image);
        assert_eq!(settings.standing(PassRule::Auto, &ip(80)).level, Tencent);
        // 0 turns a threshold off; both off, requests ask for nothing.
        let image_only = GuardSettings {
            tencent_after_requests: 0,
            ..settings
        };
        assert_eq!(
            image_only.standing(PassRule::Auto, &user(1000)).level,
            Image
        );
        let off = GuardSettings {
            image_after_requests: 0,
            tencent_after_requests: 0,
            ..settings
        };
        assert!(!off.counts_requests());
        assert_eq!(
            off.standing(PassRule::Auto, &Counts::SATURATED).level,
            Tencent
        );
        assert_eq!(
            codes(off.standing(PassRule::Auto, &Counts::SATURATED)).1,
            ["failures"]
        );
    }

    #[test]
    fn the_highest_level_wins_and_equal_ones_add_their_reasons() {
        let settings = adaptive();
        let both = Counts {
            failures: 3,
            ..user(6)
        };
        assert_eq!(
            codes(settings.standing(PassRule::Auto, &both)),
            (Level::Image, vec!["failures", "requests"])
        );
        let tencent = Counts {
            failures: 3,
            ..user(8)
        };
        assert_eq!(
            codes(settings.standing(PassRule::Auto, &tencent)),
            (Level::Tencent, vec!["requests"])
        );
        // An always door: image at least, for that reason.
        assert_eq!(
            codes(settings.standing(PassRule::Always, &user(1))),
            (Level::Image, vec!["always"])
        );
        assert_eq!(
            codes(settings.standing(PassRule::Always, &both)),
            (Level::Image, vec!["failures", "requests", "always"])
        );
        // A never door asks for nothing; a scene whose guard is off only
        // what its door's rule says.
        assert_eq!(
            settings.standing(PassRule::Never, &Counts::SATURATED),
            Standing::NONE
        );
        let off = GuardSettings {
            mode: GuardMode::Off,
            ..settings
        };
        assert_eq!(
            off.standing(PassRule::Auto, &Counts::SATURATED),
            Standing::NONE
        );
        assert_eq!(
            codes(off.standing(PassRule::Always, &Counts::SATURATED)),
            (Level::Image, vec!["always"])
        );
        // Without Tencent captchas, a ticket's level is an image's.
        let quiet = GuardSettings {
            tencent_enabled: false,
            ..settings
        };
        assert_eq!(
            codes(quiet.standing(PassRule::Auto, &tencent)),
            (Level::Image, vec!["failures", "requests"])
        );
    }

    #[test]
    fn reasons_serialise_as_codes_in_order() {
        let reasons: Reasons = [Reason::WxRisk, Reason::Failures].into_iter().collect();
        assert_eq!(
            serde_json::to_string(&reasons).unwrap(),
            r#"["failures","wxRisk"]"#
        );
        assert_eq!(reasons.joined(), "failures,wxRisk");
        assert!(Reasons::default().is_empty());
        assert_eq!(Counts::default().next().user_requests, 1);
        assert_eq!(Counts::SATURATED.next(), Counts::SATURATED);
    }
}
