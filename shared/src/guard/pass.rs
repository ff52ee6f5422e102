//! Pass tokens: what a client holds after solving a captcha or a Tencent
//! ticket, and redeems once on the door it protects.
//!
//! A token is 49 bytes in base64url (66 characters): a kind byte (`c`, `t`
//! or `s`), the 32-byte locator of the row that earned it (the captcha's,
//! the ticket's or the SMS code's, see [`crate::store::captcha_locator`]
//! and [`crate::store::sms_locator`]), and a 16-byte secret
//! from the CSPRNG. The store keeps only the secret's SHA-256, in that row,
//! so a redemption is one conditional write on a row it can find without a
//! lookup. The locator is no secret (anyone who knows a scene and a device
//! could compute a captcha's); the 128-bit secret is what a pass is.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::store::{NewPass, PassKind};

/// The success data of a verify that earned a pass: the token, and when it
/// stops being accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PassIssued {
    pub pass_token: String,
    /// Epoch milliseconds.
    pub pass_expired: i64,
}

/// Length of a token as text.
pub const PASS_TOKEN_CHARS: usize = 66;
const TOKEN_BYTES: usize = 1 + 32 + 16;

/// A pass token. `Debug` shows its kind, never its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PassToken {
    kind: PassKind,
    locator: [u8; 32],
    secret: [u8; 16],
}

impl PassToken {
    /// A fresh token for the row at `locator`, its secret drawn from the
    /// thread's CSPRNG (ChaCha, seeded and reseeded from the OS).
    pub fn issue(kind: PassKind, locator: [u8; 32]) -> Self {
        let mut secret = [0u8; 16];
        rand::rng().fill_bytes(&mut secret);
        Self {
            kind,
            locator,
            secret,
        }
    }

    /// A token as a client sent it; `None` for anything that is not one
    /// (wrong length or alphabet, unknown kind).
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != PASS_TOKEN_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let bytes: [u8; TOKEN_BYTES] = bytes.try_into().ok()?;
        let kind = match bytes[0] {
            b'c' => PassKind::Captcha,
            b't' => PassKind::Ticket,
            b's' => PassKind::Sms,
            _ => return None,
        };
        let mut locator = [0u8; 32];
        locator.copy_from_slice(&bytes[1..33]);
        let mut secret = [0u8; 16];
        secret.copy_from_slice(&bytes[33..]);
        Some(Self {
            kind,
            locator,
            secret,
        })
    }

    /// The token as text, for the client.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(TOKEN_BYTES);
        bytes.push(match self.kind {
            PassKind::Captcha => b'c',
            PassKind::Ticket => b't',
            PassKind::Sms => b's',
        });
        bytes.extend_from_slice(&self.locator);
        bytes.extend_from_slice(&self.secret);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn kind(&self) -> PassKind {
        self.kind
    }

    pub fn locator(&self) -> &[u8; 32] {
        &self.locator
    }

    /// Hex SHA-256 of the secret: all the store ever holds of it.
    pub fn secret_hash(&self) -> String {
        hex::encode(Sha256::digest(self.secret))
    }

    /// What the store writes for this token, valid until `expires_ms`.
    pub fn new_pass(&self, expires_ms: i64) -> NewPass {
        NewPass {
            secret_hash: self.secret_hash(),
            expires_ms,
        }
    }
}

impl fmt::Debug for PassToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassToken")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_hide_their_secret() {
        let token = PassToken::issue(PassKind::Ticket, [7; 32]);
        let text = token.encode();
        assert_eq!(text.len(), PASS_TOKEN_CHARS);
        assert!(text.starts_with('d'), "kind byte t encodes as d…: {text}");
        assert_eq!(PassToken::parse(&text), Some(token.clone()));
        assert_eq!(token.secret_hash().len(), 64);
        let shown = format!("{token:?}");
        assert!(!shown.contains(&text[44..]), "{shown}");
        let other = PassToken::issue(PassKind::Ticket, [7; 32]);
        assert_ne!(token.secret_hash(), other.secret_hash(), "fresh secrets");
    }

    #[test]
    fn anything_else_is_not_a_token() {
        let good = PassToken::issue(PassKind::Captcha, [1; 32]).encode();
        let mut wrong_kind = URL_SAFE_NO_PAD.decode(&good).unwrap();
        wrong_kind[0] = b'x';
        for bad in [
            String::new(),
            good[1..].to_owned(),
            format!("{good}A"),
            good.replace(&good[10..11], "+"),
            "é".repeat(33),
            URL_SAFE_NO_PAD.encode(wrong_kind),
        ] {
            assert_eq!(PassToken::parse(&bad), None, "{bad}");
        }
    }
}
