//! What only DynamoDB limits: one transaction takes at most 100 records, so a recursive delete
//! of a larger subtree is refused as a conflict that says what to do, and deletes nothing; and
//! lists of the whole org need the `by_created` index, which `migrate` adds to older tables.

use axum::http::{Method, StatusCode};
use realnet_tests::{StoreKind, TestApp};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subtree_too_large_for_one_transaction_is_refused_whole() {
    let app = TestApp::new(StoreKind::Dynamodb).await;
    let root = app.create(json!({"type": "Folder", "name": "big"})).await;
    let root_id = root["id"].as_str().expect("id").to_string();
    for n in 0..100 {
        app.create(json!({"type": "Folder", "name": format!("child {n}"), "parent": root_id}))
            .await;
    }
    let before = app.snapshot().await;
    let refused = app
        .call(
            Method::DELETE,
            &format!("/api/items/{root_id}?recursive=true"),
            None,
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert!(refused.text.contains("in parts"), "{}", refused.text);
    assert_eq!(app.snapshot().await, before, "nothing was deleted");
}

/// A table made before `by_created` gets it from `migrate`, filled with the items already
/// there, and lists of the whole org work on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_an_older_table_adds_the_org_index() {
    use aws_sdk_dynamodb::types::{DeleteGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate};
    use realnet::store::{DynamoStore, ItemStore, Write};
    realnet_tests::aws_endpoint();
    let table = format!("realnet-test-{}", uuid::Uuid::now_v7().simple());
    let store = DynamoStore::new(&table);
    store.migrate().await.expect("create the table");
    let mut ids = Vec::new();
    for n in 0..3 {
        let item = realnet_tests::contract::item("Folder", &format!("f{n}"), None, json!({}));
        ids.push(item.id);
        store
            .apply("acme", &[Write::Create(item)])
            .await
            .expect("create");
    }
    // Make it an older table: without the index.
    let client = aws_sdk_dynamodb::Client::new(&realnet::aws::sdk_config().await);
    let drop = DeleteGlobalSecondaryIndexAction::builder()
        .index_name("by_created")
        .build()
        .expect("action");
    client
        .update_table()
        .table_name(&table)
        .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().delete(drop).build())
        .send()
        .await
        .expect("drop the index");
    let has_index = || async {
        client
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .expect("describe")
            .table
            .and_then(|t| t.global_secondary_indexes)
            .unwrap_or_default()
            .iter()
            .any(|i| i.index_name() == Some("by_created"))
    };
    assert!(!has_index().await);

    store.migrate().await.expect("migrate adds the index");
    assert!(has_index().await);
    let page = store
        .query("acme", &realnet_tests::query(&[("limit", "2")]))
        .await
        .expect("query");
    let got: Vec<_> = page.items.iter().map(|i| i.id).collect();
    assert_eq!(got, ids[..2].to_vec());
    assert!(page.next.is_some());
    store.migrate().await.expect("migrating again is harmless");
}

/// With a small read budget, pages end short, and every match still comes once (the contract
/// check that also runs on every store at the default budget).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgeted_pages_are_short_and_miss_nothing() {
    let s = realnet_tests::store(StoreKind::Dynamodb).await;
    let realnet::config::DbConfig::Dynamodb { table, .. } = &s.db else {
        panic!("a DynamoDB store");
    };
    let store = realnet::store::DynamoStore::new(table)
        .with_page_reads(10)
        .with_types(&realnet_tests::registry());
    let short = realnet_tests::contract::pages_may_be_short_but_miss_nothing(&store).await;
    assert!(short > 0, "a budget of 10 records makes some pages short");
    // Index reads within the same budget: runs of equal values, segments, cursors.
    realnet_tests::contract::indexed_filters_and_sorts_page_exactly(&store).await;
    realnet_tests::contract::readable_owners_and_subtrees_page_exactly(&store).await;
}

