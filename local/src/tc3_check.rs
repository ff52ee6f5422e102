//! The Tencent emulator's own check of TC3-HMAC-SHA256 signatures, written
//! apart from `gatehouse::tencent::tc3` (which the client signs with), so
//! that the client and the emulator cannot agree by construction: each is
//! held to Tencent's published example (签名方法 v3, the CVM `GET` example
//! of SPEC §7; see the tests below and `gatehouse::tencent::tc3`'s).
//!
//! From Tencent's description of the method: the canonical request is
//! `Method \n URI \n Query \n CanonicalHeaders \n SignedHeaders \n
//! hex(sha256(Payload))`, each signed header `lower(name):lower(trim(value))\n`
//! in the order of the (sorted) SignedHeaders; the key is HMAC-SHA256 chained
//! over `"TC3" + SecretKey`, the date, the service and `tc3_request`; the
//! signature is the hex HMAC of `TC3-HMAC-SHA256 \n Timestamp \n
//! Date/Service/tc3_request \n hex(sha256(CanonicalRequest))`.

use hmac::{Hmac, Mac};
use hyper::body::Bytes;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

const SCHEME: &str = "TC3-HMAC-SHA256";
const SCOPE_END: &str = "tc3_request";

/// How far `X-TC-Timestamp` may be from an emulator's clock.
pub const TIMESTAMP_WINDOW_SECS: i64 = 5 * 60;

/// The account an emulator plays, and the product it answers for.
pub struct Account<'a> {
    pub secret_id: &'a str,
    pub secret_key: &'a str,
    /// The service the credential scope must name (`captcha`, `sms`).
    pub service: &'a str,
}

/// Checks a request's signature as Tencent does, with `account` at
/// `now_secs`: the error code and message Tencent answers otherwise
/// (`AuthFailure.InvalidAuthorization`, `AuthFailure.SignatureExpire`,
/// `AuthFailure.SecretIdNotFound`, `AuthFailure.SignatureFailure`).
/// `content-type` and `host` must be signed; the method, path, query,
/// every signed header as received and the body byte for byte are.
pub fn authenticate(
    req: &http::Request<Bytes>,
    account: &Account<'_>,
    now_secs: i64,
) -> Result<(), (&'static str, &'static str)> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let claim = header("authorization").and_then(Claim::parse).ok_or((
        "AuthFailure.InvalidAuthorization",
        "Authorization is missing or not TC3-HMAC-SHA256",
    ))?;
    let timestamp = header("x-tc-timestamp")
        .and_then(|t| t.trim().parse::<i64>().ok())
        .ok_or((
            "AuthFailure.InvalidAuthorization",
            "X-TC-Timestamp is missing or not an integer",
        ))?;
    if (now_secs - timestamp).abs() > TIMESTAMP_WINDOW_SECS {
        return Err((
            "AuthFailure.SignatureExpire",
            "X-TC-Timestamp is more than 5 minutes off",
        ));
    }
    if claim.secret_id != account.secret_id {
        return Err(("AuthFailure.SecretIdNotFound", "the SecretId is not found"));
    }
    let signature_failure = (
        "AuthFailure.SignatureFailure",
        "the provided credentials could not be validated",
    );
    if claim.service != account.service || Some(&claim.date) != date_of(timestamp).as_ref() {
        return Err(signature_failure);
    }
    // The header lists names in the order the client signed them: that
    // order must be the sorted one the canonical request uses.
    let signed = &claim.signed_headers;
    if !claim.headers_sorted()
        || !signed.iter().any(|h| h == "content-type")
        || !signed.iter().any(|h| h == "host")
    {
        return Err(signature_failure);
    }
    let mut values = Vec::with_capacity(signed.len());
    for name in signed {
        values.push(header(name).ok_or(signature_failure)?);
    }
    let received = Received {
        method: req.method().as_str(),
        path: req.uri().path(),
        query: req.uri().query().unwrap_or(""),
        header_values: &values,
        body: req.body(),
        timestamp,
    };
    if !verify(account.secret_key, &claim, &received) {
        return Err(signature_failure);
    }
    Ok(())
}

