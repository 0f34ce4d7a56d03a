//! The objects the Batch API answers with, typed. Each keeps the whole JSON object the server
//! sent (`json`, `into_json`: fields this client does not know survive) and reads the
//! contract's fields from it; an answer that is not such an object is a `Decode` error.

use serde_json::{Map, Value};

use crate::error::ClientError;

/// The object in an answer, which must carry a string id: `id`, or the field FastRouter's
/// reference documents beside it (`alias`: `file_id` on files, `batch_id` on batches; its
/// answers may carry either or both). Each is filled in from the other, so every reader
/// finds both.
fn object(value: Value, what: &str, alias: Option<&str>) -> Result<Map<String, Value>, ClientError> {
    let mut map = match value {
        Value::Object(map) => map,
        other => return Err(not_an_object(&other, what)),
    };
    if let Some(alias) = alias {
        match (map.get("id").filter(|v| v.is_string()), map.get(alias).filter(|v| v.is_string())) {
            (Some(id), None) => {
                let id = id.clone();
                map.insert(alias.to_owned(), id);
            }
            (None, Some(id)) => {
                let id = id.clone();
                map.insert("id".to_owned(), id);
            }
            _ => {}
        }
    }
    if !map.get("id").is_some_and(Value::is_string) {
        return Err(not_an_object(&Value::Object(map), what));
    }
    Ok(map)
}

fn not_an_object(value: &Value, what: &str) -> ClientError {
    let mut shown = value.to_string();
    if shown.len() > 200 {
        let mut end = 200;
        while !shown.is_char_boundary(end) {
            end -= 1;
        }
        shown.truncate(end);
        shown.push('…');
    }
    ClientError::Decode { message: format!("The server's answer is not {what} (an object with an id): {shown}") }
}

/// `errors` sent as a bare list (as some OpenAI-compatible servers do) becomes the
/// documented `{"object": "list", "data": [...]}`, so readers meet one shape.
fn normalise_errors(map: &mut Map<String, Value>) {
    if let Some(Value::Array(items)) = map.get_mut("errors") {
        let data = std::mem::take(items);
        let mut list = Map::new();
        list.insert("object".into(), "list".into());
        list.insert("data".into(), Value::Array(data));
        map.insert("errors".into(), Value::Object(list));
    }
}

/// An object of the API: read from the server's JSON, and given back as it came.
pub trait ApiObject: TryFrom<Value, Error = ClientError> {
    fn into_json(self) -> Value;
}

macro_rules! api_object {
    ($(#[$doc:meta])* $name:ident, $what:literal, $alias:expr $(, $fix:path)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name(Map<String, Value>);

        impl $name {
            pub fn id(&self) -> &str {
                self.str("id").unwrap_or_default()
            }

            /// The object as the server sent it.
            pub fn json(&self) -> &Map<String, Value> {
                &self.0
            }

            fn str(&self, key: &str) -> Option<&str> {
                self.0.get(key).and_then(Value::as_str)
            }

            #[allow(dead_code)] // not every object has a number field
            fn count(&self, key: &str) -> Option<u64> {
                self.0.get(key).and_then(Value::as_u64)
            }
        }

        impl ApiObject for $name {
            fn into_json(self) -> Value {
                Value::Object(self.0)
            }
        }

        impl TryFrom<Value> for $name {
            type Error = ClientError;

            fn try_from(value: Value) -> Result<Self, ClientError> {
                #[allow(unused_mut)]
                let mut map = object(value, $what, $alias)?;
                $($fix(&mut map);)?
                Ok(Self(map))
            }
        }
    };
}

api_object!(
    /// An uploaded file (`POST /v1/files`, `GET /v1/files/{id}`).
    FileObject,
    "a file",
    Some("file_id")
);

impl FileObject {
    pub fn filename(&self) -> Option<&str> {
        self.str("filename")
    }

    pub fn purpose(&self) -> Option<&str> {
        self.str("purpose")
    }

    /// The file's size in bytes.
    pub fn bytes(&self) -> Option<u64> {
        self.count("bytes")
    }

    /// Requests in a batch input file (FastRouter's own field).
    pub fn num_rows(&self) -> Option<u64> {
        self.count("num_rows")
    }
}

api_object!(
    /// The answer to `DELETE /v1/files/{id}`.
    FileDeleted,
    "a deleted file",
    Some("file_id")
);

impl FileDeleted {
    pub fn deleted(&self) -> bool {
        self.0.get("deleted").and_then(Value::as_bool).unwrap_or(false)
    }
}

api_object!(
    /// A batch (`POST /v1/batches`, `GET /v1/batches/{id}`, `.../cancel`).
    Batch,
    "a batch",
    Some("batch_id"),
    normalise_errors
);

/// Requests of a batch: in all, completed, failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub total: u64,
    pub completed: u64,
    pub failed: u64,
}

/// The statuses after which a batch never changes again.
pub const TERMINAL_STATUSES: &[&str] = &["completed", "failed", "expired", "cancelled"];

