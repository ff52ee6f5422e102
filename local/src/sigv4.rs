//! SigV4 on the dev server's `AWS_IAM` routes (`POST /guard/check`,
//! `POST /guard/report`), as API Gateway checks it in AWS: a request must be
//! signed for `execute-api` with the dev server's development credentials
//! ([`DEV_AWS_ACCESS_KEY_ID`], [`DEV_AWS_SECRET_ACCESS_KEY`]), within five
//! minutes of now, else it is answered 403 with API Gateway's own message.
//! So the SigV4 examples of `docs/guard.md` prove a signature here, not the shape of
//! a header.
//!
//! The expected signature is computed by AWS's own signer (`aws-sigv4`)
//! over the request as received, with the headers the client says it
//! signed, and compared in constant time. The examples sign with
//! independent implementations (`@smithy/signature-v4`, botocore).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use hmac::Mac;

/// The access key the dev server accepts (AWS's documentation example: not
/// a real key).
pub const DEV_AWS_ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
/// Its secret (AWS's documentation example).
pub const DEV_AWS_SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// How far a request's `X-Amz-Date` may be from now.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Why a request was refused, as API Gateway says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization` header, or not a SigV4 one.
    Missing,
    /// Signed with a key the dev server does not know.
    UnknownKey,
    /// The signature does not match the request.
    Mismatch,
    /// `X-Amz-Date` missing, malformed or too far from now.
    Expired,
}

impl Refusal {
    /// API Gateway's `message` for this refusal.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => "Missing Authentication Token",
            Refusal::UnknownKey => "The security token included in the request is invalid.",
            Refusal::Mismatch => {
                "The request signature we calculated does not match the signature you \
                 provided. Check your AWS Secret Access Key and signing method. Consult \
                 the service documentation for details."
            }
            Refusal::Expired => {
                "Signature expired: the request's X-Amz-Date is not within 5 minutes of now"
            }
        }
    }

    /// API Gateway's `x-amzn-errortype`.
    pub fn error_type(self) -> &'static str {
        match self {
            Refusal::Missing => "MissingAuthenticationTokenException",
            Refusal::UnknownKey => "UnrecognizedClientException",
            Refusal::Mismatch | Refusal::Expired => "InvalidSignatureException",
        }
    }
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…,
/// SignedHeaders=…, Signature=…`.
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        match key {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed_headers = Some(value),
            "Signature" => signature = Some(value),
            _ => return None,
        }
    }
    let mut scope = credential?.split('/');
    let (access_key_id, date, region, service, terminator) = (
        scope.next()?,
        scope.next()?,
        scope.next()?,
        scope.next()?,
        scope.next()?,
    );
    if terminator != "aws4_request" || scope.next().is_some() {
        return None;
    }
    Some(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers: signed_headers?.split(';').collect(),
        signature: signature?,
    })
}

