//! Opaque page cursors. A cursor carries the keyset position a page ends at (for DynamoDB, the
//! index key it stopped at: the sort value and the id) and the query and org it belongs to,
//! signed with the installation's secret so that a client cannot forge or alter one (a
//! tampered cursor, or one from another query or org, is a `400`, never a query with
//! attacker-chosen values).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use uuid::Uuid;

use super::{ItemQuery, Position, QueryError, Scalar, SortKey};
use crate::types::value::{format_datetime, parse_datetime};

const MAC_LEN: usize = 16;

#[derive(Serialize, Deserialize)]
struct Payload {
    /// The sort spec the cursor was made for.
    s: String,
    /// A digest of the org and the filters of the query the cursor was made for.
    q: String,
    v: Value,
    i: Uuid,
}

/// Signs and checks cursors with one key.
#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec(..)")
    }
}

impl CursorCodec {
    pub fn new(key: &[u8]) -> Self {
        CursorCodec { key: key.to_vec() }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts keys of any length")
    }

    pub fn encode(&self, org: &str, query: &ItemQuery, position: &Position) -> String {
        let v = match &position.value {
            None => Value::Null,
            Some(Scalar::Text(s)) => Value::String(s.clone()),
            Some(Scalar::Int(n)) => Value::from(*n),
            Some(Scalar::Float(n)) => Value::from(*n),
            Some(Scalar::Bool(b)) => Value::Bool(*b),
            Some(Scalar::Time(t)) => Value::String(format_datetime(*t)),
        };
        let payload = serde_json::to_vec(&Payload {
            s: query.sort.spec(),
            q: query_digest(org, query),
            v,
            i: position.id,
        })
        .expect("a cursor payload always serialises");
        let mut mac = self.mac();
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&tag[..MAC_LEN])
        )
    }

    /// Checks `query.cursor` (made for the same query in `org`) and sets `query.after` from it.
    pub fn decode(&self, org: &str, query: &mut ItemQuery) -> Result<(), QueryError> {
        let Some(raw) = query.cursor.as_deref() else {
            return Ok(());
        };
        let bad = || {
            QueryError::new(
                "cursor",
                "the cursor is not valid: use next_cursor from a previous page of the same query",
            )
        };
        let (payload, tag) = raw.split_once('.').ok_or_else(bad)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| bad())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| bad())?;
        if tag.len() != MAC_LEN {
            return Err(bad());
        }
        let mut mac = self.mac();
        mac.update(&payload);
        mac.verify_truncated_left(&tag).map_err(|_| bad())?;
        let p: Payload = serde_json::from_slice(&payload).map_err(|_| bad())?;
        if p.s != query.sort.spec() {
            return Err(QueryError::new(
                "cursor",
                format!(
                    "the cursor belongs to sort={}, not sort={}",
                    p.s,
                    query.sort.spec()
                ),
            ));
        }
        if p.q != query_digest(org, query) {
            return Err(QueryError::new(
                "cursor",
                "the cursor belongs to another query or org: pass the same type, parent, name, q and attr filters as the page it came from",
            ));
        }
        let value = match (&query.sort.key, p.v) {
            (_, Value::Null) => None,
            (SortKey::Created | SortKey::Updated, Value::String(s)) => {
                Some(Scalar::Time(parse_datetime(&s).map_err(|_| bad())?))
            }
            (SortKey::Attr { kind, .. }, v) => {
                Some(super::scalar_from_json(*kind, &v).ok_or_else(bad)?)
            }
            (SortKey::Name, Value::String(s)) => Some(Scalar::Text(s)),
            _ => return Err(bad()),
        };
        query.after = Some(Position { value, id: p.i });
        Ok(())
    }
}

/// What a cursor is bound to: the org and every filter (not the limit, which may change
/// from page to page, nor the sort, which is checked on its own with a clearer message).
fn query_digest(org: &str, query: &ItemQuery) -> String {
    use sha2::Digest;
    let identity = format!(
        "{org}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        query.types, query.parent, query.name, query.words, query.attrs
    );
    URL_SAFE_NO_PAD.encode(&Sha256::digest(identity.as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TypeRegistry;

    fn query(sort: &str, cursor: Option<&str>) -> ItemQuery {
        query_of("Deal", sort, cursor)
    }

    fn query_of(type_name: &str, sort: &str, cursor: Option<&str>) -> ItemQuery {
        let registry = TypeRegistry::with_crm();
        let mut params = vec![
            ("type".to_string(), type_name.to_string()),
            ("sort".to_string(), sort.to_string()),
        ];
        if let Some(c) = cursor {
            params.push(("cursor".to_string(), c.to_string()));
        }
        ItemQuery::parse(&registry, &params, None).expect("valid query")
    }

    #[test]
    fn a_cursor_round_trips_and_refuses_tampering() {
        let codec = CursorCodec::new(b"secret");
        let position = Position {
            value: Some(Scalar::Float(12.5)),
            id: Uuid::now_v7(),
        };
        let cursor = codec.encode("acme", &query("-attr.amount", None), &position);
        let mut q = query("-attr.amount", Some(&cursor));
        codec.decode("acme", &mut q).expect("valid cursor");
        assert_eq!(q.after, Some(position));

        let (payload, tag) = cursor.split_once('.').expect("two parts");
        let mut bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64");
        bytes[5] ^= 1;
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(bytes));
        assert!(
            codec
                .decode("acme", &mut query("-attr.amount", Some(&forged)))
                .is_err()
        );
        assert!(
            CursorCodec::new(b"other")
                .decode("acme", &mut query("-attr.amount", Some(&cursor)))
                .is_err()
        );
        assert!(
            codec
                .decode("acme", &mut query("name", Some(&cursor)))
                .is_err()
        );
        assert!(
            codec
                .decode("acme", &mut query("name", Some("garbage")))
                .is_err()
        );
    }

    #[test]
    fn a_cursor_is_refused_by_another_query_or_org() {
        let codec = CursorCodec::new(b"secret");
        let position = Position {
            value: None,
            id: Uuid::now_v7(),
        };
        let cursor = codec.encode("acme", &query("created", None), &position);
        let other_org = codec
            .decode("globex", &mut query("created", Some(&cursor)))
            .expect_err("another org");
        assert!(other_org.to_string().contains("another query or org"));
        assert!(
            codec
                .decode("acme", &mut query_of("Company", "created", Some(&cursor)))
                .is_err(),
            "another type"
        );
        let mut same = query("created", Some(&cursor));
        same.limit = 7;
        codec
            .decode("acme", &mut same)
            .expect("the same query, another limit");
    }
}
