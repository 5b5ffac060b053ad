"""Policies the tests share."""

# Under the sample catalog: Azure and Google Vertex comply; DeepSeek (and its other hosts) do not.
DEMO_POLICY = dict(
    enabled=True,
    require_soc2=True,
    require_iso27001=True,
    certifications=2,  # CERTIFICATION_MATCH_ANY
    require_gdpr=True,
    require_no_prompt_training=True,
    require_no_prompt_logging=True,
)
