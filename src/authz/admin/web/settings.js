"use strict";
const $ = (id) => document.getElementById(id);
// The requirement checkboxes come from the admin API (GET /v1/requirements), so a requirement
// added to the server's registry appears here without a change to this page.
let REQUIREMENTS = [];
const LISTS = ["allowed_countries", "data_residency", "provider_allowlist", "provider_denylist", "model_allowlist", "model_denylist"];
const listValue = (id) => $(id).value.split(",").map((x) => x.trim()).filter(Boolean);
let token = "", org = "", storedVersion = 0, previewTimer = null, previewSeq = 0;

function claims(jwt) {
  const part = jwt.split(".")[1] || "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
  return JSON.parse(json);
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "authorization": "Bearer " + token, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (data.error && data.error.message) || ("HTTP " + response.status);
    throw new Error(message);
  }
  return data;
}

function text(cell, value) { cell.textContent = value; return cell; }

function policyFromForm() {
  const policy = { enabled: $("enabled").checked,
                   mode: $("dry_run").checked ? "POLICY_MODE_DRY_RUN" : "POLICY_MODE_ENFORCE" };
  for (const name of REQUIREMENTS) policy[name] = $(name).checked;
  for (const name of LISTS) policy[name] = listValue(name);
  policy.allowed_countries = policy.allowed_countries.map((c) => c.toUpperCase());
  policy.data_residency = policy.data_residency.map((r) => r.toLowerCase());
  if (policy.require_soc2 && policy.require_iso27001) {
    policy.certifications = document.querySelector("input[name=certifications]:checked").value;
  }
  return policy;
}

function fillForm(policy) {
  $("enabled").checked = !!policy.enabled;
  $("dry_run").checked = policy.mode === "POLICY_MODE_DRY_RUN";
  for (const name of REQUIREMENTS) $(name).checked = !!policy[name];
  for (const name of LISTS) $(name).value = (policy[name] || []).join(", ");
  const any = policy.certifications === "CERTIFICATION_MATCH_ANY";
  $(any ? "cert-any" : "cert-all").checked = true;
  syncCertificationGroup();
}

function syncCertificationGroup() {
  const both = !!($("require_soc2") && $("require_soc2").checked && $("require_iso27001").checked);
  for (const radio of document.querySelectorAll("input[name=certifications]")) radio.disabled = !both;
}

// The list pickers: catalog providers and models, each marked as meeting the policy being
// edited or not (refreshed with every preview). Choosing one appends it to the list's field.
let catalogModels = [];

async function loadCatalogNames() {
  try {
    const result = await api("GET", "/v1/providers");
    catalogModels = Object.keys(result.models || {}).sort();
  } catch (error) {
    catalogModels = [];
  }
}

function fillPickers(result) {
  const providers = (result.providers || []).map((p) => [p.provider, p.allowed ? "meets the policy" : "blocked"]);
  const noCompliant = new Set([...(result.models_without_compliant_provider || []),
                               ...(result.models_blocked_by_lists || [])]);
  const models = catalogModels.map((m) => [m, noCompliant.has(m) ? "no compliant provider" : "has a compliant provider"]);
  for (const picker of document.querySelectorAll("select.picker")) {
    const options = picker.dataset.kind === "provider" ? providers : models;
    picker.replaceChildren(picker.options[0]);
    for (const [id, status] of options) {
      const option = document.createElement("option");
      option.value = id;
      option.textContent = `${id} (${status})`;
      picker.append(option);
    }
  }
}

function pick(event) {
  const picker = event.target;
  if (!picker.classList.contains("picker") || !picker.value) return;
  const field = $(picker.dataset.list);
  const entries = listValue(picker.dataset.list);
  if (!entries.includes(picker.value)) entries.push(picker.value);
  field.value = entries.join(", ");
  picker.value = "";
}

function renderPreview(result) {
  fillPickers(result);
  const body = document.querySelector("#preview tbody");
  body.replaceChildren();
  for (const p of result.providers || []) {
    const row = body.insertRow();
    row.dataset.provider = p.provider;
    row.dataset.allowed = String(!!p.allowed);
    const label = p.name ? `${p.name} (${p.provider})` : p.provider;
    text(row.insertCell(), p.region_of ? `${label}, a region of ${p.region_of}` : label);
    const status = text(row.insertCell(), p.allowed ? "Allowed" : "Blocked");
    status.className = p.allowed ? "allowed" : "blocked";
    const reasons = row.insertCell();
    if (!(p.unmet || []).length) text(reasons, "–");
    for (const u of p.unmet || []) {
      const item = document.createElement("div");
      item.textContent = `${u.label} (${u.cause === "unknown" ? "unknown" : "not met"})`;
      if (u.evidence) {  // where the value comes from, so a person can check it
        const source = document.createElement("small");
        source.className = "evidence";
        source.textContent = ` source: ${u.evidence}${u.checked_at ? ", checked " + u.checked_at : ""}`;
        item.append(source);
      }
      reasons.append(item);
    }
  }
  $("preview-summary").textContent =
    `${result.allowed_count || 0} providers allowed, ${result.blocked_count || 0} blocked (catalog v${result.catalog_version}).` +
    ($("enabled").checked ? "" : " The policy is off: nothing is blocked until you enable it.") +
    (result.advice || []).map((line) => " " + line).join("");
  const orphans = result.models_without_compliant_provider || [];
  const listed = result.models_blocked_by_lists || [];
  const pins = result.models_needing_a_pin_in_strict_routing || [];
  const covering = (result.list_coverage || []).filter((c) => (c.covers || []).length > 1);
  $("orphans").textContent = (orphans.length
    ? `Models with no compliant provider (every request for them would be blocked): ${orphans.join(", ")}.`
    : "Every model keeps at least one compliant provider.") +
    (listed.length ? ` Models blocked by your model lists: ${listed.join(", ")}.` : "") +
    (covering.length ? " Provider list entries that cover regional entries too: " + covering.map(
      (c) => `${c.entry} (${c.list.replace("_", " ")}) covers ${c.covers.join(", ")}`).join("; ") + "." : "") +
    (pins.length ? ` Models that need a pinned provider where the gateway cannot be restricted (strict routing): ${pins.join(", ")}.` : "") +
    ((result.watched_models || []).length ? " Watched models: " + result.watched_models.map(
      (w) => `${w.model} (${w.compliant_providers || 0} compliant provider${w.compliant_providers === 1 ? "" : "s"})`
    ).join(", ") + "." : "");
}

