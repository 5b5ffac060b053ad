// LLMGateway's own compliance functions, run on LLMGateway's own provider data, for authz's
// parity test (tests/integration/test_llmgateway_parity.py). Reads a JSON request on stdin:
//   {"policies": [ProviderCompliancePolicy, ...], "attestations": [ProviderComplianceAttestation, ...]}
// and writes {"version", "providers": [...], "provider_failures": [[[reason, ...] per provider] per policy],
// "attestation_failures": [[[reason, ...] per attestation] per policy]}.
import { readFileSync } from "node:fs";
import {
  providers,
  isStealthProvider,
  getProviderComplianceFailures,
  getAttestationComplianceFailures,
} from "@llmgateway/models";

const pkg = JSON.parse(readFileSync(new URL("./node_modules/@llmgateway/models/package.json", import.meta.url)));
const request = JSON.parse(readFileSync(0, "utf8"));
const described = providers.map((p) => ({
  id: p.id,
  name: p.name,
  headquarters: p.headquarters ?? null,
  legalEntity: p.legalEntity ?? null,
  website: p.website ?? null,
  termsUrl: p.termsUrl ?? null,
  privacyPolicyUrl: p.privacyPolicyUrl ?? null,
  dataPolicy: p.dataPolicy ?? null,
  regions: p.regionConfig ? p.regionConfig.regions.map((r) => r.id) : [],
  stealth: isStealthProvider(p),
}));
const out = {
  version: pkg.version,
  providers: described,
  provider_failures: (request.policies ?? []).map((policy) => providers.map((p) => getProviderComplianceFailures(p, policy))),
  attestation_failures: (request.policies ?? []).map((policy) =>
    (request.attestations ?? []).map((a) => getAttestationComplianceFailures(a, policy)),
  ),
};
process.stdout.write(JSON.stringify(out));
