"""make llmgateway-gateway: build (or find in the cache) the gateway the e2e tests run."""

from support.llmgateway import build

print(build().tree)