async function refreshPreview() {
  const seq = ++previewSeq;
  const policy = policyFromForm();
  try {
    const result = await api("POST", `/v1/orgs/${encodeURIComponent(org)}/policy:preview`,
                             { policy: { ...policy, enabled: true } });
    if (seq === previewSeq) renderPreview(result);
  } catch (error) {
    if (seq === previewSeq) {
      $("preview-summary").textContent = "Preview unavailable: " + error.message;
      document.querySelector("#preview tbody").replaceChildren();
      $("orphans").textContent = "";
    }
  }
}

function schedulePreview() {
  syncCertificationGroup();
  clearTimeout(previewTimer);
  previewTimer = setTimeout(refreshPreview, 120);
}

async function loadEvents() {
  const body = document.querySelector("#events tbody");
  try {
    const result = await api("GET", `/v1/orgs/${encodeURIComponent(org)}/security-events?limit=20`);
    body.replaceChildren();
    for (const e of result.events || []) {
      const row = body.insertRow();
      text(row.insertCell(), new Date(e.time).toLocaleString());
      text(row.insertCell(), e.model || "–");
      text(row.insertCell(), (e.providers || []).map((p) => p.provider).join(", ") || "–");
      text(row.insertCell(), e.reason);
      text(row.insertCell(), e.enforced ? "yes" : "dry run");
    }
    if (!body.rows.length) text(body.insertRow().insertCell(), "No blocks recorded.").colSpan = 5;
  } catch (error) {
    body.replaceChildren();
    text(body.insertRow().insertCell(), "Events unavailable: " + error.message).colSpan = 5;
  }
}

async function buildRequirementRows() {
  const result = await api("GET", "/v1/requirements");
  const flags = (result.requirements || []).filter((r) => r.flag);
  for (const r of flags) {
    const container = $("group-" + r.group);
    if (!container || $(r.policy_field)) continue;
    const row = document.createElement("div");
    row.className = "row";
    const box = document.createElement("input");
    Object.assign(box, { type: "checkbox", id: r.policy_field, name: r.policy_field });
    const label = document.createElement("label");
    label.htmlFor = r.policy_field;
    label.textContent = r.hint ? `${r.label}: ${r.hint}` : r.label;
    row.append(box, label);
    container.append(row);
  }
  REQUIREMENTS = flags.map((r) => r.policy_field).filter((f) => $(f));
}

async function signIn() {
  token = $("token").value.trim();
  try {
    const c = claims(token);
    org = c.org_id;
    await buildRequirementRows();
    await loadCatalogNames();
    const result = await api("GET", `/v1/orgs/${encodeURIComponent(org)}/policy`);
    $("who").textContent = `Signed in as ${c.sub} (${c.role}) for ${org}.`;
    $("who").className = "status success";
    sessionStorage.setItem("authz-token", token);
    storedVersion = result.policy ? (result.policy.version || 0) : 0;
    $("version").textContent = result.policy ? String(storedVersion) : "none";
    $("plan").textContent = result.plan || "none";
    fillForm(result.policy || {});
    for (const id of ["policy-form", "preview-section", "events-section"]) $(id).hidden = false;
    await Promise.all([refreshPreview(), loadEvents()]);
  } catch (error) {
    $("who").textContent = "Sign-in failed: " + error.message;
    $("who").className = "status error";
  }
}

async function save(event) {
  event.preventDefault();
  const result = $("save-result");
  result.textContent = "Saving…";
  result.className = "status";
  try {
    const saved = await api("PUT", `/v1/orgs/${encodeURIComponent(org)}/policy`,
                            { policy: policyFromForm(), expected_version: storedVersion });
    storedVersion = saved.policy.version;
    $("version").textContent = String(storedVersion);
    result.textContent = `Saved: policy version ${storedVersion} is now ` +
      (saved.policy.enabled ? (saved.policy.mode === "POLICY_MODE_DRY_RUN" ? "in dry run." : "enforced.") : "disabled.");
    result.className = "status success";
    await Promise.all([refreshPreview(), loadEvents()]);
  } catch (error) {
    result.textContent = "Not saved: " + error.message;
    result.className = "status error";
  }
}

$("use-token").addEventListener("click", signIn);
$("token").addEventListener("keydown", (e) => { if (e.key === "Enter") signIn(); });
$("policy-form").addEventListener("change", (e) => { pick(e); schedulePreview(); });
$("policy-form").addEventListener("input", (e) => { if (e.target.type === "text") schedulePreview(); });
$("policy-form").addEventListener("submit", save);
const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromHash) history.replaceState(null, "", location.pathname);
const remembered = fromHash || sessionStorage.getItem("authz-token");
if (remembered) { $("token").value = remembered; signIn(); }
