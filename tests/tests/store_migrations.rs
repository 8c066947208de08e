//! Migrations over data an earlier version wrote. Before `Extension` names were unique in an
//! org (an index on the SQL stores, a name claim on DynamoDB), two items could share a name:
//! the migration that makes them unique stops where two do, naming them and saying what to do,
//! changes nothing, and runs once they are renamed; on DynamoDB it also claims the names of
//! the items written without a claim.

use aws_sdk_dynamodb::types::AttributeValue;
use realnet::item::Item;
use realnet::store::{DynamoStore, ItemStore, PostgresStore, SqliteStore, StoreError, Write};
use realnet_tests::contract::{ORG, item};
use realnet_tests::{aws_endpoint, fresh_pg_schema, pg_ca, pg_client, registry};
use serde_json::json;

fn extension(name: &str) -> Item {
    item(
        "Extension",
        name,
        None,
        json!({"kind": "webhook", "url": "https://hooks.example.com/crm"}),
    )
}

/// What the migration says of `pricing` given twice.
fn assert_names_the_duplicates(e: &StoreError) {
    let message = e.to_string();
    let named = format!("2 named \"pricing\" in org {ORG:?}");
    assert!(
        message.contains(&named) && message.contains("rename"),
        "{message}"
    );
}

#[tokio::test]
async fn sqlite_stops_on_duplicate_extension_names_until_they_are_renamed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("realnet.db");
    let (first, second) = (extension("pricing"), extension("billing"));
    {
        let store = SqliteStore::open(&path).expect("open");
        store
            .apply(
                ORG,
                &[Write::Create(first.clone()), Write::Create(second.clone())],
            )
            .await
            .expect("two extensions");
    }
    // The database as the version before the migration left it: no index, and a name twice.
    let sql = rusqlite::Connection::open(&path).expect("open the file");
    sql.execute_batch(&format!(
        "DROP INDEX items_extension_name; DELETE FROM realnet_migrations WHERE version >= 6;
         UPDATE items SET name = 'pricing' WHERE id = '{}';",
        second.id
    ))
    .expect("the older database");

    let Err(e) = SqliteStore::open(&path) else {
        panic!("the migration stops");
    };
    assert_names_the_duplicates(&e);
    let versions: i64 = sql
        .query_row("SELECT COUNT(*) FROM realnet_migrations", [], |r| r.get(0))
        .expect("count");
    assert_eq!(versions, 5, "the migration did not run");

    sql.execute(
        "UPDATE items SET name = 'billing' WHERE id = ?1",
        [second.id.to_string()],
    )
    .expect("rename");
    let store = SqliteStore::open(&path).expect("the migration runs once they differ");
    let again = store
        .apply(ORG, &[Write::Create(extension("pricing"))])
        .await;
    assert!(matches!(again, Err(StoreError::Taken(_))), "{again:?}");
}

#[tokio::test]
async fn postgres_stops_on_duplicate_extension_names_until_they_are_renamed() {
    let config = fresh_pg_schema().await;
    let open = || PostgresStore::new(config.clone(), 2, pg_ca().as_deref()).expect("pool");
    let (first, second) = (extension("pricing"), extension("billing"));
    open()
        .apply(
            ORG,
            &[Write::Create(first.clone()), Write::Create(second.clone())],
        )
        .await
        .expect("two extensions");
    let sql = pg_client(&config).await;
    sql.batch_execute(&format!(
        "DROP INDEX items_extension_name; DELETE FROM realnet_migrations WHERE version >= 6;
         UPDATE items SET name = 'pricing' WHERE id = '{}';",
        second.id
    ))
    .await
    .expect("the older database");

    let e = open().migrate().await.expect_err("the migration stops");
    assert_names_the_duplicates(&e);
    let versions: i64 = sql
        .query_one("SELECT COUNT(*) FROM realnet_migrations", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(versions, 5, "the migration did not run");

    sql.execute(
        "UPDATE items SET name = 'billing' WHERE id = $1",
        &[&second.id],
    )
    .await
    .expect("rename");
    let store = open();
    store
        .migrate()
        .await
        .expect("the migration runs once they differ");
    let again = store
        .apply(ORG, &[Write::Create(extension("pricing"))])
        .await;
    assert!(matches!(again, Err(StoreError::Taken(_))), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_claims_older_extension_names_and_stops_on_duplicates() {
    aws_endpoint();
    let table = format!("realnet-test-{}", uuid::Uuid::now_v7().simple());
    let open = || DynamoStore::new(&table).with_types(&registry());
    let store = open();
    store.migrate().await.expect("create the table");
    let (first, second) = (extension("pricing"), extension("billing"));
    store
        .apply(
            ORG,
            &[Write::Create(first.clone()), Write::Create(second.clone())],
        )
        .await
        .expect("two extensions");
    // The table as the version before name claims left it: items without claims, a name
    // twice, and no record of the claims being made.
    let client = aws_sdk_dynamodb::Client::new(&realnet::aws::sdk_config().await);
    let s = |v: &str| AttributeValue::S(v.to_string());
    for (pk, sk) in [
        (ORG.to_string(), "X#pricing".to_string()),
        (ORG.to_string(), "X#billing".to_string()),
        (
            "SETTING#dynamodb.extension_claims".to_string(),
            "SETTING".to_string(),
        ),
    ] {
        client
            .delete_item()
            .table_name(&table)
            .key("pk", s(&pk))
            .key("sk", s(&sk))
            .send()
            .await
            .expect("delete a claim");
    }
    let rename = |name: &'static str| {
        client
            .update_item()
            .table_name(&table)
            .key("pk", s(ORG))
            .key("sk", s(&format!("I#{}", second.id)))
            .update_expression("SET #name = :n")
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":n", s(name))
            .send()
    };
    rename("pricing").await.expect("the older table");

    let e = open().migrate().await.expect_err("the migration stops");
    assert_names_the_duplicates(&e);
    let claim = client
        .get_item()
        .table_name(&table)
        .key("pk", s(ORG))
        .key("sk", s("X#pricing"))
        .send()
        .await
        .expect("get");
    assert!(claim.item.is_none(), "nothing was claimed");

    rename("billing").await.expect("rename");
    open()
        .migrate()
        .await
        .expect("the migration runs once they differ");
    for name in ["pricing", "billing"] {
        let again = store.apply(ORG, &[Write::Create(extension(name))]).await;
        assert!(
            matches!(again, Err(StoreError::Taken(_))),
            "{name}: {again:?}"
        );
    }
}
