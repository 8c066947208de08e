//! Password hashing: Argon2id with OWASP's minimum parameters (19 MiB of memory, 2 passes,
//! 1 lane), which cost a few tens of milliseconds on one Lambda vCPU and fit the smallest
//! function size. The parameters are recorded in each hash (a PHC string), so raising them
//! later re-hashes nothing that is already stored.
//!
//! Hashing and checking run on tokio's blocking pool, at most one per core at a time (each
//! holds 19 MiB while it runs), with a short queue behind them. When the queue is full a
//! caller is refused at once with [`Busy`] rather than queued: a flood of logins costs bounded
//! memory and gets fast `503`s, and the work already admitted finishes in good time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use argon2::password_hash::{self, Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

pub const MEMORY_KIB: u32 = 19 * 1024;
pub const PASSES: u32 = 2;
pub const LANES: u32 = 1;

/// How many may wait, per core, for a hash to finish; more are refused with [`Busy`].
pub const WAITING_PER_THREAD: usize = 16;

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

/// Every hash and check of this process is running or waiting already: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server is busy checking passwords; try again in a second")]
pub struct Busy;

/// A bounded number of hashes at a time, and of callers waiting for one.
struct Pool {
    permits: Arc<tokio::sync::Semaphore>,
    threads: usize,
    max_waiting: usize,
    waiting: AtomicUsize,
    running: Arc<AtomicUsize>,
    most_running: Arc<AtomicUsize>,
}

/// Counts a caller as waiting until it is dropped (also when its request is abandoned).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Pool {
    fn new(threads: usize, max_waiting: usize) -> Pool {
        Pool {
            permits: Arc::new(tokio::sync::Semaphore::new(threads)),
            threads,
            max_waiting,
            waiting: AtomicUsize::new(0),
            running: Arc::new(AtomicUsize::new(0)),
            most_running: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs `work` on the blocking pool when a thread of this pool is free, or refuses at once
    /// if too many wait already. The permit goes with the work, so an abandoned request frees
    /// it only when its hash is done.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(Busy);
                }
                let _waiting = Waiting(&self.waiting);
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed")
            }
        };
        let (running, most) = (self.running.clone(), self.most_running.clone());
        tokio::task::spawn_blocking(move || {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            let out = work();
            running.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            out
        })
        .await
        .map_err(|e| {
            // Only a panic in Argon2 or a runtime shutting down: no hash came of it.
            tracing::error!(error = %e, "a password hash did not finish");
            Busy
        })
    }
}

static POOL: LazyLock<Pool> = LazyLock::new(|| {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    Pool::new(threads, threads * WAITING_PER_THREAD)
});

/// How many hashes this process runs at once: one per core.
pub fn threads() -> usize {
    POOL.threads
}

/// The most hashes this process has run at once (never more than [`threads`]).
pub fn most_at_once() -> usize {
    POOL.most_running.load(Ordering::SeqCst)
}

/// The PHC string of `password` with a fresh random salt.
pub async fn hash(password: String) -> Result<String, Busy> {
    POOL.run(move || hash_now(&password)).await
}

/// Argon2's working memory (19 MiB each), at most one per hashing thread, made once and
/// reused for the life of the process. Allocating and freeing 19 MiB per hash left that much
/// behind in each thread's malloc arena (glibc keeps a freed block that size for reuse), so a
/// burst of logins grew `realnet serve` by hundreds of MiB for good.
static MEMORY: std::sync::Mutex<Vec<Vec<Block>>> = std::sync::Mutex::new(Vec::new());

/// Computes the Argon2 output of `password` with `salt` under `argon`, `len` bytes long, in
/// reused memory.
fn compute(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: &Salt<'_>,
    len: usize,
) -> password_hash::Result<Output> {
    let mut salt_bytes = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_bytes)?;
    let needed = argon.params().block_count();
    let mut blocks = MEMORY
        .lock()
        .ok()
        .and_then(|mut m| m.pop())
        .unwrap_or_default();
    if blocks.len() < needed {
        blocks.resize(needed, Block::new());
    }
    let output = Output::init_with(len, |out| {
        argon
            .hash_password_into_with_memory(password, salt, out, &mut blocks)
            .map_err(password_hash::Error::from)
    });
    if let Ok(mut m) = MEMORY.lock() {
        m.push(blocks);
    }
    output
}

