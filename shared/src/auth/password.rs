//! Password hashing: Argon2id with OWASP's minimum parameters (19 MiB of memory, 2 passes,
//! 1 lane), which cost a few tens of milliseconds on one Lambda vCPU and fit the smallest
//! function size. The parameters are recorded in each hash (a PHC string), so raising them
//! later re-hashes nothing that is already stored. Hashing runs on tokio's blocking pool.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MEMORY_KIB: u32 = 19 * 1024;
pub const PASSES: u32 = 2;
pub const LANES: u32 = 1;

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 256;

fn argon2() -> Argon2<'static> {
    let params =
        Params::new(MEMORY_KIB, PASSES, LANES, None).expect("the Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a password is refused, if it is.
pub fn check_strength(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LENGTH {
        return Err(format!("a password needs at least {MIN_LENGTH} characters"));
    }
    if n > MAX_LENGTH {
        return Err(format!(
            "a password may have at most {MAX_LENGTH} characters"
        ));
    }
    Ok(())
}

/// The PHC string of `password` with a fresh random salt.
pub async fn hash(password: String) -> String {
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .expect("password hashing does not panic")
}

fn hash_now(password: &str) -> String {
    let salt =
        SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes make a valid salt");
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 accepts any password of a checked length")
        .to_string()
}

/// Whether `password` matches `stored`. Without a stored hash (no such account), a hash of
/// the same cost is checked anyway, so that the answer takes the same time either way.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        static DECOY: LazyLock<String> = LazyLock::new(|| hash_now("no account has this password"));
        let (phc, real) = match &stored {
            Some(s) => (s.as_str(), true),
            None => (DECOY.as_str(), false),
        };
        let ok = PasswordHash::new(phc)
            .map(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false);
        ok && real
    })
    .await
    .unwrap_or(false)
}

/// A password for a new installation's first admin: 24 characters from 62, about 143 bits.
pub fn generate() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_salted_argon2id() {
        let a = hash("correct horse battery".into()).await;
        let b = hash("correct horse battery".into()).await;
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        assert!(verify("correct horse battery".into(), Some(a.clone())).await);
        assert!(!verify("correct horse battery!".into(), Some(a)).await);
        assert!(!verify("no account has this password".into(), None).await);
        assert!(!verify("x".into(), Some("not a hash".into())).await);
    }

    #[test]
    fn strength_and_generated_passwords() {
        assert!(check_strength("short").is_err());
        assert!(check_strength(&"x".repeat(300)).is_err());
        assert!(check_strength("ten chars!").is_ok());
        let p = generate();
        assert_eq!(p.len(), 24);
        assert!(check_strength(&p).is_ok());
        assert_ne!(p, generate());
    }
}