/// Children written when `by_parent` sorted by id (`gsi2sk = <id>`) are rewritten once by
/// `migrate` (a change of index layout), after which a folder's children page in creation
/// order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_an_older_table_sorts_children_by_creation() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use realnet::store::Write;
    let s = realnet_tests::store(StoreKind::Dynamodb).await;
    let realnet::config::DbConfig::Dynamodb { table, .. } = &s.db else {
        panic!("a DynamoDB store");
    };
    let folder = realnet_tests::contract::item("Folder", "box", None, json!({}));
    s.store
        .apply("acme", &[Write::Create(folder.clone())])
        .await
        .expect("create");
    // Ids in one order, creation times in the other.
    let mut children = Vec::new();
    for n in 0..3 {
        let mut child =
            realnet_tests::contract::item("Folder", &format!("c{n}"), Some(folder.id), json!({}));
        child.created_at = chrono::Utc::now() - chrono::Duration::seconds(n);
        child.updated_at = child.created_at;
        s.store
            .apply("acme", &[Write::Create(child.clone())])
            .await
            .expect("create");
        children.push(child);
    }
    let client = aws_sdk_dynamodb::Client::new(&realnet::aws::sdk_config().await);
    for child in &children {
        client
            .update_item()
            .table_name(table)
            .key("pk", AttributeValue::S("acme".into()))
            .key("sk", AttributeValue::S(format!("I#{}", child.id)))
            .update_expression("SET gsi2sk = :id")
            .expression_attribute_values(":id", AttributeValue::S(child.id.to_string()))
            .send()
            .await
            .expect("write an older key");
    }
    s.store
        .put_setting("dynamodb.index_layout", "an older layout")
        .await
        .expect("an older table");
    s.store.migrate().await.expect("migrate rewrites the keys");
    let parent = folder.id.to_string();
    let page = s
        .store
        .query("acme", &realnet_tests::query(&[("parent", &parent)]))
        .await
        .expect("query");
    let got: Vec<_> = page.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(got, ["c2", "c1", "c0"], "creation order");
    assert_ne!(
        s.store
            .setting("dynamodb.index_layout", "")
            .await
            .expect("setting"),
        "an older layout"
    );
}

/// Items written before a field was declared indexed get its index keys from `migrate`, so
/// the index serves them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declaring_a_field_indexed_reindexes_the_items_already_there() {
    use realnet::store::{DynamoStore, ItemStore, Write};
    let s = realnet_tests::store(StoreKind::Dynamodb).await;
    let realnet::config::DbConfig::Dynamodb { table, .. } = &s.db else {
        panic!("a DynamoDB store");
    };
    // A deployment whose types declared nothing indexed.
    let before = DynamoStore::new(table);
    before.migrate().await.expect("migrate");
    let company = uuid::Uuid::now_v7().to_string();
    let mut won = Vec::new();
    for n in 0..4 {
        let stage = if n % 2 == 0 { "won" } else { "lost" };
        let deal = realnet_tests::contract::item(
            "Deal",
            &format!("d{n}"),
            None,
            json!({"company": company, "stage": stage}),
        );
        if stage == "won" {
            won.push(deal.id);
        }
        before
            .apply("acme", &[Write::Create(deal)])
            .await
            .expect("create");
    }
    let after = DynamoStore::new(table).with_types(&realnet_tests::registry());
    after.migrate().await.expect("migrate rewrites the keys");
    let page = after
        .query(
            "acme",
            &realnet_tests::query(&[("type", "Deal"), ("attr.stage", "won")]),
        )
        .await
        .expect("query");
    let got: Vec<_> = page.items.iter().map(|i| i.id).collect();
    assert_eq!(got, won);
}

