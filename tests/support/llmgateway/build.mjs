// A transpile-only build of LLMGateway's workspace (the gateway, the worker it imports and the
// packages), in place of its own `tsc` build (4-5 minutes here; this takes seconds): each
// package's src/**/*.ts(x) to dist/ as ES modules, unbundled, then its "@/..." path aliases
// rewritten by the workspace's own resolve-tspaths, as its build script does.
//   node build.mjs WORKSPACE
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const root = process.argv[2];
const pnpm = join(root, "node_modules", ".pnpm");
const [esbuildDir] = readdirSync(pnpm).filter((d) => d.startsWith("esbuild@")).sort().reverse();
const esbuild = await import(pathToFileURL(join(pnpm, esbuildDir, "node_modules", "esbuild", "lib", "main.js")).href);

function sources(dir) {
	const found = [];
	for (const entry of readdirSync(dir, { withFileTypes: true })) {
		const path = join(dir, entry.name);
		if (entry.isDirectory()) found.push(...sources(path));
		else if (/\.tsx?$/.test(entry.name) && !/\.(spec|e2e|test)\.tsx?$/.test(entry.name) && !entry.name.endsWith(".d.ts"))
			found.push(path);
	}
	return found;
}

const packages = ["apps/gateway", "apps/worker", ...readdirSync(join(root, "packages")).map((p) => `packages/${p}`)];
for (const pkg of packages) {
	const dir = join(root, pkg);
	if (!existsSync(join(dir, "src")) || !existsSync(join(dir, "tsconfig.json"))) continue;
	await esbuild.build({
		entryPoints: sources(join(dir, "src")),
		outdir: join(dir, "dist"),
		outbase: join(dir, "src"),
		format: "esm",
		platform: "node",
		target: "node24",
		bundle: false,
		jsx: "automatic",
		logLevel: "warning",
	});
	if (readFileSync(join(dir, "tsconfig.json"), "utf8").includes("\"paths\""))
		execFileSync(join(root, "node_modules", ".bin", "resolve-tspaths"), [], { cwd: dir, stdio: "inherit" });
}
