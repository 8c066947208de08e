//! Deleting an item on the SQL stores costs what the item has, not what the store holds: the
//! foreign key from `parent` makes every delete look for the item's children by `parent`
//! alone, and before migration 7 no index served that, so each delete read every item of the
//! installation (10 ms a delete at 200,000 items). SQLite's side is a unit test of its schema
//! (`store::sqlite::tests::a_delete_scans_no_table`); this is PostgreSQL's.

use realnet::store::{ItemStore, PostgresStore, Write};
use realnet_tests::contract::{ORG, item};
use realnet_tests::{fresh_pg_schema, pg_ca, pg_client};
use serde_json::json;

#[tokio::test]
async fn postgres_finds_the_children_of_a_deleted_item_by_index() {
    let config = fresh_pg_schema().await;
    let store = PostgresStore::new(config.clone(), 2, pg_ca().as_deref()).expect("pool");
    let parent = item("Company", "Parent", None, json!({}));
    let child = item("Contact", "Child", Some(parent.id), json!({}));
    store
        .apply(
            ORG,
            &[Write::Create(parent.clone()), Write::Create(child.clone())],
        )
        .await
        .expect("a parent and a child");
    let sql = pg_client(&config).await;
    // Enough other items, with statistics, that a scan would be the planner's last choice.
    sql.batch_execute(
        "INSERT INTO items (id, org, type, name, parent, owner, attributes, search, version, created_at, updated_at)
         SELECT gen_random_uuid(), 'other', 'Company', 'c' || n, NULL, NULL, '{}', '', 1, now(), now()
         FROM generate_series(1, 20000) AS n;
         ANALYZE items;",
    )
    .await
    .expect("the other items");

    for (deleted, id) in [("the child", child.id), ("the parent", parent.id)] {
        // The foreign key's own check of children, as PostgreSQL runs it on a delete.
        let plan: Vec<String> = sql
            .query(
                "EXPLAIN SELECT 1 FROM ONLY items x WHERE $1 = parent FOR KEY SHARE OF x",
                &[&id],
            )
            .await
            .expect("the plan")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(
            !plan.iter().any(|step| step.contains("Seq Scan")),
            "looking for the children of {deleted} scans every item: {plan:#?}"
        );
        store
            .apply(
                ORG,
                &[Write::Delete {
                    id,
                    expected_version: 1,
                }],
            )
            .await
            .unwrap_or_else(|e| panic!("deleting {deleted}: {e}"));
    }
    assert!(store.get(ORG, parent.id).await.expect("read").is_none());
}