/// A filter no key serves runs at DynamoDB (`FilterExpression`): over many records, one that
/// matches nothing gets nothing back, its pages end short at the read budget with their cursor
/// set, and looping reads each record about once; one that matches a few finds each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_matching_nothing_gives_short_pages_of_bounded_reads() {
    use realnet::store::{DynamoStore, ItemStore};
    let s = realnet_tests::store(StoreKind::Dynamodb).await;
    let realnet::config::DbConfig::Dynamodb { table, .. } = &s.db else {
        panic!("a DynamoDB store");
    };
    const RECORDS: usize = 1200;
    const BUDGET: usize = 100;
    let store = DynamoStore::new(table)
        .with_page_reads(BUDGET)
        .with_types(&realnet_tests::registry());
    let companies: Vec<_> = (0..RECORDS)
        .map(|n| {
            realnet_tests::contract::item(
                "Company",
                &format!("co {n}"),
                None,
                json!({"employees": n, "domain": format!("d{n}.example")}),
            )
        })
        .collect();
    store.bulk_load("acme", &companies).await.expect("seed");

    for (params, want) in [
        (vec![("attr.employees.gt", "100000")], vec![]),
        (vec![("attr.domain", "nowhere")], vec![]),
        (
            vec![("attr.employees.gte", "1195")],
            companies[1195..].iter().map(|c| c.id).collect::<Vec<_>>(),
        ),
        (
            vec![("attr.employees.in", "7,700")],
            vec![companies[7].id, companies[700].id],
        ),
    ] {
        let mut q = realnet_tests::query(
            &[[("type", "Company"), ("limit", "50")].as_slice(), &params].concat(),
        );
        let (mut got, mut pages) = (Vec::new(), 0);
        let (read_before, returned_before) = (store.records_read(), store.records_returned());
        loop {
            let read = store.records_read();
            let page = store.query("acme", &q).await.expect("query");
            pages += 1;
            let this_page = store.records_read() - read;
            assert!(
                this_page as usize <= BUDGET + 1,
                "{params:?}: page {pages} read {this_page} records (budget {BUDGET})"
            );
            got.extend(page.items.iter().map(|i| i.id));
            match page.next {
                Some(next) => q.after = Some(next),
                None => break,
            }
            assert!(pages <= 2 * RECORDS / BUDGET, "{params:?}: {pages} pages");
        }
        assert_eq!(got, want, "{params:?}: every match once, in creation order");
        let read = store.records_read() - read_before;
        let returned = store.records_returned() - returned_before;
        assert!(
            read as usize <= RECORDS + pages,
            "{params:?}: {read} records read over {pages} pages"
        );
        assert!(
            pages >= RECORDS / BUDGET,
            "{params:?}: short pages end at the budget ({pages} pages)"
        );
        assert!(
            returned as usize <= want.len() + pages,
            "{params:?}: DynamoDB sent back {returned} records for {} matches",
            want.len()
        );
    }
}

/// Records written before attributes were kept as their own (no `fv` marker) pass the
/// `FilterExpression` and are filtered in the page; `migrate` then rewrites them once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_written_before_filterable_attributes_are_still_filtered() {
    use realnet::store::{DynamoStore, ItemStore, Write};
    let s = realnet_tests::store(StoreKind::Dynamodb).await;
    let realnet::config::DbConfig::Dynamodb { table, .. } = &s.db else {
        panic!("a DynamoDB store");
    };
    let store = DynamoStore::new(table).with_types(&realnet_tests::registry());
    let mut big = Vec::new();
    for n in 0..6 {
        let employees = if n % 2 == 0 { 500 } else { 5 };
        let c = realnet_tests::contract::item(
            "Company",
            &format!("co {n}"),
            None,
            json!({"employees": employees}),
        );
        if employees == 500 {
            big.push(c.id);
        }
        store
            .apply("acme", &[Write::Create(c.clone())])
            .await
            .expect("create");
        if n < 4 {
            strip_filterable(table, "acme", c.id).await;
        }
    }
    let q = realnet_tests::query(&[("type", "Company"), ("attr.employees.gte", "100")]);
    let got: Vec<_> = store
        .query("acme", &q)
        .await
        .expect("query")
        .items
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(got, big, "old and new records filtered alike");

    store
        .put_setting("dynamodb.index_layout", "v3;before")
        .await
        .expect("an older layout");
    store.migrate().await.expect("migrate rewrites the records");
    let client = aws_sdk_dynamodb::Client::new(&realnet::aws::sdk_config().await);
    let record = client
        .get_item()
        .table_name(table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("acme".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("I#{}", big[0])),
        )
        .send()
        .await
        .expect("get")
        .item
        .expect("the record");
    assert!(
        record.contains_key("fv") && record.contains_key("a.employees"),
        "{record:?}"
    );
    let got: Vec<_> = store
        .query("acme", &q)
        .await
        .expect("query")
        .items
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(got, big);
}

/// Makes the record of `id` look as written before filterable attributes.
async fn strip_filterable(table: &str, org: &str, id: uuid::Uuid) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let client = aws_sdk_dynamodb::Client::new(&realnet::aws::sdk_config().await);
    client
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S(org.into()))
        .key("sk", AttributeValue::S(format!("I#{id}")))
        .update_expression("REMOVE fv, #a")
        .expression_attribute_names("#a", "a.employees")
        .send()
        .await
        .expect("strip the attributes");
}
