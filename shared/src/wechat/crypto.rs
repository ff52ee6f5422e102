//! Session tokens and the checks on WeChat user data.

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

/// Bytes of randomness in a session token (256 bits).
pub const TOKEN_BYTES: usize = 32;
/// Length of a token in unpadded base64url.
pub const TOKEN_CHARS: usize = 43;
/// Largest `encryptedData` (base64) accepted; WeChat's are a few hundred bytes.
pub const MAX_ENCRYPTED_DATA_CHARS: usize = 8 * 1024;

/// A new session token: 256 bits from the OS-seeded CSPRNG, base64url
/// without padding.
pub fn new_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `token` could be one of ours (43 base64url characters). Anything
/// else is refused without a store request.
pub fn token_looks_valid(token: &str) -> bool {
    token.len() == TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Hex SHA-256 of a token: the only form in which it is stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `sha1(rawData + session_key)` in lower-case hex, as WeChat signs user data.
pub fn raw_data_signature(raw_data: &str, session_key: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(raw_data.as_bytes());
    hasher.update(session_key.as_bytes());
    hex::encode(hasher.finalize())
}

/// Whether `signature` is the signature of `raw_data` under `session_key`
/// (compared in constant time, case-insensitively).
pub fn signature_matches(raw_data: &str, session_key: &str, signature: &str) -> bool {
    let expected = raw_data_signature(raw_data, session_key);
    let given = signature.trim().to_ascii_lowercase();
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Decrypts `encryptedData` (AES-128-CBC, PKCS#7; key = base64 session_key,
/// IV = base64 `iv`), requires a JSON object whose `watermark.appid` equals
/// `appid`, and returns the object with `openId`, `unionId` and `watermark`
/// removed. When the data names an `openId`, it must be `openid`.
///
/// Every failure is [`ApiError::WxDecryptFailed`]; nothing about the key or
/// the plaintext is logged.
pub fn decrypt_user_data(
    session_key: &str,
    encrypted_data: &str,
    iv: &str,
    appid: &str,
    openid: &str,
) -> Result<Map<String, Value>, ApiError> {
    let fail = |why: &'static str| {
        tracing::warn!(reason = why, "wx user data rejected");
        ApiError::WxDecryptFailed
    };
    if encrypted_data.len() > MAX_ENCRYPTED_DATA_CHARS {
        return Err(fail("encryptedData too long"));
    }
    let key: [u8; 16] = STANDARD
        .decode(session_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| fail("session_key is not base64 of 16 bytes"))?;
    let iv: [u8; 16] = STANDARD
        .decode(iv.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| fail("iv is not base64 of 16 bytes"))?;
    let ciphertext = STANDARD
        .decode(encrypted_data.trim())
        .map_err(|_| fail("encryptedData is not base64"))?;
    let plaintext = Aes128CbcDec::new(&key.into(), &iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(&ciphertext)
        .map_err(|_| fail("bad padding"))?;
    let Ok(Value::Object(mut data)) = serde_json::from_slice::<Value>(&plaintext) else {
        return Err(fail("plaintext is not a JSON object"));
    };
    let watermark_appid = data
        .get("watermark")
        .and_then(|w| w.get("appid"))
        .and_then(Value::as_str);
    if watermark_appid != Some(appid) {
        return Err(fail("watermark.appid differs from WX_APPID"));
    }
    if let Some(data_openid) = data.get("openId")
        && data_openid.as_str() != Some(openid)
    {
        return Err(fail("openId differs from the session's"));
    }
    data.remove("openId");
    data.remove("unionId");
    data.remove("watermark");
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::BlockEncryptMut;

    type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;

    const KEY: [u8; 16] = *b"0123456789abcdef";
    const IV: [u8; 16] = *b"fedcba9876543210";

    fn encrypt(plaintext: &str) -> String {
        let ct = Aes128CbcEnc::new(&KEY.into(), &IV.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext.as_bytes());
        STANDARD.encode(ct)
    }

    #[test]
    fn published_signature_vector() {
        let raw = r#"{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}"#;
        let key = "HyVFkGl5F5OQWJZZaNzBBg==";
        let sig = "75e81ceda165f4ffa64f4068af58c64b8f54b88c";
        assert_eq!(raw_data_signature(raw, key), sig);
        assert!(signature_matches(raw, key, sig));
        assert!(signature_matches(raw, key, &sig.to_uppercase()));
        assert!(!signature_matches(raw, key, &sig[..39]));
        assert!(!signature_matches(&raw.replace("Band", "Bond"), key, sig));
        assert!(!signature_matches(raw, "AyVFkGl5F5OQWJZZaNzBBg==", sig));
    }

    /// WeChat's own example of 加密数据解密算法: the appid, session_key, iv
    /// and encryptedData of the official demo code (`aes-sample.zip`, e.g.
    /// its `node/demo.js`, linked from
    /// <https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/signature.html>),
    /// whose comment gives the plaintext. Encrypted by WeChat, not by the
    /// crates this decrypts with.
    #[test]
    fn published_decryption_example_decrypts_and_strips_identity_fields() {
        const APPID: &str = "wx4f4bc4dec97d474b";
        const SESSION_KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
        const IV: &str = "r7BXXKkLb8qrSNn05n0qiA==";
        const ENCRYPTED_DATA: &str = concat!(
            "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS",
            "9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142d",
            "NCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6",
            "/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn",
            "/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4P",
            "C7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns",
            "/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYV",
            "oKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuy",
            "Db/XcxxmK01EpqOyuxINew==",
        );
        const OPENID: &str = "oGZUI0egBJY1zhBYw2KhdUfwVJJE";
        let data = decrypt_user_data(SESSION_KEY, ENCRYPTED_DATA, IV, APPID, OPENID).unwrap();
        let expected = serde_json::json!({
            "nickName": "Band",
            "gender": 1,
            "language": "zh_CN",
            "city": "Guangzhou",
            "province": "Guangdong",
            "country": "CN",
            "avatarUrl": "http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0",
        });
        // openId, unionId ("ocMvos6NjeKLIBqg5Mr9QjxrP1FA") and the
        // watermark (appid, timestamp 1477314187) were checked and removed.
        assert_eq!(Value::Object(data), expected);
        // The same data for another user, or another app, is refused.
        for (appid, openid) in [(APPID, "oSomeoneElse"), ("wxanother0000001", OPENID)] {
            assert_eq!(
                decrypt_user_data(SESSION_KEY, ENCRYPTED_DATA, IV, appid, openid),
                Err(ApiError::WxDecryptFailed),
                "{appid} {openid}"
            );
        }
    }

    #[test]
    fn watermark_and_openid_must_match() {
        let key = STANDARD.encode(KEY);
        let iv = STANDARD.encode(IV);
        let cases = [
            (r#"{"watermark":{"appid":"wxother"}}"#, "wxmine", "o1"),
            (r#"{"nickName":"x"}"#, "wxmine", "o1"),
            (r#"{"watermark":{"appid":7}}"#, "wxmine", "o1"),
            (
                r#"{"openId":"o2","watermark":{"appid":"wxmine"}}"#,
                "wxmine",
                "o1",
            ),
            ("[1,2]", "wxmine", "o1"),
            ("not json", "wxmine", "o1"),
        ];
        for (json, appid, openid) in cases {
            assert_eq!(
                decrypt_user_data(&key, &encrypt(json), &iv, appid, openid),
                Err(ApiError::WxDecryptFailed),
                "{json}"
            );
        }
        let ok = r#"{"openId":"o1","watermark":{"appid":"wxmine"}}"#;
        assert!(decrypt_user_data(&key, &encrypt(ok), &iv, "wxmine", "o1").is_ok());
    }

    #[test]
    fn wrong_key_iv_or_encoding_fails_cleanly() {
        let good = encrypt(r#"{"watermark":{"appid":"wxmine"}}"#);
        let key = STANDARD.encode(KEY);
        let iv = STANDARD.encode(IV);
        let other_key = STANDARD.encode(*b"ffffffffffffffff");
        let cases = [
            (other_key.as_str(), good.as_str(), iv.as_str()),
            (key.as_str(), good.as_str(), "c2hvcnQ="),
            ("c2hvcnQ=", good.as_str(), iv.as_str()),
            (key.as_str(), "%%%", iv.as_str()),
            (key.as_str(), "AAAA", iv.as_str()),
            (key.as_str(), "", iv.as_str()),
        ];
        for (k, data, v) in cases {
            // A wrong key almost always breaks the padding; when it does not,
            // the plaintext is noise and fails the JSON or watermark check.
            assert_eq!(
                decrypt_user_data(k, data, v, "wxmine", "o1"),
                Err(ApiError::WxDecryptFailed),
                "{k} {data} {v}"
            );
        }
    }

    #[test]
    fn tokens_are_256_bit_base64url_and_hash_to_hex() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(token_looks_valid(&a), "{a}");
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert!(!token_looks_valid(&a[1..]));
        assert!(!token_looks_valid(&format!("{}=", &a[1..])));
        let h = token_hash(&a);
        assert_eq!(h.len(), 64);
        assert!(h.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