/// `X-Amz-Date` (`20261207T051500Z`) as a time.
fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let at = time::PrimitiveDateTime::parse(value, &format).ok()?;
    let seconds = u64::try_from(at.assume_utc().unix_timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

/// Whether the request (`uri` as received: path and query, encoded) is
/// signed with the development credentials within [`MAX_CLOCK_SKEW`] of
/// `now`.
pub fn check(
    method: &str,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<(), Refusal> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let auth = header("authorization")
        .and_then(parse_authorization)
        .ok_or(Refusal::Missing)?;
    if auth.access_key_id != DEV_AWS_ACCESS_KEY_ID {
        return Err(Refusal::UnknownKey);
    }
    let amz_date = header("x-amz-date").ok_or(Refusal::Expired)?;
    let signed_at = parse_amz_date(amz_date).ok_or(Refusal::Expired)?;
    let skew = now
        .duration_since(signed_at)
        .or_else(|e| Ok::<_, ()>(e.duration()))
        .unwrap_or_default();
    if skew > MAX_CLOCK_SKEW {
        return Err(Refusal::Expired);
    }
    if auth.service != "execute-api"
        || !amz_date.starts_with(auth.date)
        || !auth.signed_headers.contains(&"host")
        || !auth.signed_headers.contains(&"x-amz-date")
    {
        return Err(Refusal::Mismatch);
    }
    // The headers the client signed, as received (the signer adds
    // x-amz-date itself, from the time).
    let mut signed = Vec::new();
    for name in &auth.signed_headers {
        if *name == "x-amz-date" {
            continue;
        }
        signed.push((*name, header(name).ok_or(Refusal::Mismatch)?));
    }
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let expected = expected_signature(
        method,
        path_and_query,
        &signed,
        body,
        (auth.region, auth.service),
        signed_at,
    )
    .ok_or(Refusal::Mismatch)?;
    if same_signature(&expected, auth.signature) {
        Ok(())
    } else {
        Err(Refusal::Mismatch)
    }
}

/// The signature the development credentials give `method path_and_query`
/// with the `signed` headers (x-amz-date aside: the signer adds it from
/// `signed_at`) and `body`, for `(region, service)`.
fn expected_signature(
    method: &str,
    path_and_query: &str,
    signed: &[(&str, &str)],
    body: &[u8],
    (region, service): (&str, &str),
    signed_at: SystemTime,
) -> Option<String> {
    let mut settings = SigningSettings::default();
    if signed
        .iter()
        .any(|(name, _)| *name == "x-amz-content-sha256")
    {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let identity = Credentials::new(
        DEV_AWS_ACCESS_KEY_ID,
        DEV_AWS_SECRET_ACCESS_KEY,
        None,
        None,
        "gatehouse-dev",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(signed_at)
        .settings(settings)
        .build()
        .ok()?
        .into();
    let request = SignableRequest::new(
        method,
        path_and_query,
        signed.iter().copied(),
        SignableBody::Bytes(body),
    )
    .ok()?;
    Some(sign(request, &params).ok()?.signature().to_owned())
}

/// Signs `method path_and_query` for `execute-api` in `ap-east-1` with
/// `key` (access key id, secret) at `at`, as a back end's SDK would: adds
/// `x-amz-date` and `authorization` to `headers`, which must hold `host`.
/// For tests and tools that call the dev server's IAM routes in process.
pub fn sign_request(
    (access_key_id, secret): (&str, &str),
    method: &str,
    path_and_query: &str,
    headers: &mut http::HeaderMap,
    body: &[u8],
    at: SystemTime,
) {
    let identity = Credentials::new(access_key_id, secret, None, None, "gatehouse-dev").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("ap-east-1")
        .name("execute-api")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .expect("complete signing parameters")
        .into();
    let signed: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let request = SignableRequest::new(
        method,
        path_and_query,
        signed.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .expect("a signable request");
    let (instructions, _) = sign(request, &params).expect("signed").into_parts();
    for (name, value) in instructions.headers() {
        headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            value.parse().expect("a header value"),
        );
    }
}

/// Compares two signatures in constant time (an HMAC of each under a
/// fresh key, compared by the MAC's own constant-time check).
fn same_signature(expected: &str, given: &str) -> bool {
    let key: [u8; 32] = rand::random();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(expected.as_bytes());
    let tag = mac.finalize().into_bytes();
    let mut check = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    check.update(given.as_bytes());
    check.verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's SigV4 test suite, `post-vanilla` (`POST /` with `Host:
    /// example.amazonaws.com` and `X-Amz-Date: 20150830T123600Z`, signed for
    /// `us-east-1/service` with the suite's credentials, which are the dev
    /// server's): the published signature.
    #[test]
    fn the_published_post_vanilla_signature_is_expected() {
        let signed_at = parse_amz_date("20150830T123600Z").unwrap();
        let signature = expected_signature(
            "POST",
            "/",
            &[("host", "example.amazonaws.com")],
            b"",
            ("us-east-1", "service"),
            signed_at,
        );
        assert_eq!(
            signature.as_deref(),
            Some("5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
        );
    }

    fn signed_request(
        body: &str,
        at: SystemTime,
        key: (&str, &str),
    ) -> (http::Uri, http::HeaderMap) {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "127.0.0.1:3000".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        sign_request(
            key,
            "POST",
            "/guard/check",
            &mut headers,
            body.as_bytes(),
            at,
        );
        ("/guard/check".parse().unwrap(), headers)
    }

    #[test]
    fn only_a_fresh_signature_by_the_dev_key_over_this_very_request_passes() {
        let now = SystemTime::now();
        let dev = (DEV_AWS_ACCESS_KEY_ID, DEV_AWS_SECRET_ACCESS_KEY);
        let body = r#"{"scene":"login"}"#;
        let (uri, headers) = signed_request(body, now, dev);
        assert_eq!(check("POST", &uri, &headers, body.as_bytes(), now), Ok(()));
        // Another body, method or path: not what was signed.
        let tampered = r#"{"scene":"other"}"#;
        assert_eq!(
            check("POST", &uri, &headers, tampered.as_bytes(), now),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            check("PUT", &uri, &headers, body.as_bytes(), now),
            Err(Refusal::Mismatch)
        );
        let report: http::Uri = "/guard/report".parse().unwrap();
        assert_eq!(
            check("POST", &report, &headers, body.as_bytes(), now),
            Err(Refusal::Mismatch)
        );
        // The right key id with the wrong secret.
        let (_, forged) = signed_request(body, now, (DEV_AWS_ACCESS_KEY_ID, "not-the-secret"));
        assert_eq!(
            check("POST", &uri, &forged, body.as_bytes(), now),
            Err(Refusal::Mismatch)
        );
        let (_, stranger) = signed_request(body, now, ("AKIDSTRANGER", DEV_AWS_SECRET_ACCESS_KEY));
        assert_eq!(
            check("POST", &uri, &stranger, body.as_bytes(), now),
            Err(Refusal::UnknownKey)
        );
        // Six minutes either way.
        let skew = Duration::from_secs(6 * 60);
        for at in [now - skew, now + skew] {
            let (_, stale) = signed_request(body, at, dev);
            assert_eq!(
                check("POST", &uri, &stale, body.as_bytes(), now),
                Err(Refusal::Expired)
            );
        }
        // No signature, or a bearer token in its place.
        assert_eq!(
            check("POST", &uri, &http::HeaderMap::new(), body.as_bytes(), now),
            Err(Refusal::Missing)
        );
        let mut bearer = http::HeaderMap::new();
        bearer.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(
            check("POST", &uri, &bearer, body.as_bytes(), now),
            Err(Refusal::Missing)
        );
    }
}
