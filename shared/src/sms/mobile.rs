//! Mobile numbers, checked once at the boundary: [`Mobile`] is an E.164
//! number (`+8613800138000`), and nothing below the handler sees another
//! form. A leaf: it imports nothing of the crate but the error table.
//!
//! Accepted: `+` and 8 to 15 digits (E.164 allows at most 15, none start
//! with 0), or a mainland mobile number of 11 digits without a country code
//! (`13800138000`, taken as `+86`), surrounding spaces trimmed. A `+86`
//! number must be a mainland mobile number (`1[3-9]` and 9 more digits);
//! other countries' national plans are Tencent's to judge (it answers
//! `InvalidParameterValue.IncorrectPhoneNumber`, which is the same 400).
//! No spaces, dashes or `00` prefix inside: a client sends what its input
//! field checked, and a number we rewrote would be one the user never
//! typed.
//!
//! A number's country is the scene's to allow ([`Mobile::in_countries`]).
//! ITU-T E.164 country calling codes are a prefix code (no code begins
//! another), so a number is in country `c` exactly when its digits start
//! with `c`; the configuration refuses a list where one code begins
//! another.

use std::fmt;

use crate::error::ApiError;

/// Most digits of an E.164 number (country code included).
pub const MAX_DIGITS: usize = 15;
/// Fewest digits taken as an E.164 number: the shortest mobile numbers in
/// use (a 1- to 3-digit country code and 7 or more digits).
pub const MIN_DIGITS: usize = 8;
/// The mainland's country code, taken for 11-digit numbers without one.
pub const MAINLAND: &str = "86";

/// A mobile number in E.164 (`+8613800138000`). `Debug` masks all but its
/// last four digits, so a value that reaches a log line does not carry
/// the number; [`Mobile::masked`] is the same for a log field.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mobile(String);

impl Mobile {
    /// `text` as a number (see the module), else `sms-mobile-invalid`.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let text = text.trim();
        let digits = match text.strip_prefix('+') {
            Some(digits) => digits.to_owned(),
            None if is_mainland_national(text) => format!("{MAINLAND}{text}"),
            None => return Err(ApiError::SmsMobileInvalid),
        };
        let valid = (MIN_DIGITS..=MAX_DIGITS).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
            && digits
                .strip_prefix(MAINLAND)
                .is_none_or(is_mainland_national);
        if !valid {
            return Err(ApiError::SmsMobileInvalid);
        }
        Ok(Self(format!("+{digits}")))
    }

    /// The number as E.164 text (`+8613800138000`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the number's country calling code is one of `countries`
    /// (digits, no `+`; a prefix code, see the module).
    pub fn in_countries<S: AsRef<str>>(&self, countries: &[S]) -> bool {
        let digits = &self.0[1..];
        countries.iter().any(|c| digits.starts_with(c.as_ref()))
    }

    /// The number with all but its country's first digits and its last four
    /// hidden (`+86*******8000`), for logs.
    pub fn masked(&self) -> String {
        let digits = &self.0[1..];
        let shown_tail = digits.len().saturating_sub(4);
        let head = digits.get(..2.min(shown_tail)).unwrap_or("");
        let hidden = shown_tail - head.len();
        format!("+{head}{}{}", "*".repeat(hidden), &digits[shown_tail..])
    }
}

/// A mainland mobile number without its country code: 11 digits, `1[3-9]…`.
fn is_mainland_national(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 11
        && bytes.iter().all(u8::is_ascii_digit)
        && bytes[0] == b'1'
        && (b'3'..=b'9').contains(&bytes[1])
}

/// Whether `code` is written as a country calling code: 1 to 3 digits, not
/// starting with 0 (configuration checks).
pub fn is_country_code(code: &str) -> bool {
    (1..=3).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_digit())
        && !code.starts_with('0')
}

impl fmt::Debug for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mobile({})", self.masked())
    }
}

impl fmt::Display for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_and_mainland_numbers_parse_to_e164() {
        for (text, want) in [
            ("+8613800138000", "+8613800138000"),
            ("13800138000", "+8613800138000"),
            ("  19912345678 ", "+8619912345678"),
            ("+85291234567", "+85291234567"),
            ("+14155550123", "+14155550123"),
            ("+447911123456", "+447911123456"),
        ] {
            assert_eq!(Mobile::parse(text).unwrap().as_str(), want, "{text}");
        }
    }

    #[test]
    fn anything_else_is_invalid() {
        for text in [
            "",
            "+",
            "138001380",
            "12800138000",
            "23800138000",
            "8613800138000",
            "008613800138000",
            "+86 13800138000",
            "+86-13800138000",
            "+8612800138000",
            "+861380013800",
            "+86138001380001",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "+1415555012a",
            "１３８００１３８０００",
            "+8613800138000\n1",
        ] {
            assert_eq!(
                Mobile::parse(text),
                Err(ApiError::SmsMobileInvalid),
                "{text:?}"
            );
        }
    }

    #[test]
    fn countries_are_prefixes_of_the_digits() {
        let cn = Mobile::parse("13800138000").unwrap();
        assert!(cn.in_countries(&["86"]));
        assert!(cn.in_countries(&["852", "86"]));
        assert!(!cn.in_countries(&["852", "1"]));
        let hk = Mobile::parse("+85291234567").unwrap();
        assert!(!hk.in_countries(&["86"]));
        assert!(hk.in_countries(&["852"]));
        assert!(!hk.in_countries::<&str>(&[]));
        assert!(is_country_code("86") && is_country_code("1") && is_country_code("852"));
        for bad in ["", "0", "086", "8521", "8a"] {
            assert!(!is_country_code(bad), "{bad}");
        }
    }

    #[test]
    fn debug_and_masked_hide_the_number() {
        let mobile = Mobile::parse("+8613800138123").unwrap();
        assert_eq!(mobile.masked(), "+86*******8123");
        assert_eq!(format!("{mobile:?}"), "Mobile(+86*******8123)");
        assert_eq!(mobile.to_string(), "+8613800138123");
        let short = Mobile::parse("+12345678").unwrap();
        assert_eq!(short.masked(), "+12**5678");
    }
}
