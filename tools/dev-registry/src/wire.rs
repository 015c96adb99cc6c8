//! JSON in and out of the HTTP API: strict request decoding and Consul-shaped responses.

pub(crate) mod decode;
pub(crate) mod request;
pub(crate) mod response;
