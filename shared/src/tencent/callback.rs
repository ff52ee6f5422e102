//! Tencent's callback object, as its front end hands it over: the web and
//! app SDK call back `{ret, ticket, randstr, appid, CaptchaAppId?,
//! bizState, errorCode?, errorMessage?}`. `POST /ticket/verify` and
//! `POST /guard/check` take that object as it comes (posting it needs no
//! picking apart), and read of it what matters besides the ticket: `ret`
//! (0 solved; 2 closed by the user) and the app it was solved for.
//! `bizState` is the caller's own, passed through the SDK untouched;
//! `errorCode`/`errorMessage` name why a disaster-recovery ticket was made,
//! which the ticket itself says too (see [`super::service`]).

use serde::Deserialize;

use crate::error::ApiError;

/// Tencent's `CaptchaCode` for a ticket of another app, used when the
/// callback's own `appid` already says so (no call to Tencent).
pub const APP_ID_MISMATCH_CODE: i64 = 16;

/// An app id as the SDKs send it: a string on the web, a number in some
/// app SDKs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum AppIdField {
    Number(u64),
    Text(String),
}

impl AppIdField {
    fn is(&self, ours: u64) -> bool {
        match self {
            Self::Number(id) => *id == ours,
            Self::Text(text) => text.trim().parse::<u64>() == Ok(ours),
        }
    }
}

/// The callback's fields besides `ticket` and `randstr`. A request struct
/// that takes the callback lists these (under these names) next to its
/// own fields, since `deny_unknown_fields` and `flatten` do not mix; see
/// `VerifyTicketRequest`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Callback<'a> {
    pub ret: Option<i64>,
    pub appid: Option<&'a AppIdField>,
    pub captcha_app_id: Option<&'a AppIdField>,
}

impl Callback<'_> {
    /// Refuses a callback that does not carry a solved ticket of our app:
    /// `ret` other than 0 is [`ApiError::TicketNotSolved`] (whatever else it
    /// holds: a closed captcha comes with an empty ticket), an `appid` or
    /// `CaptchaAppId` other than `ours` is `ticket-rejected` with Tencent's
    /// code for it, asked of no one.
    pub fn check(&self, ours: u64) -> Result<(), ApiError> {
        if let Some(ret) = self.ret.filter(|ret| *ret != 0) {
            return Err(ApiError::TicketNotSolved { ret });
        }
        let named = [self.appid, self.captcha_app_id];
        if named.into_iter().flatten().any(|id| !id.is(ours)) {
            return Err(ApiError::TicketRejected {
                captcha_code: APP_ID_MISMATCH_CODE,
                captcha_msg: "appid mismatch: the ticket was solved for another CaptchaAppId"
                    .into(),
                evil_level: None,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: u64 = 190_000_000;

    fn text(id: &str) -> AppIdField {
        AppIdField::Text(id.into())
    }

    #[test]
    fn a_solved_callback_of_our_app_passes() {
        let ours = text("190000000");
        let number = AppIdField::Number(OURS);
        for callback in [
            Callback::default(),
            Callback {
                ret: Some(0),
                appid: Some(&ours),
                captcha_app_id: Some(&number),
            },
        ] {
            assert_eq!(callback.check(OURS), Ok(()));
        }
    }

    #[test]
    fn ret_other_than_zero_is_not_solved() {
        for ret in [2, 1, -1] {
            let callback = Callback {
                ret: Some(ret),
                ..Callback::default()
            };
            assert_eq!(callback.check(OURS), Err(ApiError::TicketNotSolved { ret }));
        }
    }

    #[test]
    fn another_app_is_rejected_under_either_name() {
        let other = text("190000001");
        let junk = text("abc");
        let ours = text("190000000");
        for (appid, captcha_app_id) in [
            (Some(&other), None),
            (None, Some(&other)),
            (Some(&ours), Some(&other)),
            (Some(&junk), None),
        ] {
            let callback = Callback {
                ret: Some(0),
                appid,
                captcha_app_id,
            };
            let err = callback.check(OURS).unwrap_err();
            assert_eq!(err.code(), "ticket-rejected");
            assert!(matches!(
                err,
                ApiError::TicketRejected {
                    captcha_code: 16,
                    ..
                }
            ));
        }
    }
}
