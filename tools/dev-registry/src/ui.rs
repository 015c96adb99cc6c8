//! The live status page at `/ui/`: one self-contained HTML document (no external assets)
//! that polls `/ui/api/state` every second.
//!
//! With ACL emulation on, open the page as `/ui/?token=<token>`; the script forwards the
//! token as `X-Consul-Token`.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::api::{ApiError, Call, json};
use crate::state::model::Status;

/// `GET /ui/` and `/ui`.
pub(crate) fn page() -> Response {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
        .into_response()
}

/// The snapshot the page renders.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct State<'a> {
    /// Node name.
    node: &'a str,
    /// Node address.
    address: String,
    /// Current global index.
    index: u64,
    /// Requests served (the page's own polling excluded).
    request_count: u64,
    /// Whether ACLs are emulated.
    acl: bool,
    /// Instances in ID order.
    instances: Vec<Instance<'a>>,
}

/// One instance on the page.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Instance<'a> {
    /// Service name.
    name: &'a str,
    /// Instance ID.
    id: &'a str,
    /// `address:port`, with the node address when none was registered.
    endpoint: String,
    /// Tags.
    tags: &'a [String],
    /// Checks.
    checks: Vec<CheckView<'a>>,
}

/// One check on the page.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckView<'a> {
    /// Check ID.
    id: &'a str,
    /// Name.
    name: &'a str,
    /// Type.
    kind: &'a str,
    /// Status.
    status: Status,
    /// Output.
    output: &'a str,
}

/// `GET /ui/api/state`; needs the token when ACLs are emulated.
pub(crate) fn state(call: &Call) -> Result<Response, ApiError> {
    let registry = &call.registry;
    let node = registry.node();
    call.authorizer()?.require("operator:read", &node.name)?;
    Ok(registry.read(|catalog| {
        let instances = catalog
            .agent_services()
            .values()
            .map(|record| {
                let s = &record.service;
                let host = if s.address.is_empty() {
                    node.address.to_string()
                } else {
                    s.address.clone()
                };
                Instance {
                    name: &s.name,
                    id: &s.id,
                    endpoint: format!("{host}:{}", s.port),
                    tags: &s.tags,
                    checks: catalog
                        .service_checks(&s.id)
                        .map(|c| CheckView {
                            id: &c.info.id,
                            name: &c.info.name,
                            kind: c.info.type_name,
                            status: c.info.status,
                            output: &c.output,
                        })
                        .collect(),
                }
            })
            .collect();
        json(&State {
            node: &node.name,
            address: node.address.to_string(),
            index: catalog.index(),
            request_count: registry.request_count(),
            acl: registry.options().token.is_some(),
            instances,
        })
    }))
}

/// The page. Everything is built with `textContent`, so outputs cannot inject markup.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dev-registry</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
  .meta { color: #666; margin-bottom: 1rem; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #ddd; vertical-align: top; }
  th { background: #f4f4f4; }
  .passing { color: #1a7f37; font-weight: 600; }
  .warning { color: #9a6700; font-weight: 600; }
  .critical { color: #cf222e; font-weight: 600; }
  .output { font-family: ui-monospace, monospace; font-size: 12px; white-space: pre-wrap; word-break: break-all; max-width: 40rem; }
  .error { color: #cf222e; }
</style>
</head>
<body>
<h1>dev-registry</h1>
<div class="meta" id="meta">loading…</div>
<table>
  <thead><tr><th>Service</th><th>Instance</th><th>Address</th><th>Check</th><th>Status</th><th>Output</th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token");
function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}
function render(state) {
  document.getElementById("meta").textContent =
    `node ${state.node} (${state.address}) · index ${state.index} · ${state.requestCount} requests` +
    (state.acl ? " · ACLs on" : "");
  const rows = document.getElementById("rows");
  rows.replaceChildren();
  if (state.instances.length === 0) {
    const row = rows.insertRow();
    const td = cell(row, "no services registered");
    td.colSpan = 6;
  }
  for (const inst of state.instances) {
    const checks = inst.checks.length ? inst.checks : [null];
    checks.forEach((check, i) => {
      const row = rows.insertRow();
      cell(row, i === 0 ? inst.name + (inst.tags.length ? " [" + inst.tags.join(", ") + "]" : "") : "");
      cell(row, i === 0 ? inst.id : "");
      cell(row, i === 0 ? inst.endpoint : "");
      cell(row, check ? `${check.name} (${check.id}, ${check.kind})` : "no checks");
      cell(row, check ? check.status : "", check ? check.status : "");
      cell(row, check ? check.output : "", "output");
    });
  }
}
async function refresh() {
  try {
    const headers = token ? { "X-Consul-Token": token } : {};
    const response = await fetch("/ui/api/state", { headers, cache: "no-store" });
    if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    render(await response.json());
  } catch (e) {
    const meta = document.getElementById("meta");
    meta.textContent = "registry unreachable: " + e.message;
    meta.className = "meta error";
    return setTimeout(refresh, 1000);
  }
  document.getElementById("meta").className = "meta";
  setTimeout(refresh, 1000);
}
refresh();
</script>
</body>
</html>
"#;
