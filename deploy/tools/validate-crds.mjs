// Validate Istio, Envoy Gateway, Gateway API and Prometheus Operator resources against their CRD schemas
// (the @kubernetes-models packages), offline. Reads a JSON array of manifests on stdin,
// prints a JSON array of {kind, name, ok, error}. A resource of an unknown group fails:
// nothing passes unvalidated.
const PACKAGES = {
  "security.istio.io": "@kubernetes-models/istio",
  "networking.istio.io": "@kubernetes-models/istio",
  "install.istio.io": "@kubernetes-models/istio",
  "gateway.envoyproxy.io": "@kubernetes-models/envoy-gateway",
  "gateway.networking.k8s.io": "@kubernetes-models/gateway-api",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const doc of JSON.parse(input)) {
  const [group, version] = doc.apiVersion.split("/");
  const name = (doc.metadata && doc.metadata.name) || "";
  const pkg = PACKAGES[group];
  if (!pkg) {
    results.push({ kind: doc.kind, name, ok: false, error: `no schema for ${doc.apiVersion}` });
    continue;
  }
  try {
    const module = await import(`${pkg}/${group}/${version}/${doc.kind}`);
    new module[doc.kind](doc).validate();
    results.push({ kind: doc.kind, name, ok: true, error: "" });
  } catch (error) {
    results.push({ kind: doc.kind, name, ok: false, error: String(error.message || error) });
  }
}
console.log(JSON.stringify(results));
