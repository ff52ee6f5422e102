//! TC3-HMAC-SHA256, the request signature of Tencent Cloud API 3.0.
//!
//! The client signs with it. The emulator in `gatehouse-local` checks
//! signatures with an implementation of its own (`tc3_check`), so that the
//! two cannot agree by construction; each reproduces Tencent's published
//! example (the tests below). The timestamp is always a parameter: nothing
//! here reads a clock.
//!
//! ```text
//! CanonicalRequest = Method \n URI \n Query \n CanonicalHeaders \n SignedHeaders \n hex(sha256(Payload))
//!   CanonicalHeaders: "lower(name):lower(trim(value))\n" per signed header, sorted by name
//! StringToSign     = "TC3-HMAC-SHA256" \n Timestamp \n Date/Service/tc3_request \n hex(sha256(CanonicalRequest))
//! SecretDate       = HMAC("TC3" + SecretKey, Date)
//! SecretService    = HMAC(SecretDate, Service)
//! SecretSigning    = HMAC(SecretService, "tc3_request")
//! Signature        = hex(HMAC(SecretSigning, StringToSign))
//! Authorization    = TC3-HMAC-SHA256 Credential=SecretId/Date/Service/tc3_request, SignedHeaders=…, Signature=…
//! ```

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The algorithm name at the head of the `Authorization` header.
pub const ALGORITHM: &str = "TC3-HMAC-SHA256";
/// The last element of the credential scope.
pub const TERMINATOR: &str = "tc3_request";

type HmacSha256 = Hmac<Sha256>;

/// What a signature covers.
#[derive(Debug, Clone)]
pub struct SignInput<'a> {
    /// `POST`, `GET` … (upper case as sent).
    pub method: &'a str,
    /// The canonical URI; always `/` for API 3.0.
    pub uri: &'a str,
    /// The query string as sent (empty for POST).
    pub query: &'a str,
    /// The signed headers as (name, value) pairs, in any order and case.
    pub headers: &'a [(&'a str, &'a str)],
    /// The request body, byte for byte as sent.
    pub payload: &'a [u8],
    /// The product, e.g. `captcha`.
    pub service: &'a str,
    /// Epoch seconds, the value of `X-TC-Timestamp`.
    pub timestamp: i64,
}

/// The parts of a signature, each of them checkable on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `YYYY-MM-DD` (UTC) of the timestamp.
    pub date: String,
    /// `content-type;host;…`: lower-case names, sorted.
    pub signed_headers: String,
    /// hex(sha256(CanonicalRequest)).
    pub hashed_canonical_request: String,
    /// hex(HMAC(SecretSigning, StringToSign)).
    pub signature: String,
}

impl Signed {
    /// The complete `Authorization` header value.
    pub fn authorization(&self, secret_id: &str, service: &str) -> String {
        format!(
            "{ALGORITHM} Credential={secret_id}/{}/{service}/{TERMINATOR}, SignedHeaders={}, Signature={}",
            self.date, self.signed_headers, self.signature
        )
    }
}

/// Signs `input` with `secret_key`.
pub fn sign(secret_key: &str, input: &SignInput<'_>) -> Signed {
    let (canonical, signed_headers) = canonical_request(input);
    let hashed_canonical_request = hex::encode(Sha256::digest(canonical.as_bytes()));
    let date = utc_date(input.timestamp);
    let to_sign = string_to_sign(
        input.timestamp,
        &date,
        input.service,
        &hashed_canonical_request,
    );
    let signature = signature(secret_key, &date, input.service, &to_sign);
    Signed {
        date,
        signed_headers,
        hashed_canonical_request,
        signature,
    }
}

/// The canonical request and its `SignedHeaders` list.
pub fn canonical_request(input: &SignInput<'_>) -> (String, String) {
    let mut headers: Vec<(String, String)> = input
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.trim().to_ascii_lowercase(),
                value.trim().to_lowercase(),
            )
        })
        .collect();
    headers.sort();
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let payload_hash = hex::encode(Sha256::digest(input.payload));
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        input.method, input.uri, input.query, canonical_headers, signed_headers, payload_hash
    );
    (canonical, signed_headers)
}

/// `TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n{hash}`.
pub fn string_to_sign(timestamp: i64, date: &str, service: &str, hashed_canonical: &str) -> String {
    format!("{ALGORITHM}\n{timestamp}\n{date}/{service}/{TERMINATOR}\n{hashed_canonical}")
}

