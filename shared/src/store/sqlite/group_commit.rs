//! SQLite group commit: concurrent write requests are handed to one writer thread, which
//! commits them in groups, one transaction a group, each request of several writes in its own
//! savepoint. A request that is refused (a stale version, a taken username, a missing parent)
//! rolls back to its savepoint and fails alone; the others of its group commit. A request of
//! one write (most creates and updates) needs no savepoint: every write is one statement,
//! which either fails before it changes anything (a version or existence check) or is backed
//! out by SQLite itself when a constraint fails (it aborts the statement, not the
//! transaction), so it skips the savepoint's statements and the copies of every page it
//! touches that a savepoint journals. A commit that fails
//! fails the whole group, and nothing of it is written; so does a request that made SQLite
//! roll the whole transaction back (a full disk, an I/O error, no memory: SQLite may answer
//! those so), which leaves the group's other requests unrun, not run outside a transaction. One transaction for many requests
//! writes each index page it touches once, not once a request, which is where SQLite spends a
//! small write's time.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{apply_one, backend};
use crate::store::{StoreError, Write};

/// The most requests one transaction commits.
const MAX_GROUP: usize = 64;

/// One request waiting for the writer.
struct Pending {
    org: String,
    writes: Vec<Write>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Where write requests are queued for the writer thread.
#[derive(Clone)]
pub(super) struct GroupCommit {
    queue: Sender<Pending>,
}

impl GroupCommit {
    /// Starts the writer on `conn` (shared with the store's other writes, which take the same
    /// lock); it stops once every handle is dropped.
    pub(super) fn start(conn: Arc<Mutex<Connection>>) -> Result<GroupCommit, StoreError> {
        let (queue, pending) = channel();
        std::thread::Builder::new()
            .name("realnet-sqlite-writer".into())
            .spawn(move || commit_groups(&conn, &pending))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the SQLite writer: {e}")))?;
        Ok(GroupCommit { queue })
    }

    /// Applies `writes` in order, all or nothing, in the next group.
    pub(super) async fn apply(&self, org: &str, writes: &[Write]) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Pending {
                org: org.to_string(),
                writes: writes.to_vec(),
                done,
            })
            .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the SQLite writer dropped a request".into()))?
    }
}

fn commit_groups(conn: &Mutex<Connection>, pending: &Receiver<Pending>) {
    while let Ok(first) = pending.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match pending.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
        let outcomes = commit(conn, &group);
        for (p, outcome) in group.into_iter().zip(outcomes) {
            // A request whose caller went away needs no answer.
            let _ = p.done.send(outcome);
        }
    }
}

/// Commits `group` in one transaction; the outcome of each request, in order.
fn commit(conn: &Mutex<Connection>, group: &[Pending]) -> Vec<Result<(), StoreError>> {
    let all = |e: &dyn Fn() -> StoreError| group.iter().map(|_| Err(e())).collect();
    let Ok(mut conn) = conn.lock() else {
        return all(&|| StoreError::Backend("a previous SQLite call panicked".into()));
    };
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let message = e.to_string();
            return all(&|| StoreError::Backend(message.clone()));
        }
    };
    let mut outcomes = Vec::with_capacity(group.len());
    for p in group {
        let outcome = match p.writes.as_slice() {
            [write] => apply_one(&tx, &p.org, write),
            writes => (|| {
                // Dropped without a commit, a savepoint rolls back what it wrote.
                let savepoint = tx.savepoint().map_err(backend)?;
                for w in writes {
                    apply_one(&savepoint, &p.org, w)?;
                }
                savepoint.commit().map_err(backend)
            })(),
        };
        if outcome.is_err() && tx.is_autocommit() {
            let message = format!(
                "SQLite rolled back the transaction of this write and of the writes committed with it: {}",
                outcome.err().map(|e| e.to_string()).unwrap_or_default()
            );
            return all(&|| StoreError::Backend(message.clone()));
        }
        outcomes.push(outcome);
    }
    match tx.commit() {
        Ok(()) => outcomes,
        Err(e) => {
            let message = e.to_string();
            all(&|| StoreError::Backend(message.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::{Map, Value};
    use uuid::Uuid;

    use super::*;
    use crate::item::Item;
    use crate::store::ItemStore;
    use crate::store::sqlite::SqliteStore;

    fn folder(size: usize) -> Item {
        let mut attributes = Map::new();
        attributes.insert("note".into(), Value::String("x".repeat(size)));
        Item::sample("Folder", &format!("f{size}"), attributes)
    }

    /// A database that fills up mid-group (SQLite rolls the whole transaction back when a
    /// lone insert, which has no statement journal, meets a full database): every request
    /// answered `Ok` is in the database and none answered with an error is, whatever SQLite
    /// rolled back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_database_fails_requests_without_landing_them() {
        let dir = std::env::temp_dir().join(format!("realnet-full-{}", Uuid::now_v7()));
        let store = SqliteStore::open(&dir.join("db.sqlite")).expect("open");
        store
            .with(|c| {
                let pages: i64 = c
                    .query_row("PRAGMA page_count", [], |r| r.get(0))
                    .map_err(backend)?;
                c.execute_batch(&format!("PRAGMA max_page_count = {}", pages + 40))
                    .map_err(backend)
            })
            .expect("limit the database's size");
        let mut answered = Vec::new();
        let mut full = false;
        for round in 0..40 {
            let mut tasks = tokio::task::JoinSet::new();
            for n in 0..32 {
                // Large and small items, so that what a rollback frees has room for a small one.
                let item = folder(if (round + n) % 3 == 0 { 6_000 } else { 50 });
                let store = store.clone();
                tasks.spawn(async move {
                    let outcome = store.apply("acme", &[Write::Create(item.clone())]).await;
                    (item.id, outcome)
                });
            }
            while let Some(done) = tasks.join_next().await {
                let (id, outcome) = done.expect("task");
                full |= outcome.is_err();
                answered.push((id, outcome.is_ok()));
            }
            if full && round > 2 {
                break;
            }
        }
        assert!(full, "the database never filled up");
        store
            .with(|c| {
                c.execute_batch("PRAGMA max_page_count = 1073741823")
                    .map_err(backend)
            })
            .expect("lift the limit");
        let stored: HashSet<String> = store
            .with(|c| {
                let mut statement = c.prepare("SELECT id FROM items").map_err(backend)?;
                let ids = statement
                    .query_map([], |r| r.get::<_, String>(0))
                    .map_err(backend)?
                    .collect::<Result<_, _>>()
                    .map_err(backend)?;
                Ok(ids)
            })
            .expect("read the ids");
        for (id, ok) in &answered {
            assert_eq!(
                stored.contains(&id.to_string()),
                *ok,
                "a request answered {} must {}be in the database",
                if *ok { "Ok" } else { "with an error" },
                if *ok { "" } else { "not " },
            );
        }
        // The store still takes writes once there is room.
        store
            .apply("acme", &[Write::Create(folder(10))])
            .await
            .expect("a write after the database had room again");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