/// What an `Authorization: TC3-HMAC-SHA256 Credential=…, SignedHeaders=…,
/// Signature=…` header claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub secret_id: String,
    pub date: String,
    pub service: String,
    /// As listed: the canonical request takes them in this order, which
    /// must be sorted (see [`Claim::headers_sorted`]).
    pub signed_headers: Vec<String>,
    /// The hex signature as sent.
    pub signature: String,
}

impl Claim {
    /// Reads the header; `None` unless it has exactly the three parts, a
    /// four-part credential scope ending in `tc3_request`, and no empty
    /// header name.
    pub fn parse(header: &str) -> Option<Claim> {
        let params = header.trim().strip_prefix(SCHEME)?.strip_prefix(' ')?;
        let parts: Vec<(&str, &str)> = params
            .split(',')
            .map(|p| p.trim().split_once('='))
            .collect::<Option<_>>()?;
        let [
            ("Credential", credential),
            ("SignedHeaders", headers),
            ("Signature", signature),
        ] = parts.as_slice()
        else {
            return None;
        };
        let scope: Vec<&str> = credential.split('/').collect();
        let [secret_id, date, service, SCOPE_END] = scope.as_slice() else {
            return None;
        };
        let signed_headers: Vec<String> = headers.split(';').map(str::to_owned).collect();
        if secret_id.is_empty() || signed_headers.iter().any(String::is_empty) {
            return None;
        }
        Some(Claim {
            secret_id: (*secret_id).to_owned(),
            date: (*date).to_owned(),
            service: (*service).to_owned(),
            signed_headers,
            signature: (*signature).to_owned(),
        })
    }

    /// Lower case, sorted, each once: the only order Tencent signs in.
    pub fn headers_sorted(&self) -> bool {
        self.signed_headers
            .iter()
            .all(|h| !h.bytes().any(|b| b.is_ascii_uppercase()))
            && self.signed_headers.windows(2).all(|w| w[0] < w[1])
    }
}

/// A request as received, the parts a signature covers.
pub struct Received<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// The value of each signed header, in the claim's order.
    pub header_values: &'a [&'a str],
    pub body: &'a [u8],
    pub timestamp: i64,
}