/// The hex signature of `string_to_sign` under the key derived from
/// `secret_key`, `date` and `service`.
pub fn signature(secret_key: &str, date: &str, service: &str, string_to_sign: &str) -> String {
    let secret_date = hmac(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let secret_service = hmac(&secret_date, service.as_bytes());
    let secret_signing = hmac(&secret_service, TERMINATOR.as_bytes());
    hex::encode(hmac(&secret_signing, string_to_sign.as_bytes()))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `YYYY-MM-DD` in UTC of an epoch-seconds timestamp.
pub fn utc_date(timestamp: i64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let days = timestamp.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tencent's published example of the signature (GET, cvm).
    fn published_example() -> (Signed, String) {
        let headers = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Host", "cvm.tencentcloudapi.com"),
        ];
        let input = SignInput {
            method: "GET",
            uri: "/",
            query: "Limit=10&Offset=0",
            headers: &headers,
            payload: b"",
            service: "cvm",
            timestamp: 1_539_084_154,
        };
        let (canonical, _) = canonical_request(&input);
        (sign("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", &input), canonical)
    }

    #[test]
    fn published_example_reproduces_both_values() {
        let (signed, canonical) = published_example();
        assert_eq!(
            canonical,
            "GET\n/\nLimit=10&Offset=0\ncontent-type:application/x-www-form-urlencoded\n\
             host:cvm.tencentcloudapi.com\n\ncontent-type;host\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(signed.date, "2018-10-09");
        assert_eq!(signed.signed_headers, "content-type;host");
        assert_eq!(
            signed.hashed_canonical_request,
            "91c9c192c14460df6c1ffc69e34e6c5e90708de2a6d282cccf957dbf1aa7f3a7"
        );
        assert_eq!(
            signed.signature,
            "5da7a33f6993f0614b047e5df4582db9e9bf4672ba50567dba16c6ccf174c474"
        );
        assert_eq!(
            signed.authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "cvm"),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2018-10-09/cvm/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=5da7a33f6993f0614b047e5df4582db9e9bf4672ba50567dba16c6ccf174c474"
        );
    }

    #[test]
    fn headers_are_lowered_trimmed_and_sorted_whatever_the_input_order() {
        let a = [
            ("X-TC-Action", " DescribeCaptchaResult "),
            ("Host", "captcha.tencentcloudapi.com"),
            ("Content-Type", "application/json; charset=utf-8"),
        ];
        let b = [a[2], a[1], ("x-tc-action", "describecaptcharesult")];
        let input = |headers| SignInput {
            method: "POST",
            uri: "/",
            query: "",
            headers,
            payload: b"{}",
            service: "captcha",
            timestamp: 1_700_000_000,
        };
        let (canonical, signed) = canonical_request(&input(&a));
        assert_eq!(signed, "content-type;host;x-tc-action");
        assert!(canonical.contains("x-tc-action:describecaptcharesult\n"));
        assert_eq!(sign("k", &input(&a)), sign("k", &input(&b)));
    }

    #[test]
    fn any_change_to_key_payload_header_or_time_changes_the_signature() {
        let headers = [("content-type", "application/json"), ("host", "h")];
        let base = SignInput {
            method: "POST",
            uri: "/",
            query: "",
            headers: &headers,
            payload: b"{\"a\":1}",
            service: "captcha",
            timestamp: 1_700_000_000,
        };
        let reference = sign("key", &base).signature;
        assert_ne!(sign("key2", &base).signature, reference);
        let other_headers = [("content-type", "application/json"), ("host", "h2")];
        let variants = [
            SignInput {
                payload: b"{\"a\":2}",
                ..base.clone()
            },
            SignInput {
                headers: &other_headers,
                ..base.clone()
            },
            SignInput {
                timestamp: 1_700_000_001,
                ..base.clone()
            },
            SignInput {
                service: "cvm",
                ..base.clone()
            },
        ];
        for variant in variants {
            assert_ne!(sign("key", &variant).signature, reference, "{variant:?}");
        }
    }

    #[test]
    fn utc_dates_cross_days_years_and_leap_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(1_539_084_154), "2018-10-09");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(951_868_799), "2000-02-29");
        assert_eq!(utc_date(951_868_800), "2000-03-01");
        assert_eq!(utc_date(1_735_689_599), "2024-12-31");
        assert_eq!(utc_date(1_735_689_600), "2025-01-01");
    }
}