impl Batch {
    /// `validating`, `in_progress`, `finalizing`, `completed`, `failed`, `expired`,
    /// `cancelling` or `cancelled` ("" if the server left it out).
    pub fn status(&self) -> &str {
        self.str("status").unwrap_or_default()
    }

    /// Completed, failed, expired or cancelled: nothing will change any more.
    pub fn is_terminal(&self) -> bool {
        TERMINAL_STATUSES.contains(&self.status())
    }

    pub fn input_file_id(&self) -> Option<&str> {
        self.str("input_file_id")
    }

    pub fn output_file_id(&self) -> Option<&str> {
        self.str("output_file_id")
    }

    pub fn error_file_id(&self) -> Option<&str> {
        self.str("error_file_id")
    }

    pub fn endpoint(&self) -> Option<&str> {
        self.str("endpoint")
    }

    pub fn request_counts(&self) -> Option<RequestCounts> {
        let counts = self.0.get("request_counts")?.as_object()?;
        let n = |k: &str| counts.get(k).and_then(Value::as_u64).unwrap_or(0);
        Some(RequestCounts { total: n("total"), completed: n("completed"), failed: n("failed") })
    }

    pub fn metadata(&self) -> Option<&Map<String, Value>> {
        self.0.get("metadata").and_then(Value::as_object)
    }
}

/// A batch's breakdown by provider (`GET /v1/batches/{id}/providers`, an extension of the
/// local engine, not of the hosted API): each provider's request counts and token usage.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderBreakdownList(Map<String, Value>);

impl ProviderBreakdownList {
    pub fn batch_id(&self) -> Option<&str> {
        self.0.get("batch_id").and_then(Value::as_str)
    }

    /// `(provider, request counts)` of each provider, in the server's order.
    pub fn request_counts(&self) -> Vec<(&str, RequestCounts)> {
        self.items()
            .map(|item| {
                let counts = item.get("request_counts").and_then(Value::as_object);
                let n = |k: &str| counts.and_then(|c| c.get(k)).and_then(Value::as_u64).unwrap_or(0);
                let provider = item.get("provider").and_then(Value::as_str).unwrap_or_default();
                (provider, RequestCounts { total: n("total"), completed: n("completed"), failed: n("failed") })
            })
            .collect()
    }

    fn items(&self) -> impl Iterator<Item = &Map<String, Value>> {
        self.0.get("data").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
    }
}

impl ApiObject for ProviderBreakdownList {
    fn into_json(self) -> Value {
        Value::Object(self.0)
    }
}

impl TryFrom<Value> for ProviderBreakdownList {
    type Error = ClientError;

    /// A list object whose `data` is an array of objects each naming its `provider`.
    fn try_from(value: Value) -> Result<Self, ClientError> {
        let well_formed = |map: &Map<String, Value>| {
            map.get("data").and_then(Value::as_array).is_some_and(|items| {
                items.iter().all(|i| i.as_object().is_some_and(|o| o.get("provider").is_some_and(Value::is_string)))
            })
        };
        match value {
            Value::Object(map) if well_formed(&map) => Ok(Self(map)),
            _ => Err(ClientError::Decode {
                message: "The server's answer is not a provider breakdown (a list whose items name their provider)"
                    .into(),
            }),
        }
    }
}

/// One page of a list (`GET /v1/files`, `GET /v1/batches`).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    /// The rest of the answer, without `data`.
    envelope: Map<String, Value>,
}

impl<T: ApiObject> Page<T> {
    /// The page as the server sent it.
    pub fn into_json(self) -> Value {
        let mut json = self.envelope;
        json.insert("data".into(), Value::Array(self.data.into_iter().map(T::into_json).collect()));
        Value::Object(json)
    }
}

impl<T: ApiObject> TryFrom<Value> for Page<T> {
    type Error = ClientError;

    fn try_from(value: Value) -> Result<Self, ClientError> {
        let Value::Object(mut envelope) = value else {
            return Err(ClientError::Decode { message: "The server's answer is not a list object".into() });
        };
        let data = match envelope.remove("data") {
            Some(Value::Array(items)) => items.into_iter().map(T::try_from).collect::<Result<_, _>>()?,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                return Err(ClientError::Decode {
                    message: "The server's list has a `data` that is not an array".into(),
                })
            }
        };
        let text = |k: &str| envelope.get(k).and_then(Value::as_str).map(str::to_owned);
        let (first_id, last_id) = (text("first_id"), text("last_id"));
        let has_more = envelope.get("has_more").and_then(Value::as_bool).unwrap_or(false);
        Ok(Self { data, has_more, first_id, last_id, envelope })
    }
}

/// Which page of a list: at most `limit` items after the one with id `after`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    pub limit: Option<u64>,
    pub after: Option<String>,
}

impl ListParams {
    pub(crate) fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(limit) = self.limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(after) = &self.after {
            query.push(("after", after.clone()));
        }
        query
    }
}

/// What `batches().create` sends.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateBatch {
    pub input_file_id: String,
    /// The url of the file's requests.
    pub endpoint: String,
    pub completion_window: String,
    pub metadata: Option<Map<String, Value>>,
    /// Makes a retried create (after a lost answer, say) return the batch the first attempt
    /// made. None: one is made for this call, so its own retries are safe.
    pub idempotency_key: Option<String>,
}

