// The minimal rows LLMGateway serves a request with, as its own apps/gateway/src/fallback.spec.ts
// seeds them (ensureBaseFixtures, setupMultiProviderKeys), through its own drizzle schema.
// Run from apps/gateway (so @llmgateway/* resolve): node authz-seed.mjs '<json>'
//   {"org": {"id", "plan", "policy"?}, "apiKey": "token", "providerKeys": [{"provider", "baseUrl"}],
//    "customProviders": [{"name", "baseUrl", "attestation"?}]}  (requests name them "<name>/<model>")
import { db, tables } from "@llmgateway/db";
import { getProviderDefinition } from "@llmgateway/models";

const spec = JSON.parse(process.argv[2]);
const org = spec.org;
await db.insert(tables.user).values({ id: `user-${org.id}`, name: "user", email: `${org.id}@example.com` }).onConflictDoNothing();
await db
	.insert(tables.organization)
	.values({
		id: org.id,
		name: org.id,
		billingEmail: `${org.id}@example.com`,
		plan: org.plan ?? "pro",
		retentionLevel: "retain",
		credits: "100.00",
		...(org.policy ? { providerCompliancePolicy: org.policy } : {}),
	})
	.onConflictDoNothing();
await db
	.insert(tables.userOrganization)
	.values({ id: `uo-${org.id}`, userId: `user-${org.id}`, organizationId: org.id })
	.onConflictDoNothing();
await db
	.insert(tables.project)
	.values({ id: `project-${org.id}`, name: "project", organizationId: org.id, mode: "api-keys" })
	.onConflictDoNothing();
await db
	.insert(tables.apiKey)
	.values({ id: `key-${org.id}`, token: spec.apiKey, projectId: `project-${org.id}`, description: "test", createdBy: `user-${org.id}` })
	.onConflictDoNothing();
for (const key of spec.providerKeys) {
	const definition = getProviderDefinition(key.provider);
	await db
		.insert(tables.provider)
		.values({
			id: key.provider,
			name: definition?.name ?? key.provider,
			description: definition?.description ?? key.provider,
			streaming: definition?.streaming ?? true,
			cancellation: definition?.cancellation ?? false,
			color: definition?.color ?? "#000000",
			website: definition?.website ?? `https://${key.provider}.com`,
			status: "active",
		})
		.onConflictDoNothing();
	await db
		.insert(tables.providerKey)
		.values({
			id: `pk-${org.id}-${key.provider}`,
			token: `sk-${key.provider}`,
			provider: key.provider,
			organizationId: org.id,
			baseUrl: key.baseUrl,
		})
		.onConflictDoNothing();
}
for (const custom of spec.customProviders ?? []) {
	await db
		.insert(tables.provider)
		.values({ id: "custom", name: "custom", description: "custom", streaming: true, cancellation: false, color: "#000000", website: "https://example.com", status: "active" })
		.onConflictDoNothing();
	await db
		.insert(tables.providerKey)
		.values({
			id: `pk-${org.id}-custom-${custom.name}`,
			token: `sk-${custom.name}`,
			provider: "custom",
			name: custom.name,
			organizationId: org.id,
			baseUrl: custom.baseUrl,
			complianceAttestation: custom.attestation ?? null,
		})
		.onConflictDoNothing();
}
process.exit(0);
