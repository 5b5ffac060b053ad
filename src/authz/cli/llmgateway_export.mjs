// Exports an installed @llmgateway/models package as JSON for `authz catalog build --from
// llmgateway` (authz.policy.imports.llmgateway_catalog maps it). Usage: node llmgateway_export.mjs DIR,
// DIR being the package's own directory (e.g. node_modules/@llmgateway/models). The package's
// values pass through as published; only what JSON cannot carry is converted (a Date becomes its
// ISO 8601 string, a function or a React element is dropped), and each object's own field
// names are listed, so the builder can refuse a field it does not know.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const dir = resolve(process.argv[2] ?? "");
let pkg;
try {
  pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
} catch (err) {
  process.stderr.write(`${dir}: no readable package.json (${err.code ?? err.message})\n`);
  process.exit(2);
}
if (pkg.name !== "@llmgateway/models") {
  process.stderr.write(`${dir}: package.json names ${JSON.stringify(pkg.name)}, not "@llmgateway/models"\n`);
  process.exit(2);
}
const exp = pkg.exports?.["."];
const entry = (typeof exp === "string" ? exp : exp?.import ?? exp?.default) ?? pkg.module ?? pkg.main ?? "index.js";
const lib = await import(pathToFileURL(join(dir, entry)).href);

// Plain JSON data: Dates as ISO strings, nothing callable, no React elements.
function plain(value) {
  if (value instanceof Date) return value.toISOString();
  if (value === null || typeof value !== "object") return typeof value === "function" ? undefined : value;
  if (value.$$typeof) return undefined;
  if (Array.isArray(value)) return value.map(plain).filter((v) => v !== undefined);
  const out = {};
  for (const [k, v] of Object.entries(value)) {
    const p = plain(v);
    if (p !== undefined) out[k] = p;
  }
  return out;
}

const stealthKnown = typeof lib.isStealthProvider === "function";
const providers = lib.providers.map((p) => ({
  fields: Object.keys(p),
  id: p.id,
  name: p.name ?? null,
  website: p.website ?? null,
  termsUrl: p.termsUrl ?? null,
  privacyPolicyUrl: p.privacyPolicyUrl ?? null,
  legalEntity: p.legalEntity ?? null,
  headquarters: p.headquarters ?? null,
  dataPolicy: p.dataPolicy === undefined ? null : plain(p.dataPolicy),
  regionConfig: p.regionConfig === undefined ? null : plain(p.regionConfig),
  stealth: stealthKnown ? lib.isStealthProvider(p) : null,
}));
const expand = typeof lib.expandProviderRegions === "function";
const models = lib.models.map((m) => ({
  id: m.id,
  aliases: Array.isArray(m.aliases) ? m.aliases : [],
  output: Array.isArray(m.output) ? m.output.filter((o) => typeof o === "string") : null,
  deactivatedAt: plain(m.deactivatedAt) ?? null,
  providers: (m.providers ?? []).map((mp) => ({
    providerId: mp.providerId,
    deactivatedAt: plain(mp.deactivatedAt) ?? null,
    // LLMGateway's own expansion of a mapping into its regional entries, where it has one.
    regions: (expand ? lib.expandProviderRegions(mp) : [mp, ...(mp.regions ?? []).map((r) => ({ region: r.id }))])
      .filter((e) => e.region !== undefined)
      .map((e) => e.region),
  })),
}));
process.stdout.write(
  JSON.stringify({
    package: pkg.name,
    version: pkg.version,
    functions: { isStealthProvider: stealthKnown, expandProviderRegions: expand },
    providers,
    models,
  }),
);
