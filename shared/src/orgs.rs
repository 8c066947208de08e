//! Setting up orgs (`realnet init`, `realnet org create`, the first start of `realnet
//! serve`): an org exists once it has its `Org` item, and gets each seed item of the
//! definitions once, and a first admin account if it has none.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::auth::{Principal, identity, password};
use crate::config::check_org_name;
use crate::context::Realnet;
use crate::item::ItemError;
use crate::item::ops::{self, NewItem};
use crate::query::{ItemQuery, NameFilter, ParentFilter, Readable};
use crate::store::StoreError;
use crate::types::SeedItem;

/// What setting up an org did. The counts are of the definitions' seed items alone (what
/// `realnet types check` counts): the org's `Org` item and its first admin are not seeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// Seed items created by this run.
    pub created: usize,
    /// Seed items that were there already.
    pub existing: usize,
    /// Seed items the org had that were deleted since, and are not made again.
    pub kept_deleted: usize,
    /// The first admin, if this run created it.
    pub admin: Option<NewAdmin>,
}

/// An org's first admin account.
#[derive(Clone, PartialEq, Eq)]
pub struct NewAdmin {
    pub org: String,
    pub username: String,
    /// The password, if it was generated (shown once, never stored); `None` when it came from
    /// `REALNET_ADMIN_PASSWORD` or the caller.
    pub generated_password: Option<String>,
}

impl std::fmt::Debug for NewAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAdmin")
            .field("org", &self.org)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The username of an org's first admin.
pub const FIRST_ADMIN: &str = "admin";

impl Realnet {
    /// Migrates the store and sets up the default org (see [`Realnet::init_org`]), with
    /// `REALNET_ADMIN_PASSWORD` as the first admin's password if it is set. Safe to run again.
    pub async fn init(&self) -> Result<InitReport, ItemError> {
        self.store.migrate().await?;
        let password = self
            .config
            .auth
            .admin_password
            .as_ref()
            .map(|s| s.0.clone());
        self.init_org(&self.config.default_org, password).await
    }

    /// Whether `org` has been set up (it has its `Org` item): every path that takes an org
    /// from its input refuses one that has not, so a misspelled org name never makes a tenant.
    pub async fn org_exists(&self, org: &str) -> Result<bool, StoreError> {
        Ok(self.org_portfolio(org).await?.is_some())
    }

    /// The portfolio `org` belongs to: its `Org` item's `portfolio` attribute, or else the
    /// org's own name; `None` if the org has not been set up. Cached like the access rules.
    pub async fn org_portfolio(&self, org: &str) -> Result<Option<Arc<str>>, StoreError> {
        if let Some(portfolio) = self.auth.orgs.get(org) {
            return Ok(Some(portfolio));
        }
        let read = self.auth.orgs.begin();
        if check_org_name(org).is_err() {
            return Ok(None);
        }
        let mut query =
            ItemQuery::parse(&self.types, &[], None).expect("an empty query always parses");
        query.types = vec!["Org".to_string()];
        query.readable = Readable::All;
        query.limit = 1;
        let found = crate::store::first_item(&*self.store, org, &query).await?;
        let found = crate::store::current(&*self.store, org, &query, found.into_iter().collect());
        let Some(item) = found.await?.pop() else {
            return Ok(None);
        };
        let portfolio: Arc<str> = item
            .attributes
            .get("portfolio")
            .and_then(Value::as_str)
            .unwrap_or(org)
            .into();
        self.auth
            .orgs
            .keep(read, org.to_string(), portfolio.clone());
        Ok(Some(portfolio))
    }

    /// Forgets `org`'s cached portfolio after a change to its `Org` item made here.
    pub(crate) fn forget_org(&self, org: &str) {
        self.auth.orgs.forget(org);
    }

