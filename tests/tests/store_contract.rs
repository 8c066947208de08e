//! The `ItemStore` contract (`realnet_tests::contract`), run on every store: SQLite,
//! PostgreSQL and DynamoDB (in the moto emulator).

use realnet_tests::{StoreKind, contract, on_every_store, store};

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        $( async fn $name(kind: StoreKind) {
            let s = store(kind).await;
            contract::$name(&*s.store).await;
        } )*
        on_every_store!($($name),*);
    };
}

contract_tests!(
    create_then_get_round_trips,
    everything_is_scoped_by_org,
    updates_are_conditional_on_the_version,
    writes_apply_all_or_nothing,
    deletes_refuse_children_unless_deleted_first,
    a_missing_parent_is_refused,
    a_parent_in_another_org_is_refused,
    deletes_are_conditional_on_the_version,
    ancestors_are_nearest_first,
    hierarchy_walks_stop_at_the_bound,
    queries_filter_by_every_kind,
    types_match_their_subtypes,
    parents_filter_children,
    pages_follow_the_sort_without_gaps_or_repeats,
    pages_may_be_short_but_miss_nothing,
    indexed_filters_and_sorts_page_exactly,
    readable_owners_and_subtrees_page_exactly,
    org_pages_follow_the_sort_over_a_large_org,
    counts_and_settings,
    usernames_are_unique_within_an_org,
    tokens_are_found_by_hash_and_revoked,
    passwords_are_set_replaced_and_removed,
    attempts_count_up_to_a_limit_within_a_window,
    identity_links_are_unique_across_orgs,
    queries_return_only_readable_items,
    job_runs_are_claimed_once,
    orgs_are_the_ones_set_up,
    job_records_refuse_a_second_run,
);
