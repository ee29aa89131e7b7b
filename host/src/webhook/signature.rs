//! Standard Webhooks signatures: `webhook-signature: v1,BASE64` where the
//! base64 is the HMAC-SHA256 of `ID.TIMESTAMP.BODY` keyed with the
//! subscription's secret. The secret is written `whsec_` + base64 of its
//! bytes, as Standard Webhooks libraries read it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The prefix of a secret's text form.
const SECRET_PREFIX: &str = "whsec_";
/// The fewest and most bytes a secret may have.
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// A subscription's signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Secret(..)")
    }
}

impl Secret {
    /// A new random secret of 32 bytes.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        Self(bytes)
    }

    /// Read `whsec_BASE64`, 24 to 64 bytes once decoded.
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| format!("a secret starts with {SECRET_PREFIX}"))?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| format!("a secret is {SECRET_PREFIX} followed by base64"))?;
        if !SECRET_BYTES.contains(&bytes.len()) {
            return Err(format!(
                "a secret has {} to {} bytes, not {}",
                SECRET_BYTES.start(),
                SECRET_BYTES.end(),
                bytes.len()
            ));
        }
        Ok(Self(bytes))
    }

    /// The `whsec_BASE64` form.
    pub fn text(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The `webhook-signature` value of `body` sent as message `id` at
    /// `timestamp` (Unix seconds).
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body)))
    }

    /// Whether `header` (space-separated `VERSION,BASE64` signatures) holds
    /// a valid `v1` signature of `body` as message `id` at `timestamp`;
    /// compared in constant time.
    pub fn verify(&self, header: &str, id: &str, timestamp: u64, body: &[u8]) -> bool {
        header.split(' ').any(|signature| {
            let Some(encoded) = signature.strip_prefix("v1,") else {
                return false;
            };
            let Ok(given) = STANDARD.decode(encoded) else {
                return false;
            };
            let mut mac = self.keyed();
            mac.update(&signed_content(id, timestamp, body));
            mac.verify_slice(&given).is_ok()
        })
    }

    fn mac(&self, id: &str, timestamp: u64, body: &[u8]) -> Vec<u8> {
        let mut mac = self.keyed();
        mac.update(&signed_content(id, timestamp, body));
        mac.finalize().into_bytes().to_vec()
    }

    fn keyed(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

fn signed_content(id: &str, timestamp: u64, body: &[u8]) -> Vec<u8> {
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    content
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signs_the_specification_example() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let signature = secret.sign(id, 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(secret.verify(&format!("v1,bad {signature}"), id, 1614265330, body));
        assert!(!secret.verify(&signature, id, 1614265331, body));
    }

    #[test]
    fn malformed_secrets_are_refused() {
        for (text, why) in [
            ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "starts with whsec_"),
            ("whsec_not base64!", "followed by base64"),
            ("whsec_AAAA", "24 to 64 bytes, not 3"),
        ] {
            let error = Secret::parse(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
        let secret = Secret::generate();
        assert_eq!(Secret::parse(&secret.text()).unwrap(), secret);
    }
}
