//! The CRM extension: the `Company`, `Contact` and `Deal` types and the CRM app with its
//! views (shipped as definition files), and two handlers, both acting with the caller's
//! rights and nothing more:
//! - `pipeline_summary`: deals per stage and per company, amounts summed, over the deals the
//!   caller may read;
//! - `import_contacts`: contacts from CSV, every line checked before anything is written,
//!   then all written in one transaction or none; errors by line.

use std::collections::{BTreeMap, HashMap};

use realnet::extensions::{Call, Extension, Handler, HandlerError, HandlerResult};
use realnet::item::ItemError;
use realnet::item::ops::NewItem;
use realnet::types::Layer;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// The stages of a deal, in pipeline order (as `Deal.stage` declares them).
const STAGES: [&str; 5] = ["lead", "qualified", "proposal", "won", "lost"];

/// At most this many contacts in one import: they are written in one transaction, and
/// DynamoDB's holds at most 100 writes.
pub const MAX_IMPORT: usize = 100;

/// The columns an import's header may name.
const COLUMNS: [&str; 5] = ["name", "email", "phone", "company", "notes"];

pub fn extension() -> Extension {
    Extension::new("crm", "Companies, contacts and deals")
        .types("crm.json", Layer::Resource, include_str!("../types/crm.json"))
        .types("crm_app.json", Layer::App, include_str!("../types/crm_app.json"))
        .handler(
            Handler::new(
                "pipeline_summary",
                "Deals per stage and per company, with amounts summed, over the deals you may read",
                pipeline_summary,
            )
            .input(json!({
                "type": "object",
                "properties": {
                    "stages": {"type": "array", "items": {"enum": STAGES}, "uniqueItems": true,
                        "description": "Only deals at these stages (default: all)"}
                },
                "additionalProperties": false
            }))
            .output(summary_schema()),
        )
        .handler(
            Handler::new(
                "import_contacts",
                "Creates contacts from CSV (a header line naming name, email and optionally phone, company, notes); all or nothing",
                import_contacts,
            )
            .input(json!({
                "type": "object",
                "properties": {
                    "csv": {"type": "string", "minLength": 1,
                        "description": "The CSV text: a header line, then one contact per line"}
                },
                "required": ["csv"],
                "additionalProperties": false
            }))
            .output(json!({
                "type": "object",
                "properties": {
                    "created": {"type": "integer", "minimum": 0},
                    "ids": {"type": "array", "items": {"type": "string", "format": "uuid"}}
                },
                "required": ["created", "ids"],
                "additionalProperties": false
            })),
        )
}

fn summary_schema() -> Value {
    let totals = json!({
        "type": "object",
        "properties": {"deals": {"type": "integer", "minimum": 0}, "amount": {"type": "number"}},
        "required": ["deals", "amount"],
        "additionalProperties": false
    });
    json!({
        "type": "object",
        "properties": {
            "total": totals,
            "stages": {"type": "array", "items": {
                "type": "object",
                "properties": {"stage": {"enum": STAGES}, "deals": {"type": "integer"}, "amount": {"type": "number"}},
                "required": ["stage", "deals", "amount"],
                "additionalProperties": false
            }},
            "companies": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "name": {"type": ["string", "null"], "description": "null if you may not read the company"},
                    "deals": {"type": "integer"},
                    "amount": {"type": "number"},
                    "stages": {"type": "object", "additionalProperties": totals}
                },
                "required": ["id", "name", "deals", "amount", "stages"],
                "additionalProperties": false
            }}
        },
        "required": ["total", "stages", "companies"],
        "additionalProperties": false
    })
}

#[derive(Default, Clone, Copy)]
struct Totals {
    deals: u64,
    amount: f64,
}

impl Totals {
    fn add(&mut self, amount: f64) {
        self.deals += 1;
        self.amount += amount;
    }

    fn json(&self) -> Value {
        json!({"deals": self.deals, "amount": self.amount})
    }
}

async fn pipeline_summary(call: Call, input: Value) -> HandlerResult {
    let wanted: Option<Vec<String>> = input.get("stages").and_then(Value::as_array).map(|s| {
        s.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    });
    let deals = call
        .query_all(&call.parse_query(&[("type", "Deal")])?)
        .await?;
    let companies = call
        .query_all(&call.parse_query(&[("type", "Company")])?)
        .await?;
    let names: HashMap<Uuid, &str> = companies.iter().map(|c| (c.id, c.name.as_str())).collect();
    let mut total = Totals::default();
    let mut stages: BTreeMap<usize, Totals> = BTreeMap::new();
    let mut by_company: BTreeMap<Uuid, (Totals, BTreeMap<usize, Totals>)> = BTreeMap::new();
    for deal in &deals {
        let stage = deal
            .attributes
            .get("stage")
            .and_then(Value::as_str)
            .unwrap_or("lead");
        if wanted
            .as_ref()
            .is_some_and(|w| !w.iter().any(|s| s == stage))
        {
            continue;
        }
        let Some(rank) = STAGES.iter().position(|s| *s == stage) else {
            continue;
        };
        let amount = deal
            .attributes
            .get("amount")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        total.add(amount);
        stages.entry(rank).or_default().add(amount);
        if let Some(company) = deal
            .attributes
            .get("company")
            .and_then(Value::as_str)
            .and_then(|c| c.parse::<Uuid>().ok())
        {
            let (all, per_stage) = by_company.entry(company).or_default();
            all.add(amount);
            per_stage.entry(rank).or_default().add(amount);
        }
    }
    let stages: Vec<Value> = stages
        .iter()
        .map(|(rank, t)| json!({"stage": STAGES[*rank], "deals": t.deals, "amount": t.amount}))
        .collect();
    let companies: Vec<Value> = by_company
        .iter()
        .map(|(id, (all, per_stage))| {
            let per_stage: Map<String, Value> = per_stage
                .iter()
                .map(|(rank, t)| (STAGES[*rank].to_string(), t.json()))
                .collect();
            json!({"id": id, "name": names.get(id), "deals": all.deals, "amount": all.amount,
                "stages": per_stage})
        })
        .collect();
    Ok(json!({"total": total.json(), "stages": stages, "companies": companies}))
}

