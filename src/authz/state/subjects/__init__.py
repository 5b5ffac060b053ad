"""The Store, split by the subject it reads and writes (authz.state.store composes them)."""
