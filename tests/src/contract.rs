//! The `ItemStore` contract: what every store must do, checked the same way on each (see
//! `tests/tests/store_contract.rs`). Each check takes a fresh, migrated store.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use realnet::item::{Item, now};
use realnet::store::{Attempt, ItemStore, StoreError, Write};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::query;

/// The org the contract's items belong to.
pub const ORG: &str = "acme";

type Params<'a> = Vec<(&'a str, &'a str)>;
type Order = Box<dyn Fn(&Item, &Item) -> std::cmp::Ordering>;
/// Which items a filtered query should return.
type Keep = Box<dyn Fn(&Item) -> bool>;
const OTHER: &str = "globex";

fn attrs(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

pub fn item(type_name: &str, name: &str, parent: Option<Uuid>, attributes: Value) -> Item {
    let at = now();
    Item {
        id: Uuid::now_v7(),
        type_name: type_name.to_string(),
        name: name.to_string(),
        parent,
        org: ORG.to_string(),
        owner: None,
        attributes: attrs(attributes),
        version: 1,
        created_at: at,
        updated_at: at,
    }
}

async fn put(store: &dyn ItemStore, org: &str, item: &Item) {
    store
        .apply(org, &[Write::Create(item.clone())])
        .await
        .expect("create");
}

/// Every page of `params`, followed through the cursor positions.
async fn all_pages(store: &dyn ItemStore, params: &[(&str, &str)]) -> Vec<Item> {
    let mut q = query(params);
    let mut out = Vec::new();
    loop {
        let page = store.query(ORG, &q).await.expect("query");
        assert!(page.items.len() <= q.limit);
        out.extend(page.items);
        match page.next {
            Some(p) => q.after = Some(p),
            None => return out,
        }
    }
}

fn names(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.name.as_str()).collect()
}

pub async fn create_then_get_round_trips(store: &dyn ItemStore) {
    let folder = item("Folder", "Docs", None, json!({"description": "d"}));
    put(store, ORG, &folder).await;
    let mut deal = item(
        "Deal",
        "Big deal",
        Some(folder.id),
        json!({"company": Uuid::now_v7().to_string(), "amount": 12.5, "stage": "won",
               "close_date": "2026-01-02T03:04:05.000000Z", "meta": {"a": [1, 2]}}),
    );
    deal.owner = Some(Uuid::now_v7());
    put(store, ORG, &deal).await;
    assert_eq!(store.get(ORG, deal.id).await.expect("get"), Some(deal));
    assert_eq!(store.get(ORG, Uuid::now_v7()).await.expect("get"), None);
}

pub async fn everything_is_scoped_by_org(store: &dyn ItemStore) {
    let mine = item("Folder", "Mine", None, json!({}));
    put(store, ORG, &mine).await;
    let mut theirs = item("Folder", "Theirs", None, json!({}));
    theirs.org = OTHER.to_string();
    put(store, OTHER, &theirs).await;

    assert_eq!(store.get(OTHER, mine.id).await.expect("get"), None);
    assert_eq!(names(&all_pages(store, &[]).await), vec!["Mine"]);
    let mut changed = theirs.clone();
    changed.version = 2;
    let err = store
        .apply(
            ORG,
            &[Write::Update {
                item: changed,
                expected_version: 1,
            }],
        )
        .await
        .expect_err("cross-org update");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .apply(
            ORG,
            &[Write::Delete {
                id: theirs.id,
                expected_version: theirs.version,
            }],
        )
        .await
        .expect_err("cross-org delete");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(store.get(OTHER, theirs.id).await.expect("get").is_some());
    assert!(
        store
            .ancestors(ORG, theirs.id, 64)
            .await
            .expect("ancestors")
            .is_empty()
    );
}

