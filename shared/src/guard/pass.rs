//! Pass tokens: what a client holds after solving a captcha or a Tencent
//! ticket, and redeems once on the door it protects.
//!
//! A token is 33 bytes in base64url (44 characters): a kind byte (`c`, `t`
//! or `s`) and a 32-byte secret from the CSPRNG. The store keeps only the
//! secret's SHA-256, as the key of the pass's own row
//! ([`crate::store::pass_key_of`]), so a redemption is one conditional
//! write on a row only the token's holder can name.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ratelimit::ip_key;
use crate::store::PassKind;

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
pub const PASS_TOKEN_CHARS: usize = 44;
const TOKEN_BYTES: usize = 1 + 32;

/// A pass token. `Debug` shows its kind, never its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PassToken {
    kind: PassKind,
    secret: [u8; 32],
}

impl PassToken {
    /// A fresh token, its secret drawn from the thread's CSPRNG (ChaCha,
    /// seeded and reseeded from the OS).
    pub fn issue(kind: PassKind) -> Self {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        Self { kind, secret }
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
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&bytes[1..]);
        Some(Self { kind, secret })
    }

    /// The token as text, for the client.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(TOKEN_BYTES);
        bytes.push(match self.kind {
            PassKind::Captcha => b'c',
            PassKind::Ticket => b't',
            PassKind::Sms => b's',
        });
        bytes.extend_from_slice(&self.secret);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn kind(&self) -> PassKind {
        self.kind
    }

    /// Hex SHA-256 of the secret: all the store ever holds of it.
    pub fn secret_hash(&self) -> String {
        hex::encode(Sha256::digest(self.secret))
    }
}

impl fmt::Debug for PassToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassToken")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// What a door that binds the IP (`bindIp`) compares: the IPv4 address,
/// or the /64 of an IPv6 one (as the rate limits and failure counters
/// count); `None` when the IP is unknown.
pub fn ip_net(ip: Option<&str>) -> Option<String> {
    let ip = ip.map(str::trim).filter(|ip| !ip.is_empty())?;
    Some(ip_key(Some(ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_hide_their_secret() {
        let token = PassToken::issue(PassKind::Ticket);
        let text = token.encode();
        assert_eq!(text.len(), PASS_TOKEN_CHARS);
        assert!(text.starts_with('d'), "kind byte t encodes as d…: {text}");
        assert_eq!(PassToken::parse(&text), Some(token.clone()));
        assert_eq!(token.secret_hash().len(), 64);
        let shown = format!("{token:?}");
        assert!(!shown.contains(&text[2..]), "{shown}");
        let other = PassToken::issue(PassKind::Ticket);
        assert_ne!(token.secret_hash(), other.secret_hash(), "fresh secrets");
    }

    #[test]
    fn anything_else_is_not_a_token() {
        let good = PassToken::issue(PassKind::Captcha).encode();
        let mut wrong_kind = URL_SAFE_NO_PAD.decode(&good).unwrap();
        wrong_kind[0] = b'x';
        // A token of the earlier format (kind, 32-byte locator, 16-byte
        // secret: 66 characters) is none.
        let old = URL_SAFE_NO_PAD.encode([b'c'; 49]);
        for bad in [
            String::new(),
            good[1..].to_owned(),
            format!("{good}A"),
            good.replace(&good[10..11], "+"),
            "é".repeat(22),
            URL_SAFE_NO_PAD.encode(wrong_kind),
            old,
        ] {
            assert_eq!(PassToken::parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn an_ip_binds_by_address_or_v6_slash_64() {
        assert_eq!(ip_net(Some("203.0.113.9")).as_deref(), Some("203.0.113.9"));
        assert_eq!(
            ip_net(Some("2001:db8:5:6:1:2:3:4")),
            ip_net(Some("2001:db8:5:6:ffff::1"))
        );
        assert_ne!(
            ip_net(Some("2001:db8:5:6::1")),
            ip_net(Some("2001:db8:5:7::1"))
        );
        assert_eq!(ip_net(Some(" ")), None);
        assert_eq!(ip_net(None), None);
    }
}