async fn import_contacts(call: Call, input: Value) -> HandlerResult {
    let text = input.get("csv").and_then(Value::as_str).unwrap_or_default();
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| HandlerError::invalid(format!("line 1: {e}"), None))?
        .iter()
        .map(str::to_ascii_lowercase)
        .collect();
    for column in &header {
        if !COLUMNS.contains(&column.as_str()) {
            return Err(HandlerError::invalid(
                format!(
                    "line 1: unknown column {column:?}: use {}",
                    COLUMNS.join(", ")
                ),
                None,
            ));
        }
    }
    for required in ["name", "email"] {
        if !header.iter().any(|c| c == required) {
            return Err(HandlerError::invalid(
                format!("line 1: the header must name the {required} column"),
                None,
            ));
        }
    }
    let companies = company_ids(&call).await?;
    let mut errors = Map::new();
    let mut ids = Vec::new();
    let mut count = 0;
    for record in reader.records() {
        count += 1;
        if count > MAX_IMPORT {
            return Err(HandlerError::invalid(
                format!("at most {MAX_IMPORT} contacts per import: split the file"),
                None,
            ));
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(count + 1, |p| p.line() as usize);
                errors.insert(line.to_string(), json!({"line": e.to_string()}));
                continue;
            }
        };
        let line = record.position().map_or(count + 1, |p| p.line() as usize);
        match contact(&header, &record, &companies) {
            Err(problems) => {
                errors.insert(line.to_string(), Value::Object(problems));
            }
            Ok(new) => match call.create(new).await {
                Ok(item) => ids.push(item.id),
                Err(HandlerError::Item(ItemError::Invalid(v))) => {
                    let fields =
                        v.0.into_iter()
                            .map(|(f, m)| (f, Value::String(m)))
                            .collect();
                    errors.insert(line.to_string(), Value::Object(fields));
                }
                Err(e) => return Err(e),
            },
        }
    }
    if !errors.is_empty() {
        return Err(HandlerError::invalid(
            format!(
                "{} of {count} lines have errors; nothing was imported",
                errors.len()
            ),
            Some(json!({"lines": errors})),
        ));
    }
    if count == 0 {
        return Err(HandlerError::invalid(
            "the CSV has a header but no contacts",
            None,
        ));
    }
    Ok(json!({"created": ids.len(), "ids": ids}))
}

/// The companies the caller may read, by lowercased name (`None` for a name two share).
async fn company_ids(call: &Call) -> Result<HashMap<String, Option<Uuid>>, HandlerError> {
    let mut by_name: HashMap<String, Option<Uuid>> = HashMap::new();
    for c in call
        .query_all(&call.parse_query(&[("type", "Company")])?)
        .await?
    {
        by_name
            .entry(c.name.to_lowercase())
            .and_modify(|id| *id = None)
            .or_insert(Some(c.id));
    }
    Ok(by_name)
}

/// The contact one CSV record describes, or what is wrong with it by column.
fn contact(
    header: &[String],
    record: &csv::StringRecord,
    companies: &HashMap<String, Option<Uuid>>,
) -> Result<NewItem, Map<String, Value>> {
    let mut problems = Map::new();
    let mut name = String::new();
    let mut attributes = Map::new();
    for (column, value) in header.iter().zip(record.iter()) {
        if value.is_empty() {
            continue;
        }
        match column.as_str() {
            "name" => name = value.to_string(),
            "company" => match companies.get(&value.to_lowercase()) {
                Some(Some(id)) => {
                    attributes.insert("company".into(), json!(id));
                }
                Some(None) => {
                    problems.insert(
                        "company".into(),
                        json!(format!("two companies are named {value:?}")),
                    );
                }
                None => {
                    problems.insert(
                        "company".into(),
                        json!(format!("no company named {value:?} that you may read")),
                    );
                }
            },
            other => {
                attributes.insert(other.to_string(), json!(value));
            }
        }
    }
    if name.is_empty() {
        problems.insert("name".into(), json!("a contact needs a name"));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(NewItem {
        type_name: "Contact".into(),
        name,
        parent: None,
        attributes,
    })
}