fn hash_now(password: &str) -> String {
    let salt =
        SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes make a valid salt");
    let argon = argon2();
    let output = compute(
        &argon,
        password.as_bytes(),
        &salt.as_salt(),
        Params::DEFAULT_OUTPUT_LEN,
    )
    .expect("Argon2 accepts any password of a checked length");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params()).expect("the Argon2 parameters are valid"),
        salt: Some(salt.as_salt()),
        hash: Some(output),
    }
    .to_string()
}

/// Whether `password` has the Argon2 output of the PHC string `phc` (with the parameters,
/// salt and version recorded in it); a string that is not one never matches.
fn matches(password: &str, phc: &str) -> bool {
    let check = || -> password_hash::Result<bool> {
        let hash = PasswordHash::new(phc)?;
        let params = Params::try_from(&hash)?;
        let algorithm = Algorithm::try_from(hash.algorithm)?;
        let version = hash
            .version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
            return Ok(false);
        };
        let argon = Argon2::new(algorithm, version, params);
        // `Output` compares in constant time.
        Ok(compute(&argon, password.as_bytes(), &salt, expected.len())? == expected)
    };
    check().unwrap_or(false)
}

/// Whether `password` matches `stored`. Without a stored hash (no such account), a hash of
/// the same cost is checked anyway, so that the answer takes the same time either way.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, Busy> {
    POOL.run(move || {
        static DECOY: LazyLock<String> = LazyLock::new(|| hash_now("no account has this password"));
        let (phc, real) = match &stored {
            Some(s) => (s.as_str(), true),
            None => (DECOY.as_str(), false),
        };
        matches(&password, phc) && real
    })
    .await
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
    async fn hashes_verify_and_are_salted_argon2id() -> Result<(), Busy> {
        let a = hash("correct horse battery".into()).await?;
        let b = hash("correct horse battery".into()).await?;
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        assert!(verify("correct horse battery".into(), Some(a.clone())).await?);
        assert!(!verify("correct horse battery!".into(), Some(a)).await?);
        assert!(!verify("no account has this password".into(), None).await?);
        assert!(!verify("x".into(), Some("not a hash".into())).await?);
        Ok(())
    }

    /// The reused-memory hash is Argon2's own: each checks the other's PHC strings, also
    /// with other parameters than ours.
    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crate() -> Result<(), Busy> {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash("correct horse battery".into()).await?;
        let parsed = PasswordHash::new(&ours).expect("a PHC string");
        assert!(
            argon2()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        let salt = SaltString::encode_b64(b"sixteen byte salt").expect("salt");
        for params in [
            Params::new(MEMORY_KIB, PASSES, LANES, None),
            Params::new(8 * 1024, 3, 2, None),
            Params::new(32 * 1024, 1, 1, Some(16)),
        ] {
            let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.expect("params"));
            let theirs = argon
                .hash_password(b"tr0ub4dor&3 horse", &salt)
                .expect("hash")
                .to_string();
            assert!(verify("tr0ub4dor&3 horse".into(), Some(theirs.clone())).await?);
            assert!(!verify("tr0ub4dor&3 house".into(), Some(theirs)).await?);
        }
        Ok(())
    }

    /// One running, two waiting: the fourth caller is refused at once, and once the work is
    /// done the pool takes callers again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_pool_refuses_at_once() {
        let pool = Arc::new(Pool::new(1, 2));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let blocked = {
            let (pool, gate) = (pool.clone(), gate.clone());
            tokio::spawn(async move {
                pool.run(move || gate.lock().map(|g| g.recv().is_ok()).unwrap_or(false))
                    .await
            })
        };
        while pool.running.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.run(|| true).await })
            })
            .collect();
        while pool.waiting.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            pool.run(|| true).await,
            Err(Busy),
            "refused without waiting"
        );
        release.send(()).expect("the blocked work listens");
        assert_eq!(blocked.await.expect("joined"), Ok(true));
        for w in waiters {
            assert_eq!(w.await.expect("joined"), Ok(true));
        }
        assert_eq!(pool.waiting.load(Ordering::SeqCst), 0);
        assert_eq!(pool.most_running.load(Ordering::SeqCst), 1);
        assert_eq!(pool.run(|| true).await, Ok(true));
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