pub async fn updates_are_conditional_on_the_version(store: &dyn ItemStore) {
    let original = item("Folder", "v1", None, json!({}));
    put(store, ORG, &original).await;
    let mut v2 = original.clone();
    v2.name = "v2".into();
    v2.version = 2;
    v2.updated_at = now();
    store
        .apply(
            ORG,
            &[Write::Update {
                item: v2.clone(),
                expected_version: 1,
            }],
        )
        .await
        .expect("update at the current version");
    assert_eq!(
        store.get(ORG, original.id).await.expect("get"),
        Some(v2.clone())
    );

    let mut stale = original.clone();
    stale.name = "stale".into();
    stale.version = 2;
    let err = store
        .apply(
            ORG,
            &[Write::Update {
                item: stale,
                expected_version: 1,
            }],
        )
        .await
        .expect_err("stale version");
    assert!(
        matches!(
            err,
            StoreError::VersionConflict {
                expected: 1,
                actual: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.get(ORG, original.id).await.expect("get"), Some(v2));

    let ghost = item("Folder", "ghost", None, json!({}));
    let err = store
        .apply(
            ORG,
            &[Write::Update {
                item: ghost,
                expected_version: 1,
            }],
        )
        .await
        .expect_err("missing item");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

pub async fn writes_apply_all_or_nothing(store: &dyn ItemStore) {
    let existing = item("Folder", "existing", None, json!({}));
    put(store, ORG, &existing).await;
    let fresh = item("Folder", "fresh", None, json!({}));
    let mut stale = existing.clone();
    stale.version = 5;
    let err = store
        .apply(
            ORG,
            &[
                Write::Create(fresh.clone()),
                Write::Update {
                    item: stale,
                    expected_version: 4,
                },
            ],
        )
        .await
        .expect_err("second write fails");
    assert!(matches!(err, StoreError::VersionConflict { .. }), "{err:?}");
    assert_eq!(store.get(ORG, fresh.id).await.expect("get"), None);

    let err = store
        .apply(ORG, &[Write::Create(existing.clone())])
        .await
        .expect_err("duplicate id");
    assert!(
        matches!(err, StoreError::Duplicate(id) if id == existing.id),
        "{err:?}"
    );
}

pub async fn deletes_refuse_children_unless_deleted_first(store: &dyn ItemStore) {
    let root = item("Folder", "root", None, json!({}));
    let child = item("Folder", "child", Some(root.id), json!({}));
    let grandchild = item("Folder", "grandchild", Some(child.id), json!({}));
    let bystander = item("Folder", "bystander", None, json!({}));
    for i in [&root, &child, &grandchild, &bystander] {
        put(store, ORG, i).await;
    }
    let err = store
        .apply(
            ORG,
            &[Write::Delete {
                id: root.id,
                expected_version: root.version,
            }],
        )
        .await
        .expect_err("has children");
    assert!(
        matches!(err, StoreError::HasChildren(id) if id == root.id),
        "{err:?}"
    );
    assert_eq!(all_pages(store, &[]).await.len(), 4);
    let err = store
        .apply(
            ORG,
            &[
                Write::Delete {
                    id: root.id,
                    expected_version: root.version,
                },
                Write::Delete {
                    id: child.id,
                    expected_version: child.version,
                },
                Write::Delete {
                    id: grandchild.id,
                    expected_version: grandchild.version,
                },
            ],
        )
        .await
        .expect_err("parents before their children");
    assert!(matches!(err, StoreError::HasChildren(_)), "{err:?}");
    assert_eq!(all_pages(store, &[]).await.len(), 4, "nothing was deleted");

    // A tree goes in one transaction, deepest first.
    store
        .apply(
            ORG,
            &[
                Write::Delete {
                    id: grandchild.id,
                    expected_version: grandchild.version,
                },
                Write::Delete {
                    id: child.id,
                    expected_version: child.version,
                },
                Write::Delete {
                    id: root.id,
                    expected_version: root.version,
                },
            ],
        )
        .await
        .expect("a tree, deepest first");
    assert_eq!(names(&all_pages(store, &[]).await), vec!["bystander"]);
    store
        .apply(
            ORG,
            &[Write::Delete {
                id: bystander.id,
                expected_version: bystander.version,
            }],
        )
        .await
        .expect("leaf delete");
    let err = store
        .apply(
            ORG,
            &[Write::Delete {
                id: bystander.id,
                expected_version: bystander.version,
            }],
        )
        .await
        .expect_err("already gone");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

pub async fn a_missing_parent_is_refused(store: &dyn ItemStore) {
    let orphan = item("Folder", "orphan", Some(Uuid::now_v7()), json!({}));
    let err = store
        .apply(ORG, &[Write::Create(orphan.clone())])
        .await
        .expect_err("no such parent");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.get(ORG, orphan.id).await.expect("get"), None);
}

/// A delete removes the item only at the version its checks read: one changed since is kept,
/// and the store says which version it is at.
pub async fn deletes_are_conditional_on_the_version(store: &dyn ItemStore) {
    let folder = item("Folder", "changing", None, json!({}));
    put(store, ORG, &folder).await;
    let mut changed = folder.clone();
    changed.name = "changed".into();
    changed.version = 2;
    store
        .apply(
            ORG,
            &[Write::Update {
                item: changed,
                expected_version: 1,
            }],
        )
        .await
        .expect("update");
    let err = store
        .apply(
            ORG,
            &[Write::Delete {
                id: folder.id,
                expected_version: 1,
            }],
        )
        .await
        .expect_err("a delete at the version before the change");
    assert!(
        matches!(
            err,
            StoreError::VersionConflict {
                expected: 1,
                actual: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(store.get(ORG, folder.id).await.expect("get").is_some());
    store
        .apply(
            ORG,
            &[Write::Delete {
                id: folder.id,
                expected_version: 2,
            }],
        )
        .await
        .expect("a delete at the current version");
    assert_eq!(store.get(ORG, folder.id).await.expect("get"), None);
}

/// A parent is an item of the writer's org: another org's item is no parent, for a create or
/// a move, though its id exists.
pub async fn a_parent_in_another_org_is_refused(store: &dyn ItemStore) {
    let mut theirs = item("Folder", "theirs", None, json!({}));
    theirs.org = OTHER.to_string();
    put(store, OTHER, &theirs).await;
    let child = item("Folder", "child", Some(theirs.id), json!({}));
    let err = store
        .apply(ORG, &[Write::Create(child.clone())])
        .await
        .expect_err("a parent of another org");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.get(ORG, child.id).await.expect("get"), None);

    let mine = item("Folder", "mine", None, json!({}));
    put(store, ORG, &mine).await;
    let mut moved = mine.clone();
    moved.parent = Some(theirs.id);
    moved.version = 2;
    let err = store
        .apply(
            ORG,
            &[Write::Update {
                item: moved,
                expected_version: 1,
            }],
        )
        .await
        .expect_err("a move under another org's item");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(
        store
            .get(ORG, mine.id)
            .await
            .expect("get")
            .map(|i| i.parent),
        Some(None)
    );
}

pub async fn ancestors_are_nearest_first(store: &dyn ItemStore) {
    let a = item("Folder", "a", None, json!({}));
    let b = item("Folder", "b", Some(a.id), json!({}));
    let c = item("Folder", "c", Some(b.id), json!({}));
    for i in [&a, &b, &c] {
        put(store, ORG, i).await;
    }
    assert_eq!(
        store.ancestors(ORG, c.id, 64).await.expect("ancestors"),
        vec![b.id, a.id]
    );
    assert!(
        store
            .ancestors(ORG, a.id, 64)
            .await
            .expect("ancestors")
            .is_empty()
    );
}

/// Walks up and down a hierarchy stop at the bound they are given.
pub async fn hierarchy_walks_stop_at_the_bound(store: &dyn ItemStore) {
    let mut chain: Vec<Item> = Vec::new();
    for n in 0..8 {
        let parent = chain.last().map(|p| p.id);
        let i = item("Folder", &format!("level {}", n + 1), parent, json!({}));
        put(store, ORG, &i).await;
        chain.push(i);
    }
    let ids: Vec<Uuid> = chain.iter().map(|i| i.id).collect();
    let deepest = ids[7];
    let up = |max| store.ancestors(ORG, deepest, max);
    assert_eq!(up(64).await.expect("ancestors").len(), 7);
    assert_eq!(up(7).await.expect("ancestors").len(), 7);
    assert_eq!(
        up(3).await.expect("ancestors"),
        vec![ids[6], ids[5], ids[4]],
        "the nearest three"
    );
    assert!(up(0).await.expect("ancestors").is_empty());
    let down = |id, max| store.levels_below(ORG, id, max);
    assert_eq!(down(ids[0], 64).await.expect("levels"), 7);
    assert_eq!(down(ids[0], 4).await.expect("levels"), 4);
    assert_eq!(down(ids[5], 64).await.expect("levels"), 2);
    assert_eq!(down(deepest, 64).await.expect("levels"), 0);
    assert_eq!(down(Uuid::now_v7(), 64).await.expect("levels"), 0);
    // A wider subtree counts its deepest branch; another org's items are not descendants.
    let side = item("Folder", "side", Some(ids[1]), json!({}));
    put(store, ORG, &side).await;
    assert_eq!(down(ids[1], 64).await.expect("levels"), 6);
    assert_eq!(
        store.levels_below(OTHER, ids[0], 64).await.expect("levels"),
        0
    );
}

/// Creates a small CRM data set with every attribute kind, some attributes absent.
async fn crm(store: &dyn ItemStore) -> Vec<Item> {
    let company = item(
        "Company",
        "Acme",
        None,
        json!({"employees": 50, "industry": "software", "domain": "acme.com"}),
    );
    let mut items = vec![company.clone()];
    let company_id = company.id.to_string();
    let rows = [
        (
            "Alpha",
            json!({"amount": 100.0, "stage": "won", "close_date": "2026-03-01T00:00:00.000000Z"}),
        ),
        ("beta", json!({"amount": 250.5, "stage": "lost"})),
        (
            "Gamma 100%",
            json!({"amount": 5, "stage": "won", "close_date": "2026-01-15T12:00:00.000000Z"}),
        ),
        ("Delta_x", json!({"stage": "lead"})),
        (
            "Alpha two",
            json!({"amount": 100.0, "stage": "qualified", "close_date": "2026-02-01T00:00:00.000000Z"}),
        ),
    ];
    for (name, mut a) in rows {
        a["company"] = json!(company_id);
        items.push(item("Deal", name, None, a));
    }
    items.push(item(
        "Contact",
        "Ann Lee",
        None,
        json!({"email": "ann@acme.com", "company": company_id, "notes": "Met at the Blue Fair"}),
    ));
    items.push(item(
        "Account",
        "root",
        None,
        json!({"username": "root", "admin": true, "disabled": false}),
    ));
    items.push(item(
        "Account",
        "guest",
        None,
        json!({"username": "guest", "admin": false, "disabled": true}),
    ));
    for i in &items {
        put(store, ORG, i).await;
    }
    items
}

pub async fn queries_filter_by_every_kind(store: &dyn ItemStore) {
    crm(store).await;
    let cases: Vec<(Params, Vec<&str>)> = vec![
        (
            vec![("type", "Deal"), ("attr.stage", "won")],
            vec!["Alpha", "Gamma 100%"],
        ),
        (
            vec![("type", "Deal"), ("attr.stage.ne", "won")],
            vec!["beta", "Delta_x", "Alpha two"],
        ),
        (
            vec![("type", "Deal"), ("attr.stage.in", "lost,lead")],
            vec!["beta", "Delta_x"],
        ),
        (
            vec![("type", "Deal"), ("attr.amount", "100")],
            vec!["Alpha", "Alpha two"],
        ),
        (
            vec![("type", "Deal"), ("attr.amount.gt", "100")],
            vec!["beta"],
        ),
        (
            vec![("type", "Deal"), ("attr.amount.gte", "100")],
            vec!["Alpha", "beta", "Alpha two"],
        ),
        (
            vec![("type", "Deal"), ("attr.amount.lt", "100")],
            vec!["Gamma 100%"],
        ),
        (
            vec![("type", "Deal"), ("attr.amount.lte", "100.0")],
            vec!["Alpha", "Gamma 100%", "Alpha two"],
        ),
        (
            vec![
                ("type", "Deal"),
                ("attr.close_date.gte", "2026-02-01T00:00:00Z"),
            ],
            vec!["Alpha", "Alpha two"],
        ),
        (
            vec![
                ("type", "Deal"),
                ("attr.close_date.lt", "2026-02-01T01:00:00+01:00"),
            ],
            vec!["Gamma 100%"],
        ),
        (
            vec![("type", "Company"), ("attr.employees.gte", "50")],
            vec!["Acme"],
        ),
        (
            vec![("type", "Company"), ("attr.employees.gt", "50")],
            vec![],
        ),
        (
            vec![("type", "Account"), ("attr.admin", "true")],
            vec!["root"],
        ),
        (
            vec![("type", "Account"), ("attr.disabled", "true")],
            vec!["guest"],
        ),
        (
            vec![("type", "Account"), ("attr.admin", "false")],
            vec!["guest"],
        ),
        (
            vec![("type", "Contact"), ("attr.email", "ann@acme.com")],
            vec!["Ann Lee"],
        ),
        (vec![("type", "Deal"), ("name", "Alpha")], vec!["Alpha"]),
        (
            vec![("type", "Deal"), ("name", "Alpha*")],
            vec!["Alpha", "Alpha two"],
        ),
        (vec![("name", "Gamma 100%*")], vec!["Gamma 100%"]),
        (vec![("name", "Gamma 1_0*")], vec![]),
        (vec![("name", "Delta_*")], vec!["Delta_x"]),
        (vec![("name", "Delta%*")], vec![]),
        (vec![("q", "blue fair")], vec!["Ann Lee"]),
        (vec![("q", "ALPHA")], vec!["Alpha", "Alpha two"]),
        (vec![("q", "acme.com")], vec!["Acme", "Ann Lee"]),
        (vec![("q", "100%")], vec!["Gamma 100%"]),
        (
            vec![("type", "Resource"), ("name", "Ann Lee")],
            vec!["Ann Lee"],
        ),
        (
            vec![("type", "Contact"), ("attr.email", "x' OR '1'='1")],
            vec![],
        ),
        (
            vec![
                ("type", "Contact"),
                ("attr.email.in", "ann@acme.com,x') OR 1=1--"),
            ],
            vec!["Ann Lee"],
        ),
    ];
    for (params, expected) in cases {
        let got = all_pages(store, &params).await;
        assert_eq!(names(&got), expected, "{params:?}");
    }
}

pub async fn types_match_their_subtypes(store: &dyn ItemStore) {
    let items = crm(store).await;
    let resources = all_pages(store, &[("type", "Resource")]).await;
    assert_eq!(resources.len(), 7, "Company, 5 Deals, Contact");
    let everything = all_pages(store, &[("type", "Item")]).await;
    assert_eq!(everything.len(), items.len());
}

pub async fn parents_filter_children(store: &dyn ItemStore) {
    let a = item("Folder", "a", None, json!({}));
    let b = item("Folder", "b", Some(a.id), json!({}));
    let c = item("File", "c", Some(a.id), json!({}));
    let d = item("Folder", "d", Some(b.id), json!({}));
    for i in [&a, &b, &c, &d] {
        put(store, ORG, i).await;
    }
    let id = a.id.to_string();
    assert_eq!(
        names(&all_pages(store, &[("parent", &id)]).await),
        vec!["b", "c"]
    );
    assert_eq!(
        names(&all_pages(store, &[("parent", "root")]).await),
        vec!["a"]
    );
    assert_eq!(
        names(&all_pages(store, &[("parent", &id), ("type", "File")]).await),
        vec!["c"]
    );
}

/// The order of `sort=[-]attr.amount`: by amount, then id, either way; items without an
/// amount last in both directions.
fn by_amount(descending: bool) -> Order {
    let amount = |i: &Item| i.attributes.get("amount").and_then(Value::as_f64);
    Box::new(move |a: &Item, b: &Item| {
        let (a, b, flipped) = if descending {
            (b, a, true)
        } else {
            (a, b, false)
        };
        match (amount(a), amount(b)) {
            (Some(x), Some(y)) => x.total_cmp(&y).then(a.id.cmp(&b.id)),
            (None, None) => a.id.cmp(&b.id),
            // Absent sorts last whichever way the present values run.
            (Some(_), None) if !flipped => std::cmp::Ordering::Less,
            (None, Some(_)) if flipped => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        }
    })
}

/// Walks every page of every sort in small pages and checks the order against a sort done
/// here, so that the keyset conditions (ties, absent values, descending) are right.
pub async fn pages_follow_the_sort_without_gaps_or_repeats(store: &dyn ItemStore) {
    let mut deals = Vec::new();
    let company = Uuid::now_v7().to_string();
    for i in 0..23 {
        let stage = ["lead", "won", "lost"][i % 3];
        let mut attributes = json!({"company": company, "stage": stage});
        if i % 4 != 0 {
            attributes["amount"] = json!((i % 5) as f64 * 10.0);
        }
        let mut d = item(
            "Deal",
            &format!("deal {:02}", (i * 7) % 23),
            None,
            attributes,
        );
        // Spread the times, with ties, and some updated later.
        d.created_at = Utc::now() - Duration::seconds(100 - (i as i64 / 2));
        d.updated_at = d.created_at + Duration::seconds((i % 3) as i64 * 1000);
        put(store, ORG, &d).await;
        deals.push(d);
    }
    let cases: Vec<(&str, Order)> = vec![
        (
            "created",
            Box::new(|a: &Item, b: &Item| (a.created_at, a.id).cmp(&(b.created_at, b.id))),
        ),
        (
            "-created",
            Box::new(|a: &Item, b: &Item| (b.created_at, b.id).cmp(&(a.created_at, a.id))),
        ),
        (
            "updated",
            Box::new(|a: &Item, b: &Item| (a.updated_at, a.id).cmp(&(b.updated_at, b.id))),
        ),
        (
            "name",
            Box::new(|a: &Item, b: &Item| (&a.name, a.id).cmp(&(&b.name, b.id))),
        ),
        (
            "-name",
            Box::new(|a: &Item, b: &Item| (&b.name, b.id).cmp(&(&a.name, a.id))),
        ),
        ("attr.amount", by_amount(false)),
        ("-attr.amount", by_amount(true)),
        (
            "attr.stage",
            Box::new(|a: &Item, b: &Item| {
                (a.attributes["stage"].as_str(), a.id).cmp(&(b.attributes["stage"].as_str(), b.id))
            }),
        ),
    ];
    for (sort, cmp) in cases {
        let mut expected = deals.clone();
        expected.sort_by(|a, b| cmp(a, b));
        for limit in ["1", "4", "50"] {
            let got = all_pages(store, &[("type", "Deal"), ("sort", sort), ("limit", limit)]).await;
            let ids: Vec<Uuid> = got.iter().map(|i| i.id).collect();
            let unique: HashSet<Uuid> = ids.iter().copied().collect();
            assert_eq!(
                unique.len(),
                ids.len(),
                "repeats with sort={sort} limit={limit}"
            );
            let want: Vec<Uuid> = expected.iter().map(|i| i.id).collect();
            assert_eq!(ids, want, "order with sort={sort} limit={limit}");
        }
    }
}

/// A list of the whole org (no type, no parent) over many items of several types: every sort
/// and page size gives every item once, in order, with filters and the access filter applied
/// inside the pages; another org's items never appear.
pub async fn org_pages_follow_the_sort_over_a_large_org(store: &dyn ItemStore) {
    use realnet::query::Readable;
    let me = Uuid::now_v7();
    let base = Utc::now() - Duration::hours(1);
    let mut all = Vec::new();
    for i in 0..100i64 {
        let type_name = ["Folder", "Company", "Contact", "Deal"][(i % 4) as usize];
        let mut it = item(
            type_name,
            &format!("item {:03}", (i * 37) % 100),
            None,
            json!({}),
        );
        // Ties in creation time, three at a time; updates out of creation order.
        it.created_at = base + Duration::seconds(i / 3);
        it.updated_at = it.created_at + Duration::seconds((i * 7) % 11);
        if i % 5 == 0 {
            it.owner = Some(me);
        }
        put(store, ORG, &it).await;
        all.push(it);
    }
    for i in 0..20 {
        let mut theirs = item("Folder", &format!("theirs {i}"), None, json!({}));
        theirs.org = OTHER.to_string();
        theirs.created_at = base + Duration::seconds(i);
        put(store, OTHER, &theirs).await;
    }
    let by: Vec<(&str, Order)> = vec![
        (
            "created",
            Box::new(|a: &Item, b: &Item| (a.created_at, a.id).cmp(&(b.created_at, b.id))),
        ),
        (
            "-created",
            Box::new(|a: &Item, b: &Item| (b.created_at, b.id).cmp(&(a.created_at, a.id))),
        ),
        (
            "updated",
            Box::new(|a: &Item, b: &Item| (a.updated_at, a.id).cmp(&(b.updated_at, b.id))),
        ),
        (
            "-name",
            Box::new(|a: &Item, b: &Item| (&b.name, b.id).cmp(&(&a.name, a.id))),
        ),
    ];
    // Everything; a name filter that skips most items; only what a member may read.
    let readable = Readable::Only {
        types: vec!["Company".into()],
        owner: Some(me),
        owned_types: vec!["Contact".into(), "Folder".into()],
        subtrees: vec![],
    };
    let may_read = move |i: &Item| {
        i.type_name == "Company"
            || (i.owner == Some(me) && ["Contact", "Folder"].contains(&i.type_name.as_str()))
    };
    for (sort, cmp) in &by {
        // Sorted otherwise than by creation, DynamoDB reads the whole org for each page.
        let limits: &[&str] = if sort.ends_with("created") {
            &["1", "7", "50", "200"]
        } else {
            &["9", "200"]
        };
        for &limit in limits {
            let filters: [(&str, Readable, Keep); 3] = [
                ("all", Readable::All, Box::new(|_: &Item| true)),
                (
                    "name",
                    Readable::All,
                    Box::new(|i: &Item| i.name.starts_with("item 01")),
                ),
                ("readable", readable.clone(), Box::new(may_read)),
            ];
            for (what, access, keep) in filters {
                if limit == "1" && what == "all" {
                    continue; // 100 pages: the other cases cover a page of one.
                }
                let mut params = vec![("sort", *sort), ("limit", limit)];
                if what == "name" {
                    params.push(("name", "item 01*"));
                }
                let mut q = query(&params);
                q.readable = access;
                let mut got = Vec::new();
                loop {
                    let page = store.query(ORG, &q).await.expect("query");
                    if page.next.is_some() {
                        assert_eq!(page.items.len(), q.limit, "pages before the last are full");
                    }
                    got.extend(page.items.into_iter().map(|i| i.id));
                    match page.next {
                        Some(p) => q.after = Some(p),
                        None => break,
                    }
                }
                let mut want: Vec<&Item> = all.iter().filter(|i| keep(i)).collect();
                want.sort_by(|a, b| cmp(a, b));
                let want: Vec<Uuid> = want.iter().map(|i| i.id).collect();
                assert_eq!(got, want, "sort={sort} limit={limit} {what}");
            }
        }
    }
}

/// Filters that skip most items, over more items than a budgeted page may read (DynamoDB with a
/// small `page_reads`): every matching item comes exactly once across pages, in order, short
/// pages or full; the SQL stores keep every page but the last full. Answers how many pages
/// were short.
pub async fn pages_may_be_short_but_miss_nothing(store: &dyn ItemStore) -> usize {
    let base = Utc::now() - Duration::hours(1);
    let folder = item("Folder", "box", None, json!({}));
    put(store, ORG, &folder).await;
    let box_id = folder.id.to_string();
    let mut all = Vec::new();
    for i in 0..90i64 {
        let type_name = ["Folder", "Company"][(i % 2) as usize];
        let name = if i % 9 == 4 { "match" } else { "other" };
        let parent = (i % 3 == 0).then_some(folder.id);
        let mut it = item(type_name, &format!("{name} {i:02}"), parent, json!({}));
        // Ties in creation time, two at a time.
        it.created_at = base + Duration::seconds(i / 2);
        it.updated_at = it.created_at;
        put(store, ORG, &it).await;
        all.push(it);
    }
    let mut short = 0;
    let cases: Vec<(Params, Keep)> = vec![
        (
            vec![("type", "Folder"), ("name", "match*")],
            Box::new(|i: &Item| i.type_name == "Folder" && i.name.starts_with("match")),
        ),
        (
            vec![("name", "match*")],
            Box::new(|i: &Item| i.name.starts_with("match")),
        ),
        (
            vec![("parent", &box_id), ("name", "match*")],
            Box::new(move |i: &Item| i.parent == Some(folder.id) && i.name.starts_with("match")),
        ),
        (
            vec![("type", "Folder"), ("name", "nothing*")],
            Box::new(|_: &Item| false),
        ),
    ];
    for (params, keep) in &cases {
        for sort in ["created", "-created"] {
            for limit in ["1", "3", "200"] {
                let mut p = params.clone();
                p.extend([("sort", sort), ("limit", limit)]);
                let mut q = query(&p);
                let mut got = Vec::new();
                loop {
                    let page = store.query(ORG, &q).await.expect("query");
                    assert!(page.items.len() <= q.limit);
                    if page.next.is_some() && page.items.len() < q.limit {
                        assert_eq!(store.kind(), "dynamodb", "SQL pages are full: {p:?}");
                        short += 1;
                    }
                    got.extend(page.items.into_iter().map(|i| i.id));
                    match page.next {
                        Some(next) => q.after = Some(next),
                        None => break,
                    }
                }
                let mut want: Vec<&Item> = all.iter().filter(|i| keep(i)).collect();
                want.sort_by_key(|i| (i.created_at, i.id));
                if sort.starts_with('-') {
                    want.reverse();
                }
                let want: Vec<Uuid> = want.iter().map(|i| i.id).collect();
                assert_eq!(got, want, "every match once, in order: {p:?}");
            }
        }
    }
    short
}

/// Filters and sorts that DynamoDB serves from its name and field indexes (the types declare
/// `amount`, `stage` and `company` of `Deal` indexed), in small pages either way: the same
/// answers as a filter and sort done here, on every store.
pub async fn indexed_filters_and_sorts_page_exactly(store: &dyn ItemStore) {
    let company = Uuid::now_v7().to_string();
    let base = Utc::now() - Duration::hours(1);
    let mut deals = Vec::new();
    for i in 0..30i64 {
        let stage = ["lead", "won", "lost"][(i % 3) as usize];
        let mut attributes = json!({"company": company, "stage": stage});
        if i % 5 != 0 {
            attributes["amount"] = json!(((i * 7) % 6) as f64 * 10.0 - 10.0);
        }
        let mut d = item(
            "Deal",
            &format!("deal {:02}", (i * 11) % 30),
            None,
            attributes,
        );
        d.created_at = base + Duration::seconds(i / 2);
        d.updated_at = d.created_at;
        put(store, ORG, &d).await;
        deals.push(d);
    }
    let amount = |i: &Item| i.attributes.get("amount").and_then(Value::as_f64);
    let stage = |i: &Item| {
        i.attributes["stage"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let created: Order =
        Box::new(|a: &Item, b: &Item| (a.created_at, a.id).cmp(&(b.created_at, b.id)));
    let created_desc: Order =
        Box::new(|a: &Item, b: &Item| (b.created_at, b.id).cmp(&(a.created_at, a.id)));
    let by_name: Order = Box::new(|a: &Item, b: &Item| (&a.name, a.id).cmp(&(&b.name, b.id)));
    let by_name_desc: Order = Box::new(|a: &Item, b: &Item| (&b.name, b.id).cmp(&(&a.name, a.id)));
    let cases: Vec<(Params, Keep, Order)> = vec![
        (
            vec![("sort", "attr.amount"), ("attr.amount.gte", "10")],
            Box::new(move |i: &Item| amount(i).is_some_and(|a| a >= 10.0)),
            by_amount(false),
        ),
        (
            vec![("sort", "-attr.amount"), ("attr.amount.lt", "20")],
            Box::new(move |i: &Item| amount(i).is_some_and(|a| a < 20.0)),
            by_amount(true),
        ),
        (
            vec![("sort", "-attr.amount"), ("attr.stage", "won")],
            Box::new(move |i: &Item| stage(i) == "won"),
            by_amount(true),
        ),
        (
            vec![("attr.stage", "won")],
            Box::new(move |i: &Item| stage(i) == "won"),
            created,
        ),
        (
            vec![
                ("sort", "-created"),
                ("attr.stage", "lost"),
                ("attr.amount.gt", "0"),
            ],
            Box::new(move |i: &Item| stage(i) == "lost" && amount(i).is_some_and(|a| a > 0.0)),
            created_desc,
        ),
        (
            vec![("sort", "name"), ("name", "deal 1*")],
            Box::new(|i: &Item| i.name.starts_with("deal 1")),
            by_name,
        ),
        (
            vec![("sort", "-name"), ("name", "deal 07")],
            Box::new(|i: &Item| i.name == "deal 07"),
            by_name_desc,
        ),
    ];
    for (params, keep, cmp) in &cases {
        let mut want: Vec<&Item> = deals.iter().filter(|i| keep(i)).collect();
        want.sort_by(|a, b| cmp(a, b));
        let want: Vec<Uuid> = want.iter().map(|i| i.id).collect();
        assert!(!want.is_empty(), "{params:?} matches something");
        for limit in ["1", "4", "50"] {
            let mut p = params.clone();
            p.extend([("type", "Deal"), ("limit", limit)]);
            let got: Vec<Uuid> = all_pages(store, &p).await.iter().map(|i| i.id).collect();
            assert_eq!(got, want, "{p:?}");
        }
    }
}

/// What a member may read only as owner, or only below shared folders (DynamoDB serves the
/// first from its owner index and decides the second item by item from the parents): every
/// page, either way, gives exactly the readable items in order.
pub async fn readable_owners_and_subtrees_page_exactly(store: &dyn ItemStore) {
    use realnet::query::Readable;
    let me = Uuid::now_v7();
    let base = Utc::now() - Duration::hours(1);
    let mut all: Vec<Item> = Vec::new();
    let mut at = 0i64;
    let mut make = |type_name: &str, name: &str, parent: Option<Uuid>, mine: bool| {
        let attributes = if type_name == "Contact" {
            json!({"email": "x@y.z"})
        } else {
            json!({})
        };
        let mut it = item(type_name, name, parent, attributes);
        it.created_at = base + Duration::seconds(at / 2);
        it.updated_at = it.created_at;
        at += 1;
        if mine {
            it.owner = Some(me);
        }
        it
    };
    let shared = make("Folder", "shared", None, false);
    let private = make("Folder", "private", None, false);
    let a = make("Folder", "a", Some(shared.id), true);
    let mut tree = vec![shared.clone(), private.clone(), a.clone()];
    for i in 0..24 {
        let (parent, type_name) = match i % 4 {
            0 => (Some(shared.id), "Folder"),
            1 => (Some(a.id), "Contact"),
            2 => (Some(private.id), "Contact"),
            _ => (None, "Company"),
        };
        tree.push(make(type_name, &format!("i{i:02}"), parent, i % 3 == 0));
    }
    // Deeper below `a`: a chain, to be walked up.
    let mut parent = a.id;
    for depth in 0..4 {
        let f = make("Folder", &format!("deep{depth}"), Some(parent), false);
        parent = f.id;
        tree.push(f);
    }
    for it in &tree {
        put(store, ORG, it).await;
        all.push(it.clone());
    }
    let below = |i: &Item, root: Uuid| {
        let mut at = Some(i.id);
        while let Some(id) = at {
            if id == root {
                return true;
            }
            at = all.iter().find(|j| j.id == id).and_then(|j| j.parent);
        }
        false
    };
    let owned = Readable::Only {
        types: vec![],
        owner: Some(me),
        owned_types: vec!["Contact".into(), "Folder".into()],
        subtrees: vec![],
    };
    let subtree = Readable::Only {
        types: vec![],
        owner: None,
        owned_types: vec![],
        subtrees: vec![shared.id],
    };
    let a_id = a.id.to_string();
    type Local<'a> = Box<dyn Fn(&Item) -> bool + 'a>;
    let cases: Vec<(Params, Readable, Local)> = vec![
        (
            vec![],
            owned.clone(),
            Box::new(|i: &Item| {
                i.owner == Some(me) && ["Contact", "Folder"].contains(&i.type_name.as_str())
            }),
        ),
        (
            vec![("type", "Contact")],
            owned,
            Box::new(|i: &Item| i.owner == Some(me) && i.type_name == "Contact"),
        ),
        (
            vec![],
            subtree.clone(),
            Box::new(|i: &Item| below(i, shared.id)),
        ),
        (
            vec![("parent", &a_id)],
            subtree.clone(),
            Box::new(|i: &Item| i.parent == Some(a.id)),
        ),
        (
            vec![("type", "Folder"), ("sort", "name")],
            subtree,
            Box::new(|i: &Item| i.type_name == "Folder" && below(i, shared.id)),
        ),
    ];
    for (params, readable, keep) in &cases {
        for sort in ["created", "-created"] {
            for limit in ["1", "3", "50"] {
                let mut p = params.clone();
                if !p.iter().any(|(k, _)| *k == "sort") {
                    p.push(("sort", sort));
                }
                p.push(("limit", limit));
                let mut q = query(&p);
                q.readable = readable.clone();
                let mut got = Vec::new();
                loop {
                    let page = store.query(ORG, &q).await.expect("query");
                    got.extend(page.items.into_iter().map(|i| i.id));
                    match page.next {
                        Some(next) => q.after = Some(next),
                        None => break,
                    }
                }
                let mut want: Vec<&Item> = all.iter().filter(|i| keep(i)).collect();
                want.sort_by(|x, y| q.compare(x, y));
                let want: Vec<Uuid> = want.iter().map(|i| i.id).collect();
                assert_eq!(got, want, "{p:?}");
            }
        }
    }
}

pub async fn counts_and_settings(store: &dyn ItemStore) {
    crm(store).await;
    let counts = store.counts().await.expect("counts");
    let deals = counts
        .iter()
        .find(|c| c.org == ORG && c.type_name == "Deal")
        .map(|c| c.count);
    assert_eq!(deals, Some(5));
    let first = store.setting("k", "one").await.expect("setting");
    let second = store.setting("k", "two").await.expect("setting");
    assert_eq!((first.as_str(), second.as_str()), ("one", "one"));
    store.put_setting("k", "three").await.expect("put setting");
    store.put_setting("new", "four").await.expect("put setting");
    assert_eq!(store.setting("k", "five").await.expect("setting"), "three");
    assert_eq!(store.setting("new", "six").await.expect("setting"), "four");
    store.migrate().await.expect("migrating again is harmless");
    assert_eq!(store.counts().await.expect("counts"), counts);
}

fn account(username: &str) -> Item {
    item("Account", username, None, json!({"username": username}))
}

pub async fn usernames_are_unique_within_an_org(store: &dyn ItemStore) {
    let alice = account("alice");
    put(store, ORG, &alice).await;
    let twin = account("alice");
    match store.apply(ORG, &[Write::Create(twin.clone())]).await {
        Err(StoreError::Taken(m)) => assert!(m.contains("alice"), "{m}"),
        other => panic!("a second alice must be refused, got {other:?}"),
    }
    let mut elsewhere = account("alice");
    elsewhere.org = OTHER.to_string();
    put(store, OTHER, &elsewhere).await;
    // Renaming into a taken username is refused too; other types may share the attribute.
    let bob = account("bob");
    put(store, ORG, &bob).await;
    let mut renamed = bob.clone();
    renamed.attributes.insert("username".into(), json!("alice"));
    renamed.version = 2;
    let rename = Write::Update {
        item: renamed,
        expected_version: 1,
    };
    assert!(matches!(
        store.apply(ORG, &[rename]).await,
        Err(StoreError::Taken(_))
    ));
    put(
        store,
        ORG,
        &item(
            "Contact",
            "c",
            None,
            json!({"username": "alice", "email": "a@b.c"}),
        ),
    )
    .await;
}

pub async fn tokens_are_found_by_hash_and_revoked(store: &dyn ItemStore) {
    let (alice, key) = (Uuid::now_v7(), Uuid::now_v7());
    let expires = Some(now() + Duration::hours(1));
    let put_token = |hash: &str, api_key| Write::PutToken {
        hash: hash.to_string(),
        account: alice,
        api_key,
        expires,
    };
    store
        .apply(
            ORG,
            &[
                put_token("h-login-1", None),
                put_token("h-login-2", None),
                put_token("h-key", Some(key)),
            ],
        )
        .await
        .expect("put tokens");
    let found = store.token("h-key").await.expect("read").expect("found");
    assert_eq!(
        (
            found.org.as_str(),
            found.account,
            found.api_key,
            found.expires
        ),
        (ORG, alice, Some(key), expires)
    );
    assert_eq!(store.token("nope").await.expect("read"), None);

    // Another org cannot revoke it.
    let revoke = Write::DeleteToken {
        hash: "h-login-1".into(),
    };
    store
        .apply(OTHER, std::slice::from_ref(&revoke))
        .await
        .expect("no-op");
    assert!(store.token("h-login-1").await.expect("read").is_some());
    store.apply(ORG, &[revoke]).await.expect("revoke");
    assert!(store.token("h-login-1").await.expect("read").is_none());

    let logins_only = Write::DeleteTokensOf {
        account: alice,
        api_keys: false,
    };
    store.apply(ORG, &[logins_only]).await.expect("revoke");
    assert!(store.token("h-login-2").await.expect("read").is_none());
    assert!(store.token("h-key").await.expect("read").is_some());
    let key_token = Write::DeleteApiKeyToken { api_key: key };
    store.apply(ORG, &[key_token]).await.expect("revoke");
    assert!(store.token("h-key").await.expect("read").is_none());
}

pub async fn passwords_are_set_replaced_and_removed(store: &dyn ItemStore) {
    let alice = Uuid::now_v7();
    let set = |hash: Option<&str>| Write::SetPassword {
        account: alice,
        hash: hash.map(str::to_string),
    };
    store.apply(ORG, &[set(Some("one"))]).await.expect("set");
    store
        .apply(ORG, &[set(Some("two"))])
        .await
        .expect("replace");
    assert_eq!(
        store.password(ORG, alice).await.expect("read").as_deref(),
        Some("two")
    );
    assert_eq!(store.password(OTHER, alice).await.expect("read"), None);
    store.apply(ORG, &[set(None)]).await.expect("remove");
    assert_eq!(store.password(ORG, alice).await.expect("read"), None);
}

/// An identity-provider subject is linked to one account in the whole installation, found
/// from any org, written all or nothing with the rest of a transaction, and removed only by
/// the account that holds it.
pub async fn identity_links_are_unique_across_orgs(store: &dyn ItemStore) {
    use realnet::store::IdentityLink;
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let issuer = "https://idp.example.com/pool-1";
    let link = |account| Write::LinkIdentity {
        issuer: issuer.into(),
        subject: "sub-1".into(),
        account,
    };
    let unlink = |account| Write::UnlinkIdentity {
        issuer: issuer.into(),
        subject: "sub-1".into(),
        account,
    };
    let alices = Some(IdentityLink {
        org: ORG.into(),
        account: alice,
    });
    store.apply(ORG, &[link(alice)]).await.expect("link");
    assert_eq!(
        store.identity_link(issuer, "sub-1").await.expect("read"),
        alices
    );
    store
        .apply(ORG, &[link(alice)])
        .await
        .expect("linking again keeps it");
    assert_eq!(
        store.identity_link(issuer, "sub-2").await.expect("read"),
        None
    );
    assert_eq!(
        store
            .identity_link("https://other.example.com", "sub-1")
            .await
            .expect("read"),
        None
    );

    // Another account, in another org or the same, cannot take it; nothing of its
    // transaction is written.
    let company = item("Company", "bob's", None, json!({}));
    for org in [OTHER, ORG] {
        let taken = store
            .apply(org, &[Write::Create(company.clone()), link(bob)])
            .await;
        assert!(
            matches!(taken, Err(StoreError::Taken(_))),
            "{org}: {taken:?}"
        );
        assert_eq!(store.get(org, company.id).await.expect("read"), None);
        assert_eq!(
            store.identity_link(issuer, "sub-1").await.expect("read"),
            alices
        );
    }
    // Nor remove it.
    store.apply(OTHER, &[unlink(alice)]).await.expect("no-op");
    store.apply(ORG, &[unlink(bob)]).await.expect("no-op");
    assert_eq!(
        store.identity_link(issuer, "sub-1").await.expect("read"),
        alices
    );

    store.apply(ORG, &[unlink(alice)]).await.expect("unlink");
    assert_eq!(
        store.identity_link(issuer, "sub-1").await.expect("read"),
        None
    );
    store.apply(OTHER, &[link(bob)]).await.expect("free again");
    assert_eq!(
        store.identity_link(issuer, "sub-1").await.expect("read"),
        Some(IdentityLink {
            org: OTHER.into(),
            account: bob,
        })
    );
}

/// Login attempts are counted up to a limit in one step, taken back, cleared, and counted
/// again once their window is over; concurrent attempts never pass the limit together.
pub async fn attempts_count_up_to_a_limit_within_a_window(store: &dyn ItemStore) {
    let key = "user-addr\nacme\nalice\n192.0.2.1";
    let t0 = now();
    let window = Duration::minutes(15);
    let count = |at: DateTime<Utc>| store.count_attempt(key, 3, at, at - window);
    for _ in 0..3 {
        assert_eq!(
            count(t0).await.expect("count"),
            Attempt::Counted { since: t0 }
        );
    }
    let soon = t0 + Duration::seconds(1);
    assert_eq!(
        count(soon).await.expect("count"),
        Attempt::Refused { since: t0 }
    );
    // Taking one back makes room for one; taking back from another window does nothing.
    store.uncount_attempt(key, t0).await.expect("uncount");
    store
        .uncount_attempt(key, t0 - Duration::hours(1))
        .await
        .expect("uncount");
    assert_eq!(
        count(soon).await.expect("count"),
        Attempt::Counted { since: t0 }
    );
    assert!(matches!(
        count(soon).await.expect("count"),
        Attempt::Refused { .. }
    ));
    // Other keys count apart.
    assert_eq!(
        store
            .count_attempt("addr\n192.0.2.1", 3, soon, soon - window)
            .await
            .expect("count"),
        Attempt::Counted { since: soon }
    );
    // Once the window is over, counting begins again at one.
    let later = t0 + Duration::minutes(20);
    for _ in 0..3 {
        assert_eq!(
            count(later).await.expect("count"),
            Attempt::Counted { since: later }
        );
    }
    assert!(matches!(
        count(later).await.expect("count"),
        Attempt::Refused { .. }
    ));
    store.clear_attempts(key).await.expect("clear");
    assert_eq!(
        count(later).await.expect("count"),
        Attempt::Counted { since: later }
    );

    // Eight at once against a limit of three: three are counted.
    let fresh = "user\nacme\nbob";
    let c = || store.count_attempt(fresh, 3, t0, t0 - window);
    let all = tokio::join!(c(), c(), c(), c(), c(), c(), c(), c());
    let all = [all.0, all.1, all.2, all.3, all.4, all.5, all.6, all.7];
    let counted = all
        .into_iter()
        .map(|a| a.expect("count"))
        .filter(|a| matches!(a, Attempt::Counted { .. }))
        .count();
    assert_eq!(counted, 3);
}

/// Access filters are applied inside the query: pages are full and cursors exact.
pub async fn queries_return_only_readable_items(store: &dyn ItemStore) {
    use realnet::query::Readable;
    let me = Uuid::now_v7();
    let shared = item("Folder", "shared", None, json!({}));
    put(store, ORG, &shared).await;
    let mut expected = HashSet::new();
    for i in 0..30 {
        // Readable: companies, my contacts, anything under `shared`. Not: others' contacts.
        let mut it = match i % 3 {
            0 => item("Company", &format!("co{i}"), None, json!({})),
            1 => item(
                "Contact",
                &format!("ct{i}"),
                None,
                json!({"email": "x@y.z"}),
            ),
            _ => item("Folder", &format!("f{i}"), Some(shared.id), json!({})),
        };
        if i % 3 == 1 && i % 2 == 0 {
            it.owner = Some(me);
        }
        if i % 3 != 1 || it.owner == Some(me) {
            expected.insert(it.id);
        }
        put(store, ORG, &it).await;
    }
    expected.insert(shared.id);
    let mut q = query(&[("limit", "4")]);
    q.readable = Readable::Only {
        types: vec!["Company".into()],
        owner: Some(me),
        owned_types: vec!["Contact".into()],
        subtrees: vec![shared.id],
    };
    let mut seen = HashSet::new();
    loop {
        let page = store.query(ORG, &q).await.expect("query");
        if page.next.is_some() {
            assert_eq!(page.items.len(), 4, "pages before the last are full");
        }
        for i in &page.items {
            assert!(expected.contains(&i.id), "{} is not readable", i.name);
            assert!(seen.insert(i.id), "{} repeated", i.name);
        }
        match page.next {
            Some(p) => q.after = Some(p),
            None => break,
        }
    }
    assert_eq!(seen, expected);

    q.after = None;
    q.readable = Readable::Only {
        types: vec![],
        owner: None,
        owned_types: vec![],
        subtrees: vec![],
    };
    assert!(store.query(ORG, &q).await.expect("query").items.is_empty());
}

/// A job key runs once: a second claim is busy while the first holds it, sees the outcome
/// once it finished, and starts again after an abandoned run, a lapsed lease or an expired
/// record.
pub async fn job_runs_are_claimed_once(store: &dyn ItemStore) {
    use realnet::store::JobClaim;
    let t0 = now();
    let (lease, expires) = (t0 + Duration::seconds(30), t0 + Duration::days(1));
    let begin = |key: &'static str, at| async move {
        store
            .begin_job(
                ORG,
                key,
                at,
                at + Duration::seconds(30),
                at + Duration::days(1),
            )
            .await
            .expect("claim")
    };
    assert_eq!(
        store
            .begin_job(ORG, "k1", t0, lease, expires)
            .await
            .expect("claim"),
        JobClaim::Started
    );
    assert_eq!(begin("k1", t0).await, JobClaim::Busy);
    assert_eq!(
        store
            .begin_job(OTHER, "k1", t0, lease, expires)
            .await
            .expect("claim"),
        JobClaim::Started,
        "keys are per org"
    );
    let finish = |key: &str, outcome: Value| Write::FinishJob {
        key: key.to_string(),
        outcome,
    };
    store
        .apply(ORG, &[finish("k1", json!({"result": {"count": 2}}))])
        .await
        .expect("finish");
    assert_eq!(
        begin("k1", t0).await,
        JobClaim::Done(json!({"result": {"count": 2}}))
    );
    // A finished record expires; a lapsed lease is taken over; an abandoned run starts again.
    assert_eq!(begin("k1", t0 + Duration::days(2)).await, JobClaim::Started);
    assert_eq!(begin("k2", t0).await, JobClaim::Started);
    assert_eq!(
        begin("k2", t0 + Duration::minutes(1)).await,
        JobClaim::Started
    );
    store.abandon_job(ORG, "k2").await.expect("abandon");
    assert_eq!(
        begin("k2", t0 + Duration::minutes(1)).await,
        JobClaim::Started
    );

    // The outcome is written with the job's effects: when they fail, so does the record.
    let orphan = item("Folder", "orphan", Some(Uuid::now_v7()), json!({}));
    let failed = store
        .apply(
            ORG,
            &[
                Write::Create(orphan),
                finish("k2", json!({"result": {"count": 1}})),
            ],
        )
        .await;
    assert!(failed.is_err());
    assert_eq!(begin("k2", t0 + Duration::minutes(1)).await, JobClaim::Busy);
    // And abandoning a claim never undoes a finished run.
    store
        .apply(ORG, &[finish("k2", json!({"result": {"count": 1}}))])
        .await
        .expect("finish");
    store.abandon_job(ORG, "k2").await.expect("abandon");
    assert_eq!(
        begin("k2", t0 + Duration::minutes(1)).await,
        JobClaim::Done(json!({"result": {"count": 1}}))
    );
}

/// The orgs listed are those with an `Org` item, in name order; deleting it unlists the org.
pub async fn orgs_are_the_ones_set_up(store: &dyn ItemStore) {
    assert_eq!(store.orgs().await.expect("orgs"), Vec::<String>::new());
    put(store, ORG, &item("Folder", "not an org", None, json!({}))).await;
    assert_eq!(store.orgs().await.expect("orgs"), Vec::<String>::new());
    let other = item("Org", OTHER, None, json!({}));
    put(store, OTHER, &other).await;
    put(store, ORG, &item("Org", ORG, None, json!({}))).await;
    let mut expected = vec![ORG.to_string(), OTHER.to_string()];
    expected.sort();
    assert_eq!(store.orgs().await.expect("orgs"), expected);
    store
        .apply(
            OTHER,
            &[Write::Delete {
                id: other.id,
                expected_version: other.version,
            }],
        )
        .await
        .expect("delete");
    assert_eq!(store.orgs().await.expect("orgs"), vec![ORG.to_string()]);
}

/// A job's record, written with its effects, refuses a second record of the key while it
/// lives, and with it the whole transaction; the outcome can be read back.
pub async fn job_records_refuse_a_second_run(store: &dyn ItemStore) {
    let t0 = now();
    let record = |outcome: Value, at: DateTime<Utc>| Write::RecordJob {
        key: "k".into(),
        outcome,
        now: at,
        expires: at + Duration::days(1),
    };
    let first = item("Folder", "first run", None, json!({}));
    store
        .apply(
            ORG,
            &[
                Write::Create(first.clone()),
                record(json!({"result": 1}), t0),
            ],
        )
        .await
        .expect("first run");
    let second = item("Folder", "second run", None, json!({}));
    let refused = store
        .apply(
            ORG,
            &[
                Write::Create(second.clone()),
                record(json!({"result": 2}), t0),
            ],
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::JobRecorded(ref k)) if k == "k"),
        "{refused:?}"
    );
    assert!(
        store.get(ORG, second.id).await.expect("get").is_none(),
        "nothing written"
    );
    assert_eq!(
        store.job_outcome(ORG, "k", t0).await.expect("outcome"),
        Some(json!({"result": 1}))
    );
    assert_eq!(
        store.job_outcome(OTHER, "k", t0).await.expect("outcome"),
        None,
        "per org"
    );
    assert_eq!(
        store
            .job_outcome(ORG, "unknown", t0)
            .await
            .expect("outcome"),
        None
    );
    // Once the record has expired, the key runs again.
    let later = t0 + Duration::days(2);
    assert_eq!(
        store.job_outcome(ORG, "k", later).await.expect("outcome"),
        None
    );
    store
        .apply(
            ORG,
            &[
                Write::Create(second.clone()),
                record(json!({"result": 3}), later),
            ],
        )
        .await
        .expect("a run after expiry");
    assert_eq!(
        store.job_outcome(ORG, "k", later).await.expect("outcome"),
        Some(json!({"result": 3}))
    );
}