    /// Sets up `org`: its `Org` item, the seed items of the definitions (including the default
    /// access rules of `access.json`) and, if the org has no account yet, an admin account
    /// named `admin` with `password` or a generated one. Safe to run again: each seed item is
    /// created once per org (see [`SEEDED`]), so one an admin deleted stays deleted, and the
    /// seed items a newer definition adds are created the next time.
    pub async fn init_org(
        &self,
        org: &str,
        password: Option<String>,
    ) -> Result<InitReport, ItemError> {
        if let Err(m) = check_org_name(org) {
            return Err(crate::item::attributes::ValidationErrors::single("org", m).into());
        }
        let principal = Principal::org_admin(org);
        let mut report = InitReport {
            created: 0,
            existing: 0,
            kept_deleted: 0,
            admin: None,
        };
        let org_item = SeedItem {
            type_name: "Org".to_string(),
            name: org.to_string(),
            attributes: Map::new(),
            children: Vec::new(),
        };
        // The org's mark, not a seed (its record and its count are thrown away): there
        // whenever the org is.
        self.seed(
            &principal,
            &org_item,
            None,
            "",
            &mut BTreeSet::new(),
            &mut report.clone(),
        )
        .await?;
        let record = format!("{SEEDED}{org}");
        let stored = self.store.setting(&record, "[]").await?;
        let mut seeded: BTreeSet<String> = serde_json::from_str(&stored).map_err(|e| {
            StoreError::Backend(format!(
                "the setting {record:?} is not a list of seed keys: {e}"
            ))
        })?;
        let before = seeded.len();
        let mut outcome = Ok(());
        for seed in self.types.seeds() {
            outcome = self
                .seed(&principal, seed, None, "", &mut seeded, &mut report)
                .await;
            if outcome.is_err() {
                break;
            }
        }
        // What was created before a failure is recorded too.
        if seeded.len() != before {
            let list = serde_json::to_string(&seeded).expect("a set of strings serializes");
            self.store.put_setting(&record, &list).await?;
        }
        outcome?;
        let mut accounts =
            ItemQuery::parse(&self.types, &[], None).expect("an empty query always parses");
        accounts.types = self.types.subtypes("Account").to_vec();
        accounts.limit = 1;
        accounts.readable = Readable::All;
        if crate::store::first_item(&*self.store, org, &accounts)
            .await?
            .is_none()
        {
            let (password, generated) = match password {
                Some(p) => (p, None),
                None => {
                    let p = password::generate();
                    (p.clone(), Some(p))
                }
            };
            let mut attributes = Map::new();
            attributes.insert("username".into(), Value::from(FIRST_ADMIN));
            attributes.insert("admin".into(), Value::Bool(true));
            attributes.insert(identity::PASSWORD.into(), Value::String(password));
            ops::create(
                self,
                &principal,
                NewItem {
                    type_name: "Account".to_string(),
                    name: FIRST_ADMIN.to_string(),
                    parent: None,
                    attributes,
                },
                None,
            )
            .await?;
            report.admin = Some(NewAdmin {
                org: org.to_string(),
                username: FIRST_ADMIN.to_string(),
                generated_password: generated,
            });
        }
        Ok(report)
    }

    /// Creates `seed` under `parent` (whose seed key is `above`) unless it exists (same type,
    /// parent and name) or is in `seeded`, the keys of the seed items the org has had; then
    /// its children. Each seed created or found is added to `seeded`.
    async fn seed(
        &self,
        principal: &Principal,
        seed: &SeedItem,
        parent: Option<uuid::Uuid>,
        above: &str,
        seeded: &mut BTreeSet<String>,
        report: &mut InitReport,
    ) -> Result<(), ItemError> {
        let key = seed_key(above, seed);
        // Built by hand: a seed's name is matched exactly, even if it ends in `*`.
        let mut query =
            ItemQuery::parse(&self.types, &[], None).expect("an empty query always parses");
        query.types = vec![seed.type_name.clone()];
        query.parent = Some(parent.map_or(ParentFilter::Root, ParentFilter::Id));
        query.name = Some(NameFilter::Exact(seed.name.clone()));
        query.limit = 1;
        let existing = crate::store::first_item(&*self.store, &principal.org, &query).await?;
        let id = match existing.as_ref() {
            Some(item) => {
                report.existing += 1;
                item.id
            }
            None if seeded.contains(&key) => {
                // Deleted since it was made: so are its children.
                report.kept_deleted += 1;
                return Ok(());
            }
            None => {
                // Seeds are the deployment's own definitions (and the org's `Org` item).
                let (item, _) = ops::create_by_server(
                    self,
                    principal,
                    NewItem {
                        type_name: seed.type_name.clone(),
                        name: seed.name.clone(),
                        parent,
                        attributes: seed.attributes.clone(),
                    },
                    None,
                )
                .await?;
                report.created += 1;
                item.id
            }
        };
        seeded.insert(key.clone());
        for child in &seed.children {
            Box::pin(self.seed(principal, child, Some(id), &key, seeded, report)).await?;
        }
        Ok(())
    }
}

/// The prefix of the store setting that lists, for an org, the key of every seed item the
/// org has had (see [`seed_key`]): `seeded:<org>`.
pub const SEEDED: &str = "seeded:";

/// A seed item's key: the types and names from the top seed down to it, as
/// `Type:name/Type:name`, with `%` and `/` in names escaped.
fn seed_key(above: &str, seed: &SeedItem) -> String {
    let name = seed.name.replace('%', "%25").replace('/', "%2F");
    let own = format!("{}:{name}", seed.type_name);
    if above.is_empty() {
        own
    } else {
        format!("{above}/{own}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(type_name: &str, name: &str) -> SeedItem {
        SeedItem {
            type_name: type_name.into(),
            name: name.into(),
            attributes: Map::new(),
            children: Vec::new(),
        }
    }

    #[test]
    fn seed_keys_name_the_path_down_to_a_seed_unambiguously() {
        let top = seed_key("", &seed("Folder", "Apps"));
        assert_eq!(top, "Folder:Apps");
        assert_eq!(
            seed_key(&top, &seed("Folder", "a/b%")),
            "Folder:Apps/Folder:a%2Fb%25"
        );
        assert_ne!(
            seed_key("", &seed("Folder", "a/Folder:b")),
            seed_key(&seed_key("", &seed("Folder", "a")), &seed("Folder", "b"))
        );
    }
}