/// The credential date (`YYYY-MM-DD`, UTC) of an `X-TC-Timestamp`.
pub fn date_of(timestamp: i64) -> Option<String> {
    let date = time::OffsetDateTime::from_unix_timestamp(timestamp)
        .ok()?
        .date();
    Some(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

/// hex(sha256) of the canonical request of `req` under `claim`.
pub fn hashed_canonical_request(claim: &Claim, req: &Received<'_>) -> String {
    let mut canonical = format!("{}\n{}\n{}\n", req.method, req.path, req.query);
    for (name, value) in claim.signed_headers.iter().zip(req.header_values) {
        canonical.push_str(&format!("{name}:{}\n", value.trim().to_lowercase()));
    }
    canonical.push_str(&format!(
        "\n{}\n{}",
        claim.signed_headers.join(";"),
        hex::encode(Sha256::digest(req.body))
    ));
    hex::encode(Sha256::digest(canonical))
}

/// Whether `claim`'s signature is the one `secret_key` gives `req`
/// (compared in constant time by the MAC itself).
pub fn verify(secret_key: &str, claim: &Claim, req: &Received<'_>) -> bool {
    let Ok(sent) = hex::decode(&claim.signature) else {
        return false;
    };
    signing_mac(secret_key, claim, req)
        .verify_slice(&sent)
        .is_ok()
}

/// The hex signature `secret_key` gives `req` under `claim`.
pub fn signature(secret_key: &str, claim: &Claim, req: &Received<'_>) -> String {
    hex::encode(signing_mac(secret_key, claim, req).finalize().into_bytes())
}

fn signing_mac(secret_key: &str, claim: &Claim, req: &Received<'_>) -> HmacSha256 {
    let derive = |key: &[u8], data: &str| {
        let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
        mac.update(data.as_bytes());
        mac.finalize().into_bytes()
    };
    let key = derive(format!("TC3{secret_key}").as_bytes(), &claim.date);
    let key = derive(&key, &claim.service);
    let key = derive(&key, SCOPE_END);
    let mut mac = HmacSha256::new_from_slice(&key).expect("any key length");
    mac.update(
        format!(
            "{SCHEME}\n{}\n{}/{}/{SCOPE_END}\n{}",
            req.timestamp,
            claim.date,
            claim.service,
            hashed_canonical_request(claim, req)
        )
        .as_bytes(),
    );
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tencent's published example (SPEC §7): SecretId
    /// `AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE`, SecretKey
    /// `Gu5t9xGARNpq86cd98joQYCN3EXAMPLE`, `GET` of `cvm` with query
    /// `Limit=10&Offset=0` at 1539084154.
    const AUTHORIZATION: &str = "TC3-HMAC-SHA256 \
        Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2018-10-09/cvm/tc3_request, \
        SignedHeaders=content-type;host, \
        Signature=5da7a33f6993f0614b047e5df4582db9e9bf4672ba50567dba16c6ccf174c474";
    const SECRET_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
    const HEADER_VALUES: [&str; 2] = [
        "application/x-www-form-urlencoded",
        "cvm.tencentcloudapi.com",
    ];

    fn example() -> Received<'static> {
        Received {
            method: "GET",
            path: "/",
            query: "Limit=10&Offset=0",
            header_values: &HEADER_VALUES,
            body: b"",
            timestamp: 1_539_084_154,
        }
    }

    #[test]
    fn the_published_example_verifies_with_both_of_its_values() {
        let claim = Claim::parse(AUTHORIZATION).unwrap();
        assert_eq!(claim.secret_id, "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE");
        assert!(claim.headers_sorted());
        assert_eq!(date_of(1_539_084_154).as_deref(), Some("2018-10-09"));
        assert_eq!(
            hashed_canonical_request(&claim, &example()),
            "91c9c192c14460df6c1ffc69e34e6c5e90708de2a6d282cccf957dbf1aa7f3a7"
        );
        assert_eq!(
            signature(SECRET_KEY, &claim, &example()),
            "5da7a33f6993f0614b047e5df4582db9e9bf4672ba50567dba16c6ccf174c474"
        );
        assert!(verify(SECRET_KEY, &claim, &example()));
    }

    #[test]
    fn any_change_fails_the_example() {
        let claim = Claim::parse(AUTHORIZATION).unwrap();
        assert!(!verify(
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLf",
            &claim,
            &example()
        ));
        let changed = [
            Received {
                query: "Limit=10&Offset=1",
                ..example()
            },
            Received {
                timestamp: 1_539_084_155,
                ..example()
            },
            Received {
                body: b"{}",
                ..example()
            },
            Received {
                header_values: &["application/json", "cvm.tencentcloudapi.com"],
                ..example()
            },
        ];
        for req in &changed {
            assert!(!verify(SECRET_KEY, &claim, req));
        }
        let mut other_date = claim.clone();
        other_date.date = "2018-10-10".into();
        assert!(!verify(SECRET_KEY, &other_date, &example()));
        let mut not_hex = claim;
        not_hex.signature = "zz".into();
        assert!(!verify(SECRET_KEY, &not_hex, &example()));
    }

    #[test]
    fn malformed_headers_are_no_claim() {
        for header in [
            "",
            "TC3-HMAC-SHA256",
            "TC3-HMAC-SHA256X Credential=a/b/c/tc3_request, SignedHeaders=host, Signature=s",
            "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request/x, SignedHeaders=host, Signature=s",
            "TC3-HMAC-SHA256 Credential=/b/c/tc3_request, SignedHeaders=host, Signature=s",
            "TC3-HMAC-SHA256 Credential=a/b/c/other, SignedHeaders=host, Signature=s",
            "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=host;, Signature=s",
            "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=host",
            "TC3-HMAC-SHA256 Signature=s, Credential=a/b/c/tc3_request, SignedHeaders=host",
            "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=host, Signature=s, X=1",
        ] {
            assert_eq!(Claim::parse(header), None, "{header}");
        }
        let unsorted =
            Claim::parse("TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=host;content-type, Signature=s")
                .unwrap();
        assert!(!unsorted.headers_sorted());
        let upper = Claim::parse(
            "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=Host, Signature=s",
        )
        .unwrap();
        assert!(!upper.headers_sorted());
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(date_of(0).as_deref(), Some("1970-01-01"));
        assert_eq!(date_of(951_782_399).as_deref(), Some("2000-02-28"));
        assert_eq!(date_of(951_868_799).as_deref(), Some("2000-02-29"));
        assert_eq!(date_of(-1).as_deref(), Some("1969-12-31"));
    }
}
