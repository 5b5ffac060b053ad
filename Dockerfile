# syntax=docker/dockerfile:1.7
# The authz image: docker build -t provider-compliance/authz:0.2.0 .
# Build stage: compile the protos and install the package (pinned by constraints.txt) into
# a venv. Runtime stage: that venv on a slim Python, as an unprivileged user.
FROM python:3.11.7-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY proto ./proto
COPY src ./src
RUN python -m venv /opt/authz \
 && /opt/authz/bin/pip install -c constraints.txt grpcio-tools \
 && /opt/authz/bin/python -m grpc_tools.protoc -Iproto --python_out=src --grpc_python_out=src proto/authz/v1/*.proto \
 && touch src/authz/v1/__init__.py \
 && /opt/authz/bin/pip install -c constraints.txt . \
 && /opt/authz/bin/pip uninstall -y grpcio-tools setuptools

FROM python:3.11.7-slim-bookworm
RUN groupadd --gid 10001 authz && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin authz
COPY --from=build /opt/authz /opt/authz
ENV PATH=/opt/authz/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
EXPOSE 9001 9002 9003 9090 9091
ENTRYPOINT ["authz"]
CMD ["serve"]
