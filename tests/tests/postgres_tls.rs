//! The PostgreSQL store over TLS: `tests/run` serves the test cluster over TLS only, with a
//! certificate from a throwaway CA, as managed databases (Amazon RDS) do.

use realnet::store::{ItemStore, PostgresStore, StoreError, postgres_tls};
use realnet_tests::{pg_ca, pg_client, pg_config};

fn ca() -> std::path::PathBuf {
    pg_ca().expect("REALNET_TEST_PG_CA is not set: run the tests with tests/run, which serves PostgreSQL over TLS")
}

#[tokio::test]
async fn connections_use_tls_verified_against_the_configured_ca() {
    let client = pg_client(&pg_config()).await;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    assert!(row.get::<_, bool>(0), "the connection is encrypted");
    let store = PostgresStore::new(pg_config(), 1, Some(&ca())).expect("pool");
    store.migrate().await.expect("the store connects over TLS");
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_refused() {
    let store = PostgresStore::new(pg_config(), 1, None).expect("pool");
    match store.migrate().await {
        // The message says what to do about it.
        Err(StoreError::Unavailable(m)) => {
            assert!(m.contains("UnknownIssuer"), "{m}");
            assert!(m.contains("REALNET_DB_CA_FILE"), "{m}");
            assert!(m.contains("sslmode=disable"), "{m}");
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }
}

#[test]
fn a_ca_file_that_is_not_pem_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate").expect("write");
    // A file without any certificate adds nothing; one with a broken certificate is an error.
    std::fs::write(
        &path,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    match postgres_tls(Some(&path)) {
        Err(StoreError::Unavailable(m)) => assert!(m.contains("REALNET_DB_CA_FILE"), "{m}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a broken certificate was accepted"),
    }
}
