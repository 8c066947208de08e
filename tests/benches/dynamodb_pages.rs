//! The DynamoDB page benchmark: records read and time for a page of 50 companies at 1,000,
//! 10,000 and 100,000 items of the type (seeded straight into the table with
//! `BatchWriteItem`), for the default order, name order, a filter on an indexed field and a
//! filter on an unindexed one (run by DynamoDB as a `FilterExpression`: the records it sends
//! back are printed beside the records read); beside, in the same run, the plan the store had before (every
//! item under the type's key read, then filtered and sorted in memory), run as a sort no index
//! serves with an unlimited read budget. Runs against the moto emulator, whose own time grows
//! with the table (it scans its items to answer an index query), so the records read are the
//! figure that carries over to DynamoDB; times are moto's. It prints figures and ratios; it
//! asserts nothing about speed.
//!
//! Needs: AWS_ENDPOINT_URL (moto; tests/moto.sh starts one). Tunables: REALNET_BENCH_SIZES
//! (default 1000,10000,100000), REALNET_BENCH_BASELINE_MAX (the largest size the old plan is
//! run at, default 10000: it reads the whole type for each page).

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use realnet::item::Item;
use realnet::store::{DynamoStore, ItemStore};
use serde_json::json;
use uuid::Uuid;

const ORG: &str = "bench";
const INDUSTRIES: [&str; 5] = ["software", "retail", "finance", "health", "other"];

fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

fn companies(n: usize) -> Vec<Item> {
    let start = Utc::now() - chrono::Duration::days(1);
    (0..n)
        .map(|i| {
            let at = start + chrono::Duration::milliseconds(i as i64);
            Item {
                id: Uuid::now_v7(),
                type_name: "Company".into(),
                // Names in another order than creation.
                name: format!("co {:07}", (i * 7919) % n),
                parent: None,
                org: ORG.into(),
                owner: None,
                attributes: json!({"industry": INDUSTRIES[i % 5], "employees": i})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                version: 1,
                created_at: at,
                updated_at: at,
            }
        })
        .collect()
}

/// What one page cost: records read (billed), records DynamoDB sent back (after its
/// `FilterExpression`), items on the page, time.
type PageCost = (u64, u64, usize, Duration);

/// Pages 1 and 2 of `params`: what each cost.
async fn two_pages(store: &DynamoStore, params: &[(&str, &str)]) -> anyhow::Result<Vec<PageCost>> {
    let mut q = realnet_tests::query(params);
    let mut out = Vec::new();
    for _ in 0..2 {
        let (before, returned) = (store.records_read(), store.records_returned());
        let started = Instant::now();
        let page = store.query(ORG, &q).await.context("query")?;
        out.push((
            store.records_read() - before,
            store.records_returned() - returned,
            page.items.len(),
            started.elapsed(),
        ));
        match page.next {
            Some(next) => q.after = Some(next),
            None => break,
        }
    }
    Ok(out)
}

async fn run() -> anyhow::Result<()> {
    realnet_tests::aws_endpoint();
    let sizes: Vec<usize> = std::env::var("REALNET_BENCH_SIZES")
        .unwrap_or_else(|_| "1000,10000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().context("REALNET_BENCH_SIZES"))
        .collect::<anyhow::Result<_>>()?;
    let baseline_max: usize = std::env::var("REALNET_BENCH_BASELINE_MAX")
        .ok()
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(10_000);
    let registry = realnet_tests::registry();
    println!("DynamoDB (moto): a page of 50 companies, pages 1 and 2; budget 1000 records a page");
    println!(
        "{:>7}  {:<44} {:>12} {:>12} {:>7} {:>10} {:>10}",
        "items", "query", "reads p1/p2", "sent p1/p2", "items", "time p1", "time p2"
    );
    let mut summary: Vec<(String, Vec<(usize, u64)>)> = Vec::new();
    for &n in &sizes {
        let table = format!("realnet-bench-{}", Uuid::now_v7().simple());
        let store = DynamoStore::new(&table).with_types(&registry);
        store.migrate().await.context("create the table")?;
        let seeding = Instant::now();
        store.bulk_load(ORG, &companies(n)).await.context("seed")?;
        eprintln!(
            "seeded {n} companies in {:.1} s",
            seeding.elapsed().as_secs_f64()
        );
        let near_end = (n - 10).to_string();
        let all = n.to_string();
        let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
            ("default order (by_type)", vec![("type", "Company")]),
            (
                "name order (by_name)",
                vec![("type", "Company"), ("sort", "name")],
            ),
            (
                "indexed filter industry=retail (by_field)",
                vec![("type", "Company"), ("attr.industry", "retail")],
            ),
            (
                "unindexed filter employees>=n-10 (short)",
                vec![("type", "Company"), ("attr.employees.gte", &near_end)],
            ),
            (
                "unindexed filter employees>n (none)",
                vec![("type", "Company"), ("attr.employees.gt", &all)],
            ),
        ];
        for (what, mut params) in cases {
            params.push(("limit", "50"));
            let pages = two_pages(&store, &params).await?;
            print_row(n, what, &pages);
            let reads = pages.first().map(|p| p.0).unwrap_or_default();
            match summary.iter_mut().find(|(w, _)| w == what) {
                Some((_, v)) => v.push((n, reads)),
                None => summary.push((what.to_string(), vec![(n, reads)])),
            }
        }
        if n <= baseline_max {
            // The plan before: every item under the type's key, then sorted in memory.
            let old = DynamoStore::new(&table)
                .with_types(&registry)
                .with_page_reads(10_000_000);
            let pages = two_pages(
                &old,
                &[("type", "Company"), ("sort", "updated"), ("limit", "50")],
            )
            .await?;
            print_row(n, "baseline: whole type read (the old plan)", &pages);
        }
        drop_table(&table).await?;
    }
    println!();
    println!(
        "records read by page 1, largest size / smallest size (target: within 1.5 where a key serves):"
    );
    for (what, v) in &summary {
        if let (Some(first), Some(last)) = (v.first(), v.last()) {
            println!(
                "  {what:<44} {:>6} at {:>6} -> {:>6} at {:>6}: {:.2}",
                first.1,
                first.0,
                last.1,
                last.0,
                last.1 as f64 / first.1.max(1) as f64
            );
        }
    }
    Ok(())
}

fn print_row(n: usize, what: &str, pages: &[PageCost]) {
    let reads: Vec<String> = pages.iter().map(|p| p.0.to_string()).collect();
    let sent: Vec<String> = pages.iter().map(|p| p.1.to_string()).collect();
    let items: Vec<String> = pages.iter().map(|p| p.2.to_string()).collect();
    let ms = |i: usize| {
        pages
            .get(i)
            .map(|p| format!("{:.1}ms", p.3.as_secs_f64() * 1000.0))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "{n:>7}  {what:<44} {:>12} {:>12} {:>7} {:>10} {:>10}",
        reads.join("/"),
        sent.join("/"),
        items.join("/"),
        ms(0),
        ms(1)
    );
}

async fn drop_table(table: &str) -> anyhow::Result<()> {
    let client = aws_sdk_dynamodb::Client::new(&realnet::aws::sdk_config().await);
    client
        .delete_table()
        .table_name(table)
        .send()
        .await
        .context("drop the table")?;
    Ok(())
}
