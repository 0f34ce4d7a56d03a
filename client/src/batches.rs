//! `/v1/batches`: create, retrieve, list, cancel.

use reqwest::Method;
use serde_json::{Map, Value};

use crate::error::ClientError;
use crate::transport::{path_segment, Client};
use crate::types::{Batch, CreateBatch, ListParams, Page, ProviderBreakdownList};

pub struct Batches<'c> {
    client: &'c Client,
}

impl<'c> Batches<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        Self { client }
    }

    /// `POST /v1/batches`. Every attempt carries one idempotency key (the request's, or one
    /// made for this call), so a create retried after a lost answer makes no second batch.
    pub async fn create(&self, request: &CreateBatch) -> Result<Batch, ClientError> {
        if request.input_file_id.is_empty() {
            return Err(ClientError::config("input_file_id must not be empty"));
        }
        let mut body = Map::new();
        body.insert("input_file_id".into(), request.input_file_id.clone().into());
        body.insert("endpoint".into(), request.endpoint.clone().into());
        body.insert("completion_window".into(), request.completion_window.clone().into());
        if let Some(metadata) = &request.metadata {
            body.insert("metadata".into(), Value::Object(metadata.clone()));
        }
        let key = request.idempotency_key.clone().unwrap_or_else(new_idempotency_key);
        self.client.call(Method::POST, "/v1/batches", &[], Some(&Value::Object(body)), Some(&key)).await
    }

    /// `GET /v1/batches/{batch_id}`.
    pub async fn retrieve(&self, batch_id: &str) -> Result<Batch, ClientError> {
        let path = format!("/v1/batches/{}", path_segment("batch_id", batch_id)?);
        self.client.call(Method::GET, &path, &[], None, None).await
    }

    /// `GET /v1/batches`: one page, newest first.
    pub async fn list(&self, page: &ListParams) -> Result<Page<Batch>, ClientError> {
        self.client.call(Method::GET, "/v1/batches", &page.query(), None, None).await
    }

    /// `GET /v1/batches/{batch_id}/providers`: the batch's request counts and usage by
    /// provider. An extension of the local engine; the hosted API answers 404.
    pub async fn providers(&self, batch_id: &str) -> Result<ProviderBreakdownList, ClientError> {
        let path = format!("/v1/batches/{}/providers", path_segment("batch_id", batch_id)?);
        self.client.call(Method::GET, &path, &[], None, None).await
    }

    /// `POST /v1/batches/{batch_id}/cancel`: the requests not yet run are not run; the
    /// batch ends `cancelled` with the results so far.
    pub async fn cancel(&self, batch_id: &str) -> Result<Batch, ClientError> {
        let path = format!("/v1/batches/{}/cancel", path_segment("batch_id", batch_id)?);
        self.client.call(Method::POST, &path, &[], None, None).await
    }
}

/// `fastrouter-batch-<a random UUID>`.
fn new_idempotency_key() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("fastrouter-batch-{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

#[cfg(test)]
mod tests {
    #[test]
    fn idempotency_keys_are_uuids() {
        let (a, b) = (super::new_idempotency_key(), super::new_idempotency_key());
        assert_ne!(a, b);
        let uuid = a.strip_prefix("fastrouter-batch-").unwrap();
        let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&uuid[14..15], "4");
    }
}
