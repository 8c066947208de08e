//! A login window cleared (by a successful login) while another attempt, refused at the
//! limit, reads it: the attempt is answered (counted afresh or refused), never a store error.
//! On PostgreSQL the refusal once read the window on its own after counting failed, and found
//! nothing when a success on another connection had cleared it in between: a `503` for a
//! right password.

use chrono::{Duration, Utc};
use realnet::store::Attempt;
use realnet_tests::{StoreKind, on_every_store};

async fn a_window_cleared_meanwhile_is_never_an_error(kind: StoreKind) {
    let store = realnet_tests::store(kind).await.store;
    let key = format!("race-{}", uuid::Uuid::now_v7().simple());
    let rounds = if kind == StoreKind::Dynamodb { 40 } else { 300 };
    let (mut counted, mut refused) = (0, 0);
    for _ in 0..rounds {
        let now = Utc::now();
        let start = now - Duration::minutes(15);
        // The window is full (a limit of one) ...
        store
            .count_attempt(&key, 1, now, start)
            .await
            .expect("count");
        // ... and a success clears it while the next attempt is refused.
        let (attempt, cleared) = tokio::join!(
            store.count_attempt(&key, 1, now, start),
            store.clear_attempts(&key)
        );
        cleared.expect("clear");
        match attempt.expect("an attempt is counted or refused, never an error") {
            Attempt::Counted { .. } => counted += 1,
            Attempt::Refused { .. } => refused += 1,
        }
        store.clear_attempts(&key).await.expect("clear");
    }
    assert_eq!(counted + refused, rounds);
}

on_every_store!(a_window_cleared_meanwhile_is_never_an_error);