impl CreateBatch {
    /// A chat batch of `input_file_id`, to finish within 24 hours.
    pub fn new(input_file_id: impl Into<String>) -> Self {
        Self {
            input_file_id: input_file_id.into(),
            endpoint: fastrouter_batch_core::model::CHAT_URL.into(),
            completion_window: "24h".into(),
            metadata: None,
            idempotency_key: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_keep_what_the_server_sent() {
        // As FastRouter answers: `batch_id` beside `id` (a missing one is filled in, below).
        let sent = json!({"id": "b1", "batch_id": "b1", "status": "completed", "request_counts": {"total": 3, "completed": 2, "failed": 1},
                          "output_file_id": "f2", "error_file_id": null, "new_field": [1]});
        let b = Batch::try_from(sent.clone()).unwrap();
        assert_eq!((b.id(), b.status(), b.is_terminal()), ("b1", "completed", true));
        assert_eq!(b.request_counts(), Some(RequestCounts { total: 3, completed: 2, failed: 1 }));
        assert_eq!((b.output_file_id(), b.error_file_id()), (Some("f2"), None));
        assert_eq!(b.into_json(), sent);
        for bad in [json!([1]), json!({"status": "completed"}), json!({"id": 7})] {
            let e = Batch::try_from(bad).unwrap_err();
            assert!(matches!(e, ClientError::Decode { .. }), "{e}");
        }
    }

    #[test]
    fn provider_breakdowns() {
        let sent = json!({"object": "list", "batch_id": "b1", "data": [
            {"provider": "anthropic", "request_counts": {"total": 2, "completed": 1, "failed": 1}, "usage": {}},
            {"provider": "openai", "request_counts": {"total": 3, "completed": 3, "failed": 0}, "more": true}]});
        let list = ProviderBreakdownList::try_from(sent.clone()).unwrap();
        assert_eq!(list.batch_id(), Some("b1"));
        assert_eq!(
            list.request_counts(),
            [
                ("anthropic", RequestCounts { total: 2, completed: 1, failed: 1 }),
                ("openai", RequestCounts { total: 3, completed: 3, failed: 0 })
            ]
        );
        assert_eq!(list.into_json(), sent);
        for bad in [json!([]), json!({"data": {}}), json!({"data": [{"provider": 1}]}), json!({"data": [7]})] {
            let e = ProviderBreakdownList::try_from(bad).unwrap_err();
            assert!(matches!(e, ClientError::Decode { .. }), "{e}");
        }
    }

    #[test]
    fn ids_come_from_the_documented_aliases() {
        // FastRouter's reference: uploads answer `file_id`, creates `batch_id`, `id` "same as".
        let f = FileObject::try_from(json!({"file_id": "file-1", "num_rows": 2})).unwrap();
        assert_eq!((f.id(), f.json()["file_id"].as_str()), ("file-1", Some("file-1")));
        let b = Batch::try_from(json!({"batch_id": "fr_batch-1", "status": "validating"})).unwrap();
        assert_eq!((b.id(), b.json()["batch_id"].as_str()), ("fr_batch-1", Some("fr_batch-1")));
        let b = Batch::try_from(json!({"id": "b2"})).unwrap();
        assert_eq!(b.json()["batch_id"], json!("b2"));
        // Both given: both kept as sent.
        let b = Batch::try_from(json!({"id": "b3", "batch_id": "b3"})).unwrap();
        assert_eq!(b.id(), "b3");
        assert!(Batch::try_from(json!({"file_id": "f"})).is_err(), "a file id is no batch id");
        let page = Page::<Batch>::try_from(json!({"data": [{"batch_id": "x"}]})).unwrap();
        assert_eq!(page.data[0].id(), "x");
    }

    #[test]
    fn bare_error_lists_become_the_documented_list_object() {
        let errors = json!([{"code": "invalid", "line": 1, "message": "bad"}]);
        let b = Batch::try_from(json!({"id": "b", "status": "failed", "errors": errors.clone()})).unwrap();
        assert_eq!(b.json()["errors"], json!({"object": "list", "data": errors}));
        let documented = json!({"object": "list", "data": []});
        let b = Batch::try_from(json!({"id": "b", "errors": documented.clone()})).unwrap();
        assert_eq!(b.json()["errors"], documented);
    }

    #[test]
    fn pages() {
        let sent = json!({"object": "list", "data": [{"id": "a", "file_id": "a"}, {"id": "b", "file_id": "b"}],
                          "first_id": "a", "last_id": "b", "has_more": true});
        let page = Page::<FileObject>::try_from(sent.clone()).unwrap();
        assert_eq!(page.data.iter().map(FileObject::id).collect::<Vec<_>>(), ["a", "b"]);
        assert!(page.has_more);
        assert_eq!(page.last_id.as_deref(), Some("b"));
        assert_eq!(page.into_json(), sent);
        assert!(Page::<FileObject>::try_from(json!({"data": [{"no": "id"}]})).is_err());
    }
}
