# syntax=docker/dockerfile:1.7
# The authz image: `make image` builds it (docker, else buildah) as ghcr.io/provider-compliance/authz:VERSION.
# Build stage: compile the protos and install the package (pinned by constraints.txt) into
# a venv. Runtime stage: that venv on a slim Python, as an unprivileged user.
# BASE: any Debian-based image with python3 (>= 3.11) and python3-venv; `make image` on a machine
# that cannot pull it builds one from Debian packages (tools/image/build.py).
ARG BASE=python:3.11.7-slim-bookworm
FROM ${BASE} AS build
# The CA bundle pip trusts while building (the base's own; a machine whose TLS to PyPI passes its
# own CA mounts that bundle and names it here). Build stage only: not in the image.
ARG PIP_CERT=/etc/ssl/certs/ca-certificates.crt
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY proto ./proto
COPY src ./src
RUN python3 -m venv /opt/authz \
 && /opt/authz/bin/pip install -c constraints.txt grpcio-tools \
 && /opt/authz/bin/python -m grpc_tools.protoc -Iproto --python_out=src --grpc_python_out=src proto/authz/v1/*.proto \
 && touch src/authz/v1/__init__.py \
 && /opt/authz/bin/pip install -c constraints.txt . \
 && /opt/authz/bin/pip uninstall -y grpcio-tools setuptools
# The SBOM (CycloneDX JSON) of exactly what the runtime stage copies: every Python package in
# /opt/authz with its version and purl. The tool runs from a venv of its own that is not copied.
# The OS packages are the base's: scanners read them from its dpkg status.
ARG SBOM_TOOL=cyclonedx-bom==7.5.0
RUN python3 -m venv /opt/sbom-tool \
 && /opt/sbom-tool/bin/pip install "${SBOM_TOOL}" \
 && mkdir /sbom \
 && /opt/sbom-tool/bin/cyclonedx-py environment --pyproject pyproject.toml --output-reproducible \
        -o /sbom/authz.cdx.json /opt/authz/bin/python

FROM ${BASE}
ARG VERSION=0.2.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/provider-compliance/authz
LABEL org.opencontainers.image.title="provider-compliance authz" \
      org.opencontainers.image.description="Envoy ext_authz service enforcing an organization's LLM provider compliance policy" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      io.provider-compliance.sbom="/usr/share/doc/authz/sbom.cdx.json"
RUN groupadd --gid 10001 authz && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin authz \
 && mkdir -p /var/spool/authz && chown 10001:10001 /var/spool/authz
COPY --from=build /opt/authz /opt/authz
COPY --from=build /sbom/authz.cdx.json /usr/share/doc/authz/sbom.cdx.json
ENV PATH=/opt/authz/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
VOLUME ["/var/spool/authz"]
EXPOSE 9001 9002 9003 9090 9091
ENTRYPOINT ["authz"]
CMD ["serve"]
