//! Verification codes: six digits from the CSPRNG, and the keyed hash that
//! is all the table ever holds of one.
//!
//! The hash is HMAC-SHA256 of the code keyed with its row's locator (the
//! SHA-256 of scene and number, [`crate::store::sms_locator`]: a salt of
//! its own per row). Being
//! computable from what a verify is sent (scene, number, code), it lets one
//! conditional write both count an attempt and judge it, as a captcha's
//! verify does (see the stores): no read first. What a hash of a 6-digit
//! code protects, honestly: no item, backup, stream or console view shows
//! the code, and no two rows share a lookup table. Someone who can read the
//! table can still try the 10^6 codes of one row in a moment; against that
//! a code lives minutes (`expiresSeconds`) and is spent by its first right
//! answer.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

/// Digits in a code.
pub const CODE_DIGITS: usize = 6;

/// A code as sent. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsCode(String);

impl SmsCode {
    /// A fresh code, uniform over 000000 … 999999 (the thread's CSPRNG:
    /// ChaCha, seeded and reseeded from the OS).
    pub fn draw() -> Self {
        let n: u32 = rand::rng().random_range(0..1_000_000);
        Self(format!("{n:0CODE_DIGITS$}"))
    }

    /// The digits, for the message and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SmsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmsCode(******)")
    }
}

/// Whether `text` is shaped like a code: exactly six ASCII digits (anything
/// else cannot be right, and is refused without counting an attempt).
pub fn is_code_shaped(text: &str) -> bool {
    text.len() == CODE_DIGITS && text.bytes().all(|b| b.is_ascii_digit())
}

/// Hex HMAC-SHA256 of `code` keyed with the row's `locator`: what the row
/// keeps of its code, and what a verify compares.
pub fn code_hash(locator: &[u8; 32], code: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(locator).expect("HMAC takes any key length");
    mac.update(code.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use sha2::Digest;

    use super::*;
    use crate::domain::Scene;
    use crate::sms::mobile::Mobile;
    use crate::store::sms_locator;

    #[test]
    fn codes_are_six_digits_spread_over_the_range() {
        let mut leading_zero = false;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let code = SmsCode::draw();
            assert!(is_code_shaped(code.expose()), "{}", code.expose());
            leading_zero |= code.expose().starts_with('0');
            seen.insert(code.expose().to_owned());
        }
        // 2000 draws of 10^6 values: a repeat is possible, many are not;
        // about 200 start with 0.
        assert!(seen.len() > 1990 && leading_zero);
        assert_eq!(format!("{:?}", SmsCode::draw()), "SmsCode(******)");
    }

    #[test]
    fn only_six_ascii_digits_are_code_shaped() {
        assert!(is_code_shaped("012345"));
        for bad in ["", "12345", "1234567", "12345a", " 12345", "１２３４５６"] {
            assert!(!is_code_shaped(bad), "{bad:?}");
        }
    }

    #[test]
    fn hashes_are_keyed_per_row() {
        let scene = Scene::parse("login").unwrap();
        let a = sms_locator(&scene, &Mobile::parse("13800138000").unwrap());
        let b = sms_locator(&scene, &Mobile::parse("13800138001").unwrap());
        let other_scene = sms_locator(
            &Scene::parse("pay").unwrap(),
            &Mobile::parse("13800138000").unwrap(),
        );
        assert_ne!(a, b);
        assert_ne!(a, other_scene);
        let hash = code_hash(&a, "123456");
        assert_eq!(hash.len(), 64);
        assert_eq!(hash, code_hash(&a, "123456"));
        assert_ne!(
            hash,
            code_hash(&b, "123456"),
            "another number, another hash"
        );
        assert_ne!(hash, code_hash(&a, "123457"));
        // Not the plain SHA-256 of the code, which a table of 10^6 reverses.
        assert_ne!(hash, hex::encode(sha2::Sha256::digest("123456")));
    }
}
