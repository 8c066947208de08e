//! Bearer tokens: 256 random bits, base64url, with a prefix that says what they are (`rn_` for
//! a login token, `rnk_` for an API key) so that secret scanners can recognise them. Only the
//! SHA-256 of a token is stored; a fast hash is enough because the token itself is random.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

pub const LOGIN_PREFIX: &str = "rn_";
pub const API_KEY_PREFIX: &str = "rnk_";

/// A new token and the hash to store.
pub fn generate(prefix: &str) -> (String, String) {
    let token = format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    );
    let hash = hash(&token);
    (token, hash)
}

/// The stored form of `token`: lowercase hex SHA-256.
pub fn hash(token: &str) -> String {
    crate::blob::hex(&Sha256::digest(token.as_bytes()))
}

/// Whether `token` has the shape of a Realnet token, so that anything else is refused before
/// the store is asked.
pub fn well_formed(token: &str) -> bool {
    let body = token
        .strip_prefix(API_KEY_PREFIX)
        .or_else(|| token.strip_prefix(LOGIN_PREFIX));
    body.is_some_and(|b| {
        b.len() == 43
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_stored_hashed() {
        let (a, ha) = generate(LOGIN_PREFIX);
        let (b, _) = generate(API_KEY_PREFIX);
        assert!(a.starts_with("rn_") && b.starts_with("rnk_"));
        assert!(well_formed(&a) && well_formed(&b));
        assert_eq!(ha, hash(&a));
        assert_eq!(ha.len(), 64);
        assert!(!ha.contains(&a[3..]));
        assert!(!well_formed("rn_short"));
        assert!(!well_formed("Basic abc"));
        assert_ne!(generate(LOGIN_PREFIX).0, a);
    }
}
